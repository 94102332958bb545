"""API tokens: stored only as a SHA-256 hash, scoped read or write, with an expiry; listable and revocable."""
import hashlib
import re
import secrets
from datetime import timedelta

from webapp import access, clock
from webapp.exceptions import StoreUnavailable, TokenNotFound, UserNotFound
from webapp.store.table import _ConditionFailed, _key, _marshal, _plain_key, _unmarshal
from webapp.store.users import user_from_item, user_key

TOKEN_SK = "token"
TOKEN_PK_PREFIX, TOKEN_ID_PK_PREFIX = "token#", "tokenid#"
TOKENS_LIST = "tokens"
# The plaintext starts with this, so secret scanners spot a leaked token.
TOKEN_PREFIX = "shk_"
# last_used_at is written at most this often per token.
TOUCH_SECONDS = 60
# Expired tokens stay listed (as expired) this long, then TTL removes them.
KEEP_EXPIRED_DAYS = 30
# BatchGetItem reads at most 100 keys, so a list page has at most 100 tokens.
MAX_LISTED_TOKENS = 100


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

    def create(self, username, name, scope=access.WRITE, days=access.TOKEN_DEFAULT_DAYS):
        """Create a token for an existing user; return (plaintext, token_id). Only the hash is stored."""
        user = self.users.get(username)
        if user is None:
            raise UserNotFound(username)
        access.check_scope(scope, user["role"])
        plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = secrets.token_urlsafe(9)
        expires = clock.utcnow() + timedelta(days=access.check_token_days(days))
        self._put_token(plaintext, token_id, username, name, scope, expires, conditional=True)
        return plaintext, token_id

    def ensure(self, username, plaintext, name, scope=access.WRITE, days=access.TOKEN_DEFAULT_DAYS):
        """Store a known token for a user, idempotently (for the local stack); return its token_id."""
        token_id = hash_token(plaintext)[:12]  # derived, so repeated calls write the same items
        expires = clock.utcnow() + timedelta(days=days)
        self._put_token(plaintext, token_id, username, name, scope, expires, conditional=False)
        return token_id

    def _put_token(self, plaintext, token_id, username, name, scope, expires, conditional):
        """Write the secret item and the record together, or neither."""
        now = clock.format_timestamp(clock.utcnow())
        common = {
            "token_id": token_id,
            "username": username,
            "name": name,
            "scope": scope,
            "created_at": now,
            "expires_at": clock.format_timestamp(expires),
            "purge_at": int((expires + timedelta(days=KEEP_EXPIRED_DAYS)).timestamp()),
        }
        secret_item = {**_plain_key(_secret_key(plaintext)), **common}
        record = {
            **_plain_key(_id_key(token_id)),
            **common,
            "token_hash": hash_token(plaintext),
            "list_pk": TOKENS_LIST,
            # Grouped by owner, newest last: one Query lists a user's own tokens.
            "list_sk": f"{username}#{now}#{token_id}",
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
        resp = self.table.call("get_item", TableName=self.table.name, Key=_secret_key(plaintext))
        if "Item" not in resp:
            return None
        secret_item = _unmarshal(resp["Item"])
        if secret_item.get("scope") not in access.SCOPES or _expired(secret_item):
            return None
        record_key = _id_key(secret_item["token_id"])
        items = {item["pk"]: item for item in self.table.batch_get([record_key, user_key(secret_item["username"])])}
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

    def list(self, username=None):
        """Token metadata, never a plaintext or a hash: one user's (newest first), or everyone's when username is None."""
        prefix = f"{username}#" if username is not None else None
        index_items = self.table.query_index(TOKENS_LIST, MAX_LISTED_TOKENS, sk_prefix=prefix)
        # The index carries no last_used_at (it changes too often to project): read the records.
        keys = [_key(item["pk"], item["sk"]) for item in index_items if item["pk"].startswith(TOKEN_ID_PK_PREFIX)]
        records = {item["pk"]: item for item in self.table.batch_get(keys)} if keys else {}
        return [_token(records[key["pk"]["S"]]) for key in keys if key["pk"]["S"] in records]

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
        """Delete every token of a user (both items of each); return how many. Bounded by the per-user cap."""
        count = 0
        while True:
            index_items = self.table.query_index(TOKENS_LIST, MAX_LISTED_TOKENS, sk_prefix=f"{username}#")
            records = [item for item in index_items if item["pk"].startswith(TOKEN_ID_PK_PREFIX)]
            if not records:
                return count
            keys = [_id_key(item["token_id"]) for item in records]
            full = self.table.batch_get(keys)
            self.table.batch_delete(
                [_key(f"{TOKEN_PK_PREFIX}{record['token_hash']}", TOKEN_SK) for record in full] + keys
            )
            count += len(records)


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
