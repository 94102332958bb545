"""GET /api/stats: the home dashboard's figures as JSON."""
from flask import request

from webapp import access, whole_numbers
from webapp.api import bp
from webapp.api.auth import requires
from webapp.api.responses import json_error
from webapp.dashboard import figures
from webapp.dashboard.summary import summary


@bp.get("/api/stats")
@requires(access.READ_LINKS)
def stats():
    """Clicks across all links over the last 7, 30 or 90 UTC days: totals with the previous periods,
    per-day clicks and visitors, the top links, referrers, countries, devices, browsers and OSes."""
    raw = request.args.get("days", "30")
    days = whole_numbers.parse(raw, 3)
    if days not in figures.WINDOWS:
        return json_error(422, f"days must be one of {', '.join(map(str, figures.WINDOWS))}.", field="days")
    result = summary(days)
    body = {
        "days": days,
        "first_day": result["first_day"],
        "last_day": result["last_day"],
        "totals": result["totals"],
        "series": [{name: point[name] for name in ("day", "clicks", "bots", "visitors")} for point in result["series"]],
        "top_links": result["top_links_by_days"][days],
        "requests": result["requests"],
    }
    body.update({name: [{"key": key, "clicks": count} for key, count in result[name]] for name in figures.DIMENSIONS})
    return body
