"""The home dashboard (/dashboard) and GET /api/stats, over rollup items written here as the aggregator
writes them (pk "rollup#<day>", sk "<region>#<mark>"; the contract in webapp/store/stats_items.py)."""
from datetime import date, datetime, timedelta, timezone

import pytest

from tests.conftest import REGION, TABLE_NAME, make_app, sign_in_as, token_for
from webapp.dashboard import figures as dashboard_figures

TODAY = date(2026, 3, 31)
NOW = datetime(2026, 3, 31, 12, 0, tzinfo=timezone.utc)
DIMENSION_PREFIXES = {"referrers": ("ref#", "refs"), "countries": ("cc#", "ccs"), "devices": ("dev#", "devs"),
                      "browsers": ("br#", "brs"), "oses": ("os#", "oss")}


def put_rollup(ddb, day, region=REGION, mark="m#life0010", clicks=0, bots=0, links=None, visitors=None, **dimensions):
    """One rollup item of a day, region and shard, as the aggregator writes it."""
    ddb.put_item(TableName=TABLE_NAME, Item=rollup_item(day, region, mark, clicks, bots, links, visitors, **dimensions))


def rollup_item(day, region, mark, clicks=0, bots=0, links=None, visitors=None, **dimensions):
    """A rollup item (low-level DynamoDB form): clicks, bots, lnk#<id> with lnks, dimension counters with
    their sets, and uv from small whole numbers."""
    item = {"pk": {"S": f"rollup#{day}"}, "sk": {"S": f"{region}#{mark}"},
            "clicks": {"N": str(clicks)}, "bots": {"N": str(bots)}}
    if links:
        item.update({f"lnk#{short_id}": {"N": str(count)} for short_id, count in links.items()})
        item["lnks"] = {"SS": list(links)}
    for name, counts in dimensions.items():
        prefix, set_name = DIMENSION_PREFIXES[name]
        item.update({f"{prefix}{key}": {"N": str(count)} for key, count in counts.items()})
        item[set_name] = {"SS": list(counts)}
    if visitors:
        item["uv"] = {"BS": [value.to_bytes(8, "big") for value in visitors]}
    return item


def put_link(ddb, short_id, title=None):
    item = {"pk": {"S": short_id}, "sk": {"S": "link"}, "url": {"S": f"https://example.com/{short_id}"}}
    if title:
        item["title"] = {"S": title}
    ddb.put_item(TableName=TABLE_NAME, Item=item)


@pytest.fixture
def today(monkeypatch):
    """The app's clock at noon UTC on TODAY."""
    from webapp import clock

    monkeypatch.setattr(clock, "utcnow", lambda: NOW)
    return TODAY


def day(offset):
    """TODAY minus offset days, as the rollup key's day."""
    return (TODAY - timedelta(days=offset)).isoformat()


# --- the store: reading and merging a range of days


def test_a_regions_shards_give_each_links_largest_total_and_regions_add_up(ddb, today):
    app = make_app(CLICK_REGIONS=["us-east-1", "eu-west-1"])
    # Two shards of us-east-1 both saw link "a": its running totals 3 then 5 -> 5, not 8.
    put_rollup(ddb, day(0), mark="m#life0010", clicks=3, links={"a": 3, "b": 1})
    put_rollup(ddb, day(0), mark="m#life0011", clicks=4, links={"a": 5})
    put_rollup(ddb, day(0), region="eu-west-1", clicks=2, links={"a": 2})
    put_rollup(ddb, day(0), region="ap-south-1", clicks=100, links={"a": 100})  # not a region this app sums
    read = app.extensions["store"].rollups.days(TODAY - timedelta(days=1), TODAY)
    assert [d["day"] for d in read.days] == [day(1), day(0)]
    assert read.days[0]["clicks"] == 0 and read.days[0]["links"] == {}
    assert read.days[1]["clicks"] == 9
    assert read.days[1]["links"] == {"a": 7, "b": 1}
    assert read.requests == 2


def test_visitors_of_a_day_are_counted_once_across_its_items(app, ddb, today):
    put_rollup(ddb, day(0), mark="m#life0010", clicks=3, visitors=[1, 2, 3])
    put_rollup(ddb, day(0), mark="m#life0011", clicks=2, visitors=[3, 4])
    put_rollup(ddb, day(1), clicks=2)  # clicks without visitor hashes: not known, not zero
    from webapp.store import stats_items

    read = app.extensions["store"].rollups.days(TODAY - timedelta(days=1), TODAY)
    assert [stats_items.visitors(d) for d in read.days] == [None, 4]


