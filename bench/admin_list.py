"""Admin list: a page of links with their counts at 1k, 10k and 100k links, and a burst of 10,000 creates.

List: the admin store's own `store.links.list` (webapp/store/links.py) on DynamoDB Local: one Query per
list shard of the `by_list` index (8, in parallel), merged newest first, then one BatchGetItem
for the page's counter items. Requests, items read and read units come from DynamoDB's own
ScannedCount and ConsumedCapacity. The recipe has no list; a table keyed only on `short_id`
(the recipe's) would need a Scan of every item for the same page, which is the comparison.

Burst: 10,000 links created through the store's `links.create` (one conditional PutItem each, then its
search entries in BatchWriteItem, from 8 threads), with the write units per index key (bench/capacity.py),
to show how the creates spread over the list's 8 index keys.
"""

import time
from concurrent.futures import ThreadPoolExecutor

from aggregator import layout
from bench.capacity import CapacityMeter
from bench.context import put_all
from bench.fixtures import create_our_table, our_item, short_id
from bench.record import figure
from bench.report import Section, ms, number, times
from bench.stats import ratio, summarize
from bench.targets import evaluate
from webapp.store import LIST_INDEX, LIST_SHARDS, Store

KEY = "admin_list"
TITLE = "Admin list and bursts of new links"
TABLE = "bench-admin-list"
PAGE = 50
EPOCH = 1_700_000_000  # created_at of link 0; link n is n seconds later
REGION = "us-east-1"
KEY_WRITE_LIMIT = 1000  # write units per second per index partition key value
STATED_CREATE_RATE = 1000  # creates a second: a 10,000-row import in 10 s


def _created_at(n):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH + n))


def load(client, start, stop, threads=4):
    """BatchWriteItem links [start, stop) in the store's item format from a few threads; returns items per second."""
    began = time.perf_counter()
    chunks = [range(first, min(first + 500, stop)) for first in range(start, stop, 500)]

    def write(chunk):
        put_all(client, TABLE, [our_item(short_id(n), f"https://example.com/page/{n}", _created_at(n)) for n in chunk])

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(write, chunks))
    return (stop - start) / (time.perf_counter() - began)


def count_newest(client, size):
    """Give the newest page's links known click counts (their counter items), as the aggregator would."""
    counts = {}
    for n in range(max(0, size - PAGE), size):
        counts[short_id(n)] = n % 97 + 1
        item = layout.counter_key(short_id(n), REGION) | {"clicks": {"N": str(counts[short_id(n)])}, "bots": {"N": "0"}}
        client.put_item(TableName=TABLE, Item=item)
    return counts


def scan_list(client):
    """The recipe-style list: read every item, sort newest first, keep one page."""
    items, kwargs = [], {"TableName": TABLE}
    while True:
        page = client.scan(**kwargs)
        items.extend(i for i in page["Items"] if i["sk"]["S"] == "link")
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    items.sort(key=lambda item: item["created_at"]["S"], reverse=True)
    return [{"id": i["pk"]["S"]} for i in items[:PAGE]]


def _time(fn, reps, meter, warmup):
    for _ in range(warmup):  # the emulator's JIT and the connection pool warm up first
        fn()
    meter.take_reads()
    samples, page = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        page = fn()
        samples.append(time.perf_counter() - t0)
    requests, items, units = meter.take_reads()
    return {"latency": summarize(samples), "requests": requests / reps, "items_read": items / reps,
            "read_units": units / reps, "page": page}


def measure_list(client, sizes, query_reps, scan_reps, load_budget=180.0, scan_budget=60.0, threads=4):
    """Load up to each size and time both lists there; the top size shrinks if loading would blow the budget."""
    create_our_table(client, TABLE)
    store = Store(TABLE, client=client, regions=[REGION])
    meter = CapacityMeter(client)
    results, load_rates, notes = [], [], []
    loaded, load_spent = 0, 0.0
    try:
        for size, reps in zip(sizes, scan_reps):
            if size > loaded and load_rates:
                projected = (size - loaded) / load_rates[-1]
                if projected > load_budget - load_spent:
                    capped = loaded + int((load_budget - load_spent) * load_rates[-1]) // 10_000 * 10_000
                    notes.append(
                        f"The top size was cut from {size:,} to {capped:,} links: loading at the measured"
                        f" {load_rates[-1]:,.0f} items/s would have taken {projected:,.0f} s more than the"
                        f" {load_budget:,.0f} s loading budget."
                    )
                    size = capped
                    if size <= loaded:
                        break
            if size > loaded:
                t0 = time.monotonic()
                load_rates.append(load(client, loaded, size, threads))
                load_spent += time.monotonic() - t0
                loaded = size
            counts = count_newest(client, size)
            ours = _time(lambda: store.links.list(limit=PAGE)[0], query_reps, meter, warmup=3)
            if results:  # scan time grows with N: keep this size's repetitions inside the scan budget
                previous = results[-1]
                estimate = previous["scan"]["latency"]["median"] * size / previous["n"]
                reps = max(1, min(reps, int(scan_budget / max(estimate, 1e-3))))
            scan = _time(lambda: scan_list(client), reps, meter, warmup=0 if results else 1)
            page = ours.pop("page")
            results.append(
                {
                    "n": size,
                    "ours": ours,
                    "scan": scan,
                    "scan_reps": reps,
                    "newest_ok": page[0]["id"] == short_id(size - 1) == scan.pop("page")[0]["id"],
                    "counts_ok": len(page) == PAGE and all(link["click_count"] == counts.get(link["id"]) for link in page),
                }
            )
    finally:
        meter.close()
    return {"results": results, "load_rates": load_rates, "notes": notes}


