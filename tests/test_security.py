"""Every form that changes state refuses a post without its CSRF token, and the session cookie keeps its flags."""
import re

import pytest

from tests.conftest import ADMIN_USERNAME, SHORT_BASE_URL, TABLE_NAME, make_app

ID_VALUES = {"short_id": "guarded", "token_id": "tok123", "username": "someone"}


def _state_changing_page_routes(app):
    """Every POST route of the HTML pages (the JSON API authenticates with bearer tokens, not cookies)."""
    for rule in app.url_map.iter_rules():
        if "POST" in rule.methods and rule.endpoint.split(".")[0] not in ("api", "static"):
            yield rule


@pytest.fixture
def guarded_app(ddb):
    app = make_app(WTF_CSRF_ENABLED=True)
    store = app.extensions["store"]
    store.users.create(ADMIN_USERNAME, "pw-pw-pw-pw-pw")
    store.links.create("https://example.com/", created_by=ADMIN_USERNAME, slug="guarded")
    return app


def _signed_in_client(app):
    store = app.extensions["store"]
    client = app.test_client()
    with client.session_transaction() as session:
        session["username"] = ADMIN_USERNAME
        session["sid"] = store.sessions.create(ADMIN_USERNAME, 3600)
    return client


def test_every_state_changing_form_refuses_a_post_without_its_csrf_token(guarded_app):
    client = _signed_in_client(guarded_app)
    store = guarded_app.extensions["store"]
    before = (store.links.get("guarded"), [u["username"] for u in store.users.list()])
    routes = list(_state_changing_page_routes(guarded_app))
    # Sign-in and sign-out, new link, disable and enable, users, tokens, the password form...
    assert len(routes) >= 8, [r.rule for r in routes]
    for rule in routes:
        path = rule.build({name: ID_VALUES.get(name, "x") for name in rule.arguments})[1]
        response = client.post(path, data={"url": "https://example.com/new", "username": "intruder", "role": "admin",
                                           "name": "stolen", "scope": "write", "password": "pw-pw-pw-pw-pw"})
        assert response.status_code == 400, (rule.rule, response.status_code)
        assert b"CSRF" in response.data or b"form" in response.data.lower(), rule.rule
    after = (store.links.get("guarded"), [u["username"] for u in store.users.list()])
    assert after == before, "a refused post changed something"
    # The session survived (sign-out without a token did not sign anyone out).
    assert client.get("/").status_code == 200


def test_a_post_from_another_site_with_a_stolen_looking_token_is_refused(guarded_app):
    client = _signed_in_client(guarded_app)
    response = client.post("/links/guarded/disable", data={"csrf_token": "not-the-token"})
    assert response.status_code == 400
    assert guarded_app.extensions["store"].links.get("guarded")["is_active"] is True


@pytest.mark.parametrize(("local_mode", "secure"), [(False, True), (True, False)])
def test_the_session_cookie_is_httponly_samesite_and_secure_outside_local_mode(ddb, local_mode, secure):
    from webapp import create_app

    # The app's own cookie defaults: no SESSION_COOKIE_* override, unlike the other tests' app.
    app = create_app({"TESTING": True, "TABLE_NAME": TABLE_NAME, "SHORT_BASE_URL": SHORT_BASE_URL,
                      "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False, "LOCAL_MODE": local_mode})
    app.extensions["store"].users.create(ADMIN_USERNAME, "pw-pw-pw-pw-pw")
    client = app.test_client()
    response = client.post("/login", data={"username": ADMIN_USERNAME, "password": "pw-pw-pw-pw-pw"})
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert ("Secure" in cookie) is secure
    assert not re.search(r"password|pw-pw", cookie), "no credential in the cookie"
