"""Rollups (aggregator/rollups.py): one item per day, region and shard, written once per batch; the
links with the most clicks; the retention setting; the sketch's guard across shards; write units.

The failure injection of the counting tests covers rollups and visitors in tests/test_click_pipeline.py
(test_visitors_and_rollups_stay_exact_when_a_batch_fails_part_way, assert_rollup_exact).
"""
import calendar
import hashlib
import json
import math
import random

import pytest
from boto3.dynamodb.types import TypeDeserializer

from aggregator import layout, rollups, writes
from bench.capacity import item_size
from figures.pytest_plugin import record
from tests.conftest import REGION, TABLE_NAME
from tests.support.dynamodb_local import NO_JAVA
from tests.test_aggregator import (  # noqa: F401 - kinesis and aggregator are fixtures
    HUMAN, MARK, NEXT_DAY, NOON, PHONE, a_click, aggregator, deliver, event_for, kinesis, line, put,
)
from uniques import sketch
from webapp.store import stats_items

DAY = "2026-11-27"
plain = TypeDeserializer()


def rollup_items(ddb, day=DAY):
    return ddb.query(TableName=TABLE_NAME, KeyConditionExpression="pk = :pk", ConsistentRead=True,
                     ExpressionAttributeValues={":pk": {"S": f"{layout.ROLLUP_PK_PREFIX}{day}"}})["Items"]


def read_day(ddb, day=DAY):
    """The day across links as the admin reads it (one region: links by max over its shards' items)."""
    total = stats_items.empty_day(day)
    for found in rollup_items(ddb, day):
        stats_items.merge(total, stats_items.part(day, {k: plain.deserialize(v) for k, v in found.items()}), links_by_max=True)
    return total


def raw(ddb, pk, sk):
    return ddb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True).get("Item", {})


def visitors_of(ddb, pk, sk):
    """What a reader counts of an item's visitors: its pending set with its sketch item (pk, sk + "#uvh")."""
    item, kept = raw(ddb, pk, sk), raw(ddb, pk, sk + layout.SKETCH_SK_SUFFIX)
    assert layout.VISITOR_SKETCH not in item, "the counted item keeps no sketch"
    blob = kept.get(layout.VISITOR_SKETCH, {}).get("B")
    exact = {bytes(h) for h in item.get(layout.VISITOR_SET, {}).get("BS", [])}
    return sketch.count([(exact, bytes(blob) if blob is not None else None)])


def hashed(n):
    """Visitor n's 8-byte hash: uniformly spread, as the redirect's keyed BLAKE2b makes them."""
    return hashlib.blake2b(str(n).encode(), digest_size=8).digest()


def visitor_line(short_id, visitor=None, ua=HUMAN):
    record_ = {"type": "click", "id": short_id, "ua": ua}
    if visitor is not None:
        record_["v"] = hashed(visitor).hex()
    return json.dumps(record_, separators=(",", ":"))


# ------------------------------------------------------------------ one rollup a day, once a batch


def test_a_batch_writes_one_rollup_per_day_with_its_links_day_totals(aggregator, kinesis, ddb):
    deliver(aggregator, kinesis, [line("aaa")] * 3 + [line("bbb", ua=PHONE, ref=None, cc="FR")])
    deliver(aggregator, kinesis, [line("aaa"), line("ccc", ua="Googlebot/2.1")], [line("aaa")], timestamp_ms=NOON)
    deliver(aggregator, kinesis, [line("bbb")], timestamp_ms=NEXT_DAY)
    [item] = rollup_items(ddb)
    assert item["sk"]["S"].startswith(f"{REGION}#{layout.MARK_PREFIX}")
    day = read_day(ddb)
    assert (day["clicks"], day["bots"], day["hours"], day["bot_hours"]) == (6, 1, {"12": 6}, {"12": 1})
    assert day["links"] == {"aaa": 5, "bbb": 1}  # the day totals, not the last batch's share
    assert day["devices"] == {"Desktop": 5, "iPhone": 1} and day["countries"] == {"DE": 5, "FR": 1}
    assert set(item[layout.LINK_SET]["SS"]) == {"aaa", "bbb"}
    assert read_day(ddb, "2026-11-28")["links"] == {"bbb": 1}


