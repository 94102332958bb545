"""Users: local accounts (scrypt password hashes) and single sign-on accounts, with a role each."""
import functools
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

from webapp import access, clock
from webapp.exceptions import AccountConflict, IdentityMismatch, UserExists, UserNotFound
from webapp.store.table import _ConditionFailed, _key, _marshal, _unmarshal

USER_PK_PREFIX, USER_SK = "user#", "user"
USERS_LIST = "users"
LOCAL, OIDC = "local", "oidc"
# disabled_by on a user item: single sign-on disabled the account (its person has no mapped role any
# more), so a later SSO sign-in with a role may enable it again. Any other disable or enable removes it.
DISABLED_BY_SSO = "sso"
# OWASP's Password Storage Cheat Sheet: scrypt with N=2^17, r=8, p=1 (128 MiB, about 0.3 s here) when
# Argon2id is not available. Werkzeug's default is N=2^15. Older hashes keep verifying: each hash
# names its own method and parameters.
PASSWORD_HASH_METHOD = "scrypt:131072:8:1"
# A list page of users reads at most this many from the index; organisations have far fewer.
MAX_LISTED_USERS = 1000


def user_key(username):
    """The table key of a user's item."""
    return _key(f"{USER_PK_PREFIX}{username}", USER_SK)


class Users:
    """Create, read, list and change users; every change of who may do what ends their sessions."""

    def __init__(self, table, sessions):
        self.table = table
        # The sessions part: a changed password, role or disable ends the user's sessions through it.
        self.sessions = sessions

    def create(self, username, password=None, role=access.ADMIN, source=LOCAL):
        """Create a user; raise UserExists when the name is taken. Without a password, only SSO signs them in."""
        item = {
            "pk": f"{USER_PK_PREFIX}{username}",
            "sk": USER_SK,
            "list_pk": USERS_LIST,
            "list_sk": username,
            "username": username,
            "role": access.check_role(role),
            "disabled": False,
            "source": source,
            "created_at": clock.format_timestamp(clock.utcnow()),
        }
        if password is not None:
            item["password_hash"] = hash_password(password)
        self.table.put_new(item, UserExists(username))
        return user_from_item(item)

    def ensure(self, username, password, role=access.ADMIN):
        """Create the user, or reset the password and role of an existing one (for the local stack)."""
        resp = self.table.call(
            "update_item",
            TableName=self.table.name,
            Key=user_key(username),
            UpdateExpression=(
                "SET password_hash = :h, list_pk = :lp, list_sk = :ls, username = :u, #r = :r, disabled = :d, "
                "#s = :s, created_at = if_not_exists(created_at, :now)"
            ),
            ExpressionAttributeNames={"#r": "role", "#s": "source"},
            ExpressionAttributeValues=_marshal(
                {
                    ":h": hash_password(password),
                    ":lp": USERS_LIST,
                    ":ls": username,
                    ":u": username,
                    ":r": access.check_role(role),
                    ":d": False,
                    ":s": LOCAL,
                    ":now": clock.format_timestamp(clock.utcnow()),
                }
            ),
            ReturnValues="ALL_NEW",
        )
        self.sessions.end_all(username)  # a reset password ends every old session
        return user_from_item(_unmarshal_attributes(resp))

    def get(self, username):
        """The user (without the password hash), or None."""
        item = self._get_user_item(username)
        return user_from_item(item) if item else None

    def verify_password(self, username, password):
        """True when the user exists, has a password, and it matches (disabled or not: the caller decides)."""
        item = self._get_user_item(username)
        stored = item.get("password_hash") if item else None
        # A missing user or password still costs one hash check, so timing does not tell which names exist.
        matches = check_password_hash(stored or _dummy_hash(), password)
        return matches and stored is not None

    def list(self):
        """Every user, by name, from the by_list index (only attributes the index projects)."""
        items = self.table.query_index(USERS_LIST, MAX_LISTED_USERS, newest_first=False)
        return [user_from_item(item) for item in items]

    def set_role(self, username, role):
        """Change a user's role and end their sessions; return the user."""
        user = self._update_user(username, "SET #r = :r", {":r": access.check_role(role)}, {"#r": "role"})
        self.sessions.end_all(username)
        return user

    def set_disabled(self, username, disabled):
        """Disable or re-enable a user, ending every session either way; their links and tokens stay. Return the user."""
        user = self._update_user(username, "SET disabled = :d REMOVE disabled_by", {":d": bool(disabled)})
        # On enable too: a disable whose session clean-up failed (a throttle after the user was
        # written) leaves sessions behind, dead only while the user is disabled. A disabled user
        # cannot sign in, so any session found here is such a leftover and must not come back.
        self.sessions.end_all(username)
        return user

    def set_password(self, username, password):
        """Set a new password and end every session of the user; return the user."""
        user = self._update_user(username, "SET password_hash = :h", {":h": hash_password(password)})
        self.sessions.end_all(username)
        return user

    def upsert_sso(self, username, role, issuer, subject):
        """The SSO user bound to issuer + subject, with the role the provider's claims map to; created on first sign-in.

        Raise AccountConflict when a local account has that name: an identity provider must never
        be able to take over a local (break-glass) account. Raise IdentityMismatch when the account is
        bound to another issuer + subject: the same email claim does not make two people one account.
        An account that SSO disabled is enabled again; one an admin disabled stays disabled. A changed
        role ends the old sessions.
        """
        item = self._get_user_item(username)
        if item is None:
            try:
                self.create(username, role=role, source=OIDC)
            except UserExists:  # created by a concurrent sign-in a moment ago
                pass
            item = self._get_user_item(username)
        item = self._bind_sso(item, username, issuer, subject)
        if item.get("disabled") and item.get("disabled_by") == DISABLED_BY_SSO:
            item = self._enable_sso(username, role)
        user = user_from_item(item)
        if user["role"] != role and not user["disabled"]:
            user = self.set_role(username, role)
        return user

    def disable_sso(self, username, issuer, subject):
        """The provider maps this person to no role: disable their SSO account (ending its sessions), marked
        as disabled by SSO. Return the user, or None when no SSO account has the name (a local one is
        never touched). Raise IdentityMismatch when the account is bound to another issuer + subject.
        """
        item = self._get_user_item(username)
        if item is None or item.get("source") != OIDC:
            return None
        _check_sso_binding(item, username, issuer, subject)
        if item.get("disabled"):
            return user_from_item(item)  # disabled already, by SSO or by an admin: either way it stays so
        user = self.set_disabled(username, True)
        try:
            # Marked after the disable, which clears any old mark: if this write fails, the account
            # stays disabled as if by an admin, which is the safe side.
            self._update_sso_item(
                username, "SET disabled_by = :by", "disabled = :t", {":by": DISABLED_BY_SSO, ":t": True}
            )
        except _ConditionFailed:  # enabled again meanwhile, by an admin: their word stands
            return self.get(username)
        return user

    def _bind_sso(self, item, username, issuer, subject):
        """The item, bound to issuer + subject if it was not yet; raise AccountConflict or IdentityMismatch."""
        if item.get("source") != OIDC:
            raise AccountConflict(username)
        if "sso_subject" not in item:
            # Made a moment ago, or before accounts were bound: the first identity that signs in keeps it.
            try:
                return self._update_sso_item(
                    username,
                    "SET sso_issuer = :i, sso_subject = :s",
                    "attribute_exists(pk) AND attribute_not_exists(sso_subject)",
                    {":i": issuer, ":s": subject},
                )
            except _ConditionFailed:  # a concurrent sign-in bound it first
                item = self._get_user_item(username)
                if item is None:
                    raise UserNotFound(username) from None
        _check_sso_binding(item, username, issuer, subject)
        return item

    def _enable_sso(self, username, role):
        """Enable an account that SSO disabled, with its new role, in one write; the item afterwards."""
        try:
            return self._update_sso_item(
                username,
                "SET disabled = :f, #r = :r REMOVE disabled_by",
                "disabled_by = :by",
                {":f": False, ":r": access.check_role(role), ":by": DISABLED_BY_SSO},
                {"#r": "role"},
            )
        except _ConditionFailed:  # an admin disabled or enabled it meanwhile: their word stands
            return self._get_user_item(username)

    def _update_sso_item(self, username, expression, condition, values, names=None):
        """One conditional update of a user item; the item afterwards. Raise _ConditionFailed."""
        kwargs = {"ExpressionAttributeNames": names} if names else {}
        resp = self.table.call(
            "update_item",
            TableName=self.table.name,
            Key=user_key(username),
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeValues=_marshal(values),
            ReturnValues="ALL_NEW",
            **kwargs,
        )
        return _unmarshal_attributes(resp)

    def _update_user(self, username, expression, values, names=None):
        """Update an existing user; raise UserNotFound (writing nothing) when there is none."""
        if not _possible_username(username):
            raise UserNotFound(username)
        kwargs = {"ExpressionAttributeNames": names} if names else {}
        try:
            resp = self.table.call(
                "update_item",
                TableName=self.table.name,
                Key=user_key(username),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=_marshal(values),
                ReturnValues="ALL_NEW",
                **kwargs,
            )
        except _ConditionFailed:
            raise UserNotFound(username) from None
        return user_from_item(_unmarshal_attributes(resp))

    def _get_user_item(self, username):
        if not _possible_username(username):
            return None  # no user can have this name; DynamoDB would refuse an oversized key with a 500
        resp = self.table.call("get_item", TableName=self.table.name, Key=user_key(username))
        return _unmarshal_item(resp)


