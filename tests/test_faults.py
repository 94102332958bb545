"""DynamoDB faults (throttling, 5xx, read timeouts, lost connections) against every side of the product.

What this proves (issue 9, "Faults"):
- the redirect with a warm cache answers 302 for a whole outage, across many cache windows, whatever
  the fault; with a cold cache it answers 503 with Retry-After, never 500, and prints no click line;
- the admin, on every write route of the pages and of the JSON API, answers a friendly page or a JSON
  error (503, Retry-After) when any one of the route's DynamoDB calls fails, for each fault kind, and
  leaves the table either as it was or as the completed write left it (or, for a disable, in a state
  that can never let an old session back in); then the same write, retried, succeeds;
- the aggregator, through tests/support/pipeline.py's stream stand-in, keeps every click through an outage
  that lasts many attempts: the mapping retries each batch until it succeeds (nothing is skipped or
  sent to the failure destination), and each click counts exactly once on recovery.
  tests/test_click_pipeline.py already fails every single step of the write path; this only adds
  whole outages of each fault kind.

Faults are injected in two ways (tests/support/faults.py), both on the botocore client only (no real
endpoint is ever called):
- at the HTTP layer (`Outage`, `before-send`): a throttle or a 5xx is an HTTP answer that botocore
  parses and retries like a real one, a timeout or a refused connection is raised where urllib3 would
  raise it; botocore's back-off sleeps are recorded, not slept;
- at the call layer (`Faults`), to fail exactly the n-th call of a route after botocore's retries
  gave up, as tests/test_click_pipeline.py does.
"""
import importlib
import json
from types import SimpleNamespace

import pytest

from figures.pytest_plugin import record
from tests.conftest import TABLE_NAME, make_app, sign_in_as
from tests.support.faults import FAULTS, Faults, Outage, fault_exception
from tests.support.pipeline import Pipeline

# Thousands of cases or injected faults: in `make test`, not in the edit-test loop of `make test-fast`.
pytestmark = pytest.mark.exhaustive

NOW = 1_795_757_759.0  # 2026-11-27T05:35:59Z
# Step by step, one fault of each way it reaches the store: an error code, a timeout, no connection.
CALL_FAULTS = ["throttled", "read-timeout", "connection-refused"]
# Faults injected and survived in this run: recorded at the end of the module for RELIABILITY.md
# (a complete `make test` writes them to results/tests.json), and printed (`pytest -s`).
INJECTED = {"redirect_warm_302": 0, "redirect_cold_503": 0, "admin_call_faults": 0, "admin_outage_requests": 0,
            "aggregator_failed_sends": 0}


@pytest.fixture(scope="module", autouse=True)
def report_faults():
    yield
    for name, count in INJECTED.items():
        record(f"faults.{name}", count, basis="counted")
    print(f"\nfaults injected and survived: {INJECTED}")


@pytest.fixture
def outages(monkeypatch):
    """Outage(client, ...) for this test only: every hook is taken off at teardown."""
    made = []

    def start(*clients):
        made.append(Outage(monkeypatch, *clients))
        return made[-1]

    yield start
    for one in made:
        one.end()


# ------------------------------------------------------------------ the redirect


@pytest.fixture
def redirect(ddb, monkeypatch):
    """The redirect handler on the moto table, its clock pinned to NOW (move it with .clock[0])."""
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    module = importlib.import_module("redirect_fn.handler")
    module._cache.clear()
    clock = [NOW]
    monkeypatch.setattr(module.time, "time", lambda: clock[0])
    module.clock = clock
    yield module
    module._cache.clear()


def redirect_event(short_id, method="GET", accept="text/html"):
    return {
        "version": "2.0",
        "rawPath": f"/{short_id}",
        "headers": {"accept": accept, "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
                    "referer": "https://news.example.com/a"},
        "requestContext": {"http": {"method": method, "path": f"/{short_id}"}},
    }


def put_link(ddb, short_id, url="https://example.com/landing"):
    ddb.put_item(TableName=TABLE_NAME, Item={"pk": {"S": short_id}, "sk": {"S": "link"}, "url": {"S": url},
                                             "is_active": {"BOOL": True}})


def printed_clicks(capsys):
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith('{"type":"click"')]


