"""API tokens: stored only as a SHA-256 hash, scoped read or write, with an expiry; listable and revocable."""
import base64
import binascii
import hashlib
import json
import re
import secrets
from datetime import timedelta

from webapp import access, clock
from webapp.exceptions import InvalidCursor, StoreUnavailable, TokenNotFound, UserNotFound
from webapp.store.table import LIST_INDEX, _ConditionFailed, _key, _marshal, _plain_key, _unmarshal
from webapp.store.users import LOCAL, OIDC, _possible_username, user_from_item, user_key

TOKEN_SK = "token"
TOKEN_PK_PREFIX, TOKEN_ID_PK_PREFIX = "token#", "tokenid#"
# Two lists in the by_list index, both sorted by list_sk "<created_at>#<token_id>", so newest first:
# every token's record is in ALL_TOKENS_LIST (the admins' list), and each secret item is in its
# owner's USER_TOKENS_LIST_PREFIX + username (one's own list, the live count, revoke-all).
ALL_TOKENS_LIST, USER_TOKENS_LIST_PREFIX = "tokens_all", "tokens_of#"
# The layout before: only the record was listed, under "tokens" with list_sk "<username>#<created>#<id>"
# (sorted by owner, not time). Listing, counting and revoke-all first move what is left there.
OLD_TOKENS_LIST = "tokens"
# The plaintext starts with this, so secret scanners spot a leaked token.
TOKEN_PREFIX = "shk_"
# last_used_at is written at most this often per token.
TOUCH_SECONDS = 60
# Expired tokens stay listed (as expired) this long, then TTL removes them.
KEEP_EXPIRED_DAYS = 30
# BatchGetItem reads at most 100 keys, so a list page has at most 100 tokens.
MAX_PAGE_SIZE = 100
# A list_sk: "<created_at>#<token_id>", the only thing a page cursor carries.
_LIST_SK_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ#[A-Za-z0-9_-]{1,64}")


class TokenRefused(ValueError):
    """A token that may not be made (scope, lifetime or the live-token cap); nothing was written."""

    def __init__(self, message, field=None, status=422):
        super().__init__(message)
        self.field, self.status = field, status


