"""The redirect Lambda: every status, HEAD, the cache, stale-if-error, both payload formats, the import rule."""
import ast
import copy
import importlib
import json
import sys
from pathlib import Path

import pytest
from botocore.exceptions import (ClientError, ConnectTimeoutError, EndpointConnectionError, NoCredentialsError,
                                 ReadTimeoutError)

from tests.conftest import SALT_TABLE_NAME, TABLE_NAME

EVENTS = Path(__file__).parent / "events"
REDIRECT_DIR = Path(__file__).resolve().parent.parent / "redirect_fn"
NOW = 1_795_757_759.0  # 2026-11-27T05:35:59Z


@pytest.fixture
def redirect(ddb, salts_table, monkeypatch):
    """The handler module, imported after moto started (its client is built at import time), reading the
    day's salt from the salts' own table."""
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    monkeypatch.setenv("SALT_TABLE_NAME", salts_table)
    module = importlib.import_module("redirect_fn.handler")
    monkeypatch.setattr(module, "SALT_TABLE_NAME", salts_table)  # read at import: another test may have imported it
    module._cache.clear()
    monkeypatch.setattr(module, "_salt", module._Salt())  # no salt held from another test's table
    monkeypatch.setattr(module.time, "time", lambda: NOW)
    yield module
    module._cache.clear()


@pytest.fixture
def calls(redirect):
    """Every DynamoDB operation the handler's client makes, by name ("GetItem salt#" for a salt read, which
    is one only in the salts' table; a read of any key there but a salt's would be "... salts-table?")."""
    made = []

    def record(model, params, **_):
        salt = params.get("Key", {}).get("pk", {}).get("S") == "salt#"
        in_salts_table = params.get("TableName") == SALT_TABLE_NAME
        if salt != in_salts_table:
            made.append(f"{model.name} salts-table?")
        else:
            made.append(f"{model.name} salt#" if salt else model.name)

    redirect._client.meta.events.register("provide-client-params.dynamodb", record)
    yield made
    redirect._client.meta.events.unregister("provide-client-params.dynamodb", record)


def put_link(ddb, short_id, url="https://example.com/page", active=True, expires_at=None):
    item = {
        "pk": {"S": short_id},
        "sk": {"S": "link"},
        "url": {"S": url},
        "is_active": {"BOOL": active},
        "click_count": {"N": "0"},
    }
    if expires_at:
        item["expires_at"] = {"S": expires_at}
    ddb.put_item(TableName=TABLE_NAME, Item=item)


def event(short_id="abc1234", method="GET", fmt="v2", headers=None):
    name = "http_api_v2_get.json" if fmt == "v2" else "rest_api_v1_get.json"
    evt = copy.deepcopy(json.loads((EVENTS / name).read_text()))
    if fmt == "v2":
        evt["rawPath"] = f"/{short_id}"
        evt["requestContext"]["http"]["method"] = method
        evt["requestContext"]["http"]["path"] = f"/{short_id}"
    else:
        evt["path"] = f"/{short_id}"
        evt["httpMethod"] = method
    if headers is not None:
        evt["headers"] = headers
    return evt


def click_lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_live_link_redirects_302(redirect, ddb, fmt):
    put_link(ddb, "abc1234", "https://example.com/landing?utm=1")
    response = redirect.lambda_handler(event(fmt=fmt), None)
    assert response["statusCode"] == 302
    assert response["headers"]["Location"] == "https://example.com/landing?utm=1"
    assert response["headers"]["Cache-Control"] == "private, max-age=10"
    assert not any(name.lower() == "set-cookie" for name in response["headers"])


def test_head_answers_like_get_without_counting_a_click(redirect, ddb, capsys):
    put_link(ddb, "abc1234")
    response = redirect.lambda_handler(event(method="HEAD"), None)
    assert response["statusCode"] == 302
    assert response["headers"]["Location"] == "https://example.com/page"
    assert response["body"] == ""
    assert click_lines(capsys) == [], "a HEAD is not a click, and nothing else is printed"


def test_head_on_unknown_link_has_no_body(redirect):
    response = redirect.lambda_handler(event("nope123", method="HEAD"), None)
    assert response["statusCode"] == 404
    assert response["body"] == ""


