"""Write units per click spread thin at 1, 8 and 16 shards, when every shard touches every item, and with retries.

Each item the aggregator writes keeps one high-water mark per shard that touched it, so an
item's size, and so its write units, grows with the shards. The worst case: every shard's
batch holds one click on every link, so each link's counter and stats items carry a mark of
every shard. For each shard count, on DynamoDB Local with the real aggregator (a fresh copy of
aggregator/handler.py, batches built by bench/batches.py):
1. warm-up: one batch on each shard, so every item carries a mark of each;
2. steady state: one more batch (shard 0), measured: its item writes and its claims;
3. a retried batch: one item write fails (injected, before it reaches DynamoDB, as a throttle
   that botocore gave up on), so the batch fails with the rest applied, and is delivered again
   to the same container, which reads the claims and items first and writes what is missing;
4. the same, the retry landing on a fresh container: no memory of the failure, so every
   applied item costs a failed conditional write and every claim is written again.
Then every counter must hold exactly the clicks sent (exactness is checked, not assumed).
"""

import logging
import time

from aggregator import layout
from bench.batches import BatchMaker, click_line, clicks_per_record, line_template
from bench.capacity import CapacityMeter, item_size
from bench.context import OUR_TABLE
from bench.fixtures import create_our_table
from bench.handlers import REGION, load_aggregator
from bench.record import figure
from bench.report import Section, number
from bench.targets import UNITS_PER_CLICK, evaluate
from tests.support.faults import Faults

KEY = "shards"
TITLE = "Write units per click across shards, with retries"
# The shard count 10,000 clicks/s needs (spread's keeping-up model) is measured too, up to this.
MAX_MEASURED_SHARDS = 32
CLAIM_OP, ITEM_OP = "PutItem", "UpdateItem"  # the aggregator's only PutItem is a claim


def shard_counts(asked, needed=None):
    """The shard counts to measure: the asked ones, and the count a rate needs when it is not too many."""
    counts = set(asked)
    if needed and needed <= MAX_MEASURED_SHARDS:
        counts.add(needed)
    return sorted(counts)


def _taken(meter):
    """What the meter counted since its last reset, as plain numbers."""
    units = meter.write_units_by_op
    return {
        # Per-link items (counters, stats); the daily rollups (one write per day per batch) apart.
        "item_units": units.get(ITEM_OP, 0.0) - meter.rollup_units,
        "claim_units": units.get(CLAIM_OP, 0.0),
        "rollup_units": meter.rollup_units,
        "read_units": meter.read_units,
        "ops": dict(meter.ops),
        "failed_conditions": meter.failed_conditions,
    }


def _fail_one_item(aggregator, key):
    """Fail the aggregator's UpdateItem of `key` (a DynamoDB key) before it is sent; the Faults to remove."""
    faults = Faults(aggregator._dynamodb)
    faults.fail_when = lambda operation, request: operation == ITEM_OP and request.get("Key") == key
    return faults


def _failed_attempt(aggregator, event, key, meter):
    """Deliver `event` with the item `key` failing: the batch must fail; what its attempt cost."""
    faults = _fail_one_item(aggregator, key)
    meter.reset()
    # The aggregator logs the failure as a warning (in Lambda, to its log); here it is expected.
    logger = logging.getLogger("aggregator")
    logger.disabled = True
    try:
        aggregator.lambda_handler(event, None)
    except Exception:  # noqa: BLE001 - the injected throttle, as the mapping sees it
        pass
    else:
        raise RuntimeError("the injected write failure did not fail the batch")
    finally:
        logger.disabled = False
        faults.remove()
    return _taken(meter)


def run_count(engine, stream, shards, ids, lines, per_record):
    """One shard count on a fresh table: warm-up, steady batch, a retry in the same container and on a fresh one."""
    table = f"{OUR_TABLE}-shards{shards}"
    create_our_table(engine.client(), table)
    aggregator = load_aggregator(engine.endpoint, table, stream["endpoint"], stream["name"])
    meter = CapacityMeter(aggregator._dynamodb)
    maker = BatchMaker(stream["arn"], per_record)
    for shard in range(shards):
        aggregator.lambda_handler(maker.event(shard, lines), None)
    meter.reset()
    steady_result = aggregator.lambda_handler(maker.event(0, lines), None)
    steady = _taken(meter)
    steady["records"] = steady_result["records"]
    items = _item_sizes(engine.client(), table, ids[0])
    failing = layout.counter_key(ids[-1], REGION)

    event = maker.event(shards - 1, lines)
    attempt = _failed_attempt(aggregator, event, failing, meter)
    meter.reset()
    retried = aggregator.lambda_handler(event, None)
    warm_retry = _taken(meter) | {"retry_path": retried["retry"]}

    event = maker.event(0, lines)
    fresh_attempt = _failed_attempt(aggregator, event, failing, meter)
    fresh = load_aggregator(engine.endpoint, table, stream["endpoint"], stream["name"])
    fresh_meter = CapacityMeter(fresh._dynamodb)
    fresh_result = fresh.lambda_handler(event, None)
    fresh_retry = _taken(fresh_meter) | {"retry_path": fresh_result["retry"]}
    meter.close()
    fresh_meter.close()
    counted = _counted(engine.client(), table)
    return {
        "shards": shards,
        "clicks": len(lines),
        "steady": steady,
        "counter_item_bytes": items["counter"],
        "stats_item_bytes": items["stats"],
        "retry": {"attempt": attempt, "retry": warm_retry},
        "fresh_retry": {"attempt": fresh_attempt, "retry": fresh_retry},
        "expected_per_link": shards + 3,  # warm-up, steady, two retried batches
        "counted": counted,
        "exact": len(counted) == len(lines) and set(counted.values()) == {shards + 3},
    }


