"""The redirect forwards the short link's query string into the destination's, as Shlink does.

Both payload formats; a name in both takes the visitor's values; the fragment stays last; forward_query
false turns it off per link; hostile queries (control characters, not UTF-8, oversized) get a clear
400 or 414 and never a 500; the click line never holds the query. The merge itself is property-tested.
"""
import json
import socket
from html.parser import HTMLParser
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_stack.http_api import to_event
from tests.conftest import TABLE_NAME
from tests.stack_process import Stack
from tests.test_redirect import calls, event, redirect  # noqa: F401 - calls and redirect are fixtures
from tests.test_hardening_front import _failing_get_item


def put_link(ddb, short_id="abc1234", url="https://example.com/landing", active=True, forward_query=None):
    item = {"pk": {"S": short_id}, "sk": {"S": "link"}, "url": {"S": url}, "is_active": {"BOOL": active}}
    if forward_query is not None:
        item["forward_query"] = {"BOOL": forward_query}
    ddb.put_item(TableName=TABLE_NAME, Item=item)


def query_event(raw="", fmt="v2", method="GET", short_id="abc1234", headers=None, params=None):
    """An event carrying a query: payload 2.0 as API Gateway builds it from the raw query, or payload 1.0's
    decoded (multi)valued parameters (params: name -> list of values; default: decoded from raw)."""
    evt = event(short_id, method=method, fmt=fmt, headers=headers)
    if fmt == "v2":
        parts = to_event(method, f"/{short_id}?{raw}", [])
        evt["rawQueryString"] = parts["rawQueryString"]
        if "queryStringParameters" in parts:
            evt["queryStringParameters"] = parts["queryStringParameters"]
        return evt
    if params is None:
        params = {}
        for name, value in parse_qsl(raw, keep_blank_values=True):
            params.setdefault(name, []).append(value)
    evt["multiValueQueryStringParameters"] = params or None
    evt["queryStringParameters"] = {name: values[-1] for name, values in params.items()} or None
    return evt


def location(redirect, evt):
    response = redirect.lambda_handler(evt, None)
    assert response["statusCode"] == 302, response
    return response["headers"]["Location"]


# ------------------------------------------------------------------ forwarding and merging


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_the_short_links_query_reaches_the_destination(redirect, ddb, fmt):
    put_link(ddb)
    forwarded = location(redirect, query_event("utm_source=newsletter", fmt))
    assert forwarded == "https://example.com/landing?utm_source=newsletter"


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_the_query_is_merged_after_the_destinations_own(redirect, ddb, fmt):
    put_link(ddb, url="https://example.com/p?ref=site&lang=en")
    assert location(redirect, query_event("utm_source=x&utm_medium=mail", fmt)) == (
        "https://example.com/p?ref=site&lang=en&utm_source=x&utm_medium=mail"
    )


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_a_name_in_both_takes_the_visitors_values(redirect, ddb, fmt):
    """Shlink's rule (and Dub's): the value sent to the short link wins; every value of a repeated name goes on."""
    put_link(ddb, url="https://example.com/p?utm_source=old&ref=site&utm_source=older")
    assert location(redirect, query_event("utm_source=new&tag=a&tag=b", fmt)) == (
        "https://example.com/p?ref=site&utm_source=new&tag=a&tag=b"
    )


def test_names_are_compared_decoded(redirect, ddb):
    put_link(ddb, url="https://example.com/p?utm_source=old&a+b=1")
    assert location(redirect, query_event("utm%5Fsource=new&a%20b=2")) == "https://example.com/p?utm%5Fsource=new&a%20b=2"


@pytest.mark.parametrize(
    ("destination", "forwarded"),
    [
        ("https://example.com/docs#install", "https://example.com/docs?v=2#install"),
        ("https://example.com/docs?lang=en#install", "https://example.com/docs?lang=en&v=2#install"),
        ("https://example.com/#/app?route=1", "https://example.com/?v=2#/app?route=1"),  # a client-side route
        ("https://example.com/docs#", "https://example.com/docs?v=2#"),
    ],
)
def test_the_destinations_fragment_stays_at_the_end(redirect, ddb, destination, forwarded):
    put_link(ddb, url=destination)
    assert location(redirect, query_event("v=2")) == forwarded


@pytest.mark.parametrize("raw", ["", "&", "&&&"])
def test_no_query_leaves_the_destination_as_it_is(redirect, ddb, raw):
    put_link(ddb, url="https://example.com/p?ref=site#top")
    assert location(redirect, query_event(raw)) == "https://example.com/p?ref=site#top"


