"""Views of the token pages: one's own tokens; admins see and revoke everyone's, or all of one user's."""
from flask import abort, current_app, flash, g, redirect, render_template, request, url_for

from webapp import access, audit
from webapp.auth import permission_required, reauth
from webapp.exceptions import InvalidCursor, TokenNotFound
from webapp.store import get_store
from webapp.store.tokens import TokenRefused
from webapp.store.users import OIDC
from webapp.token_pages import bp
from webapp.token_pages.forms import TokenForm


@bp.get("/tokens")
@permission_required(access.READ_LINKS)
def index():
    """List the tokens this user may manage, newest first, a page at a time, and the form to create one."""
    return _render_index(TokenForm())


@bp.post("/tokens")
@permission_required(access.READ_LINKS)
def create():
    """Create a token and show its plaintext this once (it is not stored, so it is rendered, not redirected)."""
    form = TokenForm()
    if not form.validate_on_submit():
        return _render_index(form), 422
    store, config = get_store(), current_app.config
    owner = store.tokens.owner(g.user)
    if form.scope.data == access.WRITE and owner["source"] != OIDC:
        refused = _check_password(form)
        if refused:
            return refused
    try:
        plaintext, token_id = store.tokens.create(
            g.user, form.name.data, scope=form.scope.data, days=form.days.data,
            max_live=config["TOKENS_PER_USER"], sso_max_days=config["SSO_TOKEN_MAX_DAYS"])
    except TokenRefused as err:
        (getattr(form, err.field).errors if err.field else form.form_errors).append(str(err))
        return _render_index(form), err.status
    audit.record("token.create", target=g.user, token_id=token_id, scope=form.scope.data)
    response = current_app.make_response(_render_index(TokenForm(formdata=None), new_token=plaintext))
    response.headers["Cache-Control"] = "no-store"  # the plaintext must not stay in any cache
    return response


def _check_password(form):
    """None when the password (or a current code) is right; else the page refusing it. A guess counts
    like a failed sign-in. Single sign-on users have no password here and are not asked: their tokens
    are short-lived instead."""
    refused = reauth.attempt(g.user, form.password.data)
    if refused == reauth.LOCKED:
        audit.record("token.create", target=g.user, outcome="locked", scope=form.scope.data)
        form.password.errors.append("Too many wrong passwords for this account. Try again later.")
        return _render_index(form), 429
    if refused:
        audit.record("token.create", target=g.user, outcome="failed", reason="wrong password", scope=form.scope.data)
        form.password.errors.append("A write token needs your password: that is not it.")
        return _render_index(form), 422
    return None


@bp.post("/tokens/<token_id>/revoke")
@permission_required(access.READ_LINKS)
def revoke(token_id):
    """Revoke a token: it answers 401 from now on."""
    owner = None if access.role_allows(g.role, access.MANAGE_ANY_TOKEN) else g.user
    try:
        token = get_store().tokens.revoke(token_id, owner=owner)
    except TokenNotFound:
        abort(404, "There is no token with that id that you may revoke.")
    audit.record("token.revoke", target=token["username"], token_id=token["id"], scope=token["scope"])
    flash(f"Revoked the token {token['name']!r}.", "success")
    return redirect(_back(), 303)


@bp.post("/tokens/users/<username>/revoke")
@permission_required(access.MANAGE_ANY_TOKEN)
def revoke_all(username):
    """Revoke every token of one user (admins)."""
    store = get_store()
    if store.users.get(username) is None:
        abort(404, "There is no user with that name.")
    count = store.tokens.revoke_all(username)
    audit.record("token.revoke_all", target=username, count=count)
    flash(f"Revoked {count} token{'' if count == 1 else 's'} of {username}.", "success")
    return redirect(url_for("tokens.index", username=username), 303)


def _back():
    """The list page the button was on (its filter and cursor come from hidden fields)."""
    return url_for("tokens.index", username=request.form.get("username") or None,
                   cursor=request.form.get("cursor") or None)


def _render_index(form, new_token=None):
    everyone = access.role_allows(g.role, access.MANAGE_ANY_TOKEN)
    # Admins may narrow the list to one user; everyone else sees only their own.
    username = (request.args.get("username") or None) if everyone else g.user
    cursor = request.args.get("cursor") or None
    try:
        tokens, next_cursor, previous_cursor = get_store().tokens.page(
            username, current_app.config["PAGE_SIZE"], cursor)
    except InvalidCursor:
        abort(400, "That page link is not valid. Start again from the first page.")
    owner = get_store().tokens.owner(g.user) or {"source": None}
    max_days = get_store().tokens.max_days(owner, current_app.config["SSO_TOKEN_MAX_DAYS"])
    if not form.days.errors and (form.days.data or 0) > max_days:
        form.days.data = max_days  # the default, 90, is beyond a single sign-on user's limit
    return render_template(
        "tokens/index.html", tokens=tokens, form=form, everyone=everyone, new_token=new_token,
        username=username if everyone else None, cursor=cursor, next_cursor=next_cursor,
        previous_cursor=previous_cursor, sso=owner["source"] == OIDC, max_days=max_days)
