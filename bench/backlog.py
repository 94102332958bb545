"""Backlog drain: how fast the aggregator works through batches waiting on the stream.

There is no heal: the event source mapping retries a failing batch until it succeeds, so after
an outage the shard's backlog is delivered as ordinary batches, back to back, each bounded by
the mapping's batch size. This benchmark times the real aggregator (a fresh copy of
aggregator/handler.py on DynamoDB Local) over such a backlog: full batches of Zipf-distributed
clicks (s = 1 over many links, as in the spread benchmark), built by bench/batches.py.

Three rates, clicks per second of aggregator time:
- measured, wall clock of the handler's calls on DynamoDB Local (on this machine, whose cores
  the JVM shares: a floor, not what Lambda does);
- measured, CPU time of this process during those calls (the aggregator and its write threads);
- modelled on Lambda: that CPU scaled to the aggregator's memory, plus its DynamoDB round trips
  (claims, then items, WRITE_THREADS at a time) at an assumed in-region round trip.
Then the question a backlog asks: can every call make progress? The mapping's largest batch (its
BatchSize in records, each packed as modelled) takes longer than one call, so the handler applies
it in whole chunks of CHUNK_CLICKS and stops while time is left, returning the first record not
applied (a partial batch response). A call always applies its first chunk, so the chunk, not the
batch, must fit the function's timeout; the batch then takes a few calls.
The largest backlog drained through the chunked path (more than one call per batch) in a test is
tests/test_backlog.py's, quoted in RELIABILITY.md from results/tests.json.
"""

import math
import random
import time

from bench.batches import BatchMaker, click_line, clicks_per_record, line_template
from bench.capacity import CapacityMeter
from bench.context import OUR_TABLE
from bench.cost import DYNAMODB_ROUND_TRIP_SECONDS, FULL_VCPU_MB, WRITE_THREADS
from bench.fixtures import create_our_table, short_id
from bench.handlers import load_aggregator
from bench.record import figure
from bench.report import Section, number
from bench.spread import aggregator_memory_mb, zipf_sample
from bench.targets import evaluate
from local_stack.template import load_template
from tests.support.pipeline import mapping_settings

KEY = "backlog"
TITLE = "Backlog drain"
def aggregator_timeout_seconds(template=None):
    """The aggregator function's Timeout in cloudformation.yaml (a number, or a parameter's default)."""
    template = template or load_template()
    for resource in template["Resources"].values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Lambda::Function" and props.get("Handler") == "aggregator.handler.lambda_handler":
            timeout = props["Timeout"]
            if isinstance(timeout, dict):
                timeout = template["Parameters"][timeout["Ref"]]["Default"]
            return int(timeout)
    raise RuntimeError("cloudformation.yaml has no aggregator function")


def lambda_seconds(cpu_seconds, records, items, memory_mb):
    """Modelled Lambda duration of one batch: CPU scaled to its memory, then claims and item writes in rounds."""
    round_trips = math.ceil(records / WRITE_THREADS) + math.ceil(items / WRITE_THREADS)
    return cpu_seconds * FULL_VCPU_MB / min(memory_mb, FULL_VCPU_MB) + round_trips * DYNAMODB_ROUND_TRIP_SECONDS


def measure(ctx):
    """Build the backlog, then time the handler over it: the results record."""
    sizes = ctx.sizes["backlog"]
    started = time.monotonic()
    engine = ctx.dynamodb_local()
    click_stream = ctx.click_stream()
    name, arn = ctx.new_stream_arn()
    table = OUR_TABLE + "-backlog"
    create_our_table(engine.client(), table)
    per_record = clicks_per_record(ctx.sizes)
    template = line_template(ctx, table + "-lines")
    per_batch = sizes["records"] * per_record
    ranks = zipf_sample(sizes["links"], sizes["batches"] * per_batch, random.Random(14))
    lines = [click_line(template, short_id(rank)) for rank in ranks]
    maker = BatchMaker(arn, per_record)
    events = [maker.event(0, lines[first : first + per_batch]) for first in range(0, len(lines), per_batch)]
    aggregator = load_aggregator(engine.endpoint, table, click_stream.endpoint, name)
    aggregator.lambda_handler(maker.event(0, lines[:1]), None)  # the container's first call: its life check
    meter = CapacityMeter(aggregator._dynamodb)
    batches = []
    for event in events:
        wall, cpu = time.perf_counter(), time.process_time()
        result = aggregator.lambda_handler(event, None)
        batches.append({
            "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
            "clicks": result["clicks"], "records": result["records"], "items": result["items"],
            "applied": result["applied"],
        })
    meter.close()
    deployed = {"batch_size": mapping_settings()["batch_size"], "timeout": aggregator_timeout_seconds(),
                "memory_mb": aggregator_memory_mb(), "chunk_clicks": aggregator.CHUNK_CLICKS,
                "min_seconds_left": aggregator.MIN_SECONDS_LEFT}
    return summarise(batches, sizes, per_record, len(set(ranks)), meter.write_units, deployed, time.monotonic() - started)


