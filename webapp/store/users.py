"""Users: local accounts (scrypt password hashes) and single sign-on accounts, with a role each."""
import functools
import random
import secrets
import time

from werkzeug.security import check_password_hash, generate_password_hash

from webapp import access, clock
from webapp.exceptions import AccountConflict, CallerNotAdmin, ChangeConflict, IdentityMismatch, UserExists, UserNotFound
from webapp.store.table import _ConditionFailed, _key, _marshal, _TransactionCanceled, _unmarshal

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
# DynamoDB cancels a transaction that meets another one in flight on the same item, and two admins
# changing each other can BOTH be cancelled that way; a retry after a short random pause lets one go
# first, so the other then sees CallerNotAdmin. A change still meeting others after this is refused.
ADMIN_CHANGE_ATTEMPTS = 4
_CONFLICT_PAUSE_SECONDS = 0.05
# The user's session generation: a session made under an older one is ended. Raising it ends every
# session of the user in one write, whatever their number; the items left behind expire by TTL.
SESSION_GEN = "session_gen"
# Added to every update that changes who may do what, so the change and the revocation are one write.
_END_SESSIONS = f" ADD {SESSION_GEN} :next_gen"


def user_key(username):
    """The table key of a user's item."""
    return _key(f"{USER_PK_PREFIX}{username}", USER_SK)


def session_generation(item):
    """The session generation stored on a user's item (a user stored before generations existed: 0)."""
    return int(item.get(SESSION_GEN, 0))


