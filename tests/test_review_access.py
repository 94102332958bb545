"""An outside review of issue 15's access hardening: each test is an attack or an AWS behaviour that
the code first got wrong (see the commit that added it)."""
import pytest
from botocore.exceptions import ClientError

from tests.conftest import add_user


def _cancelled(reasons):
    return ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                        "CancellationReasons": [{"Code": code} for code in reasons]}, "TransactWriteItems")


# Concurrent demotion as DynamoDB really does it: two transactions that touch the same two items can
# BOTH be cancelled with TransactionConflict (each found the other in progress). Retrying the losing
# attempt is what makes exactly one of the two opposite changes happen.


def test_two_admins_demoting_each_other_when_dynamodb_cancels_both_leaves_exactly_one_change(store, monkeypatch):
    from webapp.exceptions import CallerNotAdmin

    add_user(store, "ann", "admin")
    add_user(store, "ben", "admin")
    real, cancelled_once = store.table.client.transact_write_items, set()

    def transact(**kwargs):
        caller = kwargs["TransactItems"][0]["ConditionCheck"]["Key"]["pk"]["S"]
        if caller not in cancelled_once:  # each change's first try met the other one in flight
            cancelled_once.add(caller)
            raise _cancelled(["TransactionConflict", "TransactionConflict"])
        return real(**kwargs)

    monkeypatch.setattr(store.table.client, "transact_write_items", transact)
    # Both passed every check of the API (they are admins), and both transactions were cancelled.
    store.users.set_role("ben", "viewer", by="ann")
    with pytest.raises(CallerNotAdmin):
        store.users.set_role("ann", "viewer", by="ben")
    assert (store.users.get("ann")["role"], store.users.get("ben")["role"]) == ("admin", "viewer")


def test_a_change_that_keeps_meeting_other_transactions_is_refused_not_retried_for_ever(app, store, monkeypatch):
    from webapp.exceptions import ChangeConflict

    add_user(store, "ann", "admin")
    add_user(store, "ben", "editor")
    tries = []

    def transact(**kwargs):
        tries.append(1)
        raise _cancelled(["None", "TransactionConflict"])

    monkeypatch.setattr(store.table.client, "transact_write_items", transact)
    with pytest.raises(ChangeConflict):
        store.users.set_role("ben", "viewer", by="ann")
    assert 1 < len(tries) <= 5


# The two-factor pending marker lives in the signed cookie for 5 minutes. A revocation meanwhile (the
# victim changes the password, an admin ends the sessions) must void it too: otherwise an attacker who
# phished the password finishes the second step, or enrols THEIR authenticator on the victim's account
# when admins require two-factor, after the victim has already changed the password.


def _require_two_factor(store):
    store.settings.set("require_two_factor", True)


def _totp_now(secret):
    import pyotp

    from webapp import clock

    return pyotp.TOTP(secret).at(clock.utcnow())


@pytest.mark.parametrize("revoke", [
    lambda store: store.users.set_password("bob", "a-brand-new-long-passphrase"),
    lambda store: store.sessions.end_all("bob"),
])
def test_a_pending_enrolment_dies_with_a_password_change(app, store, revoke):
    from tests.conftest import ROLE_PASSWORD

    _require_two_factor(store)
    add_user(store, "bob", "editor")
    attacker = app.test_client()
    response = attacker.post("/login", data={"username": "bob", "password": ROLE_PASSWORD})
    assert response.headers["Location"] == "/account/two-factor/setup"
    revoke(store)  # the victim notices and changes the password (or an admin ends bob's sessions)
    attacker.post("/account/two-factor/setup")
    secret = store.two_factor.state("bob").pending_secret
    attacker.post("/account/two-factor/enable", data={"code": _totp_now(secret) if secret else "000000"})
    assert not store.two_factor.state("bob").enabled  # the attacker's phone is not bob's second factor
    assert attacker.get("/", headers={"Accept": "text/html"}).status_code != 200