def hash_token(plaintext):
    """The sha256 hex digest under which a token is stored."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _secret_key(plaintext):
    return _key(f"{TOKEN_PK_PREFIX}{hash_token(plaintext)}", TOKEN_SK)


# Token ids are 12 URL-safe characters (token_urlsafe(9), or a hash prefix for the local token).
_TOKEN_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _id_key(token_id):
    if not isinstance(token_id, str) or not _TOKEN_ID_RE.fullmatch(token_id):
        # No token has this id; asking DynamoDB with an oversized key would be a 500.
        raise TokenNotFound(token_id)
    return _key(f"{TOKEN_ID_PK_PREFIX}{token_id}", TOKEN_SK)


class Tokens:
    """Create, resolve, list and revoke API tokens.

    Two items per token: the secret item (pk token#<sha256>) that a request's bearer token finds with
    one GetItem, and the record (pk tokenid#<id>) that lists, shows last use and is revoked by id.
    """

    def __init__(self, table, users):
        self.table = table
        # The users part: a token is made only for an existing user, within that user's role.
        self.users = users

    def create(self, username, name, scope=access.WRITE, days=None, max_live=None, sso_max_days=None):
        """Create a token for an existing user; return (plaintext, token_id). Only the hash is stored.

        days None: TOKEN_DEFAULT_DAYS, or the owner's limit when that is shorter.

        Raise TokenRefused, writing nothing, for a scope beyond the user's role, a lifetime beyond
        sso_max_days for a single sign-on user, or when the user already has max_live unexpired tokens.
        Two creates at the same instant can both pass the count: the cap may be overshot by the
        number of requests in flight, never more.
        """
        owner = self.owner(username)
        if owner is None:
            raise UserNotFound(username)
        try:
            access.check_scope(scope, owner["role"])
        except ValueError as err:
            raise TokenRefused(str(err), field="scope") from None
        limit = self.max_days(owner, sso_max_days)
        days = min(access.TOKEN_DEFAULT_DAYS, limit) if days is None else days
        try:
            access.check_token_days(days, limit)
        except ValueError as err:
            why = f" Tokens of single sign-on accounts last at most {limit} days." if limit < access.TOKEN_MAX_DAYS else ""
            raise TokenRefused(f"{err}{why}", field="days") from None
        if max_live is not None and self.live_count(username) >= max_live:
            raise TokenRefused(f"You already have {max_live} unexpired tokens, the most one user may have. "
                               "Revoke one you no longer use first.", status=409)
        plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = secrets.token_urlsafe(9)
        expires = clock.utcnow() + timedelta(days=days)
        self._put_token(plaintext, token_id, username, name, scope, expires, conditional=True)
        return plaintext, token_id

    def ensure(self, username, plaintext, name, scope=access.WRITE, days=access.TOKEN_DEFAULT_DAYS):
        """Store a known token for a user, idempotently (for the local stack); return its token_id."""
        token_id = hash_token(plaintext)[:12]  # derived, so repeated calls write the same items
        expires = clock.utcnow() + timedelta(days=days)
        self._put_token(plaintext, token_id, username, name, scope, expires, conditional=False)
        return token_id

    def owner(self, username):
        """What decides a user's tokens: {"role", "source"} from their item (users.get shows no source); None if none."""
        if not _possible_username(username):
            return None  # DynamoDB would refuse an oversized key with a 500
        resp = self.table.call("get_item", TableName=self.table.name, Key=user_key(username))
        if "Item" not in resp:
            return None
        item = _unmarshal(resp["Item"])
        return {"role": access.role_of(item), "source": item.get("source", LOCAL)}

    @staticmethod
    def max_days(owner, sso_max_days):
        """The longest lifetime a token of this owner may have: shorter for single sign-on users.

        Their access follows the identity provider, which the app hears from only at sign-in, so a
        long-lived token would outlast their leaving.
        """
        if sso_max_days is not None and owner["source"] == OIDC:
            return min(sso_max_days, access.TOKEN_MAX_DAYS)
        return access.TOKEN_MAX_DAYS

    def _put_token(self, plaintext, token_id, username, name, scope, expires, conditional):
        """Write the secret item and the record together, or neither."""
        now = clock.format_timestamp(clock.utcnow())
        list_sk = f"{now}#{token_id}"
        common = {
            "token_id": token_id,
            "username": username,
            "name": name,
            "scope": scope,
            "created_at": now,
            "expires_at": clock.format_timestamp(expires),
            "purge_at": int((expires + timedelta(days=KEEP_EXPIRED_DAYS)).timestamp()),
        }
        secret_item = {**_plain_key(_secret_key(plaintext)), **common,
                       "list_pk": f"{USER_TOKENS_LIST_PREFIX}{username}", "list_sk": list_sk}
        record = {
            **_plain_key(_id_key(token_id)),
            **common,
            "token_hash": hash_token(plaintext),
            "list_pk": ALL_TOKENS_LIST,
            "list_sk": list_sk,
        }
        condition = {"ConditionExpression": "attribute_not_exists(pk)"} if conditional else {}
        try:
            self.table.call(
                "transact_write_items",
                TransactItems=[
                    {"Put": {"TableName": self.table.name, "Item": _marshal(item), **condition}}
                    for item in (secret_item, record)
                ],
            )
        except _ConditionFailed:
            # 256 random bits colliding means the RNG is broken: stop rather than overwrite.
            raise StoreUnavailable("token collision") from None

    def resolve(self, plaintext):
        """The caller behind a bearer token: {"username", "role", "scope", "token_id"}, or None.

        None when the token is unknown, revoked, expired, made before scopes existed, or its owner
        is disabled or gone.
        """
        if not plaintext:
            return None
        # Strongly consistent reads: a replica that has not yet seen a revoke or a disable must not let the token through.
        resp = self.table.call("get_item", TableName=self.table.name, Key=_secret_key(plaintext), ConsistentRead=True)
        if "Item" not in resp:
            return None
        secret_item = _unmarshal(resp["Item"])
        if secret_item.get("scope") not in access.SCOPES or _expired(secret_item):
            return None
        record_key = _id_key(secret_item["token_id"])
        items = {item["pk"]: item for item in self.table.batch_get([record_key, user_key(secret_item["username"])],
                                                                   consistent=True)}
        record, user_item = items.get(record_key["pk"]["S"]), items.get(user_key(secret_item["username"])["pk"]["S"])
        if record is None or user_item is None:
            return None
        user = user_from_item(user_item)
        if user["disabled"]:
            return None
        self._touch_token(record)
        return {"username": user["username"], "role": user["role"], "scope": secret_item["scope"],
                "token_id": secret_item["token_id"]}

    def _touch_token(self, record):
        """Record the token's last use, at most once a minute; a revoke meanwhile wins."""
        now = clock.utcnow()
        last = record.get("last_used_at")
        if last and now - clock.parse_timestamp(last) < timedelta(seconds=TOUCH_SECONDS):
            return
        try:
            self.table.call(
                "update_item",
                TableName=self.table.name,
                Key=_id_key(record["token_id"]),
                UpdateExpression="SET last_used_at = :now",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=_marshal({":now": clock.format_timestamp(now)}),
            )
        except _ConditionFailed:
            pass  # revoked between the read and this write: nothing to record

    def page(self, username=None, limit=20, cursor=None):
        """One page of token metadata, newest first: one user's, or everyone's when username is None.

        Returns (tokens, next_cursor, previous_cursor); a cursor is None when there is no such page.
        Never a plaintext or a hash. Raise InvalidCursor for a cursor this app did not hand out.
        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be 1 to {MAX_PAGE_SIZE}")
        direction, position = decode_cursor(cursor) if cursor else ("after", None)
        if username is not None and not _possible_username(username):
            return [], None, None  # nobody has this name; DynamoDB would refuse an oversized key with a 500
        self._move_old_layout()
        list_pk = ALL_TOKENS_LIST if username is None else f"{USER_TOKENS_LIST_PREFIX}{username}"
        # One more than a page tells whether there is another page that way.
        items = self._query_list(list_pk, position, limit + 1, newest_first=direction == "after")
        more = len(items) > limit
        if direction == "before" and not more:
            return self.page(username, limit)  # back at the newest: the first page, full
        items = items[:limit]
        if direction == "before":
            items.reverse()
        if not items:
            return [], None, None
        # Going forward, the page we came from is newer; going back, the one we came from is older.
        has_next, has_previous = (more, position is not None) if direction == "after" else (True, True)
        tokens = self._with_records(items)
        next_cursor = encode_cursor("after", items[-1]["list_sk"]) if has_next else None
        previous_cursor = encode_cursor("before", items[0]["list_sk"]) if has_previous else None
        return tokens, next_cursor, previous_cursor

    def list(self, username=None):
        """Every token's metadata, newest first, page after page (for the CLI and tests; views show pages)."""
        tokens, cursor = [], None
        while True:
            page, cursor, _ = self.page(username, MAX_PAGE_SIZE, cursor)
            tokens += page
            if cursor is None:
                return tokens

    def _with_records(self, index_items):
        """Token metadata from the records: the index carries no last_used_at (it changes too often to project)."""
        keys = [_id_key(item["token_id"]) for item in index_items]
        records = {item["pk"]: item for item in self.table.batch_get(keys)}
        return [_token(records[key["pk"]["S"]]) for key in keys if key["pk"]["S"] in records]

    def live_count(self, username):
        """How many unexpired tokens the user has (read from the index, a page of at most 1 MB at a time)."""
        self._move_old_layout()
        count, start = 0, None
        while True:
            kwargs = {"ExclusiveStartKey": start} if start else {}
            resp = self.table.call(
                "query",
                TableName=self.table.name,
                IndexName=LIST_INDEX,
                KeyConditionExpression="list_pk = :p",
                FilterExpression="expires_at > :now",
                ExpressionAttributeValues=_marshal({":p": f"{USER_TOKENS_LIST_PREFIX}{username}",
                                                    ":now": clock.format_timestamp(clock.utcnow())}),
                Select="COUNT",
                **kwargs,
            )
            count += resp.get("Count", 0)
            start = resp.get("LastEvaluatedKey")
            if not start:
                return count

    def _move_old_layout(self):
        """Move tokens listed the old way into the two lists; idempotent, and a no-op (one empty Query) once done.

        The secret item is listed first and the record moved last, so a move cut short is redone
        whole next time. Each write requires its item to exist: a token revoked meanwhile stays gone.
        """
        start = None
        while True:
            # Paged by LastEvaluatedKey, not by re-reading the start: the index may still show what was just moved.
            kwargs = {"ExclusiveStartKey": start} if start else {}
            resp = self.table.call(
                "query",
                TableName=self.table.name,
                IndexName=LIST_INDEX,
                KeyConditionExpression="list_pk = :p",
                ExpressionAttributeValues=_marshal({":p": OLD_TOKENS_LIST}),
                Limit=MAX_PAGE_SIZE,
                **kwargs,
            )
            # Only records were listed; a secret item listed there predates scopes and never resolves.
            keys = [_key(item["pk"], item["sk"]) for item in map(_unmarshal, resp.get("Items", []))
                    if item["pk"].startswith(TOKEN_ID_PK_PREFIX)]
            for record in self.table.batch_get(keys) if keys else []:
                list_sk = f"{record['created_at']}#{record['token_id']}"
                self._relist(_key(f"{TOKEN_PK_PREFIX}{record['token_hash']}", TOKEN_SK),
                             f"{USER_TOKENS_LIST_PREFIX}{record['username']}", list_sk)
                self._relist(_key(record["pk"], record["sk"]), ALL_TOKENS_LIST, list_sk)
            start = resp.get("LastEvaluatedKey")
            if not start:
                return

    def _relist(self, key, list_pk, list_sk):
        try:
            self.table.call(
                "update_item",
                TableName=self.table.name,
                Key=key,
                UpdateExpression="SET list_pk = :p, list_sk = :s",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=_marshal({":p": list_pk, ":s": list_sk}),
            )
        except _ConditionFailed:
            pass  # revoked meanwhile: nothing to list

    def get(self, token_id):
        """One token's metadata, or raise TokenNotFound."""
        resp = self.table.call("get_item", TableName=self.table.name, Key=_id_key(token_id))
        if "Item" not in resp:
            raise TokenNotFound(token_id)
        return _token(_unmarshal(resp["Item"]))

    def revoke(self, token_id, owner=None):
        """Delete a token (both items); with owner given, only that user's. Raise TokenNotFound otherwise."""
        resp = self.table.call("get_item", TableName=self.table.name, Key=_id_key(token_id))
        if "Item" not in resp:
            raise TokenNotFound(token_id)
        record = _unmarshal(resp["Item"])
        if owner is not None and record["username"] != owner:
            raise TokenNotFound(token_id)  # someone else's token looks the same as no token
        self.table.batch_delete([_key(f"{TOKEN_PK_PREFIX}{record['token_hash']}", TOKEN_SK), _id_key(token_id)])
        return _token(record)

    def revoke_all(self, username):
        """Delete every token of a user (both items of each); return how many.

        Pages through the user's list by position rather than re-reading its start, because the
        index may still show items just deleted.
        """
        if not _possible_username(username):
            return 0
        self._move_old_layout()
        count, position = 0, None
        while True:
            secrets_listed = self._query_list(f"{USER_TOKENS_LIST_PREFIX}{username}", position, MAX_PAGE_SIZE)
            if not secrets_listed:
                return count
            self.table.batch_delete([_key(item["pk"], item["sk"]) for item in secrets_listed]
                                    + [_id_key(item["token_id"]) for item in secrets_listed])
            count += len(secrets_listed)
            position = secrets_listed[-1]["list_sk"]

    def _query_list(self, list_pk, position, limit, newest_first=True):
        """Up to `limit` entries of one token list of by_list, from past `position` (a list_sk) on:
        older ones newest first, or (newest_first False, a previous page) newer ones oldest first."""
        condition, values = "list_pk = :p", {":p": list_pk}
        if position:
            condition += " AND list_sk < :s" if newest_first else " AND list_sk > :s"
            values[":s"] = position
        resp = self.table.call(
            "query",
            TableName=self.table.name,
            IndexName=LIST_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=_marshal(values),
            ScanIndexForward=not newest_first,
            Limit=limit,
        )
        return [_unmarshal(item) for item in resp.get("Items", [])]


def encode_cursor(direction, list_sk):
    """An opaque, URL-safe cursor for a token page: the way ("after" or "before") and the position."""
    raw = json.dumps({direction: list_sk}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor):
    """(direction, list_sk) of a token cursor; raise InvalidCursor for anything this app did not hand out."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, RecursionError):  # bad base64, UTF-8 or JSON, or absurd nesting
        raise InvalidCursor(cursor) from None
    if not isinstance(data, dict) or len(data) != 1:
        raise InvalidCursor(cursor)
    ((direction, position),) = data.items()
    if direction not in ("after", "before") or not isinstance(position, str) or not _LIST_SK_RE.fullmatch(position):
        raise InvalidCursor(cursor)
    return direction, position


def _expired(item, now=None):
    expires_at = item.get("expires_at")
    return bool(expires_at) and (now or clock.utcnow()) >= clock.parse_timestamp(expires_at)


def _token(item):
    """Token metadata; the hash stays in the store."""
    return {
        "id": item.get("token_id"),
        "username": item.get("username"),
        "name": item.get("name"),
        "scope": item.get("scope"),
        "created_at": item.get("created_at"),
        "expires_at": item.get("expires_at"),
        "last_used_at": item.get("last_used_at"),
        "expired": _expired(item),
    }