class Users:
    """Create, read, list and change users; every change of who may do what ends their sessions in the same write."""

    def __init__(self, table, sessions):
        self.table = table
        # The sessions part, for whoever needs to end a user's sessions on their own.
        self.sessions = sessions

    def create(self, username, password=None, role=access.ADMIN, source=LOCAL, by=None):
        """Create a user; raise UserExists when the name is taken. Without a password, only SSO signs them in.

        With by (the admin asking), only while by is still an enabled admin, as for change().
        """
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
        if by is None:
            self.table.put_new(item, UserExists(username))
        elif by == username:
            raise UserExists(username)  # the caller's own name; one transaction cannot check and put one item
        else:
            put = {"TableName": self.table.name, "Item": _marshal(item), "ConditionExpression": "attribute_not_exists(pk)"}
            self._update_as_admin(by, put, action="Put")
        return user_from_item(item)

    def ensure(self, username, password, role=access.ADMIN):
        """Create the user, or reset the password and role of an existing one (for the local stack)."""
        resp = self.table.call(
            "update_item",
            TableName=self.table.name,
            Key=user_key(username),
            UpdateExpression=(
                "SET password_hash = :h, list_pk = :lp, list_sk = :ls, username = :u, #r = :r, disabled = :d, "
                "#s = :s, created_at = if_not_exists(created_at, :now)" + _END_SESSIONS  # a reset ends every old session
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
                    ":next_gen": 1,
                }
            ),
            ReturnValues="ALL_NEW",
        )
        return user_from_item(_unmarshal_attributes(resp))

    def get(self, username):
        """The user (without the password hash), or None."""
        item = self._get_user_item(username)
        return user_from_item(item) if item else None

    def generation(self, username):
        """The user's session generation, read strongly consistent; None when there is no such user."""
        item = self._get_user_item(username, consistent=True)
        return session_generation(item) if item else None

    def verify_password(self, username, password):
        """True when the user exists, has a password, and it matches (disabled or not: the caller decides)."""
        return self._matching_item(username, password) is not None

    def authenticate(self, username, password):
        """The user when the password matches, disabled or not (the caller answers both alike), else None.

        One read and one hash check whatever the outcome. An enabled user's hash made at another cost
        than PASSWORD_HASH_METHOD is upgraded now, while the password is at hand.
        """
        item = self._matching_item(username, password)
        if item is None:
            return None
        user = user_from_item(item)
        stored = item["password_hash"]
        if not user["disabled"] and stored.split("$", 1)[0] != PASSWORD_HASH_METHOD:
            self._upgrade_hash(username, stored, password)
        return user

    def _matching_item(self, username, password):
        """The user's item when it has a password and this is it, else None."""
        item = self._get_user_item(username)
        stored = item.get("password_hash") if item else None
        # A missing user or password still costs one hash check, so timing does not tell which names exist.
        matches = check_password_hash(stored or _dummy_hash(), password)
        return item if matches and stored is not None else None

    def _upgrade_hash(self, username, old_hash, password):
        """Store the password hashed at the current cost, unless the hash changed since it was read."""
        try:
            self.table.call(
                "update_item",
                TableName=self.table.name,
                Key=user_key(username),
                UpdateExpression="SET password_hash = :new",
                ConditionExpression="password_hash = :old",
                ExpressionAttributeValues=_marshal({":new": hash_password(password), ":old": old_hash}),
            )
        except _ConditionFailed:
            pass  # a new password was set meanwhile: it is hashed at the current cost already

    def list(self):
        """Every user, by name, from the by_list index (only attributes the index projects)."""
        items = self.table.query_index(USERS_LIST, MAX_LISTED_USERS, newest_first=False)
        return [user_from_item(item) for item in items]

    def set_role(self, username, role, by=None):
        """Change a user's role and end their sessions, in one write; return the user. See change() for by."""
        return self.change(username, role=role, by=by)

    def set_disabled(self, username, disabled, by=None):
        """Disable or re-enable a user, ending every session either way; their links and tokens stay. Return the user."""
        return self.change(username, disabled=disabled, by=by)

    def change(self, username, role=None, disabled=None, by=None):
        """Change a user's role and/or disabled state and end their sessions, in one write; return the user.

        With by (the admin asking), the write happens only while by is still an enabled admin, checked
        in the same transaction: of two admins demoting each other at once, one change is refused
        (CallerNotAdmin, or ChangeConflict when DynamoDB saw both at once) and an admin is left.
        """
        sets, values, names = [], {}, {}
        if role is not None:
            sets.append("#r = :r")
            values[":r"], names["#r"] = access.check_role(role), "role"
        if disabled is not None:
            sets.append("disabled = :d")
            values[":d"] = bool(disabled)
        if not sets:
            raise ValueError("change() needs a role or a disabled state")
        # An admin's disable or enable is the admin's: single sign-on may later undo only its own (disabled_by).
        remove = " REMOVE disabled_by" if disabled is not None else ""
        return self._update_user(username, "SET " + ", ".join(sets) + remove, values, names, by=by)

    def set_password(self, username, password):
        """Set a new password and end every session of the user, in one write; return the user."""
        return self._update_user(username, "SET password_hash = :h", {":h": hash_password(password)})

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

    def _update_user(self, username, expression, values, names=None, by=None):
        """Update an existing user and end their sessions; raise UserNotFound (writing nothing) when there is none.

        With by, only while that other user is an enabled admin (one transaction; see change()).
        """
        if not _possible_username(username):
            raise UserNotFound(username)
        update = {
            "TableName": self.table.name,
            "Key": user_key(username),
            "UpdateExpression": expression + _END_SESSIONS,
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": _marshal({**values, ":next_gen": 1}),
            **({"ExpressionAttributeNames": names} if names else {}),
        }
        if by is not None:
            self._update_as_admin(by, update)
            return user_from_item(self._get_user_item(username, consistent=True))
        try:
            resp = self.table.call("update_item", ReturnValues="ALL_NEW", **update)
        except _ConditionFailed:
            raise UserNotFound(username) from None
        return user_from_item(_unmarshal_attributes(resp))

    def _update_as_admin(self, admin, update, action="Update"):
        """Apply update (or a Put, with action="Put") only while admin is an enabled admin: a ConditionCheck
        on admin's item in the same transaction."""
        if update.get("Key") == user_key(admin):
            raise ValueError("an admin's change of their own item cannot be checked against itself")
        check = {
            "TableName": self.table.name,
            "Key": user_key(admin),
            # A user stored before roles existed is an admin (access.LEGACY_ROLE).
            "ConditionExpression": (
                "attribute_exists(pk) AND (attribute_not_exists(#r) OR #r = :admin) "
                "AND (attribute_not_exists(disabled) OR disabled = :no)"
            ),
            "ExpressionAttributeNames": {"#r": "role"},
            "ExpressionAttributeValues": _marshal({":admin": access.ADMIN, ":no": False}),
        }
        for attempt in range(1, ADMIN_CHANGE_ATTEMPTS + 1):
            try:
                self.table.call("transact_write_items", TransactItems=[{"ConditionCheck": check}, {action: update}])
                return
            except _TransactionCanceled as err:
                if "TransactionConflict" not in err.reasons or attempt == ADMIN_CHANGE_ATTEMPTS:
                    _raise_admin_change_error(err, admin, update)
            # A cancelled transaction wrote nothing, so trying again is safe.
            time.sleep(random.uniform(0, _CONFLICT_PAUSE_SECONDS * attempt))

    def _get_user_item(self, username, consistent=False):
        if not _possible_username(username):
            return None  # no user can have this name; DynamoDB would refuse an oversized key with a 500
        resp = self.table.call(
            "get_item", TableName=self.table.name, Key=user_key(username), ConsistentRead=consistent
        )
        return _unmarshal_item(resp)


def _check_sso_binding(item, username, issuer, subject):
    """Raise IdentityMismatch when the item is bound to another issuer + subject (an unbound one passes)."""
    if "sso_subject" in item and (item.get("sso_issuer"), item["sso_subject"]) != (issuer, subject):
        raise IdentityMismatch(username)


def _raise_admin_change_error(err, admin, update):
    """The domain error of a cancelled admin change (_update_as_admin's transaction), by its parts' reasons."""
    caller, target = (list(err.reasons) + ["None", "None"])[:2]
    if "TransactionConflict" in err.reasons:
        raise ChangeConflict(admin) from None
    if caller == "ConditionalCheckFailed":
        raise CallerNotAdmin(admin) from None
    if target == "ConditionalCheckFailed":
        if "Item" in update:  # a Put of a new user: the name is taken
            raise UserExists(update["Item"]["username"]["S"]) from None
        raise UserNotFound(update["Key"]["pk"]["S"].removeprefix(USER_PK_PREFIX)) from None
    raise err


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
