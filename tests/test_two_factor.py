"""Two-factor sign-in (webapp/auth/mfa.py, webapp/store/mfa.py): setting it up, signing in with a TOTP
code or a recovery code, replays, limits, the admins' requirement, and confirming with a code (reauth)."""
import re
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pyotp
import pytest

from local_stack.template import table_properties
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, ROLE_PASSWORD, TABLE_NAME, add_user, make_app, sign_in_as
from tests.support.dynamodb_local import NO_JAVA, app_on_fresh_table
from webapp import audit
from webapp.auth import reauth

HTML = {"Accept": "text/html"}


@pytest.fixture(autouse=True)
def step_start(clock):
    """Each test starts at the beginning of a 30 s step (and of a sign-in window), so codes do not roll over mid-test."""
    clock.now = clock.now.replace(minute=0, second=0, microsecond=0)
    return clock


@pytest.fixture
def audited(monkeypatch):
    """The audit records made during the test, as (action, outcome, details) (the records are still made)."""
    calls, real = [], audit.record

    def record(action, **kwargs):
        calls.append((action, kwargs.get("outcome", "ok"), kwargs))
        return real(action, **kwargs)

    monkeypatch.setattr(audit, "record", record)
    return calls


def _code(secret, clock, offset=0):
    return pyotp.TOTP(secret).at(clock.now, counter_offset=offset)


def _signed_in(client):
    return client.get("/", headers=HTML).status_code == 200


def _enrol(client, store, clock, username=ADMIN_USERNAME):
    """Set up two-factor through the pages for the client's (signed-in or pending) user; its secret and codes."""
    assert client.post("/account/two-factor/setup").status_code == 303
    secret = store.two_factor.state(username).pending_secret
    response = client.post("/account/two-factor/enable", data={"code": _code(secret, clock)})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    codes = re.findall(r"<li><code>([a-z2-7-]{19})</code></li>", response.get_data(as_text=True))
    assert len(codes) == 10
    return secret, codes


@pytest.fixture
def enrolled(app, client, auth, store, clock):
    """ADMIN_USERNAME with two-factor on, signed out, half a minute later (the setup's code is spent)."""
    auth.login()
    secret, codes = _enrol(client, store, clock)
    auth.logout()
    clock.advance(30)
    return secret, codes


def _password_step(auth, **kwargs):
    response = auth.login(**kwargs)
    assert response.status_code == 303
    assert response.headers["Location"] == "/login/two-factor"
    return response


def _second_step(client, code):
    return client.post("/login/two-factor", data={"code": code})


# Setting it up.


def test_setup_finishes_only_with_a_right_code(client, auth, store, clock, audited):
    auth.login()
    assert "off" in client.get("/account/two-factor").get_data(as_text=True)
    assert client.post("/account/two-factor/setup").headers["Location"] == "/account/two-factor/setup"
    page = client.get("/account/two-factor/setup")
    text = page.get_data(as_text=True)
    secret = store.two_factor.state(ADMIN_USERNAME).pending_secret
    assert "<svg" in text and "<path" in text  # the QR code is drawn in the page: no image is fetched
    assert not re.search(r"""(src|href)=["']https?:""", text)
    assert " ".join(secret[i:i + 4] for i in range(0, len(secret), 4)) in text  # the key, to type by hand
    assert page.headers["Cache-Control"] == "no-store"

    wrong = client.post("/account/two-factor/enable", data={"code": _code(secret, clock, offset=5)})
    assert wrong.status_code == 422
    assert "That code is wrong" in wrong.get_data(as_text=True)
    assert not store.two_factor.state(ADMIN_USERNAME).enabled

    right = client.post("/account/two-factor/enable", data={"code": _code(secret, clock)})
    assert right.status_code == 200
    assert right.headers["Cache-Control"] == "no-store"
    state = store.two_factor.state(ADMIN_USERNAME)
    assert state.enabled and state.pending_secret is None and state.recovery_codes_left == 10
    assert ("mfa.enable", "ok") in [(action, outcome) for action, outcome, _ in audited]


def test_the_recovery_codes_are_stored_only_as_hashes(ddb, client, auth, store, clock):
    auth.login()
    _, codes = _enrol(client, store, clock)
    stored = ddb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": f"user#{ADMIN_USERNAME}"}, "sk": {"S": "user"}})["Item"]
    item_text = repr(stored)
    assert len(stored["recovery_codes"]["SS"]) == 10
    assert not any(code in item_text or code.replace("-", "") in item_text for code in codes)


