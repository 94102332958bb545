"""An outside review of search, filters and the CSV export (issue 16): each test is an attack or a corner
that broke, or one that held and is pinned here, named after it."""
import base64
import csv
import io
import json
import unicodedata
from datetime import datetime, timezone

import pytest

from tests.conftest import TABLE_NAME, make_app, put_counter, sign_in_as
from tests.support.dynamodb_local import NO_JAVA, app_on_fresh_table
from webapp.store import link_index
from webapp.store.link_search import InvalidQuery, LinkQuery, parse_query
from webapp.store.table import _unmarshal

INDEX_PKS = (link_index.WORD_PK, link_index.TAG_PK, link_index.OWNER_PK, link_index.DISABLED_PK, link_index.EXPIRES_PK)


@pytest.fixture
def headers(api_token):
    return {"Authorization": f"Bearer {api_token}"}


def _forged(query, positions):
    """A cursor as link_search encodes one, with the query's (public, computable) fingerprint."""
    raw = json.dumps({"f": query.fingerprint(), "p": positions}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _ids(found):
    return [link["id"] for link in found[0]]


# The index stays true: after every kind of edit, the table holds exactly entries(the stored link).

def _stored_entries(ddb, short_id):
    """Every index item of a link in the table (a Scan: fine on a test table of a few items)."""
    items = [_unmarshal(item) for item in ddb.scan(TableName=TABLE_NAME)["Items"]]
    return sorted((item["pk"], item["sk"]) for item in items
                  if item["pk"].startswith(INDEX_PKS) and link_index.entry_id(item["sk"]) == short_id)


def _stored_link(ddb, short_id):
    return _unmarshal(ddb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": short_id}, "sk": {"S": "link"}})["Item"])


def test_every_edit_leaves_exactly_the_entries_of_the_stored_link(store, ddb):
    link = store.links.create("https://www.example.com/a/b", created_by="alice", title="One two", tags=["x1"],
                              expires_at="2030-01-01T00:00:00Z")
    steps = [{"title": "Three"}, {"tags": ["y2", "z3"]}, {"expires_at": "2031-01-01T00:00:00Z"},
             {"is_active": False}, {"archived": True}, {"is_active": True}, {"archived": False},
             {"expires_at": None}, {"url": "https://other.example.org/c"}, {"tags": []}, {"title": None}]
    assert _stored_entries(ddb, link["id"]) == sorted((e["pk"], e["sk"]) for e in link_index.entries(_stored_link(ddb, link["id"])))
    for change in steps:
        store.links.update(link["id"], change, by="bob")
        want = sorted((e["pk"], e["sk"]) for e in link_index.entries(_stored_link(ddb, link["id"])))
        assert _stored_entries(ddb, link["id"]) == want, change


# status=expired: its key condition is sk < now, which a cursor must respect.

def test_a_forged_expired_cursor_past_now_is_a_422_not_a_dynamodb_error(client, headers, store):
    """A position after the key condition's bound is refused by DynamoDB with a ValidationException ("The
    provided starting key does not match the range key predicate", seen on DynamoDB Local): a 500. moto
    answers an empty page instead, so the test asks for the 422 that refusing it before any Query gives."""
    cursor = _forged(parse_query({"status": "expired"}, None), {"0": "9999-12-31T00:00:00Z#abcdefg"})
    response = client.get(f"/api/links?status=expired&cursor={cursor}", headers=headers)
    assert response.status_code == 422 and response.json["field"] == "cursor"


def test_an_expired_cursor_handed_out_earlier_still_works_later(store, clock):
    clock.now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    made = [store.links.create(f"https://example.com/{n}", created_by="alice", expires_at=f"2030-01-0{n + 2}T00:00:00Z")
            for n in range(3)]
    clock.now = datetime(2030, 2, 1, tzinfo=timezone.utc)
    first, cursor = store.link_search.find(LinkQuery(status="expired"), 2)
    clock.now = datetime(2030, 3, 1, tzinfo=timezone.utc)
    rest, _ = store.link_search.find(LinkQuery(status="expired"), 2, cursor)
    assert sorted(link["id"] for link in first + rest) == sorted(link["id"] for link in made)


def test_a_link_expiring_this_very_second_is_found_by_the_expired_filter(store, clock):
    """link_rules: expires_at <= now is expired (the redirect answers 410), so it is not active either."""
    clock.now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    link = store.links.create("https://example.com/", created_by="alice", expires_at="2030-01-01T00:00:05Z")
    clock.now = datetime(2030, 1, 1, 0, 0, 5, tzinfo=timezone.utc)
    assert _ids(store.link_search.find(LinkQuery(status="expired"))) == [link["id"]]
    assert _ids(store.link_search.find(LinkQuery(status="active"))) == []


# q: hostile text.

@pytest.mark.parametrize("q", ["!!!", "%", "#", "\x00", "\u200f\u200e", "-- .. //", "a b"])
def test_a_search_with_no_word_to_search_for_is_a_422_not_every_link(client, headers, store, q):
    store.links.create("https://example.com/", created_by="alice")
    response = client.get("/api/links", query_string={"q": q}, headers=headers)
    assert response.status_code == 422 and response.json["field"] == "q"


@pytest.mark.parametrize("q", ["", " ", "  \t "])
def test_a_blank_search_is_no_search(q):
    assert parse_query({"q": q}, "alice").is_default()


@pytest.mark.parametrize("q, title", [
    ("café", unicodedata.normalize("NFD", "Café menu")),  # decomposed, as macOS file names are
    (unicodedata.normalize("NFD", "café"), "Café menu"),
    ("full", "ｆｕｌｌ width"),
    ("strasse", "Straße"),
])
def test_a_word_is_found_whatever_its_unicode_form(store, q, title):
    link = store.links.create("https://example.com/", created_by="alice", title=title)
    assert _ids(store.link_search.find(parse_query({"q": q}, None))) == [link["id"]]


@pytest.mark.parametrize("q, found", [
    ("xn--bcher-kva", True), ("bücher", True), ("BÜCH", True), ("日本", True), ("日本語", True), ("本", False),
    ("ß", False),  # "ss", which is no word's prefix here ("strasse" starts with "st")
])
def test_unicode_and_punycode_searches(client, headers, store, q, found):
    link = store.links.create("https://xn--bcher-kva.example/日本語", created_by="alice", title="Straße")
    response = client.get("/api/links", query_string={"q": q}, headers=headers)
    assert response.status_code in (200, 422)
    ids = [item["short_id"] for item in response.json.get("links", [])]
    assert ids == ([link["id"]] if found else [])


def test_a_10000_character_search_is_refused_before_any_read(client, headers):
    response = client.get("/api/links", query_string={"q": "ab " * 3334}, headers=headers)
    assert response.status_code == 422 and response.json["field"] == "q"


# Arguments given twice, cursors of another shape.

@pytest.mark.parametrize("qs", ["status=active&status=bogus", "sort=clicks&sort=x", "mine=1&mine=2", "tag=promo&tag=<b>"])
def test_a_repeated_argument_is_read_once_its_first_value(client, headers, store, qs):
    link = store.links.create("https://ab.example/", created_by="alice", tags=["promo"])
    response = client.get("/api/links?" + qs, headers=headers)
    assert response.status_code == 200 and [item["short_id"] for item in response.json["links"]] == [link["id"]]


@pytest.mark.parametrize("raw", [
    b"[" * 100_000,
    b'{"links#0":"x#abcdefg"}',  # a default-list cursor given to a search
    b'{"f":' + b"9" * 5000 + b',"p":{}}',
    b'{"f":1e999,"p":{}}',
    b'\xff\xfe',
])
def test_a_search_refuses_a_cursor_of_another_shape(client, headers, raw):
    cursor = base64.urlsafe_b64encode(raw).decode()
    response = client.get(f"/api/links?q=ab&cursor={cursor}", headers=headers)
    assert response.status_code == 422 and response.json["field"] == "cursor"


# The CSV export: newest first, whatever the list's sort.

def test_the_export_ignores_the_page_wide_click_sort(client, store, ddb, clock):
    """sort=clicks orders one page; an export of several pages sorted that way would be in no order at all
    (each 100 rows sorted on their own), and the list page's export link carries the list's sort."""
    older = store.links.create("https://example.com/old", created_by="alice", title="Report old")
    clock.advance(60)
    newer = store.links.create("https://example.com/new", created_by="alice", title="Report new")
    put_counter(ddb, older["id"], 50)
    sign_in_as(client, store, "viewer")
    response = client.get("/links/export.csv?q=report&sort=clicks")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))
    assert [row[0] for row in rows[1:]] == [newer["id"], older["id"]]


