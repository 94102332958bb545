"""Who may do what: roles, permissions and token scopes, with no I/O (the views and the API ask here)."""
import re

import zxcvbn

ADMIN, EDITOR, VIEWER = "admin", "editor", "viewer"
ROLES = (ADMIN, EDITOR, VIEWER)
# Users stored before roles existed could do everything, so a missing role reads as admin.
LEGACY_ROLE = ADMIN

READ, WRITE = "read", "write"
SCOPES = (READ, WRITE)

# Permissions, each granted to the roles listed. Editors may change any link, not only their own:
# links belong to the organisation, and a link must stay manageable when its creator leaves.
READ_LINKS = "links:read"
WRITE_LINKS = "links:write"
MANAGE_USERS = "users:manage"
MANAGE_ANY_TOKEN = "tokens:any"
OWN_TOKENS = "tokens:own"
MANAGE_BLOCKLIST = "blocklist:manage"
_GRANTS = {
    READ_LINKS: {ADMIN, EDITOR, VIEWER},
    WRITE_LINKS: {ADMIN, EDITOR},
    MANAGE_USERS: {ADMIN},
    MANAGE_ANY_TOKEN: {ADMIN},
    OWN_TOKENS: {ADMIN, EDITOR, VIEWER},
    MANAGE_BLOCKLIST: {ADMIN},
}
# What a token's scope allows: a read token only reads, whatever its owner's role.
_SCOPE_ALLOWS = {READ: {READ_LINKS}, WRITE: set(_GRANTS)}

USERNAME_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MIN_PASSWORD_LENGTH = 8
# zxcvbn's score, 0 to 4: 3 is "safely unguessable: moderate protection from offline slow-hash attacks".
MIN_PASSWORD_SCORE = 3
TOKEN_DEFAULT_DAYS = 90
TOKEN_MAX_DAYS = 366


def role_of(user):
    """The user's role; legacy users without one are admins."""
    return user.get("role") or LEGACY_ROLE


def role_allows(role, permission):
    """True when the role grants the permission."""
    return role in _GRANTS.get(permission, set())


def scope_allows(scope, role, permission):
    """True when both the token's scope and its owner's role grant the permission."""
    return permission in _SCOPE_ALLOWS.get(scope, set()) and role_allows(role, permission)


def max_scope(role):
    """The widest scope a token of this role can use: viewers only read."""
    return WRITE if role_allows(role, WRITE_LINKS) else READ


def check_username(username):
    """Return the username if it is 1-64 of letters, digits, '.', '_', '@' or '-'; else raise ValueError."""
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username):
        raise ValueError("Use 1 to 64 letters, digits, '.', '_', '@' or '-'.")
    return username


def check_password(password, user_inputs=()):
    """Return the password if it is long enough and hard to guess; else raise ValueError saying why.

    zxcvbn (Dropbox's offline strength estimate) must score it at least MIN_PASSWORD_SCORE; user_inputs
    (the user name, say) count as easy to guess.
    """
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > 1024:
        raise ValueError("Use at most 1024 characters.")
    # zxcvbn refuses more than 72 characters (its cost grows fast with length); their start is enough to judge.
    result = zxcvbn.zxcvbn(password[:72], user_inputs=[value for value in user_inputs if value])
    if result["score"] < MIN_PASSWORD_SCORE:
        feedback = result["feedback"]
        advice = " ".join(part for part in [feedback.get("warning"), *feedback.get("suggestions", [])] if part)
        raise ValueError(f"This password is too easy to guess. {advice or 'Add another word or two.'}")
    return password


def check_role(role):
    """Return the role if it is one of ROLES; else raise ValueError."""
    if role not in ROLES:
        raise ValueError(f"Choose one of: {', '.join(ROLES)}.")
    return role


def check_scope(scope, role):
    """Return the scope if it is known and within what the owner's role can use; else raise ValueError."""
    if scope not in SCOPES:
        raise ValueError(f"Choose one of: {', '.join(SCOPES)}.")
    if scope == WRITE and max_scope(role) != WRITE:
        raise ValueError("A viewer's token can only read.")
    return scope


def check_token_days(days, max_days=TOKEN_MAX_DAYS):
    """Return a token lifetime in whole days, 1 to max_days (at most TOKEN_MAX_DAYS); else raise ValueError."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= max_days:
        raise ValueError(f"Use a whole number of days from 1 to {max_days}.")
    return days
