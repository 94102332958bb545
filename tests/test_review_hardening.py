"""An outside review of the access hardening (issue 15): each test is an attack that got through."""
import json

import pytest

from tests.conftest import ADMIN_USERNAME
from tests.support.loopback_server import LoopbackServer
from tests.test_oidc import provider, sso_app, sso_sign_in  # noqa: F401 - provider and sso_app are fixtures
from webapp import abuse, url_guard


def _rules(*pairs):
    return [{"kind": kind, "value": abuse.check_rule(kind, value)} for kind, value in pairs]


def _normalised(url):
    return url_guard.normalise_url(url, "https://sho.rt")


# ------------------------------------------------------------------ the blocklist's patterns


@pytest.mark.parametrize(("pattern", "url"), [
    # No path at all: the browser asks for "/", so "https://evil.example/*" must match it.
    ("https://evil.example/*", "https://evil.example"),
    ("https://evil.example/*", "https://evil.example?session=1"),
    ("https://evil.example/*", "https://evil.example#top"),
    # The scheme's default port written out is the same site.
    ("https://evil.example/*", "https://evil.example:443/login"),
    ("http://evil.example/*", "http://evil.example:80/login"),
    # Dot segments: the browser resolves them before it asks, so they reach the blocked path.
    ("https://example.net/phish/*", "https://example.net/x/../phish/login"),
    ("https://example.net/phish/*", "https://example.net/./phish/login"),
    ("https://example.net/phish/*", "https://example.net/x/%2e%2E/phish/login"),
    ("https://example.net/phish/*", "https://example.net/x/.%2e/phish/login"),
])
def test_a_pattern_rule_is_not_dodged_by_another_spelling_of_the_same_url(pattern, url):
    rules = _rules(("pattern", pattern))
    assert abuse.matching_rule(_normalised(url), rules) == rules[0]


@pytest.mark.parametrize("url", [
    "https://evil.example:8443/login",  # another port is another site
    "https://example.net/phish",
    "https://example.net/fish/../fish/login",
])
def test_a_pattern_rule_still_blocks_nothing_else(url):
    rules = _rules(("pattern", "https://evil.example/*"), ("pattern", "https://example.net/phish/*"))
    assert abuse.matching_rule(_normalised(url), rules) is None


# ------------------------------------------------------------------ the sign-in alarms


def _metrics(capsys):
    """The names of the embedded metrics printed since the last call."""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    return [metric["Name"] for line in lines for directive in line["_aws"]["CloudWatchMetrics"] for metric in directive["Metrics"]]


@pytest.mark.parametrize(("action", "outcome", "metric"), [
    # Guessing the second factor once the password is known, or guessing passwords with a stolen session:
    # the same attack as a failed sign-in, and the alarms are all that tells an operator.
    ("signin.second_factor", "failed", "SignInFailures"),
    ("signin.second_factor", "locked", "SignInLockouts"),
    ("password.change", "failed", "SignInFailures"),
    ("password.change", "locked", "SignInLockouts"),
    ("token.create", "failed", "SignInFailures"),
    ("mfa.disable", "locked", "SignInLockouts"),
])
def test_guessing_a_password_or_code_anywhere_counts_in_the_sign_in_alarms(app, capsys, action, outcome, metric):
    from flask import g
    from webapp import audit

    with app.test_request_context("/"):
        g.user = ADMIN_USERNAME
        audit.record(action, target=ADMIN_USERNAME, outcome=outcome)
    assert _metrics(capsys) == [metric]


def test_a_disabled_accounts_sign_in_counts_as_a_failed_one(client, store, capsys):
    store.users.create("dora", "doras-long-password-1", role="editor")
    store.users.change("dora", disabled=True)
    capsys.readouterr()
    assert client.post("/login", data={"username": "dora", "password": "doras-long-password-1"}).status_code == 422
    assert _metrics(capsys) == ["SignInFailures"]


def test_a_password_change_refused_by_the_limit_is_a_lockout(app, client, auth, capsys):
    assert auth.login().status_code == 303
    for _ in range(app.config["SIGNIN_ACCOUNT_LIMIT"]):
        client.post("/account/password", data={"current": "wrong", "new": "a-new-long-passphrase-9", "confirm": "a-new-long-passphrase-9"})
    capsys.readouterr()
    response = client.post("/account/password", data={"current": "wrong", "new": "a-new-long-passphrase-9",
                                                      "confirm": "a-new-long-passphrase-9"})
    assert response.status_code == 429
    assert _metrics(capsys) == ["SignInLockouts"]


