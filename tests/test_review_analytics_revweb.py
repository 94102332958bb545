"""Outside review of the admin's analytics (issue 18): attacks on the stats pages, the live part, the API and
the retention form, each a test that failed before its fix or pins what held."""
import csv
import io

import pytest

from tests.conftest import TABLE_NAME, make_app, sign_in_as, token_for
from tests.test_dashboard import put_link, put_rollup
from tests.test_dashboard import day as rollup_day
from tests.test_dashboard import today  # noqa: F401 - fixture
from tests.test_link_stats import NOW, TODAY, days_ago, now, put_day  # noqa: F401 - fixture

HOSTILE = '<script>alert(1)</script>"\'&'


@pytest.fixture
def bearer(api_token):
    return {"Authorization": f"Bearer {api_token}"}


@pytest.mark.parametrize("path", ["/api/links/api/stats", "/api/links/api/stats.csv"])
def test_a_days_value_of_thousands_of_digits_is_a_422_not_a_500(client, bearer, store, now, path):
    """int() refuses a string of more than 4,300 digits (CPython's int_max_str_digits) with a ValueError."""
    store.links.create("https://example.com/", created_by="alice", slug="api")
    response = client.get(f"{path}?days={'1' * 5000}", headers=bearer)
    assert response.status_code == 422
    assert "days must be a whole number" in response.get_json()["error"]


def test_the_dashboard_api_refuses_thousands_of_digits(client, store, today):
    response = client.get(f"/api/stats?days={'3' * 5000}", headers={"Authorization": f"Bearer {token_for(store, 'viewer')}"})
    assert response.status_code == 422


@pytest.mark.parametrize("days", ["\u0663\u0660", "\uff13\uff10", "30.0", "+30", " 30", "030", "30&days=7"])
def test_the_page_refuses_days_that_only_look_like_a_window(client, auth, store, now, days):
    store.links.create("https://example.com/", created_by="alice", slug="page")
    auth.login()
    assert client.get("/links/page", query_string={"days": days}).status_code == 422


def test_hostile_dimension_keys_are_escaped_on_the_page_and_the_dashboard(client, auth, store, ddb, now):
    store.links.create("https://example.com/", created_by="alice", slug="page")
    put_day(ddb, "page", days_ago(0), clicks=2, referrers={HOSTILE: 1}, devices={HOSTILE: 2}, browsers={HOSTILE: 1},
            oses={HOSTILE: 1}, countries={HOSTILE: 1})
    auth.login()
    page = client.get("/links/page?days=7").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_hostile_keys_and_titles_are_escaped_on_the_dashboard(client, auth, store, ddb, now):
    put_link(ddb, "evil", title=HOSTILE)
    put_rollup(ddb, days_ago(0), clicks=3, links={"evil": 3, "<b>x": 1}, referrers={HOSTILE: 3})
    auth.login()
    page = client.get("/dashboard").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "<b>x" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 3  # the title in both top lists, and the referrer


def test_a_disabled_users_live_poll_is_sent_to_sign_in(client, store, ddb, now):
    store.links.create("https://example.com/", created_by="alice", slug="live")
    username = sign_in_as(client, store, "viewer")
    assert client.get("/links/live/stats/live").status_code == 200
    store.users.set_disabled(username, True)
    response = client.get("/links/live/stats/live")
    assert response.status_code == 303 and "/login" in response.headers["Location"]


def test_a_link_disabled_while_its_page_is_open_keeps_its_live_stats(client, auth, store, ddb, now):
    store.links.create("https://example.com/", created_by="alice", slug="off")
    put_day(ddb, "off", days_ago(0), clicks=3)
    auth.login()
    assert client.get("/links/off/stats/live").status_code == 200
    store.links.set_active("off", False, by="alice")
    live = client.get("/links/off/stats/live")
    assert live.status_code == 200 and 'data-today-clicks>3<' in live.get_data(as_text=True)
    assert client.get("/links/nosuch/stats/live").status_code == 404


@pytest.mark.parametrize("scope_role", [("read", "viewer"), ("read", "admin"), ("write", "editor")])
def test_every_reader_token_reads_stats(client, store, now, today, scope_role):
    scope, role = scope_role
    store.links.create("https://example.com/", created_by="alice", slug="api")
    headers = {"Authorization": f"Bearer {token_for(store, role, scope)}"}
    for path in ("/api/stats", "/api/links/api/stats", "/api/links/api/stats.csv"):
        assert client.get(path, headers=headers).status_code == 200, path


def test_the_retention_form_refuses_a_post_without_its_csrf_token(ddb):
    app = make_app(WTF_CSRF_ENABLED=True)
    store = app.extensions["store"]
    store.users.create("alice", "correct horse battery staple")
    client = app.test_client()
    login_page = client.get("/login").get_data(as_text=True)
    import re
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    assert client.post("/login", data={"username": "alice", "password": "correct horse battery staple",
                                       "csrf_token": token}).status_code == 303
    response = client.post("/settings/stats", data={"days": "7"})
    assert response.status_code in (400, 422)
    assert store.settings.get("stats_retention_days") is None


