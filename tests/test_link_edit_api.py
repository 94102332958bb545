"""PATCH /api/links/<id>: every editable field, the same rules as create, If-Match and ETag, and who may."""
from datetime import timedelta

import pytest

from tests.conftest import ADMIN_USERNAME, token_for
from webapp.exceptions import LinkNotFound


@pytest.fixture
def headers(api_token):
    return {"Authorization": f"Bearer {api_token}"}


def _create(store, slug="api-edit", **kwargs):
    kwargs.setdefault("created_by", ADMIN_USERNAME)
    return store.links.create(kwargs.pop("url", "https://example.com/start"), slug=slug, **kwargs)


def _patch(client, headers, body, short_id="api-edit", **extra):
    return client.patch(f"/api/links/{short_id}", json=body, headers={**headers, **extra})


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        ({"url": "https://bücher.example/ö"}, "original_url", "https://xn--bcher-kva.example/%C3%B6"),
        ({"title": "  New title "}, "title", "New title"),
        ({"title": None}, "title", None),
        ({"tags": ["Beta", "alpha", "beta"]}, "tags", ["alpha", "beta"]),
        ({"tags": []}, "tags", []),
        ({"tags": None}, "tags", []),
        ({"note": "Two\nlines"}, "note", "Two\nlines"),
        ({"note": None}, "note", None),
        ({"expires_at": None}, "expires_at", None),
        ({"expires_at": "2099-06-01"}, "expires_at", "2099-06-01T23:59:59Z"),
        ({"expires_at": "2099-06-01T10:00:00+02:00"}, "expires_at", "2099-06-01T08:00:00Z"),
        ({"is_active": False}, "status", "disabled"),
        ({"archived": True}, "archived", True),
        ({"forward_query": False}, "forward_query", False),
    ],
)
def test_patch_each_field(client, headers, store, body, field, expected):
    _create(store, title="Old", tags=["old"], note="Old note", expires_at="2098-01-01T00:00:00Z")
    response = _patch(client, headers, body)
    assert response.status_code == 200, response.json
    assert response.json[field] == expected
    assert response.json["version"] == 2 and response.json["updated_by"] == ADMIN_USERNAME
    assert response.headers["ETag"] == '"2"'
    stored = store.links.get("api-edit")
    assert stored["version"] == 2
    assert client.get("/api/links/api-edit", headers=headers).json[field] == expected


def test_patch_several_fields_at_once(client, headers, store):
    _create(store)
    response = _patch(client, headers, {"title": "T", "tags": ["x"], "archived": True, "is_active": False})
    body = response.json
    assert (body["title"], body["tags"], body["archived"], body["is_active"], body["version"]) == ("T", ["x"], True, False, 2)


def test_patch_that_changes_nothing_keeps_the_version(client, headers, store):
    _create(store, title="Same")
    response = _patch(client, headers, {"title": "Same", "is_active": True})
    assert response.status_code == 200 and response.json["version"] == 1


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, None, "Nothing to change"),
        ({"slug": "new-slug"}, "slug", "Unknown field(s): slug"),
        ({"title": "ok", "clicks": 5}, "clicks", "Unknown field(s): clicks"),
        ({"url": "ftp://example.com/"}, "url", "http"),
        ({"url": 5}, "url", "Enter the destination URL."),
        ({"url": "https://sho.rt/x"}, "url", "short"),
        ({"title": 5}, "title", "must be text"),
        ({"title": "x" * 201}, "title", "at most 200"),
        ({"tags": "a, b"}, None, None),  # the form's comma-separated text is accepted too: see below
        ({"tags": [1, 2]}, "tags", "list of text labels"),
        ({"tags": {"a": 1}}, "tags", "list of text labels"),
        ({"tags": ["<b>"]}, "tags", "may only use letters"),
        ({"note": ["x"]}, "note", "must be text"),
        ({"note": "x" * 1001}, "note", "at most 1000"),
        ({"expires_at": "yesterday"}, "expires_at", "ISO 8601"),
        ({"expires_at": "2001-01-01"}, "expires_at", "in the future"),
        ({"expires_at": 12}, "expires_at", "ISO 8601"),
        ({"is_active": "false"}, "is_active", "true or false"),
        ({"archived": 1}, "archived", "true or false"),
        ({"forward_query": None}, "forward_query", "true or false"),
        ({"title": "Fine", "archived": "yes"}, "archived", "true or false"),
    ],
)
def test_bad_fields_are_422_naming_the_field_and_change_nothing(client, headers, store, body, field, message):
    _create(store, title="Kept")
    response = _patch(client, headers, body)
    if message is None:
        assert response.status_code == 200 and response.json["tags"] == ["a", "b"]
        return
    assert response.status_code == 422
    assert message in response.json["error"]
    assert response.json.get("field") == field
    link = store.links.get("api-edit")
    assert (link["title"], link["version"], link["archived"], link["is_active"]) == ("Kept", 1, False, True)


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [("not json", "application/json", 400), ("[]", "application/json", 400), ('{"title": "x"}', "text/plain", 415)],
)
def test_a_body_that_is_not_a_json_object_is_refused(client, headers, store, data, content_type, status):
    _create(store)
    response = client.patch("/api/links/api-edit", data=data, content_type=content_type, headers=headers)
    assert response.status_code == status
    assert store.links.get("api-edit")["version"] == 1


