"""Search and filters (webapp/store/link_search.py over webapp/store/link_index.py): what they find, and
that each costs DynamoDB requests in proportion to its results, never to the number of links."""
import threading
from collections import Counter

import boto3
import pytest
from moto import mock_aws

from bench import search as bench_search
from bench.context import put_all
from local_stack.template import create_table
from tests.conftest import REGION, TABLE_NAME
from webapp.exceptions import InvalidCursor
from webapp.store import Store, link_index
from webapp.store.link_search import READ_FACTOR, InvalidQuery, LinkQuery, parse_query
from webapp.store.table import _marshal

SIZES = (500, 2000)


class RequestCounter:
    """Counts the DynamoDB requests a client makes, by operation, and the items its reads return."""

    def __init__(self, client):
        self.ops, self.items = Counter(), 0
        self._lock = threading.Lock()  # a search queries its shards from several threads
        client.meta.events.register("after-call.dynamodb", self._count)

    def _count(self, model, parsed, **_):
        items = parsed.get("Count", 0) + sum(len(v) for v in (parsed.get("Responses") or {}).values())
        with self._lock:
            self.ops[model.name] += 1
            self.items += items

    def take(self):
        """(requests, items read) since the last take."""
        with self._lock:
            taken = (sum(self.ops.values()), self.items)
            self.ops, self.items = Counter(), 0
        return taken


@pytest.fixture(scope="class")
def populated():
    """Two moto tables of the benchmark's links (most share www.example.com; 3 in each group match), 500 and
    2,000 links, each link with its index entries: {size: (store, counter)}."""
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": REGION}.items():
            patch.setenv(name, value)
        stores = {}
        for size in SIZES:
            client = boto3.client("dynamodb", region_name=REGION)
            table = f"search-{size}"
            create_table(client, table)
            put_all(client, table, [_marshal(item) for item in bench_search.population(0, size, size)])
            stores[size] = (Store(table, client=client, regions=[REGION]), RequestCounter(client))
        yield stores


def _find(store, counter, args, limit=20):
    counter.take()
    page, cursor = store.link_search.find(parse_query(args, bench_search.OWNER), limit)
    return [link["id"] for link in page], cursor, counter.take()


class TestAtTwoSizes:
    """The benchmark's links at 500 and 2,000 (the class scopes the moto tables, so no other test sees them)."""

    @pytest.mark.parametrize("name, args, group", [q for q in bench_search.QUERIES if q[2] in bench_search.GROUPS])
    def test_a_search_or_filter_with_three_matches_costs_the_same_few_requests_at_any_size(self, populated, name, args, group):
        costs = []
        for size in SIZES:
            store, counter = populated[size]
            ids, cursor, cost = _find(store, counter, args)
            assert ids == bench_search.expected(size)[group] and cursor is None, name
            costs.append(cost)
        # One Query per shard of the driver, one BatchGetItem of the candidates, one of their counters.
        requests, items = costs[0]
        assert costs[0] == costs[1], f"{name}: {costs} at {SIZES} links"
        assert requests <= link_index.SHARDS + 2 and items <= 2 * bench_search.MATCHES


    def test_a_first_page_of_a_common_word_is_bounded_at_any_size(self, populated):
        costs = []
        for size in SIZES:
            store, counter = populated[size]
            ids, cursor, cost = _find(store, counter, {"q": "example"})
            assert len(ids) == 20 and ids[0] == bench_search.link_id(size - 1) and cursor
            costs.append(cost)
        assert costs[0] == costs[1]
        assert costs[0][1] <= READ_FACTOR * 20 + 20  # index items within the cap, plus the page's link items


    def test_active_reads_the_default_list_and_stays_bounded(self, populated):
        costs = []
        for size in SIZES:
            store, counter = populated[size]
            ids, _, cost = _find(store, counter, {"status": "active"})
            assert len(ids) == 20
            costs.append(cost)
        assert costs[0] == costs[1]


    def test_pages_of_a_search_cover_every_match_once_newest_first(self, populated):
        store, _ = populated[500]
        query = parse_query({"q": "blog"}, None)
        seen, cursor, pages = [], None, 0
        while True:
            page, cursor = store.link_search.find(query, 50, cursor)
            seen += [link["id"] for link in page]
            pages += 1
            if cursor is None:
                break
            assert pages < 100
        unarchived = 500 - bench_search.MATCHES
        assert len(seen) == len(set(seen)) == unarchived
        assert seen == sorted(seen, reverse=True)  # ids grow with created_at in the benchmark's links


    def test_a_cap_on_index_items_read_ends_a_page_early_with_a_cursor(self, populated):
        """Every blog link is a candidate for "blog" but none has a second word "zz": each request reads at most
        READ_FACTOR x limit entries, then hands back a cursor, so no request reads the whole index."""
        store, counter = populated[500]
        query = parse_query({"q": "blog zz"}, None)
        counter.take()
        page, cursor = store.link_search.find(query, 5)
        requests, items = counter.take()
        assert page == [] and cursor
        assert items <= READ_FACTOR * 5 + 2 * link_index.SHARDS + 5 * 2


    def test_a_cursor_of_another_query_is_refused(self, populated):
        store, _ = populated[500]
        _, cursor = store.link_search.find(parse_query({"q": "example"}, None), 5)
        with pytest.raises(InvalidCursor):
            store.link_search.find(parse_query({"q": "blog"}, None), 5, cursor)
        with pytest.raises(InvalidCursor):
            store.link_search.find(parse_query({"q": "blog"}, None), 5, "bm90IGpzb24")

    @pytest.mark.parametrize("args, position", [({"status": "active"}, "2026-01-01T00:00:00Z#"),
                                                ({"q": "blog"}, "other#x#abc1234"),
                                                ({"tag": "blog"}, "no id here")])
    def test_a_forged_cursor_with_a_bad_position_is_refused_before_any_query(self, populated, args, position):
        import base64
        import json

        store, counter = populated[500]
        query = parse_query(args, None)
        raw = json.dumps({"f": query.fingerprint(), "p": {"0": position}}).encode()
        counter.take()
        with pytest.raises(InvalidCursor):
            store.link_search.find(query, 5, base64.urlsafe_b64encode(raw).decode().rstrip("="))
        assert counter.take() == (0, 0)