@pytest.mark.parametrize(
    ("accept", "content_type", "needle"),
    [
        ("text/html,application/xhtml+xml", "text/html; charset=utf-8", "<h1>Link not found</h1>"),
        ("application/json", "application/json", '"error"'),
    ],
)
def test_unknown_link_is_404_page_for_browsers_and_json_for_scripts(redirect, accept, content_type, needle):
    response = redirect.lambda_handler(event("missing1", headers={"accept": accept}), None)
    assert response["statusCode"] == 404
    assert response["headers"]["Content-Type"] == content_type
    assert needle in response["body"]
    assert "Location" not in response["headers"]


def test_disabled_link_is_410(redirect, ddb):
    put_link(ddb, "abc1234", active=False)
    response = redirect.lambda_handler(event(), None)
    assert response["statusCode"] == 410
    assert "disabled" in response["body"]


@pytest.mark.parametrize(
    ("expires_at", "status"),
    [("2026-11-27T05:35:58Z", 410), ("2026-11-27T05:35:59Z", 410), ("2026-11-27T05:36:00Z", 302)],
)
def test_expiry_boundary(redirect, ddb, expires_at, status):
    put_link(ddb, "abc1234", expires_at=expires_at)
    assert redirect.lambda_handler(event(), None)["statusCode"] == status


@pytest.mark.parametrize(
    "short_id",
    ["", "a/b", "abc%20d", "ab.cd", "<script>", "x" * 65, "caf\u00e9", "abc1234/", "..", "a b"],
)
def test_impossible_id_is_404_without_a_dynamodb_call(redirect, calls, short_id):
    response = redirect.lambda_handler(event(short_id), None)
    assert response["statusCode"] == 404
    assert calls == []


def test_miss_then_hit_makes_exactly_one_read_and_no_write(redirect, ddb, calls):
    put_link(ddb, "abc1234")
    for _ in range(5):
        assert redirect.lambda_handler(event(), None)["statusCode"] == 302
    # The link once, and the day's salt once (none here: tried again only after SALT_RETRY_SECONDS).
    assert calls == ["GetItem", "GetItem salt#"]


def test_get_item_fetches_only_what_it_needs(redirect, ddb):
    put_link(ddb, "abc1234")
    seen = []
    redirect._client.meta.events.register("provide-client-params.dynamodb.GetItem", lambda params, **_: seen.append(params))
    redirect.lambda_handler(event(), None)
    names = seen[0]["ExpressionAttributeNames"]
    projected = [names[p.strip()] for p in seen[0]["ProjectionExpression"].split(",")]
    assert projected == ["url", "is_active", "expires_at", "forward_query"]
    assert seen[0]["Key"] == {"pk": {"S": "abc1234"}, "sk": {"S": "link"}}


def test_cache_expires_after_the_window(redirect, ddb, calls, monkeypatch):
    put_link(ddb, "abc1234")
    redirect.lambda_handler(event(), None)
    ddb.update_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": "abc1234"}, "sk": {"S": "link"}},
        UpdateExpression="SET is_active = :f",
        ExpressionAttributeValues={":f": {"BOOL": False}},
    )
    assert redirect.lambda_handler(event(), None)["statusCode"] == 302  # still cached
    monkeypatch.setattr(redirect.time, "time", lambda: NOW + redirect.LINK_CACHE_SECONDS + 0.1)
    assert redirect.lambda_handler(event(), None)["statusCode"] == 410  # disable seen after the window
    assert calls == ["GetItem", "GetItem salt#", "GetItem"]


def test_expiry_is_checked_on_every_request_even_when_cached(redirect, ddb, monkeypatch):
    put_link(ddb, "abc1234", expires_at="2026-11-27T05:36:01Z")
    assert redirect.lambda_handler(event(), None)["statusCode"] == 302
    monkeypatch.setattr(redirect.time, "time", lambda: NOW + 3)  # inside the cache window
    assert redirect.lambda_handler(event(), None)["statusCode"] == 410


