"""Bad input as an attacker or a careless client sends it: a clear 4xx on every route, never a 500.

Deeply nested JSON bodies, ids far over DynamoDB's 2,048-byte key limit, and crafted page cursors.
"""
import base64
import json

import pytest

from tests.conftest import ADMIN_USERNAME

# Over DynamoDB's 2,048-byte key limit: in characters, and in bytes only (3 bytes per character).
OVERSIZED_IDS = ["a" * 3000, "\u20ac" * 700, "a" * 65]
NESTED_BODIES = ["[" * 1000, "[" * 60_000, '{"url": ' + "[" * 1000, '{"a":' * 1000]

# Every route that takes a JSON body: (method, path).
BODY_ROUTES = [
    ("POST", "/api/links"),
    ("POST", "/shorten"),
    ("PATCH", "/api/links/launch"),
    ("POST", "/api/tokens"),
    ("POST", "/api/users"),
    ("PATCH", "/api/users/bob"),
]


@pytest.fixture
def headers(api_token):
    return {"Authorization": f"Bearer {api_token}"}


def _asked_about(requests, value):
    return [name for name, params in requests if value in json.dumps(params)]


@pytest.mark.parametrize("body", NESTED_BODIES, ids=["1000-arrays", "60000-arrays", "in-object", "1000-objects"])
@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_deeply_nested_json_is_a_400_not_valid_json(client, headers, store, method, path, body):
    store.links.create("https://example.com/", created_by=ADMIN_USERNAME, slug="launch")
    store.users.create("bob", "a-long-password", role="viewer")
    response = client.open(path, method=method, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 400
    assert response.json == {"error": "The body is not valid JSON."}


@pytest.mark.parametrize("short_id", OVERSIZED_IDS, ids=["3000-chars", "2100-bytes", "65-chars"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/links/{}", None),
        ("GET", "/api/links/{}/stats", None),
        ("PATCH", "/api/links/{}", {"is_active": False}),
    ],
)
def test_oversized_link_id_in_the_api_is_404_without_asking_dynamodb(
    client, headers, table_requests, method, path, body, short_id
):
    response = client.open(path.format(short_id), method=method, json=body, headers=headers)
    assert response.status_code == 404
    assert response.json == {"error": "There is no short link with that id."}
    assert _asked_about(table_requests, short_id) == []


@pytest.mark.parametrize("short_id", OVERSIZED_IDS, ids=["3000-chars", "2100-bytes", "65-chars"])
@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/links/{}"), ("POST", "/links/{}/disable"), ("POST", "/links/{}/enable")]
)
def test_oversized_link_id_on_the_admin_pages_is_404_without_asking_dynamodb(
    client, auth, table_requests, method, path, short_id
):
    auth.login()
    response = client.open(path.format(short_id), method=method)
    assert response.status_code == 404
    assert "There is no short link with that id." in response.get_data(as_text=True)
    assert _asked_about(table_requests, short_id) == []


@pytest.mark.parametrize("name", OVERSIZED_IDS, ids=["3000-chars", "2100-bytes", "65-chars"])
@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("DELETE", "/api/tokens/{}", None, "There is no token with that id"),
        ("PATCH", "/api/users/{}", {"disabled": True}, "There is no user with that name."),
        ("PATCH", "/api/users/{}", {"role": "viewer"}, "There is no user with that name."),
    ],
)
def test_oversized_token_id_or_user_name_in_the_api_is_404_without_asking_dynamodb(
    client, headers, table_requests, method, path, body, message, name
):
    response = client.open(path.format(name), method=method, json=body, headers=headers)
    assert response.status_code == 404
    assert message in response.json["error"]
    assert _asked_about(table_requests, name) == []


@pytest.mark.parametrize("name", OVERSIZED_IDS, ids=["3000-chars", "2100-bytes", "65-chars"])
@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        ("/users/{}/role", {"role": "viewer"}, "There is no user with that name."),
        ("/users/{}/disable", {}, "There is no user with that name."),
        ("/users/{}/enable", {}, "There is no user with that name."),
        ("/tokens/{}/revoke", {}, "There is no token with that id"),
    ],
)
def test_oversized_token_id_or_user_name_on_the_admin_pages_is_404_without_asking_dynamodb(
    client, auth, table_requests, path, data, message, name
):
    auth.login()
    response = client.post(path.format(name), data=data)
    assert response.status_code == 404
    assert message in response.get_data(as_text=True)
    assert _asked_about(table_requests, name) == []


def test_ids_of_the_longest_allowed_slug_still_work(client, headers, store):
    slug = "s" * 64
    store.links.create("https://example.com/", created_by=ADMIN_USERNAME, slug=slug)
    assert client.get(f"/api/links/{slug}", headers=headers).status_code == 200
    assert client.patch(f"/api/links/{slug}", json={"is_active": False}, headers=headers).status_code == 200


def _cursor(raw):
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


CRAFTED_CURSORS = {
    "empty-value": _cursor('{"links#0":""}'),
    "empty-object": _cursor("{}"),
    "null-value": _cursor('{"links#0":null}'),
    "number-value": _cursor('{"links#0":5}'),
    "object-value": _cursor('{"links#0":{"S":"x"}}'),
    "list": _cursor('["links#0"]'),
    "string": _cursor('"links#0"'),
    "unknown-shard": _cursor('{"links#9":"2030-01-01T00:00:00Z#x"}'),
    "oversized-value": _cursor(json.dumps({"links#0": "x" * 201})),
    "nested-arrays": _cursor("[" * 1000),
    "nested-objects": _cursor('{"a":' * 1000),
    "not-utf8": _cursor(b"\xff\xfe{"),
    "not-base64": "!!!not-base64!!!",
    "not-ascii": "\u00e9t\u00e9",
    "truncated": _cursor('{"links#0":"x"}')[:-3],
}


@pytest.mark.parametrize("cursor", CRAFTED_CURSORS.values(), ids=CRAFTED_CURSORS.keys())
def test_crafted_api_cursor_is_422(client, headers, cursor):
    response = client.get("/api/links", query_string={"cursor": cursor}, headers=headers)
    assert response.status_code == 422
    assert response.json == {"error": "cursor is not one this API handed out.", "field": "cursor"}


@pytest.mark.parametrize("cursor", CRAFTED_CURSORS.values(), ids=CRAFTED_CURSORS.keys())
def test_crafted_admin_list_cursor_is_400(client, auth, cursor):
    auth.login()
    response = client.get("/", query_string={"cursor": cursor})
    assert response.status_code == 400
    assert "That page link is not valid." in response.get_data(as_text=True)


def test_an_empty_cursor_parameter_is_the_first_page(client, headers, auth):
    assert client.get("/api/links?cursor=", headers=headers).status_code == 200
    auth.login()
    assert client.get("/?cursor=").status_code == 200
