"""Distinct visitors (uniques/sketch.py and the aggregator's use of it): exact while small, merged in
any order and any batching to the same estimate, within 2% at a million, counted once per day.

The properties run on the sketch itself (hypothesis), and through the aggregator on the moto table:
the visitors a stats item ends with do not depend on how the clicks were batched or redelivered.
"""
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator import clicks, layout
from figures.pytest_plugin import record
from tests.conftest import TABLE_NAME
from tests.test_aggregator import (  # noqa: F401 - kinesis and aggregator are fixtures
    NEXT_DAY, NOON, aggregator, deliver, event_for, kinesis, put,
)
from uniques import sketch

hashes = st.binary(min_size=sketch.HASH_BYTES, max_size=sketch.HASH_BYTES)
PROPERTY = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])


def as_item(hash_set):
    """What an item holds for a set of hashes: the set while small, else the registers (and no set)."""
    if len(hash_set) <= sketch.EXACT_MAX:
        return (set(hash_set), None)
    return (None, sketch.encode(sketch.add(sketch.new_registers(), hash_set)))


def random_hashes(n, seed):
    rng = random.Random(seed)
    return [rng.getrandbits(64).to_bytes(8, "big") for _ in range(n)]


# ------------------------------------------------------------------ the sketch's error (seeded)


@pytest.mark.parametrize(("visitors", "tolerance"), [(100, 0), (10_000, 0.02), (1_000_000, 0.02)])
def test_the_sketch_is_exact_up_to_100_and_within_2_percent_to_a_million(visitors, tolerance):
    values = random_hashes(visitors, seed=18)
    estimate = sketch.count([as_item(set(values))])
    # For BENCHMARKS.md: the relative error in percent, signed.
    record(f"uniques.sketch_error_percent.{visitors}", round(100 * (estimate - visitors) / visitors, 3))
    assert abs(estimate - visitors) <= tolerance * visitors, estimate


def test_every_count_up_to_the_exact_limit_is_exact():
    values = random_hashes(sketch.EXACT_MAX, seed=7)
    for n in range(sketch.EXACT_MAX + 1):
        assert sketch.count([as_item(set(values[:n]))]) == n


# ------------------------------------------------------------------ properties of merging


@PROPERTY
@given(st.sets(hashes, max_size=400), st.data())
def test_any_partition_of_the_hashes_counts_as_one_item_would(values, data):
    # Items of regions, shards or days, each holding its part: the count is the one item's.
    ordered = sorted(values)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(ordered)), max_size=6)))
    parts = [set(ordered[a:b]) for a, b in zip([0] + cuts, cuts + [len(ordered)])]
    data.draw(st.randoms()).shuffle(parts)
    assert sketch.count([as_item(part) for part in parts]) == sketch.count([as_item(values)])


@PROPERTY
@given(st.lists(st.sets(hashes, max_size=150), min_size=1, max_size=5), st.randoms())
def test_registers_merge_to_the_same_sketch_in_any_order(batches, rng):
    whole = sketch.add(sketch.new_registers(), set().union(*batches))
    rng.shuffle(batches)
    merged = sketch.new_registers()
    for batch in batches:
        sketch.merge(merged, sketch.add(sketch.new_registers(), batch))
    assert merged == whole
    assert sketch.decode(sketch.encode(merged)) == whole


@PROPERTY
@given(st.sets(hashes, max_size=sketch.EXACT_MAX))
def test_up_to_the_exact_limit_overlapping_items_count_exactly(values):
    ordered = sorted(values)
    half = len(ordered) // 2
    # Two items sharing visitors (two regions the same person reached): the union, not the sum.
    assert sketch.count([as_item(set(ordered[:half + 3])), as_item(set(ordered[max(0, half - 3):]))]) == len(values)


# ------------------------------------------------------------------ hostile "v"


@given(st.one_of(st.text(max_size=40), st.integers(), st.none(), st.floats(), st.lists(st.integers(), max_size=3),
                 st.binary(max_size=10).map(lambda b: b.hex().upper())))
def test_a_hostile_v_is_either_an_8_byte_hash_or_left_out(value):
    line = json.dumps({"type": "click", "id": "abc1234", "ua": "Mozilla/5.0 (X11; Linux x86_64)", "v": value})
    click = clicks.parse_line("1", {"timestamp": NOON, "message": line})
    assert click is not None
    if isinstance(value, str) and len(value) == 16 and all(c in "0123456789abcdef" for c in value):
        assert click.visitor == bytes.fromhex(value)
    else:
        assert click.visitor is None


