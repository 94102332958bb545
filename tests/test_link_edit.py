"""Editing links: the store's versioned update, the edit page, archive and the confirmation steps."""
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from threading import Barrier, Lock

import pytest

from tests.conftest import ADMIN_USERNAME, make_app, sign_in_as
from tests.support.dynamodb_local import NO_JAVA, app_on_fresh_table
from webapp import clock
from webapp.exceptions import VersionConflict

XSS = "<img src=x onerror=alert(1)>"


def _create(store, slug="edited", **kwargs):
    kwargs.setdefault("created_by", ADMIN_USERNAME)
    return store.links.create(kwargs.pop("url", "https://example.com/start"), slug=slug, **kwargs)


def _form(link, **overrides):
    """The edit form as the page sends it, unchanged unless overridden."""
    data = {"url": link["url"], "title": link["title"] or "", "tags": ", ".join(link["tags"]),
            "note": link["note"] or "", "version": str(link["version"]), "expiry": "keep",
            "expiry_date": "", "expiry_days": ""}
    if link["forward_query"]:
        data["forward_query"] = "y"
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def _trail(store, short_id):
    records, _ = store.audit.list(first_day=date.today() - timedelta(days=1), last_day=date.today() + timedelta(days=1),
                                  target=short_id, limit=100)
    return records


@pytest.fixture
def signed_in(client, auth):
    assert auth.login().status_code == 303
    return client


# The store


def test_update_changes_only_the_given_fields_and_counts_versions(store):
    link = _create(store, title="Old", tags=["a"], note="kept")
    assert link["version"] == 1
    before, after = store.links.update("edited", {"title": "New", "tags": ["b", "c"]}, by="bob")
    assert before["title"] == "Old" and before["version"] == 1
    assert (after["title"], after["tags"], after["note"], after["version"]) == ("New", ["b", "c"], "kept", 2)
    assert after["updated_by"] == "bob" and after["updated_at"]
    assert store.links.get("edited")["version"] == 2


def test_an_edit_answers_with_the_links_click_counts(store, ddb):
    _create(store)
    # The aggregator's counter item, as aggregator/layout.py keys it (tests/test_layout_contract.py pins it).
    region = store.links.click_regions()[0]
    ddb.put_item(TableName=store.table.name, Item={"pk": {"S": "edited"}, "sk": {"S": f"clicks#{region}"},
                                                   "clicks": {"N": "5"}, "bots": {"N": "2"}})
    before, after = store.links.update("edited", {"title": "Counted"}, by="bob")
    assert (before["click_count"], after["click_count"], after["bot_count"]) == (5, 5, 2)
    unchanged, same = store.links.update("edited", {"title": "Counted"}, by="bob")
    assert (unchanged["click_count"], same["click_count"]) == (5, 5)


def test_update_with_a_stale_version_writes_nothing(store):
    _create(store)
    store.links.update("edited", {"title": "First"}, by="bob")
    with pytest.raises(VersionConflict) as raised:
        store.links.update("edited", {"title": "Second"}, by="carol", expected_version=1)
    assert raised.value.current["title"] == "First"
    link = store.links.get("edited")
    assert (link["title"], link["version"]) == ("First", 2)


def test_clearing_fields_removes_them(store):
    _create(store, title="T", tags=["x"], note="n", expires_at="2099-01-01T00:00:00Z")
    _, after = store.links.update("edited", {"title": None, "tags": [], "note": None, "expires_at": None}, by="bob")
    assert (after["title"], after["tags"], after["note"], after["expires_at"]) == (None, [], None, None)


def test_archived_links_leave_the_default_list(store):
    _create(store, slug="shown")
    _create(store, slug="hidden")
    store.links.update("hidden", {"archived": True}, by="bob")
    assert [link["id"] for link in store.links.list(10)[0]] == ["shown"]
    store.links.update("hidden", {"archived": False}, by="bob")
    assert sorted(link["id"] for link in store.links.list(10)[0]) == ["hidden", "shown"]


# Parallel edits: no lost update, every edit audited.

EDITORS = 8


def _parallel_edits(app, short_id):
    """EDITORS threads edit one link at once, each setting its own title and tags."""
    from webapp import link_edits

    barrier = Barrier(EDITORS)

    def edit(n):
        with app.app_context():
            barrier.wait(timeout=30)
            return link_edits.edit(short_id, {"title": f"Title {n}", "tags": [f"tag{n}"]}, by=f"editor{n}")[0]

    with ThreadPoolExecutor(EDITORS) as pool:
        return list(pool.map(edit, range(EDITORS)))


