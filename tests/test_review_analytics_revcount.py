"""Outside review of issue 18's aggregator analytics (reviewer "revcount"): write units per click once a
link-day's visitors are past the exact set."""
import pytest

from tests.test_aggregator import (  # noqa: F401 - kinesis and aggregator are fixtures
    NEXT_DAY, NOON, aggregator, deliver, kinesis,
)
from tests.test_rollups import WriteUnits, visitor_line

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
