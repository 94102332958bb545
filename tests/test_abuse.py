"""Abuse controls on link creation (webapp/abuse.py): limits per user and per token, the destination
blocklist and its admin page and API, and the reputation hook, stood in for by a local HTTP server."""
import json
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, TABLE_NAME, make_app, token_for
from tests.support.dynamodb_local import NO_JAVA, app_on_fresh_table
from tests.support.loopback_server import LoopbackServer
from webapp import abuse, url_guard


@pytest.fixture(autouse=True)
def window_start(clock):
    """Each test starts a window (on the hour), so its creations all fall in one window."""
    clock.now = clock.now.replace(minute=0, second=0, microsecond=0)
    return clock


@pytest.fixture
def audited(monkeypatch):
    """Every audit.record call of the test, as (action, keyword arguments); the real record still runs."""
    from webapp import audit

    calls, real = [], audit.record
    monkeypatch.setattr(audit, "record", lambda action, **kwargs: calls.append((action, kwargs)) or real(action, **kwargs))
    return calls


def _app(ddb, **settings):
    app = make_app(**settings)
    app.extensions["store"].users.create(ADMIN_USERNAME, ADMIN_PASSWORD)
    return app


def _signed_in(app):
    client = app.test_client()
    assert client.post("/login", data={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}).status_code == 303
    return client


def _page_create(client, url="https://example.com/page", **fields):
    return client.post("/links/new", data={"url": url, "expiry": "never", **fields}, headers={"Accept": "text/html"})


def _api_create(client, token, url="https://example.com/api", **fields):
    return client.post("/api/links", json={"url": url, **fields}, headers={"Authorization": f"Bearer {token}"})


def _items(ddb, prefix):
    # A Scan is fine in a test that inspects the whole (tiny) table.
    return [item for item in ddb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
            if item["pk"]["S"].startswith(prefix)]


def _counts(ddb):
    """The link-creation counters' values (the limit is reserved before the destination is checked)."""
    return [int(item["attempts"]["N"]) for item in _items(ddb, "linklimit#")]


def _links(ddb):
    return sorted(item["url"]["S"] for item in ddb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
                  if item["sk"]["S"] == "link")


# Limits on link creation.


def test_the_user_limit_refuses_the_next_page_create_and_writes_nothing(ddb, audited):
    app = _app(ddb, LINK_CREATE_LIMIT=3)
    client = _signed_in(app)
    for n in range(3):
        assert _page_create(client, f"https://example.com/{n}").status_code == 303
    response = _page_create(client, "https://example.com/one-too-many")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3600"
    page = response.get_data(as_text=True)
    assert "You have reached the limit of 3 new links per hour. Try again in 60 minutes." in page
    assert _links(ddb) == [f"https://example.com/{n}" for n in range(3)]
    assert ("link.limited", {"outcome": "refused", "limit": "user", "retry_after": 3600}) in audited


def test_the_user_limit_spans_the_pages_and_the_api(ddb):
    app = _app(ddb, LINK_CREATE_LIMIT=2)
    client = _signed_in(app)
    token, _ = app.extensions["store"].tokens.create(ADMIN_USERNAME, "script")
    assert _page_create(client).status_code == 303
    assert _api_create(client, token).status_code == 201
    response = _api_create(client, token, "https://example.com/third")
    assert response.status_code == 429
    assert response.json["error"].startswith("You have reached the limit of 2 new links per hour.")


