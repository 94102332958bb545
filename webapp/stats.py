"""Summaries of a link's daily click stats for people to read. Pure functions, no I/O."""
from collections import Counter
from datetime import timedelta

TOP = 5


def summarise(days, last_day, window=30):
    """Totals, a per-day series with the empty days filled in, and the top referrers, countries and devices.

    `days` is what the store's daily_stats returns; `last_day` is the window's last UTC date.
    """
    by_day = {day["day"]: day for day in days}
    series = []
    for offset in range(window - 1, -1, -1):
        key = (last_day - timedelta(days=offset)).isoformat()
        series.append({"day": key, "clicks": by_day.get(key, {}).get("clicks", 0)})
    peak = max((point["clicks"] for point in series), default=0)
    for point in series:
        # Bar lengths for the page, as a percentage of the busiest day.
        point["percent"] = round(100 * point["clicks"] / peak) if peak else 0
    summary = {
        "window": window,
        "clicks": sum(day["clicks"] for day in days),
        "bots": sum(day["bots"] for day in days),
        "series": series,
    }
    for name in ("referrers", "countries", "devices"):
        totals = Counter()
        for day in days:
            totals.update(day[name])
        summary[name] = totals.most_common(TOP)
    return summary

