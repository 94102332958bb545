"""The HTML pages: sign-in, link list, create form, detail, enable/disable."""
import re

import pytest

from tests.conftest import ADMIN_USERNAME, TABLE_NAME, make_app, put_counter


def _create(store, slug="promo", **kwargs):
    kwargs.setdefault("created_by", ADMIN_USERNAME)
    return store.links.create(kwargs.pop("url", "https://example.com/"), slug=slug, **kwargs)


def _form(**overrides):
    data = {"url": "https://example.com/page", "slug": "", "title": "", "expiry": "default", "expiry_date": ""}
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/"),
        ("get", "/?cursor=abc"),
        ("get", "/links/new"),
        ("post", "/links/new"),
        ("get", "/links/promo"),
        ("post", "/links/promo/disable"),
        ("post", "/links/promo/enable"),
    ],
)
def test_pages_require_sign_in(client, store, method, path):
    _create(store)
    response = getattr(client, method)(path)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?next=")
    assert store.links.get("promo")["is_active"] is True


def test_sign_in_page_is_public(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b"Sign in" in response.data


def test_health_is_public(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_login_and_logout(client, auth):
    response = auth.login()
    assert response.status_code == 303 and response.headers["Location"] == "/dashboard"
    page = client.get("/")
    assert page.status_code == 200
    assert ADMIN_USERNAME.encode() in page.data
    assert auth.logout().headers["Location"] == "/login"
    assert client.get("/").status_code == 303


def test_logout_needs_post(client, auth):
    auth.login()
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        (ADMIN_USERNAME, "wrong password", b"Wrong user name or password."),
        ("nobody", "whatever", b"Wrong user name or password."),
        ("", "whatever", b"This field is required."),
        (ADMIN_USERNAME, "", b"This field is required."),
    ],
)
def test_login_bad_credentials(client, auth, username, password, message):
    response = auth.login(username, password)
    assert response.status_code == 422
    assert message in response.data
    assert client.get("/").status_code == 303


def test_login_next_is_followed_for_local_paths(auth):
    response = auth.login(next="/links/new")
    assert response.headers["Location"] == "/links/new"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:evil.example",
        "evil.example",
    ],
)
def test_login_next_open_redirect(auth, target):
    response = auth.login(next=target)
    assert response.status_code == 303
    assert response.headers["Location"] == "/dashboard"


def test_signed_in_user_is_redirected_away_from_login(client, auth):
    auth.login()
    assert client.get("/login?next=//evil.example").headers["Location"] == "/dashboard"


def test_create_link_shows_the_short_link(client, auth, store):
    auth.login()
    response = client.post("/links/new", data=_form(slug="spring", title="Spring sale"))
    assert response.status_code == 303
    assert response.headers["Location"] == "/links/spring"
    page = client.get("/links/spring")
    assert b"https://sho.rt/spring" in page.data
    assert b'data-copy="https://sho.rt/spring"' in page.data
    assert b"Short link created." in page.data
    link = store.links.get("spring")
    assert (link["url"], link["title"], link["created_by"]) == ("https://example.com/page", "Spring sale", ADMIN_USERNAME)
    assert link["expires_at"] is not None


def test_create_link_with_random_id_and_never_expiring(client, auth, store):
    auth.login()
    response = client.post("/links/new", data=_form(expiry="never"))
    short_id = response.headers["Location"].rsplit("/", 1)[1]
    assert re.fullmatch(r"[A-Za-z0-9]{7}", short_id)
    assert store.links.get(short_id)["expires_at"] is None


def test_create_link_on_a_date(client, auth, store):
    auth.login()
    client.post("/links/new", data=_form(slug="dated", expiry="date", expiry_date="2099-05-01"))
    assert store.links.get("dated")["expires_at"] == "2099-05-01T23:59:59Z"


def test_create_link_normalises_idn(client, auth, store):
    auth.login()
    client.post("/links/new", data=_form(slug="idn", url="https://bücher.example/straße"))
    assert store.links.get("idn")["url"] == "https://xn--bcher-kva.example/stra%C3%9Fe"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": ""}, "Enter the destination URL."),
        ({"url": "ftp://example.com/"}, "Only http and https links can be shortened."),
        ({"url": "https://exa mple.com"}, "cannot contain spaces or control characters"),
        ({"url": "https://sho.rt/abc"}, "redirect in a loop"),
        ({"url": "https://example.com/" + "a" * 2100}, "at most 2048 characters"),
        ({"slug": "ab"}, "3 to 64 characters"),
        ({"slug": "no/slash"}, "may only use letters"),
        ({"slug": "admin"}, "&#39;admin&#39; is reserved"),
        ({"title": "x" * 201}, "at most 200 characters"),
        ({"expiry": "date", "expiry_date": ""}, "Choose the expiry date."),
        ({"expiry": "date", "expiry_date": "2000-01-01"}, "The expiry must be in the future."),
        ({"expiry": "sometime"}, "Not a valid choice"),
    ],
)
def test_create_link_bad_input_shows_error_and_creates_nothing(client, auth, store, overrides, message):
    auth.login()
    response = client.post("/links/new", data=_form(**overrides))
    assert response.status_code == 422
    assert message.encode() in response.data
    assert b'class="error"' in response.data
    assert store.links.list(limit=10) == ([], None)


def test_create_link_taken_slug_shows_error(client, auth, store):
    _create(store, slug="taken", url="https://first.example/")
    auth.login()
    response = client.post("/links/new", data=_form(slug="taken", url="https://second.example/"))
    assert response.status_code == 422
    assert b"That custom slug is already taken." in response.data
    assert store.links.get("taken")["url"] == "https://first.example/"


