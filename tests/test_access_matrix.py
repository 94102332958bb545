"""Every route, visited as anonymous, viewer, editor and admin: what each may do, and what it did.

The matrix is checked against the app's URL map, so a new route cannot be added without saying
who may use it. Each case also checks the table: an allowed write has its effect (EFFECTS), and a
refused request, or a read, changes nothing.
"""
import hashlib

import pytest

from tests.conftest import ROLE_PASSWORD, TABLE_NAME, add_user, sign_in_as, token_for
from webapp import import_runner

ROLES = ("anonymous", "viewer", "editor", "admin")
LOGIN = "login"  # anonymous visitors of a page are sent to sign in (303 to /login?next=...)

# (method, path, form or JSON body, expected status for anonymous, viewer, editor, admin)
PAGES = [
    ("GET", "/", None, (LOGIN, 200, 200, 200)),
    ("GET", "/links/new", None, (LOGIN, 403, 200, 200)),
    ("GET", "/links/export.csv", None, (LOGIN, 200, 200, 200)),
    ("GET", "/links/import", None, (LOGIN, 403, 200, 200)),
    ("POST", "/links/import", {}, (LOGIN, 403, 422, 422)),  # no file: refused, nothing stored
    ("GET", "/links/import/{job_id}", None, (LOGIN, 403, 404, 200)),  # alice's job: its owner and admins
    ("POST", "/links/import/{job_id}/resume", {}, (LOGIN, 403, 404, 303)),  # done: nothing to resume
    ("GET", "/links/import/{job_id}/results.csv", None, (LOGIN, 403, 404, 200)),
    ("POST", "/links/new", {"url": "https://example.com/new", "expiry": "never"}, (LOGIN, 403, 303, 303)),
    ("GET", "/links/matrix", None, (LOGIN, 200, 200, 200)),
    ("GET", "/links/matrix/qr.svg", None, (LOGIN, 200, 200, 200)),
    ("GET", "/links/matrix/qr.png", None, (LOGIN, 200, 200, 200)),
    ("GET", "/links/matrix/stats/live", None, (LOGIN, 200, 200, 200)),
    ("GET", "/links/matrix/stats.csv", None, (LOGIN, 200, 200, 200)),
    ("POST", "/links/matrix/disable", {}, (LOGIN, 403, 303, 303)),
    ("POST", "/links/matrix/enable", {}, (LOGIN, 403, 303, 303)),
    ("GET", "/users", None, (LOGIN, 403, 403, 200)),
    ("POST", "/users", {"username": "newbie", "password": "newbie-password", "role": "viewer"}, (LOGIN, 403, 403, 303)),
    ("POST", "/users/target/role", {"role": "editor"}, (LOGIN, 403, 403, 303)),
    ("POST", "/users/target/disable", {}, (LOGIN, 403, 403, 303)),
    ("POST", "/users/target/enable", {}, (LOGIN, 403, 403, 303)),
    ("POST", "/users/target/sessions/end", {}, (LOGIN, 403, 403, 303)),
    ("GET", "/tokens", None, (LOGIN, 200, 200, 200)),
    ("POST", "/tokens", {"name": "script", "scope": "read", "days": "30"}, (LOGIN, 200, 200, 200)),
    # The target user's token: only admins may revoke someone else's (others see no such token).
    ("POST", "/tokens/{token_id}/revoke", {}, (LOGIN, 404, 404, 303)),
    ("POST", "/tokens/users/target/revoke", {}, (LOGIN, 403, 403, 303)),
    ("GET", "/account/password", None, (LOGIN, 200, 200, 200)),
    ("GET", "/account/sessions", None, (LOGIN, 200, 200, 200)),
    # The target's session id: each user ends sessions in their own partition only, so nothing ends.
    ("POST", "/account/sessions/{session_digest}/end", {}, (LOGIN, 303, 303, 303)),
    ("POST", "/account/sessions/end-others", {}, (LOGIN, 303, 303, 303)),
    ("POST", "/logout", {}, (303, 303, 303, 303)),
    ("GET", "/login", None, (200, 303, 303, 303)),  # the signed-in are sent on to the list
    ("POST", "/login", {"username": "nobody", "password": "wrong-password"}, (422, 303, 303, 303)),
    ("POST", "/account/password", {"current": "wrong-password", "new": "n3w-password", "confirm": "n3w-password"},
     (LOGIN, 422, 422, 422)),
    # Single sign-on is off unless configured (tests/test_oidc.py covers it on).
    ("GET", "/login/sso", None, (404, 404, 404, 404)),
    ("GET", "/login/sso/callback", None, (404, 404, 404, 404)),
    ("GET", "/health", None, (200, 200, 200, 200)),
    ("GET", "/.well-known/security.txt", None, (404, 404, 404, 404)),  # no contact set in the test app: no file
    ("GET", "/audit", None, (LOGIN, 403, 403, 200)),
    # Two-factor sign-in (tests/test_two_factor.py covers it in depth). Nobody here has it on, so turning
    # it off or renewing codes sends back to its page, and a second step without a password step to sign-in.
    ("GET", "/account/two-factor", None, (LOGIN, 200, 200, 200)),
    ("GET", "/account/two-factor/setup", None, (LOGIN, 200, 200, 200)),
    ("POST", "/account/two-factor/setup", {}, (LOGIN, 303, 303, 303)),
    ("POST", "/account/two-factor/enable", {"code": "000000"}, (LOGIN, 422, 422, 422)),
    ("POST", "/account/two-factor/recovery-codes", {"secret": "wrong-password"}, (LOGIN, 303, 303, 303)),
    ("POST", "/account/two-factor/disable", {"secret": "wrong-password"}, (LOGIN, 303, 303, 303)),
    ("GET", "/login/two-factor", None, (303, 303, 303, 303)),
    ("POST", "/login/two-factor", {"code": "000000"}, (303, 303, 303, 303)),
    ("GET", "/settings/security", None, (LOGIN, 403, 403, 200)),
    ("POST", "/settings/security", {"require_two_factor": "y"}, (LOGIN, 403, 403, 303)),
    ("GET", "/settings/blocklist", None, (LOGIN, 403, 403, 200)),
    ("POST", "/settings/blocklist", {"kind": "domain", "value": "Blocked.Example"}, (LOGIN, 403, 403, 303)),
    ("POST", "/settings/blocklist/{rule_id}/remove", {}, (LOGIN, 403, 403, 303)),
    # Editing and archiving links (tests/test_link_edit.py covers them in depth); disable and archive ask
    # first on a GET confirmation page.
    ("GET", "/links/matrix/edit", None, (LOGIN, 403, 200, 200)),
    ("POST", "/links/matrix/edit", {"url": "https://example.com/edited", "title": "", "tags": "", "note": "",
                                    "forward_query": "y", "expiry": "keep", "version": "1"}, (LOGIN, 403, 303, 303)),
    ("GET", "/links/matrix/disable", None, (LOGIN, 403, 200, 200)),
    ("GET", "/links/matrix/archive", None, (LOGIN, 403, 200, 200)),
    ("POST", "/links/matrix/archive", {}, (LOGIN, 403, 303, 303)),
    ("POST", "/links/matrix/unarchive", {}, (LOGIN, 403, 303, 303)),
    # The home dashboard, for every role; the stats retention setting, for admins.
    ("GET", "/dashboard", None, (LOGIN, 200, 200, 200)),
    ("GET", "/settings/stats", None, (LOGIN, 403, 403, 200)),
    ("POST", "/settings/stats", {"days": "90"}, (LOGIN, 403, 403, 303)),
]
API = [
    ("POST", "/api/links", {"url": "https://example.com/api"}, (401, 403, 201, 201)),
    ("POST", "/shorten", {"url": "https://example.com/api"}, (401, 403, 201, 201)),
    ("GET", "/api/links", None, (401, 200, 200, 200)),
    ("GET", "/api/links/export", None, (401, 200, 200, 200)),
    ("POST", "/api/links/import", {"url": "https://example.com/"}, (401, 403, 415, 415)),  # JSON, not text/csv
    ("GET", "/api/links/import/{job_id}", None, (401, 403, 404, 200)),
    ("POST", "/api/links/import/{job_id}/resume", None, (401, 403, 404, 409)),
    ("GET", "/api/links/import/{job_id}/results.csv", None, (401, 403, 404, 200)),
    ("GET", "/api/links/matrix", None, (401, 200, 200, 200)),
    ("GET", "/api/links/matrix/stats", None, (401, 200, 200, 200)),
    ("GET", "/api/links/matrix/stats.csv", None, (401, 200, 200, 200)),
    ("GET", "/api/links/matrix/qr", None, (401, 200, 200, 200)),
    ("PATCH", "/api/links/matrix", {"is_active": False}, (401, 403, 200, 200)),
    ("GET", "/api/tokens", None, (401, 200, 200, 200)),
    ("POST", "/api/tokens", {"name": "ci", "scope": "read"}, (401, 403, 201, 201)),
    ("DELETE", "/api/tokens/{token_id}", None, (401, 403, 404, 204)),
    ("DELETE", "/api/users/target/tokens", None, (401, 403, 403, 200)),
    ("GET", "/api/users", None, (401, 403, 403, 200)),
    ("POST", "/api/users", {"username": "newbie", "password": "newbie-password", "role": "viewer"}, (401, 403, 403, 201)),
    ("PATCH", "/api/users/target", {"role": "editor"}, (401, 403, 403, 200)),
    ("GET", "/api/audit", None, (401, 403, 403, 200)),
    ("GET", "/api/blocklist", None, (401, 403, 403, 200)),
    ("POST", "/api/blocklist", {"kind": "domain", "value": "Blocked.Example"}, (401, 403, 403, 201)),
    ("DELETE", "/api/blocklist/{rule_id}", None, (401, 403, 403, 204)),
    ("DELETE", "/api/users/target/sessions", None, (401, 403, 403, 204)),
    ("GET", "/api/openapi.json", None, (200, 200, 200, 200)),  # the API's description needs no token
    ("GET", "/api/links/matrix/audit", None, (401, 200, 200, 200)),
    ("GET", "/api/stats", None, (401, 200, 200, 200)),
]