def test_the_token_limit_refuses_the_next_api_create_with_retry_after(ddb, clock, audited):
    app = _app(ddb, LINK_CREATE_TOKEN_LIMIT=2)
    client = app.test_client()
    store = app.extensions["store"]
    first, _ = store.tokens.create(ADMIN_USERNAME, "first script")
    second, _ = store.tokens.create(ADMIN_USERNAME, "second script")
    clock.advance(15 * 60)
    for n in range(2):
        assert _api_create(client, first, f"https://example.com/{n}").status_code == 201
    response = _api_create(client, first, "https://example.com/refused")
    assert response.status_code == 429
    assert response.is_json
    assert response.json == {"error": "This API token has reached the limit of 2 new links per hour. Try again in 45 minutes."}
    assert response.headers["Retry-After"] == "2700"
    assert _links(ddb) == ["https://example.com/0", "https://example.com/1"]
    assert audited[-1] == ("link.limited", {"outcome": "refused", "limit": "token", "retry_after": 2700})
    # Another token of the same user has a limit of its own.
    assert _api_create(client, second, "https://example.com/other-token").status_code == 201


def test_a_refusal_by_the_token_limit_does_not_use_up_the_users(ddb):
    app = _app(ddb, LINK_CREATE_LIMIT=3, LINK_CREATE_TOKEN_LIMIT=2)
    client, store = app.test_client(), app.extensions["store"]
    first, _ = store.tokens.create(ADMIN_USERNAME, "first script")
    second, _ = store.tokens.create(ADMIN_USERNAME, "second script")
    assert [_api_create(client, first, f"https://example.com/{n}").status_code for n in range(4)] == [201, 201, 429, 429]
    assert _api_create(client, second, "https://example.com/third").status_code == 201  # the user's third
    response = _api_create(client, second, "https://example.com/fourth")
    assert response.status_code == 429
    assert response.json["error"].startswith("You have reached the limit of 3")


def test_the_limit_ends_with_its_window(ddb, clock):
    app = _app(ddb, LINK_CREATE_LIMIT=1, LINK_CREATE_WINDOW_SECONDS=600)
    client = _signed_in(app)
    assert _page_create(client, "https://example.com/1").status_code == 303
    refused = _page_create(client, "https://example.com/2")
    assert refused.status_code == 429
    assert "1 new links per 10 minutes. Try again in 10 minutes." in refused.get_data(as_text=True)
    clock.advance(600)
    assert _page_create(client, "https://example.com/2").status_code == 303


def test_refused_input_and_taken_slugs_do_not_count(ddb):
    app = _app(ddb, LINK_CREATE_LIMIT=2)
    client, store = app.test_client(), app.extensions["store"]
    token, _ = store.tokens.create(ADMIN_USERNAME, "script")
    assert _api_create(client, token, "javascript:alert(1)").status_code == 422
    assert _api_create(client, token, slug="taken").status_code == 201
    assert _api_create(client, token, slug="taken").status_code == 409
    page = _signed_in(app)
    assert _page_create(page, slug="taken").status_code == 422
    assert _api_create(client, token, "https://example.com/second").status_code == 201
    assert _api_create(client, token, "https://example.com/third").status_code == 429


def test_the_counters_live_in_the_table_with_ttl(ddb):
    app = _app(ddb)
    client = app.test_client()
    token, token_id = app.extensions["store"].tokens.create(ADMIN_USERNAME, "script")
    assert _api_create(client, token).status_code == 201
    counters = {item["pk"]["S"]: item for item in _items(ddb, "linklimit#")}
    assert set(counters) == {f"linklimit#user#{ADMIN_USERNAME}", f"linklimit#token#{token_id}"}
    for item in counters.values():
        assert item["attempts"] == {"N": "1"} and int(item["purge_at"]["N"]) > 0
        assert "list_pk" not in item
    assert _items(ddb, "signin#") == []  # sign-in and creation counters never meet


def test_creations_are_audited(ddb, audited):
    app = _app(ddb)
    client = _signed_in(app)
    token, _ = app.extensions["store"].tokens.create(ADMIN_USERNAME, "script")
    assert _page_create(client, "https://example.com/page", slug="from-page").status_code == 303
    assert _api_create(client, token, "https://example.com/api", slug="from-api").status_code == 201
    creates = [(kwargs["target"], kwargs["url"]) for action, kwargs in audited if action == "link.create"]
    assert creates == [("from-page", "https://example.com/page"), ("from-api", "https://example.com/api")]