def _check_sso_binding(item, username, issuer, subject):
    """Raise IdentityMismatch when the item is bound to another issuer + subject (an unbound one passes)."""
    if "sso_subject" in item and (item.get("sso_issuer"), item["sso_subject"]) != (issuer, subject):
        raise IdentityMismatch(username)


def hash_password(password):
    """The salted scrypt hash stored for a password, at PASSWORD_HASH_METHOD's cost."""
    return generate_password_hash(password, method=PASSWORD_HASH_METHOD)


def _possible_username(username):
    """True when a user could have this name; every way of creating one checks access.check_username."""
    return isinstance(username, str) and bool(access.USERNAME_RE.fullmatch(username))


def _unmarshal_item(resp):
    return _unmarshal(resp["Item"]) if "Item" in resp else None


def _unmarshal_attributes(resp):
    return _unmarshal(resp["Attributes"])


@functools.cache
def _dummy_hash():
    """Checked when a user does not exist, so a wrong name costs as long as a wrong password
    and does not reveal which names exist. Made on first use, not on a Lambda cold start."""
    return hash_password(secrets.token_hex(16))


def user_from_item(item):
    """A user without the password hash; reads only attributes the by_list index projects."""
    return {
        "username": item.get("username") or item["pk"].removeprefix(USER_PK_PREFIX),
        "role": access.role_of(item),
        "disabled": bool(item.get("disabled", False)),
        "created_at": item.get("created_at"),
    }