def test_a_prefix_matching_several_words_of_a_link_lists_it_once(store):
    link = store.links.create("https://example.com/account/acme", created_by="alice", title="Acme accounts")
    other = store.links.create("https://example.com/", created_by="alice", title="Accolade")
    seen, cursor = [], None
    while True:
        page, cursor = store.link_search.find(LinkQuery(words=("ac",)), 1, cursor)
        seen += [found["id"] for found in page]
        if cursor is None:
            break
    assert sorted(seen) == sorted([link["id"], other["id"]])


# Entries: what a link writes, and the bound that keeps an edit within one transaction.

def _item(**fields):
    item = {"pk": "abc1234", "sk": "link", "created_at": "2026-01-02T03:04:05Z", "created_by": "alice",
            "url": "https://www.Example.com/Blog/launch-day?utm_source=x", "is_active": True}
    item.update(fields)
    return item


def test_entries_index_slug_tags_host_title_and_path_words():
    words = link_index.indexed_words(_item(title="Spring launch", tags=["big sale"]))
    assert words == ["abc1234", "big", "sale", "www", "example", "com", "spring", "launch", "blog", "day", "utm", "source"]


def test_a_punycode_host_is_also_indexed_in_unicode():
    assert "bücher" in link_index.indexed_words(_item(url="https://xn--bcher-kva.example/"))


def test_entries_never_exceed_the_bound_so_an_edit_fits_one_transaction():
    item = _item(title=" ".join(f"word{n}" for n in range(60)), tags=[f"tag{n}" for n in range(10)],
                 url="https://a.example/" + "/".join(f"path{n}" for n in range(60)), expires_at="2030-01-01T00:00:00Z")
    entries = link_index.entries(item)
    assert len(entries) <= link_index.MAX_ENTRIES
    assert 1 + 2 * link_index.MAX_ENTRIES <= 100  # the link, its new entries and its old ones
    assert {f"tag#tag{n}#{link_index.shard('abc1234')}" for n in range(10)} <= {e["pk"] for e in entries}


