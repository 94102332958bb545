"""Analytics (issue 18): what unique visitors cost to write, what the home dashboard costs to read, and
how close the visitor sketch counts.

1. Writes: the whole click pipeline (bench/simulation.py: real redirect calls, the click stream,
   the event source mapping, the real aggregator on DynamoDB Local, units as DynamoDB Local reports
   them), with uniques on (the redirect has the day's salt, so every click line carries "v") and off
   (no salt table for the redirect: no "v"), spread thin (every click a different link, one batch)
   and on a hot link (one link, many clicks a batch, 50 returning visitors: the exact set), and a
   hot link whose day is past sketch.EXACT_MAX visitors (every click a new visitor: registers).
2. The home dashboard (webapp.dashboard.summary over webapp.store.rollups) at a few links and at
   100,000: requests and wall time for 30 days. The rollups are written with the aggregator's own
   update (aggregator.writes.apply_item, which keeps the top links with aggregator.rollups), one
   click per link per day on each of the 60 days the page reads, one rollup per stream shard and
   day: not through the stream, which would take 6 million redirects.
3. The sketch (uniques.sketch) on seeded random 64-bit hashes: its count at 100, 10,000 and
   1,000,000 visitors, alone and merged from several overlapping parts in random order, and the
   bytes an item stores for it.
"""

import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from aggregator import layout, writes
from aggregator.clicks import Click
from bench.backends import client_for
from bench.capacity import item_size
from bench.context import OUR_TABLE, put_all
from bench.fixtures import create_our_table, our_item, short_id
from bench.record import figure
from bench.report import Section, ms, number
from bench.simulation import SimulatedPipeline
from bench.targets import HOT_ITEMS_PER_BATCH, evaluate
from local_stack.click_stream import shard_count
from local_stack.http_api import to_event
from uniques import sketch

KEY = "analytics"
TITLE = "Analytics: unique visitors and the home dashboard"
USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
HOT_ID = "hot0001"
RETURNING = 50  # the hot link's returning visitors: under EXACT_MAX, so its day keeps the exact set
REGION = "us-east-1"
DASHBOARD_DAYS = 30
TOP_LINK_WINDOWS = (7, 30)  # as the home page asks
SKETCH_PARTS = 8  # shards, regions or days merged into one count


# --- 1. Writes ---------------------------------------------------------------------------------
def _event(link, visitor):
    """A person's GET of `link` from address number `visitor` (a distinct address is a distinct visitor)."""
    address = f"10.{visitor >> 16 & 255}.{visitor >> 8 & 255}.{visitor & 255}"
    headers = [("Host", "sho.rt"), ("User-Agent", USER_AGENT), ("Referer", "https://news.example/")]
    return to_event("GET", f"/{link}", headers, source_ip=address)


def _pipeline(ctx, name, ids, containers, uniques):
    engine = ctx.dynamodb_local()
    table = f"{OUR_TABLE}-an-{name}"
    stub = client_for(ctx.stub.endpoint)
    create_our_table(stub, table)
    put_all(stub, table, [our_item(i, f"https://example.com/{i}") for i in ids])
    create_our_table(engine.client(), table)
    pipeline = SimulatedPipeline(ctx, ctx.stub.endpoint, table, engine.endpoint, table, containers)
    if not uniques:
        pipeline.redirect.SALT_TABLE_NAME = None  # a redirect without a salt: click lines carry no "v"
    return pipeline, engine, table


def _case(pipeline, engine, table, clicks):
    """One run's write figures, and whether its items hold visitors as a set or as registers."""
    s = pipeline.summary()
    batches = max(s["batches"], 1)
    items = _scan(engine.client(), table)
    stats = [item for item in items if item["pk"]["S"].startswith("stats#")]
    rollups = [item for item in items if item["pk"]["S"].startswith("rollup#")]
    item_units = s["write_units_by_op"].get("UpdateItem", 0.0)
    claim_units = s["write_units_by_op"].get("PutItem", 0.0)
    return {
        "clicks": clicks,
        "clicks_applied": s["clicks_applied"],
        "dlq": s["dlq"],
        "batches": s["batches"],
        "records": s["records"],
        "item_writes": s["aggregator_ops"].get("UpdateItem", 0),
        "claims": s["aggregator_ops"].get("PutItem", 0),
        "item_units": item_units,
        "claim_units": claim_units,
        "units_per_click": (item_units + claim_units) / clicks,
        "item_units_per_batch": item_units / batches,
        "item_writes_per_batch": s["aggregator_ops"].get("UpdateItem", 0) / batches,
        "read_units": s["read_units_aggregator"],
        "failed_conditions": s["failed_conditions"],
        "units_estimated": s["units_estimated"],
        "hashed_lines": pipeline.hashed_lines,
        "stats_items": len(stats),
        "sketch_items": sum("uvh" in item for item in stats + rollups),
        "set_items": sum("uv" in item for item in stats + rollups),
        "largest_stats_bytes": max((item_size(item) for item in stats), default=0),
        "largest_rollup_bytes": max((item_size(item) for item in rollups), default=0),
    }