def _cases(table):
    for method, path, body, expected in table:
        for role, status in zip(ROLES, expected):
            yield pytest.param(method, path, body, role, status, id=f"{role}-{method}-{path}")


@pytest.fixture
def world(app, store):
    """A link, and a signed-in viewer called target who has a token, for the routes to act on."""
    store.links.create("https://example.com/", created_by="alice", slug="matrix")
    add_user(store, "target", "viewer")
    token, token_id = store.tokens.create("target", "target's", scope="read")
    target = app.test_client()
    assert target.post("/login", data={"username": "target", "password": ROLE_PASSWORD}).status_code == 303
    rule_id = store.blocklist.add("domain", "world.example", created_by="alice")["id"]
    with target.session_transaction() as session:
        session_digest = hashlib.sha256(session["sid"].encode()).hexdigest()
    with app.test_request_context():
        # alice's import, whose one row fails: a job to look at, and no link beside "matrix".
        job_id = import_runner.submit(b"url\nftp://example.com/imported\n", owner="alice", via="web")["id"]
    return {"token_id": token_id, "token": token, "target": target, "rule_id": rule_id, "session_digest": session_digest,
            "job_id": job_id}


# What an allowed write must have done. Each check gets the table before and after the request
# (_table), the acting user's name, the world and the acting client, and asserts the effect.


