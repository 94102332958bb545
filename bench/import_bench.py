"""Bulk import: a 10,000-row CSV imported through the admin's own import path on DynamoDB Local.

The file goes through `import_runner.submit` as the API's POST does: checked, stored as a job, and (being
over IMPORT_SYNC_ROWS) run in the background thread of local mode, chunk by chunk, each chunk's rows
created in parallel through `store.links.create`, each with its audit record, then the chunk's results
saved. Timed from the submit to the job's end.

Every DynamoDB request the store's client makes is counted, whatever it is: a botocore hook on the
client sees each call, so the figures stay true when the create path writes more (index entries in a
transaction, say). Write units, per partition key (table keys and by_list index keys) and per second:
- single-item writes (PutItem, UpdateItem, DeleteItem): DynamoDB Local's own ConsumedCapacity
  (ReturnConsumedCapacity=INDEXES), through bench/capacity.py's CapacityMeter;
- TransactWriteItems (DynamoDB Local reports a flat figure for them): AWS's rule applied to each part,
  2 units per KB of a put item (and 2 per KB on the index key a put item carries), 2 for an update,
  delete or condition check of a small item (job and slot items stay under 1 KB);
- BatchWriteItem: 1 unit per KB of each put, 1 per delete.
"""

import csv
import io
import math
import threading
import time
from collections import Counter, defaultdict

from bench.capacity import CapacityMeter, item_size
from bench.handlers import patched_env
from local_stack.dynamodb import client_for
from local_stack.template import create_table
from bench.record import figure
from bench.report import Section, number
from bench.targets import Target
from webapp import create_app, import_runner
from webapp.store import link_index

KEY = "import"
TITLE = "Bulk import"
TABLE = "bench-import"
KEY_WRITE_LIMIT = 1000  # write units per second per partition key value
STATED_RATE = 1000  # rows a second: the 10,000-row import at 1,000 a second
BASE = "https://sho.rt"