# Every part of a query is checked again on the link: the driver is only one part of it.

def test_a_word_search_with_a_tag_leaves_out_a_link_without_the_tag(client, headers, store):
    tagged = store.links.create("https://example.com/launch", created_by="alice", tags=["promo"])
    store.links.create("https://example.com/launch-2", created_by="alice", tags=["other"])
    store.links.create("https://example.com/launch-3", created_by="alice")
    response = client.get("/api/links?q=launch&tag=promo", headers=headers)
    assert [link["short_id"] for link in response.json["links"]] == [tagged["id"]]


def test_a_full_link_keeps_its_owner_and_state_entries_under_the_cap():
    """The cap cuts words, never the owner, tag or state entries the filters read."""
    item = {"pk": "abc1234", "sk": "link", "created_at": "2026-01-02T03:04:05Z", "created_by": "alice", "is_active": True,
            "url": "https://a.example/" + "/".join(f"path{n}" for n in range(60)), "title": " ".join(f"w{n}" for n in range(60)),
            "tags": [f"tag{n}" for n in range(10)], "expires_at": "2030-01-01T00:00:00Z"}
    n = link_index.shard("abc1234")
    pks = {entry["pk"] for entry in link_index.entries(item)}
    assert {f"{link_index.OWNER_PK}alice#{n}", f"{link_index.EXPIRES_PK}{n}"} <= pks
    assert len(link_index.entries(dict(item, is_active=False))) <= link_index.MAX_ENTRIES
    assert f"{link_index.DISABLED_PK}{n}" in {entry["pk"] for entry in link_index.entries(dict(item, is_active=False))}