def test_an_event_without_any_query_field_redirects_as_before(redirect, ddb):
    put_link(ddb)
    evt = {"version": "2.0", "rawPath": "/abc1234", "headers": {}, "requestContext": {"http": {"method": "GET"}}}
    assert location(redirect, evt) == "https://example.com/landing"
    assert location(redirect, {"path": "/abc1234", "httpMethod": "GET", "headers": {}}) == "https://example.com/landing"


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_forward_query_false_keeps_the_destination_exactly(redirect, ddb, fmt):
    put_link(ddb, url="https://example.com/p?ref=site", forward_query=False)
    assert location(redirect, query_event("utm_source=x&ref=other", fmt)) == "https://example.com/p?ref=site"


def test_a_link_that_does_not_forward_ignores_even_a_hostile_query(redirect, ddb):
    put_link(ddb, forward_query=False)
    assert location(redirect, query_event("a=\r\nSet-Cookie:x" + "y" * 9000)) == "https://example.com/landing"


def test_forward_query_true_forwards(redirect, ddb):
    put_link(ddb, forward_query=True)
    assert location(redirect, query_event("a=1")) == "https://example.com/landing?a=1"


def test_forwarding_costs_no_extra_read(redirect, ddb, calls):
    """One GetItem for the link (and the day's salt's), then every query, whatever it is, is answered from the cache."""
    put_link(ddb)
    for raw in ("a=1", "b=2", "", "utm_source=x&utm_source=y", "a=\r\n"):
        redirect.lambda_handler(query_event(raw), None)
    assert calls == ["GetItem", "GetItem salt#"]


# ------------------------------------------------------------------ unicode and percent-encoding


@pytest.mark.parametrize(
    ("raw", "forwarded"),
    [
        ("q=caf%C3%A9", "q=caf%C3%A9"),  # escapes pass untouched
        ("q=caf\u00e9", "q=caf%C3%A9"),  # raw non-ASCII is encoded as UTF-8
        ("q=\u6771\u4eac&e=\U0001f600", "q=%E6%9D%B1%E4%BA%AC&e=%F0%9F%98%80"),
        ("q=a b", "q=a%20b"),
        ("q=a+b", "q=a+b"),  # "+" means what the destination's server says it means
        ('q="<x>"', "q=%22%3Cx%3E%22"),
        ("q=a|b{c}^`\\", "q=a%7Cb%7Bc%7D%5E%60%5C"),
        ("q=%E9", "q=%E9"),  # a valid escape of bytes that are not UTF-8: the visitor's bytes, as sent
        ("q=%zz&r=%&s=%4", "q=%25zz&r=%25&s=%254"),  # a stray "%" is a literal percent sign
        ("next=/a/b?c=d:e@f", "next=/a/b?c=d:e@f"),
        ("flag", "flag"),
        ("=x", "=x"),
    ],
)
def test_unicode_and_percent_encoding_reach_the_destination_as_valid_ascii(redirect, ddb, raw, forwarded):
    put_link(ddb)
    evt = query_event("")
    evt["rawQueryString"] = raw  # as API Gateway passes it, whatever the client sent
    result = location(redirect, evt)
    assert result == f"https://example.com/landing?{forwarded}"
    assert result.isascii() and result.isprintable()


def test_a_hash_in_the_raw_query_cannot_become_a_fragment(redirect, ddb):
    put_link(ddb, url="https://example.com/p#top")
    evt = query_event("")
    evt["rawQueryString"] = "a=1#evil"
    assert location(redirect, evt) == "https://example.com/p?a=1%23evil#top"


def test_payload_1_values_are_encoded_again(redirect, ddb):
    put_link(ddb)
    evt = query_event(fmt="v1", params={"q": ["caf\u00e9 & co", "x=y"], "utm_source": ["news/letter"], "e": [""]})
    assert location(redirect, evt) == (
        "https://example.com/landing?q=caf%C3%A9%20%26%20co&q=x%3Dy&utm_source=news%2Fletter&e="
    )


def test_payload_1_without_multi_values_uses_the_single_ones(redirect, ddb):
    put_link(ddb)
    evt = query_event(fmt="v1")
    evt["queryStringParameters"] = {"utm_source": "x"}
    assert location(redirect, evt) == "https://example.com/landing?utm_source=x"


# ------------------------------------------------------------------ hostile queries: 400 and 414, never a 500