def csv_file(rows):
    """A CSV of `rows` links: a quarter with a custom slug, tags on every third, shared host and words."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["url", "slug", "title", "tags", "expires_at"])
    for n in range(rows):
        writer.writerow([f"https://www.example.com/campaign/spring/item-{n}?utm_source=newsletter",
                         f"spring-{n}" if n % 4 == 0 else "", f"Spring campaign item {n}",
                         "spring, newsletter" if n % 3 == 0 else "", "never" if n % 2 else ""])
    return buffer.getvalue().encode("utf-8")


class TransactionMeter:
    """Requests of every operation, and write units of the writes CapacityMeter cannot see, per key per second."""

    def __init__(self, client, clock, index_attribute="list_pk"):
        self._events, self._clock, self._attr = client.meta.events, clock, index_attribute
        self._lock = threading.Lock()
        self.requests = Counter()
        self.units = 0.0
        self.by_second = defaultdict(Counter)  # second -> key -> units
        self._events.register("provide-client-params.dynamodb", self._count)

    def close(self):
        self._events.unregister("provide-client-params.dynamodb", self._count)

    def _count(self, model, params, **_):
        charges = []
        if model.name == "TransactWriteItems":
            for part in params.get("TransactItems", []):
                (kind, body), = part.items()
                if kind == "Put":
                    units = 2 * max(1, math.ceil(item_size(body["Item"]) / 1024))
                    charges.append((body["Item"]["pk"]["S"], units))
                    if self._attr in body["Item"]:
                        charges.append((f"index:{body['Item'][self._attr]['S']}", units))
                else:
                    charges.append((body["Key"]["pk"]["S"], 2))
        elif model.name == "BatchWriteItem":
            for requests in params.get("RequestItems", {}).values():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        charges.append((item["pk"]["S"], max(1, math.ceil(item_size(item) / 1024))))
                    else:
                        charges.append((request["DeleteRequest"]["Key"]["pk"]["S"], 1))
        with self._lock:
            self.requests[model.name] += 1
            second = self._clock()
            for key, units in charges:
                self.units += units
                self.by_second[second][key] += units


def run_import(endpoint, rows):
    """Import `rows` rows into a fresh table on `endpoint`; the measurements."""
    table = f"{TABLE}-{time.time_ns() // 1_000_000}"
    create_table(client_for(endpoint), table)
    with patched_env({"AWS_DEFAULT_REGION": "us-east-1"}):  # the store's own client needs a region to be made
        app = create_app({"TESTING": True, "TABLE_NAME": table, "SHORT_BASE_URL": BASE, "SECRET_KEY": "bench",
                          "DYNAMODB_ENDPOINT_URL": endpoint, "SESSION_COOKIE_SECURE": False})
    app.logger.setLevel("WARNING")  # not one audit line per row on the bench's output
    # Every part of the store shares its table's client: DynamoDB Local's, with room for the import's threads.
    client = app.extensions["store"].table.client = client_for(endpoint, max_pool_connections=16)
    started = time.monotonic()
    clock = lambda: int(time.monotonic() - started)  # noqa: E731 - the second a write is booked to
    meter = CapacityMeter(client, clock=clock)
    transactions = TransactionMeter(client, clock)
    data = csv_file(rows)
    try:
        with app.test_request_context("/api/links/import", method="POST"):
            job = import_runner.submit(data, owner="bench", via="api")
        submitted = time.monotonic() - started
        for thread in list(app.extensions["import_threads"]):
            thread.join(timeout=1800)
        elapsed = time.monotonic() - started
    finally:
        meter.close()
        transactions.close()
    with app.app_context():
        done = app.extensions["store"].import_jobs.get(job["id"])
    return summarise(rows, len(data), done, submitted, elapsed, meter, transactions)


def summarise(rows, size, job, submitted, elapsed, meter, transactions):
    """The record: time, requests, units, and the busiest key's units per second."""
    per_second = defaultdict(Counter)
    for second, keys in meter.table_wcu_by_second.items():
        per_second[second].update(keys)
    for second, keys in meter.index_wcu_by_second.items():
        per_second[second].update({f"index:{key}": units for (_, key), units in keys.items()})
    for second, keys in transactions.by_second.items():
        per_second[second].update(keys)
    peak_key, peak_units, peak_second = "–", 0.0, None
    for second, keys in per_second.items():
        for key, units in keys.items():
            if units > peak_units:
                peak_key, peak_units, peak_second = key, units, second
    totals = Counter()
    for keys in per_second.values():
        totals.update(keys)
    top_total_key, top_total = max(totals.items(), key=lambda kv: kv[1], default=("–", 0.0))
    by_kind = Counter()
    for key, units in totals.items():
        by_kind[_kind(key)] += units
    return {
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": rows, "bytes": size, "job_status": job["status"], "created": job["created"], "failed": job["failed"],
        "submit_seconds": submitted, "seconds": elapsed, "rows_per_second": rows / elapsed if elapsed else None,
        "requests": dict(sorted(transactions.requests.items())), "request_total": sum(transactions.requests.values()),
        "write_units": meter.write_units + transactions.units,
        "units_by_kind": dict(sorted(by_kind.items())),
        "peak_key": peak_key, "peak_key_kind": _kind(peak_key), "peak_units_per_second": peak_units, "peak_second": peak_second,
        "estimated": meter.estimated,
        # Modelled: the key with the largest share of the whole import's units, at STATED_RATE rows a second.
        "top_total_key_kind": _kind(top_total_key), "top_total_units": top_total,
        "at_stated": top_total / max(rows, 1) * STATED_RATE, "stated_rate": STATED_RATE,
    }


def _kind(key):
    """What a key is, for the report: link, search entry, audit shard, audit trail index, list index, import job or
    file part, slot."""
    if key.startswith("import#") and "#input#" in key:
        return "import file part"
    for prefix, kind in (("import#", "import job"), ("index:audit#target#", "audit trail index key"), ("index:links#", "list index key"),
                         ("index:", "other index key"), ("audit#", "audit log shard"),
                         ("importslot#", "import slot"), ("linklimit#", "creation counter"),
                         *((prefix, "search entry") for prefix in (link_index.WORD_PK, link_index.TAG_PK, link_index.OWNER_PK,
                                                                  link_index.DISABLED_PK, link_index.EXPIRES_PK))):
        if key.startswith(prefix):
            return kind
    return "link"


def measure(ctx):
    """The 10,000-row import (ctx.sizes["import_rows"]) on DynamoDB Local."""
    return run_import(ctx.dynamodb_local().endpoint, ctx.sizes["import_rows"])


def targets(record):
    """The import's targets: every row created, and no key over DynamoDB's per-key write limit."""
    return [
        Target(f"Bulk import of {record['rows']:,} rows: every row gets a result, all created",
               f"{record['created']:,} created, {record['failed']:,} failed, job {record['job_status']}",
               record["job_status"] == "done" and record["created"] == record["rows"]),
        Target(f"Bulk import, busiest key's write units/s ≤ {KEY_WRITE_LIMIT:,}",
               f"{number(record['peak_units_per_second'])} on one key ({record['peak_key_kind']})",
               record["peak_units_per_second"] <= KEY_WRITE_LIMIT),
        Target(f"Bulk import at {STATED_RATE:,} rows/s, busiest key's write units/s ≤ {KEY_WRITE_LIMIT:,} (modelled)",
               f"{number(record['at_stated'])} on one key ({record['top_total_key_kind']})", record["at_stated"] <= KEY_WRITE_LIMIT),
    ]


