"""Hot link: one link at 10,000 clicks a second from 50 warm containers, through the whole click pipeline.

Our side runs the real code end to end in simulated time (bench/simulation.py): real redirect
calls with per-container caches, their click lines packed into log records, put on a Kinesis
stream, batched per the event source mapping's window, and applied by the real aggregator to
DynamoDB Local, whose consumed capacity is read per partition key and per index key.

The recipe's side is sampled: a few thousand real calls of its handler, counted the same way,
give its requests per redirect (always 1 read + 1 write), which is then multiplied by the rate.
"""

import contextlib
import logging
import random
import string
import time

from aggregator import layout
from aggregator.writes import MAX_REFERRERS
from bench import baseline
from bench.capacity import item_size
from bench.context import OUR_TABLE, RECIPE_TABLE, seed
from bench.handlers import RequestCounter
from bench.record import figure
from bench.report import Section, number, times
from bench.targets import HOT_LINK_WCU, evaluate, hot_link_bounds
from bench.simulation import SimulatedPipeline, visitor_event

KEY = "hot_link"
TITLE = "Hot link"
READ_LIMIT = 3000  # read units per second per partition key value
WRITE_LIMIT = 1000  # write units per second per partition key value
HOT_LINK = "hot0001"
REGION = "us-east-1"


def simulate(ctx, rate, seconds, containers, adversarial_seconds):
    """Our pipeline on one link; then, apart, the stats item pushed to its bounds by forged referrers."""
    engine = ctx.dynamodb_local()
    seed(engine.endpoint, [HOT_LINK], our_table=OUR_TABLE + "-hot", recipe_table=RECIPE_TABLE + "-hot")
    pipeline = SimulatedPipeline(ctx, engine.endpoint, OUR_TABLE + "-hot", engine.endpoint, OUR_TABLE + "-hot", containers)
    events = [visitor_event(HOT_LINK, v) for v in range(5)]
    pipeline.run(seconds, rate, lambda second, i: (i % containers, events[i % len(events)]))
    ours = pipeline.summary()
    meter = pipeline.meter
    table_peaks, index_peaks = meter.peak_per_second("table"), meter.peak_per_second("index")
    counter_pk = layout.counter_key(HOT_LINK, REGION)["pk"]["S"]
    stats_pk = layout.stats_key(HOT_LINK, "2000-01-01", REGION)["pk"]["S"]
    ours["keys"] = {
        "counter": {"pk": counter_pk, "peak": table_peaks[counter_pk], "total": meter.table_wcu[counter_pk]},
        "stats": {"pk": stats_pk, "peak": table_peaks[stats_pk], "total": meter.table_wcu[stats_pk]},
    }
    claims = {pk: peak for pk, peak in table_peaks.items() if pk.startswith(layout.CLAIM_PK_PREFIX)}
    ours["keys"]["claims"] = {"keys": len(claims), "peak": max(claims.values(), default=0),
                              "total": sum(meter.table_wcu[pk] for pk in claims)}
    ours["index_peaks"] = {f"{index} {key}": peak for (index, key), peak in index_peaks.items()}
    ours["item_writes"] = {f"{pk} / {sk}": n for (pk, sk), n in meter.item_writes.items()}
    stats_item = _stats_item(engine.client(), OUR_TABLE + "-hot")
    ours["stats_item_bytes"] = item_size(stats_item) if stats_item else 0
    ours["adversarial"] = _adversarial(pipeline, stats_pk, rate=min(rate, 400), seconds=adversarial_seconds)
    ours["adversarial"]["item_bytes"] = item_size(_stats_item(engine.client(), OUR_TABLE + "-hot") or {})
    return ours


def _stats_item(client, table):
    items = client.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": f"{layout.STATS_PK_PREFIX}{HOT_LINK}"}},
    )["Items"]
    return items[0] if items else None


def _adversarial(pipeline, stats_pk, rate, seconds):
    """Clicks with forged referrers, each a new 251-character host: the stats item grows to its bound."""
    rng = random.Random(4)

    def host():
        return ".".join("".join(rng.choices(string.ascii_lowercase, k=62)) for _ in range(4))

    before = dict(pipeline.meter.table_wcu_by_second)
    failed_before = pipeline.meter.failed_conditions
    pipeline.run(
        seconds,
        rate,
        lambda second, i: (i % pipeline.containers, visitor_event(HOT_LINK, 0, referrer=f"https://{host()}/")),
    )
    after = pipeline.meter.table_wcu_by_second
    new_seconds = sorted(s for s in after if s not in before)
    per_batch = [after[s][stats_pk] for s in new_seconds]
    return {
        "clicks": rate * seconds,
        "stats_units_per_batch": per_batch,
        "dlq": len(pipeline.dlq),
        "batches": len(new_seconds),
        "failed_conditions": pipeline.meter.failed_conditions - failed_before,
    }