def _item_sizes(client, table, short_id):
    """Bytes of one link's counter and stats items, as they are now."""
    counter = client.get_item(TableName=table, Key=layout.counter_key(short_id, REGION), ConsistentRead=True)
    stats = client.query(
        TableName=table, KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": f"{layout.STATS_PK_PREFIX}{short_id}"}},
    )["Items"]
    return {"counter": item_size(counter.get("Item") or {}), "stats": item_size(stats[0]) if stats else 0}


def _counted(client, table):
    """{link: clicks} of every counter item in the table."""
    counted, start = {}, None
    for _ in range(10_000):  # bounded: a page holds up to 1 MB
        page = client.scan(
            TableName=table, FilterExpression="begins_with(sk, :c)",
            ExpressionAttributeValues={":c": {"S": layout.COUNTER_SK_PREFIX}},
            **({"ExclusiveStartKey": start} if start else {}),
        )
        counted.update({item["pk"]["S"]: int(item["clicks"]["N"]) for item in page["Items"]})
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    return counted


def measure(ctx):
    """Every shard count: the results record."""
    sizes = ctx.sizes["shards"]
    started = time.monotonic()
    engine = ctx.dynamodb_local()
    click_stream = ctx.click_stream()
    name, arn = ctx.new_stream_arn()
    stream = {"endpoint": click_stream.endpoint, "name": name, "arn": arn}
    template = line_template(ctx, OUR_TABLE + "-shards-lines")
    ids = [f"shd{n:05d}" for n in range(sizes["links"])]
    lines = [click_line(template, short_id) for short_id in ids]
    per_record = clicks_per_record(ctx.sizes)
    needed = ((ctx.results.get("spread") or {}).get("keeping_up") or {}).get("shards_needed")
    runs = [run_count(engine, stream, shards, ids, lines, per_record) for shards in shard_counts(sizes["counts"], needed)]
    return summarise(runs, sizes["counts"], needed, per_record, template, time.monotonic() - started)


def summarise(runs, asked, needed, per_record, template, elapsed):
    """The record: per shard count, units per click (items, claims), item sizes, and both retries per click."""
    out = []
    for run in runs:
        clicks = run["clicks"]
        steady, retry, fresh = run["steady"], run["retry"], run["fresh_retry"]
        item = steady["item_units"] / clicks
        claims = steady["claim_units"] / clicks
        rollups = steady["rollup_units"] / clicks
        out.append({
            **run,
            "item_units_per_click": item,
            "claim_units_per_click": claims,
            "rollup_units_per_click": rollups,
            "records_per_click": steady["records"] / clicks,
            "units_per_click": item + claims + rollups,
            # A retry's own units, per click of the retried batch.
            "retry_write_units_per_click": (retry["retry"]["item_units"] + retry["retry"]["claim_units"]) / clicks,
            "retry_read_units_per_click": retry["retry"]["read_units"] / clicks,
            # The retried batch's item writes, its failed attempt and its retry together.
            "with_retry_item_units_per_click": (retry["attempt"]["item_units"] + retry["retry"]["item_units"]) / clicks,
            "fresh_retry_write_units_per_click": (fresh["retry"]["item_units"] + fresh["retry"]["claim_units"]) / clicks,
            "fresh_retry_read_units_per_click": fresh["retry"]["read_units"] / clicks,
            "with_fresh_retry_item_units_per_click": (
                fresh["attempt"]["item_units"] + fresh["retry"]["item_units"]) / clicks,
        })
    return {
        "runs": out,
        "asked": sorted(asked),
        "needed": needed,
        "clicks_per_record": per_record,
        "visitor": {key: value for key, value in template.items() if key != "id"},
        "elapsed": elapsed,
    }


def figures(record):
    """The figures documents quote, per shard count."""
    out = {}
    for run in record["runs"]:
        prefix = f"{KEY}.{run['shards']}"
        for name, digits, basis in (
            ("units_per_click", 4, "measured"),
            ("item_units_per_click", 4, "measured"),
            ("claim_units_per_click", 4, "measured"),
            ("records_per_click", 4, "counted"),
            ("with_retry_item_units_per_click", 4, "measured"),
            ("retry_write_units_per_click", 4, "measured"),
            ("retry_read_units_per_click", 4, "measured"),
            ("fresh_retry_write_units_per_click", 4, "measured"),
        ):
            out[f"{prefix}.{name}"] = figure(number(run[name], digits), run[name], basis)
        for name in ("counter_item_bytes", "stats_item_bytes"):
            out[f"{prefix}.{name}"] = figure(number(run[name]), run[name], "measured")
    return out