class _Page(HTMLParser):
    """The tags of a page and the tags opened inside <main>."""

    def __init__(self):
        super().__init__()
        self.tags, self.in_main, self.depth = [], [], 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if self.depth:
            self.in_main.append(tag)
        if tag == "main":
            self.depth += 1

    def handle_endtag(self, tag):
        if tag == "main":
            self.depth -= 1


def assert_refused(redirect, response, status, accept):
    assert response["statusCode"] == status
    headers = response["headers"]
    assert "Location" not in headers
    assert headers["Cache-Control"] == "no-store"
    for name, value in redirect.ERROR_PAGE_HEADERS.items():
        assert headers[name] == value
    if "text/html" in accept:
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        page = _Page()
        page.feed(response["body"])
        assert page.tags.count("main") == 1 and {"h1", "p"} <= set(page.in_main)
    else:
        assert headers["Content-Type"] == "application/json"
        assert set(json.loads(response["body"])) == {"error"}


@pytest.mark.parametrize("accept", ["text/html,application/xhtml+xml", "application/json"])
@pytest.mark.parametrize(
    "raw",
    ["a=1\r\nSet-Cookie: x=1", "a=\n", "a=\r", "a=\x00", "a=\x1b[31m", "\x7f", "a=\x85", "a=\u009b", "\tx=1"],
    ids=["crlf", "lf", "cr", "nul", "escape", "del", "nel", "csi", "tab"],
)
def test_header_injection_a_raw_control_character_is_a_400(redirect, ddb, capsys, raw, accept):
    put_link(ddb)
    evt = query_event("", headers={"accept": accept})
    evt["rawQueryString"] = raw
    response = redirect.lambda_handler(evt, None)
    assert_refused(redirect, response, 400, accept)
    assert "Set-Cookie" not in json.dumps(response["headers"])
    assert capsys.readouterr().out == "", "a refused query is no click"


@pytest.mark.parametrize(
    ("fmt", "forwarded"),
    [("v2", "a=%0D%0ASet-Cookie:%20x=1"), ("v1", "a=%0D%0ASet-Cookie%3A%20x%3D1")],  # 1.0: decoded, encoded again
)
def test_header_injection_an_escaped_crlf_stays_escaped(redirect, ddb, fmt, forwarded):
    put_link(ddb)
    result = location(redirect, query_event("a=%0D%0ASet-Cookie:%20x=1", fmt))
    assert result == f"https://example.com/landing?{forwarded}"
    assert result.isascii() and result.isprintable()


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_a_query_that_is_not_utf8_text_is_a_400(redirect, ddb, fmt):
    """A lone surrogate: what the local stack makes of bytes that are not UTF-8, and no browser sends."""
    put_link(ddb)
    if fmt == "v2":
        evt = query_event("", headers={"accept": "application/json"})
        evt["rawQueryString"] = "q=\udce9"
    else:
        evt = query_event(fmt="v1", params={"q": ["\udce9"]})  # the stored 1.0 event accepts JSON
    assert_refused(redirect, redirect.lambda_handler(evt, None), 400, "application/json")


@pytest.mark.parametrize(("size", "status"), [(2047, 302), (2048, 302), (2049, 414), (100_000, 414)])
def test_the_query_is_bounded_at_2048_bytes(redirect, ddb, size, status):
    put_link(ddb)
    raw = "q=" + "a" * (size - 2)
    response = redirect.lambda_handler(query_event(raw, headers={"accept": "application/json"}), None)
    assert redirect.QUERY_MAX_BYTES == 2048
    assert response["statusCode"] == status
    if status == 302:
        assert response["headers"]["Location"] == f"https://example.com/landing?{raw}"
    else:
        assert_refused(redirect, response, 414, "application/json")


def test_the_query_bound_counts_utf8_bytes_not_characters(redirect, ddb):
    put_link(ddb)
    evt = query_event("")
    evt["rawQueryString"] = "q=" + "\u00e9" * 1024  # 1,026 characters, 2,050 bytes
    assert_refused(redirect, redirect.lambda_handler(evt, None), 414, "text/html")


@pytest.mark.parametrize(("destination_length", "status"), [(2047, 302), (2048, 414)])
def test_the_merged_location_is_bounded_at_8192_bytes(redirect, ddb, destination_length, status):
    """A 2,048-byte query of characters that each take three once encoded, after the longest destination."""
    destination = "https://example.com/" + "p" * (destination_length - len("https://example.com/"))
    put_link(ddb, url=destination)
    evt = query_event("")
    evt["rawQueryString"] = "<" * 2048
    response = redirect.lambda_handler(evt, None)
    assert redirect.LOCATION_MAX_BYTES == 8192
    assert response["statusCode"] == status
    if status == 302:
        assert len(response["headers"]["Location"]) == 8192
    else:
        assert_refused(redirect, response, 414, "text/html")


