"""Property-based bad input (hypothesis): the JSON API, the create form, the redirect's events, the aggregator's records.

What this proves, for every generated case (about 1,400 a run in all: see EXAMPLES, and the totals
printed at the end of the module with `pytest -s`):
- JSON API create (POST /api/links, /shorten) and PATCH bodies: arbitrary JSON values, nested,
  unicode, huge numbers, wrong types, raw bytes and deep nesting -> never a 5xx; a refusal is a 4xx
  with a JSON {"error": "<text>"} and writes nothing; a 201 writes exactly one item;
- the HTML create form with arbitrary field values -> never a 5xx; a refusal (422) shows a message
  and writes nothing;
- the redirect handler, with arbitrary paths, methods and headers (hostile referer, user agent and
  country) -> never raises; GET and HEAD answer 302, 404, 410 or 503; at most one line is printed,
  only for a GET that redirects, and the aggregator's parser accepts it with every field bounded;
- the aggregator's input, arbitrary Kinesis record data (random bytes, gzip of random JSON, CloudWatch
  envelopes of hostile, huge or nested click lines) -> never raises (the only exceptions it may raise
  are retryable DynamoDB errors, and moto raises none), every claim key it writes stays within
  DynamoDB's key limits, and every item it writes stays far below DynamoDB's 400 KB item limit.
The CSV import does not exist yet (issue 9: due when link management lands), so it has no property here.
"""
import contextlib
import gzip
import importlib
import io
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aggregator import layout
from figures.pytest_plugin import record
from tests.conftest import TABLE_NAME

# Thousands of cases or injected faults: in `make test`, not in the edit-test loop of `make test-fast`.
pytestmark = pytest.mark.exhaustive

EXAMPLES = {"api_create": 200, "api_patch": 80, "form_create": 120, "redirect": 700, "aggregator": 200}
TRIED = dict.fromkeys(EXAMPLES, 0)
FIXTURES_PER_CASE = settings(
    deadline=None, derandomize=False, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                             HealthCheck.data_too_large],
)
MAX_ITEM_BYTES = 400 * 1024


@pytest.fixture(scope="module", autouse=True)
def report_cases():
    """Print how many cases each property tried (for RELIABILITY.md)."""
    yield
    print(f"\nhypothesis cases tried: {TRIED} total {sum(TRIED.values())}")
    for name, tried in TRIED.items():
        record(f"properties.{name}.cases", tried)
    record("properties.all.cases", sum(TRIED.values()))


# ------------------------------------------------------------------ strategies

scalars = (st.none() | st.booleans() | st.integers(min_value=-(10**40), max_value=10**40)
           | st.floats(allow_nan=False) | st.text(max_size=40))
json_values = st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=10), children, max_size=4), max_leaves=16)
hosts = st.sampled_from(["example.com", "bücher.example", "127.0.0.1", "[::1]", "sho.rt", "xn--", "a" * 300, "", "ex ample.com",
                         "example.com:99999", "user@example.com", "exa%00mple.com", "例え.テスト"])
urlish = st.builds(
    lambda scheme, host, path: f"{scheme}{host}/{path}",
    st.sampled_from(["https://", "http://", "HTTPS://", "javascript:", "data:text/html,", "ftp://", "//", "", " https://"]),
    hosts | st.text(max_size=20), st.text(max_size=40),
)
slugish = st.text(alphabet="abcXYZ019-_ .%/\u00e9\u202e", min_size=0, max_size=70) | st.sampled_from(["api", "ADMIN", "ok-slug"])
expiries = st.sampled_from(["2030-01-01", "20300101", "2030-01-01T00:00:00Z", "1999-01-01", "9999-12-31T23:59:59-23:59",
                            "0001-01-01T00:00:00+23:59", "not a date", "", "2030-02-30"]) | st.text(max_size=25)