def test_a_blocked_destination_is_refused(client, headers, store):
    _create(store)
    store.blocklist.add("domain", "blocked.example", created_by=ADMIN_USERNAME)
    response = _patch(client, headers, {"url": "https://www.blocked.example/"})
    assert response.status_code == 422 and response.json["field"] == "url"
    assert store.links.get("api-edit")["url"] == "https://example.com/start"


def test_patch_of_a_missing_link_is_404(client, headers):
    assert _patch(client, headers, {"title": "x"}, short_id="ghost").status_code == 404


# If-Match and ETag


def test_get_gives_the_version_as_etag(client, headers, store):
    _create(store)
    assert client.get("/api/links/api-edit", headers=headers).headers["ETag"] == '"1"'
    _patch(client, headers, {"title": "x"})
    assert client.get("/api/links/api-edit", headers=headers).headers["ETag"] == '"2"'


def test_if_match_with_the_current_version_applies(client, headers, store):
    _create(store)
    response = _patch(client, headers, {"title": "Mine"}, **{"If-Match": '"1"'})
    assert response.status_code == 200 and response.headers["ETag"] == '"2"'
    assert store.links.get("api-edit")["title"] == "Mine"


def test_a_stale_if_match_is_412_and_changes_nothing(client, headers, store):
    _create(store)
    _patch(client, headers, {"title": "Theirs"})
    response = _patch(client, headers, {"title": "Mine"}, **{"If-Match": '"1"'})
    assert response.status_code == 412
    assert "version 2" in response.json["error"] and "nothing was changed" in response.json["error"]
    assert response.headers["ETag"] == '"2"'
    link = store.links.get("api-edit")
    assert (link["title"], link["version"]) == ("Theirs", 2)


@pytest.mark.parametrize("value", ['W/"1"', "1", '"one"', '"1", "2"', '""'])
def test_an_if_match_that_is_not_one_version_is_412(client, headers, store, value):
    _create(store)
    response = _patch(client, headers, {"title": "Mine"}, **{"If-Match": value})
    assert response.status_code == 412 and "If-Match" in response.json["error"]
    assert store.links.get("api-edit")["version"] == 1


def test_if_match_star_means_any_version(client, headers, store):
    _create(store)
    _patch(client, headers, {"title": "Theirs"})
    assert _patch(client, headers, {"title": "Mine"}, **{"If-Match": "*"}).status_code == 200


# Who may


@pytest.mark.parametrize(("role", "scope"), [("viewer", "read"), ("editor", "read"), ("admin", "read")])
def test_a_viewer_or_read_only_token_gets_403(client, store, role, scope):
    _create(store)
    token = token_for(store, role, scope=scope)
    response = _patch(client, {"Authorization": f"Bearer {token}"}, {"title": "Nope", "archived": True})
    assert response.status_code == 403 and response.json["error"]
    link = store.links.get("api-edit")
    assert (link["title"], link["archived"], link["version"]) == (None, False, 1)


def test_an_editor_write_token_may_edit_anyones_link(client, store):
    _create(store)
    token = token_for(store, "editor")
    response = _patch(client, {"Authorization": f"Bearer {token}"}, {"title": "By the editor"})
    assert response.status_code == 200 and response.json["updated_by"] == "editor1"


# Create takes the new fields


def test_create_takes_tags_note_and_forward_query(client, headers, store):
    response = client.post("/api/links", json={"url": "https://example.com/", "slug": "fresh", "tags": ["Launch"],
                                               "note": "Why", "forward_query": False}, headers=headers)
    assert response.status_code == 201
    body = response.json
    assert (body["tags"], body["note"], body["forward_query"], body["archived"], body["version"]) == (
        ["launch"], "Why", False, False, 1)
    assert body["updated_at"] is None and body["updated_by"] is None
    assert response.headers["ETag"] == '"1"'
    assert store.links.get("fresh")["forward_query"] is False


def test_create_defaults_forward_query_to_true(client, headers):
    body = client.post("/api/links", json={"url": "https://example.com/"}, headers=headers).json
    assert (body["tags"], body["note"], body["forward_query"]) == ([], None, True)


@pytest.mark.parametrize(
    ("body", "field"),
    [({"tags": "nope-not-a-list-but-text-is-fine"}, None), ({"tags": [3]}, "tags"), ({"note": 3}, "note"),
     ({"forward_query": "yes"}, "forward_query"), ({"forward_query": None}, "forward_query")],
)
def test_create_refuses_bad_new_fields(client, headers, store, body, field):
    response = client.post("/api/links", json={"url": "https://example.com/", "slug": "refused", **body}, headers=headers)
    if field is None:
        assert response.status_code == 201
        return
    assert response.status_code == 422 and response.json["field"] == field
    with pytest.raises(LinkNotFound):
        store.links.get("refused")


def test_patch_expiry_in_the_past_by_a_second_is_refused(client, headers, store, clock):
    _create(store)
    past = (clock.now - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = _patch(client, headers, {"expires_at": past})
    assert response.status_code == 422 and response.json["field"] == "expires_at"