def test_missing_link_is_cached_for_a_shorter_time(redirect, ddb, calls, monkeypatch):
    assert redirect.lambda_handler(event("later12"), None)["statusCode"] == 404
    put_link(ddb, "later12")
    assert redirect.lambda_handler(event("later12"), None)["statusCode"] == 404  # negative cache
    monkeypatch.setattr(redirect.time, "time", lambda: NOW + redirect.MISSING_CACHE_SECONDS + 0.1)
    assert redirect.lambda_handler(event("later12"), None)["statusCode"] == 302
    assert redirect.MISSING_CACHE_SECONDS < redirect.LINK_CACHE_SECONDS
    assert calls == ["GetItem", "GetItem", "GetItem salt#"]  # a 404 is no click: no salt read for it


def _failing_get_item(exc):
    def get_item(**_):
        raise exc

    return get_item


THROTTLED = ClientError(
    {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "GetItem"
)
TIMEOUT = ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")


@pytest.mark.parametrize("failure", [THROTTLED, TIMEOUT], ids=["throttled", "timeout"])
def test_stale_cache_is_served_when_dynamodb_fails(redirect, ddb, monkeypatch, failure):
    put_link(ddb, "abc1234")
    assert redirect.lambda_handler(event(), None)["statusCode"] == 302
    monkeypatch.setattr(redirect.time, "time", lambda: NOW + 3600)  # long past the window
    monkeypatch.setattr(redirect._client, "get_item", _failing_get_item(failure))
    response = redirect.lambda_handler(event(), None)
    assert response["statusCode"] == 302
    assert response["headers"]["Location"] == "https://example.com/page"


@pytest.mark.parametrize("failure", [THROTTLED, TIMEOUT], ids=["throttled", "timeout"])
def test_no_cache_and_dynamodb_down_is_503_with_retry_after(redirect, monkeypatch, failure):
    monkeypatch.setattr(redirect._client, "get_item", _failing_get_item(failure))
    response = redirect.lambda_handler(event(headers={"accept": "text/html"}), None)
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == "1"
    assert response["headers"]["Cache-Control"] == "no-store"
    assert "Traceback" not in response["body"]
    assert "slow down" not in response["body"]


def test_cache_is_bounded(redirect, ddb, monkeypatch):
    monkeypatch.setattr(redirect, "CACHE_MAX_ENTRIES", 3)
    for i in range(5):
        redirect.lambda_handler(event(f"miss{i:03d}"), None)
    assert len(redirect._cache) == 3
    assert "miss000" not in redirect._cache


def test_click_line_is_short_and_bounded(redirect, ddb, capsys):
    put_link(ddb, "abc1234")
    long_agent = "Mozilla/5.0 " + "x" * 1000
    headers = {
        "referer": "https://news.example.com/story?id=1&email=someone@example.com",
        "user-agent": long_agent,
        "cloudfront-viewer-country": "DE",
        "x-forwarded-for": "203.0.113.9",
    }
    redirect.lambda_handler(event(headers=headers), None)
    [line] = click_lines(capsys)
    # Only the referrer's host, no time (the log event has it), no metric block, and no country
    # from a header any visitor can forge.
    assert line == {"type": "click", "id": "abc1234", "ref": "news.example.com", "ua": long_agent[:256]}


def test_an_overlong_referrer_host_is_cut_to_a_dns_name_length(redirect, ddb, capsys):
    put_link(ddb, "abc1234")
    redirect.lambda_handler(event(headers={"referer": "https://" + "a" * 9000 + ".example/"}), None)
    [line] = click_lines(capsys)
    assert len(line["ref"]) == 253


@pytest.mark.parametrize(
    ("front", "country", "logged"),
    [
        ("s3cret-front", "DE", "DE"),  # the trusted front's header
        ("wrong", "DE", None),  # a visitor forging the header
        (None, "DE", None),
        ("s3cret-front", "<SCRIPT>ALERT(1)</SCRIPT>", None),
        ("s3cret-front", "de", None),
    ],
)
def test_country_comes_only_from_the_trusted_front(redirect, ddb, capsys, monkeypatch, front, country, logged):
    monkeypatch.setattr(redirect, "TRUSTED_FRONT_SECRET", "s3cret-front")
    put_link(ddb, "abc1234")
    headers = {"cloudfront-viewer-country": country}
    if front:
        headers["x-shortener-front"] = front
    redirect.lambda_handler(event(headers=headers), None)
    [line] = click_lines(capsys)
    assert line.get("cc") == logged


def test_without_a_trusted_front_no_country_is_logged(redirect, ddb, capsys):
    put_link(ddb, "abc1234")
    assert redirect.TRUSTED_FRONT_SECRET is None
    redirect.lambda_handler(event(headers={"cloudfront-viewer-country": "DE", "x-shortener-front": ""}), None)
    [line] = click_lines(capsys)
    assert "cc" not in line


def test_click_line_never_contains_the_client_ip(redirect, ddb, capsys):
    put_link(ddb, "abc1234")
    redirect.lambda_handler(event(), None)  # the stored event carries 203.0.113.9 twice
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "203.0.113.9" not in out


@pytest.mark.parametrize(("setup", "status"), [("missing", 404), ("disabled", 410)])
def test_non_clicks_print_nothing(redirect, ddb, capsys, setup, status):
    """API Gateway already counts answers by status; only clicks are worth a log line."""
    if setup == "disabled":
        put_link(ddb, "abc1234", active=False)
    assert redirect.lambda_handler(event(), None)["statusCode"] == status
    assert capsys.readouterr().out == ""


def test_redirect_only_imports_the_standard_library_and_botocore():
    """The hot path must stay free of Flask, webapp and any third-party package."""
    allowed = set(sys.stdlib_module_names) | {"boto3", "botocore"}
    found = set()
    for path in REDIRECT_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module.split(".")[0])
    assert found, "the parser found no imports at all"
    assert found <= allowed, f"redirect_fn imports {sorted(found - allowed)}"


