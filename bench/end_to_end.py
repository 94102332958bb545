"""End to end over HTTP: both handlers behind the local stack's HTTP API stand-in, under a bounded load.

Each handler is served by local_stack.http_api.make_server, the adapter `make run` uses
(the recipe's through a small payload 2.0 → 1.0 wrapper, as its API integration would
send 1.0), with DynamoDB Local behind it. A separate load-generator process keeps a
few keep-alive connections busy on loopback for a fixed time, spread over many links.
"""

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import baseline
from bench.handlers import RequestCounter, load_ours
from bench.report import Section, ms, number, times
from bench.stats import ratio
from local_stack.dynamodb import free_port
from local_stack.http_api import make_server

ROOT = Path(__file__).resolve().parent.parent


def _load(url, ids, seconds, connections):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load_gen",
            url,
            "--ids",
            ",".join(ids),
            "--seconds",
            str(seconds),
            "--connections",
            str(connections),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    if result.returncode != 0:
        raise RuntimeError(f"load generator failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(handler, client, ids, seconds, connections, warmup_seconds=1.0):
    """Serve `handler` on a free loopback port, warm it up, then load it; returns the load summary."""
    server = make_server(handler, free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    counter = RequestCounter(client)
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            _load(url, ids, warmup_seconds, connections)
            counter.reset()
            cpu0 = time.process_time()
            result = _load(url, ids, seconds, connections)
            result["server_cpu_per_request"] = (time.process_time() - cpu0) / max(result["requests"], 1)
    finally:
        server.shutdown()
        server.server_close()
        counter.close()
    result["reads_per_request"] = counter.reads / max(result["requests"], 1)
    result["writes_per_request"] = counter.writes / max(result["requests"], 1)
    return result


def run(endpoint, our_table, recipe_table, ids, seconds=10, connections=4):
    """Ours, then the recipe's, each for `seconds` under the same load."""
    started = time.monotonic()
    ours = load_ours(endpoint, our_table)
    results = {"ours": measure(ours.lambda_handler, ours._client, ids, seconds, connections)}
    if baseline.available():
        recipe = baseline.load(endpoint, recipe_table)
        results["recipe"] = measure(
            baseline.v1_adapter(recipe.lambda_handler), baseline.client_of(recipe), ids, seconds, connections
        )
    return _section(results, ids, seconds, connections, time.monotonic() - started)


def _section(results, ids, seconds, connections, elapsed):
    headers = [
        "Side",
        "Redirects/s",
        "Latency median",
        "Latency p99",
        "Server CPU / request",
        "DynamoDB reads / request",
        "DynamoDB writes / request",
        "Statuses",
        "Errors",
    ]
    rows = []
    for side, label in (("ours", "Ours"), ("recipe", "Recipe")):
        r = results.get(side)
        if r is None:
            rows.append([label, "recipe not found"] + [""] * 7)
            continue
        rows.append(
            [
                label,
                number(r["per_second"]),
                ms(r["latency"]["median"]),
                ms(r["latency"]["p99"]),
                ms(r["server_cpu_per_request"]),
                number(r["reads_per_request"], 3),
                number(r["writes_per_request"], 3),
                ", ".join(f"{k}: {v:,}" for k, v in r["statuses"].items()),
                number(r["errors"]),
            ]
        )
    data = dict(results)
    notes = []
    if "recipe" in results:
        data["throughput_ratio"] = ratio(results["ours"]["per_second"], results["recipe"]["per_second"])
        data["latency_ratio"] = ratio(results["ours"]["latency"]["median"], results["recipe"]["latency"]["median"])
        notes.append(
            f"Ours serves {times(data['throughput_ratio'])} the recipe's redirects per second at"
            f" {times(data['latency_ratio'])} its median latency."
        )
    notes.append(
        "Everything shares this machine's cores: the load generator, the HTTP adapter (a Python"
        " ThreadingHTTPServer, whose own request parsing dominates our time on a cache hit) and DynamoDB Local."
        " The numbers compare the two handlers under identical conditions; they are not a Lambda throughput."
    )
    how = [
        f"{len(ids)} links per side (each in its own table and item format) in DynamoDB Local (in memory).",
        f"Load: `bench/load_gen.py` in its own process, {connections} keep-alive `http.client` connections on"
        f" 127.0.0.1, GET /<id> round-robin over the links, {seconds:g} s per side after a 1 s warm-up.",
        "Server CPU: the benchmark process's CPU time (adapter + handler, not DynamoDB Local) over the requests served."
        " DynamoDB requests: counted on each handler's client during the measured window.",
        "Ours keeps its normal 10 s cache, so each link is read about once per 10 s; the recipe reads and writes"
        " on every request.",
    ]
    return Section("end_to_end", "6. End to end over HTTP", how, headers, rows, notes, data, elapsed)
