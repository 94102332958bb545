"""Spread: 10,000 clicks a second over 100,000 links (Zipf), and spread thin (every click a new link).

Both run the whole click pipeline (bench/simulation.py) on the real code: redirect calls,
log records on a Kinesis stream, the event source mapping's batches, the real aggregator,
and DynamoDB Local's consumed capacity per partition key and per index key.

- Zipf: one batching window (or a few) of clicks drawn from a Zipf distribution (s = 1)
  over 100,000 links, the sample bounded for time. The redirect reads from the zero-latency
  stub, seeded with every link the sample touches; each link is served by one container (a
  hash of its id), which keeps cache misses, and so the run's length, to one per link. That
  choice changes reads, not writes: the aggregator sees the same clicks in the same batch.
- Spread thin: N links, one click each, in one batch: the worst case for batching, and the
  case the write-units-per-click target is about.
"""

import math
import random
import time
import zlib
from collections import Counter
from itertools import accumulate

from bench.backends import client_for
from bench.cost import lambda_configs
from bench.context import OUR_TABLE, put_all
from bench.fixtures import create_our_table, our_item, short_id
from bench.record import figure
from bench.report import Section, number, times
from bench.targets import evaluate
from local_stack.click_stream import shard_count
from bench.simulation import SimulatedPipeline, visitor_event

KEY = "spread"
TITLE = "Clicks spread over many links"
WRITE_LIMIT = 1000  # write units per second per partition key value
READ_LIMIT = 3000
TABLE_LIMIT = 40_000  # default on-demand table limit, write units per second
ZIPF_S = 1.0
FULL_CONTAINERS = 50  # warm redirect containers at 10,000 clicks/s, as in the hot-link benchmark
ROUND_TRIP_SECONDS = 0.005  # assumed in-region DynamoDB round trip, as in the cost model
LAMBDA_FULL_VCPU_MB = 1769


def zipf_sample(links, clicks, rng, s=ZIPF_S):
    """`clicks` link ranks (0 = most popular) drawn from a Zipf distribution over `links` links."""
    cumulative = list(accumulate(1 / (rank + 1) ** s for rank in range(links)))
    return rng.choices(range(links), cum_weights=cumulative, k=clicks)


def _pipeline(ctx, table, containers, ids):
    """A pipeline whose redirect reads `ids` from the stub and whose aggregator writes `table` in DynamoDB Local."""
    engine = ctx.dynamodb_local()
    stub = client_for(ctx.stub.endpoint)
    create_our_table(stub, table)
    put_all(stub, table, [our_item(i, f"https://example.com/{i}") for i in ids])
    create_our_table(engine.client(), table)
    return SimulatedPipeline(ctx, ctx.stub.endpoint, table, engine.endpoint, table, containers)


def run_zipf(ctx, links, rate, seconds, containers):
    """Zipf clicks through the pipeline; returns its summary and per-key peaks."""
    rng = random.Random(11)
    ranks = zipf_sample(links, rate * seconds, rng)
    touched = sorted(set(ranks))
    ids = {rank: short_id(rank) for rank in touched}
    pipeline = _pipeline(ctx, OUR_TABLE + "-zipf", containers, ids.values())
    events = {rank: visitor_event(ids[rank], rank) for rank in touched}
    homes = {rank: zlib.crc32(ids[rank].encode()) % containers for rank in touched}

    def pick(second, i):
        rank = ranks[second * rate + i]
        return homes[rank], events[rank]

    pipeline.run(seconds, rate, pick)
    result = pipeline.summary()
    result.update(_peaks(pipeline.meter), links=links, touched=len(touched), clicks=rate * seconds, rate=rate,
                  seconds=seconds, containers=containers)
    result["top_share"] = ranks.count(0) / len(ranks)
    return result


