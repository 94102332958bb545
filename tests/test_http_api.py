"""The local HTTP API stand-in routes and limits requests like API Gateway's HTTP API, over a real
socket on 127.0.0.1: only the template's routes reach the handler, and a bad Content-Length is a
400 or 413, never a traceback, a hang or a MemoryError."""
import json
import socket
import threading

import pytest

from local_stack.http_api import MAX_BODY_BYTES, make_server, route_key
from local_stack.template import http_api_routes


@pytest.fixture
def api():
    """The stand-in on a free loopback port, with a handler that records each event and answers 302."""
    events = []

    def handler(event, context):
        events.append(event)
        return {"statusCode": 302, "headers": {"Location": "https://example.com/"}, "body": ""}

    server = make_server(handler, 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.events = events
    server.port = server.server_address[1]
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _exchange(port, raw, timeout=5):
    """Send raw bytes, read until the server closes (or the timeout), and return (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(raw)
        conn.shutdown(socket.SHUT_WR)  # nothing more to send: a server that waits for more would hang here
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                head, _, body = data.partition(b"\r\n\r\n")
                length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
                if length and len(body) >= length[0]:
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def _request(method, path, extra=b""):
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode() + extra + b"\r\n"


def test_the_routes_are_the_templates():
    assert http_api_routes() == {"GET /{short_id}", "HEAD /{short_id}", "GET /", "GET /.well-known/security.txt",
                                 "HEAD /.well-known/security.txt"}


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [("GET", "/abc", "GET /{short_id}"), ("HEAD", "/abc", "HEAD /{short_id}"), ("GET", "/", "GET /"),
     ("GET", "/.well-known/security.txt", "GET /.well-known/security.txt")],
)
def test_get_and_head_on_a_short_id_and_get_on_the_root_reach_the_handler(api, method, path, route):
    status, _, _ = _exchange(api.port, _request(method, path))
    assert status == 302
    (event,) = api.events
    assert event["routeKey"] == route and event["requestContext"]["routeKey"] == route
    assert event["rawPath"] == path
    assert event["pathParameters"] == ({"short_id": "abc"} if path == "/abc" else {})


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND"])
@pytest.mark.parametrize("path", ["/abc", "/"])
def test_other_methods_get_api_gateways_not_found(api, method, path):
    status, headers, body = _exchange(api.port, _request(method, path, b"Content-Length: 0\r\n"))
    assert status == 404
    assert json.loads(body) == {"message": "Not Found"}
    assert headers["Content-Type"] == "application/json"
    assert api.events == []


@pytest.mark.parametrize("path", ["/a/b", "/abc/", "/a/b/c", "/abc/?q=1"])
def test_paths_of_more_than_one_segment_get_api_gateways_not_found(api, path):
    status, _, body = _exchange(api.port, _request("GET", path))
    assert status == 404 and json.loads(body) == {"message": "Not Found"}
    assert api.events == []


def test_head_on_the_root_is_not_a_route(api):
    status, _, body = _exchange(api.port, _request("HEAD", "/"))
    assert status == 404 and body == b""
    assert api.events == []


@pytest.mark.parametrize(
    "value", ["abc", "-1", "+5", "1.5", "0x10", " ", "\u0661", "1, 2"], ids=lambda v: repr(v)
)
def test_a_content_length_that_is_not_a_number_is_a_400(api, value):
    raw = _request("GET", "/abc", f"Content-Length: {value}\r\n".encode())
    status, _, body = _exchange(api.port, raw)
    assert status == 400
    assert json.loads(body) == {"message": "Bad Request"}
    assert api.events == []


def test_two_different_content_lengths_are_a_400(api):
    status, _, _ = _exchange(api.port, _request("GET", "/abc", b"Content-Length: 1\r\nContent-Length: 2\r\n"))
    assert status == 400
    assert api.events == []


@pytest.mark.parametrize("value", [str(MAX_BODY_BYTES + 1), "1000000000000", "9" * 40])
def test_a_content_length_over_api_gateways_10_mb_is_a_413(api, value):
    status, _, body = _exchange(api.port, _request("GET", "/abc", f"Content-Length: {value}\r\n".encode()))
    assert status == 413
    assert json.loads(body) == {"message": "Request Entity Too Large"}
    assert api.events == []


def test_a_chunked_body_is_a_400(api):
    status, _, _ = _exchange(api.port, _request("GET", "/abc", b"Transfer-Encoding: chunked\r\n") + b"0\r\n\r\n")
    assert status == 400
    assert api.events == []


def test_a_small_body_on_a_route_is_passed_on_like_api_gateway(api):
    status, _, _ = _exchange(api.port, _request("GET", "/abc", b"Content-Length: 5\r\n") + b"hello")
    assert status == 302
    assert api.events[0]["isBase64Encoded"] is True and api.events[0]["body"] == "aGVsbG8="


def test_a_body_announced_but_never_sent_does_not_hold_the_server(api):
    # The client announces 100 bytes, sends 3 and closes: the server gives up at once, and still serves.
    with socket.create_connection(("127.0.0.1", api.port), timeout=5) as conn:
        conn.sendall(_request("GET", "/abc", b"Content-Length: 100\r\n") + b"abc")
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(100) == b""  # closed without an answer, as there is no request to answer
    status, _, _ = _exchange(api.port, _request("GET", "/abc"))
    assert status == 302
    assert len(api.events) == 1


def test_the_server_keeps_serving_after_bad_requests(api):
    for value in ("abc", "-1", "1000000000000"):
        _exchange(api.port, _request("GET", "/abc", f"Content-Length: {value}\r\n".encode()))
    status, _, _ = _exchange(api.port, _request("GET", "/abc"))
    assert status == 302


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/x", "GET /{short_id}"),
        ("HEAD", "/x", "HEAD /{short_id}"),
        ("GET", "/", "GET /"),
        ("HEAD", "/", None),
        ("POST", "/x", None),
        ("GET", "/x/y", None),
        ("GET", "", None),
    ],
)
def test_route_key(method, path, expected):
    assert route_key(method, path, http_api_routes()) == expected


def test_source_ip_is_the_connections_peer_never_a_forwarded_for_header(api):
    with socket.socket() as conn:
        conn.settimeout(5)
        conn.bind(("127.0.0.2", 0))  # any 127/8 address is loopback on Linux: a peer other than the default
        conn.connect(("127.0.0.1", api.port))
        conn.sendall(_request("GET", "/abc", b"X-Forwarded-For: 203.0.113.9\r\n"))
        assert conn.recv(65536).startswith(b"HTTP/1.1 302")
    (event,) = api.events
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.2"