@pytest.mark.parametrize("setting", ["LINK_CREATE_LIMIT", "LINK_CREATE_TOKEN_LIMIT", "LINK_CREATE_WINDOW_SECONDS"])
@pytest.mark.parametrize("value", [0, -1, "many", True])
def test_a_limit_that_cannot_work_stops_start_up(ddb, setting, value):
    with pytest.raises(RuntimeError, match=f"SHORTENER_{setting} must be a whole number of at least 1"):
        make_app(**{setting: value})


# The blocklist: what its rules match.


def _rules(*pairs):
    return [{"kind": kind, "value": abuse.check_rule(kind, value)} for kind, value in pairs]


def _normalised(url):
    return url_guard.normalise_url(url, "https://sho.rt")


@pytest.mark.parametrize(("rule", "url"), [
    ("example.com", "https://example.com/"),
    ("example.com", "http://EXAMPLE.com/path"),
    ("example.com", "https://example.com./x"),  # a trailing dot
    ("example.com", "https://sub.example.com/"),
    ("example.com", "https://a.b.Example.COM:8443/deep?q=1"),
    ("Example.COM.", "https://example.com/"),  # the rule's own case and trailing dot
    ("bücher.example", "https://BÜCHER.example/"),
    ("bücher.example", "https://xn--bcher-kva.example/"),
    ("xn--bcher-kva.example", "https://shop.bücher.example/"),
    ("https://evil.example/any/path", "https://evil.example/"),  # a URL given as the domain: its host
    ("192.0.2.1", "http://192.0.2.1/"),
    ("192.0.2.1", "http://3221225985/"),  # the same address as one number
    ("192.0.2.1", "http://0xc0000201/"),
    ("2001:db8::1", "http://[2001:0db8:0:0::1]/"),  # a bare IPv6 address as the rule
    ("[2001:db8::1]", "http://[2001:db8::1]:8080/"),
])
def test_a_domain_rule_blocks_the_domain_and_its_subdomains_in_every_spelling(rule, url):
    rules = _rules(("domain", rule))
    assert abuse.matching_rule(_normalised(url), rules) == rules[0]


@pytest.mark.parametrize("url", [
    "https://notexample.com/",
    "https://example.com.evil.net/",
    "https://example.co/",
    "https://evil.net/https://example.com/",
    "https://evil.net/?next=example.com",
])
def test_a_domain_rule_blocks_nothing_else(url):
    assert abuse.matching_rule(_normalised(url), _rules(("domain", "example.com"))) is None


@pytest.mark.parametrize(("url", "blocked"), [
    ("https://example.net/phish/login", True),
    ("HTTPS://EXAMPLE.NET/PHISH/login", True),  # case-insensitive
    ("https://example.net/%70hish/login", True),  # %-escapes are decoded for matching
    ("https://example.net/phish", False),
    ("https://example.net/fish/login", False),
    ("https://other.example.net/phish/login", False),
])
def test_a_pattern_rule_is_a_glob_over_the_normalised_url(url, blocked):
    rules = _rules(("pattern", "https://example.net/phish/*"))
    assert (abuse.matching_rule(_normalised(url), rules) is not None) == blocked


def test_a_pattern_can_span_hosts():
    rules = _rules(("pattern", "*/wp-login.php*"))
    assert abuse.matching_rule(_normalised("https://anywhere.example/blog/wp-login.php?x=1"), rules)
    assert abuse.matching_rule(_normalised("https://anywhere.example/blog/"), rules) is None