def run_thin(ctx, clicks, containers):
    """`clicks` links, one click each, all in one batch."""
    ids = [f"thin{n:05d}" for n in range(clicks)]
    pipeline = _pipeline(ctx, OUR_TABLE + "-thin", containers, ids)
    events = [visitor_event(i, 1) for i in ids]
    pipeline.run(1, clicks, lambda second, i: (i % containers, events[i]))
    result = pipeline.summary()
    result.update(_peaks(pipeline.meter), clicks=clicks, containers=containers)
    return result


def _peaks(meter):
    table_peaks, index_peaks = meter.peak_per_second("table"), meter.peak_per_second("index")
    top_pk, top_units = max(table_peaks.items(), key=lambda kv: kv[1], default=(None, 0))
    top_index, top_index_units = max(index_peaks.items(), key=lambda kv: kv[1], default=(None, 0))
    return {
        "max_pk": top_pk,
        "max_pk_units": top_units,
        "max_index_key": " ".join(top_index) if top_index else None,
        "max_index_units": top_index_units,
        "index_units": sum(meter.index_wcu.values()),
        "table_units": sum(meter.table_wcu.values()),
        "max_pk_read_units": max(meter.table_rcu.values(), default=0),
    }


def batch_seconds(result, shards=1, write_threads=16, memory_mb=None):
    """Modelled duration of the busiest batch on Lambda: CPU scaled to its memory, plus round trips.

    With more shards each shard's batch holds a share of the records and items (spread thin, a
    link rarely has two clicks in one window, so the items divide with the clicks). Round trips:
    the records' claims `write_threads` at a time, then the item writes the same way. The
    stream's life is asked once per container and minute, not per batch.
    """
    memory_mb = memory_mb or aggregator_memory_mb()
    batches = max(result["batches"], 1)
    items = max(result["items_per_batch"], default=0) / shards
    records = result["records"] / batches / shards
    cpu = result["aggregator_cpu"] / batches / shards
    round_trips = math.ceil(records / write_threads) + math.ceil(items / write_threads)
    return cpu * LAMBDA_FULL_VCPU_MB / min(memory_mb, LAMBDA_FULL_VCPU_MB) + round_trips * ROUND_TRIP_SECONDS


def item_units(result):
    """Write units of a run's per-link item updates (UpdateItem: counters and stats), indexes included."""
    return result["write_units_by_op"].get("UpdateItem", 0.0) - rollup_units(result)


def rollup_units(result):
    """Write units of a run's daily rollups (UpdateItem of rollup#<day>: one per day per batch, issue 18)."""
    return result.get("rollup_units", 0.0)


def claim_units(result):
    """Write units of a run's claims (PutItem: one per stream record with clicks)."""
    return result["write_units_by_op"].get("PutItem", 0.0)


def aggregator_memory_mb():
    """The aggregator's MemorySize in cloudformation.yaml."""
    return lambda_configs()["ours_aggregator"]["memory_mb"]


def shards_needed(result, window, memory_mb=None):
    """The fewest shards whose batches each finish within the batching window (information, not a target)."""
    shards = 1
    while batch_seconds(result, shards, memory_mb=memory_mb) > window and shards < 1000:
        shards += 1
    return shards


def measure(ctx):
    """Both spread runs: the results record."""
    sizes = ctx.sizes["spread"]
    started = time.monotonic()
    zipf = run_zipf(ctx, sizes["links"], sizes["rate"], sizes["seconds"], sizes["containers"])
    thin = run_thin(ctx, sizes["thin_clicks"], sizes["containers"])
    return summarise(zipf, thin, time.monotonic() - started, shard_count(), aggregator_memory_mb())


