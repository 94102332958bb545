"""A small stand-in for API Gateway's HTTP API: each request becomes a payload 2.0 event for a Lambda handler.

It routes like the real one: only the template's route keys (GET and HEAD on /{short_id}, GET /, ...)
reach the handler, and anything else gets API Gateway's own 404. A request body is limited like
API Gateway's (10 MB), and a Content-Length that is not a number is a 400, never a crash or a hang.
"""
import base64
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from local_stack.template import http_api_routes

# API Gateway's payload limit for HTTP APIs.
MAX_BODY_BYTES = 10 * 1024 * 1024
# A client that announces a body and stops sending it holds a thread at most this long.
READ_TIMEOUT_SECONDS = 30


def route_key(method, path, routes):
    """The route key that a request matches ("GET /{short_id}"), or None: API Gateway answers 404.

    A path parameter matches exactly one non-empty path segment, as in API Gateway.
    """
    segments = path.split("/")[1:]
    for key in routes:
        route_method, _, route_path = key.partition(" ")
        if route_method != method:
            continue
        pattern = route_path.split("/")[1:]
        if len(pattern) == len(segments) and all(
            part == segment or (part.startswith("{") and part.endswith("}") and segment)
            for part, segment in zip(pattern, segments)
        ):
            return key
    return None


def to_event(method, target, headers, body=b"", source_ip="127.0.0.1", route=None):
    """Build an HTTP API (payload format 2.0) event, as API Gateway would for the route matched
    (by default `<method> /{short_id}`)."""
    route = route or f"{method} /{{short_id}}"
    parts = urlsplit(target)
    lowered = {}
    for name, value in headers:
        # HTTP API joins repeated headers with commas and lower-cases the names.
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    short_id = parts.path[1:]
    now = time.time()
    event = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": lowered.get("host", "127.0.0.1"),
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": f"local-{time.monotonic_ns()}",
            "routeKey": route,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "pathParameters": {"short_id": short_id} if short_id and "{short_id}" in route else {},
        "isBase64Encoded": bool(body),
    }
    if parts.query:
        event["queryStringParameters"] = query_parameters(parts.query)
    if body:
        event["body"] = base64.b64encode(body).decode()
    return event


def query_parameters(query):
    """Payload 2.0's queryStringParameters: decoded, a repeated name's values joined with commas.

    API Gateway leaves the field out when there is no query; rawQueryString keeps it as sent.
    """
    params = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    return params


def make_server(handler, port, host="127.0.0.1", routes=None):
    """A threading HTTP server on loopback that hands every routed request to `handler(event, context)`."""
    routes = frozenset(routes) if routes is not None else http_api_routes()

    class _Adapter(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = READ_TIMEOUT_SECONDS

        def _serve(self):
            route = route_key(self.command, self.path.partition("?")[0], routes)
            if route is None:
                # The body, if any, is never read, so this connection cannot carry another request.
                return self._gateway_error(404, "Not Found")
            body = self._read_body()
            if body is None:
                return None
            # http.server reads the request line as Latin-1; API Gateway reads UTF-8. Bytes that are not
            # UTF-8 stay as lone surrogates, which the redirect refuses with a 400.
            target = self.path.encode("latin-1").decode("utf-8", "surrogateescape")
            # sourceIp is the peer of the connection, as API Gateway's is (never a forwarded-for header).
            event = to_event(self.command, target, self.headers.items(), body, source_ip=self.client_address[0],
                             route=route)
            result = handler(event, None)
            payload = result.get("body") or ""
            data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
            self.send_response(result.get("statusCode", 200))
            for name, value in (result.get("headers") or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            return None

        def _read_body(self):
            """The request body, or None after answering 400/413 (or a client that stopped sending)."""
            if self.headers.get("Transfer-Encoding"):
                # Not supported here (the routes take no body); refusing keeps the stream in step.
                return self._gateway_error(400, "Bad Request")
            lengths = self.headers.get_all("Content-Length") or []
            if not lengths:
                return b""
            if len(set(lengths)) != 1 or not (lengths[0].isascii() and lengths[0].isdigit()):
                return self._gateway_error(400, "Bad Request")  # "abc", "-1", "1, 2", "+5"...
            length = int(lengths[0])
            if length > MAX_BODY_BYTES:
                return self._gateway_error(413, "Request Entity Too Large")
            try:
                body = self.rfile.read(length)
            except TimeoutError:
                body = b""
            if len(body) < length:
                self.close_connection = True  # the client stopped sending: nothing to answer
                return None
            return body

        def _gateway_error(self, status, message):
            """API Gateway's own JSON error; the connection closes, since any body stays unread."""
            data = json.dumps({"message": message}, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self.close_connection = True
            return None

        def __getattr__(self, name):
            # Every method (TRACE, PROPFIND...) is routed, so an unknown one gets the gateway's 404, not a 501.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format, *args):  # noqa: A002 - the base class's signature
            pass  # The handler's own JSON line is the access log.

    server = ThreadingHTTPServer((host, port), _Adapter)
    server.daemon_threads = True
    return server