@pytest.mark.parametrize(("kind", "value", "message"), [
    ("domain", "", "Enter a domain or a pattern."),
    ("domain", "*.example.com", "Enter a plain domain like example.com"),
    ("domain", "exa mple.com", "cannot contain spaces"),
    ("domain", "exa_mple..com/", "Enter a domain like example.com"),
    ("domain", "x" * 301, "at most 300 characters"),
    ("pattern", "*", "would block ordinary destinations such as https://example.com/"),
    ("pattern", "*.*", "would block ordinary destinations"),
    ("pattern", "HTTP*", "would block ordinary destinations"),
    ("pattern", "*://*/*", "would block ordinary destinations"),
    ("pattern", "https://bücher.example/*", "Write the pattern in ASCII"),
    ("pattern", "https://a.example/\n*", "cannot contain spaces or control characters"),
    ("regex", "^https://", "Choose one of: domain, pattern."),
    ("domain", None, "Enter a domain or a pattern."),
])
def test_bad_rules_are_refused_with_a_message(kind, value, message):
    with pytest.raises(ValueError) as caught:
        abuse.check_rule(kind, value)
    assert message in str(caught.value)


# The blocklist on link creation.


@pytest.fixture
def blocked(app, store):
    """A blocklist with one domain rule and one pattern rule."""
    store.blocklist.add("domain", "evil.example", created_by=ADMIN_USERNAME)
    store.blocklist.add("pattern", "https://example.net/phish/*", created_by=ADMIN_USERNAME)
    return store


def test_the_page_refuses_a_blocked_destination_naming_the_rule(client, auth, blocked, ddb, audited):
    auth.login()
    response = _page_create(client, "https://Login.EVIL.example./account")
    assert response.status_code == 422
    assert "This destination is blocked by the rule domain evil.example." in response.get_data(as_text=True)
    assert _links(ddb) == [] and _counts(ddb) == [0]  # no link, and its reservation given back
    assert ("link.blocked", {"outcome": "refused", "url": "https://login.evil.example/account",
                             "rule": "domain evil.example"}) in audited


def test_the_api_refuses_a_blocked_destination_naming_the_rule(client, api_token, blocked, ddb):
    response = _api_create(client, api_token, "https://example.net/PHISH/step-1")
    assert response.status_code == 422
    assert response.json == {"error": "This destination is blocked by the rule pattern https://example.net/phish/*.",
                             "field": "url"}
    assert _links(ddb) == [] and _counts(ddb) == [0, 0]  # the user's and the token's reservations given back


def test_a_rule_applies_at_once_and_stops_when_removed(client, api_token, store):
    assert _api_create(client, api_token, "https://late.example/1").status_code == 201
    rule = store.blocklist.add("domain", "late.example", created_by=ADMIN_USERNAME)
    assert _api_create(client, api_token, "https://late.example/2").status_code == 422
    store.blocklist.remove(rule["id"])
    assert _api_create(client, api_token, "https://late.example/3").status_code == 201


# Managing the blocklist: the admin page.


def test_an_admin_adds_lists_and_removes_a_rule_on_the_page(client, auth, store, audited):
    auth.login()
    response = client.post("/settings/blocklist", data={"kind": "domain", "value": "Bücher.Example."})
    assert response.status_code == 303
    assert response.headers["Location"] == "/settings/blocklist"
    page = client.get("/settings/blocklist").get_data(as_text=True)
    assert "Blocked domain xn--bcher-kva.example." in page
    (rule,) = store.blocklist.list()
    assert (rule["kind"], rule["value"], rule["created_by"]) == ("domain", "xn--bcher-kva.example", ADMIN_USERNAME)
    assert f'data-rule-id="{rule["id"]}"' in page
    assert client.post(f"/settings/blocklist/{rule['id']}/remove").status_code == 303
    assert "Removed the rule domain xn--bcher-kva.example." in client.get("/settings/blocklist").get_data(as_text=True)
    assert store.blocklist.list() == []
    assert [action for action, _ in audited if action.startswith("blocklist.")] == ["blocklist.add", "blocklist.remove"]
    assert audited[-1][1] == {"target": rule["id"], "kind": "domain", "value": "xn--bcher-kva.example"}


