"""Views of the JSON API for access: API tokens (everyone, their own) and users (admins)."""
from flask import g, request, url_for

from webapp import access, audit
from webapp.api import bp
from webapp.api.auth import allowed, requires
from webapp.api.responses import json_error
from webapp.api.routes import _BadBody, _json_object  # one body parser for the whole API
from webapp.exceptions import CallerNotAdmin, ChangeConflict, TokenNotFound, UserExists, UserNotFound
from webapp.store import get_store

_TOKEN_FIELDS = {"name", "scope", "expires_in_days"}
_NEW_USER_FIELDS = {"username", "password", "role"}
_USER_CHANGES = {"role", "disabled"}


@bp.get("/api/tokens")
@requires(access.READ_LINKS)  # a read token may list its owner's tokens
def list_tokens():
    """The caller's tokens; admins get everyone's, or one user's with ?username=. Never a plaintext or hash."""
    username = request.args.get("username")
    if allowed(access.MANAGE_ANY_TOKEN):
        tokens = get_store().tokens.list(username or None)
    elif username and username != g.api_user:
        return json_error(403, "Only admins may list other users' tokens.")
    else:
        tokens = get_store().tokens.list(g.api_user)
    return {"tokens": tokens}


@bp.post("/api/tokens")
@requires(access.OWN_TOKENS)
def create_token():
    """Create a token for the caller from {"name", "scope", "expires_in_days"?}; the plaintext is in this answer only."""
    try:
        body = _json_object()
    except _BadBody as err:
        return json_error(err.status, err.message)
    unknown = set(body) - _TOKEN_FIELDS
    if unknown:
        return json_error(422, f"Unknown field(s): {', '.join(sorted(unknown))}.")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        return json_error(422, "name must be 1 to 100 characters saying what the token is for.", field="name")
    try:
        scope = access.check_scope(body.get("scope"), g.api_role)
    except ValueError as err:
        return json_error(422, str(err), field="scope")
    try:
        days = access.check_token_days(body.get("expires_in_days", access.TOKEN_DEFAULT_DAYS))
    except ValueError as err:
        return json_error(422, str(err), field="expires_in_days")
    plaintext, token_id = get_store().tokens.create(g.api_user, name.strip(), scope=scope, days=days)
    token = get_store().tokens.get(token_id)
    body = {"token": plaintext, **token}
    return body, 201, {"Location": url_for("api.list_tokens"), "Cache-Control": "no-store"}


@bp.delete("/api/tokens/<token_id>")
@requires(access.OWN_TOKENS)
def revoke_token(token_id):
    """Revoke one of the caller's tokens (admins: anyone's); it answers 401 from then on."""
    owner = None if allowed(access.MANAGE_ANY_TOKEN) else g.api_user
    try:
        get_store().tokens.revoke(token_id, owner=owner)
    except TokenNotFound:
        return json_error(404, "There is no token with that id that you may revoke.")
    return "", 204


@bp.get("/api/users")
@requires(access.MANAGE_USERS)
def list_users():
    """Every user with role and state (admins, write tokens)."""
    return {"users": get_store().users.list()}


@bp.post("/api/users")
@requires(access.MANAGE_USERS)
def create_user():
    """Create a local account from {"username", "password", "role"}."""
    try:
        body = _json_object()
    except _BadBody as err:
        return json_error(err.status, err.message)
    unknown = set(body) - _NEW_USER_FIELDS
    if unknown:
        return json_error(422, f"Unknown field(s): {', '.join(sorted(unknown))}.")
    user_inputs = [body["username"]] if isinstance(body.get("username"), str) else []  # guessable in a password
    for field, rule in (("username", access.check_username),
                        ("password", lambda password: access.check_password(password, user_inputs)),
                        ("role", access.check_role)):
        try:
            rule(body.get(field))
        except ValueError as err:
            return json_error(422, f"{field}: {err}", field=field)
    try:
        user = get_store().users.create(body["username"], body["password"], role=body["role"])
    except UserExists:
        return json_error(409, "A user with this name already exists.", field="username")
    audit.record("user.create", target=user["username"], role=user["role"])
    return user, 201, {"Location": url_for("api.list_users")}


@bp.patch("/api/users/<username>")
@requires(access.MANAGE_USERS)
def update_user(username):
    """Change a user's role and/or disable or re-enable them, from {"role"?, "disabled"?}, in one write that
    ends their sessions; 409 when the caller stopped being an enabled admin meanwhile."""
    try:
        body = _json_object()
    except _BadBody as err:
        return json_error(err.status, err.message)
    if not body or set(body) - _USER_CHANGES:
        return json_error(422, 'Send "role" and/or "disabled".')
    if "role" in body and body["role"] not in access.ROLES:
        return json_error(422, f"role: choose one of {', '.join(access.ROLES)}.", field="role")
    if "disabled" in body and not isinstance(body["disabled"], bool):
        return json_error(422, "disabled must be true or false.", field="disabled")
    if username == g.api_user:
        return json_error(409, "You cannot change your own role or disable yourself. Ask another admin.")
    store = get_store()
    user = store.users.get(username)
    if user is None:
        return json_error(404, "There is no user with that name.")
    change = {field: body[field] for field in ("role", "disabled") if field in body and body[field] != user[field]}
    if not change:
        return user  # already so: nothing to write
    try:
        user = store.users.change(username, by=g.api_user, **change)
    except UserNotFound:
        return json_error(404, "There is no user with that name.")
    except CallerNotAdmin:
        audit.record("user.change", target=username, outcome="refused", reason="caller not an enabled admin", **change)
        return json_error(409, "You are no longer an enabled admin, so this change was not made.")
    except ChangeConflict:
        audit.record("user.change", target=username, outcome="refused", reason="concurrent change", **change)
        return json_error(409, "Another admin changed these users at the same moment, so this change was not made. Try again.")
    audit.record("user.change", target=username, **change)
    return user


@bp.delete("/api/users/<username>/sessions")
@requires(access.MANAGE_USERS)
def end_user_sessions(username):
    """End every session of a user in one write (their API tokens are untouched)."""
    try:
        get_store().sessions.end_all(username)
    except UserNotFound:
        return json_error(404, "There is no user with that name.")
    audit.record("session.end_all", target=username)
    return "", 204
