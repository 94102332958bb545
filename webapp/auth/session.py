"""Who is signed in: a session id in the signed cookie, checked against the session item in the table."""
import functools
from urllib.parse import urlsplit

from flask import abort, current_app, g, redirect, request, session, url_for

from webapp import access
from webapp.auth import bp
from webapp.store import get_store

# Requests that never need to know the user, so they cost no table read.
_ANONYMOUS_ENDPOINTS = {"static", "health", "security_txt"}


@bp.before_app_request
def load_signed_in_user():
    """Expose the signed-in username (or None) as g.user and their role as g.role."""
    g.user = g.role = None
    # The API authenticates with tokens only; reading the cookie there would
    # invite CSRF and makes every API response vary on Cookie.
    if request.blueprint == "api" or request.endpoint in _ANONYMOUS_ENDPOINTS:
        return
    username, session_id = session.get("username"), session.get("sid")
    if not username:
        return
    user = get_store().sessions.load(username, session_id, current_app.config["SESSION_IDLE_SECONDS"])
    if user is None:
        # Signed out elsewhere, expired, idle too long, or the user was disabled: the cookie is worthless now.
        session.clear()
        return
    g.user, g.role = user["username"], user["role"]


def sign_in(username):
    """Start a fresh server-side session for the user (clearing first prevents session fixation)."""
    session.clear()
    session.permanent = True
    session["username"] = username
    session["sid"] = get_store().sessions.create(
        username, current_app.config["PERMANENT_SESSION_LIFETIME"], user_agent=request.headers.get("User-Agent")
    )


def sign_out():
    """End the session on the server too, so a copy of the cookie stops working."""
    username, session_id = session.get("username"), session.get("sid")
    if username and session_id:
        get_store().sessions.end(username, session_id)
    session.clear()


def login_required(view):
    """Redirect anonymous users to the sign-in page, remembering where they were going."""

    @functools.wraps(view)
    def wrapped(**kwargs):
        if g.user is None:
            return redirect(url_for("auth.login", next=_here()), 303)
        return view(**kwargs)

    return wrapped


def _here():
    """This request's path and query, under the script root (Zappa's "/prod" stage lives in SCRIPT_NAME)."""
    return request.script_root + request.full_path.rstrip("?")


def permission_required(permission):
    """Like login_required, and then 403 for a signed-in user whose role lacks the permission."""

    def decorator(view):
        @functools.wraps(view)
        def checked(**kwargs):
            if not access.role_allows(g.role, permission):
                abort(403, "Your role does not allow this. Ask an admin if you need it.")
            return view(**kwargs)

        return login_required(checked)

    return decorator


@bp.app_template_global()
def can(permission):
    """True when the signed-in user's role grants the permission (templates hide what they may not do)."""
    return g.get("user") is not None and access.role_allows(g.get("role"), permission)


def landing(target=None):
    """Where a sign-in ends: the ?next= path when it is safe, else the signed-in user's home, the dashboard
    (the link list stays at "/", where many pages link)."""
    return safe_next(target, url_for("dashboard.index"))


def safe_next(target, default):
    """The target if it is a path on this site, else the default (no open redirects)."""
    if not target:
        return default
    parts = urlsplit(target)
    # Browsers treat "/\\evil.example" like "//evil.example", so backslashes are refused too.
    if parts.netloc or parts.scheme or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
