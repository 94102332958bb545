"""Server-side sessions: sign-out, a password change, a role change and a disable end them; idle and lifetime limits."""
import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, ROLE_PASSWORD, TABLE_NAME, add_user, sign_in_as


def _copy_of_cookie(app, client):
    """A second browser holding a copy of the first one's session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def _signed_in(client):
    return client.get("/", headers={"Accept": "text/html"}).status_code == 200


def _session_items(ddb, username):
    resp = ddb.query(
        TableName=TABLE_NAME,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :s)",
        ExpressionAttributeValues={":pk": {"S": f"user#{username}"}, ":s": {"S": "session#"}},
    )
    return resp["Items"]


def test_a_copied_cookie_stops_working_after_sign_out(app, client, auth, store):
    auth.login()
    thief = _copy_of_cookie(app, client)
    assert _signed_in(thief)  # the copy works while the session lives...
    auth.logout()
    assert not _signed_in(thief)  # ...and not after sign-out
    response = thief.post("/links/new", data={"url": "https://example.com/", "slug": "stolen", "expiry": "never"})
    assert response.status_code == 303 and response.headers["Location"].startswith("/login")
    assert store.links.list()[0] == []


def test_sign_out_deletes_the_session_item(client, auth, ddb):
    auth.login()
    assert len(_session_items(ddb, ADMIN_USERNAME)) == 1
    auth.logout()
    assert _session_items(ddb, ADMIN_USERNAME) == []


def test_a_password_change_ends_every_other_session(app, client, auth, store):
    auth.login()
    other = app.test_client()
    other.post("/login", data={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    assert _signed_in(other)
    response = client.post(
        "/account/password", data={"current": ADMIN_PASSWORD, "new": "a-new-password", "confirm": "a-new-password"}
    )
    assert response.status_code == 303
    assert not _signed_in(other)
    assert _signed_in(client)  # the browser that changed it has a fresh session
    assert store.users.verify_password(ADMIN_USERNAME, "a-new-password")


def test_a_wrong_current_password_changes_nothing(client, auth, store):
    auth.login()
    response = client.post("/account/password", data={"current": "nope-nope", "new": "a-new-password", "confirm": "a-new-password"})
    assert response.status_code == 422
    assert "not your current password" in response.get_data(as_text=True)
    assert store.users.verify_password(ADMIN_USERNAME, ADMIN_PASSWORD)
    assert _signed_in(client)


@pytest.mark.parametrize(
    ("change", "data"),
    [("disable", {}), ("role", {"role": "viewer"})],
)
def test_disabling_or_a_role_change_ends_the_users_sessions(app, client, auth, store, change, data):
    editor = app.test_client()
    sign_in_as(editor, store, "editor")
    assert _signed_in(editor)
    auth.login()
    assert client.post(f"/users/editor1/{change}", data=data).status_code == 303
    assert not _signed_in(editor)


def test_a_disabled_user_cannot_sign_in_again(client, store):
    add_user(store, "leaver", "editor")
    store.users.set_disabled("leaver", True)
    response = client.post("/login", data={"username": "leaver", "password": ROLE_PASSWORD})
    assert response.status_code == 422  # exactly as a wrong password (tests/test_hardening_sessions.py)
    assert "Wrong user name or password." in response.get_data(as_text=True)
    assert not _signed_in(client)


def test_idle_session_ends(app, client, auth, clock):
    auth.login()
    clock.advance(app.config["SESSION_IDLE_SECONDS"] - 5)
    assert _signed_in(client)  # activity resets the idle timer...
    clock.advance(app.config["SESSION_IDLE_SECONDS"] - 5)
    assert _signed_in(client)
    clock.advance(app.config["SESSION_IDLE_SECONDS"] + 1)  # ...and a long pause ends the session
    assert not _signed_in(client)


def test_session_ends_at_its_absolute_lifetime_however_active(app, client, auth, clock):
    auth.login()
    step = app.config["SESSION_IDLE_SECONDS"] // 2
    for _ in range(app.config["PERMANENT_SESSION_LIFETIME"] // step - 1):
        clock.advance(step)
        assert _signed_in(client)
    clock.advance(step)
    assert not _signed_in(client)


def test_session_item_layout(client, auth, ddb):
    auth.login()
    (item,) = _session_items(ddb, ADMIN_USERNAME)
    cookie_session_id = None
    with client.session_transaction() as session:
        cookie_session_id = session["sid"]
    assert cookie_session_id not in item["sk"]["S"]  # the key holds a hash of the id, not the id
    assert item["username"] == {"S": ADMIN_USERNAME}
    assert {"created_at", "last_seen_at", "expires_at", "purge_at"} <= item.keys()
    assert "list_pk" not in item  # sessions stay out of the list index
    assert int(item["purge_at"]["N"]) > 0


def test_last_seen_is_written_at_most_once_a_minute(client, auth, store, clock, monkeypatch):
    auth.login()
    writes = []
    real = store.table.client.update_item
    monkeypatch.setattr(store.table.client, "update_item", lambda **kw: writes.append(kw) or real(**kw))
    for _ in range(5):
        client.get("/")
    assert writes == []
    clock.advance(61)
    client.get("/")
    assert len(writes) == 1


def test_ending_all_sessions_never_scans(app, store, ddb, monkeypatch):
    browsers = [app.test_client() for _ in range(3)]
    for browser in browsers:
        sign_in_as(browser, store, "editor")

    def refuse_scan(**kwargs):
        raise AssertionError("the store must never Scan")

    monkeypatch.setattr(store.table.client, "scan", refuse_scan)
    store.sessions.end_all("editor1")
    assert not any(_signed_in(browser) for browser in browsers)


def test_static_files_and_health_read_no_session(client, auth, store, monkeypatch):
    auth.login()
    monkeypatch.setattr(store.sessions, "load", lambda *a: pytest.fail("read a session for a static file"))
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/health").status_code == 200
