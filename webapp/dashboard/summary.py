"""Read and compute the dashboard's figures: one place for the page and GET /api/stats."""
from webapp import clock
from webapp.dashboard import figures
from webapp.store import get_store

TITLED = 10  # the top links whose titles are read (one BatchGetItem)


def summary(window, top_link_windows=None):
    """The figures of the last `window` days (figures.figures), plus "top_links_by_days" {days: [{short_id,
    title, clicks}]} for each of top_link_windows (default: the window) and "requests", the table requests
    made: 2 * window day Queries (and their rare extra pages) and one BatchGetItem, whatever the number of links."""
    store = get_store()
    today = clock.utcnow().date()
    read = store.rollups.days(figures.first_day(today, window), today)
    result = figures.figures(read.days, today, window)
    tops = {days: figures.top(figures.recent_days(read.days, today, days), "links")
            for days in (top_link_windows or (window,))}
    wanted = [short_id for rows in tops.values() for short_id, _ in rows[:TITLED]]
    titles, title_requests = store.rollups.titles(wanted) if wanted else ({}, 0)
    result["top_links_by_days"] = {
        days: [{"short_id": short_id, "title": titles.get(short_id), "clicks": clicks} for short_id, clicks in rows]
        for days, rows in tops.items()
    }
    result["requests"] = read.requests + title_requests
    return result