def test_a_pending_second_step_dies_with_a_password_change(app, store, clock):
    from tests.conftest import ROLE_PASSWORD

    add_user(store, "bob", "editor")
    secret = store.two_factor.start("bob")
    assert store.two_factor.enable("bob", _totp_now(secret))
    clock.advance(30)  # the setup's code is spent; the attacker has the phone's next one (shoulder, phishing page)
    attacker = app.test_client()
    response = attacker.post("/login", data={"username": "bob", "password": ROLE_PASSWORD})
    assert response.headers["Location"] == "/login/two-factor"
    store.users.set_password("bob", "a-brand-new-long-passphrase")  # the victim's change
    attacker.post("/login/two-factor", data={"code": _totp_now(secret)})
    assert attacker.get("/", headers={"Accept": "text/html"}).status_code != 200


# "Creating an admin ... asks for the password or the second factor again" (issue 15): without it a
# stolen admin cookie adds an admin the thief knows the password of, which outlives every revocation
# of the victim's sessions (a password change, sign out everywhere).

STRONG = "plum-harbour-violin-42-quietly"


def test_a_stolen_admin_session_cannot_add_an_admin_without_the_password(client, auth, store):
    from tests.conftest import ADMIN_PASSWORD

    auth.login()
    response = client.post("/users", data={"username": "mallory", "password": STRONG, "role": "admin"})
    assert response.status_code == 422
    assert "needs your password" in response.get_data(as_text=True)
    assert store.users.get("mallory") is None
    wrong = client.post("/users", data={"username": "mallory", "password": STRONG, "role": "admin", "confirm": "guess"})
    assert wrong.status_code == 422 and store.users.get("mallory") is None
    right = client.post("/users", data={"username": "mallory", "password": STRONG, "role": "admin", "confirm": ADMIN_PASSWORD})
    assert right.status_code == 303
    assert store.users.get("mallory")["role"] == "admin"
    # An editor or a viewer needs no password: they cannot manage users.
    assert client.post("/users", data={"username": "erin", "password": STRONG, "role": "editor"}).status_code == 303


def test_a_stolen_admin_session_cannot_promote_to_admin_without_the_password(app, client, auth, store):
    from tests.conftest import ADMIN_PASSWORD

    add_user(store, "ben", "editor")
    auth.login()
    assert client.post("/users/ben/role", data={"role": "admin"}).status_code == 422
    assert store.users.get("ben")["role"] == "editor"
    assert client.post("/users/ben/role", data={"role": "viewer"}).status_code == 303  # not to admin: no password
    assert client.post("/users/ben/role", data={"role": "admin", "confirm": ADMIN_PASSWORD}).status_code == 303
    assert store.users.get("ben")["role"] == "admin"


def test_guessing_the_password_on_the_users_page_counts_like_failed_sign_ins(app, client, auth, store):
    add_user(store, "ben", "editor")
    auth.login()
    for _ in range(app.config["SIGNIN_ACCOUNT_LIMIT"]):
        assert client.post("/users/ben/role", data={"role": "admin", "confirm": "a-guess"}).status_code == 422
    assert client.post("/users/ben/role", data={"role": "admin", "confirm": "another-guess"}).status_code == 429


# DynamoDB's default reads are eventually consistent: a read just after a write may come from a replica
# that has not seen it yet. The session and token checks must read strongly consistent, or a password
# change, a disable or a revoke does not hold on the very next request as they promise.


def _lagging_replica(store, monkeypatch, operation):
    """From now on, eventually consistent `operation` calls answer as the table was at this moment."""
    real = getattr(store.table.client, operation)
    snapshot = {}

    def lagging(**kwargs):
        strong = kwargs.get("ConsistentRead") or any(
            spec.get("ConsistentRead") for spec in kwargs.get("RequestItems", {}).values())
        key = repr(sorted(kwargs.items()))
        if strong:
            return real(**kwargs)
        if key not in snapshot:
            raise AssertionError(f"an eventually consistent {operation} nobody read before: {kwargs}")
        return snapshot[key]

    def remember(**kwargs):
        snapshot[repr(sorted(kwargs.items()))] = real(**kwargs)
        return snapshot[repr(sorted(kwargs.items()))]

    return remember, lagging