@pytest.mark.parametrize("kind", FAULTS)
def test_a_warm_link_answers_302_for_the_whole_outage(redirect, ddb, outages, capsys, kind):
    put_link(ddb, "warm123")
    assert redirect.lambda_handler(redirect_event("warm123"), None)["statusCode"] == 302
    outage = outages(redirect._client)
    outage.kind = kind
    window = redirect.LINK_CACHE_SECONDS
    answers = []
    # 200 visits over 10 cache windows: every one past the first window asks DynamoDB and fails.
    for visit in range(200):
        redirect.clock[0] = NOW + visit * window / 20
        for method in ("GET", "HEAD"):
            response = redirect.lambda_handler(redirect_event("warm123", method), None)
            answers.append((response["statusCode"], response["headers"].get("Location")))
    assert set(answers) == {(302, "https://example.com/landing")}
    INJECTED["redirect_warm_302"] += outage.failed_sends
    assert outage.failed_sends > 0  # the fault was met, not avoided
    assert len(printed_clicks(capsys)) == 1 + 200  # one line per GET, none per HEAD
    # And once DynamoDB is back, the next refresh takes the new state.
    outage.kind = None
    ddb.update_item(TableName=TABLE_NAME, Key={"pk": {"S": "warm123"}, "sk": {"S": "link"}},
                    UpdateExpression="SET is_active = :f", ExpressionAttributeValues={":f": {"BOOL": False}})
    redirect.clock[0] += window + 1
    assert redirect.lambda_handler(redirect_event("warm123"), None)["statusCode"] == 410


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
@pytest.mark.parametrize("kind", FAULTS)
def test_a_cold_link_answers_503_with_retry_after_and_prints_nothing(redirect, ddb, outages, capsys, kind, accept):
    put_link(ddb, "cold123")
    outage = outages(redirect._client)
    outage.kind = kind
    for method in ("GET", "HEAD"):
        response = redirect.lambda_handler(redirect_event("cold123", method, accept), None)
        assert response["statusCode"] == 503
        assert response["headers"]["Retry-After"] == "1"
        assert response["headers"]["Cache-Control"] == "no-store"
        if method == "GET":
            assert "briefly unavailable" in response["body"]
            assert "injected" not in response["body"] and "Traceback" not in response["body"]
    assert printed_clicks(capsys) == []
    INJECTED["redirect_cold_503"] += outage.failed_sends
    # A 503 is not cached: the first visit after the outage gets the link.
    outage.kind = None
    assert redirect.lambda_handler(redirect_event("cold123"), None)["statusCode"] == 302


def test_the_redirect_gives_up_after_one_retry(redirect, ddb, outages):
    """A visitor waits for at most two attempts (its Config), never botocore's default of several.

    (Fewer once a long outage has spent the client's standard-mode retry quota, which is shared by
    the container's whole life: then botocore stops retrying, which is what an outage wants.)"""
    outage = outages(redirect._client)
    outage.kind = "throttled"
    assert redirect.lambda_handler(redirect_event("cold123"), None)["statusCode"] == 503
    assert 1 <= outage.failed_sends <= 2
    assert sum(outage.sleeps) <= 2


# ------------------------------------------------------------------ the admin: every write route


@pytest.fixture
def admin(ddb):
    """The app, a signed-in admin page client, an admin write token, and the store."""
    app = make_app(TOKENS_PER_USER=1000)  # "create token" makes a token per failing call and retry: past the cap of 20
    store = app.extensions["store"]
    pages = app.test_client()
    sign_in_as(pages, store, "admin")
    plaintext, _ = store.tokens.create("admin1", "faults")
    return app, pages, {"Authorization": f"Bearer {plaintext}"}, store


def _items(ddb, pk):
    return ddb.query(TableName=TABLE_NAME, KeyConditionExpression="pk = :p",
                     ExpressionAttributeValues={":p": {"S": pk}}, ConsistentRead=True)["Items"]


def _link_state(ddb, short_id):
    items = [i for i in _items(ddb, short_id) if i["sk"]["S"] == "link"]
    return items[0]["is_active"]["BOOL"] if items else None


def _user_state(ddb, username):
    items = _items(ddb, f"user#{username}")
    user = next((i for i in items if i["sk"]["S"] == "user"), None)
    sessions = sum(1 for i in items if i["sk"]["S"].startswith("session#"))
    if user is None:
        return None, sessions
    return (user.get("role", {}).get("S"), user.get("disabled", {}).get("BOOL")), sessions


