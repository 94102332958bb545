"""Users and roles: admins create, disable, re-enable and change roles in the UI, the API and the CLI."""
import pytest

from tests.conftest import ADMIN_USERNAME, ROLE_PASSWORD, TABLE_NAME, add_user, sign_in_as, token_for


def test_an_admin_adds_a_user_who_then_signs_in_with_that_role(app, client, auth, store):
    auth.login()
    response = client.post("/users", data={"username": "erin", "password": "erins-password", "role": "editor"})
    assert response.status_code == 303
    assert "erin" in client.get("/users").get_data(as_text=True)
    erin = app.test_client()
    assert erin.post("/login", data={"username": "erin", "password": "erins-password"}).status_code == 303
    assert erin.get("/links/new").status_code == 200
    assert erin.get("/users").status_code == 403


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "bad name", "password": "long-enough-pw", "role": "viewer"}, "letters, digits"),
        ({"username": "frank", "password": "short", "role": "viewer"}, "at least 8"),
        ({"username": "frank", "password": "long-enough-pw", "role": "owner"}, "Not a valid choice"),
        ({"username": ADMIN_USERNAME, "password": "long-enough-pw", "role": "viewer"}, "already exists"),
    ],
)
def test_adding_a_user_refuses_bad_input(client, auth, store, data, message):
    auth.login()
    response = client.post("/users", data=data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert store.users.get("frank") is None


def test_disabling_keeps_the_users_links_and_re_enabling_lets_them_back(app, client, auth, store):
    editor = app.test_client()
    sign_in_as(editor, store, "editor")
    editor.post("/links/new", data={"url": "https://example.com/kept", "slug": "kept", "expiry": "never"})
    auth.login()
    client.post("/users/editor1/disable")
    link = store.links.get("kept")
    assert link["created_by"] == "editor1" and link["is_active"] is True
    assert "kept" in client.get("/").get_data(as_text=True)
    assert editor.post("/login", data={"username": "editor1", "password": ROLE_PASSWORD}).status_code == 422
    client.post("/users/editor1/enable")
    assert editor.post("/login", data={"username": "editor1", "password": ROLE_PASSWORD}).status_code == 303


@pytest.mark.parametrize("action", ["disable", "role"])
def test_admins_cannot_lock_themselves_out(client, auth, store, action):
    auth.login()
    response = client.post(f"/users/{ADMIN_USERNAME}/{action}", data={"role": "viewer"})
    assert response.status_code == 409
    assert store.users.get(ADMIN_USERNAME)["role"] == "admin" and not store.users.get(ADMIN_USERNAME)["disabled"]


def test_changing_the_role_of_a_missing_user_is_404(client, auth):
    auth.login()
    assert client.post("/users/nobody/role", data={"role": "viewer"}).status_code == 404


def test_users_without_a_role_are_admins(client, ddb, store):
    """Users stored before roles existed could do everything; they keep that."""
    from werkzeug.security import generate_password_hash

    ddb.put_item(TableName=TABLE_NAME, Item={
        "pk": {"S": "user#old"}, "sk": {"S": "user"}, "list_pk": {"S": "users"}, "list_sk": {"S": "old"},
        "password_hash": {"S": generate_password_hash("old-password")}, "created_at": {"S": "2026-01-01T00:00:00Z"}})
    assert store.users.get("old")["role"] == "admin"
    assert client.post("/login", data={"username": "old", "password": "old-password"}).status_code == 303
    assert client.get("/users").status_code == 200


def test_the_users_api(client, store):
    admin = {"Authorization": f"Bearer {token_for(store, 'admin')}"}
    created = client.post("/api/users", json={"username": "gina", "password": "ginas-password", "role": "viewer"},
                          headers=admin)
    assert created.status_code == 201
    assert created.json == {"username": "gina", "role": "viewer", "disabled": False, "created_at": created.json["created_at"]}
    assert client.post("/api/users", json={"username": "gina", "password": "ginas-password", "role": "viewer"},
                       headers=admin).status_code == 409
    changed = client.patch("/api/users/gina", json={"role": "editor", "disabled": True}, headers=admin)
    assert changed.status_code == 200 and changed.json["role"] == "editor" and changed.json["disabled"] is True
    assert {u["username"] for u in client.get("/api/users", headers=admin).json["users"]} >= {"gina", "admin1"}
    assert client.patch("/api/users/admin1", json={"disabled": True}, headers=admin).status_code == 409
    assert client.patch("/api/users/nobody", json={"role": "viewer"}, headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "h", "password": "h-walks-the-quiet-dog", "role": "boss"}, "role"),
        ({"username": "h h", "password": "hs-password", "role": "viewer"}, "username"),
        ({"username": "h", "password": "short", "role": "viewer"}, "password"),
    ],
)
def test_the_users_api_refuses_bad_input(client, store, body, field):
    admin = {"Authorization": f"Bearer {token_for(store, 'admin')}"}
    response = client.post("/api/users", json=body, headers=admin)
    assert response.status_code == 422 and response.json["field"] == field


def test_a_read_token_of_an_admin_cannot_manage_users(client, store):
    read = {"Authorization": f"Bearer {token_for(store, 'admin', scope='read')}"}
    assert client.get("/api/users", headers=read).status_code == 403


def test_cli_creates_users_with_a_role_and_changes_them(app, store):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", "ivan", "--password", "ivans-password", "--role", "editor"])
    assert result.exit_code == 0, result.output
    assert store.users.get("ivan")["role"] == "editor"
    assert runner.invoke(args=["set-role", "ivan", "viewer"]).exit_code == 0
    assert store.users.get("ivan")["role"] == "viewer"
    assert runner.invoke(args=["disable-user", "ivan"]).exit_code == 0
    assert store.users.get("ivan")["disabled"] is True
    assert runner.invoke(args=["enable-user", "ivan"]).exit_code == 0
    assert store.users.get("ivan")["disabled"] is False
    session_id = store.sessions.create("ivan", 3600)
    assert runner.invoke(args=["set-password", "ivan", "--password", "ivans-new-password"]).exit_code == 0
    assert store.users.verify_password("ivan", "ivans-new-password")
    assert store.sessions.load("ivan", session_id, 3600) is None
    missing = runner.invoke(args=["set-role", "nobody", "viewer"])
    assert missing.exit_code != 0 and "does not exist" in missing.output
    bad = runner.invoke(args=["create-user", "jo", "--password", "jos-password", "--role", "owner"])
    assert bad.exit_code != 0 and store.users.get("jo") is None


def test_cli_tokens_have_a_scope_and_an_expiry(app, store):
    add_user(store, "kim", "viewer")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-token", "kim", "--name", "report", "--scope", "read", "--days", "7"])
    assert result.exit_code == 0, result.output
    caller = store.tokens.resolve(result.output.strip().splitlines()[-1])
    assert caller["scope"] == "read" and caller["role"] == "viewer"
    refused = runner.invoke(args=["create-token", "kim", "--name", "x", "--scope", "write"])
    assert refused.exit_code != 0 and "only read" in refused.output
