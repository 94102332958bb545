"""A link's stats for a window: the store's one Query, the summaries, the link page (chart, periods, live part,
CSV) and the API (JSON and CSV). Stats items are written here in the aggregator's layout (the contract in
webapp/store/stats_items.py), so these tests do not depend on what the aggregator's parsers make of a click."""
import csv
import hashlib
import io
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import TABLE_NAME
from uniques import sketch
from webapp import stats
from webapp.store import stats_items

REGION, OTHER_REGION = "us-east-1", "eu-west-1"
NOW = datetime(2026, 12, 7, 14, 30, tzinfo=timezone.utc)
TODAY = NOW.date()
STATIC = Path(__file__).resolve().parent.parent / "webapp" / "static"


@pytest.fixture
def now(clock):
    """The app's clock at NOW (14:30 UTC, so the last 48 hours start at 15:00 two days ago)."""
    clock.now = NOW
    return clock


def put_day(ddb, short_id, day, region=REGION, *, clicks=0, bots=0, hours=None, bot_hours=None, visitors=None,
            sketch_of=None, **dimensions):
    """One stats item of a link-day, as the aggregator writes it."""
    item = {"pk": {"S": f"stats#{short_id}"}, "sk": {"S": f"day#{day}#{region}"},
            "clicks": {"N": str(clicks)}, "bots": {"N": str(bots)}, "m#abc0": {"S": "49590338"}}
    for prefix, counts in (("h#", hours or {}), ("hb#", bot_hours or {})):
        item.update({f"{prefix}{hour:02d}": {"N": str(n)} for hour, n in counts.items()})
    prefixes = {name: prefix for prefix, name in stats_items.DIMENSIONS.items()}
    for name, counts in dimensions.items():
        item.update({f"{prefixes[name]}{key}": {"N": str(n)} for key, n in counts.items()})
    if visitors:
        item["uv"] = {"BS": [visitor(n) for n in visitors]}
    if sketch_of:
        registers = sketch.add(sketch.new_registers(), [visitor(n) for n in sketch_of])
        item["uvh"] = {"B": sketch.encode(registers)}
    ddb.put_item(TableName=TABLE_NAME, Item=item)


def visitor(n):
    """Visitor n's 8-byte hash: uniformly random bits, as the redirect's keyed BLAKE2b gives."""
    return hashlib.blake2b(str(n).encode(), digest_size=8).digest()


def days_ago(n):
    return (TODAY - timedelta(days=n)).isoformat()


# --- the store: one Query, every click region summed


@pytest.fixture
def two_regions(store):
    """The store summing both regions, as SHORTENER_CLICK_REGIONS=us-east-1,eu-west-1 configures it."""
    store.links.regions = [REGION, OTHER_REGION]
    return store


def test_a_90_day_window_is_one_query(two_regions, store, ddb, now, table_requests):
    store.links.create("https://example.com/", created_by="alice", slug="ninety")
    for n in range(0, 90, 2):
        put_day(ddb, "ninety", days_ago(n), clicks=n + 1, referrers={"a.example": 1})
        put_day(ddb, "ninety", days_ago(n), OTHER_REGION, clicks=1)
    table_requests.clear()
    days = store.links.daily_stats("ninety", 90)
    assert [operation for operation, _ in table_requests] == ["Query"]
    assert len(days) == 45 and days[0]["day"] == days_ago(88) and days[-1]["day"] == TODAY.isoformat()
    assert days[-1]["clicks"] == 2  # both regions


def test_a_window_past_one_page_is_read_to_the_end(store, ddb, now, table_requests, monkeypatch):
    """Past DynamoDB's 1 MB a page (here: 7 items a page) the Query goes on from LastEvaluatedKey."""
    store.links.create("https://example.com/", created_by="alice", slug="heavy")
    for n in range(60):
        put_day(ddb, "heavy", days_ago(n), clicks=1, sketch_of=range(n * 1000, n * 1000 + 2_000))
    real = store.links.table.call
    monkeypatch.setattr(store.links.table, "call", lambda operation, **request: real(operation, Limit=7, **request))
    table_requests.clear()
    days = store.links.daily_stats("heavy", 90)
    assert len(days) == 60 and sum(d["clicks"] for d in days) == 60
    assert len(table_requests) == 9 and {operation for operation, _ in table_requests} == {"Query"}
    assert "ExclusiveStartKey" in table_requests[-1][1]
    assert stats_items.visitors(days[-1]) == pytest.approx(2_000, rel=0.02)