def test_the_secret_is_never_in_the_list_index(ddb, client, auth, store, clock):
    auth.login()
    _enrol(client, store, clock)
    index, = table_properties()["GlobalSecondaryIndexes"]
    assert not {"totp_secret", "totp_pending_secret", "recovery_codes"} & set(index["Projection"]["NonKeyAttributes"])
    listed = ddb.query(TableName=TABLE_NAME, IndexName="by_list", KeyConditionExpression="list_pk = :p",
                       ExpressionAttributeValues={":p": {"S": "users"}})["Items"]
    assert listed and all("totp_secret" not in item and "recovery_codes" not in item for item in listed)


# Signing in.


def test_sign_in_with_a_totp_code(client, auth, enrolled, clock, audited):
    secret, _ = enrolled
    _password_step(auth, next="/links/new")
    assert not _signed_in(client)
    assert client.get("/login/two-factor").status_code == 200
    response = _second_step(client, _code(secret, clock))
    assert response.status_code == 303
    assert response.headers["Location"] == "/links/new"
    assert _signed_in(client)
    assert ("signin.second_factor", "ok", "totp") in [(a, o, d.get("factor")) for a, o, d in audited]


def test_the_code_step_lands_on_the_dashboard_without_a_next(client, auth, enrolled, clock):
    secret, _ = enrolled
    _password_step(auth)
    response = _second_step(client, _code(secret, clock))
    assert response.status_code == 303 and response.headers["Location"] == "/dashboard"
    assert client.get("/login/two-factor").headers["Location"] == "/dashboard"  # signed in already


def test_a_code_from_the_step_before_or_after_works(client, auth, enrolled, clock):
    secret, _ = enrolled
    clock.advance(60)  # the step before is not the setup's (spent) step
    _password_step(auth)
    assert _second_step(client, _code(secret, clock, offset=-1)).status_code == 303
    auth.logout()
    _password_step(auth)
    assert _second_step(client, _code(secret, clock, offset=1)).status_code == 303


def test_a_code_two_steps_away_is_refused(client, auth, enrolled, clock):
    secret, _ = enrolled
    _password_step(auth)
    assert _second_step(client, _code(secret, clock, offset=2)).status_code == 422
    assert not _signed_in(client)


def test_a_replayed_code_is_refused(app, client, auth, enrolled, clock, audited):
    secret, _ = enrolled
    code = _code(secret, clock)
    _password_step(auth)
    assert _second_step(client, code).status_code == 303
    auth.logout()
    _password_step(auth)
    replay = _second_step(client, code)
    assert replay.status_code == 422
    assert "already used" in replay.get_data(as_text=True)
    assert not _signed_in(client)
    assert ("signin.second_factor", "failed", "totp") in [(a, o, d.get("factor")) for a, o, d in audited]
    # An older step's code is refused too once a later one was used; the next step's code works.
    assert _second_step(client, _code(secret, clock, offset=-1)).status_code == 422
    clock.advance(30)
    assert _second_step(client, _code(secret, clock)).status_code == 303


def test_the_setup_code_cannot_sign_in(client, auth, store, clock):
    auth.login()
    assert client.post("/account/two-factor/setup").status_code == 303
    secret = store.two_factor.state(ADMIN_USERNAME).pending_secret
    code = _code(secret, clock)
    assert client.post("/account/two-factor/enable", data={"code": code}).status_code == 200
    auth.logout()
    _password_step(auth)
    assert _second_step(client, code).status_code == 422


def test_a_recovery_code_works_once_only(client, auth, store, enrolled, audited):
    _, codes = enrolled
    _password_step(auth)
    response = _second_step(client, codes[0].upper().replace("-", " "))  # as typed: case and spacing do not matter
    assert response.status_code == 303
    assert _signed_in(client)
    assert store.two_factor.state(ADMIN_USERNAME).recovery_codes_left == 9
    assert ("signin.second_factor", "ok", "recovery") in [(a, o, d.get("factor")) for a, o, d in audited]
    auth.logout()
    _password_step(auth)
    assert _second_step(client, codes[0]).status_code == 422
    assert not _signed_in(client)
    assert ("signin.second_factor", "failed", "recovery") in [(a, o, d.get("factor")) for a, o, d in audited]
    assert _second_step(client, codes[1]).status_code == 303