link_bodies = st.fixed_dictionaries({}, optional={
    "url": urlish | json_values, "slug": slugish | json_values, "title": st.text(max_size=250) | json_values,
    "expires_at": expiries | json_values,
}) | st.dictionaries(st.text(max_size=12), json_values, max_size=5)
bodies = link_bodies.map(json.dumps) | json_values.map(json.dumps) | st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
DEEP = ["[" * 1000 + "]" * 1000, '{"url":' * 1000 + "1" + "}" * 1000, '{"url": 1' + "0" * 5000 + "}",
        '{"url": "https://example.com/", "title": "\\ud800"}']


# ------------------------------------------------------------------ the JSON API and the form


@pytest.fixture
def items(ddb):
    """How many items the table holds now, leaving out the link-creation counters, the audit records and the
    links' search entries (tests/test_abuse.py, tests/test_audit.py and tests/test_link_search.py cover them)."""
    from webapp.store import link_index

    left_out = ("linklimit#", "audit#", link_index.WORD_PK, link_index.TAG_PK, link_index.OWNER_PK,
                link_index.DISABLED_PK, link_index.EXPIRES_PK)
    condition = " AND ".join(f"NOT begins_with(pk, :p{n})" for n in range(len(left_out)))
    values = {f":p{n}": {"S": prefix} for n, prefix in enumerate(left_out)}
    return lambda: ddb.scan(TableName=TABLE_NAME, Select="COUNT", FilterExpression=condition,
                            ExpressionAttributeValues=values)["Count"]


def _assert_refused_cleanly(response, before, after):
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    if response.status_code >= 400:
        assert response.is_json, response.content_type
        message = response.get_json().get("error")
        assert isinstance(message, str) and message.strip()
        assert after == before, "a refused request wrote an item"


@settings(FIXTURES_PER_CASE, max_examples=EXAMPLES["api_create"])
@given(body=bodies, path=st.sampled_from(["/api/links", "/shorten"]))
@example(body=DEEP[0], path="/api/links")
@example(body=DEEP[1], path="/shorten")
@example(body=DEEP[2], path="/api/links")
@example(body=DEEP[3], path="/api/links")
@example(body=json.dumps({"url": "https://example.com/" + "a" * 3000}), path="/api/links")
def test_api_create_never_5xx_and_refusals_write_nothing(client, api_token, items, body, path):
    TRIED["api_create"] += 1
    before = items()
    response = client.post(path, data=body, content_type="application/json", headers={"Authorization": f"Bearer {api_token}"})
    _assert_refused_cleanly(response, before, items())
    if response.status_code == 201:
        assert items() == before + 1
        assert response.get_json()["original_url"].isascii()


@settings(FIXTURES_PER_CASE, max_examples=EXAMPLES["api_patch"])
@given(body=bodies | st.sampled_from([json.dumps({"is_active": False}), json.dumps({"is_active": True})]))
@example(body=DEEP[0])
@example(body=json.dumps({"is_active": 0}))
@example(body=json.dumps({"is_active": "false"}))
def test_api_patch_never_5xx_and_refusals_write_nothing(client, api_token, store, items, body):
    TRIED["api_patch"] += 1
    if not hasattr(store, "_patch_target"):
        store.links.create("https://example.com/p", created_by="alice", slug="patched")
        store._patch_target = True
    before, state = items(), store.links.get("patched")
    response = client.patch("/api/links/patched", data=body, content_type="application/json",
                            headers={"Authorization": f"Bearer {api_token}"})
    _assert_refused_cleanly(response, before, items())
    if response.status_code >= 400:
        assert store.links.get("patched") == state
    if response.status_code == 200:
        sent = json.loads(body)
        assert sent and set(sent) <= {"url", "title", "tags", "note", "expires_at", "is_active", "archived", "forward_query"}
        assert sent.get("is_active", state["is_active"]) == response.get_json()["is_active"]


form_text = st.text(max_size=60) | urlish | slugish
forms = st.fixed_dictionaries({}, optional={
    "url": urlish | st.text(max_size=60), "slug": slugish, "title": st.text(max_size=220),
    "expiry": st.sampled_from(["default", "never", "date", "", "bogus"]) | st.text(max_size=10),
    "expiry_date": st.sampled_from(["2030-01-01", "1999-01-01", "9999-12-31", "0000-00-00", ""]) | st.text(max_size=12),
})


