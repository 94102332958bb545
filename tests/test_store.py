"""The DynamoDB store (webapp/store/: links, users, tokens), against a moto table built from the template."""
import base64

import pytest

from tests.conftest import TABLE_NAME, put_counter
from webapp import clock, link_rules
from webapp import store as store_module
from webapp.exceptions import (
    IdSpaceExhausted,
    InvalidCursor,
    LinkNotFound,
    SlugTaken,
    UserExists,
    UserNotFound,
)
from webapp.store import Store


@pytest.fixture
def store(ddb):
    """A store on the moto table, without any Flask app."""
    return Store(TABLE_NAME, client=ddb)


def test_every_part_works_on_the_one_table_and_is_handed_the_parts_it_calls(store, ddb):
    """One client for the app: fault injection and patches on store.table.client reach every part."""
    assert store.table.client is ddb and store.table.name == TABLE_NAME
    parts = [store.links, store.users, store.sessions, store.tokens, store.sign_ins]
    assert all(part.table is store.table for part in parts)
    assert store.users.sessions is store.sessions
    assert store.tokens.users is store.users


def _raw_item(ddb, pk, sk):
    return ddb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")


def _all_items(ddb):
    # Scanning is fine in a test that checks the whole (tiny) table's contents.
    return ddb.scan(TableName=TABLE_NAME)["Items"]


def test_create_and_get_link(store, ddb):
    link = store.links.create("https://example.com/", created_by="alice", title="Example", expires_at="2027-01-01T00:00:00Z")
    assert len(link["id"]) == 7
    assert store.links.get(link["id"]) == link
    assert link["click_count"] == 0 and link["bot_count"] == 0 and link["is_active"] is True
    raw = _raw_item(ddb, link["id"], "link")
    # The redirect reads exactly these attributes; the aggregator ADDs to the counters.
    assert raw["url"] == {"S": "https://example.com/"}
    assert raw["is_active"] == {"BOOL": True}
    assert raw["expires_at"] == {"S": "2027-01-01T00:00:00Z"}
    # Counters live in their own items (written by the aggregator), so a click never writes the link or its index entry.
    assert "click_count" not in raw and "clicks" not in raw
    assert raw["list_pk"] == {"S": store_module.list_shard(link["id"])}
    assert raw["list_sk"] == {"S": f"{link['created_at']}#{link['id']}"}
    assert clock.parse_timestamp(link["created_at"])  # fixed-width UTC format


def test_never_expiring_link_has_no_expires_at(store, ddb):
    link = store.links.create("https://example.com/", created_by="alice", slug="forever")
    assert link["expires_at"] is None
    assert "expires_at" not in _raw_item(ddb, "forever", "link")
    assert "title" not in _raw_item(ddb, "forever", "link")


def test_custom_slug_taken_never_overwrites(store, ddb):
    store.links.create("https://first.example/", created_by="alice", slug="promo")
    before = _raw_item(ddb, "promo", "link")
    with pytest.raises(SlugTaken):
        store.links.create("https://second.example/", created_by="mallory", slug="promo")
    assert _raw_item(ddb, "promo", "link") == before


def test_random_id_collision_is_retried(store, ddb, monkeypatch):
    taken = store.links.create("https://first.example/", created_by="alice", slug="Taken12")
    ids = iter(["Taken12", "Fresh34"])
    monkeypatch.setattr(link_rules, "new_id", lambda length: next(ids))
    link = store.links.create("https://second.example/", created_by="bob")
    assert link["id"] == "Fresh34"
    assert store.links.get("Taken12") == taken


def test_random_id_gives_up_after_a_few_collisions(store, monkeypatch):
    store.links.create("https://first.example/", created_by="alice", slug="Taken12")
    monkeypatch.setattr(link_rules, "new_id", lambda length: "Taken12")
    with pytest.raises(IdSpaceExhausted):
        store.links.create("https://second.example/", created_by="bob")
    assert store.links.get("Taken12")["url"] == "https://first.example/"


