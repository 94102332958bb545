"""Issue 15's front-door hardening: security.txt on both domains, the __Host- session cookie under
Zappa's stage, and a strict policy on the redirect's own error pages."""
import importlib
import re
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest
from botocore.exceptions import ClientError

from local_stack.http_api import route_key
from local_stack.template import http_api_routes, load_template
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, SHORT_BASE_URL, TABLE_NAME, make_app
from tests.stack_process import Stack
from tests.test_redirect import NOW, event, put_link

SECURITY_TXT = "/.well-known/security.txt"
CONTACTS = "mailto:security@example.org, https://example.org/report-a-vulnerability"
POLICY = "https://example.org/disclosure-policy"
TEMPLATE_PARAMETERS = load_template()["Parameters"]


def _fields(text):
    """security.txt's fields in order, as (name, value) pairs; every line must be a field."""
    pairs = [line.split(": ", 1) for line in text.splitlines()]
    assert all(len(pair) == 2 for pair in pairs), text
    return [tuple(pair) for pair in pairs]


def _expires(text):
    (value,) = [v for name, v in _fields(text) if name == "Expires"]
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


# ------------------------------------------------------------------ security.txt on the admin


def test_admin_security_txt_is_404_without_a_contact(client):
    assert client.get(SECURITY_TXT).status_code == 404


def test_admin_security_txt_names_the_contacts_policy_and_an_expiry_under_a_year(ddb):
    client = make_app(SECURITY_CONTACT=CONTACTS, SECURITY_POLICY=POLICY).test_client()
    response = client.get(SECURITY_TXT)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    text = response.get_data(as_text=True)
    assert _fields(text)[:2] == [("Contact", "mailto:security@example.org"),
                                 ("Contact", "https://example.org/report-a-vulnerability")]
    assert ("Policy", POLICY) in _fields(text)
    ahead = _expires(text) - datetime.now(timezone.utc)
    assert timedelta(days=7) < ahead < timedelta(days=365), "RFC 9116: Expires is required, less than a year ahead"


def test_admin_security_txt_reads_no_session_even_for_a_signed_in_browser(ddb, monkeypatch):
    app = make_app(SECURITY_CONTACT="mailto:security@example.org")
    store = app.extensions["store"]
    store.users.create(ADMIN_USERNAME, ADMIN_PASSWORD)
    client = app.test_client()
    assert client.post("/login", data={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}).status_code == 303

    def no_table_read(*args, **kwargs):
        raise AssertionError("security.txt read the session from the table")

    monkeypatch.setattr(store.sessions, "load", no_table_read)
    assert client.get(SECURITY_TXT).status_code == 200


@pytest.mark.parametrize(
    "contact",
    [
        "security@example.org",  # no scheme
        "http://example.org/security",  # not https
        "https://",
        "javascript:alert(1)",
        "mailto:security@example.org\nContact: mailto:attacker@example.net",  # a line of its own
        "mailto:security@example.org https://example.org",  # a space, not a comma
        "mailto:nobody",
    ],
)
def test_a_bad_contact_stops_start_up_with_a_clear_error(ddb, contact):
    with pytest.raises(RuntimeError, match="SHORTENER_SECURITY_CONTACT: .* is not a mailto: address or an https:// URL"):
        make_app(SECURITY_CONTACT=contact)


@pytest.mark.parametrize("policy", ["http://example.org/policy", "example.org/policy", "https://example.org/a\nb"])
def test_a_bad_policy_stops_start_up_with_a_clear_error(ddb, policy):
    with pytest.raises(RuntimeError, match="SHORTENER_SECURITY_POLICY: .* is not an https:// URL"):
        make_app(SECURITY_CONTACT="mailto:security@example.org", SECURITY_POLICY=policy)


def test_the_contact_setting_is_read_from_the_environment(ddb, monkeypatch):
    monkeypatch.setenv("SHORTENER_SECURITY_CONTACT", CONTACTS)
    assert make_app().config["SECURITY_CONTACT"] == ["mailto:security@example.org",
                                                     "https://example.org/report-a-vulnerability"]


# ------------------------------------------------------------------ security.txt on the short domain


@pytest.fixture
def redirect(ddb, monkeypatch):
    """The redirect handler, imported after moto started, at tests/test_redirect.py's NOW, with a contact and a policy."""
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    module = importlib.import_module("redirect_fn.handler")
    module._cache.clear()
    monkeypatch.setattr(module.time, "time", lambda: NOW)
    monkeypatch.setattr(module, "SECURITY_CONTACT", [c.strip() for c in CONTACTS.split(",")])
    monkeypatch.setattr(module, "SECURITY_POLICY", POLICY)
    yield module
    module._cache.clear()