def test_the_update_items_of_a_batch_are_links_plus_link_days_plus_one_rollup_a_day(aggregator, kinesis, ddb):
    calls = []
    aggregator._dynamodb.meta.events.register("before-call.dynamodb.UpdateItem", lambda params, **_: calls.append(1))
    lines = [line(f"l{n % 40:02d}") for n in range(1_000)]  # 1,000 clicks on 40 links
    tomorrow = [line(f"l{n:02d}") for n in range(10)] * 5
    sequences = [put(kinesis, lines), put(kinesis, tomorrow, timestamp_ms=NEXT_DAY)]
    result = aggregator.lambda_handler(event_for(kinesis, sequences), None)
    assert result["clicks"] == 1_050
    assert len(calls) == 40 + (40 + 10) + 2  # counters, link-days, a rollup for each of the two days
    assert read_day(ddb)["clicks"] == 1_000 and read_day(ddb, "2026-11-28")["clicks"] == 50


def test_a_rollup_keeps_the_top_links_and_evicts_the_lowest(aggregator, kinesis, ddb):
    totals = {}
    rng = random.Random(4)
    for batch in range(4):
        lines = []
        for n in range(rollups.TOP_LINKS):
            short_id = f"b{batch}n{n:03d}"
            clicks = rng.randint(1, 6)
            lines += [line(short_id)] * clicks
            totals[short_id] = clicks
        deliver(aggregator, kinesis, lines)
    [item] = rollup_items(ddb)
    kept = set(item[layout.LINK_SET]["SS"])
    stored = {name[len(layout.LINK_PREFIX):] for name in item if name.startswith(layout.LINK_PREFIX)}
    assert len(kept) == rollups.TOP_LINKS and stored == kept  # no counter of an evicted link stays behind
    assert set(rollups.top(totals)) == kept
    assert read_day(ddb)["links"] == {short_id: totals[short_id] for short_id in kept}
    assert read_day(ddb)["clicks"] == sum(totals.values())


def test_a_link_climbing_into_the_top_replaces_the_lowest_with_its_day_total(aggregator, kinesis, ddb):
    deliver(aggregator, kinesis, [line(f"k{n:03d}") for n in range(rollups.TOP_LINKS) for _ in range(2)] + [line("late")])
    assert "late" not in read_day(ddb)["links"]
    deliver(aggregator, kinesis, [line("late")] * 4)
    links = read_day(ddb)["links"]
    assert links["late"] == 5 and len(links) == rollups.TOP_LINKS


def test_top_links_tie_by_id_so_every_writer_keeps_the_same():
    assert rollups.top({"b": 2, "a": 2, "c": 3, "d": 1}, limit=2) == ["c", "a"]


def worst_totals(n):
    """A batch of n links bringing more keys of every dimension than one write takes, every hour, and new visitors."""
    t = writes.totals_of([a_click(str(i + 1), short_id=f"x{i}") for i in range(n)])
    t.referrers.update({f"{i:03d}.example": 1 for i in range(100)})
    t.countries.update({f"{a}{b}": 1 for a in "ABCDEFGHIJ" for b in "ABCDEFGHIJ"})
    for name in ("devices", "browsers", "oses"):
        getattr(t, name).update({f"{name}{i}": 1 for i in range(60)})
    t.hours.update({f"{h:02d}": 1 for h in range(24)})
    t.bot_hours.update({f"{h:02d}": 1 for h in range(24)})
    t.visitors.update(h.to_bytes(8, "big") for h in range(50))
    return t


def test_rollup_expressions_stay_under_dynamodbs_4_kb_at_their_largest():
    links = {f"new{i:03d}": 1_000 + i for i in range(rollups.TOP_LINKS)}
    stored = {f"old{i:03d}": i + 1 for i in range(rollups.TOP_LINKS)}
    seen = {MARK: {"S": "0"}, layout.LINK_SET: {"SS": sorted(stored)},
            **{layout.LINK_PREFIX + k: {"N": str(v)} for k, v in stored.items()}}
    for state in (None, seen):  # a first attempt, and an exact one that evicts every stored link
        update, _ = writes.build_update("rollup", worst_totals(10), MARK, state, purge_at=1, links=links)
        assert len(update["UpdateExpression"].encode()) < 4096, len(update["UpdateExpression"])
        assert len(update["ConditionExpression"].encode()) < 4096, len(update["ConditionExpression"])


# ------------------------------------------------------------------ redelivery and replays


def test_a_redelivered_or_replayed_batch_leaves_the_rollup_as_it_was(aggregator, kinesis, ddb):
    first = [put(kinesis, [visitor_line("aaa", v) for v in range(150)] + [visitor_line("bbb", 7)])]
    aggregator.lambda_handler(event_for(kinesis, first), None)
    second = [put(kinesis, [visitor_line("aaa", v) for v in range(100, 200)])]
    aggregator.lambda_handler(event_for(kinesis, second), None)
    before = rollup_items(ddb)
    aggregator.lambda_handler(event_for(kinesis, second), None)  # a redelivery, in this container
    writes._full_items.clear()
    writes._sketches.clear()  # a replay of the whole history, in another container
    aggregator.lambda_handler(event_for(kinesis, first + second), None)
    assert rollup_items(ddb) == before
    day = read_day(ddb)
    assert day["links"] == {"aaa": 250, "bbb": 1}
    whole = sketch.encode(sketch.add(sketch.new_registers(), {hashed(v) for v in range(200)}))
    assert stats_items.visitors(day) == sketch.count([(None, whole)])


