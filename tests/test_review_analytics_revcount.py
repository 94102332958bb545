"""Outside review of issue 18's aggregator analytics (reviewer "revcount"): write units per click once a
link-day's visitors are a sketch, forged long referrers, DynamoDB's operator limit on the largest conditions,
and the sketch's boundaries (the flood of distinct user agents is in tests/test_agent_flood.py)."""
import re

import pytest

from aggregator import layout, rollups, writes
from tests.test_aggregator import (  # noqa: F401 - kinesis and aggregator are fixtures
    MARK, NEXT_DAY, NOON, a_click, aggregator, deliver, event_for, kinesis, line, put, stats,
)
from tests.conftest import REGION, TABLE_NAME
from tests.test_rollups import DAY, WriteUnits, hashed, raw, visitor_line, visitors_of, worst_totals
from uniques import sketch

# ------------------------------------------------------------------ write units per click, spread thin


def _units_per_click(aggregator, kinesis, ddb, with_v, day_ms, warm=3_000):
    """A link-day that already had `warm` clicks (and visitors, with_v), then 20 clicks (of new visitors), each in a
    batch of its own; write units a click. Each run on a day of its own: its rollup is not the other's."""
    deliver(aggregator, kinesis, [visitor_line("warm", v if with_v else None) for v in range(warm)], timestamp_ms=day_ms)
    with pytest.MonkeyPatch.context() as patch:
        meter = WriteUnits(aggregator._dynamodb, ddb, patch)
        for n in range(20):
            deliver(aggregator, kinesis, [visitor_line("warm", 10_000_000 + n if with_v else None)], timestamp_ms=day_ms)
    return meter.units / 20


@pytest.mark.slow
def test_uniques_cost_at_most_one_extra_write_unit_a_click_spread_thin_past_the_exact_set(
        aggregator, kinesis, ddb):
    """DynamoDB charges a write ceil(item size / 1 KB): the sketch (3.5 KB at 3,000 visitors) stays out of the
    stats and rollup items, in an item of its own written once every ~100 new visitors."""
    without_v = _units_per_click(aggregator, kinesis, ddb, False, NOON)
    with_v = _units_per_click(aggregator, kinesis, ddb, True, NEXT_DAY)
    # The target: "no more than 1 extra write unit per click spread thin".
    assert with_v - without_v <= 1, (with_v, without_v)


# The flood of distinct forged agents (found here) is tested in tests/test_agent_flood.py, with its fix.


# ------------------------------------------------------------------ DynamoDB's 300 operators an expression

# What DynamoDB counts (DynamoDB Local says "The expression contains too many operators; operator count:
# 301" for 151 comparisons joined by 150 ANDs): logical and comparison operators, and functions.
_OPERATORS = re.compile(
    r"\b(?:AND|OR|NOT|BETWEEN|IN)\b|<>|<=|>=|=|<|>"
    r"|\b(?:attribute_exists|attribute_not_exists|attribute_type|begins_with|contains|size)\("
)


def _worst_totals():
    """A batch bringing more keys of every dimension than one write takes, every hour, and new visitors."""
    return worst_totals(10)


@pytest.mark.parametrize("kind", ["stats", "rollup"])
def test_a_first_attempts_condition_stays_under_dynamodbs_300_operators(kind):
    """A first attempt asks contains() of every key it adds: 4 KB of text is not the only limit. Measured on
    DynamoDB Local, the worst first attempt uses about 227 (stats) and 231 (rollup) of the 300; a
    ValidationException would drop the batch's update of that item (writes.DROPPED), its clicks lost."""
    links = {f"new{i:03d}": 1_000 + i for i in range(rollups.TOP_LINKS)}
    update, _ = writes.build_update(kind, _worst_totals(), MARK, None, purge_at=1, links=links)
    assert len(_OPERATORS.findall(update["ConditionExpression"])) <= 300
    assert len(_OPERATORS.findall(update["UpdateExpression"])) <= 300


# ------------------------------------------------------------------ forged keys and the item's size