def test_regions_are_summed_and_their_visitors_counted_once(two_regions, store, ddb, now):
    store.links.create("https://example.com/", created_by="alice", slug="regions")
    put_day(ddb, "regions", days_ago(0), clicks=3, bots=1, hours={9: 3}, bot_hours={9: 1}, visitors=[1, 2, 3],
            browsers={"Firefox": 3}, oses={"Linux": 3})
    put_day(ddb, "regions", days_ago(0), OTHER_REGION, clicks=2, hours={9: 1, 10: 1}, visitors=[3, 4],
            browsers={"Firefox": 1, "Safari": 1}, oses={"iOS": 2})
    put_day(ddb, "regions", days_ago(91), clicks=5)  # outside the window
    put_day(ddb, "other", days_ago(0), clicks=7)  # another link's
    [day] = store.links.daily_stats("regions", 90)
    assert (day["clicks"], day["bots"], stats_items.visitors(day)) == (5, 1, 4)
    assert day["hours"] == {"09": 4, "10": 1} and day["bot_hours"] == {"09": 1}
    assert day["browsers"] == {"Firefox": 4, "Safari": 1} and day["oses"] == {"Linux": 3, "iOS": 2}


def test_an_id_no_link_can_have_costs_no_request(store, table_requests):
    from webapp.exceptions import LinkNotFound

    with pytest.raises(LinkNotFound):
        store.links.daily_stats("x" * 3000, 30)
    assert table_requests == []


# --- the summaries


def day(key, clicks=0, bots=0, hours=None, bot_hours=None, visitors=None, **dimensions):
    """A day as daily_stats gives it."""
    found = stats_items.empty_day(key)
    found.update(clicks=clicks, bots=bots, **dimensions)
    found["hours"] = {f"{hour:02d}": n for hour, n in (hours or {}).items()}
    found["bot_hours"] = {f"{hour:02d}": n for hour, n in (bot_hours or {}).items()}
    if visitors is not None:
        found["visitors"].append(({visitor(n) for n in visitors}, None))
    return found


def test_visitors_are_unknown_for_old_clicks_and_zero_for_an_empty_day():
    series = stats.daily([day(days_ago(2), clicks=3), day(days_ago(1), clicks=2, visitors=[7])], TODAY, 3)
    assert [(point["clicks"], point["visitors"]) for point in series] == [(3, None), (2, 1), (0, 0)]


def test_a_window_with_no_visitor_hash_says_visitors_are_not_known():
    summary = stats.summarise([day(days_ago(1), clicks=2)], TODAY, 7)
    assert not summary["visitors_known"]
    assert stats.summarise([day(days_ago(1), clicks=2, visitors=[1])], TODAY, 7)["visitors_known"]


def test_people_and_bots_stay_apart_per_day_and_in_total():
    summary = stats.summarise([day(days_ago(0), clicks=4, bots=9)], TODAY, 7)
    assert (summary["today"]["clicks"], summary["today"]["bots"], summary["clicks"], summary["bots"]) == (4, 9, 4, 9)


def test_countries_are_known_only_when_some_click_had_one():
    assert not stats.summarise([day(days_ago(0), clicks=4)], TODAY, 7)["countries_known"]
    assert stats.summarise([day(days_ago(0), clicks=4, countries={"DE": 4})], TODAY, 7)["countries_known"]