def measure_burst(client, creates, threads=8):
    """`creates` links through store.links.create on a fresh table; write units per index key."""
    table = TABLE + "-burst"
    create_our_table(client, table)
    store = Store(table, client=client, regions=[REGION])
    meter = CapacityMeter(client)
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(threads) as pool:
            links = list(pool.map(lambda n: store.links.create(f"https://example.com/import/{n}", created_by="bench"), range(creates)))
        elapsed = time.perf_counter() - started
    finally:
        meter.close()
    per_key = {key: units for (index, key), units in meter.index_wcu.items() if index == LIST_INDEX}
    return {
        "creates": len(links),
        "seconds": elapsed,
        "per_key": dict(sorted(per_key.items())),
        "table_units": sum(meter.table_wcu.values()),
        "index_units": sum(meter.index_wcu.values()),
        # A create is one conditional PutItem of the link (its search entries follow in BatchWriteItem).
        "puts": meter.ops.get("PutItem", 0),
        "max_table_pk_units": max(meter.table_wcu.values(), default=0),
    }


def measure(ctx):
    """Both measurements on DynamoDB Local: the results record."""
    started = time.monotonic()
    client = ctx.dynamodb_local().client(max_pool_connections=16)
    sizes = ctx.sizes["admin"]
    listing = measure_list(client, sizes["sizes"], sizes["query_reps"], sizes["scan_reps"])
    burst = measure_burst(client, sizes["burst"])
    return summarise(listing, burst, sizes["query_reps"], time.monotonic() - started)


def summarise(listing, burst, query_reps, seconds):
    """The record: per-size list costs and the burst's busiest index key, with the bounds the targets use."""
    results = listing["results"]
    per_key = burst["per_key"]
    top_key, top_units = max(per_key.items(), key=lambda kv: kv[1], default=("–", 0))
    share = top_units / max(burst["creates"], 1)
    return {
        "results": results,
        "load_rates": listing["load_rates"],
        "notes": listing["notes"],
        "burst": burst,
        "query_reps": query_reps,
        "seconds": seconds,
        "page": PAGE,
        "index": LIST_INDEX,
        # Each shard's Query reads at most a page and one more (to know whether the shard has more), and the
        # BatchGetItem at most the page's counter items.
        "item_bound": LIST_SHARDS * (PAGE + 1) + PAGE,
        "flatness": ratio(results[-1]["ours"]["latency"]["median"], results[0]["ours"]["latency"]["median"]),
        "top_key": top_key,
        "share": share,
        "stated_rate": STATED_CREATE_RATE,
        "at_stated": share * STATED_CREATE_RATE,
        "max_rate": KEY_WRITE_LIMIT / share if share else None,
    }


def figures(record):
    """The figures documents quote, at the largest size measured."""
    last = record["results"][-1]
    ours, scan = last["ours"], last["scan"]
    return {
        "admin_list.links": figure(f"{last['n']:,}", last["n"], "measured"),
        "admin_list.requests": figure(number(ours["requests"]), ours["requests"], "measured"),
        "admin_list.items_read": figure(number(ours["items_read"]), ours["items_read"], "measured"),
        "admin_list.ms": figure(ms(ours["latency"]["median"]), ours["latency"]["median"], "measured"),
        "admin_list.scan_ms": figure(ms(scan["latency"]["median"]), scan["latency"]["median"], "measured"),
        "admin_list.scan_items": figure(number(scan["items_read"]), scan["items_read"], "measured"),
        "admin_list.burst_creates": figure(f"{record['burst']['creates']:,}", record["burst"]["creates"], "measured"),
        "admin_list.burst_key_wcu": figure(number(record["at_stated"]), record["at_stated"], "modelled"),
    }