def summarise(zipf, thin, elapsed, deployed_shards, memory_mb):
    """The record: both runs' counts, the rates and units per click measured, and the modelled batch times."""
    window = zipf["window"]
    # Every write of a batch is booked to the second its window closes: the per-key peak is a
    # whole window's writes in one second (the strictest reading); the table's rate is the
    # window's writes over the window, the rate the aggregator must keep up with.
    table_rate = (zipf["table_units"] + zipf["index_units"]) / zipf["seconds"]
    thin_items_per_click = item_units(thin) / thin["clicks"]
    needed = shards_needed(zipf, window, memory_mb)
    return {
        "zipf": zipf,
        "thin": thin,
        "elapsed": elapsed,
        "table_rate": table_rate,
        "units_per_click": (zipf["table_units"] + zipf["index_units"]) / zipf["clicks"],
        # Measured: the thin run's units (items, indexes and its claims) over its clicks.
        "thin_units_per_click": (thin["table_units"] + thin["index_units"]) / thin["clicks"],
        "thin_item_units_per_click": thin_items_per_click,
        "thin_claim_units_per_click": claim_units(thin) / thin["clicks"],
        "thin_rollup_units_per_click": rollup_units(thin) / thin["clicks"],
        # Modelled: the same items per click, with the claims per click of the Zipf run's packing.
        "claim_units_per_click_at_rate": claim_units(zipf) / zipf["clicks"],
        "units_per_click_at_rate": thin_items_per_click + claim_units(zipf) / zipf["clicks"],
        # Each container reads a link at most once per cache window (0.5 unit, eventually consistent);
        # in the deployed function any of the containers may serve any link.
        "link_read_units_per_second": FULL_CONTAINERS * 0.5 / zipf["cache_seconds"],
        # What the aggregator itself read in both runs: nothing, in steady state.
        "aggregator_read_units": zipf["read_units_aggregator"] + thin["read_units_aggregator"],
        "aggregator_stream_calls": dict(Counter(zipf["stream_calls"]) + Counter(thin["stream_calls"])),
        "batches": zipf["batches"] + thin["batches"],
        "keeping_up": {
            "window": window,
            "rate": zipf["rate"],
            "memory_mb": memory_mb,
            "deployed_shards": deployed_shards,
            "deployed_batch_seconds": batch_seconds(zipf, deployed_shards, memory_mb=memory_mb),
            "one_shard_batch_seconds": batch_seconds(zipf, 1, memory_mb=memory_mb),
            "shards_needed": needed,
            "needed_batch_seconds": batch_seconds(zipf, needed, memory_mb=memory_mb),
            "clicks_per_shard": zipf["rate"] / needed,
        },
    }


def figures(record):
    """The figures documents quote."""
    zipf, keep = record["zipf"], record["keeping_up"]
    share = record["table_rate"] / TABLE_LIMIT
    return {
        "spread.rate": figure(f"{zipf['rate']:,}", zipf["rate"], "measured"),
        "spread.links": figure(f"{zipf['links']:,}", zipf["links"], "measured"),
        "spread.max_pk_wcu": figure(number(zipf["max_pk_units"], 1), zipf["max_pk_units"], "measured"),
        "spread.max_index_wcu": figure(number(zipf["max_index_units"], 1), zipf["max_index_units"], "measured"),
        "spread.table_wcu_per_second": figure(number(record["table_rate"]), record["table_rate"], "measured"),
        "spread.table_share": figure(f"{share:.0%}", share, "measured"),
        "spread.thin_clicks": figure(f"{record['thin']['clicks']:,}", record["thin"]["clicks"], "measured"),
        "spread.thin_units_per_click": figure(
            number(record["thin_units_per_click"], 4), record["thin_units_per_click"], "measured"
        ),
        "spread.thin_item_units_per_click": figure(
            number(record["thin_item_units_per_click"], 4), record["thin_item_units_per_click"], "measured"
        ),
        "spread.thin_claim_units_per_click": figure(
            number(record["thin_claim_units_per_click"], 4), record["thin_claim_units_per_click"], "measured"
        ),
        "spread.claim_units_per_click_at_rate": figure(
            number(record["claim_units_per_click_at_rate"], 4), record["claim_units_per_click_at_rate"], "modelled"
        ),
        "spread.deployed_shards": figure(str(keep["deployed_shards"]), keep["deployed_shards"], "counted"),
        "spread.deployed_batch_seconds": figure(
            f"{number(keep['deployed_batch_seconds'], 1)} s", keep["deployed_batch_seconds"], "modelled"
        ),
        "spread.window_seconds": figure(f"{keep['window']:g} s", keep["window"], "counted"),
        "spread.shards_needed": figure(str(keep["shards_needed"]), keep["shards_needed"], "modelled"),
        "spread.clicks_per_shard": figure(number(keep["clicks_per_shard"]), keep["clicks_per_shard"], "modelled"),
    }