def test_the_csv_of_a_link_has_only_numbers_and_days(client, bearer, store, ddb, now):
    store.links.create("https://example.com/", created_by="alice", slug="api")
    put_day(ddb, "api", days_ago(0), clicks=1, referrers={"=HYPERLINK(\"http://x\")": 1})
    rows = list(csv.reader(io.StringIO(client.get("/api/links/api/stats.csv?days=7", headers=bearer).get_data(as_text=True))))
    assert rows[0] == ["day", "clicks", "bots", "visitors"] and all(not cell.startswith("=") for row in rows for cell in row)


@pytest.mark.parametrize("path", ["/api/links?limit=", "/api/links/api/audit?limit="])
def test_a_limit_of_thousands_of_digits_is_a_422_not_a_500(client, bearer, store, now, path):
    """The same int() limit as ?days=, in the other limits of webapp/api/routes.py."""
    store.links.create("https://example.com/", created_by="alice", slug="api")
    assert client.get(f"{path}{'1' * 5000}", headers=bearer).status_code == 422


@pytest.mark.parametrize("path", ["/api/tokens?limit=", "/api/audit?limit="])
def test_other_limits_of_thousands_of_digits_are_a_422_not_a_500(client, bearer, path):
    assert client.get(f"{path}{'1' * 5000}", headers=bearer).status_code in (400, 422)


def midnight_during_the_query(store, monkeypatch, when):
    """The app's clock at 23:59:59 UTC on TODAY, then 00:00:00 the next day from just before the link's stats
    Query (when="before") or just after it (when="after")."""
    from datetime import datetime, time, timedelta, timezone

    from webapp import clock

    before = datetime.combine(TODAY, time(23, 59, 59), timezone.utc)
    state = {"now": before}
    monkeypatch.setattr(clock, "utcnow", lambda: state["now"])
    real = store.links.daily_stats

    def crossing(*args, **kwargs):
        if when == "before":
            state["now"] = before + timedelta(seconds=1)
        found = real(*args, **kwargs)
        state["now"] = before + timedelta(seconds=1)
        return found

    monkeypatch.setattr(store.links, "daily_stats", crossing)


@pytest.fixture
def three_days(store, ddb):
    """A link with clicks on the first day of a 7-day window, on TODAY and on the day after TODAY."""
    from datetime import timedelta

    store.links.create("https://example.com/", created_by="alice", slug="mid")
    put_day(ddb, "mid", days_ago(6), clicks=7)
    put_day(ddb, "mid", days_ago(0), clicks=2)
    put_day(ddb, "mid", (TODAY + timedelta(days=1)).isoformat(), clicks=5)


def test_midnight_during_the_api_query_keeps_totals_and_days_in_step(client, bearer, store, three_days, monkeypatch):
    """The route and the store each read the clock: a Query made across midnight summed a day into the totals
    that the days did not show."""
    midnight_during_the_query(store, monkeypatch, "after")
    body = client.get("/api/links/mid/stats?days=7", headers=bearer).get_json()
    assert body["clicks"] == sum(point["clicks"] for point in body["days"])


def test_midnight_just_before_the_pages_query_keeps_totals_and_chart_in_step(client, auth, store, three_days, monkeypatch):
    midnight_during_the_query(store, monkeypatch, "before")
    auth.login()
    response = client.get("/links/mid?days=7")
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page[:3000]
    import re
    window = int(re.search(r"UTC days \([^)]*\):\s*(\d+) click", page).group(1))
    charted = int(re.search(r'<desc id="clicks-chart-desc">(\d+) clicks by people', page).group(1))
    assert (window, charted) == (9, 9)  # the window TODAY-6..TODAY, as its first and last days say


def test_a_region_not_summed_is_left_out_of_the_link_stats_as_of_the_dashboard(client, bearer, store, ddb, now):
    store.links.create("https://example.com/", created_by="alice", slug="far")
    put_day(ddb, "far", days_ago(0), "eu-west-1", clicks=5)
    put_rollup(ddb, days_ago(0), "eu-west-1", clicks=5, links={"far": 5})
    link_clicks = client.get("/api/links/far/stats?days=7", headers=bearer).get_json()["clicks"]
    dashboard_today = client.get("/api/stats?days=7", headers=bearer).get_json()["totals"][0]["clicks"]
    assert link_clicks == dashboard_today == 0


def test_the_upgrade_day_whose_morning_had_no_hour_counters_is_not_shown_as_zeros():
    """Code from before hour counters counted 10 clicks in the morning; the new code then added 2 at 14:00 to
    the same item. Its hours do not add up to its clicks: unknown, not 10 clicks lost and zeros shown."""
    from datetime import datetime

    from webapp import stats

    day = dict(stats.stats_items.empty_day(TODAY.isoformat()), clicks=12, bots=1, hours={"14": 2}, bot_hours={"14": 1})
    hours = stats.hourly([day], datetime(TODAY.year, TODAY.month, TODAY.day, 15))
    assert {point["clicks"] for point in hours if point["hour"].date() == TODAY} == {None}
    assert [point["clicks"] for point in hours if point["hour"].date() < TODAY] == [0] * 32


