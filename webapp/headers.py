"""Security headers on every response."""
from flask import current_app, g

# No inline script or style anywhere: everything comes from /static, so the
# policy can stay strict.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# Browsers remember for a year to use only https for the admin (and its subdomains). Not in local
# mode: the local stack is plain http on 127.0.0.1, and a pinned localhost breaks other projects.
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"


def init_app(app):
    """Register the after-request hook that sets the headers."""
    app.after_request(set_security_headers)


def set_security_headers(response):
    """Add nosniff (and HSTS outside local mode) everywhere, framing, referrer and CSP rules to HTML
    pages, and no-store to whatever a signed-in user or an API token was answered."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if not current_app.config["LOCAL_MODE"]:
        response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
    if g.get("user") or g.get("api_user"):
        # Pages and JSON for a signed-in user or a token show links, stats, users and tokens: no
        # browser or proxy cache may keep them for the next person at this machine.
        response.headers["Cache-Control"] = "no-store"
    if response.mimetype == "text/html":
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    return response
