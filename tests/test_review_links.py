"""An outside review of link editing and CSV import: each test is an attack or a failure AWS documents,
and failed before the fix it comes with."""
import json
from datetime import date, timedelta

import pytest
from botocore.exceptions import ReadTimeoutError

from tests.conftest import ADMIN_USERNAME, add_user, token_for
from tests.support.faults import Faults, Outage
from webapp import audit
from webapp.exceptions import VersionConflict


def _create(store, slug="rev", **kwargs):
    kwargs.setdefault("created_by", ADMIN_USERNAME)
    return store.links.create(kwargs.pop("url", "https://example.com/start"), slug=slug, **kwargs)


def _records(store, target):
    records, _ = store.audit.list(first_day=date.today() - timedelta(days=1), last_day=date.today() + timedelta(days=1),
                                  target=target, limit=100)
    return records


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def long_named_token(store):
    """A write token whose name is 100 characters outside the BMP: 1,200 bytes once JSON-escaped."""
    add_user(store, "tok", "editor")
    plaintext, _ = store.tokens.create("tok", "😀" * 100, scope="write")
    return plaintext


# The audit record's size: changes in other scripts, and a long token name, never push out the changes
# or the token that made them (audit.bounded_details drops whole entries past MAX_DETAILS_JSON).

ASTRAL_TAGS = ["𝐀" * 31 + chr(0x1D41A + i) for i in range(10)]  # letters, so valid tags: 32 characters each


def test_a_large_edit_in_another_script_keeps_its_changes_and_its_token(client, store, long_named_token):
    _create(store, tags=ASTRAL_TAGS, title="𝐀" * 200, note="𝐀" * 1000)
    new_tags = [tag.replace("𝐀", "𝐁") for tag in ASTRAL_TAGS]
    response = client.patch("/api/links/rev", json={"tags": new_tags, "title": "𝐁" * 200, "note": "𝐁" * 1000},
                            headers=_bearer(long_named_token))
    assert response.status_code == 200
    [record] = _records(store, "rev")
    details = record["details"]
    assert "details_dropped" not in details
    assert set(details["changes"]) == {"tags", "title", "note"}
    assert details["caller_token"] and details["token_name"].startswith("😀")
    assert details["changes"]["title"]["old"].startswith("𝐀") and details["changes"]["title"]["new"].startswith("𝐁")


def test_a_create_by_a_long_named_token_keeps_which_token(client, store, long_named_token):
    body = {"url": "https://example.com/a", "note": "😀" * 240, "slug": "bigone", "expires_at": None}
    assert client.post("/api/links", json=body, headers=_bearer(long_named_token)).status_code == 201
    [record] = _records(store, "bigone")
    details = record["details"]
    assert "details_dropped" not in details
    assert details["caller_token"] and details["token_name"] and details["url"] == "https://example.com/a"
    assert details["changes"]["note"]["new"].startswith("😀")


def test_changes_too_large_for_any_cut_still_name_every_field(app):
    from webapp import link_edits

    changes = {name: {"old": "𝐀" * 1000, "new": "𝐁" * 1000} for name in link_edits.FIELDS}
    fitted = link_edits._fitted(changes, 400)
    assert set(fitted) == set(link_edits.FIELDS)
    assert len(json.dumps(fitted).encode("utf-8")) <= 400


# A write whose answer is lost (botocore's read timeout after DynamoDB applied it).

def test_an_edit_whose_answer_was_lost_is_done_and_audited_once(client, store, api_token):
    _create(store, title="Old")
    faults = Faults(store.table.client).lose_responses(ReadTimeoutError)
    faults.fail_next("TransactWriteItems")
    try:
        response = client.patch("/api/links/rev", json={"title": "New"}, headers=_bearer(api_token))
    finally:
        faults.remove()
    assert faults.lost_calls, "the edit's write was not the one lost"
    assert response.status_code == 200 and response.json["title"] == "New" and response.json["version"] == 2
    # The client, told it worked, does not retry; had it retried, nothing would change (and nothing be recorded).
    assert client.patch("/api/links/rev", json={"title": "New"}, headers=_bearer(api_token)).status_code == 200
    assert [record["details"]["changes"] for record in _records(store, "rev")] == [{"title": {"old": "Old", "new": "New"}}]


