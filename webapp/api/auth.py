"""Bearer-token authentication for the API, and the permission check every API view declares."""
import functools

from flask import current_app, g, request

from webapp import access
from webapp.api import bp
from webapp.api.responses import json_error
from webapp.store import get_store


@bp.before_request
def require_token():
    """Every API call needs a valid token; CORS preflights carry none, so they pass, as do public views."""
    if request.method == "OPTIONS" or getattr(current_app.view_functions.get(request.endpoint), "public", False):
        return None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    caller = get_store().tokens.resolve(token.strip()) if scheme.lower() == "bearer" else None
    if caller is None:
        return json_error(401, "A valid API token is required (Authorization: Bearer <token>).",
                          {"WWW-Authenticate": 'Bearer realm="api"'})
    g.api_user, g.api_role, g.api_scope = caller["username"], caller["role"], caller["scope"]
    g.api_token_id = caller["token_id"]  # link creations are limited per token too (webapp.abuse)
    return None


def public(view):
    """Serve this API view without a token: only what anyone may read (the API's own description)."""
    view.public = True
    return view


def allowed(permission):
    """True when the calling token's scope and its owner's current role both grant the permission."""
    return access.scope_allows(g.api_scope, g.api_role, permission)


def requires(permission):
    """403 with a JSON error unless the token's scope and its owner's role both grant the permission."""

    def decorator(view):
        @functools.wraps(view)
        def checked(**kwargs):
            if not allowed(permission):
                return json_error(403, _refusal(permission))
            return view(**kwargs)

        return checked

    return decorator


def _refusal(permission):
    if not access.role_allows(g.api_role, permission):
        return f"Your role ({g.api_role}) does not allow this."
    return f"This token's scope ({g.api_scope}) does not allow this; use a write token."