def test_a_day_past_its_purge_at_is_not_shown_while_ttl_has_not_deleted_it_yet(store, ddb, now):
    store.links.create("https://example.com/", created_by="alice", slug="old")
    put_day(ddb, "old", days_ago(10), clicks=4)
    ddb.update_item(TableName=TABLE_NAME, Key={"pk": {"S": "stats#old"}, "sk": {"S": f"day#{days_ago(10)}#us-east-1"}},
                    UpdateExpression="SET purge_at = :p", ExpressionAttributeValues={":p": {"N": str(int(NOW.timestamp()) - 3600)}})
    assert store.links.daily_stats("old", 30) == []


@pytest.mark.parametrize("value", [0, -1, "abc"])
def test_a_stats_days_setting_no_window_can_have_stops_start_up(ddb, value):
    from tests.conftest import make_app

    with pytest.raises(RuntimeError, match="STATS_DAYS"):
        make_app(STATS_DAYS=value)


def test_the_day_before_the_window_is_neither_read_nor_summed(client, store, ddb, now, api_token):
    """Kills the mutation first = today - days: clicks the day before a 7-day window are not its clicks."""
    store.links.create("https://example.com/", created_by="alice", slug="edge")
    put_day(ddb, "edge", days_ago(7), clicks=100, referrers={"before.example": 100})
    put_day(ddb, "edge", days_ago(6), clicks=1, referrers={"first.example": 1})
    assert [day["day"] for day in store.links.daily_stats("edge", 7)] == [days_ago(6)]
    body = client.get("/api/links/edge/stats?days=7", headers={"Authorization": f"Bearer {api_token}"}).get_json()
    assert (body["clicks"], body["referrers"]) == (1, {"first.example": 1})


def test_the_pages_csv_refuses_the_48_hours(client, auth, store, now):
    """Kills the mutation that serves 30 days for ?hours=48: the CSV has one row per day."""
    store.links.create("https://example.com/", created_by="alice", slug="hcsv")
    auth.login()
    response = client.get("/links/hcsv/stats.csv?hours=48")
    assert response.status_code == 422 and "one row per day" in response.get_data(as_text=True)


def test_titles_ask_only_for_ids_a_link_can_have(store, ddb, monkeypatch):
    """A rollup's lnk#<id> is read back from the table: an id no link can have (over 2,048 bytes, say) would make
    DynamoDB refuse the whole BatchGetItem, so it is never asked for."""
    from tests.test_dashboard import put_link

    put_link(ddb, "fine", title="Fine")
    asked, real = [], store.rollups.table.call
    monkeypatch.setattr(store.rollups.table, "call", lambda operation, **request: asked.append(request) or real(operation, **request))
    found, requests = store.rollups.titles(["x" * 3000, "a/b", "fine"])
    assert (found, requests) == ({"fine": "Fine"}, 1)
    assert [key["pk"]["S"] for key in asked[0]["RequestItems"][store.rollups.table.name]["Keys"]] == ["fine"]


def test_titles_left_unprocessed_are_asked_again(store, ddb, monkeypatch):
    """BatchGetItem may return UnprocessedKeys (throttling, or 16 MB): those are asked for again, up to 3 requests."""
    from tests.test_dashboard import put_link

    put_link(ddb, "one", title="One")
    put_link(ddb, "two", title="Two")
    real, calls = store.rollups.table.call, []

    def partial(operation, **request):
        calls.append(request)
        keys = request["RequestItems"][store.rollups.table.name]["Keys"]
        if len(calls) == 1:  # the first answer leaves the second key unprocessed
            answer = real(operation, RequestItems={store.rollups.table.name: {**request["RequestItems"][store.rollups.table.name], "Keys": keys[:1]}})
            answer["UnprocessedKeys"] = {store.rollups.table.name: {"Keys": keys[1:]}}
            return answer
        return real(operation, **request)

    monkeypatch.setattr(store.rollups.table, "call", partial)
    assert store.rollups.titles(["one", "two"]) == ({"one": "One", "two": "Two"}, 2)


def test_a_retention_of_thousands_of_digits_is_refused_with_the_rule():
    """Kills dropping parse_days's length cap: int() would raise its own ValueError (past 4,300 digits), whose
    text the form would show instead of the rule."""
    from webapp.dashboard import retention

    with pytest.raises(ValueError, match="whole number of days from 7 to 3650"):
        retention.parse_days("1" * 5000)


def test_the_retention_item_says_who_changed_it(client, auth, ddb):
    """Kills dropping changed_by: the setting's item names the admin, as the other settings' items do."""
    auth.login()
    assert client.post("/settings/stats", data={"days": "90"}).status_code == 303
    item = ddb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": "setting#stats_retention_days"}, "sk": {"S": "setting"}})["Item"]
    assert item["changed_by"] == {"S": "alice"} and item["value"] == {"N": "90"}
