"""The stats retention setting: how many days of per-day stats and rollups the aggregator keeps.

Stored as the setting "stats_retention_days" (a whole number of days) or unset (keep forever). The
aggregator reads it and sets the table's TTL attribute, purge_at, on the items it writes: the start of
UTC day (day + retention + 1). Links' total counters have no purge_at, so they stay.
"""
from webapp import whole_numbers

SETTING = "stats_retention_days"
MIN_DAYS, MAX_DAYS = 7, 3650


def parse_days(raw):
    """The retention in days from a form or JSON value: None (keep forever) for empty, else a whole
    number from MIN_DAYS to MAX_DAYS; raise ValueError saying what is allowed."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    text = raw.strip() if isinstance(raw, str) else None
    if isinstance(raw, int) and not isinstance(raw, bool):
        days = raw
    else:
        days = whole_numbers.parse(text, 5)
    if days is None or not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueError(f"Use a whole number of days from {MIN_DAYS} to {MAX_DAYS}, or leave it empty to keep stats forever.")
    return days


def current_days(settings):
    """The retention now in force: a number of days, or None (keep forever)."""
    value = settings.get(SETTING)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