def test_an_edit_refused_before_it_was_sent_is_503_and_records_nothing(client, store, api_token):
    _create(store, title="Old")
    faults = Faults(store.table.client)
    faults.fail_next("TransactWriteItems")  # throttled: never applied
    try:
        response = client.patch("/api/links/rev", json={"title": "New"}, headers=_bearer(api_token))
    finally:
        faults.remove()
    assert response.status_code == 503
    assert store.links.get("rev")["title"] == "Old" and _records(store, "rev") == []


# The version condition, without threads (the parallel tests need moto to race, which it does not always):
# another edit lands between an edit's read and its write.

def _read_stale_once(monkeypatch, store, stale):
    real = store.links._read_item
    reads = iter([stale])
    monkeypatch.setattr(store.links, "_read_item", lambda short_id: next(reads, None) or real(short_id))


def test_an_edit_that_read_before_another_landed_keeps_the_others_change(store, monkeypatch):
    _create(store, title="A")
    stale = store.links._read_item("rev")
    store.links.update("rev", {"note": "Theirs"}, by="carol")
    _read_stale_once(monkeypatch, store, stale)
    _, after = store.links.update("rev", {"title": "Mine"}, by="bob")
    link = store.links.get("rev")
    assert (link["title"], link["note"], link["version"]) == ("Mine", "Theirs", 3) == (after["title"], after["note"], after["version"])


def test_an_edit_at_a_version_overtaken_after_its_read_writes_nothing(store, monkeypatch):
    _create(store, title="A")
    stale = store.links._read_item("rev")
    store.links.update("rev", {"note": "Theirs"}, by="carol")
    _read_stale_once(monkeypatch, store, stale)
    with pytest.raises(VersionConflict):
        store.links.update("rev", {"title": "Mine"}, by="bob", expected_version=1)
    link = store.links.get("rev")
    assert (link["title"], link["note"], link["version"]) == ("A", "Theirs", 2)


# Eventual consistency: store.links.get is a Query without ConsistentRead, and may answer a version behind.

def _stale_reads(monkeypatch, store, link):
    monkeypatch.setattr(store.links, "get", lambda short_id: dict(link))


def test_a_stale_read_never_skips_the_destination_check(client, store, api_token, monkeypatch):
    _create(store, url="https://www.blocked.example/")  # made before the rule
    stale = store.links.get("rev")
    store.links.update("rev", {"url": "https://example.com/good"}, by="carol")
    store.blocklist.add("domain", "blocked.example", created_by=ADMIN_USERNAME)
    _stale_reads(monkeypatch, store, stale)
    response = client.patch("/api/links/rev", json={"url": "https://www.blocked.example/"}, headers=_bearer(api_token))
    assert response.status_code == 422 and response.json["field"] == "url"
    assert store.links._read_item("rev")["url"] == "https://example.com/good"


def test_a_stale_read_never_drops_a_change_typed_in_the_edit_form(client, auth, store, monkeypatch):
    _create(store, title="A")
    stale = store.links.get("rev")
    store.links.update("rev", {"title": "B"}, by="carol")
    shown = store.links.get("rev")  # the form the user sees: version 2, title B
    assert auth.login().status_code == 303
    _stale_reads(monkeypatch, store, stale)
    form = {"url": shown["url"], "title": "A", "tags": "", "note": "", "forward_query": "y", "expiry": "keep",
            "version": str(shown["version"])}
    assert client.post("/links/rev/edit", data=form).status_code == 303
    item = store.links._read_item("rev")
    assert (item["title"], item["version"]) == ("A", 3)


@pytest.mark.parametrize("slug", ["lost-api", None])
def test_a_create_whose_answer_was_lost_is_created_once_and_audited(client, store, api_token, slug):
    faults = Faults(store.table.client).lose_responses(ReadTimeoutError)
    faults.fail_next("PutItem")
    try:
        response = client.post("/api/links", json={"url": "https://example.com/a", "slug": slug}, headers=_bearer(api_token))
    finally:
        faults.remove()
    assert faults.lost_calls
    assert response.status_code == 201, response.json
    links, _ = store.links.list(limit=10)
    assert [link["id"] for link in links] == [response.json["short_id"]]
    assert [record["action"] for record in _records(store, response.json["short_id"])] == ["link.create"]