def _token_state(ddb, owner):
    records = ddb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
    mine = [r for r in records if r.get("username", {}).get("S") == owner and r["pk"]["S"].startswith("token")]
    return (sum(r["pk"]["S"].startswith("tokenid#") for r in mine), sum(r["pk"]["S"].startswith("token#") for r in mine))


def _one_more_token(before):
    return before[0] + 1, before[1] + 1


class Route:
    """One write route: arrange a fresh subject, send the request, observe the subject's state.

    `safe` lists states other than "before" and "after" that a failed write may leave, with the reason.
    """

    def __init__(self, name, arrange, send, observe, ok, safe=(), expect=None):
        self.name, self.arrange, self.send, self.observe, self.ok, self.safe = name, arrange, send, observe, ok, safe
        self.expect = expect  # the state after a success, from the state before; None: as the first run left it


def _routes(ddb):
    def link(n, store, active=True):
        short_id = f"fault{n:03d}"
        store.links.create("https://example.com/x", created_by="admin1", slug=short_id)
        if not active:
            store.links.set_active(short_id, False)
        return short_id

    def user(n, store, with_session=True):
        name = f"target{n:03d}"
        store.users.create(name, role="editor")  # no password: no scrypt hash per step
        if with_session:
            store.sessions.create(name, 3600)
        return name

    def token(n, store):
        owner = f"owner{n:03d}"
        store.users.create(owner, role="editor")
        _, token_id = store.tokens.create(owner, "to revoke")
        return owner, token_id

    def writer(n, store):
        owner = user(n, store, with_session=False)
        plaintext, _ = store.tokens.create(owner, "writer")
        return owner, plaintext

    def disabled(n, store):
        name = user(n, store)
        store.users.set_disabled(name, True)
        return name

    return [
        Route("api: create link with slug", lambda n, s: f"new{n:03d}",
              lambda c, h, slug: c.post("/api/links", json={"url": "https://example.com/a", "slug": slug}, headers=h),
              lambda slug: _link_state(ddb, slug), 201),
        Route("api: disable link", link,
              lambda c, h, sid: c.patch(f"/api/links/{sid}", json={"is_active": False}, headers=h),
              lambda sid: _link_state(ddb, sid), 200),
        Route("api: enable link", lambda n, s: link(n, s, active=False),
              lambda c, h, sid: c.patch(f"/api/links/{sid}", json={"is_active": True}, headers=h),
              lambda sid: _link_state(ddb, sid), 200),
        Route("api: create token", writer,
              lambda c, h, ctx: c.post("/api/tokens", json={"name": "new", "scope": "read"},
                                       headers={"Authorization": f"Bearer {ctx[1]}"}),
              lambda ctx: _token_state(ddb, ctx[0]), 201, expect=_one_more_token),
        Route("api: revoke token", token,
              lambda c, h, ctx: c.delete(f"/api/tokens/{ctx[1]}", headers=h),
              lambda ctx: _token_state(ddb, ctx[0]), 204),
        Route("api: create user", lambda n, s: f"newuser{n:03d}",
              lambda c, h, name: c.post("/api/users", json={"username": name, "password": "a-long-password-1",
                                                             "role": "viewer"}, headers=h),
              lambda name: _user_state(ddb, name), 201),
        Route("api: disable user", user,
              lambda c, h, name: c.patch(f"/api/users/{name}", json={"disabled": True}, headers=h),
              lambda name: _user_state(ddb, name), 200,
              # One write disables the user and ends the sessions (their items stay until their TTL);
              # test_a_disable_is_one_write_so_a_failed_one_leaves_nothing_half_done.
              safe=[(("editor", True), 1)]),
        Route("api: change role", user,
              lambda c, h, name: c.patch(f"/api/users/{name}", json={"role": "viewer"}, headers=h),
              lambda name: _user_state(ddb, name), 200,
              # Sessions read the role on every request, so a session left behind has the new role.
              safe=[(("viewer", False), 1)]),
        Route("page: create link", lambda n, s: f"page{n:03d}",
              lambda c, h, slug: c.post("/links/new", data={"url": "https://example.com/p", "slug": slug, "expiry": "never"}),
              lambda slug: _link_state(ddb, slug), 303),
        Route("page: disable link", link, lambda c, h, sid: c.post(f"/links/{sid}/disable"),
              lambda sid: _link_state(ddb, sid), 303),
        Route("page: enable link", lambda n, s: link(n, s, active=False), lambda c, h, sid: c.post(f"/links/{sid}/enable"),
              lambda sid: _link_state(ddb, sid), 303),
        Route("page: create token", lambda n, s: None,
              lambda c, h, ctx: c.post("/tokens", data={"name": "page token", "scope": "read", "days": "30"}),
              lambda ctx: _token_state(ddb, "admin1"), 200, expect=_one_more_token),
        Route("page: revoke token", token, lambda c, h, ctx: c.post(f"/tokens/{ctx[1]}/revoke"),
              lambda ctx: _token_state(ddb, ctx[0]), 303),
        Route("page: create user", lambda n, s: f"pageuser{n:03d}",
              lambda c, h, name: c.post("/users", data={"username": name, "password": "a-long-password-1", "role": "viewer"}),
              lambda name: _user_state(ddb, name), 303),
        Route("page: disable user", user, lambda c, h, name: c.post(f"/users/{name}/disable"),
              lambda name: _user_state(ddb, name), 303, safe=[(("editor", True), 1)]),
        Route("page: enable user", disabled, lambda c, h, name: c.post(f"/users/{name}/enable"),
              lambda name: _user_state(ddb, name), 303),
        Route("page: change role", user, lambda c, h, name: c.post(f"/users/{name}/role", data={"role": "viewer"}),
              lambda name: _user_state(ddb, name), 303, safe=[(("viewer", False), 1)]),
    ]


