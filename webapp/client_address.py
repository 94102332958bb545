"""The caller's network address, as the network saw it: never from a header a client can write.

On AWS the admin runs behind API Gateway, and Zappa builds the WSGI request from its event. Zappa
sets REMOTE_ADDR from the forwarded-for header, which any client can forge (one real address could
pass as many), and to 127.0.0.1 when there is none (every client would be the same one). The
event itself holds the address API Gateway accepted the connection from:
`requestContext.http.sourceIp` (HTTP API, payload 2.0) or `requestContext.identity.sourceIp`
(REST API). Zappa (0.63, zappa/handler.py) keeps the event in the WSGI environ as "lambda.event".
Without one (the local server), the socket's peer address is the caller's.
"""
import ipaddress

UNKNOWN = "unknown"
EVENT_KEY = "lambda.event"


def client_address(wsgi_environ):
    """The caller's IP address from a WSGI environ, or "unknown"."""
    event = wsgi_environ.get(EVENT_KEY)
    if isinstance(event, dict):
        context = event.get("requestContext")
        context = context if isinstance(context, dict) else {}
        for part in ("http", "identity"):
            section = context.get(part)
            if isinstance(section, dict) and "sourceIp" in section:
                return _valid(section["sourceIp"])
        return UNKNOWN
    return _valid(wsgi_environ.get("REMOTE_ADDR"))


def _valid(value):
    """The address in its canonical form, or "unknown" for anything that is not one."""
    if not isinstance(value, str) or len(value) > 64:
        return UNKNOWN
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return UNKNOWN
