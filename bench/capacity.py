"""Capacity units as DynamoDB reports them, per partition key and per index key.

A botocore hook adds `ReturnConsumedCapacity="INDEXES"` to every single-item write (and
TOTAL to reads) a client makes, and another adds up what comes back: units on the table
by partition key value, and units on each index by that index's partition key value.
DynamoDB Local's figures for single-item writes follow AWS's rule (1 unit per KB of the
larger of the item's before and after images, and one more on an index whose projected
attributes change). Where it reports nothing, the rule is applied here:
- a conditional write that fails still costs its units on AWS; DynamoDB Local returns no
  ConsumedCapacity with the error, so the unit is charged from the size of the item it
  returns (ReturnValuesOnConditionCheckFailure), at least 1;
- a backend that reports no capacity at all (moto, the stub) is charged 1 unit per write
  (marked `estimated`);
- a TransactWriteItems reports one total per table, so each of its parts is charged by the rule:
  2 units per KB of the item written on the table, and 1 per KB on each index the item carries keys for.
Units are also kept per second of the caller's clock, for peak rates.
"""

import math
import threading
from collections import Counter, defaultdict

from aggregator.layout import ROLLUP_PK_PREFIX

WRITE_OPS = ("PutItem", "UpdateItem", "DeleteItem")
READ_OPS = ("GetItem", "Query", "Scan", "BatchGetItem")


def attribute_size(value):
    """Bytes an attribute value counts for, by DynamoDB's item size rules."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode("utf-8"))
    if kind == "N":
        digits = len(v.lstrip("-").replace(".", "").strip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(x.encode("utf-8")) for x in v)
    if kind == "BS":
        return sum(len(x) for x in v)
    if kind == "NS":
        return sum(attribute_size({"N": x}) for x in v)
    if kind == "L":
        return 3 + sum(1 + attribute_size(x) for x in v)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + 1 + attribute_size(x) for k, x in v.items())
    return 0


def item_size(item):
    """An item's size in bytes: attribute names plus values."""
    return sum(len(name.encode("utf-8")) + attribute_size(value) for name, value in item.items())