def _new_items(before, after, **attributes):
    """Items the request added whose attributes include these (plain strings)."""
    return [key for key, item in after.items() if key not in before
            and all(item.get(name) == {"S": value} for name, value in attributes.items())]


def _target_signed_out(world):
    return _signed_out(world["target"])


def _signed_out(client):
    response = client.get("/", headers={"Accept": "text/html"})
    return response.status_code == 303 and response.headers["Location"].startswith("/login")


def _token_works(world):
    return world["target"].get("/api/links", headers={"Authorization": f"Bearer {world['token']}"}).status_code == 200


def _link_created(url):
    def check(before, after, actor, world, client):
        assert _new_items(before, after, sk="link", url=url, created_by=actor)
    return check


def _link_active(active):
    def check(before, after, actor, world, client):
        assert after[("matrix", "link")]["is_active"] == {"BOOL": active}
    return check


def _link_edited(before, after, actor, world, client):
    link = after[("matrix", "link")]
    assert link["url"] == {"S": "https://example.com/edited"} and link["updated_by"] == {"S": actor}


def _link_archived(archived):
    def check(before, after, actor, world, client):
        link = after[("matrix", "link")]
        assert link.get("archived") == ({"BOOL": True} if archived else None)
        assert link["list_pk"]["S"].startswith("archived#" if archived else "links#")
    return check


