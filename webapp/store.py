"""The only module that talks to AWS: links, users and API tokens in the one DynamoDB table."""
import base64
import binascii
import functools
import hashlib
import json
import secrets
from datetime import timedelta

import boto3
from botocore.exceptions import ClientError
from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from webapp import links
from webapp.exceptions import (
    IdSpaceExhausted,
    InvalidCursor,
    LinkNotFound,
    SlugTaken,
    StoreUnavailable,
    UserExists,
    UserNotFound,
)

LINK_SK, USER_SK, TOKEN_SK = "link", "user", "token"
# The aggregator's per-day stats items: pk "stats#<id>", sk "day#<YYYY-MM-DD>", and counters
# named by these prefixes (see the README's table layout).
STATS_PK_PREFIX, DAY_SK_PREFIX = "stats#", "day#"
_DAY_COUNTER_PREFIXES = {"ref#": "referrers", "cc#": "countries", "dev#": "devices"}
LIST_INDEX = "by_list"
_KEY_ATTRS = ("pk", "sk", "list_pk", "list_sk")
_RANDOM_ID_ATTEMPTS = 5
_THROTTLED = {
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingException",
    "InternalServerError",
    "ServiceUnavailable",
}


def init_app(app):
    """Create the store (and its one DynamoDB client) for this app."""
    app.extensions["store"] = Store(app.config["TABLE_NAME"], endpoint_url=app.config.get("DYNAMODB_ENDPOINT_URL"))


def get_store():
    """The store of the current app."""
    return current_app.extensions["store"]


def read_secure_parameter(name, client=None):
    """The decrypted value of an SSM Parameter Store SecureString."""
    client = client or boto3.client("ssm")
    return client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


