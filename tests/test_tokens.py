"""API tokens: created once in plaintext, listed without secrets, scoped, capped by the owner's role, revocable, expiring."""
import json

import pytest

from local_stack.template import table_properties
from tests.conftest import ADMIN_USERNAME, REGION, ROLE_PASSWORD, TABLE_NAME, add_user, sign_in_as, token_for
from webapp.store import Store, hash_token


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_create_answers_201_with_the_plaintext_once(client, api_token):
    response = client.post("/api/tokens", json={"name": "deploy", "scope": "read"}, headers=_bearer(api_token))
    assert response.status_code == 201
    body = response.json
    assert body["token"].startswith("shk_") and body["name"] == "deploy" and body["scope"] == "read"
    assert body["id"] and body["expires_at"]
    assert response.headers["Cache-Control"] == "no-store"
    listing = client.get("/api/tokens", headers=_bearer(api_token))
    dump = json.dumps(listing.json)
    assert body["token"] not in dump and hash_token(body["token"]) not in dump
    assert {t["name"] for t in listing.json["tokens"]} == {"tests", "deploy"}
    assert set(listing.json["tokens"][0]) == {"id", "username", "name", "scope", "created_at", "expires_at",
                                              "last_used_at", "expired"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "read"}, "name"),
        ({"name": "x", "scope": "admin"}, "scope"),
        ({"name": "x", "scope": "read", "expires_in_days": 0}, "expires_in_days"),
        ({"name": "x", "scope": "read", "expires_in_days": 1000}, "expires_in_days"),
    ],
)
def test_create_refuses_bad_input(client, api_token, body, field):
    response = client.post("/api/tokens", json=body, headers=_bearer(api_token))
    assert response.status_code == 422
    assert response.json["field"] == field


def test_a_read_token_cannot_write(client, store):
    token = token_for(store, "editor", scope="read")
    response = client.post("/api/links", json={"url": "https://example.com/"}, headers=_bearer(token))
    assert response.status_code == 403
    assert "scope (read)" in response.json["error"]
    assert client.get("/api/links", headers=_bearer(token)).status_code == 200
    assert client.post("/api/tokens", json={"name": "more", "scope": "read"}, headers=_bearer(token)).status_code == 403


def test_a_token_never_exceeds_its_owners_role(client, store):
    token = token_for(store, "editor", scope="write")
    store.users.set_role("editor1", "viewer")  # demoted after the write token was made
    response = client.post("/api/links", json={"url": "https://example.com/"}, headers=_bearer(token))
    assert response.status_code == 403
    assert "role (viewer)" in response.json["error"]
    assert client.get("/api/links", headers=_bearer(token)).status_code == 200


def test_a_viewer_cannot_create_a_write_token(client, store):
    add_user(store, "viewer1", "viewer")
    with pytest.raises(ValueError):
        store.tokens.create("viewer1", "sneaky", scope="write")
    sign_in_as(client, store, "viewer")
    response = client.post("/tokens", data={"name": "sneaky", "scope": "write", "days": "30"})
    assert response.status_code == 422
    assert "only read" in response.get_data(as_text=True)
    assert store.tokens.list("viewer1") == []


def test_a_revoked_token_gets_401(client, store, api_token):
    other = client.post("/api/tokens", json={"name": "short-lived", "scope": "read"}, headers=_bearer(api_token)).json
    assert client.get("/api/links", headers=_bearer(other["token"])).status_code == 200
    assert client.delete(f"/api/tokens/{other['id']}", headers=_bearer(api_token)).status_code == 204
    assert client.get("/api/links", headers=_bearer(other["token"])).status_code == 401
    assert client.delete(f"/api/tokens/{other['id']}", headers=_bearer(api_token)).status_code == 404


def test_only_the_owner_or_an_admin_revokes(client, store, api_token):
    mine = token_for(store, "editor")
    _, theirs = store.tokens.create(ADMIN_USERNAME, "admin's")
    response = client.delete(f"/api/tokens/{theirs}", headers=_bearer(mine))
    assert response.status_code == 404  # someone else's token looks like no token
    editor_id = store.tokens.list("editor1")[0]["id"]
    assert client.delete(f"/api/tokens/{editor_id}", headers=_bearer(api_token)).status_code == 204  # admin
    assert client.get("/api/links", headers=_bearer(mine)).status_code == 401


def test_admins_list_everyones_tokens_others_only_their_own(client, store, api_token):
    editor = token_for(store, "editor")
    assert {t["username"] for t in client.get("/api/tokens", headers=_bearer(api_token)).json["tokens"]} == {
        ADMIN_USERNAME, "editor1"}
    assert {t["username"] for t in client.get("/api/tokens", headers=_bearer(editor)).json["tokens"]} == {"editor1"}
    assert client.get("/api/tokens?username=alice", headers=_bearer(editor)).status_code == 403
    one = client.get("/api/tokens?username=editor1", headers=_bearer(api_token)).json["tokens"]
    assert [t["username"] for t in one] == ["editor1"]