ROUTE_NAMES = [
    "api: create link with slug", "api: disable link", "api: enable link", "api: create token", "api: revoke token",
    "api: create user", "api: disable user", "api: change role", "page: create link", "page: disable link",
    "page: enable link", "page: create token", "page: revoke token", "page: create user", "page: disable user",
    "page: enable user", "page: change role",
]


def _assert_friendly_503(response, route):
    assert response.status_code == 503, (route.name, response.status_code, response.get_data(as_text=True)[:300])
    assert response.headers.get("Retry-After")
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "injected" not in text
    if route.name.startswith("api"):
        assert response.is_json and response.get_json()["error"]
    else:
        assert "text/html" in response.content_type and "try again" in text.lower()


@pytest.mark.parametrize("name", ROUTE_NAMES)
def test_a_write_route_that_fails_at_any_call_answers_503_and_writes_nothing_partial(admin, ddb, name):
    app, pages, headers, store = admin
    route = next(r for r in _routes(ddb) if r.name == name)
    faults = Faults(store.table.client)
    subjects = iter(range(1000))

    def attempt(fail_step=None):
        subject = route.arrange(next(subjects), store)
        before = route.observe(subject)
        faults.calls.clear()
        faults.bodies.clear()
        faults.fail_at = {fail_step} if fail_step is not None else set()
        response = route.send(pages, headers, subject)
        faults.fail_at = set()
        return subject, before, response, route.observe(subject)

    _, before, response, first_after = attempt()
    assert response.status_code == route.ok, response.get_data(as_text=True)[:300]
    assert first_after != before
    steps = len(faults.calls)
    assert steps >= 2
    for kind in CALL_FAULTS:
        faults.fault = kind
        for step in range(steps):
            subject, before_n, failed, state = attempt(fail_step=step)
            after = route.expect(before_n) if route.expect else first_after
            if len(faults.calls) <= step:
                # A call the first run made and this one did not (a token's last use is written once a minute).
                assert failed.status_code == route.ok
                continue
            if _is_audit_record(faults.calls[step], faults.bodies[step]):
                # The audit record is written after the action: the action stands and the record is
                # logged as AUDIT_NOT_STORED instead (webapp/audit.py; tests/test_audit.py checks the line).
                assert failed.status_code == route.ok and state == after, (route.name, step, kind)
                continue
            if _is_search_entries(faults.calls[step], faults.bodies[step]):
                # A new link's search entries follow it (webapp/store/links.py): the link stands, found by the
                # list, and `reindex-links` or its next edit writes them (tests/test_link_reindex.py).
                assert failed.status_code == route.ok and state == after, (route.name, step, kind)
                continue
            _assert_friendly_503(failed, route)
            INJECTED["admin_call_faults"] += 1
            allowed = {before_n, after, *route.safe}
            assert state in allowed, f"{route.name}: failing call {step} ({faults.calls[step]}, {kind}) left {state}"
            # The same write, asked again, completes it: for a create that did happen, a clear conflict.
            again = route.send(pages, headers, subject)
            assert again.status_code in (route.ok, 409), (step, kind, again.status_code)
            if state == before_n or route.name.endswith("disable user"):
                assert route.observe(subject) == after, f"{route.name}: a retry after failing call {step} ({kind})"


