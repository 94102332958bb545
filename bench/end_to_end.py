"""End to end over HTTP: both handlers behind the local stack's HTTP API stand-in, under a bounded load.

Each handler is served by local_stack.http_api.make_server, the adapter `make run` uses
(the recipe's through a small payload 2.0 → 1.0 wrapper, as its API integration would
send 1.0), with DynamoDB Local behind it. A separate load-generator process keeps a
few keep-alive connections busy on loopback for a fixed time, spread over many links.

Our click lines go where `make run` sends them: local_stack.log_subscription.LogSubscription
(as stdout) puts them on a Kinesis stream (local_stack.click_stream), and after the load the
local EventSourceMapping hands them to the real aggregator. The counts it leaves in the table
must equal the redirects served: the whole pipeline, checked end to end.
"""

import contextlib
import gzip
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from aggregator import layout
from bench import baseline
from bench.context import OUR_TABLE, RECIPE_TABLE
from bench.handlers import RequestCounter, load_aggregator, load_ours
from bench.record import figure
from bench.report import Section, ms, number, times
from bench.stats import ratio
from bench.targets import end_to_end_counted, evaluate
from local_stack.dynamodb import free_port
from local_stack.event_source import EventSourceMapping
from local_stack.http_api import make_server
from local_stack.log_subscription import LogSubscription
from tests.support.pipeline import mapping_settings

KEY = "end_to_end"
TITLE = "End to end over HTTP"
ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
SUBSCRIPTION_INTERVAL = 0.25  # seconds between the log subscription's records


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


