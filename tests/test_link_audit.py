"""A link's audit trail: every kind of change, through the browser, the API and the CLI, with old and new
values; and GET /api/links/<id>/audit, newest first and paged."""
import pytest

from tests.conftest import ADMIN_USERNAME, token_for


def _create(store, slug="trail", **kwargs):
    kwargs.setdefault("created_by", ADMIN_USERNAME)
    return store.links.create(kwargs.pop("url", "https://example.com/start"), slug=slug, **kwargs)


@pytest.fixture
def bearer(api_token):
    return {"Authorization": f"Bearer {api_token}"}


def _entries(client, bearer, short_id="trail", **query):
    response = client.get(f"/api/links/{short_id}/audit", query_string=query, headers=bearer)
    assert response.status_code == 200, response.json
    return response.json


# (kind, what the link is before, its change through each channel, the expected action and changes)
KINDS = {
    "edit": ({}, {"title": "New", "tags": ["b"]}, "link.edit",
             {"title": {"old": "Old", "new": "New"}, "tags": {"old": ["a"], "new": ["b"]}}),
    "disable": ({}, {"is_active": False}, "link.disable", {"is_active": {"old": True, "new": False}}),
    "enable": ({"is_active": False}, {"is_active": True}, "link.enable", {"is_active": {"old": False, "new": True}}),
    "archive": ({}, {"archived": True}, "link.archive", {"archived": {"old": False, "new": True}}),
    "unarchive": ({"archived": True}, {"archived": False}, "link.unarchive", {"archived": {"old": True, "new": False}}),
}


def _through_browser(client, store, kind, change):
    if kind == "edit":
        link = store.links.get("trail")
        form = {"url": link["url"], "title": change["title"], "tags": ", ".join(change["tags"]), "note": "",
                "forward_query": "y", "expiry": "keep", "version": str(link["version"])}
        return client.post("/links/trail/edit", data=form).status_code
    return client.post(f"/links/trail/{kind}").status_code


def _through_api(client, store, kind, change, bearer):
    return client.patch("/api/links/trail", json=change, headers=bearer).status_code