def _assert_no_lost_update(store, short_id, results):
    link = store.links.get(short_id)
    assert link["version"] == 1 + EDITORS
    assert sorted(result["version"] for result in results) == list(range(2, 2 + EDITORS))
    edits = [record for record in _trail(store, short_id) if record["action"] == "link.edit"]
    assert sorted(record["actor"] for record in edits) == sorted(f"editor{n}" for n in range(EDITORS))
    # Each edit started from the one before it: the old titles and the new ones form one chain.
    chain = {record["details"]["changes"]["title"]["old"]: record["details"]["changes"]["title"]["new"] for record in edits}
    title, seen = None, 0
    while title in chain:
        title, seen = chain[title], seen + 1
    assert seen == EDITORS and title == link["title"]


def test_parallel_edits_of_one_link_lose_nothing(app, store, monkeypatch):
    _create(store, slug="contended")
    # moto is not thread-safe: a failed transaction restores a copy of the whole table taken when it began,
    # wiping writes that landed meanwhile (and the copy can fail mid-write). One request at a time, as
    # DynamoDB serialises them per item; the race between an edit's read and its write stays.
    lock, call = Lock(), store.table.call

    def one_at_a_time(operation, **kwargs):
        with lock:
            return call(operation, **kwargs)

    monkeypatch.setattr(store.table, "call", one_at_a_time)
    _assert_no_lost_update(store, "contended", _parallel_edits(app, "contended"))


@pytest.mark.integration
@pytest.mark.skipif(NO_JAVA, reason="DynamoDB Local needs Java 11+")
def test_parallel_edits_of_one_link_lose_nothing_on_dynamodb_local(dynamodb_local, monkeypatch, record_figure):
    app = app_on_fresh_table(dynamodb_local, monkeypatch, make_app)
    store = app.extensions["store"]
    _create(store, slug="contended")
    _assert_no_lost_update(store, "contended", _parallel_edits(app, "contended"))
    record_figure("links.parallel_edits.editors", EDITORS, basis="counted")
    record_figure("links.parallel_edits.final_version", store.links.get("contended")["version"], basis="counted")


# The edit page


def test_edit_page_shows_the_current_values_and_the_cache_delay(signed_in, store, app):
    _create(store, title="Shown", tags=["one", "two"], note="A note")
    app.config["LINK_CACHE_SECONDS"] = 42
    page = signed_in.get("/links/edited/edit").get_data(as_text=True)
    assert 'value="https://example.com/start"' in page and 'value="Shown"' in page
    assert 'value="one, two"' in page and "\nA note</textarea>" in page
    assert 'name="version" type="hidden" value="1"' in page
    assert "up to 42 seconds" in page


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        ({"url": "https://example.org/new"}, "url", "https://example.org/new"),
        ({"title": "A new title"}, "title", "A new title"),
        ({"title": ""}, "title", None),
        ({"tags": "Launch, news , launch"}, "tags", ["launch", "news"]),
        ({"tags": ""}, "tags", []),
        ({"note": "Line one\r\nLine two"}, "note", "Line one\nLine two"),
        ({"forward_query": None}, "forward_query", False),
        ({"expiry": "never"}, "expires_at", None),
        ({"expiry": "date", "expiry_date": "2099-12-31"}, "expires_at", "2099-12-31T23:59:59Z"),
    ],
)
def test_edit_each_field_in_the_browser(signed_in, store, overrides, field, expected):
    link = _create(store, title="Old title", tags=["old"], note="Old note", expires_at="2098-01-01T00:00:00Z")
    response = signed_in.post("/links/edited/edit", data=_form(link, **overrides))
    assert response.status_code == 303 and response.headers["Location"] == "/links/edited"
    after = store.links.get("edited")
    assert after[field] == expected
    assert after["version"] == 2 and after["updated_by"] == ADMIN_USERNAME
    assert b"Saved edited." in signed_in.get("/links/edited").data


