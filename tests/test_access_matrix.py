"""Every route, visited as anonymous, viewer, editor and admin: what each may do.

The matrix is checked against the app's URL map, so a new route cannot be added without saying
who may use it.
"""
import pytest

from tests.conftest import add_user, sign_in_as, token_for

ROLES = ("anonymous", "viewer", "editor", "admin")
LOGIN = "login"  # anonymous visitors of a page are sent to sign in (303 to /login?next=...)

# (method, path, form or JSON body, expected status for anonymous, viewer, editor, admin)
PAGES = [
    ("GET", "/", None, (LOGIN, 200, 200, 200)),
    ("GET", "/links/new", None, (LOGIN, 403, 200, 200)),
    ("POST", "/links/new", {"url": "https://example.com/new", "expiry": "never"}, (LOGIN, 403, 303, 303)),
    ("GET", "/links/matrix", None, (LOGIN, 200, 200, 200)),
    ("POST", "/links/matrix/disable", {}, (LOGIN, 403, 303, 303)),
    ("POST", "/links/matrix/enable", {}, (LOGIN, 403, 303, 303)),
    ("GET", "/users", None, (LOGIN, 403, 403, 200)),
    ("POST", "/users", {"username": "newbie", "password": "newbie-password", "role": "viewer"}, (LOGIN, 403, 403, 303)),
    ("POST", "/users/target/role", {"role": "editor"}, (LOGIN, 403, 403, 303)),
    ("POST", "/users/target/disable", {}, (LOGIN, 403, 403, 303)),
    ("POST", "/users/target/enable", {}, (LOGIN, 403, 403, 303)),
    ("GET", "/tokens", None, (LOGIN, 200, 200, 200)),
    ("POST", "/tokens", {"name": "script", "scope": "read", "days": "30"}, (LOGIN, 200, 200, 200)),
    # The target user's token: only admins may revoke someone else's (others see no such token).
    ("POST", "/tokens/{token_id}/revoke", {}, (LOGIN, 404, 404, 303)),
    ("GET", "/account/password", None, (LOGIN, 200, 200, 200)),
    ("POST", "/logout", {}, (303, 303, 303, 303)),
    ("GET", "/login", None, (200, 303, 303, 303)),  # the signed-in are sent on to the list
    ("POST", "/login", {"username": "nobody", "password": "wrong-password"}, (422, 303, 303, 303)),
    ("POST", "/account/password", {"current": "wrong-password", "new": "n3w-password", "confirm": "n3w-password"},
     (LOGIN, 422, 422, 422)),
    # Single sign-on is off unless configured (tests/test_oidc.py covers it on).
    ("GET", "/login/sso", None, (404, 404, 404, 404)),
    ("GET", "/login/sso/callback", None, (404, 404, 404, 404)),
    ("GET", "/health", None, (200, 200, 200, 200)),
]
API = [
    ("POST", "/api/links", {"url": "https://example.com/api"}, (401, 403, 201, 201)),
    ("POST", "/shorten", {"url": "https://example.com/api"}, (401, 403, 201, 201)),
    ("GET", "/api/links", None, (401, 200, 200, 200)),
    ("GET", "/api/links/matrix", None, (401, 200, 200, 200)),
    ("GET", "/api/links/matrix/stats", None, (401, 200, 200, 200)),
    ("PATCH", "/api/links/matrix", {"is_active": False}, (401, 403, 200, 200)),
    ("GET", "/api/tokens", None, (401, 200, 200, 200)),
    ("POST", "/api/tokens", {"name": "ci", "scope": "read"}, (401, 403, 201, 201)),
    ("DELETE", "/api/tokens/{token_id}", None, (401, 403, 404, 204)),
    ("GET", "/api/users", None, (401, 403, 403, 200)),
    ("POST", "/api/users", {"username": "newbie", "password": "newbie-password", "role": "viewer"}, (401, 403, 403, 201)),
    ("PATCH", "/api/users/target", {"role": "editor"}, (401, 403, 403, 200)),
]


def _cases(table):
    for method, path, body, expected in table:
        for role, status in zip(ROLES, expected):
            yield pytest.param(method, path, body, role, status, id=f"{role}-{method}-{path}")


@pytest.fixture
def world(store):
    """A link, and a viewer called target who has a token, for the routes to act on."""
    store.links.create("https://example.com/", created_by="alice", slug="matrix")
    add_user(store, "target", "viewer")
    _, token_id = store.tokens.create("target", "target's", scope="read")
    return {"token_id": token_id}


@pytest.mark.parametrize(("method", "path", "body", "role", "expected"), list(_cases(PAGES)))
def test_pages_by_role(client, store, world, method, path, body, role, expected):
    if role != "anonymous":
        sign_in_as(client, store, role)
    path = path.format(**world)
    response = client.open(path, method=method, data=body, headers={"Accept": "text/html"})
    if expected == LOGIN:
        assert response.status_code == 303
        assert response.headers["Location"].startswith("/login?next=")
    else:
        assert response.status_code == expected, response.get_data(as_text=True)[:500]
    if expected == 403:
        assert "role does not allow" in response.get_data(as_text=True)


@pytest.mark.parametrize(("method", "path", "body", "role", "expected"), list(_cases(API)))
def test_api_by_role(client, store, world, method, path, body, role, expected):
    headers = {} if role == "anonymous" else {"Authorization": f"Bearer {token_for(store, role)}"}
    response = client.open(path.format(**world), method=method, json=body, headers=headers)
    assert response.status_code == expected, response.get_data(as_text=True)[:500]
    if expected in (401, 403, 404):
        assert response.is_json and response.json["error"]


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
        "/api/tokens/{token_id}": "/api/tokens/<token_id>",
    }
    for concrete, rule in sorted(replacements.items(), key=lambda item: -len(item[0])):
        if path.startswith(concrete):
            return rule + path[len(concrete):]
    return path