@pytest.mark.parametrize(("data", "message"), [
    ({"kind": "domain", "value": "*.example.com"}, "Enter a plain domain like example.com"),
    ({"kind": "pattern", "value": "**"}, "would block ordinary destinations"),
    ({"kind": "regex", "value": "example.com"}, "Not a valid choice"),
    ({"kind": "domain", "value": ""}, "Enter a domain or a pattern."),
])
def test_the_page_refuses_a_bad_rule_and_stores_nothing(client, auth, store, data, message):
    auth.login()
    response = client.post("/settings/blocklist", data=data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert store.blocklist.list() == []


def test_the_same_rule_cannot_be_added_twice_in_any_spelling(client, auth, store):
    auth.login()
    assert client.post("/settings/blocklist", data={"kind": "domain", "value": "example.com"}).status_code == 303
    response = client.post("/settings/blocklist", data={"kind": "domain", "value": "EXAMPLE.com."})
    assert response.status_code == 422
    assert "The blocklist already has this rule." in response.get_data(as_text=True)
    assert len(store.blocklist.list()) == 1


def test_removing_a_rule_twice_says_so(client, auth, store):
    auth.login()
    rule = store.blocklist.add("domain", "example.com", created_by=ADMIN_USERNAME)
    assert client.post(f"/settings/blocklist/{rule['id']}/remove").status_code == 303
    response = client.post(f"/settings/blocklist/{rule['id']}/remove", follow_redirects=True)
    assert "That rule was already removed." in response.get_data(as_text=True)


def test_the_blocklist_is_full_at_its_cap(client, auth, store, monkeypatch):
    from webapp.store import blocklist

    monkeypatch.setattr(blocklist, "MAX_RULES", 2)
    store.blocklist.add("domain", "one.example", created_by=ADMIN_USERNAME)
    store.blocklist.add("domain", "two.example", created_by=ADMIN_USERNAME)
    auth.login()
    response = client.post("/settings/blocklist", data={"kind": "domain", "value": "three.example"})
    assert response.status_code == 422
    assert len(store.blocklist.list()) == 2


def test_the_nav_shows_the_blocklist_to_admins_only(app, client, auth, store):
    auth.login()
    assert 'href="/settings/blocklist"' in client.get("/").get_data(as_text=True)
    from tests.conftest import sign_in_as

    editor = app.test_client()
    sign_in_as(editor, store, "editor")
    assert 'href="/settings/blocklist"' not in editor.get("/").get_data(as_text=True)


# Managing the blocklist: the API.


def test_an_admin_token_adds_lists_and_removes_rules(client, api_token, store, audited):
    headers = {"Authorization": f"Bearer {api_token}"}
    response = client.post("/api/blocklist", json={"kind": "pattern", "value": "HTTPS://Example.net/Phish/*"}, headers=headers)
    assert response.status_code == 201
    rule = response.json
    assert (rule["kind"], rule["value"], rule["created_by"]) == ("pattern", "https://example.net/phish/*", ADMIN_USERNAME)
    assert client.get("/api/blocklist", headers=headers).json == {"rules": [rule]}
    again = client.post("/api/blocklist", json={"kind": "pattern", "value": "https://example.net/phish/*"}, headers=headers)
    assert again.status_code == 409
    assert client.delete(f"/api/blocklist/{rule['id']}", headers=headers).status_code == 204
    assert client.get("/api/blocklist", headers=headers).json == {"rules": []}
    assert [action for action, _ in audited] == ["blocklist.add", "blocklist.remove"]


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"kind": "domain", "value": "*.example.com"}, "value", "Enter a plain domain"),
    ({"kind": "regex", "value": "x"}, "kind", "kind must be one of: domain, pattern."),
    ({"kind": ["domain"], "value": "x"}, "kind", "kind must be one of"),
    ({"kind": "domain"}, "value", "Enter a domain or a pattern."),
    ({"kind": "domain", "value": 7}, "value", "Enter a domain or a pattern."),
    ({"kind": "domain", "value": "example.com", "note": "x"}, None, "Unknown field(s): note."),
])
def test_the_api_refuses_a_bad_rule(client, api_token, store, body, field, message):
    response = client.post("/api/blocklist", json=body, headers={"Authorization": f"Bearer {api_token}"})
    assert response.status_code == 422
    assert message in response.json["error"] and response.json.get("field") == field
    assert store.blocklist.list() == []