def test_expiry_in_a_number_of_days(signed_in, store, clock):
    link = _create(store)
    assert signed_in.post("/links/edited/edit", data=_form(link, expiry="days", expiry_days="3")).status_code == 303
    assert store.links.get("edited")["expires_at"] == (clock.now + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_saving_an_unchanged_form_writes_nothing(signed_in, store):
    link = _create(store, title="Same")
    response = signed_in.post("/links/edited/edit", data=_form(link))
    assert response.status_code == 303
    assert store.links.get("edited")["version"] == 1
    assert b"Nothing changed in edited." in signed_in.get("/links/edited").data
    assert [record["action"] for record in _trail(store, "edited")] == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": ""}, "Enter the destination URL."),
        ({"url": "javascript:alert(1)"}, "http"),
        ({"url": "https://sho.rt/loop"}, "short"),
        ({"title": "x" * 201}, "at most 200 characters"),
        ({"title": "bidi\u202eevil"}, "control characters"),
        ({"tags": "ok, <b>"}, "may only use letters"),
        ({"tags": ", ".join(f"t{n}" for n in range(11))}, "at most 10 tags"),
        ({"note": "n" * 1001}, "at most 1000 characters"),
        ({"expiry": "date", "expiry_date": "2001-01-01"}, "in the future"),
        ({"expiry": "date", "expiry_date": ""}, "Choose the expiry date."),
        ({"expiry": "days", "expiry_days": "0"}, "from 1 to 3650"),
        ({"expiry": "days", "expiry_days": "3651"}, "from 1 to 3650"),
        ({"expiry": "days", "expiry_days": "many"}, "from 1 to 3650"),
        ({"expiry": "sometime"}, "Not a valid choice"),
        ({"version": "x1"}, "This form is damaged"),
    ],
)
def test_bad_input_changes_nothing_and_says_why_next_to_the_field(signed_in, store, overrides, message):
    link = _create(store, title="Kept", note="Kept")
    response = signed_in.post("/links/edited/edit", data=_form(link, **{"note": "Changed too", **overrides}))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page
    assert re.search(r'class="(field has-error|error)"', page)
    after = store.links.get("edited")
    assert (after["title"], after["note"], after["version"]) == ("Kept", "Kept", 1)


def test_a_blocked_new_destination_is_refused(signed_in, store):
    link = _create(store)
    store.blocklist.add("domain", "blocked.example", created_by=ADMIN_USERNAME)
    response = signed_in.post("/links/edited/edit", data=_form(link, url="https://blocked.example/x"))
    assert response.status_code == 422
    assert b"blocked by the rule domain blocked.example" in response.data
    assert store.links.get("edited")["url"] == "https://example.com/start"


def test_a_stale_form_is_refused_with_who_changed_it_and_the_current_values(signed_in, store, app):
    link = _create(store, title="Original")
    other = app.test_client()
    sign_in_as(other, store, "editor")
    assert other.post("/links/edited/edit", data=_form(link, title="Theirs")).status_code == 303
    response = signed_in.post("/links/edited/edit", data=_form(link, title="Mine"))
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "changed by editor1 at" in page and "since you opened it" in page and "Nothing was saved" in page
    assert "<dd>Theirs</dd>" in page  # the current value
    assert 'value="Mine"' in page  # what was typed is kept
    assert 'name="version" type="hidden" value="2"' in page  # saving again is a deliberate overwrite
    assert store.links.get("edited")["title"] == "Theirs"
    # Saving the shown form again applies it over the current values.
    assert signed_in.post("/links/edited/edit", data=_form(store.links.get("edited"), title="Mine")).status_code == 303
    assert store.links.get("edited")["title"] == "Mine"


def test_edit_of_a_missing_link_is_404(signed_in):
    assert signed_in.get("/links/ghost/edit", headers={"Accept": "text/html"}).status_code == 404


def test_a_viewer_cannot_edit(client, store):
    link = _create(store)
    sign_in_as(client, store, "viewer")
    assert client.get("/links/edited/edit").status_code == 403
    assert client.post("/links/edited/edit", data=_form(link, title="No")).status_code == 403
    assert store.links.get("edited")["version"] == 1


# Create with the new fields


def test_create_form_takes_tags_note_and_forward_query(signed_in, store):
    response = signed_in.post("/links/new", data={"url": "https://example.com/n", "slug": "fresh", "title": "",
                                                   "tags": "B, a", "note": "Why", "expiry": "days", "expiry_days": "5"})
    assert response.status_code == 303
    link = store.links.get("fresh")
    assert (link["tags"], link["note"], link["forward_query"]) == (["a", "b"], "Why", False)
    assert link["expires_at"] is not None


def test_create_form_forwards_the_query_by_default(signed_in):
    page = signed_in.get("/links/new").get_data(as_text=True)
    assert re.search(r'<input checked id="forward_query" name="forward_query" type="checkbox"', page)
    assert "Forward the short link&#39;s query string" in page or "Forward the short link's query string" in page


# Disable and archive ask first; enable and unarchive do not.


@pytest.mark.parametrize("action", ["disable", "archive"])
def test_disable_and_archive_ask_for_confirmation_first(signed_in, store, action):
    _create(store)
    page = signed_in.get(f"/links/edited/{action}").get_data(as_text=True)
    assert f'action="/links/edited/{action}"' in page and f"Yes, {action} edited" in page
    link = store.links.get("edited")
    assert (link["is_active"], link["archived"], link["version"]) == (True, False, 1)