@pytest.mark.parametrize("raw", ["a=\r\n", "q=" + "x" * 5000, "q=\udce9"])
@pytest.mark.parametrize("setup", ["missing", "disabled", "unavailable"])
def test_404_410_and_503_ignore_the_query(redirect, ddb, monkeypatch, raw, setup):
    expected = {"missing": 404, "disabled": 410, "unavailable": 503}[setup]
    if setup == "disabled":
        put_link(ddb, active=False)
    if setup == "unavailable":
        monkeypatch.setattr(redirect._client, "get_item", _failing_get_item)
    evt = query_event("")
    evt["rawQueryString"] = raw
    assert redirect.lambda_handler(evt, None)["statusCode"] == expected


# ------------------------------------------------------------------ HEAD and the click line


def test_head_forwards_like_get_without_a_click_line(redirect, ddb, capsys):
    put_link(ddb)
    response = redirect.lambda_handler(query_event("utm_source=x", method="HEAD"), None)
    assert response["headers"]["Location"] == "https://example.com/landing?utm_source=x"
    assert response["body"] == ""
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("raw", ["a=\r\n", "q=" + "x" * 3000])
def test_head_on_a_refused_query_has_no_body(redirect, ddb, raw):
    put_link(ddb)
    evt = query_event("", method="HEAD")
    evt["rawQueryString"] = raw
    response = redirect.lambda_handler(evt, None)
    assert response["statusCode"] in (400, 414) and response["body"] == ""


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_the_click_line_never_holds_the_query(redirect, ddb, capsys, fmt):
    put_link(ddb)
    redirect.lambda_handler(query_event("email=someone%40example.com&utm_source=secretcampaign", fmt), None)
    out = capsys.readouterr().out
    [line] = click_lines_of(out)
    assert set(line) <= {"type", "id", "ua", "ref", "cc"} and line["id"] == "abc1234"
    assert "secretcampaign" not in out and "someone" not in out and "utm_source" not in out


def click_lines_of(out):
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


# ------------------------------------------------------------------ the error pages' landmark


@pytest.mark.parametrize("status", [400, 404, 410, 414, 503])
def test_every_error_page_has_one_main_landmark_holding_its_content(redirect, ddb, monkeypatch, status):
    """axe-core's landmark-one-main and region rules: all content inside <main>."""
    raw = {400: "a=\r", 414: "q=" + "x" * 3000}.get(status, "a=1")
    if status in (400, 414, 410):
        put_link(ddb, active=status != 410)
    if status == 503:
        monkeypatch.setattr(redirect._client, "get_item", _failing_get_item)
    evt = query_event("", short_id="abc1234" if status != 404 else "missing1", headers={"accept": "text/html"})
    evt["rawQueryString"] = raw
    response = redirect.lambda_handler(evt, None)
    assert response["statusCode"] == status
    page = _Page()
    page.feed(response["body"])
    assert page.tags.count("main") == 1
    assert page.tags[page.tags.index("main") + 1:] == page.in_main == ["h1", "p"]
    assert response["headers"]["Content-Security-Policy"] == redirect.ERROR_PAGE_HEADERS["Content-Security-Policy"]


# ------------------------------------------------------------------ the local stack's event


def test_the_local_http_api_gives_the_query_as_api_gateway_payload_2():
    evt = to_event("GET", "/abc1234?utm_source=x&a=1&a=2&e=caf%C3%A9&blank=&plus=a+b", [])
    assert evt["rawQueryString"] == "utm_source=x&a=1&a=2&e=caf%C3%A9&blank=&plus=a+b"
    assert evt["queryStringParameters"] == {"utm_source": "x", "a": "1,2", "e": "caf\u00e9", "blank": "", "plus": "a b"}
    assert evt["rawPath"] == "/abc1234"


def test_the_local_http_api_leaves_out_query_parameters_without_a_query():
    evt = to_event("GET", "/abc1234", [])
    assert evt["rawQueryString"] == "" and "queryStringParameters" not in evt


# ------------------------------------------------------------------ properties of the merge (hypothesis)


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

words = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
pairs = st.lists(st.tuples(st.sampled_from(["utm_source", "ref", "a", "a b", "é"]) | words, words), max_size=6)
labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
destinations = st.builds(
    lambda scheme, host, path, own, fragment: (
        f"{scheme}://{host}/{quote(path)}"
        + (f"?{encode(own)}" if own else "")
        + (f"#{quote(fragment)}" if fragment is not None else "")
    ),
    st.sampled_from(["http", "https"]),
    st.lists(labels, min_size=1, max_size=3).map(".".join),
    st.text(max_size=20),
    pairs,
    st.none() | st.text(max_size=10),
)


def encode(query_pairs):
    """A query as a browser sends it: each name and value percent-encoded as UTF-8."""
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in query_pairs)


def _pairs(query):
    return parse_qsl(query, keep_blank_values=True)


def _around_the_query(url):
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.path, parts.fragment


@PROPERTY
@given(destination=destinations, forwarded=pairs)
def test_property_the_merge_keeps_every_parameter_and_the_url_around_it(redirect, destination, forwarded):
    merged = redirect.merge_query(destination, encode(forwarded))
    assert _around_the_query(merged) == _around_the_query(destination)
    assert ("#" in merged) == ("#" in destination)
    names = {name for name, _ in forwarded}
    own = _pairs(urlsplit(destination).query)
    # The destination's parameters whose names were not forwarded, in order, then every forwarded one.
    assert _pairs(urlsplit(merged).query) == [pair for pair in own if pair[0] not in names] + _pairs(encode(forwarded))
    if not forwarded:
        assert merged == destination


@PROPERTY
@given(destination=destinations, raw=st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_property_any_raw_query_is_forwarded_as_printable_ascii_or_refused(redirect, destination, raw):
    status, result = redirect._forwarded(destination, raw)
    assert status in (302, 400)
    if status == 400:
        assert result is None
        return
    assert result.isascii() and result.isprintable() and "\r" not in result and "\n" not in result
    assert _around_the_query(result) == _around_the_query(destination)


@PROPERTY
@given(raw=st.text(max_size=60), fmt=st.sampled_from(["v2", "v1"]), method=st.sampled_from(["GET", "HEAD"]))
def test_property_the_handler_never_fails_on_a_query(redirect, ddb, capsys, raw, fmt, method):
    put_link(ddb, url="https://example.com/p?ref=site#top")
    evt = query_event("", fmt=fmt, method=method)
    if fmt == "v2":
        evt["rawQueryString"] = raw
    else:
        evt["multiValueQueryStringParameters"] = {raw: [raw, "x"]}
    response = redirect.lambda_handler(evt, None)
    assert response["statusCode"] in (302, 400)
    printed = click_lines_of(capsys.readouterr().out)
    if response["statusCode"] == 302:
        result = response["headers"]["Location"]
        assert result.isascii() and result.isprintable() and result.endswith("#top")
        assert result.startswith("https://example.com/p?")
        assert len(printed) == (method == "GET")
    else:
        assert printed == []


# ------------------------------------------------------------------ through the local stack (integration)


def _raw_get(port, target):
    """A GET whose request line carries exactly these bytes (http.client would refuse non-ASCII)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = b"Host: 127.0.0.1\r\nAccept: application/json\r\nConnection: close\r\n"
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\n" + head + b"\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head = data.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in head[1:])
    return int(head[0].split()[1]), headers.get("Location")


@pytest.mark.integration
def test_the_local_stack_forwards_the_query(tmp_path):
    stack = Stack("moto", tmp_path)
    try:
        status, created = stack.api("POST", "/shorten", {"url": "https://example.com/landing?lang=en#top"})
        assert status == 201, created
        short_id = created["short_id"]
        status, headers, _ = stack.request(stack.redirect_port, "GET", f"/{short_id}?utm_source=x&lang=de", token=None)
        assert (status, headers["Location"]) == (302, "https://example.com/landing?utm_source=x&lang=de#top")
        status, headers, body = stack.request(stack.redirect_port, "GET", f"/{short_id}?q={'x' * 3000}", token=None)
        assert status == 414 and "Location" not in headers and "error" in json.loads(body)
        port = stack.redirect_port
        raw_utf8 = _raw_get(port, f"/{short_id}?q=caf\u00e9".encode())
        assert raw_utf8 == (302, "https://example.com/landing?lang=en&q=caf%C3%A9#top")
        assert _raw_get(port, f"/{short_id}?q=".encode() + b"\xe9") == (400, None)  # not UTF-8
        assert stack.request(port, "GET", "/nothere1?utm_source=x", token=None)[0] == 404
        assert not [line for line in stack.lines if "utm_source" in line or "caf" in line], "no query in any log line"
    finally:
        assert stack.stop() == 0, "\n".join(stack.lines[-30:])
