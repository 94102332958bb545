"""Bearer-token authentication for the API."""
from flask import g, request

from webapp.api import bp
from webapp.api.responses import json_error
from webapp.store import get_store


@bp.before_request
def require_token():
    """Every API call needs a valid token; CORS preflights carry none, so they pass."""
    if request.method == "OPTIONS":
        return None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    username = get_store().resolve_token(token.strip()) if scheme.lower() == "bearer" else None
    if username is None:
        return json_error(401, "A valid API token is required (Authorization: Bearer <token>).",
                          {"WWW-Authenticate": 'Bearer realm="api"'})
    g.api_user = username
    return None