@pytest.mark.parametrize("value", ["0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "０１２３４５６７８９abcdef",
                                   "0123456789abcdeg", " 0123456789abcdef", "0123456789abcdef\n"])
def test_near_misses_of_a_visitor_hash_are_left_out(value):
    assert sketch.visitor_hash(value) is None


# ------------------------------------------------------------------ through the aggregator


def visitor_line(short_id, visitor, ua="Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"):
    record = {"type": "click", "id": short_id, "ua": ua}
    if visitor is not None:
        record["v"] = visitor.hex()
    return json.dumps(record, separators=(",", ":"))


def stored_visitors(ddb, pk, sk):
    """The counted item with its sketch item's "uvh" and "uvv" (when there is one), and the visitors they count."""
    def get(key):
        return ddb.get_item(TableName=TABLE_NAME, Key=key, ConsistentRead=True).get("Item", {})

    key = {"pk": {"S": pk}, "sk": {"S": sk}}
    item, kept = get(key), get(layout.sketch_key(key))
    exact = {bytes(h) for h in item.get(layout.VISITOR_SET, {}).get("BS", [])}
    assert len(exact) <= sketch.EXACT_MAX and layout.VISITOR_SKETCH not in item, "the counted item keeps no sketch"
    blob = kept.get(layout.VISITOR_SKETCH, {}).get("B")
    item.update({name: kept[name] for name in (layout.VISITOR_SKETCH, layout.VISITOR_VERSION) if name in kept})
    return item, sketch.count([(exact, bytes(blob) if blob is not None else None)])


@pytest.mark.parametrize("visitors", [1, sketch.EXACT_MAX, sketch.EXACT_MAX + 1, 1_000])
@pytest.mark.parametrize("batches", [1, 3, 7])
def test_a_link_days_visitors_do_not_depend_on_how_its_clicks_were_batched(aggregator, kinesis, ddb, visitors, batches):
    values = random_hashes(visitors, seed=visitors)
    lines = [visitor_line("abc1234", v) for v in values] * 2  # each visitor twice
    random.Random(batches).shuffle(lines)
    for n in range(batches):
        deliver(aggregator, kinesis, lines[n::batches])
    item, counted = stored_visitors(ddb, "stats#abc1234", "day#2026-11-27#us-east-1")
    assert counted == sketch.count([as_item(set(values))])
    assert (layout.VISITOR_SKETCH in item) == (visitors > sketch.EXACT_MAX)
    if visitors <= sketch.EXACT_MAX:
        assert counted == visitors


def test_a_visitor_on_two_days_counts_once_on_each(aggregator, kinesis, ddb):
    values = random_hashes(3, seed=2)
    today = [visitor_line("abc1234", v) for v in values] * 2
    tomorrow = [visitor_line("abc1234", values[0])] * 4
    deliver(aggregator, kinesis, today)
    deliver(aggregator, kinesis, tomorrow, timestamp_ms=NEXT_DAY)
    assert stored_visitors(ddb, "stats#abc1234", "day#2026-11-27#us-east-1")[1] == 3
    assert stored_visitors(ddb, "stats#abc1234", "day#2026-11-28#us-east-1")[1] == 1


def test_clicks_without_v_count_no_visitor_and_bots_never_do(aggregator, kinesis, ddb):
    deliver(aggregator, kinesis, [visitor_line("abc1234", None), visitor_line("abc1234", b"\x01" * 8, ua="Googlebot/2.1")])
    item, counted = stored_visitors(ddb, "stats#abc1234", "day#2026-11-27#us-east-1")
    assert counted == 0 and layout.VISITOR_SET not in item and layout.VISITOR_SKETCH not in item


def test_a_redelivered_batch_adds_no_visitor(aggregator, kinesis, ddb):
    values = random_hashes(sketch.EXACT_MAX + 50, seed=3)
    sequences = [put(kinesis, [visitor_line("abc1234", v) for v in values])]
    event = event_for(kinesis, sequences)
    aggregator.lambda_handler(event, None)
    before, counted = stored_visitors(ddb, "stats#abc1234", "day#2026-11-27#us-east-1")
    aggregator.lambda_handler(event, None)
    after, again = stored_visitors(ddb, "stats#abc1234", "day#2026-11-27#us-east-1")
    assert counted == again and before[layout.VISITOR_VERSION] == after[layout.VISITOR_VERSION]