def hash_token(plaintext):
    """The sha256 hex digest under which a token is stored."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


class Store:
    """Reads and writes links, users and tokens; maps DynamoDB error codes to domain errors."""

    def __init__(self, table_name, client=None, endpoint_url=None):
        self.table_name = table_name
        # A low-level client: cheaper to create than a resource, and created once per app.
        self.client = client or boto3.client("dynamodb", endpoint_url=endpoint_url)

    # Links

    def create_link(self, url, *, created_by, slug=None, title=None, expires_at=None, id_length=7):
        """Store a new link and return it; a custom slug that is taken raises SlugTaken."""
        if slug:
            return self._put_link(slug, url, created_by, title, expires_at)
        for _ in range(_RANDOM_ID_ATTEMPTS):
            try:
                return self._put_link(links.new_id(id_length), url, created_by, title, expires_at)
            except SlugTaken:
                continue  # a random id collided: try a fresh one, never overwrite
        raise IdSpaceExhausted(f"No free id after {_RANDOM_ID_ATTEMPTS} attempts")

    def _put_link(self, short_id, url, created_by, title, expires_at):
        """Conditionally put one link item; raise SlugTaken when the id exists."""
        created_at = links.format_timestamp(links.utcnow())
        item = {
            "pk": short_id,
            "sk": LINK_SK,
            "list_pk": "links",
            "list_sk": f"{created_at}#{short_id}",
            "url": url,
            "created_at": created_at,
            "created_by": created_by,
            "is_active": True,
            "click_count": 0,
            "bot_count": 0,
        }
        if title:
            item["title"] = title
        if expires_at:
            item["expires_at"] = expires_at
        self._put_new(item, SlugTaken(short_id))
        return _link(item)

    def get_link(self, short_id):
        """The link with this id, or raise LinkNotFound."""
        resp = self._call("get_item", TableName=self.table_name, Key=_key(short_id, LINK_SK))
        if "Item" not in resp:
            raise LinkNotFound(short_id)
        return _link(_unmarshal(resp["Item"]))

    def list_links(self, limit=20, cursor=None):
        """One page of links, newest first, and the cursor of the next page (or None)."""
        return self._list_page("links", limit, cursor, _link)

    def set_active(self, short_id, active):
        """Enable or disable a link and return it; raise LinkNotFound when it does not exist."""
        try:
            resp = self._call(
                "update_item",
                TableName=self.table_name,
                Key=_key(short_id, LINK_SK),
                UpdateExpression="SET is_active = :a",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":a": {"BOOL": bool(active)}},
                ReturnValues="ALL_NEW",
            )
        except _ConditionFailed:
            raise LinkNotFound(short_id) from None
        return _link(_unmarshal(resp["Attributes"]))

    def daily_stats(self, short_id, days=30):
        """The link's per-day click stats for the last `days` UTC days, oldest first.

        Written by the aggregator under their own partition key; days without clicks have no item.
        """
        today = links.utcnow().date()
        first = today - timedelta(days=days - 1)
        resp = self._call(
            "query",
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues=_marshal(
                {":pk": f"{STATS_PK_PREFIX}{short_id}", ":first": f"{DAY_SK_PREFIX}{first}", ":last": f"{DAY_SK_PREFIX}{today}"}
            ),
        )
        return [_day(_unmarshal(item)) for item in resp.get("Items", [])]

    # Users

    def create_user(self, username, password):
        """Create a user; raise UserExists when the name is taken."""
        created_at = links.format_timestamp(links.utcnow())
        item = {
            "pk": f"user#{username}",
            "sk": USER_SK,
            "list_pk": "users",
            "list_sk": username,
            "password_hash": generate_password_hash(password),
            "created_at": created_at,
        }
        self._put_new(item, UserExists(username))
        return _user(item)

    def ensure_user(self, username, password):
        """Create the user, or reset the password of an existing one (for the local stack)."""
        resp = self._call(
            "update_item",
            TableName=self.table_name,
            Key=_key(f"user#{username}", USER_SK),
            UpdateExpression=(
                "SET password_hash = :h, list_pk = :lp, list_sk = :ls, "
                "created_at = if_not_exists(created_at, :now)"
            ),
            ExpressionAttributeValues=_marshal(
                {
                    ":h": generate_password_hash(password),
                    ":lp": "users",
                    ":ls": username,
                    ":now": links.format_timestamp(links.utcnow()),
                }
            ),
            ReturnValues="ALL_NEW",
        )
        return _user(_unmarshal(resp["Attributes"]))

    def get_user(self, username):
        """The user (without the password hash), or None."""
        item = self._get_user_item(username)
        return _user(item) if item else None

    def verify_password(self, username, password):
        """True when the user exists and the password matches."""
        item = self._get_user_item(username)
        stored = item["password_hash"] if item else _dummy_hash()
        return check_password_hash(stored, password) and item is not None

    def _get_user_item(self, username):
        resp = self._call("get_item", TableName=self.table_name, Key=_key(f"user#{username}", USER_SK))
        return _unmarshal(resp["Item"]) if "Item" in resp else None

    # API tokens

    def create_token(self, username, name):
        """Create an API token for an existing user; return (plaintext, token_id). Only the hash is stored."""
        if self.get_user(username) is None:
            raise UserNotFound(username)
        # The prefix makes leaked tokens easy to spot for secret scanners.
        plaintext = "shk_" + secrets.token_urlsafe(32)
        token_id = secrets.token_urlsafe(6)
        self._put_token(plaintext, token_id, username, name, conditional=True)
        return plaintext, token_id

    def ensure_token(self, username, plaintext, name):
        """Store a known token for a user, idempotently (for the local stack); return its token_id."""
        token_id = hash_token(plaintext)[:8]  # derived, so repeated calls write the same item
        self._put_token(plaintext, token_id, username, name, conditional=False)
        return token_id

    def _put_token(self, plaintext, token_id, username, name, conditional):
        now = links.format_timestamp(links.utcnow())
        values = {":u": username, ":n": name, ":id": token_id, ":lp": "tokens", ":ls": f"{now}#{token_id}", ":now": now}
        kwargs = {}
        if conditional:
            kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
        try:
            self._call(
                "update_item",
                TableName=self.table_name,
                Key=_key(f"token#{hash_token(plaintext)}", TOKEN_SK),
                UpdateExpression=(
                    "SET username = :u, #n = :n, token_id = :id, list_pk = :lp, "
                    "list_sk = if_not_exists(list_sk, :ls), created_at = if_not_exists(created_at, :now)"
                ),
                ExpressionAttributeNames={"#n": "name"},  # "name" is a DynamoDB reserved word
                ExpressionAttributeValues=_marshal(values),
                **kwargs,
            )
        except _ConditionFailed:
            # 256 random bits colliding means the RNG is broken: stop rather than overwrite.
            raise StoreUnavailable("token collision") from None

    def resolve_token(self, plaintext):
        """The username a token belongs to, or None."""
        if not plaintext:
            return None
        resp = self._call("get_item", TableName=self.table_name, Key=_key(f"token#{hash_token(plaintext)}", TOKEN_SK))
        item = resp.get("Item")
        return item["username"]["S"] if item else None

    def list_tokens(self, limit=50, cursor=None):
        """One page of tokens (metadata only), newest first, and the next cursor."""
        return self._list_page("tokens", limit, cursor, _token)

    # Plumbing

    def _list_page(self, list_pk, limit, cursor, convert):
        """Query the by_list index newest first; never a Scan, so a page costs the same at any size."""
        kwargs = {
            "TableName": self.table_name,
            "IndexName": LIST_INDEX,
            "KeyConditionExpression": "list_pk = :p",
            "ExpressionAttributeValues": {":p": {"S": list_pk}},
            "ScanIndexForward": False,
            # One extra item tells whether a next page exists, so the last page
            # never links to an empty one.
            "Limit": limit + 1,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = decode_cursor(cursor, list_pk)
        resp = self._call("query", **kwargs)
        items = resp.get("Items", [])
        next_key = None
        if len(items) > limit:
            items = items[:limit]
            next_key = {name: items[-1][name] for name in _KEY_ATTRS}
        elif resp.get("LastEvaluatedKey"):
            next_key = resp["LastEvaluatedKey"]
        return [convert(_unmarshal(i)) for i in items], encode_cursor(next_key) if next_key else None

    def _put_new(self, item, taken_error):
        """Put an item only if its key is free; raise taken_error otherwise. Never overwrites."""
        try:
            self._call(
                "put_item",
                TableName=self.table_name,
                Item=_marshal(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except _ConditionFailed:
            raise taken_error from None

    def _call(self, operation, **kwargs):
        """Call the client, translating error codes (never messages) into domain errors."""
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed() from err
            if code in _THROTTLED:
                raise StoreUnavailable(code) from err
            raise


@functools.cache
def _dummy_hash():
    """Checked when a user does not exist, so a wrong name costs as long as a wrong password
    and does not reveal which names exist. Made on first use, not on a Lambda cold start."""
    return generate_password_hash(secrets.token_hex(16))


class _ConditionFailed(Exception):
    """Internal: a condition expression did not hold."""


def encode_cursor(key):
    """An opaque, URL-safe cursor for a LastEvaluatedKey."""
    raw = json.dumps({k: key[k]["S"] for k in _KEY_ATTRS}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor, list_pk):
    """The ExclusiveStartKey for a cursor; raise InvalidCursor for anything we did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (ValueError, binascii.Error):  # bad base64, bad UTF-8 or bad JSON
        raise InvalidCursor(cursor) from None
    if (
        not isinstance(data, dict)
        or set(data) != set(_KEY_ATTRS)
        or not all(isinstance(v, str) for v in data.values())
        or data["list_pk"] != list_pk
    ):
        raise InvalidCursor(cursor)
    return {k: {"S": v} for k, v in data.items()}