def test_the_top_of_each_dimension_is_summed_over_the_window():
    found = [day(days_ago(1), clicks=3, browsers={"Firefox": 2, "Chrome": 1}, oses={"Linux": 3}),
             day(days_ago(0), clicks=3, browsers={"Chrome": 3}, oses={"Android": 3}, devices={"(other)": 3})]
    summary = stats.summarise(found, TODAY, 7)
    assert summary["browsers"] == [("Chrome", 4), ("Firefox", 2)]
    assert summary["oses"] == [("Linux", 3), ("Android", 3)] and summary["devices"] == [("(other)", 3)]


def test_the_48_hours_end_with_this_hour_and_reach_into_three_days():
    found = [day(days_ago(2), clicks=5, hours={15: 5}), day(days_ago(1), clicks=1, bots=2, hours={0: 1}, bot_hours={23: 2}),
             day(days_ago(0), clicks=4, hours={14: 4})]
    series = stats.hourly(found, NOW)
    assert len(series) == stats.HOURS
    assert series[0]["hour"] == datetime(2026, 12, 5, 15) and series[-1]["hour"] == datetime(2026, 12, 7, 14)
    assert (series[0]["clicks"], series[-1]["clicks"]) == (5, 4)
    assert sum(point["clicks"] for point in series) == 10 and sum(point["bots"] for point in series) == 2


def test_hours_of_a_day_counted_before_hours_were_are_unknown():
    series = stats.hourly([day(days_ago(1), clicks=6)], NOW)
    assert {point["clicks"] for point in series if point["hour"].date().isoformat() == days_ago(1)} == {None}
    assert {point["clicks"] for point in series if point["hour"].date() == TODAY} == {0}


# --- the link page


@pytest.fixture
def signed_in(client, auth, store, ddb, now):
    store.links.create("https://example.com/", created_by="alice", slug="page")
    put_day(ddb, "page", days_ago(0), clicks=4, bots=2, hours={13: 3, 14: 1}, bot_hours={14: 2}, visitors=[1, 2, 3],
            referrers={"news.example": 4}, browsers={"Firefox": 4})
    put_day(ddb, "page", days_ago(20), clicks=6, referrers={"old.example": 6})
    put_day(ddb, "page", days_ago(60), clicks=9)
    auth.login()
    return client


def bar_count(page):
    return len(re.findall(r'<g><title>', page))


@pytest.mark.parametrize(("query", "bars", "heading", "clicks"), [
    ("", 30, "Last 30 days", 10), ("?days=7", 7, "Last 7 days", 4), ("?days=30", 30, "Last 30 days", 10),
    ("?days=90", 90, "Last 90 days", 19), ("?hours=48", 48, "Last 48 hours", 4),
])
def test_the_page_charts_the_period_chosen_by_a_link(signed_in, query, bars, heading, clicks):
    page = signed_in.get(f"/links/page{query}").get_data(as_text=True)
    assert bar_count(page) == bars
    assert heading in page
    assert f"{clicks} clicks by people" in page
    assert 'role="img"' in page and "<desc id=\"clicks-chart-desc\">" in page
    assert 'aria-current="page"' in page.split('class="ranges"')[1].split("</nav>")[0]


def test_the_page_gives_the_numbers_as_a_table(signed_in):
    page = signed_in.get("/links/page?days=7").get_data(as_text=True)
    table = page.split('<details id="stats-numbers"')[1].split("</details>")[0]
    assert "<caption" in table and table.count("<tr><td><time") == 7
    assert re.search(rf'datetime="{TODAY}">{TODAY}</time></td>\s*<td class="number">4</td><td class="number">2</td>\s*'
                     r'<td class="number">3</td>', table)


def test_the_page_says_visitors_and_countries_are_not_known_rather_than_zero(signed_in):
    page = signed_in.get("/links/page?days=30").get_data(as_text=True)
    assert "not measured" in page  # day 20's clicks have no visitor hash
    assert "no trusted front" in page


def test_the_page_shows_todays_counts_and_every_breakdown(signed_in):
    page = signed_in.get("/links/page").get_data(as_text=True)
    today = page.split('<dl class="today">')[1].split("</dl>")[0]
    assert re.search(r"data-today-clicks>4</span>", today) and "Visitors today" in today
    for title in ("Top referrers", "Countries", "Devices", "Browsers", "Operating systems"):
        assert f"<h4>{title}</h4>" in page
    assert "news.example" in page and "Firefox" in page


