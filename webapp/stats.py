"""Summaries of a link's stats for people and the API to read, and its CSV. Pure functions, no I/O.

The input is what the store's daily_stats returns: webapp/store/stats_items.py's days, oldest
first, only the days that have an item.
"""
import csv
import io
from collections import Counter
from datetime import timedelta

from flask import Response

from webapp import csv_export
from webapp.store import stats_items

WINDOWS = (7, 30, 90)  # the link page's choices of days
HOURS = 48  # the link page's per-hour view: the last 48 hours, which lie in the last three UTC days
HOUR_DAYS = 3
TOP = 5
DIMENSIONS = tuple(stats_items.DIMENSIONS.values())  # referrers, countries, devices, browsers, oses


def daily(days, last_day, window):
    """Every day of the window, oldest first, empty days filled: day, clicks, bots, visitors and the
    five dimensions. visitors is None for a day with clicks but no visitor hash (clicks from before
    visitors were counted): unknown, not zero."""
    by_day = {day["day"]: day for day in days}
    series = []
    for offset in range(window - 1, -1, -1):
        key = (last_day - timedelta(days=offset)).isoformat()
        day = by_day.get(key) or stats_items.empty_day(key)
        visitors = stats_items.visitors(day) if day["clicks"] else 0
        series.append({"day": key, "clicks": day["clicks"], "bots": day["bots"], "visitors": visitors,
                       **{name: dict(day[name]) for name in DIMENSIONS}})
    return series


def hourly(days, now):
    """The last HOURS UTC hours, oldest first, ending with the current one: hour (a datetime), clicks
    and bots. Both are None in an hour of a day whose hour counters do not add up to its clicks and bots
    (clicks counted before hours were): unknown, not zero."""
    by_day = {day["day"]: day for day in days}
    this_hour = now.replace(minute=0, second=0, microsecond=0, tzinfo=None)
    series = []
    for offset in range(HOURS - 1, -1, -1):
        hour = this_hour - timedelta(hours=offset)
        day = by_day.get(hour.date().isoformat()) or stats_items.empty_day(hour.date().isoformat())
        # Known only when the hours add up to the day: on the day hour counters were deployed, the
        # item also holds the morning's clicks counted without them.
        known = sum(day["hours"].values()) == day["clicks"] and sum(day["bot_hours"].values()) == day["bots"]
        key = f"{hour.hour:02d}"
        series.append({"hour": hour, "clicks": day["hours"].get(key, 0) if known else None,
                       "bots": day["bot_hours"].get(key, 0) if known else None})
    return series


def totals(days):
    """The window's clicks, bots and each dimension's counts summed over its days."""
    summed = {"clicks": sum(day["clicks"] for day in days), "bots": sum(day["bots"] for day in days)}
    for name in DIMENSIONS:
        counts = Counter()
        for day in days:
            counts.update(day[name])
        summed[name] = counts
    return summed


def summarise(days, last_day, window=30):
    """What the link page shows for a window of days: the filled per-day series, today, the totals,
    the top TOP of each dimension, and whether any country or visitor count is known at all."""
    series = daily(days, last_day, window)
    summed = totals(days)
    summary = {
        "window": window,
        "first": series[0]["day"],
        "last": series[-1]["day"],
        "series": series,
        "today": series[-1],
        "clicks": summed["clicks"],
        "bots": summed["bots"],
        # A trusted front (CloudFront) sets the country; without one no click has any.
        "countries_known": bool(summed["countries"]),
        "visitors_known": any(point["visitors"] is not None for point in series if point["clicks"]),
    }
    for name in DIMENSIONS:
        summary[name] = summed[name].most_common(TOP)
    return summary


CSV_COLUMNS = ("day", "clicks", "bots", "visitors")


def csv_text(series):
    """A window's per-day series as CSV: a header, then day, clicks, bots and visitors (empty when unknown).
    Every cell is escaped against formula injection, as the links export's are."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for point in series:
        writer.writerow([csv_export.escape_cell(point[column]) for column in CSV_COLUMNS])
    return buffer.getvalue()


def csv_response(short_id, series):
    """The CSV as a download named after the link and the window."""
    name = f"{short_id}-stats-{series[0]['day']}-to-{series[-1]['day']}.csv"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    return Response(csv_text(series), content_type="text/csv; charset=utf-8", headers=headers)