def test_a_link_with_a_long_title_and_path_is_found_by_its_slug_tags_and_host(store):
    link = store.links.create("https://shop.example.org/" + "/".join(f"part{n}" for n in range(60)), created_by="alice",
                              slug="spring-sale", title=" ".join(f"word{n}" for n in range(60)), tags=["flash deal", "q3"])
    for q in ("spring", "sale", "spring-sale", "flash", "deal", "q3", "shop", "example.org", "word0"):
        assert _ids(store.link_search.find(parse_query({"q": q}, None))) == [link["id"]], q


def test_an_empty_page_cut_short_by_the_read_cap_does_not_say_nothing_matches(client, auth, app, store, clock):
    """status=active when most links are disabled: a page reads at most READ_FACTOR x its size entries, so
    it can come back empty with a cursor; "No links match" would be false, since the next page finds one."""
    app.config["PAGE_SIZE"] = 1
    active = store.links.create("https://example.com/kept", created_by="alice")
    clock.advance(60)  # the active link is the oldest, last in the list's order
    # 20 newer disabled links over 8 list shards: some shard holds 3 or more, so the first read (2 a shard)
    # leaves one unread, and the budget (10 entries) stops the page before the active link, whatever the ids.
    for n in range(20):
        store.links.set_active(store.links.create(f"https://example.com/{n}", created_by="alice")["id"], False)
    auth.login()
    page = client.get("/?status=active").get_data(as_text=True)
    assert active["id"] not in page and "No links match this search." not in page
    assert "No match among the links searched so far." in page and 'rel="next"' in page


