"""A small stand-in for API Gateway's HTTP API: each request becomes a payload 2.0 event for a Lambda handler."""
import base64
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


def to_event(method, target, headers, body=b"", source_ip="127.0.0.1"):
    """Build an HTTP API (payload format 2.0) event, as API Gateway would for `GET /{short_id}`."""
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
        "routeKey": f"{method} /{{short_id}}",
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
            "routeKey": f"{method} /{{short_id}}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "pathParameters": {"short_id": short_id} if short_id else {},
        "isBase64Encoded": bool(body),
    }
    if body:
        event["body"] = base64.b64encode(body).decode()
    return event


def make_server(handler, port, host="127.0.0.1"):
    """A threading HTTP server on loopback that hands every request to `handler(event, context)`."""

    class _Adapter(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            result = handler(to_event(self.command, self.path, self.headers.items(), body), None)
            payload = result.get("body") or ""
            data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
            self.send_response(result.get("statusCode", 200))
            for name, value in (result.get("headers") or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

        def log_message(self, format, *args):  # noqa: A002 - the base class's signature
            pass  # The handler's own JSON line is the access log.

    server = ThreadingHTTPServer((host, port), _Adapter)
    server.daemon_threads = True
    return server