def section(record):
    """The report section, from the record."""
    runs = record["runs"]
    headers = ["Shards", "Item units/click", "Claim units/click (records/click)", "In all", "Counter / stats item bytes",
               "Retry, same container: writes + reads per click", "With that retry: item units/click",
               "Retry, fresh container: writes per click", "Counted exactly"]
    rows = [
        [
            str(run["shards"]) + (" (needed at the spread rate)" if run["shards"] == record["needed"] else ""),
            number(run["item_units_per_click"], 4),
            f"{number(run['claim_units_per_click'], 4)} ({number(run['records_per_click'], 4)})",
            number(run["units_per_click"], 4),
            f"{number(run['counter_item_bytes'])} / {number(run['stats_item_bytes'])}",
            f"{number(run['retry_write_units_per_click'], 4)} + {number(run['retry_read_units_per_click'], 4)} read",
            number(run["with_retry_item_units_per_click"], 4),
            number(run["fresh_retry_write_units_per_click"], 4),
            "yes" if run["exact"] else "**NO**",
        ]
        for run in runs
    ]
    clicks = runs[0]["clicks"] if runs else 0
    how = [
        f"Per shard count, a fresh table on DynamoDB Local and a fresh copy of the real aggregator, driven with"
        f" batches built as the event source mapping delivers them: {clicks:,} links, and every batch of every shard"
        f" holds one click on each (the worst case for the marks: each counter and stats item carries a mark of every"
        f" shard). One warm-up batch per shard, then one more batch, measured (its item writes and its claims).",
        "Click lines: the real redirect's line for one kind of visitor ("
        + ", ".join(f"`{key}`: `{value}`" for key, value in sorted(record["visitor"].items()))
        + "), the link id changed."
        f" Records: {record['clicks_per_record']:,} lines each, one log stream's lines in one record, as bench/simulation.py"
        " packs them (modelled: CloudWatch Logs does not document how often it sends a record; here one per"
        " container per second at the spread benchmark's rate over its containers). A claim is one write per record,"
        " so the claim units per click are the records per click of that model; a record of one click costs 1 claim"
        " unit, so at very low traffic a click costs up to 3 units.",
        "Sequence numbers: 56 digits, as Kinesis gives them, so every mark is its real size. Units: DynamoDB Local's"
        " consumed capacity for every write; a conditional write that fails is charged by AWS's rule (the item's"
        " size, 1 unit per KB), since DynamoDB Local reports nothing for it; reads as DynamoDB Local reports them"
        " (strongly consistent BatchGetItem).",
        "Retries: one item write of a batch fails before it reaches DynamoDB (as a throttle botocore gave up on), so"
        " the batch fails with everything else applied, and is delivered again. In the same container the aggregator"
        " remembers the failure, reads the batch's claims and items first (a read unit costs a fifth of a write unit)"
        " and writes only what is missing. In a fresh container (Lambda may run the retry anywhere) it does not"
        " know: each claim is written again (its own claim: the condition passes) and each applied item costs a"
        " failed conditional write.",
    ]
    notes = [
        f"Target judged on the item part, as measured: ≤ {UNITS_PER_CLICK} item units per click at every shard count"
        " measured, the claims stated beside it (one write per stream record, so their share is the packing's"
        " records per click, not a property of the aggregator).",
        "Counted exactly: after the warm-up (one batch per shard) and three more batches, every counter holds exactly"
        " the clicks sent: the retries counted nothing twice and lost nothing.",
    ]
    if len(runs) > 1:
        low, high = runs[0], runs[-1]
        per_mark = (high["stats_item_bytes"] - low["stats_item_bytes"]) / (high["shards"] - low["shards"])
        largest = max(high["counter_item_bytes"], high["stats_item_bytes"])
        notes.append(
            f"Item size: each shard's mark adds about {number(per_mark)} bytes to an item; at {high['shards']} shards"
            f" the larger item is {number(largest)} bytes, {number(1024 - largest)} under the 1 KB one write unit"
            " covers. A stats item with more referrers, countries or devices than this one visitor's has less room"
            " (the hot-link section bounds its growth)."
        )
    section_ = Section(KEY, TITLE, how, headers, rows, notes, record, record["elapsed"])
    section_.headline = [
        [
            f"Write units per click spread thin at {run['shards']} shard(s), every shard touching every item"
            " (items + claims)",
            f"{number(run['item_units_per_click'], 4)} + {number(run['claim_units_per_click'], 4)}",
            "1",
            f"retry: +{number(run['retry_write_units_per_click'], 4)} writes, +{number(run['retry_read_units_per_click'], 4)}"
            f" reads per click (fresh container: +{number(run['fresh_retry_write_units_per_click'], 4)} writes)",
            "measured",
        ]
        for run in runs if run["shards"] in record["asked"]
    ]
    section_.targets = [t.line() for t in evaluate(KEY, record)]
    return section_