class _PagedTable:
    """A table whose Query answers one item a page, to prove a day's pages are all read."""

    name = "t"

    def __init__(self, items):
        self.items, self.calls = items, 0

    def call(self, operation, **kwargs):
        self.calls += 1
        start = int(kwargs["ExclusiveStartKey"]["n"]["N"]) if "ExclusiveStartKey" in kwargs else 0
        page = {"Items": self.items[start:start + 1]}
        if start + 1 < len(self.items):
            page["LastEvaluatedKey"] = {"n": {"N": str(start + 1)}}
        return page


def test_every_page_of_a_day_is_read_and_counted():
    from webapp.store.rollups import Rollups

    class Regions:
        def click_regions(self):
            return [REGION]

    items = [{"pk": {"S": f"rollup#{day(0)}"}, "sk": {"S": f"{REGION}#m#life00{n}"}, "clicks": {"N": "1"}}
             for n in range(3)]
    table = _PagedTable(items)
    read = Rollups(table, Regions()).days(TODAY, TODAY)
    assert read.days[0]["clicks"] == 3
    assert read.requests == table.calls == 3


@pytest.mark.parametrize("links", [3, 150])
def test_the_dashboard_costs_the_same_requests_at_any_number_of_links(app, ddb, today, table_requests, links):
    """60 day Queries (30 days and the 30 before) and one BatchGetItem of titles, at 3 links or 150."""
    from webapp.dashboard.summary import summary

    ids = [f"link{n:03d}" for n in range(links)]
    for short_id in ids:
        put_link(ddb, short_id, title=f"Title {short_id}")
    for offset in range(0, 60, 3):
        # Each shard keeps its 100 busiest links (TOP_LINKS): two shards hold them all here.
        put_rollup(ddb, day(offset), mark="m#life0010", clicks=links, links={i: offset + 1 for i in ids[:100]})
        put_rollup(ddb, day(offset), mark="m#life0011", clicks=links, links={i: offset + 2 for i in ids[100:]})
    table_requests.clear()
    with app.test_request_context():
        result = summary(30, top_link_windows=(7, 30))
    operations = [operation for operation, _ in table_requests]
    assert operations.count("Query") == 60
    assert operations.count("BatchGetItem") == 1
    assert result["requests"] == len(operations) == 61
    assert len(result["top_links_by_days"][30]) == min(links, dashboard_figures.TOP)
    assert all(row["title"] == f"Title {row['short_id']}" for row in result["top_links_by_days"][30])


def test_titles_are_read_for_at_most_the_top_ten_of_each_window(app, ddb, today, table_requests):
    from webapp.dashboard.summary import summary

    put_rollup(ddb, day(0), clicks=30, links={f"id{n:02d}": n + 1 for n in range(30)})
    table_requests.clear()
    with app.test_request_context():
        summary(30, top_link_windows=(7, 30))
    (batch,) = [params for operation, params in table_requests if operation == "BatchGetItem"]
    assert len(batch["RequestItems"][TABLE_NAME]["Keys"]) == 10  # the same ten lead both windows


def test_a_rollup_past_its_purge_at_is_skipped_while_ttl_has_not_deleted_it_yet(app, ddb, today):
    """DynamoDB deletes an item past its TTL some time later: until then the day is not shown, whole."""
    put_rollup(ddb, day(10), clicks=4, links={"a": 4})
    put_rollup(ddb, day(9), clicks=2)
    for rollup_day, purge_at in ((day(10), NOW.timestamp() - 1), (day(9), NOW.timestamp() + 3600)):
        ddb.update_item(TableName=TABLE_NAME, Key={"pk": {"S": f"rollup#{rollup_day}"}, "sk": {"S": f"{REGION}#m#life0010"}},
                        UpdateExpression="SET purge_at = :p", ExpressionAttributeValues={":p": {"N": str(int(purge_at))}})
    read = app.extensions["store"].rollups.days(TODAY - timedelta(days=10), TODAY - timedelta(days=9))
    assert [(d["day"], d["clicks"], d["links"]) for d in read.days] == [(day(10), 0, {}), (day(9), 2, {})]


