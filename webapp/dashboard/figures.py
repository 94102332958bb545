"""The dashboard's figures from merged rollup days (webapp/store/rollups.py). Pure functions, no I/O.

Shared by the page and GET /api/stats, so both say the same thing.
"""
from collections import Counter
from datetime import timedelta

from webapp.store import stats_items

WINDOWS = (7, 30, 90)  # the choices of days, for the API and the page
PERIODS = (1, 7, 30, 90)  # today, and each window: totals with the period before
TOP = 10
DIMENSIONS = tuple(stats_items.DIMENSIONS.values())  # referrers, countries, devices, browsers, oses


def first_day(today, window):
    """The first day to read for a window: the window and the one before it, for the previous periods."""
    return today - timedelta(days=2 * window - 1)


def figures(days, today, window):
    """Totals (each with the previous period and the change), the window's per-day series with visitors,
    and its top referrers, countries, devices, browsers and OSes (top links: `top(..., "links")`). `days` are merged rollup days (stats_items' shape) from
    first_day(today, window) to today, oldest first."""
    by_day = {day["day"]: day for day in days}

    def span(end, length):
        """Days from `end` back over `length` days, that exist."""
        keys = ((end - timedelta(days=offset)).isoformat() for offset in range(length))
        return [by_day[key] for key in keys if key in by_day]

    totals = []
    for length in PERIODS:
        if length > window:
            continue
        now, before = span(today, length), span(today - timedelta(days=length), length)
        clicks, previous = _sum(now, "clicks"), _sum(before, "clicks")
        totals.append({"days": length, "clicks": clicks, "previous": previous, "change": change(clicks, previous),
                       "bots": _sum(now, "bots")})
    recent = list(reversed(span(today, window)))  # oldest first
    series = []
    peak = max((day["clicks"] for day in recent), default=0)
    for offset in range(window - 1, -1, -1):
        key = (today - timedelta(days=offset)).isoformat()
        day = by_day.get(key) or stats_items.empty_day(key)
        series.append({"day": key, "clicks": day["clicks"], "bots": day["bots"],
                       "visitors": stats_items.visitors(day),
                       "percent": round(100 * day["clicks"] / peak) if peak else 0})
    result = {"days": window, "first_day": series[0]["day"], "last_day": today.isoformat(), "totals": totals,
              "series": series}
    result.update({name: top(recent, name) for name in DIMENSIONS})
    return result


def top(days, name, limit=TOP):
    """The largest counters of one kind over these days: [(key, count)], largest first, then by key."""
    totals = Counter()
    for day in days:
        totals.update(day[name])
    return sorted(((key, count) for key, count in totals.items() if count > 0), key=lambda kv: (-kv[1], kv[0]))[:limit]


def recent_days(days, today, length):
    """The merged days of the last `length` days, today included."""
    first = (today - timedelta(days=length - 1)).isoformat()
    return [day for day in days if day["day"] >= first]


def change(now, before):
    """The change from before to now in whole percent; None when there was nothing before."""
    return round(100 * (now - before) / before) if before else None


def _sum(days, name):
    return sum(day[name] for day in days)