# ------------------------------------------------------------------ what the audit log misses


def _trail(store, target):
    from datetime import date, timedelta

    records, _ = store.audit.list(first_day=date.today() - timedelta(days=2), last_day=date.today() + timedelta(days=1),
                                  target=target)
    return [(record["action"], record["actor"], record["via"], record["details"]) for record in records]


def test_disabling_and_enabling_a_link_is_audited_on_the_page_and_the_api(client, auth, store):
    link = store.links.create("https://example.com/kept", created_by=ADMIN_USERNAME)
    api_token, token_id = store.tokens.create(ADMIN_USERNAME, "tests")
    assert auth.login().status_code == 303
    assert client.post(f"/links/{link['id']}/disable").status_code == 303
    assert client.post(f"/links/{link['id']}/enable").status_code == 303
    assert client.patch(f"/api/links/{link['id']}", json={"is_active": False},
                        headers={"Authorization": f"Bearer {api_token}"}).status_code == 200
    off, on = {"changes": {"is_active": {"old": True, "new": False}}}, {"changes": {"is_active": {"old": False, "new": True}}}
    assert _trail(store, link["id"]) == [
        ("link.disable", ADMIN_USERNAME, "api", {"caller_token": token_id, "token_name": "tests", **off}),
        ("link.enable", ADMIN_USERNAME, "web", on),
        ("link.disable", ADMIN_USERNAME, "web", off),
    ]


def test_signing_out_is_audited(client, auth, store):
    assert auth.login().status_code == 303
    assert auth.logout().status_code == 303
    assert [action for action, *_ in _trail(store, ADMIN_USERNAME)] == ["session.end", "signin.ok"]


def test_an_sso_sign_in_is_found_by_the_sign_in_filters(sso_app, provider):
    """The alarms' descriptions send operators to the action filter "signin."; SSO sign-ins must be there too."""
    from datetime import date, timedelta

    assert sso_sign_in(sso_app.test_client(), provider, email="ed@example.org").status_code == 303
    records, _ = sso_app.extensions["store"].audit.list(
        first_day=date.today() - timedelta(days=1), last_day=date.today() + timedelta(days=1), action="signin.ok")
    assert [(record["action"], record["via"], record["target"]) for record in records] == [("signin.ok", "sso", "ed@example.org")]


@pytest.mark.parametrize("limit", ["\u00b2", "\u2460", "\u0661"])  # superscript two, circled one, Arabic-Indic one
def test_the_audit_api_refuses_a_limit_in_other_digits(client, api_token, limit):
    response = client.get("/api/audit", query_string={"limit": limit}, headers={"Authorization": f"Bearer {api_token}"})
    assert response.status_code == 422
    assert response.json == {"error": "limit must be a whole number from 1 to 100.", "field": "limit"}


# ------------------------------------------------------------------ security.txt on the short domain


def test_a_head_request_for_the_short_domains_security_txt_reaches_the_function():
    """GET /{short_id} has its HEAD twin; so must security.txt, or HEAD is API Gateway's 404 there
    while the admin (Flask) answers it."""
    from local_stack.http_api import route_key
    from local_stack.template import http_api_routes

    assert route_key("HEAD", "/.well-known/security.txt", http_api_routes()) == "HEAD /.well-known/security.txt"


@pytest.mark.parametrize("pattern", [
    "http*://[!ew]*",  # every site whose name does not start with e or w
    "https://*[!/]",  # every https URL that does not end in a slash
    "*?" * 22,  # every URL longer than 22 characters
    "*[!z]",  # everything not ending in z
])
def test_a_pattern_that_blocks_nearly_every_destination_is_refused(pattern):
    with pytest.raises(ValueError, match="would block ordinary destinations"):
        abuse.check_rule("pattern", pattern)


def test_patterns_that_name_a_site_or_a_path_are_still_accepted():
    for pattern in ("https://evil.example/*", "*/wp-login.php*", "http*://*.evil.example/*", "*://phish.example/*"):
        assert abuse.check_rule("pattern", pattern) == pattern


# ------------------------------------------------------------------ the creation limit


