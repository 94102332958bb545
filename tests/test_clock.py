"""The app's clock and timestamp format in webapp/clock.py."""
from datetime import datetime, timedelta, timezone

from webapp import clock


def test_timestamps_are_fixed_width_utc():
    moment = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=timezone(timedelta(hours=-5)))
    assert clock.format_timestamp(moment) == "2026-01-02T08:04:05Z"
    assert clock.parse_timestamp("2026-01-02T08:04:05Z") == moment.replace(microsecond=0)