def _slug_per_shard(shards, shard_of, prefix):
    """One slug per shard number, found by trying prefix-0, prefix-1, ..."""
    found, n = {}, 0
    while len(found) < shards:
        slug = f"{prefix}-{n}"
        found.setdefault(shard_of(slug), slug)
        n += 1
    return [found[shard] for shard in range(shards)]


@pytest.mark.parametrize("status", ["archived", "active", "disabled"])
def test_a_status_filter_reads_every_shard(store, status):
    """One link on each list shard (by_list keys) and index shard: a driver that skipped one would miss its link."""
    from webapp.store.links import LIST_SHARDS, list_shard

    slugs = _slug_per_shard(LIST_SHARDS, lambda slug: int(list_shard(slug).rpartition("#")[2]), "each")
    slugs += [slug for slug in _slug_per_shard(link_index.SHARDS, link_index.shard, "every") if slug not in slugs]
    made = [store.links.create(f"https://example.com/{slug}", created_by="alice", slug=slug)["id"] for slug in slugs]
    change = {"archived": {"archived": True}, "disabled": {"is_active": False}, "active": {}}[status]
    for short_id in made:
        if change:
            store.links.update(short_id, change, by="alice")
    found, cursor = [], None
    while True:
        page, cursor = store.link_search.find(LinkQuery(status=status), 100, cursor)
        found += [link["id"] for link in page]
        if cursor is None:
            break
    assert sorted(found) == sorted(made)


def test_a_link_with_the_exact_word_comes_before_longer_words_even_when_it_has_both(store, clock):
    """README: the exact word first, then longer words alphabetically. A link with "launch" and "launchpad"
    is listed once, at its exact word, ahead of a newer link with only "launchpad"."""
    both = store.links.create("https://example.com/a", created_by="alice", title="Launch launchpad")
    clock.advance(60)
    longer = store.links.create("https://example.com/b", created_by="alice", title="Launchpad")
    assert _ids(store.link_search.find(parse_query({"q": "launch"}, None))) == [both["id"], longer["id"]]


# On DynamoDB Local, where a Query's ExclusiveStartKey must fit its key condition (moto does not check).

@pytest.mark.integration
@pytest.mark.skipif(NO_JAVA, reason="DynamoDB Local needs Java 11+")
def test_every_drivers_cursor_pages_on_dynamodb_local_and_a_forged_one_is_refused(dynamodb_local, monkeypatch, clock):
    from webapp.exceptions import InvalidCursor

    store = app_on_fresh_table(dynamodb_local, monkeypatch, make_app).extensions["store"]
    clock.now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    made = []
    for n in range(5):
        link = store.links.create(f"https://example.com/report/{n}", created_by="alice", title=f"Report {n}",
                                  tags=["weekly"], expires_at=f"2030-01-0{n + 2}T00:00:00Z")
        made.append(link["id"])
        clock.advance(1)
    store.links.update(made[0], {"archived": True}, by="alice")
    clock.now = datetime(2030, 2, 1, tzinfo=timezone.utc)
    queries = {LinkQuery(status="expired"): made[1:], LinkQuery(words=("report",), status="archived"): made[:1],
               LinkQuery(words=("rep",)): made[1:], LinkQuery(tag="weekly"): made[1:], LinkQuery(status="archived"): made[:1],
               LinkQuery(owner="alice"): made[1:]}
    for query, expected in queries.items():
        found, cursor = [], None
        for _ in range(len(made) + 1):
            page, cursor = store.link_search.find(query, 1, cursor)
            found += [link["id"] for link in page]
            if cursor is None:
                break
        assert sorted(found) == sorted(expected), query
    with pytest.raises(InvalidCursor):
        store.link_search.find(LinkQuery(status="expired"), 1, _forged(LinkQuery(status="expired"), {"0": "2030-03-01T00:00:00Z#abcdefg"}))