def _through_cli(app, kind, change):
    args = {"edit": ["--title", "New", "--tags", "b"], "disable": ["--disable"], "enable": ["--enable"],
            "archive": ["--archive"], "unarchive": ["--unarchive"]}[kind]
    result = app.test_cli_runner().invoke(args=["edit-link", "trail", *args])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("via", ["web", "api", "cli"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_of_change_is_audited_with_old_and_new_values(app, client, auth, store, bearer, kind, via):
    from webapp.cli import _operator

    before, change, action, changes = KINDS[kind]
    _create(store, title="Old", tags=["a"])
    if before:
        store.links.update("trail", before, by="setup")  # the store alone records nothing
    if via == "web":
        assert auth.login().status_code == 303
        assert _through_browser(client, store, kind, change) == 303
    elif via == "api":
        assert _through_api(client, store, kind, change, bearer) == 200
    else:
        _through_cli(app, kind, change)
    entries = _entries(client, bearer)["entries"]
    assert len(entries) == 1
    entry = entries[0]
    actor = _operator() if via == "cli" else ADMIN_USERNAME
    assert (entry["action"], entry["actor"], entry["via"], entry["changes"]) == (action, actor, via, changes)
    assert entry["at"].endswith("Z")
    if via == "api":
        # Which token, by id and name: a stolen one's changes say which to revoke.
        assert entry["token"] and entry["token_name"] == "tests"
    else:
        assert "token" not in entry


@pytest.mark.parametrize("via", ["web", "api"])
def test_creation_is_audited_with_its_fields(client, auth, store, bearer, via):
    fields = {"url": "https://example.com/new", "slug": "trail", "title": "T", "note": "N"}
    if via == "web":
        assert auth.login().status_code == 303
        response = client.post("/links/new", data={**fields, "tags": "x, y", "expiry": "never"})
        assert response.status_code == 303
    else:
        response = client.post("/api/links", json={**fields, "tags": ["x", "y"], "expires_at": None, "forward_query": False},
                               headers=bearer)
        assert response.status_code == 201
    [entry] = _entries(client, bearer)["entries"]
    assert (entry["action"], entry["actor"], entry["via"]) == ("link.create", ADMIN_USERNAME, via)
    expected = {"url": {"old": None, "new": "https://example.com/new"}, "title": {"old": None, "new": "T"},
                "tags": {"old": None, "new": ["x", "y"]}, "note": {"old": None, "new": "N"},
                "forward_query": {"old": None, "new": False}}
    assert entry["changes"] == expected


def test_an_edit_that_changes_nothing_records_nothing(app, client, store, bearer):
    _create(store, title="Same")
    assert client.patch("/api/links/trail", json={"title": "Same"}, headers=bearer).status_code == 200
    result = app.test_cli_runner().invoke(args=["edit-link", "trail", "--title", "Same"])
    assert result.exit_code == 0 and "Nothing changed" in result.output
    assert _entries(client, bearer)["entries"] == []


def test_a_refused_edit_records_no_change(client, store, bearer):
    _create(store)
    assert client.patch("/api/links/trail", json={"title": 5}, headers=bearer).status_code == 422
    assert client.patch("/api/links/trail", json={"title": "x"}, headers={**bearer, "If-Match": '"7"'}).status_code == 412
    assert _entries(client, bearer)["entries"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--title", "x" * 201], "at most 200"), (["--expires", "yesterday"], "ISO 8601"), (["--expires", "0d"], "from 1 to 3650"),
     (["--url", "javascript:x"], "http"), ([], "Nothing to change"), (["--tags", "<b>"], "may only use")],
)
def test_cli_refusals_change_and_record_nothing(app, client, store, bearer, args, message):
    _create(store)
    result = app.test_cli_runner().invoke(args=["edit-link", "trail", *args])
    assert result.exit_code != 0 and message in result.output
    assert store.links.get("trail")["version"] == 1
    assert _entries(client, bearer)["entries"] == []


def test_cli_expiry_choices(app, store, clock):
    from datetime import timedelta

    _create(store)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["edit-link", "trail", "--expires", "10d"]).exit_code == 0
    assert store.links.get("trail")["expires_at"] == (clock.now + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert runner.invoke(args=["edit-link", "trail", "--expires", "2099-03-04"]).exit_code == 0
    assert store.links.get("trail")["expires_at"] == "2099-03-04T23:59:59Z"
    assert runner.invoke(args=["edit-link", "trail", "--expires", "never"]).exit_code == 0
    assert store.links.get("trail")["expires_at"] is None


def test_cli_edit_of_a_missing_link(app):
    result = app.test_cli_runner().invoke(args=["edit-link", "ghost", "--title", "x"])
    assert result.exit_code != 0 and "does not exist" in result.output


# GET /api/links/<id>/audit


def test_the_trail_is_newest_first_and_paged(client, store, bearer):
    assert client.post("/api/links", json={"url": "https://example.com/", "slug": "trail"}, headers=bearer).status_code == 201
    for n in range(7):
        assert client.patch("/api/links/trail", json={"title": f"T{n}"}, headers=bearer).status_code == 200
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = _entries(client, bearer, **query)
        assert len(page["entries"]) <= 3
        seen += page["entries"]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 3
    assert [entry["action"] for entry in seen] == ["link.edit"] * 7 + ["link.create"]
    assert [entry["changes"]["title"]["new"] for entry in seen[:7]] == [f"T{n}" for n in range(6, -1, -1)]
    assert [entry["at"] for entry in seen] == sorted((entry["at"] for entry in seen), reverse=True)


def test_the_trail_holds_only_this_links_changes(client, store, bearer):
    _create(store)
    _create(store, slug="other")
    client.patch("/api/links/other", json={"title": "Elsewhere"}, headers=bearer)
    assert _entries(client, bearer)["entries"] == []
    assert len(_entries(client, bearer, "other")["entries"]) == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "x"}, "limit"), ({"cursor": "garbage!"}, "cursor")],
)
def test_bad_paging_is_422(client, store, bearer, query, field):
    _create(store)
    response = client.get("/api/links/trail/audit", query_string=query, headers=bearer)
    assert response.status_code == 422 and response.json["field"] == field


def test_trail_of_a_missing_link_is_404(client, bearer):
    assert client.get("/api/links/ghost/audit", headers=bearer).status_code == 404


def test_a_viewer_reads_the_trail_and_anonymous_cannot(client, store, bearer):
    _create(store)
    client.patch("/api/links/trail", json={"title": "Seen"}, headers=bearer)
    viewer = {"Authorization": f"Bearer {token_for(store, 'viewer')}"}
    assert [e["changes"]["title"]["new"] for e in _entries(client, viewer)["entries"]] == ["Seen"]
    assert client.get("/api/links/trail/audit").status_code == 401


def test_the_trail_is_shown_on_the_links_page(client, auth, store, bearer):
    _create(store, title="Before")
    client.patch("/api/links/trail", json={"title": "<b>After</b>"}, headers=bearer)
    assert auth.login().status_code == 303
    page = client.get("/links/trail").get_data(as_text=True)
    assert "link.edit" in page and "<del>Before</del>" in page and "<ins>&lt;b&gt;After&lt;/b&gt;</ins>" in page


def test_a_long_change_in_any_script_keeps_its_record(client, store, bearer):
    """Audit details stop at a few KB, and JSON escapes each non-Latin character to 6 bytes: long old and
    new notes are cut to fit, rather than the whole change being dropped from the record."""
    _create(store, note="é" * 1000, url="https://example.com/" + "a" * 1500)
    response = client.patch("/api/links/trail", json={"note": "ж" * 1000, "title": "Short", "url": "https://example.com/b"},
                            headers=bearer)
    assert response.status_code == 200
    [entry] = _entries(client, bearer)["entries"]
    changes = entry["changes"]
    assert set(changes) == {"note", "title", "url"}
    assert changes["title"] == {"old": None, "new": "Short"}
    assert changes["note"]["old"].startswith("ééé") and changes["note"]["old"].endswith("…")
    assert changes["note"]["new"].startswith("жжж") and changes["url"]["new"] == "https://example.com/b"