# At the same moment, on DynamoDB Local: moto's conditional writes are not atomic across threads.

THREADS = 16


@pytest.fixture
def local_store(dynamodb_local, monkeypatch, clock):
    """A store on a fresh table of DynamoDB Local, with ADMIN_USERNAME's two-factor on; its secret and codes."""
    app = app_on_fresh_table(dynamodb_local, monkeypatch, make_app)
    store = app.extensions["store"]
    store.users.create(ADMIN_USERNAME, ADMIN_PASSWORD)
    secret = store.two_factor.start(ADMIN_USERNAME)
    codes = store.two_factor.enable(ADMIN_USERNAME, _code(secret, clock))
    clock.advance(30)
    return store, secret, codes


def _all_at_once(task):
    """task() on THREADS threads released together; the results."""
    barrier = Barrier(THREADS)

    def run(_n):
        barrier.wait(timeout=30)
        return task()

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(run, range(THREADS)))


@pytest.mark.integration
@pytest.mark.skipif(NO_JAVA, reason="DynamoDB Local needs Java 11+")
def test_one_recovery_code_sent_many_times_at_once_signs_in_once(local_store):
    store, _, codes = local_store
    results = _all_at_once(lambda: store.two_factor.use_recovery_code(ADMIN_USERNAME, codes[2]))
    assert results.count(True) == 1
    assert store.two_factor.state(ADMIN_USERNAME).recovery_codes_left == 9


@pytest.mark.integration
@pytest.mark.skipif(NO_JAVA, reason="DynamoDB Local needs Java 11+")
def test_one_code_sent_many_times_at_once_is_accepted_once(local_store, clock, record_figure):
    store, secret, _ = local_store
    code = _code(secret, clock)
    accepted = _all_at_once(lambda: store.two_factor.verify_totp(ADMIN_USERNAME, code)).count(True)
    assert accepted == 1
    record_figure("access.two_factor.threads", THREADS, basis="counted")
    record_figure("access.two_factor.accepted", accepted, basis="counted")


def test_the_pending_marker_alone_grants_nothing(app, client, auth, enrolled):
    _password_step(auth)
    for path in ("/", "/links/new", "/tokens", "/users", "/account/password", "/account/two-factor",
                 "/account/two-factor/setup", "/settings/security"):
        response = client.get(path, headers=HTML)
        assert response.status_code == 303, path
        assert response.headers["Location"].startswith("/login?next="), path
    assert client.post("/tokens", data={"name": "sneaky", "scope": "read", "days": "30"}).status_code == 303
    assert client.post("/account/two-factor/disable", data={"secret": ADMIN_PASSWORD}).status_code == 303
    assert app.extensions["store"].two_factor.state(ADMIN_USERNAME).enabled
    with client.session_transaction() as session:
        assert "username" not in session and "sid" not in session


def test_the_pending_marker_expires(client, auth, enrolled, clock):
    secret, _ = enrolled
    _password_step(auth)
    clock.advance(5 * 60)
    response = _second_step(client, _code(secret, clock))
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert not _signed_in(client)


def test_the_second_step_without_a_password_goes_back_to_sign_in(client, enrolled, clock):
    secret, _ = enrolled
    response = _second_step(client, _code(secret, clock))
    assert response.status_code == 303 and response.headers["Location"] == "/login"


def test_wrong_codes_hit_the_accounts_sign_in_limit(app, client, auth, enrolled, clock, audited):
    secret, _ = enrolled
    _password_step(auth)
    for _ in range(app.config["SIGNIN_ACCOUNT_LIMIT"]):
        assert _second_step(client, "000000").status_code == 422
    locked = _second_step(client, _code(secret, clock))
    assert locked.status_code == 429
    assert "Too many wrong codes" in locked.get_data(as_text=True)
    assert not _signed_in(client)
    assert ("signin.second_factor", "locked") in [(a, o) for a, o, _ in audited]
    assert auth.login().status_code == 429  # the password is refused too, for this account


def test_a_right_password_does_not_reset_the_count_of_wrong_codes(app, client, auth, enrolled, clock):
    secret, _ = enrolled
    limit = app.config["SIGNIN_ACCOUNT_LIMIT"]
    _password_step(auth)
    for _ in range(limit - 1):
        assert _second_step(client, "000000").status_code == 422
    _password_step(auth)  # clears the account's counter of wrong passwords
    assert _second_step(client, "000000").status_code == 422
    assert _second_step(client, _code(secret, clock)).status_code == 429


