"""A link's stats as its page shows them: the window asked for (?days= or ?hours=), the summary and the chart."""
from datetime import date

from flask import abort, current_app, request

from webapp import charts, clock, stats
from webapp.store import get_store

LIVE_SECONDS = 5  # how often an open link page refreshes its counts (webapp/static/live.js)
_TICKS = {7: 1, 30: 5, 90: 15}  # a day label on every nth bar, counted back from today


def choice():
    """(days, hours) from ?days=7|30|90 or ?hours=48: one of them, the other None; 422 for anything else."""
    days, hours = request.args.get("days"), request.args.get("hours")
    if hours is not None:
        if hours != str(stats.HOURS) or days is not None:
            abort(422, f"hours must be {stats.HOURS} (the last {stats.HOURS} hours), without days.")
        return None, stats.HOURS
    allowed = windows()
    if days is None:
        return current_app.config["STATS_DAYS"], None
    if days not in {str(n) for n in allowed}:
        abort(422, f"days must be one of {', '.join(str(n) for n in allowed)}.")
    return int(days), None


def windows():
    """The day windows a page may ask for: 7, 30, 90 and the configured default (SHORTENER_STATS_DAYS)."""
    return sorted({*stats.WINDOWS, current_app.config["STATS_DAYS"]})


def build(short_id, days, hours):
    """The page's stats for one window: one Query of the link's stats partition."""
    now = clock.utcnow()
    today = now.date()
    queried = days or stats.HOUR_DAYS
    found = get_store().links.daily_stats(short_id, queried, today)
    summary = stats.summarise(found, today, queried)
    summary.update(days=days, hours=hours, live_seconds=LIVE_SECONDS)
    if hours:
        summary["hourly"] = stats.hourly(found, now)
        bars = [charts.Bar(f"{point['hour']:%Y-%m-%d %H}:00 UTC", f"{point['hour']:%H}:00" if point["hour"].hour % 6 == 0 else "",
                           point["clicks"], point["bots"]) for point in summary["hourly"]]
        title = f"Clicks per hour, last {hours} hours (UTC)"
        shown = [point for point in summary["hourly"] if point["clicks"] is not None]
    else:
        every = _TICKS.get(days, max(1, days // 6))
        series = summary["series"]
        bars = [charts.Bar(point["day"], _day_label(point["day"]) if (len(series) - 1 - index) % every == 0 else "",
                           point["clicks"], point["bots"]) for index, point in enumerate(series)]
        title = f"Clicks per day, last {days} days (UTC)"
        shown = series
    people, bots = sum(point["clicks"] for point in shown), sum(point["bots"] for point in shown)
    busiest = max(shown, key=lambda point: point["clicks"], default=None)
    description = f"{people:,} clicks by people and {bots:,} by bots, stacked."
    if busiest and busiest["clicks"]:
        when = busiest.get("day") or f"{busiest['hour']:%Y-%m-%d %H}:00"
        description += f" The busiest was {when}, with {busiest['clicks']:,} by people."
    summary["chart"] = charts.stacked_bars(bars, title=title, description=description, chart_id="clicks-chart")
    summary["chart_title"] = title
    return summary


def _day_label(day):
    """A short axis label: "7 Dec"."""
    value = date.fromisoformat(day)
    return f"{value.day} {value:%b}"