def _user_created(before, after, actor, world, client):
    assert after[("user#newbie", "user")]["role"] == {"S": "viewer"}


def _target_role_changed(before, after, actor, world, client):
    assert after[("user#target", "user")]["role"] == {"S": "editor"}
    assert _target_signed_out(world)  # a changed role ends the user's sessions


def _target_disabled(before, after, actor, world, client):
    assert after[("user#target", "user")]["disabled"] == {"BOOL": True}
    assert _target_signed_out(world)
    assert not _token_works(world)  # a disabled user's tokens stop working (they are kept)


def _target_enabled(before, after, actor, world, client):
    assert after[("user#target", "user")]["disabled"] == {"BOOL": False}
    assert _token_works(world)


def _token_created(name):
    def check(before, after, actor, world, client):
        assert _new_items(before, after, sk="token", name=name, username=actor)
    return check


def _target_token_revoked(before, after, actor, world, client):
    assert ("tokenid#" + world["token_id"], "token") not in after
    assert not _token_works(world)


def _target_sessions_ended(before, after, actor, world, client):
    assert _target_signed_out(world)
    assert _token_works(world)  # ending sessions leaves tokens alone


def _target_still_signed_in(before, after, actor, world, client):
    assert after == before
    assert not _target_signed_out(world)


def _others_signed_out(before, after, actor, world, client):
    key = (f"user#{actor}", "user")
    assert after[key]["session_gen"] != before[key].get("session_gen")  # one write ended them all...
    assert not _signed_out(client)  # ...and this browser has a fresh session


def _signed_out_if_signed_in(before, after, actor, world, client):
    assert after == before  # sign-out deletes only the session, which _table leaves out
    assert _signed_out(client)


def _rule_added(before, after, actor, world, client):
    assert _new_items(before, after, kind="domain", value="blocked.example", created_by=actor)


def _world_rule_removed(before, after, actor, world, client):
    assert [key for key in before if key not in after] == [("blocklist#rules", "rule#" + world["rule_id"])]


def _unchanged(before, after, actor, world, client):
    assert after == before


def _two_factor_setup_started(before, after, actor, world, client):
    key = (f"user#{actor}", "user")
    assert "totp_pending_secret" in after[key] and "totp_secret" not in after[key]
    assert {k: v for k, v in after.items() if k != key} == {k: v for k, v in before.items() if k != key}


def _two_factor_required(before, after, actor, world, client):
    assert after[("setting#require_two_factor", "setting")]["value"] == {"BOOL": True}


def _stats_retention_set(before, after, actor, world, client):
    assert after[("setting#stats_retention_days", "setting")]["value"] == {"N": "90"}


def _disable_target(ddb):
    _set(ddb, ("user#target", "user"), "disabled", {"BOOL": True})


def _disable_link(ddb):
    _set(ddb, ("matrix", "link"), "is_active", {"BOOL": False})


def _set(ddb, key, name, value):
    ddb.update_item(TableName=TABLE_NAME, Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
                    UpdateExpression="SET #n = :v", ExpressionAttributeNames={"#n": name},
                    ExpressionAttributeValues={":v": value})