def test_a_right_code_clears_the_count(app, client, auth, enrolled, clock):
    secret, _ = enrolled
    limit = app.config["SIGNIN_ACCOUNT_LIMIT"]
    _password_step(auth)
    for _ in range(limit - 2):
        _second_step(client, "000000")
    assert _second_step(client, _code(secret, clock)).status_code == 303
    auth.logout()
    clock.advance(30)
    _password_step(auth)
    for _ in range(limit - 1):
        assert _second_step(client, "000000").status_code == 422
    assert _second_step(client, _code(secret, clock)).status_code == 303


def test_a_user_disabled_between_the_steps_is_not_signed_in(client, auth, store, enrolled, clock):
    secret, _ = enrolled
    _password_step(auth)
    add_user(store, "other-admin", "admin")
    store.users.set_disabled(ADMIN_USERNAME, True)
    assert _second_step(client, _code(secret, clock)).status_code == 303
    assert not _signed_in(client)


def test_users_without_two_factor_sign_in_with_the_password_alone(client, auth):
    response = auth.login()
    assert response.status_code == 303 and response.headers["Location"] == "/dashboard"
    assert _signed_in(client)


# Changing it: a current code or the password first.


def _sign_in_with_code(client, auth, secret, clock):
    _password_step(auth)
    assert _second_step(client, _code(secret, clock)).status_code == 303
    clock.advance(30)


@pytest.mark.parametrize("wrong", ["wrong-password", "000000", ""])
def test_disable_refuses_a_wrong_code_or_password(client, auth, store, enrolled, clock, audited, wrong):
    secret, codes = enrolled
    _sign_in_with_code(client, auth, secret, clock)
    response = client.post("/account/two-factor/disable", data={"secret": wrong})
    assert response.status_code == 422
    assert store.two_factor.state(ADMIN_USERNAME).enabled
    if wrong:
        assert "neither a current code nor your password" in response.get_data(as_text=True)
        assert ("mfa.disable", "failed") in [(a, o) for a, o, _ in audited]


def test_disable_refuses_a_recovery_code(client, auth, store, enrolled, clock):
    secret, codes = enrolled
    _sign_in_with_code(client, auth, secret, clock)
    assert client.post("/account/two-factor/disable", data={"secret": codes[0]}).status_code == 422
    assert store.two_factor.state(ADMIN_USERNAME).recovery_codes_left == 10  # and it is not used up


def test_disable_with_a_current_code(client, auth, store, enrolled, clock, audited):
    secret, _ = enrolled
    _sign_in_with_code(client, auth, secret, clock)
    response = client.post("/account/two-factor/disable", data={"secret": _code(secret, clock)})
    assert response.status_code == 303
    state = store.two_factor.state(ADMIN_USERNAME)
    assert not state.enabled and state.recovery_codes_left == 0
    assert ("mfa.disable", "ok") in [(a, o) for a, o, _ in audited]
    auth.logout()
    assert auth.login().headers["Location"] == "/dashboard"  # the password alone signs in again


def test_disable_with_the_password(client, auth, store, enrolled, clock):
    secret, _ = enrolled
    _sign_in_with_code(client, auth, secret, clock)
    assert client.post("/account/two-factor/disable", data={"secret": ADMIN_PASSWORD}).status_code == 303
    assert not store.two_factor.state(ADMIN_USERNAME).enabled


def test_new_recovery_codes_replace_the_old_ones(client, auth, store, enrolled, clock, audited):
    secret, old = enrolled
    _sign_in_with_code(client, auth, secret, clock)
    assert client.post("/account/two-factor/recovery-codes", data={"secret": "wrong-password"}).status_code == 422
    response = client.post("/account/two-factor/recovery-codes", data={"secret": _code(secret, clock)})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    new = re.findall(r"<li><code>([a-z2-7-]{19})</code></li>", response.get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)
    assert ("mfa.recovery_regenerate", "ok") in [(a, o) for a, o, _ in audited]
    assert not store.two_factor.use_recovery_code(ADMIN_USERNAME, old[5])
    assert store.two_factor.use_recovery_code(ADMIN_USERNAME, new[5])