def test_a_reservation_given_back_after_its_window_turned_over_frees_nothing_in_the_next(ddb, clock, monkeypatch):
    """A create that meets a taken slug gives back its reservation; if the window turned over meanwhile,
    taking one off the new window's count would let the user past the limit there."""
    from tests.conftest import ADMIN_PASSWORD, make_app
    from webapp.exceptions import SlugTaken

    clock.now = clock.now.replace(minute=59, second=59, microsecond=0)
    app = make_app(LINK_CREATE_LIMIT=1)
    store = app.extensions["store"]
    store.users.create(ADMIN_USERNAME, ADMIN_PASSWORD)
    token, _ = store.tokens.create(ADMIN_USERNAME, "script")
    client = app.test_client()
    real_create = store.links.create

    def slow_and_taken(url, **fields):
        # The next window starts while this create is on its way, and a parallel create uses its one slot.
        clock.advance(2)
        with app.test_request_context("/"):
            abuse.reserve_creation(ADMIN_USERNAME)
        real_create("https://example.com/parallel", created_by=ADMIN_USERNAME)
        raise SlugTaken("taken")

    monkeypatch.setattr(store.links, "create", slow_and_taken)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/links", json={"url": "https://example.com/a", "slug": "taken"}, headers=headers).status_code == 409
    monkeypatch.setattr(store.links, "create", real_create)
    response = client.post("/api/links", json={"url": "https://example.com/b"}, headers=headers)
    assert response.status_code == 429  # the new window's one creation is used


# ------------------------------------------------------------------ the reputation hook


class _DrippingService:
    """A reputation service on 127.0.0.1 that answers at once, then sends its body one byte at a time,
    each well within the timeout, so no single read ever times out."""

    def __init__(self, seconds):
        import threading
        import time
        from http.server import BaseHTTPRequestHandler

        self.stopped = threading.Event()
        stopped = self.stopped

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                body = b'{"verdict": "allow"}' + b" " * 200
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.flush()
                ends = time.monotonic() + seconds
                try:
                    for byte in body:
                        if stopped.is_set() or time.monotonic() > ends:
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        stopped.wait(0.1)
                except OSError:  # the app hung up, as it should
                    pass

            def log_message(self, *args):
                pass

        self.service = LoopbackServer(Handler)
        self.url = self.service.url("/check")

    def stop(self):
        self.stopped.set()
        self.service.stop()


def test_a_service_that_drips_its_answer_is_given_up_on_within_about_the_timeout(ddb):
    """The timeout bounds each read, so a body sent a byte at a time held the create for as long as the
    service liked (here 6 s for a 0.5 s timeout; 16 KB at that pace is half an hour, past Lambda's limit)."""
    import time

    from tests.conftest import ADMIN_PASSWORD, make_app

    service = _DrippingService(seconds=6)
    try:
        app = make_app(REPUTATION_URL=service.url, REPUTATION_TIMEOUT_SECONDS=0.5, REPUTATION_ON_FAILURE="refuse")
        store = app.extensions["store"]
        store.users.create(ADMIN_USERNAME, ADMIN_PASSWORD)
        token, _ = store.tokens.create(ADMIN_USERNAME, "script")
        started = time.monotonic()
        response = app.test_client().post("/api/links", json={"url": "https://example.com/slow"},
                                          headers={"Authorization": f"Bearer {token}"})
        elapsed = time.monotonic() - started
    finally:
        service.stop()
    assert response.status_code == 503  # a failure, refused as the setting says
    assert elapsed < 2


# ------------------------------------------------------------------ checks no test pinned (surviving mutations)


from tests.test_hardening_front import _failing_get_item, redirect  # noqa: E402,F401 - redirect is a fixture
from tests.test_redirect import event, put_link  # noqa: E402


@pytest.mark.parametrize("status", [404, 410, 503])
def test_a_head_request_gets_the_error_pages_headers_too(redirect, ddb, monkeypatch, status):
    """A HEAD answer has no body, but a browser or cache may keep its headers for the GET that follows."""
    if status == 410:
        put_link(ddb, "abc1234", active=False)
    if status == 503:
        monkeypatch.setattr(redirect._client, "get_item", _failing_get_item)
    response = redirect.lambda_handler(event(method="HEAD", headers={"accept": "text/html"}), None)
    assert (response["statusCode"], response["body"]) == (status, "")
    headers = response["headers"]
    assert headers["Content-Security-Policy"] == redirect.ERROR_PAGE_HEADERS["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("position", [
    "2026-12-07~x",  # a day's end with more after it
    "2026-12-07T10:00:00Z#" + "f" * 14 + "' OR 1",
    "2026-12-07T10:00:00Z",  # a time with no sub-second part
    "2026-12-07" + "~" * 50,
])
def test_a_forged_cursor_with_a_real_day_is_refused(client, api_token, position):
    import base64

    cursor = base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")
    response = client.get("/api/audit", query_string={"cursor": cursor, "from": "2026-01-01", "to": "2026-12-31"},
                          headers={"Authorization": f"Bearer {api_token}"})
    assert response.status_code == 422 and response.json["field"] == "cursor"


