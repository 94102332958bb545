"""A link's stats as its page shows them: the window asked for (?days= or ?hours=), the summary and the chart."""
from flask import abort, current_app, request

from webapp import charts, clock, stats
from webapp.store import get_store

LIVE_SECONDS = 5  # how often an open link page refreshes its counts (webapp/static/live.js)


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
    else:
        bars = charts.day_bars(summary["series"])
        title = f"Clicks per day, last {days} days (UTC)"
    summary["chart"] = charts.stacked_bars(bars, title=title, chart_id="clicks-chart")
    summary["chart_title"] = title
    return summary

