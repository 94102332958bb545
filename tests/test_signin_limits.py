"""Failed sign-ins are limited per account and per client, with counters in the table (TTL), and logged."""
import logging

import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, TABLE_NAME


@pytest.fixture(autouse=True)
def window_start(clock):
    """Each test starts a window (on the hour): its attempts must not straddle two windows (counted apart)."""
    clock.now = clock.now.replace(minute=0, second=0, microsecond=0)
    return clock


def _attempt(client, username=ADMIN_USERNAME, password="wrong-password", ip="198.51.100.7"):
    return client.post("/login", data={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": ip})


def _counter_items(ddb):
    # A Scan is fine in a test that inspects the whole (tiny) table.
    return [item for item in ddb.scan(TableName=TABLE_NAME)["Items"] if item["pk"]["S"].startswith("signin#")]


def test_the_account_locks_after_five_failures_even_for_the_right_password(app, client, clock):
    for _ in range(app.config["SIGNIN_ACCOUNT_LIMIT"]):
        assert _attempt(client).status_code == 422
    response = _attempt(client, password=ADMIN_PASSWORD)
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert "Too many failed sign-in attempts for this account" in page
    assert "Try again in 15 minutes" in page
    assert response.headers["Retry-After"] == "900"
    assert client.get("/", headers={"Accept": "text/html"}).status_code == 303  # not signed in


def test_the_lock_ends_with_its_window(app, client, clock):
    for _ in range(app.config["SIGNIN_ACCOUNT_LIMIT"]):
        _attempt(client)
    assert _attempt(client, password=ADMIN_PASSWORD).status_code == 429
    clock.advance(app.config["SIGNIN_WINDOW_SECONDS"])
    assert _attempt(client, password=ADMIN_PASSWORD).status_code == 303


def test_the_client_limit_spans_accounts(app, client):
    for i in range(app.config["SIGNIN_CLIENT_LIMIT"]):
        assert _attempt(client, username=f"guess{i}").status_code == 422
    response = _attempt(client, username="someone-else")
    assert response.status_code == 429
    assert "from your network" in response.get_data(as_text=True)
    # Another client is not affected, and neither is the account itself.
    assert _attempt(client, password=ADMIN_PASSWORD, ip="203.0.113.50").status_code == 303


def test_a_right_password_clears_the_accounts_failures(app, client, auth):
    for _ in range(app.config["SIGNIN_ACCOUNT_LIMIT"] - 1):
        _attempt(client)
    assert _attempt(client, password=ADMIN_PASSWORD).status_code == 303
    auth.logout()
    for _ in range(app.config["SIGNIN_ACCOUNT_LIMIT"] - 1):
        assert _attempt(client).status_code == 422
    assert _attempt(client, password=ADMIN_PASSWORD).status_code == 303


def test_right_passwords_never_count_against_the_client(app, client, auth, store):
    """Only failures count: an office behind one address signs in more often than the client limit.
    (With release() doing nothing, every success used up one of the client's attempts, and no test failed.)"""
    limit = app.config["SIGNIN_CLIENT_LIMIT"]
    for i in range(limit):
        username = f"staff{i}"
        store.users.create(username, ADMIN_PASSWORD)
        assert _attempt(client, username=username, password=ADMIN_PASSWORD).status_code == 303, i
        auth.logout()
    # The client has had `limit` sign-ins and no failure: it may still fail `limit` times.
    for i in range(limit):
        assert _attempt(client, username=f"guess{i}").status_code == 422, i
    assert _attempt(client, username="someone-else").status_code == 429


def test_unknown_accounts_are_limited_the_same_way(app, client):
    for _ in range(app.config["SIGNIN_ACCOUNT_LIMIT"]):
        assert _attempt(client, username="ghost").status_code == 422
    assert _attempt(client, username="ghost").status_code == 429


def test_failures_are_logged(client, caplog):
    with caplog.at_level(logging.INFO, logger="webapp"):
        _attempt(client)
    assert any('"signin.failed"' in r.getMessage() and ADMIN_USERNAME in r.getMessage() for r in caplog.records)


def test_lockouts_are_logged(app, client, caplog):
    for _ in range(app.config["SIGNIN_ACCOUNT_LIMIT"]):
        _attempt(client)
    with caplog.at_level(logging.INFO, logger="webapp"):
        _attempt(client)
    assert any('"signin.locked"' in r.getMessage() for r in caplog.records)


def test_counters_live_in_the_table_with_ttl_and_no_ip(client, ddb):
    _attempt(client, ip="198.51.100.7")
    items = _counter_items(ddb)
    assert {item["pk"]["S"].split("#")[1] for item in items} == {"account", "client"}
    for item in items:
        assert int(item["purge_at"]["N"]) > 0  # TTL removes old windows
        assert item["attempts"] == {"N": "1"}
        assert "list_pk" not in item
    assert "198.51.100.7" not in repr(items)  # only a keyed hash of the client


def test_reservations_stop_exactly_at_the_limit(store):
    """In sequence, the reservations past the limit are refused (test_signin_parallel.py checks parallel guesses)."""
    results = [store.sign_ins.reserve("account#x", 5, 900) for _ in range(8)]
    assert results == [True] * 5 + [False] * 3


@pytest.mark.parametrize("limit_setting", ["SIGNIN_ACCOUNT_LIMIT", "SIGNIN_CLIENT_LIMIT"])
def test_limits_are_settings(ddb, limit_setting):
    from tests.conftest import make_app

    app = make_app(**{limit_setting: 1})
    app.extensions["store"].users.create(ADMIN_USERNAME, ADMIN_PASSWORD)
    client = app.test_client()
    assert _attempt(client).status_code == 422
    assert _attempt(client).status_code == 429


def test_wrong_current_passwords_count_against_the_account(app, client, auth, store):
    """A stolen session cannot test password guesses on the change-password form either."""
    auth.login()
    wrong = {"current": "wrong-password", "new": "a-new-password", "confirm": "a-new-password"}
    for _ in range(app.config["SIGNIN_ACCOUNT_LIMIT"]):
        assert client.post("/account/password", data=wrong).status_code == 422
    right = {**wrong, "current": ADMIN_PASSWORD}
    response = client.post("/account/password", data=right)
    assert response.status_code == 429
    assert store.users.verify_password(ADMIN_USERNAME, ADMIN_PASSWORD)