# (method, path): the check of an allowed request. Every write of the matrix is here.
EFFECTS = {
    ("POST", "/links/new"): _link_created("https://example.com/new"),
    ("POST", "/links/matrix/disable"): _link_active(False),
    ("POST", "/links/matrix/enable"): _link_active(True),
    ("POST", "/users"): _user_created,
    ("POST", "/users/target/role"): _target_role_changed,
    ("POST", "/users/target/disable"): _target_disabled,
    ("POST", "/users/target/enable"): _target_enabled,
    ("POST", "/users/target/sessions/end"): _target_sessions_ended,
    ("POST", "/account/sessions/{session_digest}/end"): _target_still_signed_in,
    ("POST", "/account/sessions/end-others"): _others_signed_out,
    ("POST", "/tokens"): _token_created("script"),
    ("POST", "/tokens/{token_id}/revoke"): _target_token_revoked,
    ("POST", "/tokens/users/target/revoke"): _target_token_revoked,
    ("POST", "/logout"): _signed_out_if_signed_in,
    ("POST", "/login"): _unchanged,  # the signed-in are sent on; a failure only counts (not in _table)
    ("POST", "/account/password"): _unchanged,  # refused for everyone here: wrong current password
    ("POST", "/account/two-factor/setup"): _two_factor_setup_started,
    ("POST", "/account/two-factor/enable"): _unchanged,  # refused for everyone here: no setup, wrong code
    ("POST", "/account/two-factor/recovery-codes"): _unchanged,
    ("POST", "/account/two-factor/disable"): _unchanged,
    ("POST", "/login/two-factor"): _unchanged,
    ("POST", "/settings/security"): _two_factor_required,
    ("POST", "/api/links"): _link_created("https://example.com/api"),
    ("POST", "/links/import"): _unchanged,  # 422 for everyone here: no file
    ("POST", "/links/import/{job_id}/resume"): _unchanged,  # the job is done
    ("POST", "/api/links/import"): _unchanged,  # 415: a JSON body
    ("POST", "/api/links/import/{job_id}/resume"): _unchanged,  # 409: the job is done
    ("POST", "/shorten"): _link_created("https://example.com/api"),
    ("PATCH", "/api/links/matrix"): _link_active(False),
    ("POST", "/api/tokens"): _token_created("ci"),
    ("DELETE", "/api/tokens/{token_id}"): _target_token_revoked,
    ("DELETE", "/api/users/target/tokens"): _target_token_revoked,
    ("POST", "/api/users"): _user_created,
    ("PATCH", "/api/users/target"): _target_role_changed,
    ("POST", "/settings/blocklist"): _rule_added,
    ("POST", "/settings/blocklist/{rule_id}/remove"): _world_rule_removed,
    ("POST", "/api/blocklist"): _rule_added,
    ("DELETE", "/api/blocklist/{rule_id}"): _world_rule_removed,
    ("DELETE", "/api/users/target/sessions"): _target_sessions_ended,
    ("POST", "/links/matrix/edit"): _link_edited,
    ("POST", "/links/matrix/archive"): _link_archived(True),
    ("POST", "/links/matrix/unarchive"): _link_archived(False),
    ("POST", "/settings/stats"): _stats_retention_set,
}
# Writes whose effect is a change back: the world is arranged so that the change shows.
ARRANGE = {
    ("POST", "/links/matrix/enable"): _disable_link,
    ("POST", "/users/target/enable"): _disable_target,
    ("POST", "/links/matrix/unarchive"): lambda ddb: _set(ddb, ("matrix", "link"), "archived", {"BOOL": True}),
}
REFUSED = {LOGIN, 401, 403, 404, 422}


def _table(ddb):
    """Every item of the table, by (pk, sk), without what only records activity.

    Left out: sign-in failure counters (test_signin_limits.py covers them), audit records (a refused
    request is recorded too; tests/test_audit.py covers them), the acting user's
    session and token touches (last_seen_at, last_used_at), and the session items themselves,
    whose ends are checked through a signed-in client instead.
    """
    items = {}
    for page in ddb.get_paginator("scan").paginate(TableName=TABLE_NAME, ConsistentRead=True):
        for item in page["Items"]:
            key = (item["pk"]["S"], item["sk"]["S"])
            if key[0].startswith(("signin#", "audit#")) or key[1].startswith("session#"):
                continue
            items[key] = {name: value for name, value in item.items() if name not in ("last_seen_at", "last_used_at")}
    return items