@settings(FIXTURES_PER_CASE, max_examples=EXAMPLES["form_create"])
@given(data=forms)
def test_form_create_never_5xx_and_refusals_write_nothing(client, auth, items, data):
    TRIED["form_create"] += 1
    if not client.get_cookie("session"):
        assert auth.login().status_code == 303
    before = items()
    response = client.post("/links/new", data=data)
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    assert response.status_code in (303, 422), response.status_code
    if response.status_code == 303:
        assert items() == before + 1
    else:
        assert items() == before
        page = response.get_data(as_text=True)
        assert 'class="error"' in page  # the reason, next to the field at fault


# ------------------------------------------------------------------ the redirect handler


@pytest.fixture
def redirect(ddb, monkeypatch):
    """The redirect handler on the moto table, with a trusted front (so the country path is exercised) and three links."""
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    module = importlib.import_module("redirect_fn.handler")
    monkeypatch.setattr(module, "TRUSTED_FRONT_SECRET", "front-secret")
    module._cache.clear()
    for short_id, active in (("live123", True), ("gone123", False), ("Ab_-9", True)):
        ddb.put_item(TableName=TABLE_NAME, Item={"pk": {"S": short_id}, "sk": {"S": "link"}, "is_active": {"BOOL": active},
                                                 "url": {"S": "https://example.com/landing"}})
    yield module
    module._cache.clear()


hostile = (st.text(max_size=300) | st.sampled_from([
    "x" * 9000, "https://" + "a" * 9000 + ".example/", "https://[::1/", "http://exa\u2100mple.com/", "https://EXAMPLE.com./",
    "<script>alert(1)</script>", "\r\nSet-Cookie: x=1", "https://user:pw@bad.example/", "//evil.example", "\x00",
]))
header_names = st.sampled_from(["referer", "Referer", "user-agent", "User-Agent", "cloudfront-viewer-country",
                                "x-shortener-front", "accept", "host", "x-forwarded-for"]) | st.text(max_size=12)
redirect_events = st.builds(
    lambda version, method, path, headers: (
        {"version": "2.0", "rawPath": path, "headers": headers, "requestContext": {"http": {"method": method}}}
        if version == 2 else {"httpMethod": method, "path": path, "headers": headers}
    ),
    st.sampled_from([1, 2]),
    st.sampled_from(["GET", "HEAD", "get", "POST", "OPTIONS", "DELETE"]) | st.text(min_size=1, max_size=8),
    st.sampled_from(["/live123", "/gone123", "/Ab_-9", "/", "", "/live123/", "/LIVE123", "/" + "a" * 65]) | st.text(max_size=80),
    st.dictionaries(header_names, hostile, max_size=6)
    | st.fixed_dictionaries({"x-shortener-front": st.sampled_from(["front-secret", "wrong"]),
                             "cloudfront-viewer-country": st.sampled_from(["DE", "de", "XXX", "", "<b>"]) | st.text(max_size=4),
                             "referer": hostile, "user-agent": hostile}),
)


@settings(FIXTURES_PER_CASE, max_examples=EXAMPLES["redirect"])
@given(event=redirect_events)
def test_the_redirect_never_raises_and_prints_at_most_one_bounded_click_line(redirect, event):
    from aggregator.clicks import HOST_MAX, parse_line

    TRIED["redirect"] += 1
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        response = redirect.lambda_handler(event, None)
    method = (event.get("httpMethod") or event.get("requestContext", {}).get("http", {}).get("method", "")).upper()
    status = response["statusCode"]
    if method in ("GET", "HEAD"):
        assert status in (302, 404, 410, 503)
    if status == 302:
        assert response["headers"]["Location"] == "https://example.com/landing"
    lines = out.getvalue().splitlines()
    assert len(lines) <= 1
    if lines:
        assert status == 302 and method == "GET"
        line = lines[0]
        assert len(line.encode()) < 2048
        click = parse_line(layout.encode_sequence("1"), {"message": line, "timestamp": 1_795_757_759_000})
        assert click is not None, line
        assert click.short_id == event.get("rawPath", event.get("path", ""))[1:]
        assert click.referrer is None or len(click.referrer) <= HOST_MAX
        assert click.country is None or (len(click.country) == 2 and click.country.isupper())