def test_an_expired_token_gets_401(client, store, clock):
    plaintext, _ = store.tokens.create(ADMIN_USERNAME, "one day", scope="read", days=1)
    assert client.get("/api/links", headers=_bearer(plaintext)).status_code == 200
    clock.advance(24 * 3600)
    response = client.get("/api/links", headers=_bearer(plaintext))
    assert response.status_code == 401
    assert store.tokens.list(ADMIN_USERNAME)[0]["expired"] is True


def test_a_disabled_owners_token_stops_working(client, store):
    token = token_for(store, "editor")
    store.users.set_disabled("editor1", True)
    assert client.get("/api/links", headers=_bearer(token)).status_code == 401
    store.users.set_disabled("editor1", False)
    assert client.get("/api/links", headers=_bearer(token)).status_code == 200


def test_a_token_made_before_scopes_existed_is_refused(client, store, ddb):
    ddb.put_item(TableName=TABLE_NAME, Item={
        "pk": {"S": f"token#{hash_token('old-token')}"}, "sk": {"S": "token"}, "username": {"S": ADMIN_USERNAME},
        "token_id": {"S": "old1"}, "name": {"S": "legacy"}, "list_pk": {"S": "tokens"},
        "list_sk": {"S": "2026-01-01T00:00:00Z#old1"}})
    assert client.get("/api/links", headers=_bearer("old-token")).status_code == 401


def test_last_use_is_recorded_and_shown(client, store, api_token, clock):
    assert store.tokens.list(ADMIN_USERNAME)[0]["last_used_at"] is None
    client.get("/api/links", headers=_bearer(api_token))
    first = store.tokens.list(ADMIN_USERNAME)[0]["last_used_at"]
    assert first
    clock.advance(120)
    client.get("/api/links", headers=_bearer(api_token))
    assert store.tokens.list(ADMIN_USERNAME)[0]["last_used_at"] > first


def test_token_items_layout(store, ddb):
    plaintext, token_id = store.tokens.create(ADMIN_USERNAME, "layout", scope="read")
    secret = ddb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": f"token#{hash_token(plaintext)}"}, "sk": {"S": "token"}})["Item"]
    record = ddb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": f"tokenid#{token_id}"}, "sk": {"S": "token"}})["Item"]
    # The record is in everyone's list, the secret item in its owner's; both sorted by creation time.
    assert record["list_pk"] == {"S": "tokens_all"}
    assert secret["list_pk"] == {"S": f"tokens_of#{ADMIN_USERNAME}"}
    assert secret["list_sk"] == record["list_sk"] == {"S": f"{record['created_at']['S']}#{token_id}"}
    assert secret["scope"] == record["scope"] == {"S": "read"}
    assert "purge_at" in secret and "purge_at" in record
    assert plaintext not in repr(ddb.scan(TableName=TABLE_NAME)["Items"])


def test_the_token_page_shows_the_plaintext_once_and_revokes(client, store):
    sign_in_as(client, store, "editor")
    response = client.post("/tokens", data={"name": "laptop", "scope": "write", "days": "7", "password": ROLE_PASSWORD})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    (token,) = [t for t in store.tokens.list("editor1")]
    plaintext = page.split('class="token-plaintext">')[1].split("<")[0]
    assert store.tokens.resolve(plaintext)["username"] == "editor1"
    listing = client.get("/tokens").get_data(as_text=True)
    assert "laptop" in listing and plaintext not in listing and "never" in listing
    assert client.post(f"/tokens/{token['id']}/revoke").status_code == 303
    assert store.tokens.resolve(plaintext) is None


def test_list_pages_need_only_the_attributes_the_index_will_project(monkeypatch):
    """The by_list index is moving to INCLUDE with these attributes; users and tokens still list fully."""
    import boto3
    from moto import mock_aws

    include = ["url", "title", "created_at", "created_by", "expires_at", "is_active", "username", "name",
               "token_id", "scope", "role", "disabled"]
    props = table_properties()
    for index in props["GlobalSecondaryIndexes"]:
        index["Projection"] = {"ProjectionType": "INCLUDE", "NonKeyAttributes": include}
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(TableName="include-test", **{k: v for k, v in props.items()
                                                          if k in ("KeySchema", "AttributeDefinitions", "BillingMode",
                                                                   "GlobalSecondaryIndexes")})
        store = Store("include-test", client=client)
        store.users.create("ann", "ann-password", role="editor")
        store.users.create("bob", "bob-password", role="viewer")
        store.users.set_disabled("bob", True)
        plaintext, token_id = store.tokens.create("ann", "ci", scope="read")
        store.tokens.resolve(plaintext)  # records last use
        index_item = client.query(TableName="include-test", IndexName="by_list",
                                  KeyConditionExpression="list_pk = :p",
                                  ExpressionAttributeValues={":p": {"S": "tokens_all"}})["Items"][0]
        assert "last_used_at" not in index_item  # the index really holds only what INCLUDE names
        users = {u["username"]: u for u in store.users.list()}
        assert users["ann"]["role"] == "editor" and users["bob"]["disabled"] is True
        (token,) = store.tokens.list("ann")
        assert token["id"] == token_id and token["scope"] == "read" and token["last_used_at"]