def _is_search_entries(operation, body):
    """True for the BatchWriteItem that puts a new link's search entries."""
    from webapp.store import link_index

    if operation != "BatchWriteItem":
        return False
    prefixes = (link_index.WORD_PK, link_index.TAG_PK, link_index.OWNER_PK, link_index.DISABLED_PK, link_index.EXPIRES_PK)
    requests = [request for requests in body.get("RequestItems", {}).values() for request in requests]
    return bool(requests) and all(request.get("PutRequest", {}).get("Item", {}).get("pk", {}).get("S", "").startswith(prefixes)
                                  for request in requests)


def _is_audit_record(operation, body):
    return operation == "PutItem" and body.get("Item", {}).get("pk", {}).get("S", "").startswith("audit#")


def test_a_disable_is_one_write_so_a_failed_one_leaves_nothing_half_done(admin, ddb):
    """Disabling writes the user and ends the sessions in one write (the session generation). If that
    write fails, nothing changed; once it succeeds, old sessions stay dead, even after an enable."""
    app, pages, headers, store = admin
    victim = app.test_client()
    name = sign_in_as(victim, store, "editor")
    assert victim.get("/").status_code == 200
    stolen = victim.get_cookie("session").value  # a copy of the cookie, say on a lost laptop

    def with_stolen_cookie():
        thief = app.test_client()
        thief.set_cookie("session", stolen)
        return thief.get("/").status_code

    faults = Faults(store.table.client)

    def fail_the_write(model, **_):
        if model.name == "TransactWriteItems":
            raise fault_exception("throttled", model.name)
        faults.calls.append(model.name)

    faults.remove()
    store.table.client.meta.events.register("before-call", fail_the_write)
    response = pages.post(f"/users/{name}/disable")
    store.table.client.meta.events.unregister("before-call", fail_the_write)
    assert response.status_code == 503
    assert _user_state(ddb, name) == (("editor", False), 1)  # nothing written
    assert pages.post(f"/users/{name}/disable").status_code == 303
    assert with_stolen_cookie() == 303  # refused while disabled
    assert pages.post(f"/users/{name}/enable").status_code == 303
    assert with_stolen_cookie() == 303, "an old session came back when its user was enabled again"


@pytest.mark.parametrize("kind", FAULTS)
def test_the_admin_during_a_whole_outage_answers_503_everywhere_and_writes_nothing(admin, ddb, outages, kind):
    """Every page and API route, with every DynamoDB send failing (botocore retrying each as it would)."""
    app, pages, headers, store = admin
    store.links.create("https://example.com/x", created_by="admin1", slug="outage1")
    before = sorted(json.dumps(i, sort_keys=True) for i in ddb.scan(TableName=TABLE_NAME)["Items"])
    outage = outages(store.table.client)
    outage.kind = kind
    requests = [
        ("get", "/", {}), ("get", "/links/outage1", {}), ("get", "/links/new", {}),
        ("post", "/links/new", {"data": {"url": "https://example.com/n", "slug": "during1", "expiry": "never"}}),
        ("post", "/links/outage1/disable", {}), ("post", "/links/outage1/enable", {}),
        ("get", "/tokens", {}), ("post", "/tokens", {"data": {"name": "t", "scope": "read", "days": "30"}}),
        ("get", "/users", {}), ("post", "/users", {"data": {"username": "during", "password": "a-long-password-1", "role": "viewer"}}),
        ("get", "/api/links", {"headers": headers}), ("get", "/api/links/outage1", {"headers": headers}),
        ("get", "/api/links/outage1/stats", {"headers": headers}),
        ("post", "/api/links", {"headers": headers, "json": {"url": "https://example.com/n"}}),
        ("post", "/shorten", {"headers": headers, "json": {"url": "https://example.com/n", "slug": "during2"}}),
        ("patch", "/api/links/outage1", {"headers": headers, "json": {"is_active": False}}),
        ("get", "/api/tokens", {"headers": headers}),
        ("post", "/api/tokens", {"headers": headers, "json": {"name": "t", "scope": "read"}}),
        ("delete", "/api/tokens/nope", {"headers": headers}),
        ("get", "/api/users", {"headers": headers}),
        ("post", "/api/users", {"headers": headers, "json": {"username": "during", "password": "a-long-password-1", "role": "viewer"}}),
        ("patch", "/api/users/editor1", {"headers": headers, "json": {"disabled": True}}),
    ]
    for method, path, kwargs in requests:
        response = getattr(pages, method)(path, **kwargs)
        assert response.status_code == 503, (method, path, response.status_code)
        assert response.headers["Retry-After"] == "2"
        if path.startswith(("/api", "/shorten")):
            assert response.get_json() == {"error": "The service is busy. Please try again in a moment."}
        else:
            assert "The service is busy" in response.get_data(as_text=True)
    assert outage.failed_sends >= len(requests)
    INJECTED["admin_outage_requests"] += len(requests)
    outage.kind = None
    assert sorted(json.dumps(i, sort_keys=True) for i in ddb.scan(TableName=TABLE_NAME)["Items"]) == before
    assert pages.get("/links/outage1").status_code == 200  # and it recovers with the same session