def _check_effect(ddb, world, client, method, path, role, expected, before, actor):
    """The allowed write had its effect; a refused request or a read changed nothing."""
    after = _table(ddb)
    if method == "GET" or expected in REFUSED:
        assert after == before, f"{role} {method} {path} was answered {expected} but changed the table"
    else:
        EFFECTS[(method, path)](before, after, actor, world, client)


@pytest.mark.parametrize(("method", "path", "body", "role", "expected"), list(_cases(PAGES)))
def test_pages_by_role(client, store, ddb, world, method, path, body, role, expected):
    actor = sign_in_as(client, store, role) if role != "anonymous" else None
    ARRANGE.get((method, path), lambda _ddb: None)(ddb)
    before = _table(ddb)
    response = client.open(path.format(**world), method=method, data=body, headers={"Accept": "text/html"})
    if expected == LOGIN:
        assert response.status_code == 303
        assert response.headers["Location"].startswith("/login?next=")
    else:
        assert response.status_code == expected, response.get_data(as_text=True)[:500]
    if expected == 403:
        assert "role does not allow" in response.get_data(as_text=True)
    _check_effect(ddb, world, client, method, path, role, expected, before, actor)


@pytest.mark.parametrize(("method", "path", "body", "role", "expected"), list(_cases(API)))
def test_api_by_role(client, store, ddb, world, method, path, body, role, expected):
    headers = {} if role == "anonymous" else {"Authorization": f"Bearer {token_for(store, role)}"}
    actor = None if role == "anonymous" else f"{role}1"
    ARRANGE.get((method, path), lambda _ddb: None)(ddb)
    before = _table(ddb)
    response = client.open(path.format(**world), method=method, json=body, headers=headers)
    assert response.status_code == expected, response.get_data(as_text=True)[:500]
    if expected in (401, 403, 404):
        assert response.is_json and response.json["error"]
    _check_effect(ddb, world, client, method, path, role, expected, before, actor)


def test_every_write_of_the_matrix_has_its_effect_checked():
    writes = {(method, path) for method, path, *_ in PAGES + API if method != "GET"}
    assert writes == set(EFFECTS)


def test_writes_refused_to_a_role_change_nothing(client, store, world):
    sign_in_as(client, store, "viewer")
    client.post("/links/matrix/disable")
    client.post("/users/target/disable")
    client.post("/links/new", data={"url": "https://example.com/sneaky", "slug": "sneaky", "expiry": "never"})
    assert store.links.get("matrix")["is_active"] is True
    assert store.users.get("target")["disabled"] is False
    assert [link["id"] for link in store.links.list()[0]] == ["matrix"]


def test_every_route_is_in_the_matrix(app):
    covered = {(method, _rule_of(path)) for method, path, *_ in PAGES + API}
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes - covered == set()


def _rule_of(path):
    """The URL rule a concrete path of the matrix exercises."""
    replacements = {
        "/links/matrix": "/links/<short_id>",
        "/api/links/matrix": "/api/links/<short_id>",
        "/users/target": "/users/<username>",
        "/api/users/target": "/api/users/<username>",
        "/tokens/{token_id}": "/tokens/<token_id>",
        "/account/sessions/{session_digest}": "/account/sessions/<session_digest>",
        "/tokens/users/target": "/tokens/users/<username>",
        "/api/tokens/{token_id}": "/api/tokens/<token_id>",
        "/settings/blocklist/{rule_id}": "/settings/blocklist/<rule_id>",
        "/api/blocklist/{rule_id}": "/api/blocklist/<rule_id>",
        "/links/import/{job_id}": "/links/import/<job_id>",
        "/api/links/import/{job_id}": "/api/links/import/<job_id>",
    }
    for concrete, rule in sorted(replacements.items(), key=lambda item: -len(item[0])):
        if path.startswith(concrete):
            return rule + path[len(concrete):]
    return path