def test_days_are_read_several_at_once(app, ddb, today, monkeypatch):
    """Why rollups.py reads days with a small thread pool: its Queries are in flight together, never more than
    _WORKERS. No clock: each Query waits (at most 10 s) until _WORKERS of them have started, which Queries sent
    one by one never do. The time this saves is measured by bench/analytics.py, not asserted here."""
    import threading

    from webapp.store import rollups

    store = app.extensions["store"]
    real, changed = store.rollups.table.call, threading.Condition()
    flight = {"now": 0, "most": 0, "gave_up": False}

    def call(operation, **request):
        with changed:
            flight["now"] += 1
            flight["most"] = max(flight["most"], flight["now"])
            changed.notify_all()
            # Gave up once: the Queries are one by one, so the rest do not wait 10 s each.
            if not changed.wait_for(lambda: flight["most"] >= rollups._WORKERS or flight["gave_up"], timeout=10):
                flight["gave_up"] = True
        try:
            return real(operation, **request)
        finally:
            with changed:
                flight["now"] -= 1

    for offset in range(30):
        put_rollup(ddb, day(offset), clicks=1)
    monkeypatch.setattr(store.rollups.table, "call", call)
    read = store.rollups.days(TODAY - timedelta(days=29), TODAY)
    assert sum(d["clicks"] for d in read.days) == 30 and read.requests == 30
    assert flight["most"] == rollups._WORKERS > 1 and not flight["gave_up"]


# --- the figures


def test_totals_compare_each_period_with_the_one_before(app, ddb, today):
    from webapp.dashboard.summary import summary

    put_rollup(ddb, day(0), clicks=4, bots=9)
    put_rollup(ddb, day(1), clicks=2)  # yesterday
    put_rollup(ddb, day(6), clicks=10)  # still within the last 7 days
    put_rollup(ddb, day(7), clicks=8)  # the 7 days before
    put_rollup(ddb, day(29), clicks=1)
    put_rollup(ddb, day(30), clicks=5)  # the 30 days before
    with app.test_request_context():
        result = summary(30)
    totals = {period["days"]: period for period in result["totals"]}
    assert (totals[1]["clicks"], totals[1]["previous"], totals[1]["change"], totals[1]["bots"]) == (4, 2, 100, 9)
    assert (totals[7]["clicks"], totals[7]["previous"], totals[7]["change"]) == (16, 8, 100)
    assert (totals[30]["clicks"], totals[30]["previous"], totals[30]["change"]) == (25, 5, 400)
    assert result["series"][0]["day"] == day(29)
    assert result["series"][-1] == {"day": day(0), "clicks": 4, "bots": 9, "visitors": None, "percent": 40}


@pytest.mark.parametrize("now, before, expected", [(5, 0, None), (0, 0, None), (5, 10, -50), (10, 10, 0), (3, 2, 50)])
def test_the_change_is_a_whole_percentage_or_none_without_a_previous_period(now, before, expected):
    assert dashboard_figures.change(now, before) == expected


def test_top_links_of_7_and_30_days_differ_by_window(app, ddb, today):
    from webapp.dashboard.summary import summary

    put_rollup(ddb, day(1), clicks=3, links={"recent": 3})
    put_rollup(ddb, day(20), clicks=9, links={"older": 9})
    with app.test_request_context():
        result = summary(30, top_link_windows=(7, 30))
    tops = result["top_links_by_days"]
    assert [row["short_id"] for row in tops[7]] == ["recent"]
    assert [row["short_id"] for row in tops[30]] == ["older", "recent"]


# --- the page


def test_the_dashboard_shows_the_figures_to_every_signed_in_role(app, client, ddb, store, today):
    put_link(ddb, "spring", title="Spring <b>sale</b>")
    put_rollup(ddb, day(0), clicks=1234, links={"spring": 1234}, visitors=[1, 2, 3],
               referrers={"news.example": 700}, devices={"Desktop": 1000}, browsers={"Firefox": 800},
               oses={"Linux": 600})
    put_rollup(ddb, day(1), clicks=617)
    sign_in_as(client, store, "viewer")
    response = client.get("/dashboard")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-days="1"' in html and "1,234" in html and "617 yesterday" in html and "up 100%" in html
    assert "Days are UTC" in html
    assert "no count of unique visitors over several days" in html
    assert 'href="/links/spring"' in html and "Spring &lt;b&gt;sale&lt;/b&gt;" in html
    assert "news.example" in html and "Firefox" in html and "Linux" in html and "Desktop" in html
    assert "None: no trusted front sets countries." in html
    # The chart is webapp/charts.py's, as on a link's page: people and bots stacked, the busiest day described.
    assert 'id="clicks-chart-title">Clicks per day, last 30 days (UTC)<' in html
    assert "1,851 clicks by people" in html and "The busiest was " + day(0) + ", with 1,234 by people." in html
    assert 'class="chart-people"' in html
    assert ">3</td>" in html  # the day's unique visitors, in the table
    assert "style=" not in html and "<script>" not in html  # the CSP allows neither inline
    assert "How long per-day stats are kept" not in html  # a viewer cannot change it