# ------------------------------------------------------------------ the aggregator


def _envelope(events):
    return {"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "/aws/lambda/redirect", "logStream": "s",
            "subscriptionFilters": ["clicks"], "logEvents": events}


click_values = st.fixed_dictionaries({"type": st.just("click")}, optional={
    "id": st.sampled_from(["aaa", "bbb", "x" * 64, "x" * 65, "", "a/b"]) | json_values,
    "ua": hostile | json_values, "ref": hostile | st.sampled_from(["news.example.com", "a.b", "A" * 253]) | json_values,
    "cc": st.sampled_from(["DE", "de", "ZZ", "DEU"]) | json_values,
})
log_events = st.fixed_dictionaries({"message": click_values.map(json.dumps) | st.text(max_size=50)
                                    | st.just('{"type":"click","id":"aaa","x":' + "[" * 5000 + "]" * 5000 + "}")},
                                   optional={"id": st.text(max_size=5),
                                             "timestamp": st.integers(min_value=-(10**30), max_value=10**30) | json_values})
record_data = (
    st.lists(log_events | json_values, max_size=12).map(lambda e: gzip.compress(json.dumps(_envelope(e)).encode(), mtime=0))
    | json_values.map(lambda v: gzip.compress(json.dumps(v).encode(), mtime=0))
    | st.binary(max_size=300)
    | st.binary(max_size=300).map(lambda b: gzip.compress(b, mtime=0))
    | st.sampled_from([gzip.compress(b"[" * 100_000, mtime=0), gzip.compress(b"\x00" * 5_000_000, mtime=0), b"", b"\x1f\x8b"])
)


@settings(FIXTURES_PER_CASE, max_examples=EXAMPLES["aggregator"])
@given(records=st.lists(record_data, min_size=1, max_size=4))
@example(records=[gzip.compress(json.dumps(_envelope([{"message": json.dumps({"type": "click", "id": "aaa"}),
                                                        "timestamp": 10**400}])).encode())])
def test_the_aggregator_never_raises_on_any_record_and_bounds_what_it_writes(aggregator, ddb, records):
    from aggregator.clicks import read_record

    TRIED["aggregator"] += 1
    sizes, claim_keys = [], []

    def measure(model, params, **_):
        if model.name == "UpdateItem":
            sizes.append(len(params["body"]))
        if model.name == "PutItem":
            claim_keys.append(json.loads(params["body"])["Item"])

    aggregator._dynamodb.meta.events.register("before-call", measure)
    base = TRIED["aggregator"] * 10
    batch = [read_record(layout.encode_sequence(str(base + i)), data) for i, data in enumerate(records)]
    try:
        aggregator.apply_batch(batch, layout.mark_name("life0", "shardId-000000000000"))
    finally:
        aggregator._dynamodb.meta.events.unregister("before-call", measure)
    assert all(size < 64 * 1024 for size in sizes), max(sizes)
    # A claim per record with clicks, and its key within DynamoDB's limits (partition key 2,048 bytes,
    # sort key 1,024) whatever the record held: its identity is a fixed-size hash.
    assert len(claim_keys) == len({record.identity for record in batch if record.clicks})
    for key in claim_keys:
        assert len(key["pk"]["S"].encode()) <= 64 and len(key["sk"]["S"].encode()) <= 64
    # Every item the run left in the table is bounded too.
    for item in ddb.scan(TableName=TABLE_NAME)["Items"]:
        assert len(json.dumps(item)) < MAX_ITEM_BYTES / 4


def test_the_properties_reach_the_thousand_cases_the_issue_asks_for():
    assert sum(EXAMPLES.values()) >= 1000