def serve_and_load(handler, client, ids, seconds, connections, warmup_seconds=1.0, stdout=None):
    """Serve `handler` on a free loopback port, warm it up, then load it; returns the load summary.

    The handler's stdout goes to `stdout` (ours: the log subscription), else nowhere.
    """
    server = make_server(handler, free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    counter = RequestCounter(client)
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(stdout or sink):
            warmup = _load(url, ids, warmup_seconds, connections)
            counter.reset()
            cpu0 = time.process_time()
            result = _load(url, ids, seconds, connections)
            result["server_cpu_per_request"] = (time.process_time() - cpu0) / max(result["requests"], 1)
    finally:
        server.shutdown()
        server.server_close()
        counter.close()
    result["redirects_served"] = warmup["statuses"].get("302", 0) + result["statuses"].get("302", 0)
    result["reads_per_request"] = counter.reads / max(result["requests"], 1)
    result["writes_per_request"] = counter.writes / max(result["requests"], 1)
    return result


def measure(ctx):
    """Ours (with its click pipeline), then the recipe's, each for the same time under the same load: the record."""
    started = time.monotonic()
    engine = ctx.dynamodb_local()
    endpoint = ctx.seeded(engine.endpoint)
    ids = ctx.links()[1:]
    seconds, connections = ctx.sizes["e2e_seconds"], 4
    warmup = ctx.sizes.get("e2e_warmup_seconds", 1.0)
    results = {"ours": measure_ours(ctx, endpoint, ids, seconds, connections, warmup)}
    if baseline.available():
        recipe = baseline.load(endpoint, RECIPE_TABLE)
        results["recipe"] = serve_and_load(
            baseline.v1_adapter(recipe.lambda_handler), baseline.client_of(recipe), ids, seconds, connections, warmup
        )
    return summarise(results, len(ids), seconds, connections, time.monotonic() - started, warmup)


def measure_ours(ctx, endpoint, ids, seconds, connections, warmup_seconds=1.0):
    """Our redirect under load, its click lines on the stream; then the aggregator drains it and the counts are checked."""
    stream = ctx.click_stream()
    name = ctx.new_stream()
    ours = load_ours(endpoint, OUR_TABLE)
    before = _counted(ours._client, ids)

    events_per_record = []

    def put(data):
        events_per_record.append(len(json.loads(gzip.decompress(data))["logEvents"]))
        stream.kinesis.put_record(StreamName=name, Data=data, PartitionKey="clicks")

    with open(os.devnull, "w") as echo:
        # Records a few times a second: the local subscription does not split a record at CloudWatch
        # Logs' 10,000 events, and the aggregator reads no more than that from one record.
        subscription = LogSubscription(put, interval=SUBSCRIPTION_INTERVAL, echo=echo, log_stream="bench-e2e").start()
        try:
            result = serve_and_load(
                ours.lambda_handler, ours._client, ids, seconds, connections, warmup_seconds, stdout=subscription
            )
        finally:
            subscription.stop()
    aggregator = load_aggregator(endpoint, OUR_TABLE, stream.endpoint, name)
    settings = mapping_settings()
    dlq = []
    mapping = EventSourceMapping(
        stream.kinesis, name, aggregator.lambda_handler, dlq.append,
        batch_size=settings["batch_size"], window=settings["window"], max_retries=settings["max_retries"],
    ).start_at("TRIM_HORIZON")
    t0 = time.perf_counter()
    mapping.drain(timeout=600)  # after the load, so the aggregator's work is not charged to the redirect
    result["aggregator_seconds"] = time.perf_counter() - t0
    result["aggregator_invocations"] = mapping.invocations
    result["dlq"] = len(dlq)
    result["records"] = len(events_per_record)
    result["max_events_per_record"] = max(events_per_record, default=0)
    result["clicks_counted"] = _counted(ours._client, ids) - before
    return result


def _counted(client, ids):
    """Clicks and bots counted so far over these links' counter items (this region)."""
    keys = [layout.counter_key(i, REGION) for i in ids]
    total = 0
    for first in range(0, len(keys), 100):
        request = {OUR_TABLE: {"Keys": keys[first : first + 100]}}
        while request:
            response = client.batch_get_item(RequestItems=request)
            for item in response["Responses"].get(OUR_TABLE, []):
                total += int(item.get("clicks", {"N": "0"})["N"]) + int(item.get("bots", {"N": "0"})["N"])
            request = response.get("UnprocessedKeys") or None
    return total


def summarise(results, links, seconds, connections, elapsed, warmup=1.0):
    """The record: both sides' load summaries and the ratios."""
    record = dict(results)
    record.update(links=links, seconds=seconds, connections=connections, elapsed=elapsed, warmup=warmup)
    if "recipe" in results:
        record["throughput_ratio"] = ratio(results["ours"]["per_second"], results["recipe"]["per_second"])
        record["latency_ratio"] = ratio(results["ours"]["latency"]["median"], results["recipe"]["latency"]["median"])
    return record


def figures(record):
    """The figures documents quote."""
    ours = record["ours"]
    out = {
        "end_to_end.redirects_served": figure(f"{ours['redirects_served']:,}", ours["redirects_served"], "measured"),
        "end_to_end.redirects_counted": figure(f"{ours['clicks_counted']:,}", ours["clicks_counted"], "measured"),
        "end_to_end.dlq": figure(number(ours["dlq"]), ours["dlq"], "measured"),
        "end_to_end.ours_per_second": figure(number(ours["per_second"]), ours["per_second"], "measured"),
    }
    if "recipe" in record:
        out["end_to_end.throughput_ratio"] = figure(times(record["throughput_ratio"]), record["throughput_ratio"], "measured")
    return out


def section(record):
    """The report section, from the record."""
    results, seconds, connections, warmup = record, record["seconds"], record["connections"], record["warmup"]
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
    data = record
    notes = []
    if "recipe" in results:
        notes.append(
            f"Ours serves {times(data['throughput_ratio'])} the recipe's redirects per second at"
            f" {times(data['latency_ratio'])} its median latency."
        )
    ours = results["ours"]
    counted_ok = end_to_end_counted(record).met
    notes.append(
        f"Clicks: ours served {ours['redirects_served']:,} redirects (warm-up included); the log subscription put their"
        f" lines on the stream ({ours['records']:,} records, at most {ours['max_events_per_record']:,} lines each, one"
        f" every {SUBSCRIPTION_INTERVAL:g} s), and after the load the event source mapping invoked the aggregator"
        f" {ours['aggregator_invocations']} time(s) ({ours['aggregator_seconds']:,.1f} s): it counted"
        f" {ours['clicks_counted']:,} clicks — {'exactly' if counted_ok else 'NOT'} one per redirect; DLQ {ours['dlq']}."
    )
    notes.append(
        "Everything shares this machine's cores: the load generator, the HTTP adapter (a Python"
        " ThreadingHTTPServer, whose own request parsing dominates our time on a cache hit) and DynamoDB Local."
        " The numbers compare the two handlers under identical conditions; they are not a Lambda throughput."
    )
    how = [
        f"{record['links']} links per side (each in its own table and item format) in DynamoDB Local (in memory).",
        f"Load: `bench/load_gen.py` in its own process, {connections} keep-alive `http.client` connections on"
        f" 127.0.0.1, GET /<id> round-robin over the links, {seconds:g} s per side after a {warmup:g} s warm-up.",
        "Server CPU: the benchmark process's CPU time (adapter + handler, not DynamoDB Local) over the requests served."
        " DynamoDB requests: counted on each handler's client during the measured window.",
        "Ours keeps its normal 10 s cache, so each link is read about once per 10 s; the recipe reads and writes"
        " on every request.",
        "Ours also pays, in the server process, for `make run`'s log subscription as its stdout (a lock and a JSON"
        " check per line, a stream put each second); the aggregator runs after the load, not during it.",
    ]
    section_ = Section(KEY, TITLE, how, headers, rows, notes, record, record["elapsed"])
    if "recipe" in results:
        section_.headline = [
            ["End to end over HTTP, redirects/s", number(ours["per_second"]), number(results["recipe"]["per_second"]),
             times(data["throughput_ratio"]), "measured"]
        ]
    section_.targets = [t.line() for t in evaluate(KEY, record)]
    return section_