def test_the_page_has_no_inline_style_or_script(signed_in):
    """The CSP allows neither: the chart is coloured by app.css, the live part run by static scripts."""
    response = signed_in.get("/links/page?hours=48")
    page = response.get_data(as_text=True)
    assert "style-src 'self'" in response.headers["Content-Security-Policy"]
    assert not re.search(r"\sstyle=", page) and "<style" not in page
    assert re.findall(r"<script[^>]*>", page) == [
        '<script src="/static/app.js" defer>', '<script src="/static/vendor/htmx-2.0.11.min.js" defer>',
        '<script src="/static/live.js" defer>']


@pytest.mark.parametrize(("query", "message"), [
    ("?days=14", "days must be one of 7, 30, 90."), ("?days=abc", "days must be one of"), ("?days=", "days must be one of"),
    ("?days=%D9%A3%D9%A0", "days must be one of"),  # Arabic-Indic 30
    ("?hours=24", "hours must be 48"), ("?hours=48&days=7", "hours must be 48"),
])
@pytest.mark.parametrize("path", ["/links/page", "/links/page/stats/live", "/links/page/stats.csv"])
def test_a_bad_period_is_refused_with_a_clear_message(signed_in, path, query, message):
    response = signed_in.get(path + query)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/links/missing", "/links/missing/stats/live", "/links/missing/stats.csv",
                                  "/links/missing?days=7"])
def test_a_missing_link_is_404(signed_in, path):
    assert signed_in.get(path).status_code == 404


def test_the_live_part_is_todays_counts_and_the_chart_alone(two_regions, signed_in, ddb):
    put_day(ddb, "page", days_ago(0), OTHER_REGION, clicks=5)
    response = signed_in.get("/links/page/stats/live?days=7")
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in fragment
    assert 'id="stats-live"' in fragment
    assert "data-today-clicks>9</span>" in fragment and bar_count(fragment) == 7
    # It polls itself for the same period, at a bounded interval.
    assert 'hx-get="/links/page/stats/live?days=7"' in fragment and 'hx-trigger="every 5s, live-refresh"' in fragment


def test_the_live_part_needs_a_signed_in_reader(client, store, now):
    store.links.create("https://example.com/", created_by="alice", slug="page")
    response = client.get("/links/page/stats/live")
    assert response.status_code == 303 and "/login" in response.headers["Location"]


def test_the_page_offers_the_csv_of_its_period(signed_in):
    page = signed_in.get("/links/page?days=90").get_data(as_text=True)
    assert 'href="/links/page/stats.csv?days=90" download>Download CSV</a>' in page


def rows_of(response):
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_the_pages_csv_is_a_row_per_day(signed_in):
    response = signed_in.get("/links/page/stats.csv?days=30")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == f'attachment; filename="page-stats-{days_ago(29)}-to-{TODAY}.csv"'
    rows = rows_of(response)
    assert rows[0] == ["day", "clicks", "bots", "visitors"] and len(rows) == 31
    assert rows[-1] == [TODAY.isoformat(), "4", "2", "3"]
    assert rows[-21] == [days_ago(20), "6", "0", ""]  # clicks with no visitor hash: unknown, left empty
    assert rows[1] == [days_ago(29), "0", "0", "0"]


def test_the_csv_escapes_a_cell_a_spreadsheet_would_run_csv_injection():
    text = stats.csv_text([{"day": "=HYPERLINK(\"http://evil.example\")", "clicks": "+1", "bots": "-1", "visitors": "@x"}])
    assert list(csv.reader(io.StringIO(text)))[1] == ["'=HYPERLINK(\"http://evil.example\")", "'+1", "'-1", "'@x"]


# --- the API


@pytest.fixture
def bearer(api_token):
    return {"Authorization": f"Bearer {api_token}"}