def test_the_list_and_the_page_send_disable_and_archive_to_their_confirmation(signed_in, store):
    _create(store)
    listing = signed_in.get("/").get_data(as_text=True)
    assert re.search(r'<form method="get" action="/links/edited/disable"', listing)
    detail = signed_in.get("/links/edited").get_data(as_text=True)
    assert 'href="/links/edited/disable"' in detail and 'href="/links/edited/archive"' in detail
    assert 'href="/links/edited/edit"' in detail


def test_archive_hides_the_link_from_the_list_and_unarchive_brings_it_back(signed_in, store):
    _create(store)
    response = signed_in.post("/links/edited/archive")
    assert response.status_code == 303
    listing = signed_in.get("/").get_data(as_text=True)
    assert "Archived edited. It still redirects" in listing
    assert "/links/edited\"" not in listing
    detail = signed_in.get("/links/edited").get_data(as_text=True)
    assert "badge disabled archived" in detail and "Unarchive</button>" in detail
    assert store.links.get("edited")["archived"] is True
    assert signed_in.post("/links/edited/unarchive").headers["Location"] == "/links/edited"
    assert store.links.get("edited")["archived"] is False
    assert 'href="/links/edited"' in signed_in.get("/").get_data(as_text=True)


def test_an_archived_link_still_redirects(store, monkeypatch):
    """The documented decision: archiving only hides a link from the list (as Dub's archive)."""
    import importlib
    import json
    from pathlib import Path

    from tests.conftest import TABLE_NAME

    _create(store)
    store.links.update("edited", {"archived": True}, by="bob")
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    handler = importlib.import_module("redirect_fn.handler")
    handler._cache.clear()
    event = json.loads((Path(__file__).parent / "events" / "http_api_v2_get.json").read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/edited"
    try:
        response = handler.lambda_handler(event, None)
    finally:
        handler._cache.clear()
    assert response["statusCode"] == 302 and response["headers"]["Location"] == "https://example.com/start"


# The list's flags


def _rows(page):
    """{link id: its row's HTML} of a list page."""
    return {re.search(r'class="details" href="/links/([\w-]+)"', row).group(1): row
            for row in re.findall(r'<tr class="status-.*?</tr>', page, re.S)}


def test_links_expiring_within_a_week_are_flagged(signed_in, store):
    now = clock.utcnow()
    _create(store, slug="soon", expires_at=clock.format_timestamp(now + timedelta(days=2, hours=12)))
    _create(store, slug="tomorrow", expires_at=clock.format_timestamp(now + timedelta(hours=3)))
    _create(store, slug="later", expires_at=clock.format_timestamp(now + timedelta(days=8)))
    _create(store, slug="never")
    rows = _rows(signed_in.get("/").get_data(as_text=True))
    assert "expires in 3 days" in rows["soon"]
    assert "expires in 1 day<" in rows["tomorrow"]
    assert "expires in" not in rows["later"] and "expires in" not in rows["never"]


def test_an_archived_link_listed_has_a_badge(app, store):
    """Only a filter lists archived links; the row says so wherever it is shown."""
    from flask import render_template

    from tests.conftest import ADMIN_USERNAME as user

    _create(store)
    _, link = store.links.update("edited", {"archived": True}, by=user)
    with app.test_request_context("/"):
        from flask import g

        g.user, g.role = user, "admin"
        row = render_template("links/_link_row.html", link=link, cursor=None)
    assert 'badge disabled archived">archived</span>' in row


def test_the_history_on_the_page_is_newest_first_and_paged(signed_in, store):
    _create(store)
    for n in range(22):
        assert signed_in.post("/links/edited/edit", data=_form(store.links.get("edited"), title=f"T{n}")).status_code == 303
    page = signed_in.get("/links/edited").get_data(as_text=True)
    assert page.count('class="trail-row"') == 20
    assert page.index("<ins>T21</ins>") < page.index("<ins>T20</ins>")
    more = re.search(r'href="([^"]+)" rel="next">More history', page).group(1).replace("&amp;", "&")
    older = signed_in.get(more).get_data(as_text=True)
    assert older.count('class="trail-row"') == 2 and "<ins>T1</ins>" in older and "<ins>T0</ins>" in older


def test_markup_in_title_tags_and_note_is_shown_as_text(signed_in, store):
    _create(store, title=XSS, note=XSS)
    store.links.update("edited", {"tags": ["img src x"]}, by="bob")
    for path in ("/", "/links/edited", "/links/edited/edit", "/links/edited/archive"):
        page = signed_in.get(path).get_data(as_text=True)
        assert XSS not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in signed_in.get("/links/edited").get_data(as_text=True)
