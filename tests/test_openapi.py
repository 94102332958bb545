"""The OpenAPI description of the JSON API (webapp/api/openapi.json), kept true by test: it is valid
OpenAPI 3.1, it names exactly the routes the app serves, and a schemathesis run against the local
stack finds no 5xx and no answer that disagrees with it."""
import re

import pytest
import schemathesis
from openapi_spec_validator import OpenAPIV31SpecValidator
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.stack_process import TOKEN, Stack
from webapp.api.openapi import SPEC, SPEC_PATH

API_PREFIXES = ("/api/", "/shorten")
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
PUBLIC_OPERATIONS = {("/api/openapi.json", "GET")}


def described_operations(spec):
    """(path, METHOD) for every operation the description has."""
    return {(path, method.upper()) for path, item in spec["paths"].items() for method in item if method in HTTP_METHODS}


def served_operations(app):
    """(path, METHOD) for every API route in the app's URL map, with <short_id> written {short_id}.

    HEAD and OPTIONS are left out: Flask adds them to every rule (OPTIONS answers CORS preflights).
    """
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API_PREFIXES) or rule.rule == "/api":
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            operations |= {(path, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return operations


def operations_of(spec):
    """(path, METHOD, operation object) for every operation."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method.upper(), operation


# --- the description itself


def test_the_description_is_valid_openapi_3_1():
    assert SPEC["openapi"].startswith("3.1.")
    errors = [error.message for error in OpenAPIV31SpecValidator(SPEC).iter_errors()]
    assert errors == []


def test_the_description_names_every_api_route_and_no_other(app):
    served, described = served_operations(app), described_operations(SPEC)
    assert served - described == set(), "routes missing from webapp/api/openapi.json"
    assert described - served == set(), "webapp/api/openapi.json describes routes the app does not have"


def test_a_route_added_without_the_description_is_caught(app):
    app.add_url_rule("/api/links/<short_id>/clone", "clone", lambda short_id: "", methods=["POST"])
    assert served_operations(app) - described_operations(SPEC) == {("/api/links/{short_id}/clone", "POST")}


def test_every_operation_has_a_unique_id_and_a_summary():
    ids = [operation["operationId"] for _, _, operation in operations_of(SPEC)]
    assert len(ids) == len(set(ids))
    assert all(operation.get("summary") for _, _, operation in operations_of(SPEC))


@pytest.mark.parametrize("path, method, operation", list(operations_of(SPEC)),
                         ids=[f"{method} {path}" for path, method, _ in operations_of(SPEC)])
def test_each_operation_documents_the_errors_every_call_can_get(path, method, operation):
    statuses = set(operation["responses"])
    if (path, method) in PUBLIC_OPERATIONS:
        assert operation["security"] == []
    else:
        assert {"401", "403", "503"} <= statuses, "a token can be missing, too weak, or the table busy"
    if "requestBody" in operation:
        assert {"400", "413", "415", "422"} <= statuses, "a JSON body can be malformed, too large, not JSON, or invalid"


def test_the_description_states_the_codes_own_bounds():
    """Every limit the description states is the one the code enforces (so a change to one shows up here)."""
    from webapp import abuse, access, audit, link_rules, qr, url_guard
    from webapp.api import routes
    from webapp.audit_pages import filters
    from webapp.store import link_search, tokens

    schemas, parameters = SPEC["components"]["schemas"], SPEC["components"]["parameters"]
    paths = SPEC["paths"]
    query = {(path, p["name"]): p["schema"] for path, item in paths.items() for p in item.get("get", {}).get("parameters", [])
             if "$ref" not in p}
    stated = {
        "links per page": (parameters["LinkLimit"]["schema"]["maximum"], routes.MAX_PAGE_SIZE),
        "tokens per page": (parameters["TokenLimit"]["schema"]["maximum"], tokens.MAX_PAGE_SIZE),
        "audit records per page": (parameters["AuditLimit"]["schema"]["maximum"], filters.MAX_PAGE_SIZE),
        "stats days": (query[("/api/links/{short_id}/stats", "days")]["maximum"], routes.MAX_STATS_DAYS),
        "qr formats": (query[("/api/links/{short_id}/qr", "format")]["enum"], list(qr.MEDIA_TYPES)),
        "audit actor": (query[("/api/audit", "actor")]["maxLength"], audit.MAX_ACTOR),
        "audit target": (query[("/api/audit", "target")]["maxLength"], audit.MAX_TARGET),
        "audit action": (query[("/api/audit", "action")]["pattern"], f"^{filters.ACTION_RE.pattern}$"),
        "short id": (schemas["ShortId"]["pattern"], f"^[A-Za-z0-9_-]{{1,{link_rules.ID_MAX}}}$"),
        "url length": (schemas["NewLink"]["properties"]["url"]["maxLength"], url_guard.URL_MAX),
        "title length": (schemas["NewLink"]["properties"]["title"]["maxLength"], link_rules.TITLE_MAX),
        "username": (schemas["Username"]["pattern"], f"^{access.USERNAME_RE.pattern}$"),
        "roles": (schemas["Role"]["enum"], list(access.ROLES)),
        "scopes": (schemas["Scope"]["enum"], list(access.SCOPES)),
        "token days": (schemas["NewTokenRequest"]["properties"]["expires_in_days"]["maximum"], access.TOKEN_MAX_DAYS),
        "password length": (schemas["NewUser"]["properties"]["password"]["minLength"], access.MIN_PASSWORD_LENGTH),
        "blocklist kinds": (schemas["BlocklistKind"]["enum"], list(abuse.KINDS)),
        "blocklist value": (schemas["NewBlocklistRule"]["properties"]["value"]["maxLength"], abuse.PATTERN_MAX),
        "search length": (parameters["SearchQ"]["schema"]["maxLength"], link_search.Q_MAX),
        "tag filter length": (parameters["TagFilter"]["schema"]["maxLength"], link_rules.TAG_MAX),
        "status filter": (parameters["StatusFilter"]["schema"]["enum"], ["", *link_search.STATUSES]),
        "sorts": (parameters["LinkSort"]["schema"]["enum"], ["", *link_search.SORTS]),
        "tags per link": (schemas["Link"]["properties"]["tags"]["maxItems"], link_rules.TAGS_MAX),
        "tag length": (schemas["Link"]["properties"]["tags"]["items"]["maxLength"], link_rules.TAG_MAX),
        "note length": (schemas["NewLink"]["properties"]["note"]["maxLength"], link_rules.NOTE_MAX),
        "trail page": (query[("/api/links/{short_id}/audit", "limit")]["maximum"], routes.MAX_AUDIT_PAGE),
    }
    assert {name: pair for name, pair in stated.items() if pair[0] != pair[1]} == {}


def test_the_link_statuses_are_the_ones_the_rules_give():
    from datetime import datetime, timezone

    from webapp import link_rules

    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    given = {link_rules.link_status(link, now) for link in (
        {}, {"is_active": False}, {"expires_at": "2029-01-01T00:00:00Z"}, {"expires_at": "2031-01-01T00:00:00Z"})}
    assert set(SPEC["components"]["schemas"]["Link"]["properties"]["status"]["enum"]) == given


# --- served at GET /api/openapi.json


def test_the_description_is_served_without_a_token(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {**SPEC, "servers": [{"url": "/"}]}
    assert "Set-Cookie" not in response.headers


def test_the_description_is_cacheable_and_revalidates(client):
    response = client.get("/api/openapi.json")
    assert response.headers["Cache-Control"] == "public, max-age=300"
    etag = response.headers["ETag"]
    again = client.get("/api/openapi.json", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""


def test_the_server_url_is_the_stage_root(client):
    """Under Zappa's stage prefix (SCRIPT_NAME=/prod) the paths resolve under /prod."""
    response = client.get("/api/openapi.json", base_url="http://localhost/prod")
    assert response.status_code == 200
    assert response.get_json()["servers"] == [{"url": "/prod"}]


def test_a_token_is_still_needed_everywhere_else(client):
    response = client.get("/api/links")
    assert response.status_code == 401 and response.get_json()["error"]


# --- real answers of the app, checked against the description in the fast loop (the full run is below)

OFFLINE_SCHEMA = schemathesis.openapi.from_path(SPEC_PATH)


@pytest.fixture
def bearer(api_token):
    return {"Authorization": f"Bearer {api_token}"}


def test_answers_of_the_main_operations_match_the_description(client, bearer):
    """One call of each kind, each answer validated against its operation's responses."""
    calls = [
        ("POST", "/api/links", "/api/links", {"url": "https://example.com/a", "slug": "spec-link", "title": "T"}),
        ("POST", "/shorten", "/shorten", {"url": "https://example.com/b", "expires_at": None}),
        ("POST", "/api/links", "/api/links", {"url": "https://example.com/c", "slug": "spec-link"}),  # 409
        ("GET", "/api/links", "/api/links?limit=1", None),
        ("GET", "/api/links/{short_id}", "/api/links/spec-link", None),
        ("GET", "/api/links/{short_id}", "/api/links/nothing-here", None),  # 404
        ("PATCH", "/api/links/{short_id}", "/api/links/spec-link", {"is_active": False}),
        ("GET", "/api/links/{short_id}/stats", "/api/links/spec-link/stats?days=7", None),
        ("POST", "/api/tokens", "/api/tokens", {"name": "spec", "scope": "read"}),
        ("GET", "/api/tokens", "/api/tokens", None),
        ("GET", "/api/users", "/api/users", None),
        ("POST", "/api/users", "/api/users", {"username": "spec-user", "password": "plum orchard tuesday lantern", "role": "viewer"}),
        ("PATCH", "/api/users/{username}", "/api/users/spec-user", {"disabled": True}),
        ("DELETE", "/api/users/{username}/tokens", "/api/users/spec-user/tokens", None),
        ("POST", "/api/blocklist", "/api/blocklist", {"kind": "domain", "value": "spam.example"}),
        ("GET", "/api/blocklist", "/api/blocklist", None),
        ("GET", "/api/audit", "/api/audit?limit=5", None),
        ("GET", "/api/openapi.json", "/api/openapi.json", None),
    ]
    for method, template, url, body in calls:
        response = client.open(url, method=method, headers=bearer, json=body)
        assert response.status_code < 500, (method, url, response.get_data(as_text=True))
        OFFLINE_SCHEMA[template][method].validate_response(response)
    for method, template, url in [("GET", "/api/links/{short_id}", "/api/links/spec-link"),
                                  ("POST", "/api/links", "/api/links")]:
        unauthorised = client.open(url, method=method)
        assert unauthorised.status_code == 401
        OFFLINE_SCHEMA[template][method].validate_response(unauthorised)


def test_refusals_and_revocations_match_the_description(client, bearer):
    """What the run against the stack cannot reach with its one admin write token: a 403, and a revoked token."""
    created = client.post("/api/tokens", headers=bearer, json={"name": "reader", "scope": "read"}).get_json()
    reader = {"Authorization": f"Bearer {created['token']}"}
    refused = client.post("/api/links", headers=reader, json={"url": "https://example.com/r"})
    assert refused.status_code == 403
    OFFLINE_SCHEMA["/api/links"]["POST"].validate_response(refused)
    revoked = client.delete(f"/api/tokens/{created['id']}", headers=bearer)
    assert revoked.status_code == 204
    OFFLINE_SCHEMA["/api/tokens/{token_id}"]["DELETE"].validate_response(revoked)


def test_a_field_the_description_lacks_fails_validation(client, bearer, monkeypatch):
    """The response schemas are closed: an API that grows a field must grow its description too."""
    from webapp.api import routes

    real = routes.link_json
    monkeypatch.setattr(routes, "link_json", lambda link: {**real(link), "undocumented": 1})
    response = client.post("/api/links", headers=bearer, json={"url": "https://example.com/x"})
    assert response.status_code == 201
    assert not OFFLINE_SCHEMA["/api/links"]["POST"].is_valid_response(response)


# --- a property-based run of schemathesis against the local stack, as `make run` starts it

# Per operation: the description's examples, schemathesis' coverage cases (each bound, a missing field, a
# wrong type, no token...) and max-examples fuzzed ones; about 800 requests, 1.5 minutes on the stack.
RUN_CONFIG = schemathesis.Config.from_dict({
    "seed": 16,  # with deterministic, the same cases every run: a failure reproduces
    "generation": {"max-examples": 12, "deterministic": True},
})
LIVE_SCHEMA = schemathesis.openapi.from_path(SPEC_PATH, config=RUN_CONFIG)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The stack, holding what the description's path examples name, so that their cases find something."""
    stack = Stack("auto", tmp_path_factory.mktemp("openapi-stack"))  # LOCAL_DYNAMODB=auto, as `make run`
    try:
        parameters = SPEC["components"]["parameters"]
        made = [
            stack.api("POST", "/api/links", {"url": "https://example.com/welcome", "slug": parameters["ShortId"]["example"]}),
            stack.api("POST", "/api/users", {"username": parameters["UsernamePath"]["example"],
                                             "password": "plum orchard tuesday lantern", "role": "viewer"}),
            stack.api("POST", "/api/blocklist", {"kind": "domain", "value": "ads.example"}),
        ]
        assert [status for status, _ in made] == [201, 201, 201], made
        rule_parameter = SPEC["paths"]["/api/blocklist/{rule_id}"]["parameters"][0]
        assert made[2][1]["id"] == rule_parameter["example"]
        yield stack
    finally:
        assert stack.stop() == 0, "\n".join(stack.lines[-30:])


@pytest.mark.integration
@LIVE_SCHEMA.parametrize()
def test_the_running_api_answers_as_described(case, stack):
    """The local stack's admin user and its write token; schemathesis' positive and negative cases per operation."""
    case.call_and_validate(base_url=f"http://127.0.0.1:{stack.admin_port}",
                           headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS, timeout=10)


def test_answers_of_issue_16s_operations_match_the_description(client, bearer):
    """Search and filter pages of links with every optional field set and unset, the export, PATCH's 412
    (stale and malformed If-Match), a link's audit trail and an import: each answer validated."""
    made = client.post("/api/links", headers=bearer, json={
        "url": "https://example.com/full", "slug": "spec-full", "title": "Full", "tags": ["promo", "q1"],
        "note": "line one\nline two", "expires_at": "2099-01-01", "forward_query": False}).get_json()
    client.post("/api/links", headers=bearer, json={"url": "https://example.com/bare", "expires_at": None})
    client.patch("/api/links/spec-full", headers=bearer, json={"title": None, "archived": True})
    imported = client.post("/api/links/import", headers=bearer, content_type="text/csv",
                           data="url,slug\nhttps://example.com/i,spec-imported\nnot a url,\n")
    assert imported.status_code in (200, 201, 202), imported.get_data(as_text=True)
    OFFLINE_SCHEMA["/api/links/import"]["POST"].validate_response(imported)
    calls = [
        ("GET", "/api/links", "/api/links?q=example&status=archived&tag=promo&sort=clicks&mine=1", None, {}),
        ("GET", "/api/links", "/api/links?q=example&limit=1", None, {}),
        ("GET", "/api/links", "/api/links?status=expired", None, {}),
        ("GET", "/api/links", "/api/links?q=a", None, {}),  # 422
        ("GET", "/api/links/export", "/api/links/export?tag=promo&status=archived", None, {}),
        ("GET", "/api/links/export", "/api/links/export?status=nope", None, {}),  # 422
        ("PATCH", "/api/links/{short_id}", "/api/links/spec-full", {"note": None}, {"If-Match": '"1"'}),  # 412
        ("PATCH", "/api/links/{short_id}", "/api/links/spec-full", {"note": None}, {"If-Match": "W/1"}),  # 412
        ("PATCH", "/api/links/{short_id}", "/api/links/spec-full", {"tags": "a, b"}, {"If-Match": f'"{made["version"] + 1}"'}),
        ("GET", "/api/links/{short_id}/audit", "/api/links/spec-full/audit?limit=1", None, {}),
        ("GET", "/api/links/{short_id}/audit", "/api/links/spec-full/audit", None, {}),
        ("GET", "/api/links/import/{job_id}", imported.headers["Location"], None, {}),
    ]
    statuses = []
    for method, template, url, body, extra in calls:
        response = client.open(url, method=method, headers={**bearer, **extra}, json=body)
        statuses.append(response.status_code)
        OFFLINE_SCHEMA[template][method].validate_response(response)
    assert statuses == [200, 200, 200, 422, 200, 422, 412, 412, 200, 200, 200, 200]


def test_every_header_a_link_answer_sends_is_described(client, bearer):
    """ETag (for If-Match), Location and Retry-After: an answer that carries one names it in its response."""
    calls = [
        ("POST", "/shorten", "/shorten", {"url": "https://example.com/h1"}, {}),
        ("POST", "/api/links", "/api/links", {"url": "https://example.com/h2", "slug": "spec-head"}, {}),
        ("GET", "/api/links/{short_id}", "/api/links/spec-head", None, {}),
        ("PATCH", "/api/links/{short_id}", "/api/links/spec-head", {"title": "T"}, {}),
        ("PATCH", "/api/links/{short_id}", "/api/links/spec-head", {"title": "U"}, {"If-Match": '"1"'}),  # 412
    ]
    for method, template, url, body, extra in calls:
        response = client.open(url, method=method, headers={**bearer, **extra}, json=body)
        described = SPEC["paths"][template][method.lower()]["responses"][str(response.status_code)].get("headers", {})
        sent = {name for name in ("ETag", "Location", "Retry-After") if name in response.headers}
        assert sent <= set(described), (method, url, response.status_code, sent - set(described))
