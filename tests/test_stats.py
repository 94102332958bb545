"""A link's daily stats: what the aggregator writes, the store reads back, and the detail page shows."""
import json
from datetime import date, datetime, time, timedelta, timezone

import pytest

from tests.support.pipeline import Pipeline
from webapp import clock, stats

DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


@pytest.fixture
def aggregate(aggregator):
    """Feed click lines through the click stream to the real aggregator, as the log subscription would."""
    pipeline = Pipeline(aggregator)

    def run(*clicks):
        lines = [json.dumps({"type": "click", **line}) for line, _ in clicks]
        pipeline.send(lines, timestamps_ms=[stamp for _, stamp in clicks])

    return run


def _click(short_id, day, ua=DESKTOP, ref="news.example.com", cc="DE"):
    """A click line printed at noon UTC on `day` (the aggregator dates a click by its log event)."""
    noon_ms = int(datetime.combine(day, time(12), tzinfo=timezone.utc).timestamp() * 1000)
    return {"id": short_id, "ua": ua, "ref": ref, "cc": cc}, noon_ms


def test_store_reads_back_what_the_aggregator_wrote(store, aggregate):
    today = clock.utcnow().date()
    yesterday = today - timedelta(days=1)
    store.links.create("https://example.com/a", created_by="alice", slug="stats-a")
    aggregate(
        _click("stats-a", yesterday),
        _click("stats-a", today, ua=PHONE, ref="mail.example.org", cc="FR"),
        _click("stats-a", today, ua=PHONE, ref=None, cc=None),
        _click("stats-a", today, ua="Twitterbot/1.0"),
        _click("stats-a", today - timedelta(days=40)),  # outside the window
        _click("other", today),  # another link's stats stay apart
    )
    days = store.links.daily_stats("stats-a", days=30)
    assert [d["day"] for d in days] == [yesterday.isoformat(), today.isoformat()]
    assert {name: days[0][name] for name in ("day", "clicks", "bots", "referrers", "countries", "devices")} == {
        "day": yesterday.isoformat(),
        "clicks": 1,
        "bots": 0,
        "referrers": {"news.example.com": 1},
        "countries": {"DE": 1},
        "devices": {"Desktop": 1},
    }
    assert days[1]["clicks"] == 2 and days[1]["bots"] == 1
    assert days[1]["referrers"] == {"mail.example.org": 1}
    assert days[1]["countries"] == {"FR": 1}
    assert days[1]["devices"] == {"iPhone": 2}


def test_store_has_no_stats_for_a_link_without_clicks(store):
    store.links.create("https://example.com/b", created_by="alice", slug="quiet-b")
    assert store.links.daily_stats("quiet-b") == []


def _day(day, clicks, bots=0, **dimensions):
    """A day as the store's daily_stats gives it."""
    from webapp.store import stats_items

    return {**stats_items.empty_day(day), "clicks": clicks, "bots": bots, **dimensions}


def test_summary_fills_empty_days_and_ranks_the_top_sources():
    last = date(2026, 11, 27)
    days = [
        _day("2026-11-25", 4, 1, referrers={"a.example": 3, "b.example": 1}, countries={"DE": 4}, devices={"Desktop": 4}),
        _day("2026-11-27", 2, 0, referrers={"b.example": 2}, countries={"FR": 2}, devices={"iPhone": 2}),
    ]
    summary = stats.summarise(days, last, window=7)
    assert [p["day"] for p in summary["series"]] == [(last - timedelta(days=n)).isoformat() for n in range(6, -1, -1)]
    assert [p["clicks"] for p in summary["series"]] == [0, 0, 0, 0, 4, 0, 2]
    assert [p["bots"] for p in summary["series"]] == [0, 0, 0, 0, 1, 0, 0]
    assert (summary["clicks"], summary["bots"]) == (6, 1)
    assert summary["referrers"] == [("a.example", 3), ("b.example", 3)]
    assert summary["countries"] == [("DE", 4), ("FR", 2)]
    assert summary["today"]["day"] == "2026-11-27" and summary["countries_known"]


def test_summary_of_no_clicks_is_a_window_of_zeros():
    summary = stats.summarise([], date(2026, 11, 27), window=30)
    assert len(summary["series"]) == 30
    assert {(p["clicks"], p["bots"], p["visitors"]) for p in summary["series"]} == {(0, 0, 0)}
    assert summary["clicks"] == 0 and summary["referrers"] == [] and not summary["countries_known"]


def test_detail_page_shows_the_last_30_days(client, auth, store, aggregate):
    today = clock.utcnow().date()
    store.links.create("https://example.com/c", created_by="alice", slug="shown-c")
    aggregate(*[_click("shown-c", today, ref="<b>evil.example</b>") for _ in range(3)], _click("shown-c", today, ua=""))
    auth.login()
    page = client.get("/links/shown-c").get_data(as_text=True)
    assert "Last 30 days" in page
    assert "3 clicks by people" in page
    assert "1 from bots" in page
    assert page.count('<rect class="chart-people"') == 1  # today is the only day with clicks
    assert page.count("<tr><td><time") == 30  # the numbers, a row a day
    # Not a host name: the aggregator refused it, so nothing of it reaches the page.
    assert "evil.example" not in page


def test_api_returns_daily_stats(client, api_token, store, aggregate):
    today = clock.utcnow().date()
    store.links.create("https://example.com/d", created_by="alice", slug="api-d")
    aggregate(_click("api-d", today), _click("api-d", today, ua=PHONE, cc="US"), _click("api-d", today, cc="us"))
    response = client.get("/api/links/api-d/stats?days=7", headers={"Authorization": f"Bearer {api_token}"})
    assert response.status_code == 200
    days = response.get_json()["days"]
    assert len(days) == 7 and sum(day["clicks"] for day in days[:-1]) == 0  # every day of the window
    day = days[-1]
    assert day["day"] == today.isoformat()
    # A country code that is not two upper-case letters is not counted as a country (the click is).
    assert (day["clicks"], day["countries"], day["devices"]) == (3, {"DE": 1, "US": 1}, {"Desktop": 2, "iPhone": 1})


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/links/api-e/stats?days=0", 422, "days must be a whole number from 1 to 366"),
        ("/api/links/api-e/stats?days=367", 422, "days must be a whole number from 1 to 366"),
        ("/api/links/api-e/stats?days=%D9%A3", 422, "days must be a whole number"),  # an Arabic-Indic 3
        ("/api/links/nothing/stats", 404, "There is no short link with that id."),
    ],
)
def test_api_stats_bad_requests(client, api_token, store, path, status, message):
    store.links.create("https://example.com/e", created_by="alice", slug="api-e")
    response = client.get(path, headers={"Authorization": f"Bearer {api_token}"})
    assert response.status_code == status
    assert message in response.get_json()["error"]