def test_reauth_accepts_a_current_code_once(app, store, enrolled, clock):
    secret, codes = enrolled
    with app.test_request_context():
        code = _code(secret, clock)
        assert reauth.confirm(ADMIN_USERNAME, code)
        assert not reauth.confirm(ADMIN_USERNAME, code)  # used up
        assert not reauth.confirm(ADMIN_USERNAME, codes[0])  # recovery codes are for signing in only
        assert reauth.confirm(ADMIN_USERNAME, ADMIN_PASSWORD)
        assert not reauth.confirm(ADMIN_USERNAME, "wrong-password")
    assert store.two_factor.state(ADMIN_USERNAME).recovery_codes_left == 10


# The admins' requirement.


def _require(client, on):
    return client.post("/settings/security", data={"require_two_factor": "y"} if on else {})


def test_admins_can_require_two_factor_and_a_user_without_it_must_set_it_up(app, client, auth, store, clock, audited):
    auth.login()
    assert "Require two-factor" in client.get("/settings/security").get_data(as_text=True)
    assert _require(client, True).status_code == 303
    assert store.settings.get("require_two_factor") is True
    assert ("settings.change", "ok", True) in [(a, o, d.get("value")) for a, o, d in audited]
    add_user(store, "bob", "editor")

    bob = app.test_client()
    response = bob.post("/login", query_string={"next": "/links/new"}, data={"username": "bob", "password": ROLE_PASSWORD})
    assert response.status_code == 303
    assert response.headers["Location"] == "/account/two-factor/setup"
    assert not _signed_in(bob)
    assert "Admins require two-factor" in bob.get("/account/two-factor/setup").get_data(as_text=True)
    assert bob.get("/account/two-factor", headers=HTML).status_code == 303  # the pending marker opens setup only
    assert not _signed_in(bob)

    assert bob.post("/account/two-factor/setup").status_code == 303
    secret = store.two_factor.state("bob").pending_secret
    assert bob.post("/account/two-factor/enable", data={"code": "000000"}).status_code == 422
    assert not _signed_in(bob)
    done = bob.post("/account/two-factor/enable", data={"code": _code(secret, clock)})
    assert done.status_code == 200
    assert 'href="/links/new"' in done.get_data(as_text=True)  # on to where the sign-in was going
    assert _signed_in(bob)
    assert store.two_factor.state("bob").enabled


def test_the_requirement_can_be_turned_off(client, auth, store, audited):
    auth.login()
    _require(client, True)
    assert _require(client, False).status_code == 303
    assert store.settings.get("require_two_factor") is False
    assert ("settings.change", "ok", False) in [(a, o, d.get("value")) for a, o, d in audited]
    auth.logout()
    add_user(store, "carol", "viewer")
    assert auth.login("carol", ROLE_PASSWORD).headers["Location"] == "/dashboard"


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_a_non_admin_cannot_change_the_setting(client, store, role):
    sign_in_as(client, store, role)
    response = _require(client, True)
    assert response.status_code == 403
    assert "role does not allow" in response.get_data(as_text=True)
    assert client.get("/settings/security").status_code == 403
    assert store.settings.get("require_two_factor") is None


def test_a_signed_in_admin_without_two_factor_keeps_the_session_when_it_becomes_required(client, auth):
    auth.login()
    _require(client, True)
    assert _signed_in(client)  # the requirement applies at the next sign-in


# The operator's reset, for a lost phone and lost recovery codes.


def test_the_cli_reset_turns_the_factor_off_and_ends_sessions(app, client, auth, store, enrolled, clock):
    secret, _ = enrolled
    _password_step(auth)
    assert _second_step(client, _code(secret, clock)).status_code == 303 and _signed_in(client)
    result = app.test_cli_runner().invoke(args=["reset-two-factor", ADMIN_USERNAME])
    assert result.exit_code == 0, result.output
    assert not store.two_factor.state(ADMIN_USERNAME).enabled
    assert not _signed_in(client)  # the session that the lost phone may also hold has ended
    again = app.test_cli_runner().invoke(args=["reset-two-factor", ADMIN_USERNAME])
    assert again.exit_code != 0 and "has no second factor" in again.output
    unknown = app.test_cli_runner().invoke(args=["reset-two-factor", "nobody"])
    assert unknown.exit_code != 0 and "does not exist" in unknown.output