class _Output(logging.Handler):
    """Counts the bytes a handler prints or logs: what CloudWatch Logs would ingest from it."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.bytes = 0

    def emit(self, record):
        self.bytes += len(self.format(record).encode()) + 1

    def write(self, text):
        self.bytes += len(text.encode())
        return len(text)

    def flush(self):
        pass


def sample_recipe(endpoint, table, calls):
    """Real calls of the recipe's handler on the stub; its requests per redirect."""
    seed(endpoint, [HOT_LINK], our_table=OUR_TABLE + "-hot", recipe_table=table)
    module = baseline.load(endpoint, table)
    counter = RequestCounter(baseline.client_of(module))
    event = baseline.to_v1(visitor_event(HOT_LINK, 0))
    output = _Output()
    root = logging.getLogger()
    root.addHandler(output)  # Lambda's Python runtime sends the root logger's records to the log
    try:
        with contextlib.redirect_stdout(output):
            for _ in range(calls):
                module.lambda_handler(event, None)
    finally:
        root.removeHandler(output)
    return {
        "log_bytes_per_redirect": output.bytes / calls,
        "calls": calls,
        "reads_per_redirect": counter.reads / calls,
        "writes_per_redirect": counter.writes / calls,
        "read_units_per_redirect": counter.read_units / calls,
        # A plain UpdateItem of the recipe's small item: 1 unit (AWS's rule; it has no index).
        "write_units_per_redirect": counter.writes / calls,
    }


def measure(ctx):
    """Both sides of the hot-link benchmark: the results record."""
    sizes = ctx.sizes["hot_link"]
    started = time.monotonic()
    ours = simulate(ctx, sizes["rate"], sizes["seconds"], sizes["containers"], sizes["adversarial_seconds"])
    recipe = None
    if baseline.available():
        recipe = sample_recipe(ctx.stub.endpoint, RECIPE_TABLE + "-hot", sizes["recipe_calls"])
    return summarise(ours, recipe, sizes, time.monotonic() - started)


def summarise(ours, recipe, sizes, seconds):
    """The record: what was counted, and the peaks and rates the targets judge."""
    rate = sizes["rate"]
    window = ours["window"]
    keys = ours["keys"]
    peak_reads = max(ours["reads_per_second"], default=0)
    adversarial = ours["adversarial"]
    worst_units = max(adversarial["stats_units_per_batch"], default=0)
    record = {
        "ours": ours,
        "recipe": recipe,
        "rate": rate,
        "seconds": sizes["seconds"],
        "containers": sizes["containers"],
        "elapsed": seconds,
        "peak_reads": peak_reads,
        "peak_read_units": peak_reads * ours["read_units"] / max(ours["reads"], 1),
        "peak_wcu": {
            "counter": keys["counter"]["peak"],
            "stats": keys["stats"]["peak"],
            "claims": keys["claims"]["peak"],
            "index": max(ours["index_peaks"].values(), default=0),
        },
        "bounds": {
            "units_per_batch": worst_units,
            "units_per_second": worst_units / window,
            "item_bytes": adversarial["item_bytes"],
        },
        "transactions": any(op.startswith("Transact") for op in ours["aggregator_ops"]),
    }
    if recipe:
        record["recipe_write_units"] = recipe["write_units_per_redirect"] * rate
        record["recipe_write_over"] = record["recipe_write_units"] / WRITE_LIMIT
        record["recipe_read_units"] = recipe["read_units_per_redirect"] * rate
        record["recipe_read_over"] = record["recipe_read_units"] / READ_LIMIT
    return record


