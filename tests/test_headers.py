"""Hardening headers: HSTS on every admin response outside local mode; no-store on every signed-in
page and every token-authenticated JSON response."""
import pytest

from tests.conftest import ADMIN_USERNAME, make_app

HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture
def local_client(ddb):
    app = make_app(LOCAL_MODE=True)
    app.extensions["store"].users.create(ADMIN_USERNAME, "a-long-password")
    return app.test_client()


# Anonymous, signed-in, API, error and static responses alike.
ANY_RESPONSE = ["/login", "/health", "/", "/links/nope", "/api/links", "/static/app.css", "/no-such-page"]


@pytest.mark.parametrize("path", ANY_RESPONSE)
def test_hsts_on_every_admin_response_outside_local_mode(client, auth, path):
    assert client.get(path).headers["Strict-Transport-Security"] == HSTS
    auth.login()
    assert client.get(path).headers["Strict-Transport-Security"] == HSTS


def test_hsts_on_sign_in_redirects_and_api_errors(client, auth):
    assert auth.login().headers["Strict-Transport-Security"] == HSTS
    assert client.post("/api/links", json={}).headers["Strict-Transport-Security"] == HSTS  # 401


@pytest.mark.parametrize("path", ANY_RESPONSE)
def test_no_hsts_in_local_mode(local_client, path):
    assert "Strict-Transport-Security" not in local_client.get(path).headers


SIGNED_IN_PAGES = ["/", "/links/new", "/links/launch", "/users", "/tokens", "/account/password", "/links/nope"]


@pytest.mark.parametrize("path", SIGNED_IN_PAGES)
def test_no_store_on_every_signed_in_page(client, auth, store, path):
    store.links.create("https://example.com/", created_by=ADMIN_USERNAME, slug="launch")
    auth.login()
    response = client.get(path)
    assert response.status_code in (200, 404), path
    assert response.headers["Cache-Control"] == "no-store"


def test_no_store_on_signed_in_form_posts_and_redirects(client, auth, store):
    auth.login()
    response = client.post("/links/new", data={"url": "https://example.com/", "slug": "fresh", "expiry": "never"})
    assert response.status_code == 303 and response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/links", None),
        ("GET", "/api/links/launch", None),
        ("GET", "/api/links/launch/stats", None),
        ("GET", "/api/links/nope", None),
        ("PATCH", "/api/links/launch", {"is_active": False}),
        ("POST", "/api/links", {"url": "https://example.com/"}),
        ("POST", "/api/links", {"url": "not a url"}),
        ("GET", "/api/tokens", None),
        ("POST", "/api/tokens", {"name": "x", "scope": "read"}),
        ("GET", "/api/users", None),
    ],
)
def test_no_store_on_every_token_authenticated_json_response(client, store, api_token, method, path, body):
    store.links.create("https://example.com/", created_by=ADMIN_USERNAME, slug="launch")
    response = client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {api_token}"})
    assert response.is_json
    assert response.headers["Cache-Control"] == "no-store"


def test_static_files_stay_cacheable_when_signed_in(client, auth):
    auth.login()
    assert client.get("/static/app.css").headers.get("Cache-Control") != "no-store"
