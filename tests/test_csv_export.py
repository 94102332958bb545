"""CSV export of links: columns, order, paging, formula escaping, and who may download it."""
import csv
import io

import pytest

from tests.conftest import SHORT_BASE_URL, put_counter, sign_in_as, token_for
from webapp import csv_export, link_rules

HEADER = ["id", "short_url", "url", "title", "created_at", "created_by", "expires_at",
          "is_active", "click_count", "bot_count", "last_clicked_at"]


def _rows(response):
    """The response body parsed back with csv.reader."""
    return list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))


@pytest.fixture
def viewer(client, store):
    sign_in_as(client, store, "viewer")
    return client


def test_the_export_has_a_header_and_one_row_per_link(viewer, store, ddb):
    store.links.create("https://example.com/a", created_by="alice", slug="first", title="First")
    put_counter(ddb, "first", 12, bots=3, last_clicked_at="2026-01-02T03:04:05Z")
    rows = _rows(viewer.get("/links/export.csv"))
    assert rows[0] == HEADER
    record = dict(zip(HEADER, rows[1]))
    assert len(rows) == 2
    assert record["id"] == "first"
    assert record["short_url"] == link_rules.short_url(SHORT_BASE_URL, "first") == "https://sho.rt/first"
    assert record["url"] == "https://example.com/a"
    assert record["title"] == "First"
    assert record["created_by"] == "alice"
    assert record["is_active"] == "true"
    assert (record["click_count"], record["bot_count"]) == ("12", "3")
    assert record["last_clicked_at"] == "2026-01-02T03:04:05Z"


def test_no_links_gives_the_header_only(viewer):
    assert _rows(viewer.get("/links/export.csv")) == [HEADER]


def test_links_come_newest_first(viewer, store, clock):
    for slug in ("oldest", "middle", "newest"):
        store.links.create(f"https://example.com/{slug}", created_by="alice", slug=slug)
        clock.advance(60)
    rows = _rows(viewer.get("/links/export.csv"))
    assert [row[0] for row in rows[1:]] == ["newest", "middle", "oldest"]


def test_the_export_pages_through_more_links_than_one_page(viewer, store):
    ids = {store.links.create(f"https://example.com/{n}", created_by="alice")["id"] for n in range(250)}
    rows = _rows(viewer.get("/links/export.csv"))
    exported = [row[0] for row in rows[1:]]
    assert len(exported) == 250 and set(exported) == ids  # every link once, across three pages
    created = [row[4] for row in rows[1:]]
    assert created == sorted(created, reverse=True)


@pytest.mark.parametrize("title, cell", [
    ('=HYPERLINK("https://evil.example","click")', '\'=HYPERLINK("https://evil.example","click")'),
    ("+1", "'+1"),
    ("-2", "'-2"),
    ("@x", "'@x"),
    ("\tx", "'\tx"),
    ("\rx", "'\rx"),
])
def test_csv_formula_injection_is_escaped(viewer, store, title, cell):
    store.links.create("https://example.com/", created_by="alice", slug="formula", title=title)
    record = dict(zip(HEADER, _rows(viewer.get("/links/export.csv"))[1]))
    assert record["title"] == cell


@pytest.mark.parametrize("value, cell", [
    ("https://example.com/a=b+c-d@e", "https://example.com/a=b+c-d@e"),  # the signs inside are harmless
    ("plain", "plain"),
    ("", ""),
    (None, ""),
    (True, "true"),
    (0, "0"),
    ("-", "'-"),
])
def test_escape_cell_changes_only_cells_that_start_a_formula(value, cell):
    assert csv_export.escape_cell(value) == cell


@pytest.mark.parametrize("title", [
    '<script>alert("x")</script>',
    "one, two, three",
    'She said "hi"',
    "line one\nline two",
    "caf\u00e9 \u2014 \u65e5\u672c",
])
def test_awkward_titles_round_trip_through_csv_reader(viewer, store, title):
    store.links.create("https://example.com/", created_by="alice", slug="awkward", title=title)
    rows = _rows(viewer.get("/links/export.csv"))
    assert len(rows) == 2
    assert dict(zip(HEADER, rows[1]))["title"] == title


def test_the_export_is_a_csv_attachment_not_cached(viewer):
    response = viewer.get("/links/export.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="links.csv"'
    assert response.headers["Cache-Control"] == "no-store"


def test_the_list_page_links_to_the_export(viewer):
    assert 'href="/links/export.csv"' in viewer.get("/").get_data(as_text=True)


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/links/export.csv", headers={"Accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login")


def test_the_api_export_needs_a_token(client):
    response = client.get("/api/links/export")
    assert response.status_code == 401
    assert "error" in response.get_json()


def test_a_read_token_exports_links(client, store):
    store.links.create("https://example.com/", created_by="alice", slug="viaapi")
    token = token_for(store, "viewer", scope="read")
    response = client.get("/api/links/export", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="links.csv"'
    assert [row[0] for row in _rows(response)] == ["id", "viaapi"]


def test_export_is_reserved_so_no_link_can_take_its_path(client, store):
    with pytest.raises(link_rules.InvalidSlug):
        link_rules.optional_slug("export")
    with pytest.raises(link_rules.InvalidSlug):
        link_rules.optional_slug("Export")
    token = token_for(store, "editor")
    response = client.post("/api/links", json={"url": "https://example.com/", "slug": "export"},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422
    assert response.get_json()["field"] == "slug"