@pytest.mark.parametrize("rule_id", ["0123456789abcdef", "not-an-id", "x" * 2000])
def test_removing_an_unknown_rule_is_a_404(client, api_token, rule_id):
    response = client.delete(f"/api/blocklist/{rule_id}", headers={"Authorization": f"Bearer {api_token}"})
    assert response.status_code == 404
    assert response.json == {"error": "There is no blocklist rule with that id."}


def test_an_admins_read_token_cannot_manage_the_blocklist(client, store):
    token = token_for(store, "admin", scope="read")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/blocklist", headers=headers).status_code == 403
    assert client.post("/api/blocklist", json={"kind": "domain", "value": "example.com"}, headers=headers).status_code == 403
    assert store.blocklist.list() == []


# The reputation hook, stood in for by a local HTTP server.


class _Reputation:
    """A stand-in reputation service on 127.0.0.1: answers with `reply` (status, body) after `delay` seconds."""

    def __init__(self):
        self.requests, self.reply, self.delay = [], (200, {"verdict": "allow"}), 0
        self.release = threading.Event()  # ends a delayed answer early at teardown
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                service.requests.append((self.headers["Content-Type"], json.loads(self.rfile.read(length))))
                if service.delay:
                    service.release.wait(service.delay)
                status, body = service.reply
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                if status in (301, 302, 307, 308):
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.end_headers()
                try:
                    self.wfile.write(raw)
                except OSError:  # the app gave up waiting (the timeout test) and closed the connection
                    pass

            def log_message(self, *args):
                pass

        self.service = LoopbackServer(Handler)
        self.url = self.service.url("/check")

    def stop(self):
        self.release.set()
        self.service.stop()


@pytest.fixture
def reputation():
    service = _Reputation()
    yield service
    service.stop()


def _reputation_app(ddb, service, **settings):
    app = _app(ddb, REPUTATION_URL=service.url, REPUTATION_TIMEOUT_SECONDS=0.5, **settings)
    token, _ = app.extensions["store"].tokens.create(ADMIN_USERNAME, "script")
    return app, app.test_client(), token


def test_an_allowed_destination_is_created_and_the_service_sees_the_normalised_url(ddb, reputation):
    app, client, token = _reputation_app(ddb, reputation)
    assert _api_create(client, token, "https://Bücher.example/ä").status_code == 201
    assert reputation.requests == [("application/json", {"url": "https://xn--bcher-kva.example/%C3%A4"})]


def test_a_blocked_verdict_refuses_with_the_services_reason(ddb, reputation, audited):
    reputation.reply = (200, {"verdict": "block", "reason": "known phishing\nforged: line"})
    app, client, token = _reputation_app(ddb, reputation)
    response = _api_create(client, token, "https://example.com/login")
    assert response.status_code == 422
    assert response.json["error"] == "This destination was refused by the reputation service: known phishing forged: line"
    page = _page_create(_signed_in(app), "https://example.com/login")
    assert page.status_code == 422
    assert "refused by the reputation service: known phishing" in page.get_data(as_text=True)
    assert _links(ddb) == []
    assert audited[-1] == ("link.blocked", {"outcome": "refused", "url": "https://example.com/login",
                                            "rule": "reputation service: known phishing forged: line"})


def test_the_blocklist_is_checked_before_the_service_is_asked(ddb, reputation):
    app, client, token = _reputation_app(ddb, reputation)
    app.extensions["store"].blocklist.add("domain", "evil.example", created_by=ADMIN_USERNAME)
    assert _api_create(client, token, "https://evil.example/").status_code == 422
    assert reputation.requests == []