def test_a_session_ended_a_moment_ago_is_refused_even_by_a_lagging_replica(store, monkeypatch):
    from tests.conftest import ADMIN_USERNAME

    session_id = store.sessions.create(ADMIN_USERNAME, 3600)
    remember, lagging = _lagging_replica(store, monkeypatch, "batch_get_item")
    monkeypatch.setattr(store.table.client, "batch_get_item", remember)
    assert store.sessions.load(ADMIN_USERNAME, session_id, 3600) is not None  # the replica saw this
    store.users.set_password(ADMIN_USERNAME, "a-brand-new-long-passphrase")
    monkeypatch.setattr(store.table.client, "batch_get_item", lagging)
    assert store.sessions.load(ADMIN_USERNAME, session_id, 3600) is None


@pytest.mark.parametrize("revoke", [
    lambda store, token_id: store.tokens.revoke(token_id),
    lambda store, token_id: store.users.set_disabled("ben", True),
])
def test_a_token_revoked_a_moment_ago_is_refused_even_by_a_lagging_replica(store, monkeypatch, clock, revoke):
    add_user(store, "ben", "editor")
    plaintext, token_id = store.tokens.create("ben", "lagging")
    client = store.table.client
    real_get, real_batch = client.get_item, client.batch_get_item
    remember_get, lagging_get = _lagging_replica(store, monkeypatch, "get_item")
    remember_batch, lagging_batch = _lagging_replica(store, monkeypatch, "batch_get_item")
    monkeypatch.setattr(client, "get_item", remember_get)
    monkeypatch.setattr(client, "batch_get_item", remember_batch)
    assert store.tokens.resolve(plaintext) is not None  # (its last use is recorded now: no write below)
    monkeypatch.setattr(client, "get_item", real_get)
    monkeypatch.setattr(client, "batch_get_item", real_batch)
    revoke(store, token_id)
    monkeypatch.setattr(client, "get_item", lagging_get)
    monkeypatch.setattr(client, "batch_get_item", lagging_batch)
    assert store.tokens.resolve(plaintext) is None


# Races that only a conditional write stops; each test lands the other request between the read and
# the write (mutation testing showed nothing failed when these conditions were dropped).


def test_touching_a_session_signed_out_a_moment_ago_does_not_bring_it_back(store, ddb, clock, monkeypatch):
    from tests.conftest import ADMIN_USERNAME, TABLE_NAME
    from webapp.store.sessions import session_key

    session_id = store.sessions.create(ADMIN_USERNAME, 3600)
    clock.advance(120)  # stale enough to be touched
    real = store.table.batch_get

    def read_then_sign_out(keys, consistent=False):
        items = real(keys, consistent)
        store.sessions.end(ADMIN_USERNAME, session_id)  # a sign-out in another tab lands here
        return items

    monkeypatch.setattr(store.table, "batch_get", read_then_sign_out)
    store.sessions.load(ADMIN_USERNAME, session_id, 3600)
    monkeypatch.undo()
    # No half item (key and last_seen_at only) came back: it would break the sessions page and sign-in.
    assert "Item" not in ddb.get_item(TableName=TABLE_NAME, Key=session_key(ADMIN_USERNAME, session_id))
    assert store.sessions.list(ADMIN_USERNAME, 3600) == []


def test_a_second_enable_from_a_stale_read_does_not_replace_the_factor(store, clock, monkeypatch):
    add_user(store, "bob", "editor")
    secret = store.two_factor.start("bob")
    stale = store.two_factor._read("bob")  # another tab read the pending setup, then this one finished it
    codes = store.two_factor.enable("bob", _totp_now(secret))
    assert codes
    monkeypatch.setattr(store.two_factor, "_read", lambda username: stale)
    assert store.two_factor.enable("bob", _totp_now(secret)) is None
    monkeypatch.undo()
    assert store.two_factor.use_recovery_code("bob", codes[0])  # the codes shown first still work


def test_an_admins_disable_landing_during_an_sso_sign_in_stands(store, monkeypatch):
    username = "pat@example.org"
    store.users.upsert_sso(username, "editor", "https://idp.example", "sub-1")
    store.users.disable_sso(username, "https://idp.example", "sub-1")  # the provider dropped pat's groups
    real, landed = store.users._get_user_item, []

    def read_then_admin_disables(name, consistent=False):
        item = real(name, consistent)
        if not landed:
            landed.append(True)
            store.users.set_disabled(name, True)  # an admin's own disable: it is theirs now
        return item

    monkeypatch.setattr(store.users, "_get_user_item", read_then_admin_disables)
    store.users.upsert_sso(username, "editor", "https://idp.example", "sub-1")  # pat is back in a group
    monkeypatch.undo()
    assert store.users.get(username)["disabled"] is True