def test_bare_domain_goes_to_the_admin_when_configured(redirect, monkeypatch, calls):
    monkeypatch.setattr(redirect, "ROOT_REDIRECT_URL", "https://admin.example.com/")
    response = redirect.lambda_handler(event(""), None)
    assert response["statusCode"] == 302
    assert response["headers"]["Location"] == "https://admin.example.com/"
    assert calls == []


# ------------------------------------------------------------------ a failed read is logged, once

def error_lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"type":"error"')]


def client_error(code):
    return ClientError({"Error": {"Code": code, "Message": "from AWS"}}, "GetItem")


@pytest.mark.parametrize(("failure", "code", "retryable"), [
    (client_error("ProvisionedThroughputExceededException"), "ProvisionedThroughputExceededException", True),
    (client_error("ThrottlingException"), "ThrottlingException", True),
    (client_error("RequestLimitExceeded"), "RequestLimitExceeded", True),
    (client_error("InternalServerError"), "InternalServerError", True),
    (client_error("ServiceUnavailable"), "ServiceUnavailable", True),
    (TIMEOUT, "ReadTimeoutError", True),
    (ConnectTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"), "ConnectTimeoutError", True),
    (EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"), "EndpointConnectionError", True),
    (client_error("AccessDeniedException"), "AccessDeniedException", False),
    (client_error("ResourceNotFoundException"), "ResourceNotFoundException", False),
    (client_error("ValidationException"), "ValidationException", False),
    (client_error("UnrecognizedClientException"), "UnrecognizedClientException", False),
    (NoCredentialsError(), "NoCredentialsError", False),
], ids=lambda value: value if isinstance(value, str) else None)
def test_a_failed_read_prints_one_error_line_and_still_answers_503(redirect, monkeypatch, capsys, failure, code, retryable):
    monkeypatch.setattr(redirect, "FUNCTION_NAME", "links-redirect")
    monkeypatch.setattr(redirect._client, "get_item", _failing_get_item(failure))
    assert redirect.lambda_handler(event(), None)["statusCode"] == 503
    assert error_lines(capsys) == [{"type": "error", "error": code, "retryable": retryable, "function": "links-redirect"}]


def test_a_failed_read_answered_from_the_stale_cache_is_logged_too(redirect, ddb, monkeypatch, capsys):
    """The cache hides an outage from visitors, not from the alarm: AccessDenied behind it must still be seen."""
    put_link(ddb, "abc1234")
    assert redirect.lambda_handler(event(), None)["statusCode"] == 302
    monkeypatch.setattr(redirect.time, "time", lambda: NOW + 3600)
    monkeypatch.setattr(redirect._client, "get_item", _failing_get_item(client_error("AccessDeniedException")))
    capsys.readouterr()
    assert redirect.lambda_handler(event(), None)["statusCode"] == 302
    [line] = error_lines(capsys)
    assert line["error"] == "AccessDeniedException" and line["retryable"] is False


def test_the_error_line_holds_nothing_from_the_request_or_the_message(redirect, monkeypatch, capsys):
    secret_path = "Zz9" * 20
    failure = ClientError({"Error": {"Code": "X" * 500, "Message": f"key {secret_path} denied"}}, "GetItem")
    monkeypatch.setattr(redirect._client, "get_item", _failing_get_item(failure))
    redirect.lambda_handler(event(secret_path, headers={"user-agent": "agent-007", "referer": "https://r.example/"}), None)
    out = capsys.readouterr().out
    [line] = [json.loads(text) for text in out.splitlines()]
    assert line["error"] == "X" * redirect.ERROR_CODE_MAX
    for leaked in (secret_path, "agent-007", "r.example", "denied"):
        assert leaked not in out


def test_error_codes_are_a_closed_set_of_dynamodb_retryable_ones(redirect):
    """Anything not named here is an operator's problem (IAM, a missing table), and alarms at once."""
    assert redirect.RETRYABLE_CODES == {"ThrottlingException", "ProvisionedThroughputExceededException",
                                        "RequestLimitExceeded", "InternalServerError", "ServiceUnavailable"}


# ------------------------------------------------------------------ unique visitors: the salted hash "v"

SALT = bytes(range(32))
NEXT_SALT = bytes(range(100, 132))
TODAY, TOMORROW = "2026-11-27", "2026-11-28"  # NOW's UTC day, and the next
IPHONE = json.loads((EVENTS / "http_api_v2_get.json").read_text())["headers"]["user-agent"]


def put_salt(ddb, day=TODAY, salt=SALT):
    ddb.put_item(TableName=SALT_TABLE_NAME, Item={"pk": {"S": "salt#"}, "sk": {"S": day}, "salt": {"B": salt},
                                                  "purge_at": {"N": "1"}})


def visitor_event(source_ip="203.0.113.9", user_agent="Mozilla/5.0 (X11; Linux x86_64)", fmt="v2", headers=None):
    evt = event(fmt=fmt, headers={"user-agent": user_agent, **(headers or {})})
    if fmt == "v2":
        evt["requestContext"]["http"]["sourceIp"] = source_ip
    else:
        evt["requestContext"]["identity"]["sourceIp"] = source_ip
    return evt


def clicked_v(redirect, evt, capsys):
    assert redirect.lambda_handler(evt, None)["statusCode"] == 302
    [line] = click_lines(capsys)
    return line.get("v")


def expected_v(address, user_agent, salt=SALT):
    import hashlib

    return hashlib.blake2b(f"{address}\n{user_agent}".encode(), key=salt, digest_size=8).hexdigest()


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_v_is_the_keyed_blake2b_of_address_and_user_agent_with_the_days_salt(redirect, ddb, capsys, fmt):
    put_link(ddb, "abc1234")
    put_salt(ddb)
    v = clicked_v(redirect, visitor_event("198.51.100.7", "curl/8.5.0", fmt=fmt), capsys)
    assert v == expected_v("198.51.100.7", "curl/8.5.0")
    assert len(v) == 16 and set(v) <= set("0123456789abcdef")


def test_the_click_line_shape_with_v(redirect, ddb, capsys):
    put_link(ddb, "abc1234")
    put_salt(ddb)
    redirect.lambda_handler(event(), None)  # the stored event: referrer, country header, X-Forwarded-For
    [line] = click_lines(capsys)
    assert line == {"type": "click", "id": "abc1234", "ua": IPHONE, "ref": "news.example.com",
                    "v": expected_v("203.0.113.9", IPHONE)}


def test_same_visitor_same_day_same_hash_and_another_visitor_another(redirect, ddb, capsys, monkeypatch):
    put_link(ddb, "abc1234")
    put_salt(ddb)
    first = clicked_v(redirect, visitor_event(), capsys)
    monkeypatch.setattr(redirect.time, "time", lambda: NOW + 3600)  # later the same UTC day
    assert clicked_v(redirect, visitor_event(), capsys) == first
    assert clicked_v(redirect, visitor_event(source_ip="203.0.113.10"), capsys) != first
    assert clicked_v(redirect, visitor_event(user_agent="Mozilla/5.0 (Windows NT 10.0)"), capsys) != first


def test_the_next_day_the_same_visitor_gets_a_hash_that_cannot_be_linked(redirect, ddb, capsys, monkeypatch):
    put_link(ddb, "abc1234")
    put_salt(ddb)
    put_salt(ddb, TOMORROW, NEXT_SALT)
    today = clicked_v(redirect, visitor_event(), capsys)
    midnight = 1_795_824_000.0  # 2026-11-28T00:00:00Z
    monkeypatch.setattr(redirect.time, "time", lambda: midnight)
    tomorrow = clicked_v(redirect, visitor_event(), capsys)
    assert tomorrow == expected_v("203.0.113.9", "Mozilla/5.0 (X11; Linux x86_64)", NEXT_SALT) != today


def test_a_warm_hit_makes_no_dynamodb_request(redirect, ddb, calls, capsys, monkeypatch):
    put_link(ddb, "abc1234")
    put_salt(ddb)
    clicked_v(redirect, visitor_event(), capsys)
    assert calls == ["GetItem", "GetItem salt#"]  # the cold hit: the link and the day's salt, once each
    for second in (1, 2, 3, 5000, 30000):  # warm hits the same day, the salt long past its retry time
        monkeypatch.setattr(redirect.time, "time", lambda s=second: NOW + min(s, redirect.LINK_CACHE_SECONDS - 1))
        assert clicked_v(redirect, visitor_event(), capsys) is not None
    assert calls == ["GetItem", "GetItem salt#"]


def test_a_salt_read_later_the_same_day_costs_one_getitem_a_day(redirect, ddb, calls, capsys, monkeypatch):
    put_link(ddb, "abc1234")
    put_salt(ddb)
    for offset in range(0, 60000, 600):  # a hit every ten minutes for the rest of the day
        monkeypatch.setattr(redirect.time, "time", lambda o=offset: NOW + o)
        redirect.lambda_handler(visitor_event(), None)
    capsys.readouterr()
    assert calls.count("GetItem salt#") == 1


def test_no_salt_means_no_v_and_one_new_try_a_minute(redirect, ddb, calls, capsys, monkeypatch):
    put_link(ddb, "abc1234")
    assert clicked_v(redirect, visitor_event(), capsys) is None
    assert clicked_v(redirect, visitor_event(), capsys) is None
    assert calls.count("GetItem salt#") == 1
    put_salt(ddb)  # the rotation ran
    monkeypatch.setattr(redirect.time, "time", lambda: NOW + redirect.SALT_RETRY_SECONDS - 1)
    assert clicked_v(redirect, visitor_event(), capsys) is None
    monkeypatch.setattr(redirect.time, "time", lambda: NOW + redirect.SALT_RETRY_SECONDS)
    assert clicked_v(redirect, visitor_event(), capsys) == expected_v("203.0.113.9", "Mozilla/5.0 (X11; Linux x86_64)")
    assert calls.count("GetItem salt#") == 2


@pytest.mark.parametrize("failure", [THROTTLED, TIMEOUT, ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetItem")],
                         ids=["throttled", "timeout", "denied"])
def test_a_failed_salt_read_still_redirects_without_v(redirect, ddb, capsys, monkeypatch, failure):
    put_link(ddb, "abc1234")
    put_salt(ddb)
    real_get_item = redirect._client.get_item

    def get_item(**kwargs):
        if kwargs["Key"]["pk"]["S"] == "salt#":
            raise failure
        return real_get_item(**kwargs)

    monkeypatch.setattr(redirect._client, "get_item", get_item)
    response = redirect.lambda_handler(visitor_event(), None)
    assert response["statusCode"] == 302
    lines = click_lines(capsys)
    [click] = [line for line in lines if line["type"] == "click"]
    [error] = [line for line in lines if line["type"] == "error"]  # counted like any failed read
    assert "v" not in click
    assert set(error) == {"type", "error", "retryable", "function"}


def test_a_failed_link_read_served_stale_does_not_also_wait_on_a_salt_read(redirect, ddb, capsys, monkeypatch):
    put_link(ddb, "abc1234")
    assert redirect.lambda_handler(visitor_event(), None)["statusCode"] == 302  # cached now; no salt yet
    put_salt(ddb)
    capsys.readouterr()
    monkeypatch.setattr(redirect.time, "time", lambda: NOW + 3600)  # the link's cache and the salt's retry are due
    tried = []

    def get_item(**kwargs):
        tried.append(kwargs["Key"]["pk"]["S"])
        raise TIMEOUT

    monkeypatch.setattr(redirect._client, "get_item", get_item)
    assert redirect.lambda_handler(visitor_event(), None)["statusCode"] == 302  # stale, and at once
    assert tried == ["abc1234"]
    assert [line.get("v") for line in click_lines(capsys) if line["type"] == "click"] == [None]


def test_x_forwarded_for_is_ignored(redirect, ddb, capsys):
    put_link(ddb, "abc1234")
    put_salt(ddb)
    plain = clicked_v(redirect, visitor_event(), capsys)
    forged = clicked_v(redirect, visitor_event(headers={"x-forwarded-for": "192.0.2.55", "x-real-ip": "192.0.2.56",
                                                        "forwarded": "for=192.0.2.57"}), capsys)
    assert forged == plain


@pytest.mark.parametrize("source_ip", [
    None, "", "not-an-ip", "203.0.113.9, 10.0.0.1", "203.0.113.9:443", "[2001:db8::1]", "fe80::1%eth0",
    "1" * 46, "203.0.113.9\n", "203.0.113.9\x00", "<script>", "::ffff:" + "1" * 40, 12345, ["203.0.113.9"],
    {"ip": "203.0.113.9"},
])
def test_a_hostile_source_ip_gives_no_v_and_never_a_5xx(redirect, ddb, capsys, source_ip):
    put_link(ddb, "abc1234")
    put_salt(ddb)
    evt = visitor_event()
    evt["requestContext"]["http"]["sourceIp"] = source_ip
    assert clicked_v(redirect, evt, capsys) is None


@pytest.mark.parametrize("context", [None, "x", {"http": None}, {"http": "x"}, {}])
def test_a_malformed_request_context_gives_no_v(redirect, ddb, capsys, context):
    put_link(ddb, "abc1234")
    put_salt(ddb)
    evt = visitor_event()
    evt["requestContext"] = {"http": {"method": "GET"}} if context is None else context
    if not isinstance(context, dict) or not isinstance(context.get("http"), dict):
        evt["version"] = "1.0"  # payload 1.0 has no requestContext.http.method to need
        evt["httpMethod"], evt["path"] = "GET", "/abc1234"
    assert clicked_v(redirect, evt, capsys) is None


@pytest.mark.parametrize(("address", "canonical"), [("2001:DB8:0:0::1", "2001:db8::1"), ("203.0.113.9", "203.0.113.9")])
def test_the_address_is_hashed_in_its_canonical_form(redirect, ddb, capsys, address, canonical):
    put_link(ddb, "abc1234")
    put_salt(ddb)
    assert clicked_v(redirect, visitor_event(address, "ua"), capsys) == expected_v(canonical, "ua")


@pytest.mark.parametrize(("front", "viewer", "hashed"), [
    ("s3cret-front", "198.51.100.10:46532", "198.51.100.10"),
    ("s3cret-front", "2001:db8::7:46532", "2001:db8::7"),
    ("s3cret-front", None, None),  # behind the front, sourceIp is CloudFront's: no viewer address, no v
    ("s3cret-front", "garbage:1", None),
    ("wrong", "198.51.100.10:46532", "203.0.113.9"),  # a forged header: the connection's address
    (None, "198.51.100.10:46532", "203.0.113.9"),
])
def test_the_viewer_address_is_believed_only_from_the_trusted_front(redirect, ddb, capsys, monkeypatch, front, viewer,
                                                                     hashed):
    monkeypatch.setattr(redirect, "TRUSTED_FRONT_SECRET", "s3cret-front")
    put_link(ddb, "abc1234")
    put_salt(ddb)
    headers = {}
    if front:
        headers["x-shortener-front"] = front
    if viewer:
        headers["cloudfront-viewer-address"] = viewer
    v = clicked_v(redirect, visitor_event(headers=headers, user_agent="ua"), capsys)
    assert v == (expected_v(hashed, "ua") if hashed else None)


@pytest.mark.parametrize("salt", [b"short", b"x" * 65, None])
def test_a_malformed_salt_item_is_no_salt(redirect, ddb, capsys, salt):
    put_link(ddb, "abc1234")
    item = {"pk": {"S": "salt#"}, "sk": {"S": TODAY}}
    if salt is not None:
        item["salt"] = {"B": salt}
    else:
        item["salt"] = {"S": "not bytes"}
    ddb.put_item(TableName=SALT_TABLE_NAME, Item=item)
    assert clicked_v(redirect, visitor_event(), capsys) is None


def test_nothing_about_the_visitor_but_v_is_printed(redirect, ddb, capsys):
    put_link(ddb, "abc1234")
    put_salt(ddb)
    redirect.lambda_handler(visitor_event("198.51.100.77", headers={"x-forwarded-for": "192.0.2.99"}), None)
    out = capsys.readouterr().out
    assert "198.51.100.77" not in out and "192.0.2.99" not in out
    assert SALT.hex() not in out and repr(SALT) not in out


def test_a_salt_left_in_the_links_table_is_never_read(redirect, ddb, capsys, calls):
    """Salts live in their own table (no point-in-time history there); an older deployment's salt item
    in the links table is not one."""
    put_link(ddb, "abc1234")
    ddb.put_item(TableName=TABLE_NAME, Item={"pk": {"S": "salt#"}, "sk": {"S": TODAY}, "salt": {"B": SALT}})
    assert clicked_v(redirect, visitor_event(), capsys) is None
    assert calls == ["GetItem", "GetItem salt#"]  # the miss was in the salts' table


def test_without_salt_table_name_clicks_have_no_v_and_no_salt_is_read(redirect, ddb, capsys, calls, monkeypatch):
    """An older stack, or a test that does not care about visitors: redirects work as before, without "v"."""
    monkeypatch.setattr(redirect, "SALT_TABLE_NAME", None)
    put_link(ddb, "abc1234")
    put_salt(ddb)
    assert clicked_v(redirect, visitor_event(), capsys) is None
    assert calls == ["GetItem"]


def test_salt_table_name_is_read_from_the_environment_and_optional(ddb, monkeypatch):
    import redirect_fn

    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    # Each import below replaces the package's attribute too: put the original back afterwards.
    monkeypatch.setattr(redirect_fn, "handler", importlib.import_module("redirect_fn.handler"))
    for value, expected in (("links-test-salts", "links-test-salts"), ("", None), (None, None)):
        if value is None:
            monkeypatch.delenv("SALT_TABLE_NAME", raising=False)
        else:
            monkeypatch.setenv("SALT_TABLE_NAME", value)
        monkeypatch.delitem(sys.modules, "redirect_fn.handler", raising=False)
        assert importlib.import_module("redirect_fn.handler").SALT_TABLE_NAME == expected
    monkeypatch.delitem(sys.modules, "redirect_fn.handler", raising=False)


def test_head_and_non_clicks_read_no_salt(redirect, ddb, calls):
    put_link(ddb, "abc1234")
    put_salt(ddb)
    redirect.lambda_handler(event(method="HEAD"), None)
    redirect.lambda_handler(event("missing1"), None)
    assert "GetItem salt#" not in calls


def test_through_the_local_http_api_v_hashes_the_connections_peer(redirect, ddb, capsys):
    """make run's HTTP API stand-in gives the redirect the peer's address as sourceIp, so local clicks have "v"."""
    import socket
    import threading

    from local_stack.http_api import make_server

    put_link(ddb, "abc1234")
    put_salt(ddb)
    server = make_server(redirect.lambda_handler, 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        with socket.socket() as conn:
            conn.settimeout(5)
            conn.bind(("127.0.0.3", 0))
            conn.connect(("127.0.0.1", server.server_address[1]))
            conn.sendall(b"GET /abc1234 HTTP/1.1\r\nHost: sho.rt\r\nUser-Agent: local/1.0\r\n"
                         b"X-Forwarded-For: 192.0.2.1\r\nConnection: close\r\n\r\n")
            assert conn.recv(65536).startswith(b"HTTP/1.1 302")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    [line] = click_lines(capsys)
    assert line["v"] == expected_v("127.0.0.3", "local/1.0")