def section(record):
    """The report section, from the record."""
    zipf, thin = record["zipf"], record["thin"]
    window = zipf["window"]
    seconds = zipf["seconds"]
    table_rate, thin_per_click = record["table_rate"], record["thin_units_per_click"]
    thin_items_per_click = record["thin_item_units_per_click"]
    keep = record["keeping_up"]
    headers = ["Run", "Clicks", "Links clicked", "Batches", "Records (claims)", "Item writes",
               "Write units (table + index)", "Units per click (items + claims)",
               "Busiest partition key (units in one second)", "Busiest index key", "Table units/s"]
    rows = []
    for label, r, rate in ((f"Zipf over {zipf['links']:,} links", zipf, table_rate), ("Spread thin", thin, None)):
        rows.append(
            [
                label,
                number(r["clicks"]),
                number(r.get("touched", r["clicks"])),
                number(r["batches"]),
                f"{number(r['records'])} ({number(r['aggregator_ops'].get('PutItem', 0))})",
                number(r["aggregator_ops"].get("UpdateItem", 0)),
                f"{number(r['table_units'], 0)} + {number(r['index_units'], 0)}",
                f"{number(item_units(r) / r['clicks'], 4)} + {number(claim_units(r) / r['clicks'], 4)}",
                f"`{(r['max_pk'] or '–')[:48]}`: {number(r['max_pk_units'], 1)}",
                f"{r['max_index_key'] or 'none written'}: {number(r['max_index_units'], 1)}",
                number(rate) if rate is not None else "–",
            ]
        )
    how = [
        f"Zipf: {zipf['clicks']:,} clicks ({zipf['rate']:,}/s × {seconds} simulated s = {seconds // window or 1}"
        f" batching window(s) of {window} s) drawn with s = {ZIPF_S:g} over {zipf['links']:,} links; the most"
        f" popular link took {zipf['top_share']:.1%} of them and {zipf['touched']:,} links were clicked at least once."
        f" {zipf['containers']} containers, each link served by one of them (a hash of its id).",
        f"Spread thin: {thin['clicks']:,} links clicked once each in one second, one batch.",
        "Both: real redirect calls (links read from the zero-latency stub), one log record per container per second"
        " on a Kinesis stream (moto; that packing is modelled, see the note on claims), the local"
        " `EventSourceMapping` with the template's settings, the real"
        " aggregator on DynamoDB Local; units are DynamoDB Local's consumed capacity (`ReturnConsumedCapacity="
        "INDEXES` on every write), per partition key and index key; a failed conditional write is charged too.",
        "Limits (AWS's documented ones, which DynamoDB Local does not enforce): 1,000 write units/s and 3,000 read"
        " units/s per partition key value, of the table and of each index; 40,000 write units/s per table by"
        " default (on demand). Targets: at most 10% of the key limits, and the table under half its limit.",
    ]
    notes = [
        f"Writes per click: each batch claims each of its stream records (one conditional PutItem, so a producer's"
        f" retry stored twice is applied once), then writes every link it holds once (its counter item) and every"
        f" link-day once (its stats item). Spread thin that is {number(thin_items_per_click, 4)} item units per click"
        f" plus {number(record['thin_claim_units_per_click'], 4)} for the claims ({number(thin['records'])} records for"
        f" {thin['clicks']:,} clicks), {number(thin_per_click, 4)} in all (measured). In the Zipf run's packing, as at"
        f" {zipf['rate']:,} clicks/s, the claims cost {number(record['claim_units_per_click_at_rate'], 4)} per click,"
        f" so {number(record['units_per_click_at_rate'], 4)} in all spread thin (modelled). The claims' share is the"
        " records per click, and that is modelled: CloudWatch Logs puts one log stream's events in a record but does"
        " not document how often it sends one; here one record per container per second. When traffic is so low that"
        " a record holds one click, that click costs 3 write units (counter, stats, claim). No batch reads anything:"
        f" the aggregator read {number(record['aggregator_read_units'], 1)} units from the table and made no stream"
        " read (its Kinesis calls: "
        + (", ".join(f"{op} {n}" for op, n in sorted(record["aggregator_stream_calls"].items())) or "none")
        + ", the stream's life once per container).",
        "Index: counters live in items without `list_pk`, and `by_list` projects no counter, so the counting path"
        f" writes no index at all ({number(zipf['index_units'] + thin['index_units'])} index units in both runs).",
        f"Keeping up: the busiest batch held {number(max(zipf['items_per_batch'], default=0))} item updates; modelled on"
        f" Lambda ({keep['memory_mb']:,} MB, 16 write threads, claims then items, {ROUND_TRIP_SECONDS * 1000:g} ms a"
        " round trip, CPU measured here) one shard's batch takes {number(keep['one_shard_batch_seconds'], 1)} s against a {window} s"
        f" window. The stack deploys ClickStreamShards = {keep['deployed_shards']} (the template's default), and the"
        " target above judges that. With ParallelizationFactor 1 (the marks are per shard) the way to scale is"
        f" shards: at {zipf['rate']:,} clicks/s spread over many links it takes {keep['shards_needed']}"
        f" ({number(keep['needed_batch_seconds'], 1)} s a batch), about {number(keep['clicks_per_shard'])} clicks/s a"
        " shard; a hot link needs far less, since its clicks in a window are one write. Each shard adds $0.015 an"
        " hour; the cost section prices the deployed count, and this rate on the shards it needs.",
        f"Batches that reached the DLQ: {zipf['dlq'] + thin['dlq']}; conditions that failed:"
        f" {zipf['failed_conditions'] + thin['failed_conditions']}.",
    ]
    section_ = Section(KEY, TITLE, how, headers, rows, notes, record, record["elapsed"])
    section_.headline = [
        [
            f"Spread ({zipf['rate']:,} clicks/s, Zipf over {zipf['links']:,} links): busiest partition key / index key,"
            " units/s",
            f"{number(zipf['max_pk_units'], 1)} / {number(zipf['max_index_units'], 1)}",
            "–",
            f"{times(WRITE_LIMIT / max(zipf['max_pk_units'], 1e-9), 0)} under 1,000",
            "measured",
        ],
        ["Spread: table write units/s", number(table_rate), number(zipf["rate"]),
         f"{table_rate / TABLE_LIMIT:.0%} of 40,000", "measured"],
        [
            f"Spread: one batch on the deployed stream ({keep['deployed_shards']} shard)",
            f"{number(keep['deployed_batch_seconds'], 1)} s a {window:g} s window",
            "–",
            f"{keep['shards_needed']} shard(s) needed at {zipf['rate']:,} clicks/s",
            "modelled",
        ],
        [f"Write units per click, spread thin, {thin['clicks']:,}-click batch (indexes included; items + claims)",
         f"{number(thin_items_per_click, 4)} + {number(record['thin_claim_units_per_click'], 4)}", "1",
         times(thin_per_click), "measured"],
    ]
    section_.targets = [t.line() for t in evaluate(KEY, record)]
    return section_
