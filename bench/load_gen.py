"""A bounded HTTP load generator: a few keep-alive connections on loopback for a fixed time.

Run as its own process (`python -m bench.load_gen URL --ids ... --seconds S`), so its
CPU is not taken from the server being measured; prints one JSON summary line.
"""

import argparse
import http.client
import json
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

from bench.stats import summarize


def _worker(host, port, paths, offset, deadline, latencies, statuses, errors):
    connection = http.client.HTTPConnection(host, port, timeout=10)
    i = offset
    while time.monotonic() < deadline:
        path = paths[i % len(paths)]
        i += 7  # walk the ids in a different order on each connection
        t0 = time.perf_counter()
        try:
            connection.request("GET", path, headers={"User-Agent": "bench-load/1.0"})
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            errors.append(1)
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=10)
            continue
        latencies.append(time.perf_counter() - t0)
        statuses[response.status] += 1
    connection.close()


def run(url, paths, seconds, connections):
    """Load `url` with `connections` threads for `seconds`; return a summary dict."""
    parts = urlsplit(url)
    deadline = time.monotonic() + seconds
    per_thread = [([], Counter(), []) for _ in range(connections)]
    threads = [
        threading.Thread(target=_worker, args=(parts.hostname, parts.port, paths, n, deadline, *per_thread[n]))
        for n in range(connections)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies = [x for lat, _, _ in per_thread for x in lat]
    statuses = Counter()
    for _, counts, _ in per_thread:
        statuses.update(counts)
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "per_second": len(latencies) / elapsed,
        "latency": summarize(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": sum(len(e) for _, _, e in per_thread),
    }


def main():
    """Parse arguments, run, print the summary as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--ids", required=True, help="comma-separated short ids")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    paths = ["/" + i for i in args.ids.split(",")]
    print(json.dumps(run(args.url, paths, args.seconds, args.connections)))


if __name__ == "__main__":
    main()