def _scan(client, table):
    items, start = [], None
    while True:
        page = client.scan(TableName=table, **({"ExclusiveStartKey": start} if start else {}))
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def _count_hashed(pipeline):
    """Count the click lines that carry "v", as they are published (the records' content is not kept)."""
    pipeline.hashed_lines = 0
    real = pipeline._publish

    def publish():
        pipeline.hashed_lines += sum('"v":' in line for sink in pipeline.sinks for line in sink.lines)
        real()

    pipeline._publish = publish


def run_thin(ctx, clicks, containers, uniques):
    """`clicks` links, one click each by a different visitor, in one batch."""
    ids = [f"an{'u' if uniques else 'n'}{n:05d}" for n in range(clicks)]
    pipeline, engine, table = _pipeline(ctx, f"thin-{'on' if uniques else 'off'}", ids, containers, uniques)
    _count_hashed(pipeline)
    events = [_event(link, n) for n, link in enumerate(ids)]
    pipeline.run(1, clicks, lambda second, i: (i % containers, events[i]))
    return _case(pipeline, engine, table, clicks)


def run_hot(ctx, rate, seconds, containers, uniques, visitors):
    """One link at `rate` clicks a second for `seconds`; `visitors` distinct ones (None: every click a new one)."""
    name = f"hot-{'sketch' if visitors is None else 'on' if uniques else 'off'}"
    pipeline, engine, table = _pipeline(ctx, name, [HOT_ID], containers, uniques)
    _count_hashed(pipeline)

    def pick(second, i):
        n = second * rate + i
        return i % containers, _event(HOT_ID, n if visitors is None else n % visitors)

    pipeline.run(seconds, rate, pick)
    result = _case(pipeline, engine, table, rate * seconds)
    result.update(rate=rate, seconds=seconds, visitors=visitors or rate * seconds)
    return result


def measure_writes(ctx, sizes):
    thin, hot = sizes["thin_clicks"], sizes["hot"]
    cases = {
        "thin_on": run_thin(ctx, thin, sizes["containers"], True),
        "thin_off": run_thin(ctx, thin, sizes["containers"], False),
        "hot_on": run_hot(ctx, hot["rate"], hot["seconds"], hot["containers"], True, RETURNING),
        "hot_off": run_hot(ctx, hot["rate"], hot["seconds"], hot["containers"], False, RETURNING),
        "hot_sketch": run_hot(ctx, hot["rate"], hot["seconds"], hot["containers"], True, None),
    }
    cases["extra_thin"] = cases["thin_on"]["units_per_click"] - cases["thin_off"]["units_per_click"]
    cases["extra_hot"] = cases["hot_on"]["units_per_click"] - cases["hot_off"]["units_per_click"]
    return cases