def test_get_missing_link(store):
    with pytest.raises(LinkNotFound):
        store.links.get("nope")


def test_list_links_newest_first_with_cursor_pages(store, ddb, monkeypatch):
    def refuse_scan(**kwargs):
        raise AssertionError("links.list must Query the index, never Scan")

    monkeypatch.setattr(store.table.client, "scan", refuse_scan)
    times = iter(f"2026-01-01T00:00:{s:02d}Z" for s in range(25))
    monkeypatch.setattr(clock, "format_timestamp", lambda moment: next(times))
    for i in range(25):
        store.links.create(f"https://example.com/{i}", created_by="alice", slug=f"link{i:02d}")

    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = store.links.list(limit=10, cursor=cursor)
        pages += 1
        seen += [link["id"] for link in page]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [f"link{i:02d}" for i in reversed(range(25))]


@pytest.mark.parametrize("count", [4, 16, 17])
def test_list_links_never_links_to_an_empty_page(store, count):
    """With links spread over eight list keys, each page still knows whether another follows."""
    for i in range(count):
        store.links.create("https://example.com/", created_by="alice", slug=f"link{i:02d}")
    sizes, cursor = [], None
    while True:
        page, cursor = store.links.list(limit=2, cursor=cursor)
        sizes.append(len(page))
        if cursor is None:
            break
    assert sum(sizes) == count and 0 not in sizes
    assert len(sizes) == (count + 1) // 2


def test_list_links_ignores_users_and_tokens(store):
    store.users.create("alice", "pw-pw-pw-pw")
    store.tokens.create("alice", "ci")
    store.links.create("https://example.com/", created_by="alice", slug="only")
    page, cursor = store.links.list(limit=10)
    assert [link["id"] for link in page] == ["only"] and cursor is None


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        "e30",  # {}
        store_module.encode_cursor({"pk": "x", "sk": "x", "list_pk": "x", "list_sk": "x"}),  # another list's key
        store_module.encode_cursor({"users": "x"}),  # not a link shard
        store_module.encode_cursor({"links#0": ""}),  # empty position
        "bnVsbA",  # null
        base64.urlsafe_b64encode(b"[" * 5000).decode(),  # nested too deep to parse
    ],
)
def test_list_links_refuses_foreign_cursors(store, cursor):
    with pytest.raises(InvalidCursor):
        store.links.list(limit=10, cursor=cursor)


def test_set_active(store, ddb):
    store.links.create("https://example.com/", created_by="alice", slug="toggle")
    assert store.links.set_active("toggle", False)["is_active"] is False
    assert _raw_item(ddb, "toggle", "link")["is_active"] == {"BOOL": False}
    assert store.links.set_active("toggle", True)["is_active"] is True


def test_set_active_on_missing_link_creates_nothing(store, ddb):
    with pytest.raises(LinkNotFound):
        store.links.set_active("ghost", False)
    assert _raw_item(ddb, "ghost", "link") is None


def test_counters_written_by_the_aggregator_are_read_back(store, ddb):
    store.links.create("https://example.com/", created_by="alice", slug="counted")
    put_counter(ddb, "counted", 41, 2, last_clicked_at="2026-11-27T05:35:59Z")
    link = store.links.get("counted")
    assert (link["click_count"], link["bot_count"], link["last_clicked_at"]) == (41, 2, "2026-11-27T05:35:59Z")


def test_counts_are_summed_over_regions_on_every_read(ddb):
    """Under a global table each region writes its own counter item; reads sum them."""
    store = store_module.Store(TABLE_NAME, client=ddb, regions=["us-east-1", "eu-west-1"])
    store.links.create("https://example.com/", created_by="alice", slug="global")
    put_counter(ddb, "global", 5, 1, region="us-east-1", last_clicked_at="2026-11-27T05:00:00Z")
    put_counter(ddb, "global", 7, 0, region="eu-west-1", last_clicked_at="2026-11-27T06:00:00Z")
    put_counter(ddb, "global", 100, region="ap-south-1")  # not a region of this deployment
    link = store.links.get("global")
    assert (link["click_count"], link["bot_count"], link["last_clicked_at"]) == (112, 1, "2026-11-27T06:00:00Z")
    [listed], _ = store.links.list(limit=5)
    assert (listed["click_count"], listed["bot_count"]) == (12, 1), "the list reads only the configured regions"