def section(record):
    """The report section, from the record."""
    results, burst, query_reps = record["results"], record["burst"], record["query_reps"]
    headers = ["Links (N)", "Ours: median", "Ours: p99", "Ours: requests", "Ours: items read", "Ours: read units",
               "Counts shown", "Scan of the same table: median", "Scan: items read", "Scan: read units",
               "Ours ÷ scan (latency)"]
    rows = [
        [
            f"{r['n']:,}",
            ms(r["ours"]["latency"]["median"]),
            ms(r["ours"]["latency"]["p99"]),
            number(r["ours"]["requests"]),
            number(r["ours"]["items_read"]),
            number(r["ours"]["read_units"], 1),
            "yes" if r["counts_ok"] else "NO",
            ms(r["scan"]["latency"]["median"]),
            number(r["scan"]["items_read"]),
            number(r["scan"]["read_units"], 1),
            times(ratio(r["ours"]["latency"]["median"], r["scan"]["latency"]["median"]), 3),
        ]
        for r in results
    ]
    first, last = results[0], results[-1]
    requests = sorted({r["ours"]["requests"] for r in results})
    items = [r["ours"]["items_read"] for r in results]
    bound, flatness = record["item_bound"], record["flatness"]
    per_key, top_key, share = burst["per_key"], record["top_key"], record["share"]
    at_stated = record["at_stated"]
    max_rate = record["max_rate"] if record["max_rate"] is not None else float("inf")
    burst_rows = [[f"`{key}`", number(units), f"{units / max(burst['creates'], 1):.1%}",
                   number(units / max(burst["creates"], 1) * STATED_CREATE_RATE)] for key, units in per_key.items()]
    how = [
        "Links are written into DynamoDB Local (in memory) with BatchWriteItem in the admin store's item format"
        " (`list_pk` one of `links#0`..`links#7` by crc32 of the id); link n is created n seconds after link 0."
        f" Loading ran at {', '.join(f'{rate:,.0f}' for rate in record['load_rates'])} items/s. The newest page's"
        " links get counter items with known counts, as the aggregator writes them.",
        f"Ours: `store.links.list(limit={PAGE})`, the first page, {query_reps} timed calls per size after"
        " a warm-up; a page must show the newest link first and every count right (\"Counts shown\").",
        "Scan (written by this benchmark; the recipe has no list, so nothing of the recipe is measured here): Scan"
        " every page of the same table, sort by created_at, keep the newest 50: what a table keyed only on"
        " `short_id` (the recipe's) would need for the same page. "
        + ", ".join(f"{r['scan_reps']} timed runs at {r['n']:,}" for r in results) + ".",
        "Requests, items read and read units are DynamoDB Local's own counts (ScannedCount, ConsumedCapacity),"
        " asked for by a botocore hook on every Query, Scan and BatchGetItem.",
        _burst_how(burst),
    ]
    notes = list(record["notes"]) + [
        f"Bounded: a page is {', '.join(number(r) for r in requests)} requests ({LIST_SHARDS} Queries + 1 BatchGetItem)"
        f" and reads {', '.join(number(i) for i in items)} items at the sizes above, at most {bound} whatever N;"
        f" ours at {last['n']:,} links takes {times(flatness)} its time at {first['n']:,}. The scan reads all N.",
        "Both lists return the same newest link at every size: "
        + ("yes." if all(r["newest_ok"] for r in results) else "NO — check the data."),
        f"Burst: each create wrote {number(burst['table_units'] / max(burst['creates'], 1), 2)} table unit(s) on its own"
        f" key and {number(burst['index_units'] / max(burst['creates'], 1), 2)} index unit(s). The busiest index key,"
        f" `{top_key}`, took {share:.1%} of the creates: at {STATED_CREATE_RATE:,} creates/s (a 10,000-row import in"
        f" 10 s) that is {number(at_stated)} write units/s against its 1,000, and the index takes up to"
        f" {number(max_rate)} creates/s before any key reaches its limit. With one shared key (the old `links`)"
        " every create landed on it: 1,000 creates/s was the ceiling.",
    ]
    section_ = Section(KEY, TITLE, how, headers, rows, notes, record, record["seconds"])
    section_.extra_tables = [
        (f"Burst of {burst['creates']:,} creates: write units per `{LIST_INDEX}` key",
         ["Index key", "Write units", "Share of creates", f"Units/s at {STATED_CREATE_RATE:,} creates/s"], burst_rows)
    ]
    section_.headline = [
        [
            f"Admin list, first page at {last['n']:,} links (median)",
            f"{ms(last['ours']['latency']['median'])}; {number(last['ours']['requests'])} requests,"
            f" {number(last['ours']['items_read'])} items",
            f"no list; a Scan of the same table (what a recipe-style list costs; the recipe has none):"
            f" {ms(last['scan']['latency']['median'])}, {number(last['scan']['items_read'])} items",
            f"{times(ratio(last['ours']['latency']['median'], last['scan']['latency']['median']), 3)} that Scan's time",
            "measured",
        ],
        [
            f"Burst of {burst['creates']:,} creates: busiest index key at {STATED_CREATE_RATE:,} creates/s",
            f"{number(at_stated)} units/s ({share:.1%} of creates)",
            "no list (Scan)",
            f"{times(KEY_WRITE_LIMIT / at_stated if at_stated else float('inf'), 1)} under 1,000",
            "modelled (measured share × a stated rate)",
        ],
    ]
    section_.targets = [t.line() for t in evaluate(KEY, record)]
    return section_


def _burst_how(burst):
    """How the burst was written."""
    return (f"Burst: {burst['creates']:,} links created through `store.links.create` (random ids, one conditional"
            f" PutItem each, then the link's search entries in BatchWriteItem) from 8 threads in {burst['seconds']:,.1f} s"
            f" on DynamoDB Local; write units per `{LIST_INDEX}` key from `ReturnConsumedCapacity=INDEXES`.")