FAILURES = {
    "timeout": lambda service: setattr(service, "delay", 3),
    "server error": lambda service: setattr(service, "reply", (500, {"verdict": "block"})),
    "not json": lambda service: setattr(service, "reply", (200, b"<html>busy</html>")),
    "no verdict": lambda service: setattr(service, "reply", (200, {"verdict": "maybe"})),
    "redirect": lambda service: setattr(service, "reply", (307, {})),
    "too long": lambda service: setattr(service, "reply", (200, {"verdict": "allow", "pad": "x" * 20000})),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failing_service_allows_by_default_and_is_logged(ddb, reputation, failure, caplog):
    FAILURES[failure](reputation)
    app, client, token = _reputation_app(ddb, reputation)
    with caplog.at_level("WARNING", logger="webapp"):
        assert _api_create(client, token).status_code == 201
    assert any(r.getMessage().startswith("reputation service failed (allow)") for r in caplog.records)
    assert len(reputation.requests) == 1  # a redirect is not followed


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failing_service_refuses_when_set_to(ddb, reputation, failure):
    FAILURES[failure](reputation)
    app, client, token = _reputation_app(ddb, reputation, REPUTATION_ON_FAILURE="refuse")
    response = _api_create(client, token)
    assert response.status_code == 503
    assert response.json["error"] == "The destination could not be checked right now. Try again in a minute."
    assert _links(ddb) == []


def test_an_unreachable_service_is_a_failure(ddb):
    app = _app(ddb, REPUTATION_URL="http://127.0.0.1:9/check", REPUTATION_ON_FAILURE="refuse")
    token, _ = app.extensions["store"].tokens.create(ADMIN_USERNAME, "script")
    assert _api_create(app.test_client(), token).status_code == 503


@pytest.mark.parametrize(("settings", "message"), [
    ({"REPUTATION_URL": "http://reputation.example/check"}, "must be an https:// URL"),
    ({"REPUTATION_URL": "ftp://127.0.0.1/check"}, "must be an https:// URL"),
    ({"REPUTATION_URL": "https:///check"}, "must be an https:// URL"),
    ({"REPUTATION_ON_FAILURE": "block"}, "must be allow or refuse"),
    ({"REPUTATION_TIMEOUT_SECONDS": 0}, "from 0 to 30"),
    ({"REPUTATION_TIMEOUT_SECONDS": "2"}, "from 0 to 30"),
])
def test_reputation_settings_that_cannot_work_stop_start_up(ddb, settings, message):
    with pytest.raises(RuntimeError, match=message):
        make_app(**settings)


def test_the_service_is_off_by_default(app):
    assert app.config["REPUTATION_URL"] is None
    assert app.config["REPUTATION_ON_FAILURE"] == "allow"


# Parallel creations on DynamoDB Local (moto's conditional writes are not atomic across threads).


@pytest.mark.integration
@pytest.mark.skipif(NO_JAVA, reason="DynamoDB Local needs Java 11+")
def test_parallel_api_creates_with_one_token_stop_exactly_at_its_limit(dynamodb_local, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    threads, limit = 16, 5
    app = app_on_fresh_table(dynamodb_local, monkeypatch, make_app, LINK_CREATE_TOKEN_LIMIT=limit)
    store = app.extensions["store"]
    store.users.create(ADMIN_USERNAME, ADMIN_PASSWORD)
    token, _ = store.tokens.create(ADMIN_USERNAME, "burst")
    barrier = Barrier(threads)

    def create(n):
        barrier.wait(timeout=30)
        return _api_create(app.test_client(), token, f"https://example.com/{n}").status_code

    with ThreadPoolExecutor(threads) as pool:
        statuses = list(pool.map(create, range(threads)))
    assert sorted(statuses) == [201] * limit + [429] * (threads - limit)
    assert len(store.links.list(100)[0]) == limit