@pytest.mark.slow
def test_fifty_forged_long_referrers_cannot_make_every_later_click_cost_many_write_units(aggregator, kinesis, ddb):
    host = "{:03d}" + "a" * 57 + ("." + "a" * 63) * 3  # 253 characters, a valid DNS name
    for first in (0, 25):  # a write takes at most 30 new keys of a dimension: two batches fill its 50
        deliver(aggregator, kinesis, [line("victim", ref=host.format(n)) for n in range(first, first + 25)])
    with pytest.MonkeyPatch.context() as patch:
        meter = WriteUnits(aggregator._dynamodb, ddb, patch)
        for _ in range(20):
            deliver(aggregator, kinesis, [line("victim")])
    # A counter, a stats item and a rollup a click: 3 units, and at most one more. Hosts past
    # clicks.REFERRER_KEY_MAX characters are counted under "(other)", so the forged ones add one key.
    assert meter.units / 20 <= 4, meter.units / 20


# ------------------------------------------------------------------ exact to 100 visitors, a sketch at 101


@pytest.mark.parametrize("first, later, kept_exact", [(60, 40, True), (60, 41, False), (0, 100, True), (0, 101, False)],
                         ids=["60+40-exact", "60+41-sketch", "100-exact", "101-sketch"])
def test_a_link_day_keeps_its_hashes_up_to_100_visitors_and_a_sketch_from_101(
        aggregator, kinesis, ddb, first, later, kept_exact):
    """`first` visitors, then `later` new ones in another batch (a first attempt: the container does not
    remember a small set): exactly 100 stay an exact set (the contract's "exact up to 100"), 101 are folded
    into the sketch item next to the stats item (a set of 101 is more than the item may hold)."""
    link = f"edge{first}x{later}"  # a link-day of its own for each case
    if first:
        deliver(aggregator, kinesis, [visitor_line(link, v) for v in range(first)])
    deliver(aggregator, kinesis, [visitor_line(link, v) for v in range(first, first + later)])
    found = stats(ddb, link)
    sk = f"day#2026-11-27#{REGION}"
    kept = raw(ddb, f"stats#{link}", sk + layout.SKETCH_SK_SUFFIX)
    if kept_exact:
        assert len(found[layout.VISITOR_SET]) == sketch.EXACT_MAX and not kept
    else:
        assert len(found.get(layout.VISITOR_SET, ())) <= sketch.EXACT_MAX and layout.VISITOR_SKETCH in kept
    assert visitors_of(ddb, f"stats#{link}", sk) == first + later


# ------------------------------------------------------------------ a container's stale sketch


def test_a_sketch_remembered_by_this_container_and_since_written_by_another_shard_is_not_overwritten(ddb):
    """tests/test_rollups.py's two-shard test never has shard a write from memory (a first attempt that
    succeeds remembers nothing), so on moto nothing shows that the "uvv" guard is needed: here shard a's
    second write fails its first attempt, then remembers; shard b writes; shard a's third write starts
    from its stale memory and must fail on the version, then merge."""
    writes._full_items.clear()
    writes._sketches.clear()
    key = ("stats", "stale", DAY)
    shard_a, shard_b = MARK, layout.mark_name("life0", "shardId-000000000001")

    def apply(mark, first, visitors):
        run = [a_click(str(first + i), short_id="stale") for i in range(len(visitors))]
        for click, visitor in zip(run, visitors):
            click.visitor = hashed(visitor)
        return writes.apply_item(ddb, TABLE_NAME, key, run, mark, REGION)

    apply(shard_a, 1, list(range(150)))  # the sketch, written by a first attempt: nothing remembered
    apply(shard_a, 200, list(range(150, 160)))  # a failed first attempt, then exact: shard a remembers version 2
    assert writes._sketches, "shard a should remember the sketch it wrote"
    apply(shard_b, 1, list(range(1_000, 1_200)))  # version 3, unknown to shard a
    apply(shard_a, 300, list(range(2_000, 2_050)))  # from memory (version 2): must fail, then merge
    everything = {hashed(v) for v in [*range(160), *range(1_000, 1_200), *range(2_000, 2_050)]}
    # What a reader counts (the pending set with the sketch item): every visitor of both shards, none lost.
    assert visitors_of(ddb, "stats#stale", f"day#{DAY}#{REGION}") == sketch.count([(everything, None)])