def figures(record):
    """The figures documents quote."""
    peak, bounds = record["peak_wcu"], record["bounds"]
    out = {
        "hot_link.rate": figure(f"{record['rate']:,}", record["rate"], "measured"),
        "hot_link.containers": figure(f"{record['containers']:,}", record["containers"], "measured"),
        "hot_link.counter_wcu_peak": figure(number(peak["counter"], 1), peak["counter"], "measured"),
        "hot_link.stats_wcu_peak": figure(number(peak["stats"], 1), peak["stats"], "measured"),
        "hot_link.index_wcu_peak": figure(number(peak["index"], 1), peak["index"], "measured"),
        "hot_link.bounds_stats_wcu": figure(number(bounds["units_per_second"], 1), bounds["units_per_second"], "measured"),
        "hot_link.dlq": figure(number(record["ours"]["dlq"]), record["ours"]["dlq"], "measured"),
        "hot_link.peak_read_units": figure(number(record["peak_read_units"], 1), record["peak_read_units"], "measured"),
    }
    if record.get("recipe"):
        out["hot_link.recipe_wcu"] = figure(number(record["recipe_write_units"]), record["recipe_write_units"], "measured")
        out["hot_link.recipe_write_over"] = figure(
            times(record["recipe_write_over"], 1), record["recipe_write_over"], "measured"
        )
    return out