@pytest.mark.parametrize("fields, kind", [
    ({"is_active": False}, link_index.DISABLED_PK),
    ({"expires_at": "2030-01-01T00:00:00Z"}, link_index.EXPIRES_PK),
])
def test_state_entries_follow_the_link(fields, kind):
    assert any(e["pk"].startswith(kind) for e in link_index.entries(_item(**fields)))
    archived = link_index.entries(_item(archived=True, **fields))
    assert not any(e["pk"].startswith((link_index.DISABLED_PK, link_index.EXPIRES_PK)) for e in archived)


def test_a_common_word_spreads_over_every_shard():
    model = bench_search.busiest_key(count=2000, rate=1000)
    assert model["top_wcu_per_second"] * link_index.SHARDS < 2 * model["unsharded_wcu_per_second"]
    assert model["top_wcu_per_second"] <= 500


# Edits keep the index true: the store writes and deletes entries with the link.

def test_an_edited_title_is_found_by_its_new_words_only(store):
    link = store.links.create("https://example.com/", created_by="alice", title="Old name")
    store.links.update(link["id"], {"title": "Fresh name"}, by="alice")
    assert [found["id"] for found in store.link_search.find(LinkQuery(words=("fresh",)))[0]] == [link["id"]]
    assert store.link_search.find(LinkQuery(words=("old",)))[0] == []


def test_disabling_archiving_and_tagging_move_a_link_between_filters(store):
    link = store.links.create("https://example.com/", created_by="alice")
    store.links.update(link["id"], {"is_active": False, "tags": ["promo"]}, by="alice")
    assert [found["id"] for found in store.link_search.find(LinkQuery(status="disabled"))[0]] == [link["id"]]
    assert [found["id"] for found in store.link_search.find(LinkQuery(tag="promo"))[0]] == [link["id"]]
    store.links.update(link["id"], {"archived": True}, by="alice")
    assert store.link_search.find(LinkQuery(status="disabled"))[0] == []
    assert store.link_search.find(LinkQuery(tag="promo"))[0] == []  # archived links only show with status=archived
    assert [found["id"] for found in store.link_search.find(LinkQuery(tag="promo", status="archived"))[0]] == [link["id"]]


def test_an_expired_link_is_found_by_the_expired_filter(store, clock):
    link = store.links.create("https://example.com/", created_by="alice", expires_at="2030-01-01T00:00:00Z")
    assert store.link_search.find(LinkQuery(status="expired"))[0] == []
    from datetime import datetime, timezone

    clock.now = datetime(2030, 1, 2, tzinfo=timezone.utc)
    assert [found["id"] for found in store.link_search.find(LinkQuery(status="expired"))[0]] == [link["id"]]


def test_a_stale_entry_pointing_at_a_missing_link_is_ignored(store, ddb):
    entry = {"pk": link_index.word_pk("ghost", 0), "sk": "ghost#7976-88-85T77:86:79Z#gone123"}
    ddb.put_item(TableName=TABLE_NAME, Item=_marshal(entry))
    assert store.link_search.find(LinkQuery(words=("ghost",)))[0] == []


def test_sort_by_clicks_orders_the_page(store, ddb):
    from tests.conftest import put_counter

    quiet = store.links.create("https://example.com/q", created_by="alice", title="Report quiet")
    busy = store.links.create("https://example.com/b", created_by="alice", title="Report busy")
    put_counter(ddb, busy["id"], 5)
    put_counter(ddb, quiet["id"], 50)
    page, _ = store.link_search.find(LinkQuery(words=("report",), sort="clicks"))
    assert [link["id"] for link in page] == [quiet["id"], busy["id"]]


# Parsing: every bad value names its field.

@pytest.mark.parametrize("args, field", [
    ({"q": "x" * 201}, "q"),
    ({"q": "a b c"}, "q"),
    ({"q": " ".join(f"w{n}" for n in range(9))}, "q"),
    ({"tag": "<b>"}, "tag"),
    ({"tag": "t" * 33}, "tag"),
    ({"status": "deleted"}, "status"),
    ({"mine": "yes"}, "mine"),
    ({"sort": "oldest"}, "sort"),
])
def test_bad_values_name_their_field(args, field):
    with pytest.raises(InvalidQuery) as caught:
        parse_query(args, "alice")
    assert caught.value.field == field


def test_a_plain_query_is_the_default_list():
    assert parse_query({}, "alice").is_default()
    assert parse_query({"q": "Launch-Day", "mine": "1"}, "alice") == LinkQuery(words=("launch", "day"), owner="alice")

