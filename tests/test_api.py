"""The JSON API: /api/links, /shorten, tokens, errors and CORS."""
import pytest

from tests.conftest import ADMIN_USERNAME, TABLE_NAME, make_app, put_counter


@pytest.fixture
def headers(api_token):
    return {"Authorization": f"Bearer {api_token}"}


def test_create_link_201_shape(client, headers, store):
    response = client.post(
        "/api/links",
        json={"url": "https://example.com/a", "slug": "launch", "title": "Launch", "expires_at": "2099-01-01T00:00:00Z"},
        headers=headers,
    )
    assert response.status_code == 201
    body = response.json
    assert body["short_id"] == "launch"
    assert body["short_url"] == "https://sho.rt/launch"
    assert body["original_url"] == "https://example.com/a"
    assert body["expires_at"] == "2099-01-01T00:00:00Z"
    assert body["title"] == "Launch"
    assert body["is_active"] is True and body["status"] == "active"
    assert body["click_count"] == 0 and body["bot_count"] == 0
    assert body["created_by"] == ADMIN_USERNAME
    assert body["created_at"].endswith("Z") and len(body["created_at"]) == 20
    assert response.headers["Location"] == "/api/links/launch"
    assert store.links.get("launch")["url"] == "https://example.com/a"


def test_shorten_alias_with_defaults(client, headers, store):
    response = client.post("/shorten", json={"url": "https://example.com/"}, headers=headers)
    assert response.status_code == 201
    body = response.json
    assert len(body["short_id"]) == 7
    assert body["short_url"] == f"https://sho.rt/{body['short_id']}"
    assert body["expires_at"] is not None  # omitted means the 30-day default
    assert body["title"] is None


def test_null_expiry_means_never(client, headers):
    response = client.post("/api/links", json={"url": "https://example.com/", "expires_at": None}, headers=headers)
    assert response.status_code == 201
    assert response.json["expires_at"] is None


def test_idn_url_is_stored_as_ascii(client, headers):
    response = client.post("/api/links", json={"url": "https://bücher.example/ö"}, headers=headers)
    assert response.json["original_url"] == "https://xn--bcher-kva.example/%C3%B6"


def test_get_link_with_counts(client, headers, store, ddb):
    store.links.create("https://example.com/", created_by=ADMIN_USERNAME, slug="counted")
    put_counter(ddb, "counted", 17, 3)
    response = client.get("/api/links/counted", headers=headers)
    assert response.status_code == 200
    assert (response.json["click_count"], response.json["bot_count"]) == (17, 3)


def test_patch_toggles_is_active(client, headers, store):
    store.links.create("https://example.com/", created_by=ADMIN_USERNAME, slug="toggle")
    response = client.patch("/api/links/toggle", json={"is_active": False}, headers=headers)
    assert response.status_code == 200
    assert response.json["is_active"] is False and response.json["status"] == "disabled"
    assert store.links.get("toggle")["is_active"] is False
    response = client.patch("/api/links/toggle", json={"is_active": True}, headers=headers)
    assert response.json["is_active"] is True
    assert store.links.get("toggle")["is_active"] is True


@pytest.mark.parametrize(
    "body",
    [{}, {"is_active": "false"}, {"is_active": 0}, {"is_active": None}, {"is_active": "false", "url": "https://x.example"}],
)
def test_patch_refuses_is_active_that_is_not_a_boolean(client, headers, store, body):
    store.links.create("https://example.com/", created_by=ADMIN_USERNAME, slug="fixed")
    response = client.patch("/api/links/fixed", json=body, headers=headers)
    assert response.status_code == 422
    assert "is_active" in response.json["error"]
    link = store.links.get("fixed")
    assert link["is_active"] is True and link["url"] == "https://example.com/"


def test_list_links_pages_newest_first(client, headers, store):
    for i in range(3):
        store.links.create(f"https://example.com/{i}", created_by=ADMIN_USERNAME, slug=f"list{i}")
    first = client.get("/api/links?limit=2", headers=headers).json
    assert len(first["links"]) == 2 and first["next_cursor"]
    second = client.get("/api/links", query_string={"limit": 2, "cursor": first["next_cursor"]}, headers=headers).json
    assert second["next_cursor"] is None
    ids = [link["short_id"] for link in first["links"] + second["links"]]
    assert sorted(ids) == ["list0", "list1", "list2"]  # same-second creations tie on created_at
    assert first["links"][0]["short_url"].startswith("https://sho.rt/")


@pytest.mark.parametrize(
    ("query", "message"),
    [("limit=0", "limit must be"), ("limit=101", "limit must be"), ("limit=ten", "limit must be"), ("limit=%C2%B2", "limit must be"),
     ("limit=-1", "limit must be"), ("cursor=bogus", "cursor")],
)
def test_list_links_bad_query(client, headers, query, message):
    response = client.get(f"/api/links?{query}", headers=headers)
    assert response.status_code == 422
    assert message in response.json["error"]


# Errors


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"https://example.com"', "must be a JSON object"),
        ("null", "must be a JSON object"),
    ],
)
def test_400_malformed_body(client, headers, data, message):
    response = client.post("/api/links", data=data, content_type="application/json", headers=headers)
    assert response.status_code == 400
    assert message in response.json["error"]


