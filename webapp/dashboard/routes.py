"""The home dashboard's view."""
from flask import render_template

from webapp import access, charts
from webapp.auth import permission_required
from webapp.dashboard import bp
from webapp.dashboard.summary import summary

WINDOW = 30  # the page's chart and breakdowns; its totals are today, 7 and 30 days


@bp.get("/dashboard")
@permission_required(access.READ_LINKS)
def index():
    """Clicks across all links: today, 7 and 30 days against the periods before, the top links, where clicks came from."""
    figures = summary(WINDOW, top_link_windows=(7, WINDOW))
    title = f"Clicks per day, last {WINDOW} days (UTC)"
    chart = charts.stacked_bars(charts.day_bars(figures["series"]), title=title, chart_id="clicks-chart")
    return render_template("dashboard/index.html", figures=figures, chart=chart)