def test_a_rollup_write_that_fails_is_retried_once_the_stats_are_written(aggregator, kinesis, ddb):
    from tests.test_aggregator import fail_updates

    sequences = [put(kinesis, [line("aaa"), line("bbb")]), put(kinesis, [line("aaa")], timestamp_ms=NEXT_DAY)]
    event = event_for(kinesis, sequences)
    faults = fail_updates(aggregator._dynamodb, lambda request: request["Key"]["pk"]["S"] == f"rollup#{DAY}")
    with pytest.raises(Exception):
        aggregator.lambda_handler(event, None)
    faults.clear()
    aggregator.lambda_handler(event, None)
    aggregator.lambda_handler(event, None)
    assert (read_day(ddb)["clicks"], read_day(ddb)["links"]) == (2, {"aaa": 1, "bbb": 1})
    assert (read_day(ddb, "2026-11-28")["clicks"], read_day(ddb, "2026-11-28")["links"]) == (1, {"aaa": 1})


# ------------------------------------------------------------------ the sketch is guarded by its version, not only the mark


def test_a_sketch_written_by_another_shard_in_between_is_merged_not_overwritten(ddb):
    key = ("stats", "hot", DAY)
    shard_a, shard_b = MARK, layout.mark_name("life0", "shardId-000000000001")

    def apply(mark, first, visitors):
        run = [a_click(str(first + i)) for i in range(len(visitors))]
        for click, visitor in zip(run, visitors):
            click.visitor = hashed(visitor)
        return writes.apply_item(ddb, TABLE_NAME, key, run, mark, REGION)

    apply(shard_a, 1, list(range(150)))  # a sketch; shard a remembers what it wrote
    apply(shard_b, 1, list(range(1_000, 1_200)))  # shard b reads (a failed condition) and writes its own
    apply(shard_a, 200, list(range(2_000, 2_120)))  # shard a's memory is stale: its write must fail, then merge
    item = raw(ddb, "stats#hot", f"day#{DAY}#{REGION}")
    kept = raw(ddb, "stats#hot", f"day#{DAY}#{REGION}{layout.SKETCH_SK_SUFFIX}")
    everything = {hashed(v) for v in [*range(150), *range(1_000, 1_200), *range(2_000, 2_120)]}
    expected = sketch.estimate(sketch.add(sketch.new_registers(), everything))
    assert sketch.count([(None, bytes(kept[layout.VISITOR_SKETCH]["B"]))]) == expected
    assert visitors_of(ddb, "stats#hot", f"day#{DAY}#{REGION}") == expected
    assert kept[layout.VISITOR_VERSION]["N"] == "3" and layout.VISITOR_SET not in item
    assert int(item["clicks"]["N"]) == 470


def test_a_small_set_of_another_shard_is_folded_into_the_sketch(ddb):
    key = ("stats", "mixed", DAY)
    shard_b = layout.mark_name("life0", "shardId-000000000001")

    def apply(mark, first, visitors):
        run = [a_click(str(first + i)) for i in range(len(visitors))]
        for click, visitor in zip(run, visitors):
            click.visitor = hashed(visitor)
        writes.apply_item(ddb, TABLE_NAME, key, run, mark, REGION)

    apply(shard_b, 1, list(range(30)))  # a small set: ADDed, no read
    apply(MARK, 1, list(range(20, 110)))  # overflows (a failed condition): the set and these are folded
    item = raw(ddb, "stats#mixed", f"day#{DAY}#{REGION}")
    kept = raw(ddb, "stats#mixed", f"day#{DAY}#{REGION}{layout.SKETCH_SK_SUFFIX}")
    assert layout.VISITOR_SET not in item and int(item["clicks"]["N"]) == 120
    expected = sketch.estimate(sketch.add(sketch.new_registers(), {hashed(v) for v in range(110)}))
    assert sketch.count([(None, bytes(kept[layout.VISITOR_SKETCH]["B"]))]) == expected


# ------------------------------------------------------------------ retention


def set_retention(ddb, value):
    ddb.put_item(TableName=TABLE_NAME, Item={**layout.RETENTION_SETTING_KEY, "value": value})


