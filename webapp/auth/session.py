"""Who is signed in: a username in the signed Flask session cookie."""
import functools
from urllib.parse import urlsplit

from flask import g, redirect, request, session, url_for

from webapp.auth import bp


@bp.before_app_request
def load_signed_in_user():
    """Expose the signed-in username (or None) as g.user."""
    # The API authenticates with tokens only; reading the cookie there would
    # invite CSRF and makes every API response vary on Cookie.
    g.user = None if request.blueprint == "api" else session.get("username")


def sign_in(username):
    """Start a fresh session for the user (clearing first prevents session fixation)."""
    session.clear()
    session.permanent = True
    session["username"] = username


def sign_out():
    """End the session."""
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


def safe_next(target, default):
    """The target if it is a path on this site, else the default (no open redirects)."""
    if not target:
        return default
    parts = urlsplit(target)
    # Browsers treat "/\\evil.example" like "//evil.example", so backslashes are refused too.
    if parts.netloc or parts.scheme or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
