"""Search and filters at 100,000 links, and the busiest index key of a 10,000-link import.

Search: links are written into DynamoDB Local (in memory) in the admin store's own item format,
each with the index entries `webapp/store/link_index.entries` gives it, as the store writes them.
Most links share common words (www, example, com, blog, post) and the tag "blog"; in each of four
groups only MATCHES links match (a rare title word, tag and owner; disabled; expired; archived),
spread from the oldest to the newest. Each search and filter runs through the store's own
`store.link_search.find` (webapp/store/link_search.py); requests, items read and read units are
DynamoDB Local's own counts (ScannedCount, ConsumedCapacity) from a botocore hook (bench/capacity.py).

Busiest key: a pure model. 10,000 links as an import makes them (random ids, all on
www.example.com, the company's name in every title, one tag), their entries from link_index,
each entry charged as a standard write (1 unit per KB: the store puts a new link's entries with
BatchWriteItem), over the 10 s that 1,000 links a second takes.
"""

import math
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from bench.capacity import CapacityMeter, item_size
from bench.context import put_all
from bench.fixtures import create_our_table
from bench.record import figure
from bench.report import Section, ms, number, times
from bench.stats import summarize
from bench.targets import evaluate
from webapp.link_rules import ID_ALPHABET
from webapp.store import Store, link_index, list_shard
from webapp.store.link_search import READ_FACTOR, parse_query
from webapp.store.table import _marshal

KEY = "search"
TITLE = "Search and filters"
TABLE = "bench-search"
EPOCH = 1_700_000_000  # created_at of link 0; link n is n seconds later
REGION = "us-east-1"
PAGE = 20
MATCHES = 3
OWNER, RARE_WORD, RARE_TAG = "carol", "zebra", "rare"
FUTURE, PAST = "2099-01-01T00:00:00Z", "2024-01-01T00:00:00Z"
GROUPS = ("search", "disabled", "expired", "archived")
IMPORT_LINKS, IMPORT_RATE = 10_000, 1_000
KEY_WRITE_LIMIT = 1000  # write units per second per partition key value
# (name, request arguments, the group whose MATCHES links it must find, or None for a full first page)
QUERIES = (
    ("word", {"q": RARE_WORD}, "search"),
    ("word prefix", {"q": RARE_WORD[:3]}, "search"),
    ("two words", {"q": f"{RARE_WORD} crossing"}, "search"),
    ("tag", {"tag": RARE_TAG}, "search"),
    ("mine", {"mine": "1"}, "search"),
    ("word + tag + mine", {"q": RARE_WORD, "tag": RARE_TAG, "mine": "1"}, "search"),
    ("disabled", {"status": "disabled"}, "disabled"),
    ("expired", {"status": "expired"}, "expired"),
    ("archived", {"status": "archived"}, "archived"),
    ("word + archived", {"q": RARE_WORD, "status": "archived"}, None),
    ("active, first page", {"status": "active"}, "page"),
    ("common word, first page", {"q": "example"}, "page"),
)


def link_id(n):
    """The n-th benchmark link's id."""
    return f"s{n:06d}"


def _created_at(n):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH + n))


