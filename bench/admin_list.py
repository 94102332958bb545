"""Admin list: the first page of links, newest first, at 1k, 10k and 100k links in DynamoDB Local.

Ours is one Query on the `by_list` index (the admin store's `list_links`, when that
module can be imported; otherwise the same Query written out here). The comparison is
what the recipe's table would need for the same page: its only key is `short_id`, so
"newest first" means a Scan of every item, sorted in the client. Items read and read
units come from DynamoDB's own ScannedCount and ConsumedCapacity, which a botocore hook
asks for on every Query and Scan.
"""

import time
from concurrent.futures import ThreadPoolExecutor

from bench.fixtures import create_our_table, our_item, short_id
from bench.report import Section, ms, number, times
from bench.stats import ratio, summarize

TABLE = "bench-admin-list"
PAGE = 50
BATCH = 25  # DynamoDB's maximum items per BatchWriteItem
EPOCH = 1_700_000_000  # created_at of link 0; link n is n seconds later


class CapacityMeter:
    """Asks for ConsumedCapacity on every Query/Scan of a client and adds up what DynamoDB reports."""

    def __init__(self, client):
        self._events = client.meta.events
        self.requests = self.scanned = 0
        self.units = 0.0
        for op in ("Query", "Scan"):
            self._events.register(f"before-parameter-build.dynamodb.{op}", self._ask)
            self._events.register(f"after-call.dynamodb.{op}", self._add)

    def close(self):
        """Stop measuring."""
        for op in ("Query", "Scan"):
            self._events.unregister(f"before-parameter-build.dynamodb.{op}", self._ask)
            self._events.unregister(f"after-call.dynamodb.{op}", self._add)

    def take(self):
        """(requests, items read, read units) since the last take."""
        taken = (self.requests, self.scanned, self.units)
        self.requests = self.scanned = 0
        self.units = 0.0
        return taken

    def _ask(self, params, **_):
        params.setdefault("ReturnConsumedCapacity", "TOTAL")

    def _add(self, parsed, **_):
        self.requests += 1
        self.scanned += parsed.get("ScannedCount", 0)
        self.units += (parsed.get("ConsumedCapacity") or {}).get("CapacityUnits", 0.0)


def _our_lister(client):
    """The admin store's list_links when it imports, else the same Query; and which one it is."""
    try:
        from webapp.store import Store

        store = Store(TABLE, client=client)
        store.list_links  # noqa: B018 - fail here, not mid-benchmark, if it is missing
        return (lambda: store.list_links(limit=PAGE)[0]), "`webapp.store.Store.list_links`"
    except (ImportError, AttributeError, SyntaxError):
        # The admin store is being built alongside; the Query below is the one it makes.
        def query():
            return client.query(
                TableName=TABLE,
                IndexName="by_list",
                KeyConditionExpression="list_pk = :p",
                ExpressionAttributeValues={":p": {"S": "links"}},
                ScanIndexForward=False,
                Limit=PAGE + 1,
            )["Items"][:PAGE]

        return query, "a Query on `by_list` (webapp.store was not importable)"


def scan_list(client):
    """The recipe-style list: read every item, sort newest first, keep one page."""
    items, kwargs = [], {"TableName": TABLE}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    items.sort(key=lambda item: item["created_at"]["S"], reverse=True)
    return items[:PAGE]


def _write_batch(client, first, stop):
    requests = [
        {"PutRequest": {"Item": our_item(short_id(n), f"https://example.com/page/{n}", _created_at(n))}}
        for n in range(first, min(first + BATCH, stop))
    ]
    pending = {TABLE: requests}
    while pending:
        pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None


def _created_at(n):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH + n))


def load(client, start, stop, threads=4):
    """BatchWriteItem links [start, stop) in batches of 25 from a few threads; returns items per second."""
    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda first: _write_batch(client, first, stop), range(start, stop, BATCH)))
    return (stop - start) / (time.perf_counter() - began)


def _time(fn, reps, meter, warmup):
    for _ in range(warmup):  # the emulator's JIT and the connection pool warm up first
        fn()
    meter.take()
    samples = []
    newest = None
    for _ in range(reps):
        t0 = time.perf_counter()
        page = fn()
        samples.append(time.perf_counter() - t0)
        newest = page[0]
    requests, scanned, units = meter.take()
    return {
        "latency": summarize(samples),
        "requests": requests / reps,
        "items_read": scanned / reps,
        "read_units": units / reps,
        "newest": newest,
    }