def _key(pk, sk):
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _marshal(item):
    """Plain dict -> DynamoDB attribute values (only the types this table uses)."""
    out = {}
    for name, value in item.items():
        if isinstance(value, bool):
            out[name] = {"BOOL": value}
        elif isinstance(value, int):
            out[name] = {"N": str(value)}
        else:
            out[name] = {"S": value}
    return out


def _unmarshal(item):
    """DynamoDB attribute values -> plain dict."""
    out = {}
    for name, value in item.items():
        (kind, raw), = value.items()
        if kind == "N":
            out[name] = int(raw) if raw.lstrip("-").isdigit() else float(raw)
        else:
            out[name] = raw
    return out


def _link(item):
    """The public shape of a link."""
    return {
        "id": item["pk"],
        "url": item["url"],
        "title": item.get("title"),
        "created_at": item.get("created_at"),
        "created_by": item.get("created_by"),
        "expires_at": item.get("expires_at"),
        "is_active": item.get("is_active", True),
        "click_count": item.get("click_count", 0),
        "bot_count": item.get("bot_count", 0),
        "last_clicked_at": item.get("last_clicked_at"),
    }


def _day(item):
    """One day of a link's stats: totals and the per-referrer, country and device counters."""
    day = {"day": item["sk"].removeprefix(DAY_SK_PREFIX), "clicks": item.get("clicks", 0), "bots": item.get("bots", 0)}
    day.update({name: {} for name in _DAY_COUNTER_PREFIXES.values()})
    for attribute, value in item.items():
        prefix, _, key = attribute.partition("#")
        name = _DAY_COUNTER_PREFIXES.get(prefix + "#")
        if name and key:
            day[name][key] = value
    return day


def _user(item):
    """A user without the password hash."""
    return {"username": item["pk"].removeprefix("user#"), "created_at": item.get("created_at")}


def _token(item):
    """Token metadata; the hash stays in the store."""
    return {
        "token_id": item.get("token_id"),
        "username": item.get("username"),
        "name": item.get("name"),
        "created_at": item.get("created_at"),
    }