@pytest.fixture
def calls(redirect):
    made = []

    def record(model, **_):
        made.append(model.name)

    redirect._client.meta.events.register("before-call.dynamodb", record)
    yield made
    redirect._client.meta.events.unregister("before-call.dynamodb", record)


def test_short_domain_security_txt_is_served_without_a_table_read_or_a_click(redirect, calls, capsys):
    response = redirect.lambda_handler(event(".well-known/security.txt"), None)
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "text/plain; charset=utf-8"
    assert _fields(response["body"])[0] == ("Contact", "mailto:security@example.org")
    assert _expires(response["body"]) == datetime.fromtimestamp(NOW, timezone.utc).replace(microsecond=0) + timedelta(days=30)
    assert calls == [] and capsys.readouterr().out == ""


def test_short_domain_security_txt_is_404_without_a_contact(redirect, monkeypatch, calls):
    monkeypatch.setattr(redirect, "SECURITY_CONTACT", [])
    response = redirect.lambda_handler(event(".well-known/security.txt", headers={"accept": "text/html"}), None)
    assert response["statusCode"] == 404 and "Link not found" in response["body"]
    assert calls == []


@pytest.mark.parametrize(("contacts", "policy"), [
    (["mailto:a@example.org"], None),
    (["mailto:a@example.org", "https://example.org/x?y=1"], POLICY),
])
def test_both_domains_render_the_same_text(redirect, contacts, policy):
    from webapp import well_known

    now = datetime.fromtimestamp(NOW, timezone.utc)
    assert redirect.security_txt(contacts, policy, NOW) == well_known.render(contacts, policy, now)


def test_the_short_domain_routes_the_path_to_the_function():
    """GET /{short_id} matches one path segment only: without its own route, API Gateway answers 404."""
    routes = http_api_routes()
    assert route_key("GET", SECURITY_TXT, routes) == "GET /.well-known/security.txt"
    assert route_key("GET", SECURITY_TXT, routes - {"GET /.well-known/security.txt"}) is None


def test_no_short_id_can_shadow_the_well_known_path(redirect, calls):
    from webapp.exceptions import InvalidSlug
    from webapp.link_rules import check_slug

    for slug in (".well-known", "well-known"):
        with pytest.raises(InvalidSlug):
            check_slug(slug)
    assert redirect.resolve(".well-known", NOW) == (404, None) and calls == []


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (CONTACTS.replace(" ", ""), True),
        ("mailto:security@example.org", True),
        ("https://example.org", True),
        ("", True),  # the default: 404
        ("security@example.org", False),
        ("http://example.org", False),
        ("mailto:security@example.org, https://example.org", False),  # the stack takes no spaces
        ("mailto:nobody", False),
    ],
)
def test_the_stack_parameter_accepts_what_the_admin_accepts(value, valid):
    from webapp.well_known import parse_contacts

    assert bool(re.fullmatch(TEMPLATE_PARAMETERS["SecurityContact"]["AllowedPattern"], value)) is valid
    if valid:
        assert parse_contacts(value) == [v for v in value.split(",") if v]
    elif " " not in value:
        with pytest.raises(RuntimeError):
            parse_contacts(value)


def test_the_policy_parameter_takes_an_https_url_or_nothing():
    pattern = TEMPLATE_PARAMETERS["SecurityPolicyUrl"]["AllowedPattern"]
    assert re.fullmatch(pattern, POLICY) and re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "http://example.org/policy")


def test_make_run_has_a_local_contact(monkeypatch):
    from local_stack.__main__ import LOCAL_SECURITY_CONTACT, _settings

    monkeypatch.delenv("SECURITY_CONTACT", raising=False)
    assert _settings()["security_contact"] == LOCAL_SECURITY_CONTACT


@pytest.mark.integration
def test_the_local_stack_serves_security_txt_on_both_ports(tmp_path, monkeypatch):
    monkeypatch.delenv("SECURITY_CONTACT", raising=False)
    stack = Stack("moto", tmp_path)
    try:
        for port in (stack.admin_port, stack.redirect_port):
            status, headers, data = stack.request(port, "GET", SECURITY_TXT, token=None)
            assert status == 200, (port, data)
            assert headers["Content-Type"] == "text/plain; charset=utf-8"
            assert data.decode().startswith("Contact: mailto:security@example.com\nExpires: ")
    finally:
        assert stack.stop() == 0