# --- 2. The home dashboard ---------------------------------------------------------------------
def _put_links(endpoint, table, ids, threads=4):
    """The link items (with titles), a few BatchWriteItem streams at once."""
    def put(chunk):
        items = []
        for link in chunk:
            item = our_item(link, f"https://example.com/{link}")
            item["title"] = {"S": f"Title of {link}"}
            items.append(item)
        put_all(client_for(endpoint), table, items)

    chunks = [ids[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(put, chunks))


def _write_rollups(client, table, ids, days, shards, rng):
    """Each link clicked once a day by a new visitor, each day's clicks split over the shards; each shard's
    rollup of the day written by the aggregator's own update. Returns the rollup items written."""
    today = datetime.now(timezone.utc).date()
    written = 0
    for offset in range(days):
        day = (today - timedelta(days=offset)).isoformat()
        for shard in range(shards):
            mark = layout.mark_name("bench", f"shardId-{shard:012d}")
            mine = ids[shard::shards]
            clicks = [
                Click(sequence=layout.encode_sequence(str(1000 + n)), short_id=link, day=day, at=f"{day}T12:00:00Z",
                      device="Desktop", referrer="news.example", country=None,
                      visitor=rng.getrandbits(64).to_bytes(8, "big"), browser="Chrome", os="Windows")
                for n, link in enumerate(mine)
            ]
            outcome = writes.apply_item(client, table, ("rollup", day, mark), clicks, mark, REGION, read={},
                                        links={link: 1 for link in mine})
            if outcome != writes.APPLIED:
                raise RuntimeError(f"the rollup of {day} shard {shard} was not applied: {outcome}")
            written += 1
    return written


def run_dashboard(ctx, links, reps):
    """A table with `links` links and their rollups; the home dashboard's requests and wall time."""
    from flask import Flask

    from webapp.dashboard.summary import summary
    from webapp.store import Store

    engine = ctx.dynamodb_local()
    table = f"{OUR_TABLE}-an-dash-{links}"
    client = engine.client()
    create_our_table(client, table)
    ids = [short_id(n) for n in range(links)]
    started = time.monotonic()
    _put_links(engine.endpoint, table, ids)
    links_seconds = time.monotonic() - started
    shards = shard_count()
    started = time.monotonic()
    rollups = _write_rollups(client, table, ids, 2 * DASHBOARD_DAYS, shards, random.Random(links))
    rollup_seconds = time.monotonic() - started
    app = Flask("bench_dashboard")
    app.extensions["store"] = Store(table, client=client_for(engine.endpoint), regions=[REGION])
    wall, requests = [], set()
    with app.app_context():
        summary(DASHBOARD_DAYS, top_link_windows=TOP_LINK_WINDOWS)  # warm-up: the client's connections
        for _ in range(reps):
            t0 = time.perf_counter()
            result = summary(DASHBOARD_DAYS, top_link_windows=TOP_LINK_WINDOWS)
            wall.append(time.perf_counter() - t0)
            requests.add(result["requests"])
    top = result["top_links_by_days"][DASHBOARD_DAYS]
    return {
        "links": links,
        "shards": shards,
        "rollup_items": rollups,
        "requests": sorted(requests),
        "median_seconds": statistics.median(wall),
        "max_seconds": max(wall),
        "reps": reps,
        "top_links": len(top),
        "titled": sum(row["title"] is not None for row in top),
        "fill_links_seconds": links_seconds,
        "fill_rollups_seconds": rollup_seconds,
    }


# --- 3. The sketch -----------------------------------------------------------------------------
def _item(hashes):
    """What an item stores for these hashes: (set, None) up to EXACT_MAX, else (None, encoded registers)."""
    if len(hashes) <= sketch.EXACT_MAX:
        return set(hashes), None
    return None, sketch.encode(sketch.add(sketch.new_registers(), hashes))


def _stored_bytes(item):
    exact, blob = item
    return len(blob) if blob is not None else sketch.HASH_BYTES * len(exact)


def run_sketch(visitors, seed):
    """The count of `visitors` seeded random hashes, in one item and merged from SKETCH_PARTS overlapping
    parts (each hash in one or two of them) taken in random order."""
    rng = random.Random(seed)
    hashes = [rng.getrandbits(64).to_bytes(8, "big") for _ in range(visitors)]
    whole = _item(hashes)
    parts = [[] for _ in range(SKETCH_PARTS)]
    for value in hashes:
        for part in rng.sample(range(SKETCH_PARTS), rng.choice((1, 2))):
            parts[part].append(value)
    items = [_item(part) for part in parts]
    rng.shuffle(items)
    one, merged = sketch.count([whole]), sketch.count(items)
    return {
        "visitors": visitors,
        "estimate": one,
        "error": one / visitors - 1,
        "merged_estimate": merged,
        "merged_error": merged / visitors - 1,
        "parts": SKETCH_PARTS,
        "mode": "exact set" if whole[1] is None else "registers",
        "stored_bytes": _stored_bytes(whole),
    }


# --- The record, figures and section -----------------------------------------------------------
def measure(ctx):
    """Every part: the results record."""
    sizes = ctx.sizes["analytics"]
    started = time.monotonic()
    timings = {}
    t0 = time.monotonic()
    sketch_runs = [run_sketch(n, seed=18 + i) for i, n in enumerate(sizes["sketch"])]
    timings["sketch"] = time.monotonic() - t0
    t0 = time.monotonic()
    writes_ = measure_writes(ctx, sizes)
    timings["writes"] = time.monotonic() - t0
    t0 = time.monotonic()
    dashboard = [run_dashboard(ctx, n, sizes["dashboard_reps"]) for n in sizes["dashboard_links"]]
    timings["dashboard"] = time.monotonic() - t0
    return {
        "writes": writes_,
        "dashboard": {"days": DASHBOARD_DAYS, "windows": list(TOP_LINK_WINDOWS), "sizes": dashboard},
        "sketch": {"runs": sketch_runs, "exact_max": sketch.EXACT_MAX},
        "hot_items_per_batch": HOT_ITEMS_PER_BATCH,
        "timings": timings,
        "seconds": time.monotonic() - started,
    }


def _units(value):
    return number(value, 4)


def figures(record):
    """The figures documents quote."""
    w, dash, runs = record["writes"], record["dashboard"]["sizes"], record["sketch"]["runs"]
    out = {}
    for case in ("thin_on", "thin_off", "hot_on", "hot_off"):
        value = w[case]["units_per_click"]
        out[f"analytics.{case}_units_per_click"] = figure(_units(value), value, "measured")
    out["analytics.extra_units_per_click_thin"] = figure(_units(w["extra_thin"]), w["extra_thin"], "measured")
    out["analytics.extra_units_per_click_hot"] = figure(_units(w["extra_hot"]), w["extra_hot"], "measured")
    hot = w["hot_on"]
    out["analytics.hot_item_writes_per_batch"] = figure(
        number(hot["item_writes_per_batch"], 0), hot["item_writes_per_batch"], "measured")
    sk = w["hot_sketch"]
    out["analytics.sketch_units_per_batch"] = figure(number(sk["item_units_per_batch"], 1),
                                                     sk["item_units_per_batch"], "measured")
    out["analytics.sketch_stats_kb"] = figure(f"{number(sk['largest_stats_bytes'] / 1024, 1)} KB",
                                              sk["largest_stats_bytes"], "measured")
    smallest, largest = dash[0], dash[-1]
    out["analytics.dashboard_small_links"] = figure(f"{smallest['links']:,}", smallest["links"], "counted")
    out["analytics.dashboard_small_requests"] = figure(
        ", ".join(str(r) for r in smallest["requests"]), max(smallest["requests"]), "measured")
    out["analytics.dashboard_small_ms"] = figure(ms(smallest["median_seconds"]), smallest["median_seconds"], "measured")
    out["analytics.dashboard_links"] = figure(f"{largest['links']:,}", largest["links"], "counted")
    out["analytics.dashboard_requests"] = figure(
        ", ".join(str(r) for r in largest["requests"]), max(largest["requests"]), "measured")
    out["analytics.dashboard_ms"] = figure(ms(largest["median_seconds"]), largest["median_seconds"], "measured")
    for run in runs:
        key = f"analytics.sketch_error_{run['visitors']}"
        out[key] = figure(f"{run['merged_error']:+.2%}", run["merged_error"], "measured")
        out[f"analytics.sketch_bytes_{run['visitors']}"] = figure(f"{run['stored_bytes']:,} B", run["stored_bytes"],
                                                                  "measured")
    return out


def section(record):
    """The report section, from the record."""
    w, dash, runs = record["writes"], record["dashboard"], record["sketch"]["runs"]
    headers = ["Case", "Clicks", "Batches", "Item writes (per batch)", "Claims", "Item units (per batch)",
               "Claim units", "Units per click", "Lines with a visitor hash", "Items holding a set / registers",
               "Largest item of the link's stats partition (stats or sketch)"]
    labels = {
        "thin_on": "Spread thin, uniques on", "thin_off": "Spread thin, uniques off",
        "hot_on": f"Hot link, uniques on ({RETURNING} returning visitors)", "hot_off": "Hot link, uniques off",
        "hot_sketch": "Hot link past 100 visitors (every click a new one: registers)",
    }
    rows = []
    for case, label in labels.items():
        r = w[case]
        rows.append([
            label, number(r["clicks"]), number(r["batches"]),
            f"{number(r['item_writes'])} ({number(r['item_writes_per_batch'], 1)})", number(r["claims"]),
            f"{number(r['item_units'], 1)} ({number(r['item_units_per_batch'], 1)})", number(r["claim_units"], 1),
            _units(r["units_per_click"]), number(r["hashed_lines"]), f"{r['set_items']} / {r['sketch_items']}",
            f"{number(r['largest_stats_bytes'] / 1024, 1)} KB",
        ])
    dash_rows = [
        [number(d["links"]), number(d["rollup_items"]), ", ".join(str(r) for r in d["requests"]),
         ms(d["median_seconds"]), ms(d["max_seconds"]), f"{d['top_links']} ({d['titled']} titled)",
         f"{number(d['fill_links_seconds'], 1)} s + {number(d['fill_rollups_seconds'], 1)} s"]
        for d in dash["sizes"]
    ]
    sketch_rows = [
        [number(r["visitors"]), r["mode"], number(r["estimate"]), f"{r['error']:+.3%}", number(r["merged_estimate"]),
         f"{r['merged_error']:+.3%}", f"{r['stored_bytes']:,} B"]
        for r in runs
    ]
    thin, hot = w["thin_on"], w["hot_on"]
    how = [
        f"Writes (measured): the click pipeline of bench/simulation.py (real redirect calls, one log record per"
        f" container and second on the click stream, the template's event source mapping, the real aggregator on"
        f" DynamoDB Local; units are DynamoDB Local's consumed capacity, `ReturnConsumedCapacity` on every write)."
        f" Uniques on: the redirect reads the day's salt and every click line carries \"v\"; off: the redirect has"
        f" no salt table, so no line does. Spread thin: {thin['clicks']:,} links clicked once each, each by a"
        f" different address, in one batch. Hot link: one link at {hot['rate']:,} clicks/s for {hot['seconds']}"
        f" simulated s over {w['hot_on']['batches']} batching windows, by {RETURNING} returning visitors (the"
        f" exact set); past 100 visitors: every click a new address, so the link's day and the rollup hold"
        f" registers. Units per click are the item writes' units plus the claims' (one per stream record).",
        f"The home dashboard (measured; the table's content written, not streamed): a DynamoDB Local table with N"
        f" link items (titled) and, for each of the {2 * dash['days']} days the page reads ({dash['days']} and the"
        f" {dash['days']} before), one rollup per stream shard written by the aggregator's own update"
        f" (`aggregator.writes.apply_item`, whose `aggregator.rollups` keeps the top 100 links) for one click per link"
        f" by a new visitor: the items the aggregator writes for that traffic, without sending 6 million redirects"
        f" through the stream. Then `webapp.dashboard.summary({dash['days']}, top_link_windows="
        f"{tuple(dash['windows'])})`, as the home page calls it, timed (median of the runs after one warm-up) and its"
        f" own count of table requests.",
        f"The sketch (measured): seeded random 64-bit hashes through `uniques.sketch`: one item holding them all,"
        f" and {runs[0]['parts']} items (each hash in one or two, as shards, regions or days overlap) counted together"
        f" in random order with `sketch.count`. Stored size: 8 bytes a hash in the exact set, else the encoded"
        f" registers.",
    ]
    notes = [
        f"Uniques cost {_units(w['extra_thin'])} extra units per click spread thin and {_units(w['extra_hot'])} on"
        f" the hot link: a hash is 8 bytes of a stats item that is under 1 KB either way, and the day's rollup is"
        f" one write per batch whatever it holds.",
        f"Past 100 visitors a link-day's registers sit in a sketch item of its own beside the stats item (the"
        f" largest item of the link's stats partition: {number(w['hot_sketch']['largest_stats_bytes'] / 1024, 1)} KB),"
        f" and the rollup's beside the rollup, each written when a batch brings new visitors (here every batch),"
        f" never with every click; a write costs 1 unit per KB of the item: "
        f"{number(w['hot_sketch']['item_units_per_batch'], 1)} item units per batch on average, for"
        f" {number(w['hot_sketch']['item_writes_per_batch'], 1)} item writes per batch ({HOT_ITEMS_PER_BATCH}:"
        f" counter, stats and rollup, and the two sketch items).",
    ]
    failed = w["hot_sketch"]["failed_conditions"]
    if failed:
        notes.append(
            f"Past 100 visitors {failed} first attempt(s) failed their condition: {w['hot_sketch']['item_writes']}"
            f" item writes in {w['hot_sketch']['batches']} batches. Read from the code, not measured apart: a"
            " container that writes an item's first sketch without having read the item (a new item, `seen` None)"
            " keeps no state of it (`aggregator.writes.build_update` returns none), so the next batch's write of"
            " that stats item and of the day's rollup expects no sketch (`attribute_not_exists(uvv)`), fails, and"
            " is written again from the item DynamoDB returns; later batches write each item once."
        )
    section_ = Section(KEY, TITLE, how, headers, rows, notes, record, record["seconds"])
    section_.extra_tables = [
        ("The home dashboard, 30 days", ["Links", "Rollup items", "Requests", "Median", "Slowest",
                                         "Top links (titled)", "Fill: links + rollups"], dash_rows),
        ("The visitor sketch", ["Visitors", "One item holds", "Count, one item", "Error", "Count, merged parts",
                                "Error", "Stored"], sketch_rows),
    ]
    section_.targets = [t.line() for t in evaluate(KEY, record)]
    return section_
