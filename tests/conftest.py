"""Shared fixtures: fake AWS credentials and a moto table built from cloudformation.yaml."""
import functools
import os
import sys

import boto3
import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws

from local_stack.template import create_salts_table, create_table, salts_table_name

TABLE_NAME = "links-test"
# The salts of the visitor hash have a table of their own (cloudformation.yaml SaltsTable), made by `salts_table`.
SALT_TABLE_NAME = salts_table_name(TABLE_NAME)
REGION = "us-east-1"
# Tests with any of these markers (pyproject.toml) are slow: `make test-fast` leaves them out.
SLOW_MARKERS = {"integration", "browser", "package", "scan", "bench", "soak", "exhaustive"}


# Test-speed shims, for this pytest process only (the local stack's processes run the real thing).


@pytest.fixture(scope="session", autouse=True)
def shared_botocore_data():
    """Parse each of botocore's JSON data files once per run, not once per client session (moto makes many)."""
    real = botocore.loaders.JSONFileLoader.load_file
    # Keyed by path alone: the loader holds no state. botocore treats loaded data as read-only, apart
    # from merging its own fixed extras into a model, which gives the same result when repeated.
    load = functools.lru_cache(maxsize=None)(lambda file_path: real(botocore.loaders.JSONFileLoader(), file_path))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.loaders.JSONFileLoader, "load_file", lambda self, file_path: load(file_path))
        yield


@pytest.fixture(scope="session", autouse=True)
def shared_botocore_loader():
    """One botocore data loader for every session: each new one lists botocore's data folders again."""
    loader = functools.lru_cache(maxsize=None)(botocore.loaders.create_loader)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", loader)
        yield


@pytest.fixture(scope="session", autouse=True)
def one_moto_request_at_a_time():
    """moto's DynamoDB is not thread-safe: a transaction deep-copies the whole table, and a put from another
    thread during the copy fails it ("dictionary changed size during iteration"). DynamoDB serves each
    request atomically, so moto is made to take one request at a time. (Races between requests stay as
    they are; the concurrency tests run on DynamoDB Local, which models them.)"""
    import threading

    from moto.dynamodb.responses import DynamoHandler

    lock = threading.RLock()
    real = DynamoHandler.call_action

    def call_action(self):
        with lock:
            return real(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DynamoHandler, "call_action", call_action)
        yield


@pytest.fixture
def table_requests(store):
    """Every DynamoDB request the store makes from now on: [(operation, params)]."""
    seen = []

    def record(params, model, **kwargs):
        seen.append((model.name, params))

    store.table.client.meta.events.register("provide-client-params.dynamodb", record)
    yield seen
    store.table.client.meta.events.unregister("provide-client-params.dynamodb", record)


@pytest.fixture(autouse=True)
def no_retry_pause(monkeypatch):
    """The in-process event source mapping retries at once: the tests count retries, not seconds."""
    from local_stack import event_source

    monkeypatch.setattr(event_source, "RETRY_DELAY_SECONDS", 0)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test, so a fixture can tell at teardown whether its test failed
    (the browser tests save a screenshot then); with REQUIRE_NO_SKIP set, report a skip as a failure."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and os.environ.get("REQUIRE_NO_SKIP"):
        refuse_skip(report)
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """With REQUIRE_NO_SKIP set, a module that skips itself while collected (allow_module_level,
    importorskip) fails too: its tests never reach pytest_runtest_makereport."""
    report = yield
    if report.skipped and os.environ.get("REQUIRE_NO_SKIP"):
        refuse_skip(report)
    return report


def refuse_skip(report):
    """Turn a skipped test's report into a failure that gives the skip's reason.

    CI (.ci/run) sets REQUIRE_NO_SKIP: everything a test needs is installed there, so a skip can only
    hide a test that no longer runs. On a dev machine without the variable, skips stay skips.
    """
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped, but REQUIRE_NO_SKIP is set (CI runs every test): {reason}"


def pytest_collection_modifyitems(items):
    """Mark `slow` every test that starts the stack, a browser, a build, checkov or a benchmark."""
    for item in items:
        if SLOW_MARKERS & {marker.name for marker in item.iter_markers()}:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch):
    """Fake credentials and region, so nothing can ever reach a real AWS account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)


# The production password hash (OWASP's scrypt N=2^17) costs 0.3 s to 1 s on this machine, for every
# user a test creates and every sign-in; tests hash at a cheap cost unless they ask for the real one.
CHEAP_PASSWORD_HASH_METHOD = "scrypt:1024:8:1"


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """Hash passwords cheaply in tests (test_password_hashing checks the production method)."""
    from webapp.store import users

    monkeypatch.setattr(users, "PASSWORD_HASH_METHOD", CHEAP_PASSWORD_HASH_METHOD)


@pytest.fixture(autouse=True)
def fresh_aggregator_memory():
    """Each test starts with a new table, so the aggregator must not remember another test's items."""
    writes = sys.modules.get("aggregator.writes")
    if writes is not None:
        writes._full_items.clear()
    stream = sys.modules.get("aggregator.stream")
    if stream is not None:
        stream._lives.clear()