def test_list_shows_rows_with_status_and_clicks(client, auth, store, ddb):
    _create(store, slug="live", title="Live one")
    _create(store, slug="off")
    store.links.set_active("off", False)
    _create(store, slug="old")
    # Written directly, as the aggregator and the passage of time would.
    put_counter(ddb, "live", 1234)
    ddb.update_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": "old"}, "sk": {"S": "link"}},
        UpdateExpression="SET expires_at = :e",
        ExpressionAttributeValues={":e": {"S": "2020-01-01T00:00:00Z"}},
    )
    auth.login()
    html = client.get("/").get_data(as_text=True)
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr class="status-\w+">.*?sho\.rt/(\w+)".*?</tr>', html, re.S)}
    assert set(rows) == {"live", "off", "old"}
    assert '<span class="badge active">active</span>' in rows["live"]
    assert re.search(r"data-label=\"Clicks\"[^>]*><div>1,234</div>", rows["live"])
    assert "Live one" in rows["live"]
    assert '<span class="badge disabled">disabled</span>' in rows["off"]
    assert ">Enable</button>" in rows["off"]
    assert '<span class="badge expired">expired</span>' in rows["old"]
    assert "01 Jan 2020" in rows["old"]


def test_list_paginates_with_next_page_link(client, auth, store, app):
    app.config["PAGE_SIZE"] = 2
    for i in range(3):
        _create(store, slug=f"page{i}")
    auth.login()
    first = client.get("/").get_data(as_text=True)
    assert first.count("<tr class=") == 2
    next_url = re.search(r'href="([^"]+)" rel="next">Next page', first).group(1).replace("&amp;", "&")
    second = client.get(next_url).get_data(as_text=True)
    assert second.count("<tr class=") == 1
    assert "Next page" not in second and "First page" in second


def test_list_with_bad_cursor_is_400(client, auth):
    auth.login()
    response = client.get("/?cursor=garbage", headers={"Accept": "text/html"})
    assert response.status_code == 400
    assert b"That page link is not valid." in response.data


def test_disable_and_enable(client, auth, store):
    _create(store, slug="toggle")
    auth.login()
    response = client.post("/links/toggle/disable")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert store.links.get("toggle")["is_active"] is False
    assert b"Disabled toggle." in client.get("/").data
    response = client.post("/links/toggle/enable", data={"cursor": "abc"})
    assert response.headers["Location"] == "/?cursor=abc"
    assert store.links.get("toggle")["is_active"] is True


def test_disable_missing_link_is_404(client, auth):
    auth.login()
    response = client.post("/links/ghost/disable", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert b"There is no short link with that id." in response.data


def test_detail_of_missing_link_is_404_page(client, auth):
    auth.login()
    response = client.get("/links/ghost", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_csrf_token_required_when_enabled(ddb):
    app = make_app(WTF_CSRF_ENABLED=True)
    store = app.extensions["store"]
    store.users.create(ADMIN_USERNAME, "pw-pw-pw-pw")
    _create(store, slug="guarded")
    client = app.test_client()
    with client.session_transaction() as session:
        session["username"] = ADMIN_USERNAME
        session["sid"] = store.sessions.create(ADMIN_USERNAME, 3600)
    response = client.post("/links/guarded/disable", headers={"Accept": "text/html"})
    assert response.status_code == 400
    assert b"CSRF" in response.data
    assert store.links.get("guarded")["is_active"] is True
    # The token rendered into the page is accepted.
    page = client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/links/guarded/disable", data={"csrf_token": token}).status_code == 303
    assert store.links.get("guarded")["is_active"] is False


def test_login_form_needs_csrf_token_when_enabled(ddb):
    app = make_app(WTF_CSRF_ENABLED=True)
    app.extensions["store"].users.create(ADMIN_USERNAME, "pw-pw-pw-pw")
    client = app.test_client()
    response = client.post("/login", data={"username": ADMIN_USERNAME, "password": "pw-pw-pw-pw"})
    assert response.status_code == 400
    with client.session_transaction() as session:
        assert "username" not in session


def test_link_title_xss(client, auth, store):
    payload = '<script>alert("x")</script>'
    _create(store, slug="xss", title=payload)
    auth.login()
    for path in ("/", "/links/xss"):
        html = client.get(path).get_data(as_text=True)
        assert payload not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_security_headers_on_html(client):
    response = client.get("/login")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert b"<script>" not in response.data  # no inline script: the CSP would block it


def test_session_cookie_flags(auth):
    cookie = auth.login().headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_static_assets_are_served(client):
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/app.css").status_code == 200


def test_unknown_page_is_html_404_for_browsers(client):
    response = client.get("/no/such/page", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert b"Error 404" in response.data


def test_unknown_page_is_json_404_for_json_clients(client):
    response = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json == {"error": response.json["error"]}


def test_server_error_shows_no_stack_trace(ddb, monkeypatch):
    app = make_app(PROPAGATE_EXCEPTIONS=False)
    app.extensions["store"].users.create(ADMIN_USERNAME, "pw-pw-pw-pw")

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.extensions["store"].links, "list", broken)
    client = app.test_client()
    with client.session_transaction() as session:
        session["username"] = ADMIN_USERNAME
        session["sid"] = app.extensions["store"].sessions.create(ADMIN_USERNAME, 3600)
    response = client.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 500
    assert b"secret internals" not in response.data
    assert b"Traceback" not in response.data
    assert b"Something went wrong" in response.data