# ------------------------------------------------------------------ the aggregator


def _click(short_id, ua="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36"):
    return json.dumps({"type": "click", "id": short_id, "ua": ua, "ref": "news.example.com", "cc": "DE"})


def _clicks(ddb, short_id):
    item = ddb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": short_id}, "sk": {"S": "clicks#us-east-1"}}).get("Item", {})
    return int(item.get("clicks", {"N": "0"})["N"]), int(item.get("bots", {"N": "0"})["N"])


# Attempts of one batch that fail while the outage lasts; the stand-in's bound on its retries, far
# above that (the template's mapping retries until the batch succeeds).
OUTAGE_ATTEMPTS = 10
RETRIES_UNTIL_SUCCESS = 50


@pytest.mark.parametrize("kind", FAULTS)
def test_an_outage_of_many_attempts_delays_clicks_and_loses_none(aggregator, ddb, outages, kind):
    outage = outages(aggregator._dynamodb)
    invocations = []

    def invoke(event, context):
        """The real handler; the outage ends once it has failed OUTAGE_ATTEMPTS invocations."""
        invocations.append(outage.kind)
        if outage.kind is not None and invocations.count(kind) > OUTAGE_ATTEMPTS:
            outage.kind = None
        return aggregator.lambda_handler(event, context)

    function = SimpleNamespace(lambda_handler=invoke, _dynamodb=aggregator._dynamodb, _kinesis=aggregator._kinesis)
    pipeline = Pipeline(function, batch_size=1, max_retries=RETRIES_UNTIL_SUCCESS)
    pipeline.send([_click("aaa"), _click("bbb")])
    outage.kind = kind
    during = [[_click("aaa")] * 3 + [_click("ccc")], [_click("aaa"), _click("bbb", ua="Twitterbot/1.0")],
              [_click("ccc")] * 5]
    for lines in during:
        pipeline.put(lines)
    # Three batches of one record, in order; the first meets the outage and is retried until it ends.
    assert pipeline.mapping.drain(), "the batches were not all delivered"
    assert pipeline.errors == OUTAGE_ATTEMPTS
    assert pipeline.mapping.invocations == 1 + OUTAGE_ATTEMPTS + 3
    assert (pipeline.mapping.discarded, pipeline.failed) == (0, [])  # nothing skipped, nothing for replay-dlq
    assert outage.failed_sends >= OUTAGE_ATTEMPTS
    INJECTED["aggregator_failed_sends"] += outage.failed_sends
    assert {s: _clicks(ddb, s) for s in ("aaa", "bbb", "ccc")} == {"aaa": (5, 0), "bbb": (1, 1), "ccc": (6, 0)}
    # Every batch delivered again afterwards counts nothing twice.
    assert pipeline.mapping.start_at("TRIM_HORIZON").drain()
    assert {s: _clicks(ddb, s) for s in ("aaa", "bbb", "ccc")} == {"aaa": (5, 0), "bbb": (1, 1), "ccc": (6, 0)}