@pytest.fixture(scope="module")
def dynamodb_local():
    """DynamoDB Local in memory, one per test module that asks for it (tests/support/dynamodb_local.py)."""
    from tests.support.dynamodb_local import start_engine

    engine = start_engine()
    yield engine
    engine.stop()


@pytest.fixture
def ddb(aws_credentials):
    """A low-level DynamoDB client on a moto table created from the template's own definition."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, TABLE_NAME)
        yield client


@pytest.fixture
def salts_table(ddb):
    """The salts' own table beside the ddb fixture's, from the template's SaltsTable; its name."""
    create_salts_table(ddb, SALT_TABLE_NAME)
    return SALT_TABLE_NAME


@pytest.fixture
def aggregator(ddb, monkeypatch):
    """The aggregator handler freshly imported inside the moto mock (its clients are built at import),
    on the test table and reading tests.support.pipeline.STREAM."""
    from tests.support.aggregator import fresh_aggregator

    return fresh_aggregator(monkeypatch, TABLE_NAME)


# Fixtures of the admin app (webapp/).

ADMIN_USERNAME = "alice"
ADMIN_PASSWORD = "correct horse battery staple"
SHORT_BASE_URL = "https://sho.rt"


def make_app(**overrides):
    """An admin app on the moto table; call it inside the ddb fixture."""
    from webapp import create_app

    config = {
        "TESTING": True,
        "TABLE_NAME": TABLE_NAME,
        "SHORT_BASE_URL": SHORT_BASE_URL,
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "SESSION_COOKIE_SECURE": False,  # the test client speaks plain http
    }
    config.update(overrides)
    return create_app(config)


@pytest.fixture
def app(ddb):
    """The admin app with one user, ADMIN_USERNAME."""
    app = make_app()
    app.extensions["store"].users.create(ADMIN_USERNAME, ADMIN_PASSWORD)
    return app


@pytest.fixture
def store(app):
    """The app's store, for arranging and checking data directly."""
    return app.extensions["store"]


@pytest.fixture
def client(app):
    """A test client of the admin app."""
    return app.test_client()


class AuthActions:
    """Sign in and out through the real forms."""

    def __init__(self, client):
        self._client = client

    def login(self, username=ADMIN_USERNAME, password=ADMIN_PASSWORD, next=None):
        """POST the sign-in form."""
        query = {"next": next} if next is not None else {}
        return self._client.post("/login", query_string=query, data={"username": username, "password": password})

    def logout(self):
        """POST the sign-out form."""
        return self._client.post("/logout")


@pytest.fixture
def auth(client):
    """Sign-in helper bound to the test client."""
    return AuthActions(client)


@pytest.fixture
def api_token(store):
    """A plaintext API token of ADMIN_USERNAME."""
    plaintext, _ = store.tokens.create(ADMIN_USERNAME, "tests")
    return plaintext


def put_counter(ddb, short_id, clicks, bots=0, region=REGION, last_clicked_at=None):
    """Write a link's click counter item for one region, as the aggregator would."""
    values = {":c": {"N": str(clicks)}, ":b": {"N": str(bots)}}
    expression = "ADD clicks :c, bots :b"
    if last_clicked_at:
        values[":t"] = {"S": last_clicked_at}
        expression += " SET last_clicked_at = :t"
    ddb.update_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": short_id}, "sk": {"S": f"clicks#{region}"}},
        UpdateExpression=expression,
        ExpressionAttributeValues=values,
    )
# Users of each role, for the access tests.

ROLE_PASSWORD = "a-long-test-password"


def add_user(store, username, role):
    """A local user with ROLE_PASSWORD."""
    return store.users.create(username, ROLE_PASSWORD, role=role)


def sign_in_as(client, store, role):
    """Create a user named after the role (<role>1) and sign the client in through the form."""
    username = f"{role}1"
    if store.users.get(username) is None:
        add_user(store, username, role)
    response = client.post("/login", data={"username": username, "password": ROLE_PASSWORD})
    assert response.status_code == 303, response.get_data(as_text=True)
    return username


def token_for(store, role, scope=None):
    """A plaintext API token of a <role>1 user: write scope unless the role only reads."""
    username = f"{role}1"
    if store.users.get(username) is None:
        add_user(store, username, role)
    scope = scope or ("read" if role == "viewer" else "write")
    plaintext, _ = store.tokens.create(username, f"{role} tests", scope=scope)
    return plaintext


class Clock:
    """The app's notion of now (webapp.clock.utcnow), moved by hand."""

    def __init__(self, monkeypatch):
        from webapp import clock

        self.now = clock.utcnow()
        monkeypatch.setattr(clock, "utcnow", lambda: self.now)

    def advance(self, seconds):
        """Move now forward."""
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch):
    """A Clock for session idle and lifetime, token expiry and sign-in windows."""
    return Clock(monkeypatch)
