"""flask reindex-links: links stored before the search entries existed become findable, and a second run changes nothing."""
from datetime import date, timedelta

from tests.conftest import ADMIN_USERNAME
from webapp.store import link_index
from webapp.store.link_search import LinkQuery


def _without_entries(store, ddb, *links):
    """Store links as an older version did: the link item alone, no index entry."""
    for slug, title, tags, archived in links:
        link = store.links.create(f"https://example.com/{slug}", slug=slug, title=title, tags=tags, created_by=ADMIN_USERNAME)
        item = store.links._read_item(link["id"])
        for entry in link_index.entries(item):
            ddb.delete_item(TableName=store.table.name, Key={"pk": {"S": entry["pk"]}, "sk": {"S": entry["sk"]}})
        if archived:
            store.links.update(link["id"], {"archived": True}, by=ADMIN_USERNAME)


def _found(store, **query):
    return sorted(link["id"] for link in store.link_search.find(LinkQuery(**query), 50)[0])


def _entry_count(store, ddb):
    # Every entry of every link, read back key by key: what the index holds for these links.
    keys = {(e["pk"], e["sk"]) for slug in ("oldone", "oldtwo", "oldarch")
            for e in link_index.entries(store.links._read_item(slug))}
    return sum(1 for pk, sk in keys if "Item" in ddb.get_item(TableName=store.table.name, Key={"pk": {"S": pk}, "sk": {"S": sk}}))


def test_old_links_are_found_after_a_reindex_and_a_second_run_changes_nothing(app, store, ddb):
    _without_entries(store, ddb, ("oldone", "Quarterly report", ["finance"], False),
                     ("oldtwo", "Quarterly review", [], False), ("oldarch", "Quarterly archive", ["finance"], True))
    # The archive above was an edit, which wrote the archived link's entries: take them away again.
    for entry in link_index.entries(store.links._read_item("oldarch")):
        ddb.delete_item(TableName=store.table.name, Key={"pk": {"S": entry["pk"]}, "sk": {"S": entry["sk"]}})
    assert _found(store, words=("quarterly",)) == [] and _found(store, tag="finance") == []

    result = app.test_cli_runner().invoke(args=["reindex-links"])
    assert result.exit_code == 0, result.output
    assert "Indexed 3 links" in result.output
    assert _found(store, words=("quarterly",)) == ["oldone", "oldtwo"]
    assert _found(store, tag="finance") == ["oldone"]
    assert _found(store, words=("quarterly",), status="archived") == ["oldarch"]
    entries = _entry_count(store, ddb)
    assert entries > 0

    again = app.test_cli_runner().invoke(args=["reindex-links"])
    assert again.exit_code == 0 and "Indexed 3 links" in again.output
    assert _entry_count(store, ddb) == entries
    assert _found(store, words=("quarterly",)) == ["oldone", "oldtwo"]
    today = date.today()
    records, _ = store.audit.list(first_day=today - timedelta(days=1), last_day=today + timedelta(days=1),
                                  action="links.reindex", limit=10)
    assert len(records) == 2 and records[0]["via"] == "cli"


def test_a_reindex_writes_every_entry_the_link_should_have(app, store, ddb):
    _without_entries(store, ddb, ("oldone", "Plain", [], False))
    assert app.test_cli_runner().invoke(args=["reindex-links"]).exit_code == 0
    item = store.links._read_item("oldone")
    for entry in link_index.entries(item):
        assert "Item" in ddb.get_item(TableName=store.table.name, Key={"pk": {"S": entry["pk"]}, "sk": {"S": entry["sk"]}})


def test_a_create_whose_entries_fail_keeps_the_link_and_a_reindex_makes_it_findable(app, store):
    import pytest

    from webapp.exceptions import StoreUnavailable

    def throttled(items):
        raise StoreUnavailable("ProvisionedThroughputExceededException")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store.table, "batch_put", throttled)
        link = store.links.create("https://example.com/kept", slug="kept-link", title="Throttled entries",
                                  created_by=ADMIN_USERNAME)
    assert link["id"] == "kept-link"
    assert store.links.get("kept-link")["title"] == "Throttled entries"
    assert _found(store, words=("throttled",)) == []
    assert app.test_cli_runner().invoke(args=["reindex-links"]).exit_code == 0
    assert _found(store, words=("throttled",)) == ["kept-link"]
