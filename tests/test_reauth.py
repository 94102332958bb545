"""Asking again before the most sensitive changes (webapp/auth/reauth.py): adding an admin on the Users
page needs the adding admin's password or a current two-factor code, and guesses count like failed sign-ins."""
import pyotp

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME

NEW_ADMIN = {"username": "root2", "password": "a fresh admin's long passphrase", "role": "admin"}


def test_adding_an_admin_without_the_password_is_refused_and_writes_nothing(client, auth, store):
    auth.login()
    for confirm in ("", "not my password"):
        response = client.post("/users", data={**NEW_ADMIN, "confirm": confirm})
        assert response.status_code == 422
        assert "needs your password, or a current code from your app" in response.get_data(as_text=True)
    assert store.users.get("root2") is None


def test_adding_an_admin_with_the_password_works(client, auth, store):
    auth.login()
    assert client.post("/users", data={**NEW_ADMIN, "confirm": ADMIN_PASSWORD}).status_code == 303
    assert store.users.get("root2")["role"] == "admin"


def test_adding_an_admin_with_a_current_code_works_once(client, auth, store, clock):
    auth.login()
    secret = store.two_factor.start(ADMIN_USERNAME)
    clock.now = clock.now.replace(second=0, microsecond=0)
    store.two_factor.enable(ADMIN_USERNAME, pyotp.TOTP(secret).at(clock.now))
    clock.advance(30)
    code = pyotp.TOTP(secret).at(clock.now)
    assert client.post("/users", data={**NEW_ADMIN, "confirm": code}).status_code == 303
    replay = client.post("/users", data={**NEW_ADMIN, "username": "root3", "confirm": code})
    assert replay.status_code == 422 and store.users.get("root3") is None


def test_lesser_roles_are_not_asked(client, auth, store):
    auth.login()
    assert client.post("/users", data={**NEW_ADMIN, "role": "editor"}).status_code == 303
    assert store.users.get("root2")["role"] == "editor"


def test_wrong_confirmations_hit_the_accounts_limit(app, client, auth, store):
    auth.login()
    limit = app.config["SIGNIN_ACCOUNT_LIMIT"]
    for _ in range(limit):
        assert client.post("/users", data={**NEW_ADMIN, "confirm": "guess"}).status_code == 422
    locked = client.post("/users", data={**NEW_ADMIN, "confirm": ADMIN_PASSWORD})
    assert locked.status_code == 429 and store.users.get("root2") is None