def figures(record):
    """The figures documents quote."""
    return {
        "import.rows": figure(f"{record['rows']:,}", record["rows"], "measured"),
        "import.seconds": figure(f"{record['seconds']:,.1f} s", record["seconds"], "measured"),
        "import.rows_per_second": figure(number(record["rows_per_second"]), record["rows_per_second"], "measured"),
        "import.requests": figure(number(record["request_total"]), record["request_total"], "measured"),
        "import.write_units": figure(number(record["write_units"]), record["write_units"], "measured"),
        "import.peak_key_wcu": figure(number(record["peak_units_per_second"]), record["peak_units_per_second"], "measured"),
        "import.key_wcu_at_stated": figure(number(record["at_stated"]), record["at_stated"], "modelled"),
    }


def section(record):
    """The report section, from the record."""
    rows = record["rows"]
    how = [
        f"A {rows:,}-row CSV ({record['bytes']:,} bytes: a quarter of the rows with a custom slug, the rest with ids"
        " derived from the job; every URL on www.example.com, every title and third row's tags sharing words) is"
        " imported through `import_runner.submit`, as `POST /api/links/import` does, into a fresh table on DynamoDB"
        " Local (in memory). Over IMPORT_SYNC_ROWS, it runs in the background thread of local mode: chunks of 100"
        " rows, 8 rows at a time, each row one `store.links.create` and one audit record, each chunk's results and"
        " progress one transaction.",
        "Every request of the store's client is counted by a botocore hook, so whatever the create path writes is in"
        " the figures. Write units: DynamoDB Local's own for single-item writes (`ReturnConsumedCapacity=INDEXES`);"
        " AWS's rule applied per part for transactions (2 per KB) and batches, which it does not report usably.",
        "The busiest key: write units booked to each partition key (table and by_list index) in each second of the"
        " run, the highest of all.",
        f"Measured on {record['measured_at']}.",
    ]
    table_rows = [
        ["Rows", f"{rows:,} ({record['created']:,} created, {record['failed']:,} failed)"],
        ["Wall time (submit to done)", f"{record['seconds']:,.1f} s ({number(record['rows_per_second'])} rows/s);"
                                       f" the request itself: {record['submit_seconds'] * 1000:,.0f} ms"],
        ["DynamoDB requests", f"{number(record['request_total'])} ("
                              + ", ".join(f"{op} {count:,}" for op, count in record["requests"].items()) + ")"],
        ["Write units", f"{number(record['write_units'])} ({number(record['write_units'] / max(rows, 1), 2)} a row)"],
        ["Busiest key", f"{number(record['peak_units_per_second'])} write units in one second, on one key ({record['peak_key_kind']})"
                        f" (limit {KEY_WRITE_LIMIT:,})"],
        [f"Busiest key at {STATED_RATE:,} rows/s (modelled)",
         f"{number(record['at_stated'])} write units/s on one key ({record['top_total_key_kind']}): its share of the whole"
         f" import's units ({number(record['top_total_units'])} of {number(record['write_units'])}) at that rate"],
    ]
    kinds = [[kind, number(units), number(units / max(rows, 1), 2)] for kind, units in record["units_by_kind"].items()]
    notes = [
        "The import is not held to the per-user creation limit (600 an hour); it is bounded by its file"
        " (IMPORT_MAX_ROWS rows, IMPORT_MAX_BYTES bytes) and by IMPORT_JOBS_PER_USER imports at once.",
        "DynamoDB Local serialises requests and enforces no per-key limit: the rate here is this machine's, and the"
        " busiest key's units per second scale with it; at a faster rate the keys that share writes (audit shards,"
        " list index keys) take proportionally more, each still one of several.",
    ]
    section_ = Section(KEY, TITLE, how, ["What", "Measured"], table_rows, notes, record, record["seconds"])
    section_.extra_tables = [("Write units by kind of key", ["Key kind", "Write units", "Per row"], kinds)]
    section_.headline = [[
        f"Bulk import of {rows:,} rows (DynamoDB Local)",
        f"{record['seconds']:,.1f} s; {number(record['request_total'])} requests, {number(record['write_units'])} write units;"
        f" busiest key {number(record['peak_units_per_second'])} units/s",
        "no import", "–", "measured",
    ], [
        f"Bulk import at {STATED_RATE:,} rows/s: busiest key",
        f"{number(record['at_stated'])} units/s ({record['top_total_key_kind']})",
        "no import", f"{number(KEY_WRITE_LIMIT / record['at_stated'], 1) if record['at_stated'] else '∞'}× under 1,000",
        "modelled (measured share × a stated rate)",
    ]]
    section_.targets = [t.line() for t in targets(record)]
    return section_