def test_stats_and_rollups_expire_after_the_retention_setting(aggregator, kinesis, ddb):
    set_retention(ddb, {"N": "30"})
    deliver(aggregator, kinesis, [line("aaa")])
    purge = calendar.timegm((2026, 12, 28, 0, 0, 0))  # the start of day + 30 + 1
    assert raw(ddb, "stats#aaa", f"day#{DAY}#{REGION}")[layout.PURGE_AT] == {"N": str(purge)}
    assert rollup_items(ddb)[0][layout.PURGE_AT] == {"N": str(purge)}
    assert layout.PURGE_AT not in raw(ddb, "aaa", f"clicks#{REGION}")  # the link's total stays


@pytest.mark.parametrize("value", [{"N": "6"}, {"N": "3651"}, {"N": "7.5"}, {"S": "30"}, {"BOOL": True}])
def test_a_retention_setting_out_of_range_keeps_stats_forever(aggregator, kinesis, ddb, caplog, value):
    set_retention(ddb, value)
    deliver(aggregator, kinesis, [line("aaa")])
    assert layout.PURGE_AT not in raw(ddb, "stats#aaa", f"day#{DAY}#{REGION}")
    assert "ignored the stats retention setting" in caplog.text


def test_the_retention_setting_is_read_once_in_five_minutes(aggregator, kinesis, ddb, monkeypatch):
    gets = []
    aggregator._dynamodb.meta.events.register("before-call.dynamodb.GetItem", lambda params, **_: gets.append(1))
    now = [1_000.0]
    monkeypatch.setattr(aggregator.time, "monotonic", lambda: now[0])
    deliver(aggregator, kinesis, [line("aaa")])
    set_retention(ddb, {"N": "7"})
    deliver(aggregator, kinesis, [line("aaa")])
    assert len(gets) == 1 and layout.PURGE_AT not in raw(ddb, "stats#aaa", f"day#{DAY}#{REGION}")
    now[0] += aggregator.RETENTION_CACHE_SECONDS
    deliver(aggregator, kinesis, [line("aaa")])
    assert len(gets) == 2 and layout.PURGE_AT in raw(ddb, "stats#aaa", f"day#{DAY}#{REGION}")


# ------------------------------------------------------------------ write units


class WriteUnits:
    """Charges every UpdateItem as DynamoDB does: ceil(max(old, new item size) / 1 KB), a failed condition too."""

    def __init__(self, client, ddb, monkeypatch):
        self.units = self.calls = self.failed = self.folds = 0
        self._ddb = ddb
        real = client.update_item

        def update_item(**params):
            self.folds += params["Key"]["sk"]["S"].endswith(layout.SKETCH_SK_SUFFIX)  # a sketch item's write
            old = item_size(self._read(params["Key"]))
            try:
                response = real(**params)
            except Exception:
                self.failed += 1
                self._charge(old, old)
                raise
            self._charge(old, item_size(self._read(params["Key"])))
            return response

        monkeypatch.setattr(client, "update_item", update_item)

    def _read(self, key):
        return self._ddb.get_item(TableName=TABLE_NAME, Key=key, ConsistentRead=True).get("Item", {})

    def _charge(self, old, new):
        self.calls += 1
        self.units += max(1, math.ceil(max(old, new) / 1024))


SCENARIOS = {
    # 400 links, one click each per batch (spread thin), or 400 clicks a batch on one link (hot).
    "thin": lambda batch, n: (f"t{n:03d}", batch * 400 + n),
    "hot": lambda batch, n: ("hot", batch * 400 + n),
}


@pytest.mark.slow  # about 30 s each: every write is read before and after, to size it
@pytest.mark.parametrize("visitors", [True, False], ids=["with-v", "without-v"])
@pytest.mark.parametrize("spread", list(SCENARIOS))
def test_write_units_per_click(aggregator, kinesis, ddb, monkeypatch, spread, visitors):
    """Steady state over 5 batches of 400 clicks (after one warm-up), every visitor new."""
    def batch_lines(batch):
        return [visitor_line(*(lambda sid, v: (sid, v if visitors else None))(*SCENARIOS[spread](batch, n)))
                for n in range(400)]

    deliver(aggregator, kinesis, batch_lines(0))
    meter = WriteUnits(aggregator._dynamodb, ddb, monkeypatch)
    for batch in range(1, 6):
        deliver(aggregator, kinesis, batch_lines(batch))
    per_click = meter.units / 2_000
    record(f"uniques.write_units_per_click.{spread}.{'v' if visitors else 'no_v'}", round(per_click, 3))
    print(f"\n{spread} {'with' if visitors else 'without'} v: {meter.units} write units for 2,000 clicks "
          f"({per_click:.3f} a click), {meter.calls} UpdateItem ({meter.folds} of sketch items), "
          f"{meter.failed} failed conditions")
    links = 400 if spread == "thin" else 1
    # A counter and a stats item a link, a rollup a batch; and at most one failed condition for each
    # item whose state this container learns then remembers (the rollup; a hot stats item's sketch).
    # Past the exact set, at most one fold a batch for the rollup and one for a hot link's stats item.
    assert meter.failed <= 2 and meter.folds <= 5 * 2
    assert meter.calls == 5 * (2 * links + 1) + meter.failed + meter.folds
    if spread == "thin":
        assert per_click <= 2 + 1  # a counter and a stats item a click, and at most one extra unit
    else:
        assert meter.units <= 5 * 40  # a few writes a batch, whatever the clicks: the sketch's size, not theirs