def test_details_are_kept_three_levels_deep_and_no_deeper(app, store):
    from flask import g
    from webapp import audit

    deep = {"a": {"b": {"c": {"d": {"e": "bottom"}}}}}
    with app.test_request_context("/"):
        g.user = ADMIN_USERNAME
        event = audit.record("settings.change", target="site", changes=deep)
    assert event["details"] == {"changes": {"a": {"b": {"c": str({"d": {"e": "bottom"}})}}}}


class _Redirecting:
    """Two services on 127.0.0.1: the configured one answers 302 to the other, which would allow.
    (urllib follows a 302 to a POST as a GET without the body, and refuses a 307 to a POST itself.)"""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler

        self.asked_elsewhere = []
        asked = self.asked_elsewhere

        class Elsewhere(BaseHTTPRequestHandler):
            def do_GET(self):
                asked.append(self.path)
                body = b'{"verdict": "allow"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.elsewhere = LoopbackServer(Elsewhere)
        target = self.elsewhere.url("/other")

        class Configured(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.configured = LoopbackServer(Configured)
        self.url = self.configured.url("/check")

    def stop(self):
        for service in (self.elsewhere, self.configured):
            service.stop()


def test_the_reputation_service_cannot_send_the_check_elsewhere(ddb):
    from tests.conftest import ADMIN_PASSWORD, make_app

    services = _Redirecting()
    try:
        app = make_app(REPUTATION_URL=services.url, REPUTATION_TIMEOUT_SECONDS=2, REPUTATION_ON_FAILURE="refuse")
        store = app.extensions["store"]
        store.users.create(ADMIN_USERNAME, ADMIN_PASSWORD)
        token, _ = store.tokens.create(ADMIN_USERNAME, "script")
        response = app.test_client().post("/api/links", json={"url": "https://example.com/x"},
                                          headers={"Authorization": f"Bearer {token}"})
    finally:
        services.stop()
    assert response.status_code == 503  # a redirect is a failure, refused as set
    assert services.asked_elsewhere == []


@pytest.mark.integration
def test_the_local_stack_answers_head_for_security_txt_on_both_ports(tmp_path, monkeypatch):
    """Through `python -m local_stack`, which routes only the template's route keys, as API Gateway does."""
    from tests.stack_process import Stack

    monkeypatch.delenv("SECURITY_CONTACT", raising=False)
    stack = Stack("moto", tmp_path)
    try:
        for port in (stack.admin_port, stack.redirect_port):
            status, headers, data = stack.request(port, "HEAD", "/.well-known/security.txt", token=None)
            assert (status, data) == (200, b""), port
            assert headers["Content-Type"] == "text/plain; charset=utf-8"
    finally:
        assert stack.stop() == 0


def test_an_api_action_names_the_token_that_made_it(client, store):
    """A stolen token's actions must say which token to revoke: the user has up to 20."""
    plaintext, token_id = store.tokens.create(ADMIN_USERNAME, "the stolen one", scope="write")
    store.tokens.create(ADMIN_USERNAME, "another one", scope="write")
    response = client.post("/api/users", json={"username": "newbie", "password": "a-long-new-passphrase-7", "role": "viewer"},
                           headers={"Authorization": f"Bearer {plaintext}"})
    assert response.status_code == 201, response.json
    [(action, actor, via, details)] = _trail(store, "newbie")
    assert (action, actor, via) == ("user.create", ADMIN_USERNAME, "api")
    assert details["caller_token"] == token_id


@pytest.mark.parametrize("value", ["com", "COM.", "org", "xn--p1ai", "*"])
def test_a_domain_rule_that_is_a_whole_top_level_domain_is_refused(value):
    """As "*" is for patterns: "com" blocks every .com destination, surely a slip for "evil.com"."""
    with pytest.raises(ValueError, match="Enter a domain like example.com|Enter a plain domain"):
        abuse.check_rule("domain", value)


@pytest.mark.parametrize(("value", "stored"), [("evil.com", "evil.com"), ("192.0.2.1", "192.0.2.1"),
                                               ("2001:db8::1", "2001:db8::1"), ("3221225985", "192.0.2.1")])
def test_domains_and_addresses_are_still_accepted(value, stored):
    assert abuse.check_rule("domain", value) == stored


from tests.test_abuse import reputation  # noqa: E402,F401 - the stand-in reputation service, a fixture


def test_a_user_at_the_limit_cannot_make_the_app_ask_the_reputation_service(ddb, reputation):
    """Each ask costs the operator (a paid quota, a rate limit at the service): past the limit, none is made."""
    from tests.conftest import ADMIN_PASSWORD, make_app

    app = make_app(LINK_CREATE_LIMIT=1, REPUTATION_URL=reputation.url, REPUTATION_TIMEOUT_SECONDS=2)
    store = app.extensions["store"]
    store.users.create(ADMIN_USERNAME, ADMIN_PASSWORD)
    token, _ = store.tokens.create(ADMIN_USERNAME, "script")
    client, headers = app.test_client(), {"Authorization": f"Bearer {token}"}
    assert client.post("/api/links", json={"url": "https://example.com/0"}, headers=headers).status_code == 201
    for n in range(1, 6):
        assert client.post("/api/links", json={"url": f"https://example.com/{n}"}, headers=headers).status_code == 429
    assert len(reputation.requests) == 1


def test_a_refused_destination_still_does_not_use_up_the_limit(ddb, reputation):
    from tests.conftest import ADMIN_PASSWORD, make_app

    app = make_app(LINK_CREATE_LIMIT=1, REPUTATION_URL=reputation.url, REPUTATION_TIMEOUT_SECONDS=2)
    store = app.extensions["store"]
    store.users.create(ADMIN_USERNAME, ADMIN_PASSWORD)
    store.blocklist.add("domain", "evil.example", created_by=ADMIN_USERNAME)
    token, _ = store.tokens.create(ADMIN_USERNAME, "script")
    client, headers = app.test_client(), {"Authorization": f"Bearer {token}"}
    assert client.post("/api/links", json={"url": "https://evil.example/"}, headers=headers).status_code == 422
    reputation.reply = (200, {"verdict": "block", "reason": "phishing"})
    assert client.post("/api/links", json={"url": "https://example.com/bad"}, headers=headers).status_code == 422
    reputation.reply = (200, {"verdict": "allow"})
    assert client.post("/api/links", json={"url": "https://example.com/good"}, headers=headers).status_code == 201


@pytest.mark.integration
def test_parallel_creates_with_blocked_destinations_give_every_refused_reservation_back(dynamodb_local, monkeypatch):
    """On DynamoDB Local (moto's conditional updates are not atomic across threads): blocked destinations
    reserve and give back in the same burst as allowed ones; the allowed ones still stop exactly at the limit."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from tests.conftest import ADMIN_PASSWORD, make_app
    from tests.support.dynamodb_local import app_on_fresh_table

    threads, limit = 16, 5
    app = app_on_fresh_table(dynamodb_local, monkeypatch, make_app, LINK_CREATE_LIMIT=limit)
    store = app.extensions["store"]
    # One connection per thread: with botocore's default pool of 10, requests queue for a connection.
    store.table.client = dynamodb_local.client(max_pool_connections=threads)
    store.users.create(ADMIN_USERNAME, ADMIN_PASSWORD)
    store.blocklist.add("domain", "evil.example", created_by=ADMIN_USERNAME)
    token, _ = store.tokens.create(ADMIN_USERNAME, "burst")
    barrier = Barrier(threads)

    def create(n):
        barrier.wait(timeout=30)
        host = "evil.example" if n % 2 else "example.com"
        return n % 2, app.test_client().post("/api/links", json={"url": f"https://{host}/{n}"},
                                             headers={"Authorization": f"Bearer {token}"}).status_code

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(create, range(threads)))
    allowed = sorted(status for blocked, status in results if not blocked)
    assert {status for blocked, status in results if blocked} <= {422, 429}
    created = allowed.count(201)
    # A blocked create holds a slot for a moment, so an allowed one may meet a full window meanwhile.
    assert created == limit or (created < limit and 429 in allowed)
    assert len(store.links.list(100)[0]) == created
    # Afterwards every refused reservation has been given back: the counter holds exactly the links made.
    counters = store.link_creations
    window = app.config["LINK_CREATE_WINDOW_SECONDS"]
    item = counters.table.call("get_item", TableName=counters.table.name, ConsistentRead=True,
                               Key=counters._key(f"user#{ADMIN_USERNAME}", counters.window_start(window)))["Item"]
    assert int(item["attempts"]["N"]) == created