def test_the_api_gives_every_day_with_visitors_and_the_windows_totals(client, bearer, store, ddb, now):
    store.links.create("https://example.com/", created_by="alice", slug="api")
    put_day(ddb, "api", days_ago(0), clicks=4, bots=1, visitors=[1, 2], countries={"DE": 4}, devices={"Desktop": 4},
            browsers={"Firefox": 4}, oses={"Linux": 4}, referrers={"a.example": 1})
    put_day(ddb, "api", days_ago(3), clicks=2, browsers={"Chrome": 2})
    body = client.get("/api/links/api/stats?days=7", headers=bearer).get_json()
    assert (body["first_day"], body["last_day"], body["clicks"], body["bots"]) == (days_ago(6), TODAY.isoformat(), 6, 1)
    assert [(d["day"], d["clicks"], d["bots"], d["visitors"]) for d in body["days"]] == [
        (days_ago(6), 0, 0, 0), (days_ago(5), 0, 0, 0), (days_ago(4), 0, 0, 0), (days_ago(3), 2, 0, None),
        (days_ago(2), 0, 0, 0), (days_ago(1), 0, 0, 0), (TODAY.isoformat(), 4, 1, 2)]
    assert body["browsers"] == {"Firefox": 4, "Chrome": 2} and body["oses"] == {"Linux": 4}
    assert body["countries"] == {"DE": 4} and body["devices"] == {"Desktop": 4} and body["referrers"] == {"a.example": 1}
    assert body["days"][-1]["browsers"] == {"Firefox": 4}


@pytest.mark.parametrize("days", ["7", "30", "90"])
def test_the_api_window_is_one_query(client, bearer, store, ddb, now, table_requests, days):
    store.links.create("https://example.com/", created_by="alice", slug="api")
    table_requests.clear()
    body = client.get(f"/api/links/api/stats?days={days}", headers=bearer).get_json()
    assert len(body["days"]) == int(days)
    stats_queries = [request for operation, request in table_requests
                     if operation == "Query" and request["ExpressionAttributeValues"].get(":pk") == {"S": "stats#api"}]
    assert len(stats_queries) == 1


def test_the_api_csv(client, bearer, store, ddb, now):
    store.links.create("https://example.com/", created_by="alice", slug="api")
    put_day(ddb, "api", days_ago(0), clicks=4, bots=1, visitors=[1, 2])
    response = client.get("/api/links/api/stats.csv?days=7", headers=bearer)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="api-stats-')
    rows = rows_of(response)
    assert len(rows) == 8 and rows[-1] == [TODAY.isoformat(), "4", "1", "2"]


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/api/links/api/stats.csv?days=0", 422, "days must be a whole number from 1 to 366"),
    ("/api/links/api/stats.csv?days=x", 422, "days must be a whole number"),
    ("/api/links/nothing/stats.csv", 404, "There is no short link with that id."),
])
def test_the_api_csv_refuses_bad_requests(client, bearer, store, path, status, message):
    store.links.create("https://example.com/", created_by="alice", slug="api")
    response = client.get(path, headers=bearer)
    assert response.status_code == status and message in response.get_json()["error"]


def test_the_api_csv_needs_a_token(client, store):
    store.links.create("https://example.com/", created_by="alice", slug="api")
    assert client.get("/api/links/api/stats.csv").status_code == 401


# --- the live script


def test_the_vendored_htmx_is_the_one_its_readme_names():
    readme = (STATIC / "vendor" / "README.md").read_text()
    digest = hashlib.sha256((STATIC / "vendor" / "htmx-2.0.11.min.js").read_bytes()).hexdigest()
    assert f"`{digest}`" in readme
    assert (STATIC / "vendor" / "htmx-LICENSE.txt").read_text().startswith("Zero-Clause BSD")


def test_the_live_script_keeps_htmx_within_the_csp():
    script = (STATIC / "live.js").read_text()
    for setting in ("includeIndicatorStyles: false", "allowEval: false", "allowScriptTags: false", "selfRequestsOnly: true"):
        assert setting in script
    assert "document.hidden" in script and "MAX_MINUTES" in script