# botocore resends a request whose answer timed out (Outage with lost=True applies the first send and
# drops its answer): the resend then fails the condition of the very write that landed.

def _resent(monkeypatch, store, operation):
    outage = Outage(monkeypatch, store.table.client, operations={operation}, lost=True)
    outage.kind, outage.first_sends = "read-timeout", True
    return outage


def test_an_edit_that_botocore_resent_is_done_not_a_conflict(client, store, api_token, monkeypatch):
    _create(store)
    outage = _resent(monkeypatch, store, "PutItem")  # a note is in no index entry: the edit is one PutItem
    try:
        response = client.patch("/api/links/rev", json={"note": "N"}, headers={**_bearer(api_token), "If-Match": '"1"'})
    finally:
        outage.end()
    assert outage.failed_sends
    assert response.status_code == 200 and response.json["version"] == 2
    assert [record["details"]["changes"] for record in _records(store, "rev")] == [{"note": {"old": None, "new": "N"}}]


def test_a_create_that_botocore_resent_is_created_not_taken(client, store, api_token, monkeypatch):
    # DynamoDB itself makes a resent transaction idempotent (botocore's ClientRequestToken); moto does not,
    # and a PutItem never is: the store must see its own item either way.
    outage = _resent(monkeypatch, store, "PutItem")
    try:
        response = client.post("/api/links", json={"url": "https://example.com/x", "slug": "mine"}, headers=_bearer(api_token))
    finally:
        outage.end()
    assert outage.failed_sends
    assert response.status_code == 201
    assert [record["action"] for record in _records(store, "mine")] == ["link.create"]


def test_a_links_trail_shows_no_record_of_a_user_of_the_same_name(client, store, api_token):
    """An editor names a link after a user (any slug is free to take): its trail must not become a window
    on that user's audit records (role changes, sign-in failures), which only admins may read."""
    from flask import g

    add_user(store, "victim", "viewer")
    with client.application.test_request_context():
        g.user = ADMIN_USERNAME
        audit.record("user.role", target="victim", role="editor")
        audit.record("signin.failed", target="victim", actor="victim", outcome="failed")
    viewer = token_for(store, "viewer")
    assert client.post("/api/links", json={"url": "https://example.com/a", "slug": "victim"},
                       headers=_bearer(api_token)).status_code == 201
    response = client.get("/api/links/victim/audit", headers=_bearer(viewer))
    assert response.status_code == 200
    assert [entry["action"] for entry in response.json["entries"]] == ["link.create"]


def _import(client, token, body):
    return client.post("/api/links/import", data=body.encode(), content_type="text/csv", headers=_bearer(token))


def _the_first_link_put():
    """A Faults.fail_when that chooses the first PutItem of a link item (a create), and nothing after it."""
    chosen = []

    def when(operation, body):
        if operation == "PutItem" and body["Item"]["sk"] == {"S": "link"} and not chosen:
            chosen.append(body["Item"]["pk"]["S"])
            return True
        return False

    return when


@pytest.mark.parametrize("slug", ["lost-one", ""])
def test_an_import_row_whose_answer_was_lost_is_created_once(client, store, slug):
    token = token_for(store, "editor")
    faults = Faults(store.table.client).lose_responses(ReadTimeoutError)
    faults.fail_when = _the_first_link_put()  # the row's create, not the job's own items
    try:
        response = _import(client, token, f"url,slug\nhttps://example.com/a,{slug}\n")
    finally:
        faults.remove()
    assert faults.lost_calls
    [result] = response.json["results"]
    assert result["status"] == "created", result
    assert (response.json["created"], response.json["failed"]) == (1, 0)
    link = store.links.get(result["short_id"])
    assert link["url"] == "https://example.com/a" and (not slug or link["id"] == slug)


def test_an_import_row_refused_before_it_was_sent_says_so(client, store):
    token = token_for(store, "editor")
    faults = Faults(store.table.client)
    faults.fail_when = _the_first_link_put()
    try:
        response = _import(client, token, "url,slug\nhttps://example.com/a,busy-one\n")
    finally:
        faults.remove()
    [result] = response.json["results"]
    assert result["status"] == "error" and "busy" in result["error"]