# ------------------------------------------------------------------ the __Host- session cookie


def _staged_https(client):
    """Requests under Zappa's stage ("/prod" in SCRIPT_NAME), over https so Secure cookies come back."""
    return lambda method, path, **kwargs: client.open(path, method=method, base_url="https://localhost/prod", **kwargs)


def _set_cookie_attributes(header):
    name_value, *attributes = [part.strip() for part in header.split(";")]
    return name_value.split("=", 1)[0], {a.split("=", 1)[0].lower(): (a.split("=", 1) + [""])[1] for a in attributes}


def test_the_session_cookie_is_a_host_cookie_under_the_stage(ddb):
    """__Host-: Secure, Path=/ and no Domain, or browsers drop it; Flask's path ignores the "/prod" stage."""
    from webapp import create_app

    # The app's own cookie defaults, outside local mode (the other tests turn Secure off for plain http).
    app = create_app({"TESTING": True, "TABLE_NAME": TABLE_NAME, "SHORT_BASE_URL": SHORT_BASE_URL,
                      "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False})
    app.extensions["store"].users.create(ADMIN_USERNAME, ADMIN_PASSWORD)
    request = _staged_https(app.test_client())
    response = request("POST", "/login", data={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    assert response.status_code == 303 and response.headers["Location"] == "/prod/dashboard"  # sign-in lands on the dashboard
    name, attributes = _set_cookie_attributes(response.headers["Set-Cookie"])
    assert name == "__Host-session"
    assert "secure" in attributes and attributes["path"] == "/" and "domain" not in attributes
    assert request("GET", "/").status_code == 200, "the cookie signs the next staged request in"


def test_local_mode_keeps_a_plain_cookie_over_http(ddb):
    app = make_app(LOCAL_MODE=True)
    app.extensions["store"].users.create(ADMIN_USERNAME, ADMIN_PASSWORD)
    response = app.test_client().post("/login", data={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    name, attributes = _set_cookie_attributes(response.headers["Set-Cookie"])
    assert name == "session" and "secure" not in attributes


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"SESSION_COOKIE_DOMAIN": "example.org"}, "SHORTENER_SESSION_COOKIE_DOMAIN"),
        ({"SESSION_COOKIE_PATH": "/prod"}, "SHORTENER_SESSION_COOKIE_PATH"),
        ({"APPLICATION_ROOT": "/prod"}, "SHORTENER_APPLICATION_ROOT"),
        ({"SESSION_COOKIE_SECURE": False}, "SHORTENER_SESSION_COOKIE_SECURE=false is for local mode only"),
    ],
)
def test_a_cookie_setting_a_host_cookie_cannot_have_stops_start_up(ddb, setting, message):
    from webapp import create_app

    with pytest.raises(RuntimeError, match=re.escape(message)):
        create_app({"TABLE_NAME": TABLE_NAME, "SHORT_BASE_URL": SHORT_BASE_URL, "SECRET_KEY": "k" * 32, **setting})


# ------------------------------------------------------------------ the redirect's own error pages


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.styled = set(), 0

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.styled += any(name == "style" for name, _ in attrs)


def _failing_get_item(**_):
    raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}}, "GetItem")


@pytest.mark.parametrize("status", [404, 410, 503])
@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_error_pages_cannot_run_anything_or_be_framed(redirect, ddb, monkeypatch, status, accept):
    if status == 410:
        put_link(ddb, "abc1234", active=False)
    if status == 503:
        monkeypatch.setattr(redirect._client, "get_item", _failing_get_item)
    response = redirect.lambda_handler(event(headers={"accept": accept}), None)
    assert response["statusCode"] == status
    headers = response["headers"]
    policy = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "script-src" not in policy and "'unsafe-inline'" not in policy["default-src"]
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"


def test_the_error_page_policy_allows_exactly_what_the_page_uses(redirect):
    """Inline style attributes only: no script, stylesheet, image, frame or form to allow."""
    parser = _Elements()
    parser.feed(redirect.lambda_handler(event("missing1", headers={"accept": "text/html"}), None)["body"])
    assert parser.styled and parser.tags <= {"html", "meta", "title", "body", "main", "h1", "p"}
    assert "style-src 'unsafe-inline'" in redirect.ERROR_PAGE_HEADERS["Content-Security-Policy"]


def test_redirects_stay_as_they_were(redirect, ddb):
    put_link(ddb, "abc1234")
    response = redirect.lambda_handler(event(), None)
    assert response["statusCode"] == 302
    assert set(response["headers"]) == {"Location", "Cache-Control"}