# ------------------------------------------------------------------ the same writes on DynamoDB Local


@pytest.mark.integration
@pytest.mark.skipif(NO_JAVA, reason="DynamoDB Local needs Java 11+")
def test_dynamodb_local_takes_every_kind_of_visitor_and_rollup_write(dynamodb_local, monkeypatch):
    """moto is lenient in places; DynamoDB Local checks expressions as DynamoDB does (binary sets,
    size() of a set, REMOVE beside SET, a set replaced in a rollup that evicts links)."""
    import uuid

    from local_stack.template import create_table

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    client = dynamodb_local.client()
    table = f"links-{uuid.uuid4().hex[:8]}"
    create_table(client, table)
    writes._full_items.clear()
    shard_b = layout.mark_name("life0", "shardId-000000000001")

    def apply(key, mark, first, visitors, links=None, short_id="hot"):
        run = [a_click(str(first + i), short_id=short_id) for i in range(len(visitors))]
        for click, visitor in zip(run, visitors):
            click.visitor = hashed(visitor)
        learned = {}
        outcome = writes.apply_item(client, table, key, run, mark, REGION, retention_days=30, links=links, learned=learned)
        return outcome, learned

    stats = ("stats", "hot", DAY)
    assert apply(stats, shard_b, 1, list(range(30)))[0] == writes.APPLIED  # the small set
    assert apply(stats, MARK, 1, list(range(20, 150)))[1] == {stats: 160}  # overflows into the sketch
    assert apply(stats, shard_b, 31, list(range(1_000, 1_100)))[0] == writes.APPLIED  # another shard's sketch write
    assert apply(stats, MARK, 131, list(range(2_000, 2_010)))[0] == writes.APPLIED  # stale memory: fails, then merges
    assert apply(stats, MARK, 131, list(range(2_000, 2_010)))[0] == writes.ALREADY_APPLIED
    item = client.get_item(TableName=table, Key=layout.stats_key("hot", DAY, REGION), ConsistentRead=True)["Item"]
    stats_sketch = client.get_item(TableName=table, Key=layout.sketch_key(layout.stats_key("hot", DAY, REGION)),
                                   ConsistentRead=True)["Item"]
    everything = {hashed(v) for v in [*range(150), *range(1_000, 1_100), *range(2_000, 2_010)]}
    assert sketch.count([(None, bytes(stats_sketch[layout.VISITOR_SKETCH]["B"]))]) == sketch.count([(everything, None)])
    assert layout.VISITOR_SET not in item and layout.VISITOR_SKETCH not in item and int(item["clicks"]["N"]) == 270
    assert item[layout.PURGE_AT] == stats_sketch[layout.PURGE_AT] == {"N": str(calendar.timegm((2026, 12, 28, 0, 0, 0)))}

    rollup = ("rollup", DAY, MARK)
    first_links = {f"a{i:03d}": i + 1 for i in range(rollups.TOP_LINKS)}
    apply(rollup, MARK, 1, list(range(5)), links=first_links)
    later_links = {f"b{i:03d}": 1_000 + i for i in range(50)}
    apply(rollup, MARK, 10, list(range(200)), links=later_links)  # a failed condition, then an exact eviction
    apply(rollup, MARK, 300, [7], links={"a000": 5_000})  # from this container's memory
    found = client.get_item(TableName=table, Key=layout.rollup_key(DAY, REGION, MARK), ConsistentRead=True)["Item"]
    kept = set(found[layout.LINK_SET]["SS"])
    expected = rollups.top({**first_links, **later_links, "a000": 5_000})
    assert kept == set(expected) and {n[4:] for n in found if n.startswith(layout.LINK_PREFIX)} == kept
    assert found["lnk#a000"] == {"N": "5000"}