# Defect 7's rule, "conditional on the caller still being an enabled admin", holds for changes but not
# for adding a user: an admin demoted (or disabled) while their request is in flight still added an
# admin, keeping admin rights through that account.


def test_an_admin_demoted_while_adding_an_admin_adds_nobody(app, store, monkeypatch):
    from webapp import access

    add_user(store, "ann", "admin")
    add_user(store, "ben", "admin")
    token, _ = store.tokens.create("ben", "race")
    real, landed = access.check_username, []

    def check_then_demotion_lands(name):
        if not landed:  # ben's request passed the token and role checks; ann's demotion of ben lands now
            landed.append(True)
            store.users.set_role("ben", "viewer", by="ann")
        return real(name)

    monkeypatch.setattr(access, "check_username", check_then_demotion_lands)
    response = app.test_client().post("/api/users", json={"username": "carl", "password": STRONG, "role": "admin"},
                                      headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 409, response.get_json()
    assert store.users.get("carl") is None


def test_a_disabled_admin_cannot_add_a_user_through_the_store(store):
    from webapp.exceptions import CallerNotAdmin, UserExists

    add_user(store, "ben", "admin")
    store.users.set_disabled("ben", True)
    with pytest.raises(CallerNotAdmin):
        store.users.create("carl", STRONG, role="admin", by="ben")
    assert store.users.get("carl") is None
    with pytest.raises(UserExists):
        store.users.create("ben", STRONG, role="viewer", by="alice")
    assert store.users.create("carl", STRONG, role="viewer", by="alice")["role"] == "viewer"


def test_an_admin_adding_a_user_with_their_own_name_is_told_it_exists(app, store):
    token, _ = store.tokens.create("alice", "own name")
    response = app.test_client().post("/api/users", json={"username": "alice", "password": STRONG, "role": "viewer"},
                                      headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 409 and response.get_json()["field"] == "username"


# disabled_by: single sign-on may enable again only an account that it disabled itself. An admin who
# disables such an account through the API (it is disabled already, so the API skipped the write)
# must make the disable theirs, as the users page does, or the person's next SSO sign-in enables it.


def test_an_admins_api_disable_of_an_sso_disabled_account_is_the_admins(app, store):
    username, issuer = "pat@example.org", "https://idp.example"
    store.users.upsert_sso(username, "editor", issuer, "sub-1")
    store.users.disable_sso(username, issuer, "sub-1")  # the provider dropped pat's groups
    token, _ = store.tokens.create("alice", "admin")
    response = app.test_client().patch(f"/api/users/{username}", json={"disabled": True},
                                       headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    user = store.users.upsert_sso(username, "editor", issuer, "sub-1")  # pat is back in a group
    assert user["disabled"] is True
    assert store.users.get(username)["disabled"] is True


# The cap on live sessions (20 a user) was applied before each new session was written, from a read
# that concurrent sign-ins had not reached yet: 60 sign-ins at once left 35 live sessions.


@pytest.mark.integration
@pytest.mark.skipif(__import__("tests.support.dynamodb_local", fromlist=["NO_JAVA"]).NO_JAVA,
                    reason="DynamoDB Local needs Java 11+")
def test_sign_ins_at_the_same_moment_stay_within_the_session_cap(dynamodb_local, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from tests.conftest import make_app
    from tests.support.dynamodb_local import app_on_fresh_table
    from webapp.store.sessions import MAX_SESSIONS_PER_USER

    app = app_on_fresh_table(dynamodb_local, monkeypatch, make_app)
    store = app.extensions["store"]
    store.table.client = dynamodb_local.client(max_pool_connections=16)
    store.users.create("ed", role="editor")
    with ThreadPoolExecutor(16) as pool:
        session_ids = list(pool.map(lambda _: store.sessions.create("ed", 3600), range(60)))
    live = [sid for sid in session_ids if store.sessions.load("ed", sid, 3600)]
    assert 0 < len(live) <= MAX_SESSIONS_PER_USER