class CapacityMeter:
    """Adds up the capacity units one client consumes, by key; thread-safe.

    `index_keys` maps a table partition key value to the index key its item carries
    ({index name: key value}), for updates of items already written; a put names its own.
    `clock` gives the second that units are booked to (simulated time in the benchmarks).
    """

    def __init__(self, client, index_keys=None, index_attributes=None, clock=None):
        self._events = client.meta.events
        self._lock = threading.Lock()
        self.index_keys = index_keys if index_keys is not None else {}
        # {index name: its partition key attribute}, to read the key off a put's item.
        self.index_attributes = index_attributes or {"by_list": "list_pk"}
        self.clock = clock or (lambda: 0)
        self.reset()
        for op in WRITE_OPS:
            self._events.register(f"provide-client-params.dynamodb.{op}", self._ask_indexes)
            self._events.register(f"after-call.dynamodb.{op}", self._add_write)
        for op in READ_OPS:
            self._events.register(f"provide-client-params.dynamodb.{op}", self._ask_total)
            self._events.register(f"after-call.dynamodb.{op}", self._add_read)
        self._events.register("provide-client-params.dynamodb.TransactWriteItems", self._ask_transact)
        self._events.register("after-call.dynamodb.TransactWriteItems", self._add_transact)

    def close(self):
        """Stop metering."""
        for op in WRITE_OPS:
            self._events.unregister(f"provide-client-params.dynamodb.{op}", self._ask_indexes)
            self._events.unregister(f"after-call.dynamodb.{op}", self._add_write)
        for op in READ_OPS:
            self._events.unregister(f"provide-client-params.dynamodb.{op}", self._ask_total)
            self._events.unregister(f"after-call.dynamodb.{op}", self._add_read)
        self._events.unregister("provide-client-params.dynamodb.TransactWriteItems", self._ask_transact)
        self._events.unregister("after-call.dynamodb.TransactWriteItems", self._add_transact)

    def reset(self):
        """Forget everything counted."""
        self.ops = Counter()
        self.failed_conditions = 0
        self.estimated = False
        self.write_units = 0.0
        self.write_units_by_op = Counter()  # operation -> units, table and indexes
        # Of the UpdateItem units, those of the daily rollups (issue 18): one write per day per batch,
        # stated beside the per-click items rather than in them.
        self.rollup_units = 0.0
        self.read_units = 0.0
        self.items_read = 0
        self.table_wcu = Counter()  # pk -> units
        self.index_wcu = Counter()  # (index, key) -> units
        self.table_rcu = Counter()  # pk -> units
        self.table_wcu_by_second = defaultdict(Counter)  # second -> pk -> units
        self.index_wcu_by_second = defaultdict(Counter)
        self.writes_by_second = Counter()  # second -> units, whole table
        self.item_writes = Counter()  # (pk, sk) -> write requests

    # --- hooks -----------------------------------------------------------------------------
    def _ask_indexes(self, params, context, model, **_):
        params.setdefault("ReturnConsumedCapacity", "INDEXES")
        key = params.get("Key") or params.get("Item") or {}
        context["bench_pk"] = (key.get("pk") or {}).get("S")
        context["bench_sk"] = (key.get("sk") or {}).get("S")
        if model.name == "PutItem":
            item = params.get("Item") or {}
            context["bench_index_keys"] = {
                index: item[attr]["S"] for index, attr in self.index_attributes.items() if attr in item
            }

    def _ask_total(self, params, context, model, **_):
        params.setdefault("ReturnConsumedCapacity", "TOTAL")
        key = params.get("Key") or {}
        context["bench_pk"] = (key.get("pk") or {}).get("S")

    def _add_write(self, parsed, context, model, http_response, **_):
        pk, sk = context.get("bench_pk"), context.get("bench_sk")
        consumed = parsed.get("ConsumedCapacity")
        error = (parsed.get("Error") or {}).get("Code")
        if http_response.status_code >= 300 and error != "ConditionalCheckFailedException":
            return  # refused before any write (validation, throttling): nothing consumed
        with self._lock:
            second = self.clock()
            self.ops[model.name] += 1
            self.item_writes[(pk, sk)] += 1
            if consumed:
                table_units = (consumed.get("Table") or {}).get("CapacityUnits", consumed.get("CapacityUnits", 0.0))
                indexes = {name: v.get("CapacityUnits", 0.0) for name, v in (consumed.get("GlobalSecondaryIndexes") or {}).items()}
            elif error == "ConditionalCheckFailedException":
                self.failed_conditions += 1
                old = parsed.get("Item") or {}
                table_units, indexes = max(1, math.ceil(item_size(old) / 1024)), {}
            else:
                self.estimated = True
                table_units, indexes = 1.0, {}
            self.write_units += table_units + sum(indexes.values())
            self.write_units_by_op[model.name] += table_units + sum(indexes.values())
            if pk and pk.startswith(ROLLUP_PK_PREFIX):
                self.rollup_units += table_units + sum(indexes.values())
            self.table_wcu[pk] += table_units
            self.table_wcu_by_second[second][pk] += table_units
            self.writes_by_second[second] += table_units + sum(indexes.values())
            known = context.get("bench_index_keys") or self.index_keys.get(pk) or {}
            for index, units in indexes.items():
                if units:
                    key = (index, known.get(index, "(key not known to the benchmark)"))
                    self.index_wcu[key] += units
                    self.index_wcu_by_second[second][key] += units

    def _ask_transact(self, params, context, **_):
        # A transaction's ConsumedCapacity is one total per table: each part is charged here by AWS's
        # rule instead (2 units per KB written on the table; an index is updated outside the
        # transaction, as a standard write of 1 unit per KB).
        parts = []
        for part in params.get("TransactItems", []):
            (kind, body), = part.items()
            item = body.get("Item") or body.get("Key") or {}
            units = 2 * max(1, math.ceil(item_size(item) / 1024)) if kind != "ConditionCheck" else 0
            index_keys = {index: item[attr]["S"] for index, attr in self.index_attributes.items() if attr in item}
            parts.append(((item.get("pk") or {}).get("S"), (item.get("sk") or {}).get("S"), units, index_keys))
        context["bench_parts"] = parts

    def _add_transact(self, context, http_response, **_):
        if http_response.status_code >= 300:
            return  # cancelled: nothing written (AWS still charges it; none are expected in the benchmarks)
        with self._lock:
            second = self.clock()
            self.ops["TransactWriteItems"] += 1
            for pk, sk, units, index_keys in context.get("bench_parts", []):
                self.item_writes[(pk, sk)] += 1
                self.table_wcu[pk] += units
                self.table_wcu_by_second[second][pk] += units
                for index, key in index_keys.items():
                    self.index_wcu[(index, key)] += units / 2
                    self.index_wcu_by_second[second][(index, key)] += units / 2
                total = units * (1 + len(index_keys) / 2)
                self.write_units += total
                self.write_units_by_op["TransactWriteItems"] += total
                self.writes_by_second[second] += total

    def _add_read(self, parsed, context, model, **_):
        consumed = parsed.get("ConsumedCapacity")
        if isinstance(consumed, list):  # BatchGetItem: one entry per table
            units = sum(c.get("CapacityUnits", 0.0) for c in consumed)
        else:
            units = (consumed or {}).get("CapacityUnits", 0.0)
        items = parsed.get("ScannedCount")
        if items is None:
            items = 1 if "Item" in parsed else sum(len(v) for v in (parsed.get("Responses") or {}).values())
        with self._lock:
            self.ops[model.name] += 1
            self.read_units += units
            self.items_read += items
            self.table_rcu[context.get("bench_pk")] += units

    # --- summaries -------------------------------------------------------------------------
    def peak_per_second(self, kind="table"):
        """{key: the most units it took in any one second}."""
        by_second = self.table_wcu_by_second if kind == "table" else self.index_wcu_by_second
        peaks = Counter()
        for counts in by_second.values():
            for key, units in counts.items():
                peaks[key] = max(peaks[key], units)
        return peaks

    def take_reads(self):
        """(requests, items read, read units) of read operations since the last take."""
        with self._lock:
            taken = (sum(self.ops[op] for op in READ_OPS), self.items_read, self.read_units)
            for op in READ_OPS:
                self.ops[op] = 0
            self.items_read, self.read_units = 0, 0.0
        return taken
