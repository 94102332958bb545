"""Views of the JSON API for access: API tokens (everyone, their own) and users (admins)."""
from flask import current_app, g, request, url_for

from webapp import access, audit, whole_numbers
from webapp.api import bp
from webapp.api.auth import allowed, requires
from webapp.api.responses import json_error
from webapp.api.routes import _BadBody, _json_object  # one body parser for the whole API
from webapp.exceptions import CallerNotAdmin, ChangeConflict, InvalidCursor, TokenNotFound, UserExists, UserNotFound
from webapp.store import get_store
from webapp.store.tokens import MAX_PAGE_SIZE, TokenRefused

_TOKEN_FIELDS = {"name", "scope", "expires_in_days"}
# The store's names of a refused token's fields, as this API names them.
_API_FIELDS = {"scope": "scope", "days": "expires_in_days"}
_NEW_USER_FIELDS = {"username", "password", "role"}
_USER_CHANGES = {"role", "disabled"}


@bp.get("/api/tokens")
@requires(access.READ_LINKS)  # a read token may list its owner's tokens
def list_tokens():
    """One page of the caller's tokens, newest first; admins get everyone's, or one user's with ?username=.

    {"tokens": [...], "next": cursor or null}: pass ?cursor=<next> for the next page. Never a plaintext or hash.
    """
    username = request.args.get("username") or None
    if not allowed(access.MANAGE_ANY_TOKEN):
        if username and username != g.api_user:
            return json_error(403, "Only admins may list other users' tokens.")
        username = g.api_user
    raw_limit = request.args.get("limit", str(current_app.config["PAGE_SIZE"]))
    limit = whole_numbers.parse(raw_limit, 4) or 0
    if not 1 <= limit <= MAX_PAGE_SIZE:
        return json_error(422, f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}.", field="limit")
    try:
        tokens, next_cursor, _ = get_store().tokens.page(username, limit, request.args.get("cursor") or None)
    except InvalidCursor:
        return json_error(422, "cursor is not one this API handed out.", field="cursor")
    # "next_cursor" as the link list names it, and "next", the name scripts look for first.
    return {"tokens": tokens, "next": next_cursor, "next_cursor": next_cursor}


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
    days = body.get("expires_in_days")  # absent: the default, or the owner's shorter limit
    if days is not None:
        try:
            access.check_token_days(days)
        except ValueError as err:
            return json_error(422, str(err), field="expires_in_days")
    config = current_app.config
    try:
        plaintext, token_id = get_store().tokens.create(
            g.api_user, name.strip(), scope=scope, days=days,
            max_live=config["TOKENS_PER_USER"], sso_max_days=config["SSO_TOKEN_MAX_DAYS"])
    except TokenRefused as err:
        return json_error(err.status, str(err), field=_API_FIELDS.get(err.field))
    token = get_store().tokens.get(token_id)
    audit.record("token.create", target=g.api_user, token_id=token_id, scope=scope)
    body = {"token": plaintext, **token}
    return body, 201, {"Location": url_for("api.list_tokens"), "Cache-Control": "no-store"}


@bp.delete("/api/tokens/<token_id>")
@requires(access.OWN_TOKENS)
def revoke_token(token_id):
    """Revoke one of the caller's tokens (admins: anyone's); it answers 401 from then on."""
    owner = None if allowed(access.MANAGE_ANY_TOKEN) else g.api_user
    try:
        token = get_store().tokens.revoke(token_id, owner=owner)
    except TokenNotFound:
        return json_error(404, "There is no token with that id that you may revoke.")
    audit.record("token.revoke", target=token["username"], token_id=token["id"], scope=token["scope"])
    return "", 204


@bp.delete("/api/users/<username>/tokens")
@requires(access.MANAGE_ANY_TOKEN)
def revoke_user_tokens(username):
    """Revoke every token of a user (admins, write tokens): {"revoked": <how many>}."""
    store = get_store()
    if store.users.get(username) is None:
        return json_error(404, "There is no user with that name.")
    count = store.tokens.revoke_all(username)
    audit.record("token.revoke_all", target=username, count=count)
    return {"revoked": count}


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
        user = get_store().users.create(body["username"], body["password"], role=body["role"], by=g.api_user)
    except UserExists:
        return json_error(409, "A user with this name already exists.", field="username")
    except (CallerNotAdmin, ChangeConflict) as err:
        audit.record("user.create", target=body["username"], outcome="refused", reason=type(err).__name__, role=body["role"])
        return json_error(409, "You are no longer an enabled admin, or another admin changed users at the same moment, "
                               "so this user was not added.")
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
    if body.get("disabled") is True:
        # Written even when disabled already: the disable becomes the admin's, which single sign-on never
        # undoes (users.DISABLED_BY_SSO), as the users page's Disable button does.
        change["disabled"] = True
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
