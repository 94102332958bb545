"""The home dashboard's view."""
from flask import render_template

from webapp import access
from webapp.auth import permission_required
from webapp.dashboard import bp
from webapp.dashboard.summary import summary

WINDOW = 30  # the page's chart and breakdowns; its totals are today, 7 and 30 days
CHART_WIDTH, CHART_HEIGHT = 600, 160


@bp.get("/dashboard")
@permission_required(access.READ_LINKS)
def index():
    """Clicks across all links: today, 7 and 30 days against the periods before, the top links, where clicks came from."""
    figures = summary(WINDOW, top_link_windows=(7, WINDOW))
    return render_template("dashboard/index.html", figures=figures, chart=chart(figures["series"]))


def chart(series):
    """Bars for a small server-side SVG of clicks per day: [{day, clicks, x, y, width, height}] in a
    CHART_WIDTH x CHART_HEIGHT box (no script, no inline style: valid under the app's CSP)."""
    peak = max((point["clicks"] for point in series), default=0)
    slot = CHART_WIDTH / max(len(series), 1)
    bars = []
    for index, point in enumerate(series):
        height = round(CHART_HEIGHT * point["clicks"] / peak, 1) if peak else 0
        bars.append({"day": point["day"], "clicks": point["clicks"], "x": round(index * slot + slot * 0.1, 1),
                     "y": round(CHART_HEIGHT - height, 1), "width": round(slot * 0.8, 1), "height": height})
    return {"width": CHART_WIDTH, "height": CHART_HEIGHT, "peak": peak, "bars": bars}