def run(
    client,
    sizes=(1_000, 10_000, 100_000),
    query_reps=30,
    scan_reps=(10, 5, 3),
    load_budget=180.0,
    scan_budget=60.0,
    threads=4,
):
    """Load up to each size and time both lists there; the top size shrinks if loading would blow the budget."""
    started = time.monotonic()
    create_our_table(client, TABLE)
    meter = CapacityMeter(client)
    lister, lister_name = _our_lister(client)
    results, load_rates, notes = [], [], []
    loaded, load_spent = 0, 0.0
    for size, reps in zip(sizes, scan_reps):
        if size > loaded and load_rates:
            projected = (size - loaded) / load_rates[-1]
            if projected > load_budget - load_spent:
                capped = loaded + int((load_budget - load_spent) * load_rates[-1]) // 10_000 * 10_000
                notes.append(
                    f"The top size was cut from {size:,} to {capped:,} links: loading at the measured"
                    f" {load_rates[-1]:,.0f} items/s would have taken {projected:,.0f} s more, beyond the"
                    f" {load_budget:,.0f} s loading budget that keeps `make bench` under 10 minutes."
                )
                size = capped
                if size <= loaded:
                    break
        if size > loaded:
            t0 = time.monotonic()
            load_rates.append(load(client, loaded, size, threads))
            load_spent += time.monotonic() - t0
            loaded = size
        ours = _time(lister, query_reps, meter, warmup=5)
        if results:
            # Scan time grows with N: keep the repetitions at this size inside the scan budget.
            previous = results[-1]
            estimate = previous["scan"]["latency"]["median"] * size / previous["n"]
            reps = max(1, min(reps, int(scan_budget / max(estimate, 1e-3))))
        # Scans after the first size need no warm-up of their own: the emulator is warm by then.
        scan = _time(lambda: scan_list(client), reps, meter, warmup=0 if results else 2)
        newest_id = short_id(size - 1)
        results.append(
            {
                "n": size,
                "ours": ours,
                "scan": scan,
                "scan_reps": reps,
                "newest_ok": _id_of(ours["newest"]) == newest_id == _id_of(scan["newest"]),
            }
        )
    meter.close()
    return _section(results, lister_name, load_rates, query_reps, threads, notes, time.monotonic() - started)


def _id_of(item):
    if item is None:
        return None
    value = item.get("id") or item.get("pk")
    return value["S"] if isinstance(value, dict) else value


def _section(results, lister_name, load_rates, query_reps, threads, notes, seconds):
    headers = [
        "Links (N)",
        "Ours: median",
        "Ours: p99",
        "Ours: items read",
        "Ours: read units",
        "Scan list: median",
        "Scan list: items read",
        "Scan list: read units",
        "Scan requests",
        "Ours ÷ scan (latency)",
    ]
    rows = []
    for r in results:
        rows.append(
            [
                f"{r['n']:,}",
                ms(r["ours"]["latency"]["median"]),
                ms(r["ours"]["latency"]["p99"]),
                number(r["ours"]["items_read"]),
                number(r["ours"]["read_units"], 1),
                ms(r["scan"]["latency"]["median"]),
                number(r["scan"]["items_read"]),
                number(r["scan"]["read_units"], 1),
                number(r["scan"]["requests"]),
                times(ratio(r["ours"]["latency"]["median"], r["scan"]["latency"]["median"]), 3),
            ]
        )
    first, last = results[0], results[-1]
    flatness = ratio(last["ours"]["latency"]["median"], first["ours"]["latency"]["median"])
    data = {"results": results, "flatness": flatness, "top": last["n"], "lister": lister_name}
    how = [
        f"Links are written straight into DynamoDB Local (in memory) with BatchWriteItem, {BATCH} per call from"
        f" {threads} threads, in the admin store's item format; link n is created n seconds after link 0."
        " Loading ran at"
        f" {', '.join(f'{rate:,.0f}' for rate in load_rates)} items/s.",
        f"Ours: {lister_name}, first page of {PAGE}, {query_reps} timed calls per size after a warm-up.",
        f"Scan list: Scan every page of the table, sort by created_at, keep the newest {PAGE}: what a table keyed"
        " only on `short_id` (the recipe's) must do for the same page. "
        + ", ".join(f"{r['scan_reps']} timed runs at {r['n']:,}" for r in results)
        + ".",
        "Items read and read units are DynamoDB Local's own ScannedCount and ConsumedCapacity (asked for by a"
        " `before-parameter-build` hook, added up by an `after-call` hook).",
    ]
    notes = list(notes) + [
        f"Flatness: ours at {last['n']:,} links takes {times(flatness)} its time at {first['n']:,}"
        f" and reads {number(last['ours']['items_read'])} items either way; the scan reads every item, so its time"
        " and read units grow with N.",
        "Both lists return the same newest link at every size: "
        + ("yes." if all(r["newest_ok"] for r in results) else "NO — check the data."),
    ]
    return Section("admin_list", "4. Admin list", how, headers, rows, notes, data, seconds)