def test_a_page_costs_one_query_per_list_shard_and_one_batch_read(store, ddb):
    for i in range(30):
        store.links.create("https://example.com/", created_by="alice", slug=f"cost{i:02d}")
    calls = []
    store.table.client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    page, cursor = store.links.list(limit=10)
    assert len(page) == 10 and cursor
    assert sorted(calls) == ["BatchGetItem"] + ["Query"] * store_module.LIST_SHARDS


def test_users_and_passwords(store, ddb):
    store.users.create("alice", "s3cret-pass")
    assert store.users.get("alice")["username"] == "alice"
    assert "password_hash" not in store.users.get("alice")
    assert store.users.get("bob") is None
    assert store.users.verify_password("alice", "s3cret-pass")
    assert not store.users.verify_password("alice", "wrong")
    assert not store.users.verify_password("bob", "s3cret-pass")
    stored = _raw_item(ddb, "user#alice", "user")["password_hash"]["S"]
    assert stored.startswith("scrypt:") and "s3cret-pass" not in stored
    with pytest.raises(UserExists):
        store.users.create("alice", "other")
    assert store.users.verify_password("alice", "s3cret-pass")


def test_ensure_user_creates_then_resets_password(store, ddb):
    store.users.ensure("admin", "first-pass")
    created = _raw_item(ddb, "user#admin", "user")["created_at"]
    store.users.ensure("admin", "second-pass")
    assert store.users.verify_password("admin", "second-pass")
    assert not store.users.verify_password("admin", "first-pass")
    assert _raw_item(ddb, "user#admin", "user")["created_at"] == created


def test_tokens_are_stored_hashed(store, ddb):
    store.users.create("alice", "s3cret-pass")
    plaintext, token_id = store.tokens.create("alice", "deploy script")
    assert store.tokens.resolve(plaintext)["username"] == "alice"
    assert store.tokens.resolve(plaintext + "x") is None
    assert store.tokens.resolve("") is None
    dump = repr(_all_items(ddb))
    assert plaintext not in dump
    assert store_module.hash_token(plaintext) in dump
    tokens = store.tokens.list()
    assert tokens == [{"id": token_id, "username": "alice", "name": "deploy script", "scope": "write",
                       "created_at": tokens[0]["created_at"], "expires_at": tokens[0]["expires_at"],
                       "last_used_at": tokens[0]["last_used_at"], "expired": False}]


def test_create_token_needs_an_existing_user(store):
    with pytest.raises(UserNotFound):
        store.tokens.create("nobody", "x")


def test_ensure_token_is_idempotent(store, ddb):
    store.users.ensure("admin", "pw-pw-pw-pw")
    first = store.tokens.ensure("admin", "local-token-123", "local stack")
    second = store.tokens.ensure("admin", "local-token-123", "local stack")
    assert first == second
    assert store.tokens.resolve("local-token-123")["username"] == "admin"
    tokens = store.tokens.list()
    assert len(tokens) == 1


def test_throttling_maps_to_store_unavailable(store, monkeypatch):
    from botocore.exceptions import ClientError

    from webapp.exceptions import StoreUnavailable

    def throttled(**kwargs):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "GetItem")

    monkeypatch.setattr(store.table.client, "query", throttled)
    with pytest.raises(StoreUnavailable):
        store.links.get("any")


def test_read_secure_parameter(ddb):
    import boto3

    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/shortener/secret", Value="from-ssm", Type="SecureString")
    assert store_module.read_secure_parameter("/shortener/secret") == "from-ssm"