def test_an_empty_table_gives_a_dashboard_of_zeros(client, auth, today):
    auth.login()
    html = client.get("/dashboard").get_data(as_text=True)
    assert "No clicks yet." in html and "not known" in html
    assert "How long per-day stats are kept" in html  # an admin can


def test_the_dashboard_needs_a_signed_in_user(client):
    response = client.get("/dashboard")
    assert response.status_code == 303 and "/login" in response.headers["Location"]


def test_the_nav_leads_to_the_dashboard(client, auth):
    auth.login()
    html = client.get("/").get_data(as_text=True)
    assert 'href="/dashboard"' in html


# --- GET /api/stats


def test_the_api_gives_the_dashboards_figures(app, client, ddb, store, today):
    put_link(ddb, "spring", title="Spring")
    put_rollup(ddb, day(0), clicks=5, bots=1, links={"spring": 5}, visitors=[7, 8], countries={"DE": 5})
    put_rollup(ddb, day(8), clicks=2, links={"spring": 2})
    token = token_for(store, "viewer")
    response = client.get("/api/stats?days=7", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["days"] == 7 and body["first_day"] == day(6) and body["last_day"] == day(0)
    assert body["totals"] == [{"days": 1, "clicks": 5, "previous": 0, "change": None, "bots": 1},
                              {"days": 7, "clicks": 5, "previous": 2, "change": 150, "bots": 1}]
    assert len(body["series"]) == 7
    assert body["series"][-1] == {"day": day(0), "clicks": 5, "bots": 1, "visitors": 2}
    assert body["series"][0]["visitors"] is None
    assert body["top_links"] == [{"short_id": "spring", "title": "Spring", "clicks": 5}]
    assert body["countries"] == [{"key": "DE", "clicks": 5}]
    assert body["referrers"] == [] and body["oses"] == []
    assert body["requests"] == 15  # 14 days and one BatchGetItem


@pytest.mark.parametrize("days", ["0", "8", "365", "abc", "-7", "7.0", " 7", "\u0667", "9" * 40, ""])
def test_the_api_refuses_days_other_than_7_30_or_90(client, api_token, days):
    response = client.get("/api/stats", query_string={"days": days}, headers={"Authorization": f"Bearer {api_token}"})
    assert response.status_code == 422
    assert response.get_json() == {"error": "days must be one of 7, 30, 90.", "field": "days"}


def test_the_api_defaults_to_30_days(client, api_token, today):
    body = client.get("/api/stats", headers={"Authorization": f"Bearer {api_token}"}).get_json()
    assert body["days"] == 30 and len(body["series"]) == 30 and [t["days"] for t in body["totals"]] == [1, 7, 30]


def test_the_api_needs_a_token(client):
    assert client.get("/api/stats").status_code == 401


def test_the_api_answers_match_the_openapi_description(client, ddb, api_token, today):
    import schemathesis

    from webapp.api.openapi import SPEC, SPEC_PATH

    put_link(ddb, "spring")  # no title: null
    put_rollup(ddb, day(0), clicks=5, links={"spring": 5}, visitors=[1], referrers={"(other)": 5})
    schema = schemathesis.openapi.from_path(SPEC_PATH)["/api/stats"]["GET"]
    for query in ("?days=7", "?days=30", "?days=90", "?days=12", ""):
        response = client.get(f"/api/stats{query}", headers={"Authorization": f"Bearer {api_token}"})
        schema.validate_response(response)
    parameter = SPEC["paths"]["/api/stats"]["get"]["parameters"][0]
    assert parameter["schema"]["enum"] == list(dashboard_figures.WINDOWS)
    assert SPEC["components"]["schemas"]["DashboardStats"]["properties"]["top_links"]["maxItems"] == dashboard_figures.TOP