def group_members(size):
    """{group: the MATCHES link numbers in it}, spread from old to new and apart from each other."""
    return {group: [i * size // MATCHES + 11 * g + 5 for i in range(MATCHES)] for g, group in enumerate(GROUPS)}


def link_item(n, group=None):
    """Link n as the store writes it: most share the common words; a group's links differ as it says."""
    short_id, created_at = link_id(n), _created_at(n)
    item = {
        "pk": short_id, "sk": "link", "list_pk": list_shard(short_id), "list_sk": f"{created_at}#{short_id}",
        "created_at": created_at, "created_by": "bench", "url": f"https://www.example.com/blog/{n}",
        "title": f"Post {n}", "tags": ["blog"], "is_active": True, "expires_at": FUTURE, "version": 1,
    }
    if group == "search":
        item.update(title=f"Zebra crossing {n}", tags=["blog", RARE_TAG], created_by=OWNER)
    elif group == "disabled":
        item["is_active"] = False
    elif group == "expired":
        item["expires_at"] = PAST
    elif group == "archived":
        item.update(archived=True, list_pk=list_shard(short_id, archived=True))
    return item


def population(start, stop, size):
    """The stored items (links and their index entries) of links [start, stop) of a table of `size` links."""
    groups = {n: group for group, members in group_members(size).items() for n in members}
    for n in range(start, stop):
        item = link_item(n, groups.get(n))
        yield item
        yield from link_index.entries(item)


def load(client, table, start, stop, size, threads=4):
    """BatchWriteItem links [start, stop) with their entries from a few threads; returns items per second."""
    began = time.perf_counter()
    chunks = [range(first, min(first + 200, stop)) for first in range(start, stop, 200)]

    def write(chunk):
        items = [_marshal(item) for item in population(chunk.start, chunk.stop, size)]
        put_all(client, table, items)
        return len(items)

    with ThreadPoolExecutor(threads) as pool:
        written = sum(pool.map(write, chunks))
    # The meter (if any) counts reads only from here on.
    return written / (time.perf_counter() - began), written


def expected(size):
    """{group: the ids a filter must find, newest first}."""
    return {group: [link_id(n) for n in sorted(members, reverse=True)] for group, members in group_members(size).items()}


def run_query(store, meter, args, reps):
    """One query `reps` times: its results, requests, items read and read units per call, latency."""
    query = parse_query(args, OWNER)
    store.link_search.find(query, PAGE)  # warm-up
    meter.take_reads()
    samples, page, cursor = [], [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        page, cursor = store.link_search.find(query, PAGE)
        samples.append(time.perf_counter() - t0)
    requests, items, units = meter.take_reads()
    return {"ids": [link["id"] for link in page], "cursor": cursor is not None, "latency": summarize(samples),
            "requests": requests / reps, "items_read": items / reps, "read_units": units / reps}


def measure_sizes(client, sizes, reps):
    """Load up to each size and run every query there."""
    meter = CapacityMeter(client)
    results, load_rates, items_written = [], [], 0
    try:
        for size in sizes:
            # A table per size: the groups sit at positions that depend on the size.
            table = f"{TABLE}-{size}"
            create_our_table(client, table)
            store = Store(table, client=client, regions=[REGION])
            rate, items_written = load(client, table, 0, size, size)
            load_rates.append(rate)
            want = expected(size)
            queries = {}
            for name, args, group in QUERIES:
                result = run_query(store, meter, args, reps)
                result["three"] = group in GROUPS  # a query with exactly MATCHES results
                if group == "page":
                    result["ok"] = len(result["ids"]) == PAGE
                elif group is None:
                    result["ok"] = result["ids"] == []
                else:
                    result["ok"] = result["ids"] == want[group] and not result["cursor"]
                queries[name] = result
            results.append({"n": size, "queries": queries})
    finally:
        meter.close()
    return {"results": results, "load_rates": load_rates, "items_written": items_written}


def import_links(count=IMPORT_LINKS, rate=IMPORT_RATE, seed=16):
    """The link items a `count`-row import makes at `rate` links a second (random ids, one company's site)."""
    rng = random.Random(seed)
    products = ("rocket skates", "anvil", "giant magnet", "earthquake pills", "jet bike")
    for n in range(count):
        short_id = "".join(rng.choice(ID_ALPHABET) for _ in range(7))
        product = products[n % len(products)]
        created_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH + n // rate))
        yield {
            "pk": short_id, "sk": "link", "list_pk": list_shard(short_id), "list_sk": f"{created_at}#{short_id}",
            "created_at": created_at, "created_by": "importer", "is_active": True, "version": 1,
            "url": f"https://www.example.com/products/{product.replace(' ', '-')}/{n}?utm_source=newsletter",
            "title": f"Example Corp {product} {n}", "tags": ["spring launch"], "expires_at": FUTURE,
        }


def busiest_key(count=IMPORT_LINKS, rate=IMPORT_RATE):
    """The model: write units per second on each index key while `count` links are imported at `rate` a second."""
    units, entries = Counter(), 0
    for item in import_links(count, rate):
        for entry in link_index.entries(item):
            units[entry["pk"]] += math.ceil(item_size(_marshal(entry)) / 1024)  # a standard write: 1 per KB
            entries += 1
    seconds = count / rate
    top_key, top_units = units.most_common(1)[0]
    bucket = top_key.rpartition("#")[0]
    unsharded = sum(value for key, value in units.items() if key.rpartition("#")[0] == bucket)
    return {
        "links": count, "rate": rate, "seconds": seconds, "entries_per_link": entries / count, "keys": len(units),
        "top_key": top_key, "top_wcu_per_second": top_units / seconds,
        "unsharded_wcu_per_second": unsharded / seconds,
        "top": [[key, value / seconds] for key, value in units.most_common(5)],
    }


def measure(ctx):
    """Both parts: the results record."""
    started = time.monotonic()
    sizes = ctx.sizes["search"]
    client = ctx.dynamodb_local().client(max_pool_connections=16)
    measured = measure_sizes(client, sizes["sizes"], sizes["reps"])
    model = busiest_key(sizes.get("import_links", IMPORT_LINKS))
    return {**measured, "model": model, "page": PAGE, "matches": MATCHES, "shards": link_index.SHARDS,
            "read_factor": READ_FACTOR, "reps": sizes["reps"], "seconds": time.monotonic() - started}


def figures(record):
    """The figures documents quote, at the largest size measured."""
    last = record["results"][-1]
    queries = last["queries"]
    model = record["model"]
    matched = [q for q in queries.values() if q["three"]]
    worst = max(q["requests"] for q in matched)
    return {
        "search.links": figure(f"{last['n']:,}", last["n"], "measured"),
        "search.word_requests": figure(number(queries["word"]["requests"]), queries["word"]["requests"], "measured"),
        "search.word_items": figure(number(queries["word"]["items_read"]), queries["word"]["items_read"], "measured"),
        "search.word_ms": figure(ms(queries["word"]["latency"]["median"]), queries["word"]["latency"]["median"], "measured"),
        "search.max_filter_requests": figure(number(worst), worst, "measured"),
        "search.busiest_key_wcu": figure(number(model["top_wcu_per_second"]), model["top_wcu_per_second"], "modelled"),
        "search.import_links": figure(f"{model['links']:,}", model["links"], "modelled"),
    }


def section(record):
    """The report section, from the record."""
    results, model = record["results"], record["model"]
    names = [name for name, _, _ in QUERIES]
    headers = ["Search or filter", "Arguments"]
    for r in results:
        headers += [f"{r['n']:,} links: requests", "items read", "read units", "median"]
    headers.append("Right results")
    args_of = {name: args for name, args, _ in QUERIES}
    rows = []
    for name in names:
        row = [name, "`" + "&".join(f"{k}={v}" for k, v in args_of[name].items()) + "`"]
        for r in results:
            q = r["queries"][name]
            row += [number(q["requests"]), number(q["items_read"]), number(q["read_units"], 1), ms(q["latency"]["median"])]
        row.append("yes" if all(r["queries"][name]["ok"] for r in results) else "NO")
        rows.append(row)
    last = results[-1]
    top_rows = [[f"`{key}`", number(units, 1)] for key, units in model["top"]]
    how = [
        f"Links are written into DynamoDB Local (in memory) with BatchWriteItem, each with the index entries"
        f" `link_index.entries` gives it ({number(record['items_written'] / max(results[-1]['n'], 1), 1)} items a link"
        f" on average, at {', '.join(f'{rate:,.0f}' for rate in record['load_rates'])} items/s). Most links share"
        " www.example.com, the words blog and post, and the tag blog; in each group only"
        f" {record['matches']} links match (title word `{RARE_WORD}`, tag `{RARE_TAG}` and owner `{OWNER}`; disabled;"
        " expired; archived), spread from the oldest to the newest.",
        f"Each query is `store.link_search.find(query, {record['page']})` through the API's own argument parser,"
        f" {record['reps']} timed calls per size after a warm-up. Requests, items read and read units are DynamoDB"
        " Local's own counts (ScannedCount, ConsumedCapacity). \"Right results\": the group's links, newest first,"
        " and no cursor; a full first page for the last two.",
        f"Busiest key (a model, not a measurement): {model['links']:,} links as an import makes them (random ids,"
        " all on www.example.com with the same path words, the company's name in every title, one tag) written at"
        f" {model['rate']:,} links/s, each index entry charged 2 write units per KB (a transactional write)."
        f" {number(model['entries_per_link'], 1)} entries a link over {model['keys']:,} keys.",
    ]
    three = [q for q in last["queries"].values() if q["three"]]
    notes = [
        f"Proportional to the results: a query with {record['matches']} matches among {last['n']:,} links costs"
        f" {number(min(q['requests'] for q in three))} to {number(max(q['requests'] for q in three))} requests"
        f" ({record['shards']} Queries for a word, tag, owner, disabled or expired filter, then one BatchGetItem"
        " of the candidates and one of their counters; for archived, 8 Queries of the by_list keys, whose items"
        " are the candidates, and the counters) and reads"
        f" {number(max(q['items_read'] for q in three))} items at most, at every size. A Scan would read all"
        f" {last['n']:,} links and their entries.",
        f"Bounded when many match: a first page of {record['page']} reads at most {record['read_factor']}× the page in index"
        " items; the common word and status=active rows stay the same at every size.",
        f"Busiest key at {model['rate']:,} links/s: `{model['top_key']}`, {number(model['top_wcu_per_second'])} write"
        f" units/s against DynamoDB's 1,000 per partition; the same words on one key (no shards) would take"
        f" {number(model['unsharded_wcu_per_second'])}.",
    ]
    section_ = Section(KEY, TITLE, how, headers, rows, notes, record, record["seconds"])
    section_.extra_tables = [
        (f"Import of {model['links']:,} links at {model['rate']:,}/s: the busiest index keys (modelled)",
         ["Index key", "Write units/s"], top_rows)
    ]
    word = last["queries"]["word"]
    section_.headline = [
        [
            f"Search for a word with {record['matches']} matches among {last['n']:,} links",
            f"{ms(word['latency']['median'])}; {number(word['requests'])} requests, {number(word['items_read'])} items",
            "no search",
            "–",
            "measured",
        ],
        [
            f"Import of {model['links']:,} links at {model['rate']:,}/s: busiest search index key",
            f"{number(model['top_wcu_per_second'])} write units/s",
            "no search",
            f"{times(KEY_WRITE_LIMIT / model['top_wcu_per_second'], 1)} under 1,000",
            "modelled",
        ],
    ]
    section_.targets = [t.line() for t in evaluate(KEY, record)]
    return section_