def summarise(batches, sizes, per_record, links_clicked, write_units, deployed, elapsed):
    """The record: the backlog, its three drain rates, and how long the mapping's largest batch would take."""
    memory_mb = deployed["memory_mb"]
    clicks = sum(b["clicks"] for b in batches)
    wall, cpu = sum(b["wall"] for b in batches), sum(b["cpu"] for b in batches)
    modelled = sum(lambda_seconds(b["cpu"], b["records"], b["items"], memory_mb) for b in batches)
    lambda_rate = clicks / modelled if modelled else math.inf
    full_batch_clicks = deployed["batch_size"] * per_record
    # A call stops once the time left might not cover the next chunk (twice its expected time, and at
    # least min_seconds_left): each call but the last applies at least this much.
    chunk_seconds = deployed["chunk_clicks"] / lambda_rate
    per_call_seconds = max(chunk_seconds, deployed["timeout"] - max(deployed["min_seconds_left"], 2 * chunk_seconds))
    return {
        "batches": batches,
        "links": sizes["links"],
        "links_clicked": links_clicked,
        "records_per_batch": sizes["records"],
        "clicks_per_record": per_record,
        "clicks": clicks,
        "expected_clicks": len(batches) * sizes["records"] * per_record,
        "write_units": write_units,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "lambda_seconds": modelled,
        "memory_mb": memory_mb,
        "deployed_batch_size": deployed["batch_size"],
        "timeout_seconds": deployed["timeout"],
        "clicks_per_second": clicks / wall if wall else math.inf,
        "clicks_per_cpu_second": clicks / cpu if cpu else math.inf,
        "lambda_clicks_per_second": lambda_rate,
        # The mapping's largest batch, records packed as modelled, at the modelled rate: per click as
        # measured here (a Zipf mix coalesces more in a larger batch; spread thin it does not).
        "full_batch_clicks": full_batch_clicks,
        "full_batch_seconds": full_batch_clicks / lambda_rate,
        "chunk_clicks": deployed["chunk_clicks"],
        "chunk_seconds": chunk_seconds,
        "full_batch_calls": math.ceil(full_batch_clicks / lambda_rate / per_call_seconds),
        "elapsed": elapsed,
    }


def figures(record):
    """The figures documents quote."""
    return {
        "backlog.clicks": figure(f"{record['clicks']:,}", record["clicks"], "measured"),
        "backlog.clicks_per_second": figure(number(record["clicks_per_second"]), record["clicks_per_second"], "measured"),
        "backlog.clicks_per_cpu_second": figure(
            number(record["clicks_per_cpu_second"]), record["clicks_per_cpu_second"], "measured"),
        "backlog.lambda_clicks_per_second": figure(
            number(record["lambda_clicks_per_second"]), record["lambda_clicks_per_second"], "modelled"),
        "backlog.full_batch_clicks": figure(f"{record['full_batch_clicks']:,}", record["full_batch_clicks"], "modelled"),
        "backlog.full_batch_seconds": figure(
            f"{number(record['full_batch_seconds'])} s", record["full_batch_seconds"], "modelled"),
        "backlog.timeout_seconds": figure(f"{record['timeout_seconds']} s", record["timeout_seconds"], "counted"),
        "backlog.chunk_clicks": figure(f"{record['chunk_clicks']:,}", record["chunk_clicks"], "counted"),
        "backlog.chunk_seconds": figure(f"{number(record['chunk_seconds'])} s", record["chunk_seconds"], "modelled"),
        "backlog.full_batch_calls": figure(f"{record['full_batch_calls']:,}", record["full_batch_calls"], "modelled"),
    }


