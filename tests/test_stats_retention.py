"""The stats retention setting (/settings/stats): admins only, 7 to 3650 whole days or empty (keep forever),
stored as the setting "stats_retention_days" that the aggregator reads, and audited."""
import pytest

from tests.conftest import sign_in_as
from webapp.dashboard import retention

SETTING = "stats_retention_days"


@pytest.fixture
def audited(monkeypatch):
    """Every audit.record call, as (action, keyword arguments); the real record still runs."""
    from webapp import audit

    calls, real = [], audit.record
    monkeypatch.setattr(audit, "record", lambda action, **kwargs: calls.append((action, kwargs)) or real(action, **kwargs))
    return calls


@pytest.mark.parametrize("raw, days", [("7", 7), ("3650", 3650), (" 90 ", 90), ("", None), ("  ", None), (None, None),
                                       (30, 30)])
def test_a_whole_number_of_days_or_nothing_is_a_retention(raw, days):
    assert retention.parse_days(raw) == days


@pytest.mark.parametrize("raw", ["6", "0", "3651", "-30", "30.5", "1e3", "thirty", "\u0663\u0660", "99999999999", True, 6.0])
def test_anything_else_is_refused_with_the_rule(raw):
    with pytest.raises(ValueError, match="whole number of days from 7 to 3650, or leave it empty"):
        retention.parse_days(raw)


def test_an_admin_sets_the_retention_and_it_is_audited(client, auth, store, audited):
    auth.login()
    page = client.get("/settings/stats").get_data(as_text=True)
    assert "Now: per-day stats are kept forever." in page
    assert "time to live" in page and "total click count is kept" in page
    response = client.post("/settings/stats", data={"days": "400"})
    assert response.status_code == 303
    assert store.settings.get(SETTING) == 400
    assert ("settings.change", {"target": SETTING, "value": 400, "previous": None}) in audited
    assert "Now: per-day stats are kept for 400 days." in client.get("/settings/stats").get_data(as_text=True)


def test_emptying_it_keeps_stats_forever(client, auth, store, audited):
    auth.login()
    client.post("/settings/stats", data={"days": "30"})
    assert client.post("/settings/stats", data={"days": ""}).status_code == 303
    assert store.settings.get(SETTING) is None  # unset: the aggregator stamps no purge_at
    assert ("settings.change", {"target": SETTING, "value": None, "previous": 30}) in audited


def test_saving_the_same_value_records_nothing(client, auth, store, audited):
    auth.login()
    client.post("/settings/stats", data={"days": "30"})
    audited.clear()
    assert client.post("/settings/stats", data={"days": "30"}).status_code == 303
    assert audited == []


@pytest.mark.parametrize("days", ["5", "abc", "3651", "12.5"])
def test_a_bad_retention_is_refused_and_changes_nothing(client, auth, store, audited, days):
    auth.login()
    client.post("/settings/stats", data={"days": "30"})
    audited.clear()
    response = client.post("/settings/stats", data={"days": days})
    assert response.status_code == 422
    assert "Use a whole number of days from 7 to 3650" in response.get_data(as_text=True)
    assert store.settings.get(SETTING) == 30
    assert audited == []


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_only_admins_may_see_or_change_it(client, store, role):
    sign_in_as(client, store, role)
    assert client.get("/settings/stats").status_code == 403
    assert client.post("/settings/stats", data={"days": "30"}).status_code == 403
    assert store.settings.get(SETTING) is None


def test_the_setting_is_stored_as_the_number_the_aggregator_reads(client, auth, ddb):
    from tests.conftest import TABLE_NAME

    auth.login()
    client.post("/settings/stats", data={"days": "365"})
    item = ddb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": "setting#stats_retention_days"}, "sk": {"S": "setting"}})["Item"]
    assert item["value"] == {"N": "365"}
