"""Search and filters through the JSON API, the list page and both CSV exports: the same arguments
(q, tag, status, mine, sort), the same answers, and bad values refused with the field named."""
import csv
import io
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import ADMIN_USERNAME, put_counter, sign_in_as, token_for


@pytest.fixture
def headers(api_token):
    return {"Authorization": f"Bearer {api_token}"}


@pytest.fixture
def links(store):
    """A few links of two owners, in every state: {name: id}."""
    made = {
        "launch": store.links.create("https://www.example.com/spring/launch", created_by=ADMIN_USERNAME,
                                     title="Spring launch", tags=["promo"]),
        "docs": store.links.create("https://docs.example.org/guide", created_by="bob", title="User guide"),
        "old": store.links.create("https://example.net/old", created_by="bob", title="Old promo", tags=["promo"]),
        "gone": store.links.create("https://example.net/gone", created_by=ADMIN_USERNAME, title="Archived launch"),
    }
    store.links.update(made["old"]["id"], {"is_active": False}, by="bob")
    store.links.update(made["gone"]["id"], {"archived": True}, by=ADMIN_USERNAME)
    return {name: link["id"] for name, link in made.items()}


def _ids(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return sorted(link["short_id"] for link in response.json["links"])


@pytest.mark.parametrize("query, expected", [
    ("q=launch", ["launch"]),
    ("q=LAUN", ["launch"]),
    ("q=example.org", ["docs"]),
    ("q=spring+launch", ["launch"]),
    ("q=guide&mine=1", []),
    ("tag=promo", ["launch", "old"]),
    ("tag=Promo&status=active", ["launch"]),
    ("status=disabled", ["old"]),
    ("status=archived", ["gone"]),
    ("status=active", ["docs", "launch"]),
    ("mine=1", ["launch"]),
    ("q=launch&status=archived", ["gone"]),
    ("", ["docs", "launch", "old"]),
])
def test_the_api_list_searches_and_filters(client, headers, links, query, expected):
    assert _ids(client.get(f"/api/links?{query}", headers=headers)) == sorted(links[name] for name in expected)


@pytest.mark.parametrize("query, field", [
    ("q=" + "x" * 201, "q"),
    ("q=a", "q"),
    ("tag=%3Cscript%3E", "tag"),
    ("status=deleted", "status"),
    ("mine=true", "mine"),
    ("sort=oldest", "sort"),
    ("limit=0", "limit"),
    ("q=launch&cursor=abc", "cursor"),
])
def test_bad_values_are_422_naming_the_field(client, headers, links, query, field):
    response = client.get(f"/api/links?{query}", headers=headers)
    assert response.status_code == 422 and response.json["field"] == field


def test_a_search_pages_with_its_cursor(client, headers, store):
    ids = {store.links.create(f"https://example.com/report/{n}", created_by="alice", title=f"Report {n}")["id"]
           for n in range(5)}
    seen, cursor = [], None
    for _ in range(5):
        query = "q=report&limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(f"/api/links?{query}", headers=headers).json
        seen += [link["short_id"] for link in body["links"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5


def test_sort_by_clicks_orders_the_page(client, headers, store, ddb):
    few = store.links.create("https://example.com/few", created_by="alice", title="Clicked few")
    many = store.links.create("https://example.com/many", created_by="alice", title="Clicked many")
    put_counter(ddb, few["id"], 1)
    put_counter(ddb, many["id"], 9)
    body = client.get("/api/links?q=clicked&sort=clicks", headers=headers).json
    assert [link["short_id"] for link in body["links"]] == [many["id"], few["id"]]


def test_a_viewer_token_may_search(client, store, links):
    token = token_for(store, "viewer")
    response = client.get("/api/links?tag=promo", headers={"Authorization": f"Bearer {token}"})
    assert _ids(response) == sorted([links["launch"], links["old"]])


# CSV export: the same filters.

def _csv_ids(response):
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))
    return sorted(row[0] for row in rows[1:])


def test_the_api_export_takes_the_same_filters(client, headers, links):
    assert _csv_ids(client.get("/api/links/export?tag=promo&status=disabled", headers=headers)) == [links["old"]]
    assert _csv_ids(client.get("/api/links/export?q=launch", headers=headers)) == [links["launch"]]


def test_the_api_export_refuses_a_bad_filter_naming_it(client, headers):
    response = client.get("/api/links/export?status=nope", headers=headers)
    assert response.status_code == 422 and response.json["field"] == "status"


def test_the_page_export_takes_the_same_filters(client, store, links):
    sign_in_as(client, store, "viewer")
    assert _csv_ids(client.get("/links/export.csv?status=archived")) == [links["gone"]]


# The list page: a GET form, so the filters are in the URL, kept by the pager and the export link.

def test_the_list_page_searches_and_keeps_the_filters_in_its_form(client, auth, links):
    auth.login()
    page = client.get("/?q=spring&tag=promo&mine=1").get_data(as_text=True)
    assert links["launch"] in page and links["docs"] not in page and links["old"] not in page
    assert 'name="q" type="search" value="spring"' in page
    assert 'name="tag" type="text" value="promo"' in page
    assert 'name="mine" type="checkbox" value="1" checked' in page


def test_the_export_link_carries_the_current_filters(client, auth, links):
    auth.login()
    page = client.get("/?q=launch&status=archived").get_data(as_text=True)
    start = page.index('href="', page.index("Export CSV") - 200)
    href = page[start + 6:page.index('"', start + 6)].replace("&amp;", "&")
    assert urlsplit(href).path == "/links/export.csv"
    assert parse_qs(urlsplit(href).query) == {"q": ["launch"], "status": ["archived"]}


def test_the_next_page_link_keeps_the_filters(client, auth, app, store):
    app.config["PAGE_SIZE"] = 2
    for n in range(3):
        store.links.create(f"https://example.com/{n}", created_by="alice", title=f"Weekly {n}")
    auth.login()
    page = client.get("/?q=weekly").get_data(as_text=True)
    start = page.index('rel="next"')
    href = page[page.rindex('href="', 0, start) + 6:page.index('"', page.rindex('href="', 0, start) + 6)]
    assert parse_qs(urlsplit(href.replace("&amp;", "&")).query)["q"] == ["weekly"]


def test_a_bad_filter_on_the_page_is_shown_next_to_its_field(client, auth, links):
    auth.login()
    response = client.get("/?status=deleted")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="links-status-error"' in page and "status must be one of" in page
    assert links["launch"] not in page


def test_no_match_says_so(client, auth, links):
    auth.login()
    assert "No links match this search." in client.get("/?q=nothingmatches").get_data(as_text=True)