def section(record):
    """The report section, from the record."""
    batches = record["batches"]
    headers = ["Batch", "Records", "Clicks", "Items written", "Handler wall time", "CPU", "Modelled on Lambda"]
    rows = [
        [str(n), number(b["records"]), number(b["clicks"]), number(b["items"]), f"{b['wall']:,.2f} s",
         f"{b['cpu']:,.2f} s", f"{lambda_seconds(b['cpu'], b['records'], b['items'], record['memory_mb']):,.2f} s"]
        for n, b in enumerate(batches, 1)
    ]
    how = [
        f"A backlog of {len(batches)} batches on one shard, each {record['records_per_batch']:,} records of"
        f" {record['clicks_per_record']:,} click lines ({record['clicks']:,} clicks in all), drawn with s = 1 over"
        f" {record['links']:,} links ({record['links_clicked']:,} clicked), delivered back to back to one warm copy of"
        " the real aggregator on DynamoDB Local, as the mapping delivers a backlog after an outage. The deployed"
        " mapping's batches hold up to 1,000 records (6 MB); these are smaller, to bound the run's time.",
        "Rates: clicks over the handler's wall time (measured; DynamoDB Local runs on the same two cores), over this"
        " process's CPU time during the calls (measured), and over a modelled Lambda duration: that CPU ×"
        f" {FULL_VCPU_MB:,} ÷ {record['memory_mb']:,} MB, plus the claims and then the item writes, {WRITE_THREADS} at"
        f" a time, {DYNAMODB_ROUND_TRIP_SECONDS * 1000:g} ms a round trip (assumed).",
        "The largest backlog a test drains through the chunked path (several calls per batch, exact counts) is"
        " tests/test_backlog.py's, quoted in RELIABILITY.md.",
    ]
    notes = [
        f"Drained: {record['clicks']:,} clicks at {number(record['clicks_per_second'])} clicks/s of handler time here,"
        f" {number(record['clicks_per_cpu_second'])} per CPU second, {number(record['lambda_clicks_per_second'])} per"
        f" second on Lambda (modelled); {number(record['write_units'])} write units.",
        f"The mapping's largest batch: BatchSize {record['deployed_batch_size']:,} records (the template's) of"
        f" {record['clicks_per_record']:,} clicks each (the modelled packing) is {record['full_batch_clicks']:,} clicks:"
        f" {number(record['full_batch_seconds'])} s at the modelled rate, more than the function's"
        f" {record['timeout_seconds']} s timeout allows one call. The handler applies it in whole chunks of"
        f" {record['chunk_clicks']:,} clicks ({number(record['chunk_seconds'])} s each, modelled) and stops while time is"
        " left, returning the first record it did not apply; the mapping goes on from there, so the batch takes"
        f" {record['full_batch_calls']:,} calls and no call can time out half-way. (Without that, a batch that cannot"
        " finish in time is retried from its start and never gets further: the shard stalls until the stream trims"
        " it. CloudWatch Logs may put up to 10,000 events in one record, so the batch size alone bounds nothing.)",
    ]
    section_ = Section(KEY, TITLE, how, headers, rows, notes, record, record["elapsed"])
    section_.headline = [
        ["Backlog drain, clicks per second of aggregator time (handler wall time here / modelled on Lambda)",
         f"{number(record['clicks_per_second'])} / {number(record['lambda_clicks_per_second'])}", "–",
         f"a chunk of {record['chunk_clicks']:,} clicks takes {number(record['chunk_seconds'])} s of a"
         f" {record['timeout_seconds']} s timeout; the mapping's largest batch ({record['full_batch_clicks']:,} clicks)"
         f" takes {record['full_batch_calls']:,} calls", "measured / modelled"],
    ]
    section_.targets = [t.line() for t in evaluate(KEY, record)]
    return section_
