"""The sign-in limit's client address comes from API Gateway's event, never from a header (issue 15, item 1)."""
import pytest

from webapp.client_address import client_address


def v2(source_ip, forwarded=None):
    """The WSGI environ Zappa builds from an HTTP API event: REMOTE_ADDR from X-Forwarded-For, the event kept."""
    return {
        "REMOTE_ADDR": (forwarded or "127.0.0.1").split(",")[0].strip(),
        "HTTP_X_FORWARDED_FOR": forwarded or "",
        "lambda.event": {"version": "2.0", "requestContext": {"http": {"sourceIp": source_ip}}},
    }


@pytest.mark.parametrize("forwarded", [None, "203.0.113.9", "198.51.100.7, 192.0.2.1", "not-an-address"])
def test_the_event_source_address_wins_over_any_forwarded_header(forwarded):
    assert client_address(v2("192.0.2.1", forwarded)) == "192.0.2.1"


def test_a_rest_api_event_gives_its_identity_source_address():
    environ = {"REMOTE_ADDR": "127.0.0.1", "lambda.event": {"requestContext": {"identity": {"sourceIp": "2001:db8::1"}}}}
    assert client_address(environ) == "2001:db8::1"


@pytest.mark.parametrize("source", [None, "", "x" * 100, "999.1.1.1", ["192.0.2.1"], "192.0.2.1\n"])
def test_a_missing_or_malformed_source_address_is_unknown_never_the_header(source):
    assert client_address(v2(source, "203.0.113.9")) == "unknown"


def test_an_event_without_a_request_context_is_unknown():
    assert client_address({"REMOTE_ADDR": "203.0.113.9", "lambda.event": {"requestContext": "junk"}}) == "unknown"


def test_without_an_event_the_socket_peer_is_the_caller():
    assert client_address({"REMOTE_ADDR": "127.0.0.1"}) == "127.0.0.1"
    assert client_address({}) == "unknown"


def test_addresses_are_canonical_so_one_client_has_one_key():
    assert client_address(v2("2001:DB8:0:0:0:0:0:1")) == client_address(v2("2001:db8::1"))