def section(record):
    """The report section, from the record."""
    ours, recipe = record["ours"], record["recipe"]
    rate, seconds, containers = record["rate"], record["seconds"], record["containers"]
    window = ours["window"]
    peak_reads, peak_read_units = record["peak_reads"], record["peak_read_units"]
    keys = ours["keys"]
    index_peak = record["peak_wcu"]["index"]
    conflicts_possible = record["transactions"]
    headers = ["Key", "What is written", "Writes", "Units", "Peak units in one second", "Mean units/s", "vs 1,000 WCU/s"]
    rows = []
    for label, what in (("counter", "the link's click counter (sk clicks#<region>)"), ("stats", "the link's stats of the day")):
        k = keys[label]
        rows.append(
            [
                f"`{k['pk']}`",
                what,
                number(sum(n for name, n in ours["item_writes"].items() if name.startswith(k["pk"] + " /"))),
                number(k["total"], 1),
                number(k["peak"], 1),
                number(k["total"] / seconds, 2),
                f"{times(WRITE_LIMIT / k['peak'], 0) if k['peak'] else '∞'} headroom",
            ]
        )
    claims = keys["claims"]
    rows.append(
        [
            f"`{layout.CLAIM_PK_PREFIX}<record identity>` ({number(claims['keys'])} keys)",
            "one claim per stream record (a producer's copy finds it taken)",
            number(claims["keys"]),
            number(claims["total"], 1),
            f"{number(claims['peak'], 1)} on any one",
            number(claims["total"] / seconds, 2),
            f"{times(WRITE_LIMIT / claims['peak'], 0) if claims['peak'] else '∞'} headroom",
        ]
    )
    rows.append(
        [
            "any `by_list` index key",
            "nothing (counters are not projected, and counter items carry no list_pk)",
            "0",
            number(sum(ours["index_peaks"].values()), 1),
            number(index_peak, 1),
            "0",
            "–",
        ]
    )
    if recipe:
        r_units = record["recipe_write_units"]
        rows.append(
            [
                "Recipe: its link's key",
                "click_count + 1 on every redirect",
                f"{number(recipe['writes_per_redirect'] * rate)}/s",
                "",
                number(r_units),
                number(r_units),
                f"{times(record['recipe_write_over'], 1)} over",
            ]
        )
    adversarial = ours["adversarial"]
    worst_units = record["bounds"]["units_per_batch"]
    ops = ", ".join(f"{op} {n:,}" for op, n in sorted(ours["aggregator_ops"].items()))
    how = [
        f"Ours: {ours['redirects']:,} real redirect calls ({rate:,}/s × {seconds} simulated s) round-robin over"
        f" {containers} warm containers (each its own cache and a simulated clock), five kinds of visitors; statuses"
        f" {ours['statuses']}. Link read from DynamoDB Local (in memory).",
        f"Click lines: one log record per container per second, packed by `encode_payload` and put on a Kinesis stream"
        f" (moto, the local stack's): {ours['records']:,} records, {number(ours['record_bytes'] / max(ours['records'], 1))}"
        f" bytes each on average (gzip).",
        f"Batches: `EventSourceMapping` (local_stack) with the template's settings — batching window {window} s,"
        f" BatchSize {ours['settings']['batch_size']}, ParallelizationFactor {ours['settings']['parallelization']},"
        f" {ours['settings']['max_retries']} retries — invoked the real aggregator {ours['invocations']:,} times"
        f" ({ours['batches']:,} batches, {ours['clicks_applied']:,} clicks applied); its DynamoDB requests: {ops}.",
        "Units: DynamoDB Local's consumed capacity for every write (`ReturnConsumedCapacity=INDEXES`, injected by a"
        " botocore hook), added up per partition key and per index key, per simulated second. A batch's writes are"
        " booked to the second its window closes, so the peak second holds a whole window's writes.",
        (
            f"Recipe: {recipe['calls']:,} real calls of its handler (zero-latency stub), counted the same way, times"
            f" {rate:,}/s: it has no cache and no batching."
            if recipe
            else "Recipe: not found, so not measured."
        ),
    ]
    notes = [
        f"Reads: {number(peak_reads)} GetItem in the busiest second ({number(peak_read_units, 1)} read units, "
        f"{times(READ_LIMIT / peak_read_units, 0) if peak_read_units else '∞'} under 3,000), about one per container"
        " per cache window.",
        f"Writes: one UpdateItem per link and one per link-day per shard per window, whatever the click rate. The"
        f" stats item of the day ended at {number(ours['stats_item_bytes'])} bytes, so each of its writes is"
        f" {number(keys['stats']['total'] / max(ours['batches'], 1), 1)} unit(s). Besides, one claim per stream record"
        f" (a log stream's lines of one second, modelled): {number(keys['claims']['keys'])} claims of 1 unit each, every"
        " one on its own key, so they add nothing to any key's rate.",
        f"Bounds: {adversarial['clicks']:,} more clicks, each with a forged 251-character referrer host, filled the stats"
        f" item to its referrer bound ({MAX_REFERRERS}, the rest folded into \"(other)\"): the item is now"
        f" {number(adversarial['item_bytes'])} bytes, and its batch now costs {number(worst_units)} units, i.e."
        f" {number(worst_units / window, 1)} units/s at one batch per {window} s window"
        f" ({'within' if hot_link_bounds(record).met else 'ABOVE'} the {HOT_LINK_WCU} units/s target). Every"
        " write of an item is charged by its larger image, 1 unit per KB, and a failed condition is charged too:"
        f" {adversarial['failed_conditions']} of these {adversarial['batches']} batches first failed their condition"
        " (a full referrer set fails the first attempt's room check) and wrote again. Batches in the DLQ after it:"
        f" {adversarial['dlq']}.",
        "Conflicts: "
        + (
            "the aggregator used a transaction, which DynamoDB can cancel on a hot item."
            if conflicts_possible
            else "none possible — the aggregator makes no transaction (plain conditional UpdateItems, each guarded by the"
            f" shard's high-water mark), so nothing can be cancelled by a concurrent writer; conditions that failed:"
            f" {ours['failed_conditions']}."
        ),
    ]
    if recipe:
        notes.append(
            f"The recipe needs {number(recipe['write_units_per_redirect'] * rate)} write units/s on one key,"
            f" {times(record['recipe_write_over'], 1)} the limit, so DynamoDB throttles it at about 1,000 clicks/s."
        )
    section_ = Section(KEY, TITLE, how, headers, rows, notes, record, record["elapsed"])
    counter_peak, stats_peak = keys["counter"]["peak"], keys["stats"]["peak"]
    section_.headline = [
        [
            f"Hot link ({rate:,} clicks/s, {containers} containers): peak write units/s on the link's keys"
            " (counter / stats / index)",
            f"{number(counter_peak, 1)} / {number(stats_peak, 1)} / {number(index_peak, 1)}",
            number(recipe["write_units_per_redirect"] * rate) if recipe else "–",
            f"ours {times(WRITE_LIMIT / max(counter_peak, stats_peak, 1e-9), 0)} under 1,000"
            + (f"; recipe {times(record['recipe_write_over'], 1)} over" if recipe else ""),
            "measured",
        ],
        [
            "Hot link: read units/s on the link (peak second)",
            number(peak_read_units, 1),
            number(recipe["read_units_per_redirect"] * rate) if recipe else "–",
            f"ours {times(READ_LIMIT / peak_read_units, 0) if peak_read_units else '∞'} under 3,000",
            "measured",
        ],
    ]
    section_.targets = [t.line() for t in evaluate(KEY, record)]
    return section_