@pytest.mark.parametrize(
    "auth_header",
    [None, "", "Bearer", "Bearer ", "Bearer wrong-token", "Basic YWxpY2U6cHc=", "Token {token}", "Bearer {token}x"],
)
def test_401_missing_or_wrong_token(client, api_token, store, auth_header):
    headers = {"Authorization": auth_header.format(token=api_token)} if auth_header is not None else {}
    response = client.post("/api/links", json={"url": "https://example.com/"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "API token" in response.json["error"]
    assert store.links.list(limit=5) == ([], None)


def test_401_session_cookie_is_not_enough(client, auth):
    """The API is CSRF-exempt, so a signed-in browser session must not authenticate it."""
    auth.login()
    response = client.post("/api/links", json={"url": "https://example.com/"})
    assert response.status_code == 401


def test_401_on_get_and_patch_too(client):
    assert client.get("/api/links/x").status_code == 401
    assert client.patch("/api/links/x", json={"is_active": False}).status_code == 401


def test_404_not_found(client, headers):
    for response in (
        client.get("/api/links/ghost", headers=headers),
        client.patch("/api/links/ghost", json={"is_active": False}, headers=headers),
    ):
        assert response.status_code == 404
        assert response.json == {"error": "There is no short link with that id."}


def test_404_unknown_api_path_is_json(client, headers):
    response = client.get("/api/nothing-here", headers=headers)
    assert response.status_code == 404
    assert "error" in response.json


def test_405_is_json(client, headers):
    response = client.delete("/api/links/x", headers=headers)
    assert response.status_code == 405
    assert "error" in response.json


def test_409_slug_taken(client, headers, store):
    store.links.create("https://first.example/", created_by=ADMIN_USERNAME, slug="taken")
    response = client.post("/api/links", json={"url": "https://second.example/", "slug": "taken"}, headers=headers)
    assert response.status_code == 409
    assert response.json["error"] == "That custom slug is already taken."
    assert store.links.get("taken")["url"] == "https://first.example/"


def test_413_body_too_large(client, headers, store):
    body = '{"url": "https://example.com/", "title": "' + "x" * 70_000 + '"}'
    response = client.post("/api/links", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 413
    assert "error" in response.json
    assert store.links.list(limit=5) == ([], None)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_415_not_json(client, headers, content_type):
    response = client.post("/api/links", data='{"url": "https://example.com/"}', content_type=content_type, headers=headers)
    assert response.status_code == 415
    assert "application/json" in response.json["error"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "url", "Enter the destination URL"),
        ({"url": 42}, "url", "Enter the destination URL"),
        ({"url": "ftp://example.com/"}, "url", "Only http and https links can be shortened."),
        ({"url": "https://example.com/a b"}, "url", "spaces or control characters"),
        ({"url": "https://sho.rt/loop"}, "url", "loop"),
        ({"url": "https://example.com/" + "a" * 2030}, "url", "at most 2048"),
        ({"url": "https://example.com/", "slug": "ab"}, "slug", "3 to 64 characters"),
        ({"url": "https://example.com/", "slug": "api"}, "slug", "reserved"),
        ({"url": "https://example.com/", "slug": "über"}, "slug", "may only use letters"),
        ({"url": "https://example.com/", "slug": 12345}, "slug", "must be text"),
        ({"url": "https://example.com/", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at", "in the future"),
        ({"url": "https://example.com/", "expires_at": "next week"}, "expires_at", "ISO 8601"),
        ({"url": "https://example.com/", "expires_at": 1893456000}, "expires_at", "ISO 8601"),
        ({"url": "https://example.com/", "title": "a\nb"}, "title", "line breaks"),
    ],
)
def test_422_invalid_input_says_which(client, headers, store, body, field, message):
    response = client.post("/api/links", json=body, headers=headers)
    assert response.status_code == 422
    assert message in response.json["error"]
    assert response.json["field"] == field
    assert store.links.list(limit=5) == ([], None)


def test_422_unknown_field(client, headers):
    response = client.post("/api/links", json={"url": "https://example.com/", "expires": None}, headers=headers)
    assert response.status_code == 422
    assert "Unknown field(s): expires." == response.json["error"]


# CORS


@pytest.fixture
def cors_client(ddb):
    app = make_app(CORS_ORIGINS=["https://tools.example.org"])
    return app.test_client()


def test_cors_preflight_allowed_for_listed_origin(cors_client):
    response = cors_client.options(
        "/api/links",
        headers={
            "Origin": "https://tools.example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://tools.example.org"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "Origin" in response.headers["Vary"]


@pytest.mark.parametrize("origin", ["https://evil.example", "https://tools.example.org.evil.example", "null", "*"])
def test_cors_preflight_refused_for_other_origins(cors_client, origin):
    response = cors_client.options("/api/links", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


def test_cors_header_on_actual_response(cors_client):
    response = cors_client.get("/api/links/x", headers={"Origin": "https://tools.example.org"})
    assert response.status_code == 401  # even errors must be readable by the allowed page
    assert response.headers["Access-Control-Allow-Origin"] == "https://tools.example.org"


def test_no_cors_origins_by_default(client, headers):
    response = client.get("/api/links/x", headers={**headers, "Origin": "https://tools.example.org"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_api_responses_set_no_cookie(client, headers):
    response = client.post("/api/links", json={"url": "https://example.com/"}, headers=headers)
    assert "Set-Cookie" not in response.headers
