"""The only module that talks to AWS: links, users and API tokens in the one DynamoDB table."""
import base64
import binascii
import functools
import hashlib
import json
import os
import secrets
import zlib
from concurrent.futures import ThreadPoolExecutor
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
# Written by the aggregator (aggregator/layout.py; tests/test_layout_contract.py pins both sides):
# a link's click counters per region, pk "<id>", sk "clicks#<region>", summed on read; and its
# per-day stats, pk "stats#<id>", sk "day#<YYYY-MM-DD>#<region>", with counters named by these prefixes.
COUNTER_SK_PREFIX = "clicks#"
STATS_PK_PREFIX, DAY_SK_PREFIX = "stats#", "day#"
_DAY_COUNTER_PREFIXES = {"ref#": "referrers", "cc#": "countries", "dev#": "devices"}
LIST_INDEX = "by_list"
# Links are listed from LIST_SHARDS index keys, "links#0" to "links#7", chosen by a hash of the
# id: a burst of creates spreads over them instead of hot-keying one, and a page merges them.
# Changing the number re-keys every link, so it is fixed.
LIST_PK_PREFIX, LIST_SHARDS = "links#", 8
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
    app.extensions["store"] = Store(
        app.config["TABLE_NAME"],
        endpoint_url=app.config.get("DYNAMODB_ENDPOINT_URL"),
        regions=app.config.get("CLICK_REGIONS") or None,
    )


def default_regions():
    """The regions whose click counters are summed: this one (where its aggregator runs)."""
    return [os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"]


def list_shard(short_id):
    """The by_list partition key of a link."""
    return f"{LIST_PK_PREFIX}{zlib.crc32(short_id.encode('utf-8')) % LIST_SHARDS}"


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

    def __init__(self, table_name, client=None, endpoint_url=None, regions=None):
        self.table_name = table_name
        # A low-level client: cheaper to create than a resource, and created once per app.
        self.client = client or boto3.client("dynamodb", endpoint_url=endpoint_url)
        # Every region that counts clicks (one under a global table per replica region).
        self.regions = list(regions or default_regions())

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
            "list_pk": list_shard(short_id),
            "list_sk": f"{created_at}#{short_id}",
            "url": url,
            "created_at": created_at,
            "created_by": created_by,
            "is_active": True,
        }
        if title:
            item["title"] = title
        if expires_at:
            item["expires_at"] = expires_at
        self._put_new(item, SlugTaken(short_id))
        return _link(item)

    def get_link(self, short_id):
        """The link with this id and its click counts, or raise LinkNotFound.

        One Query on the id's partition reads the link and its counter items together.
        """
        resp = self._call(
            "query",
            TableName=self.table_name,
            KeyConditionExpression="pk = :id",
            ExpressionAttributeValues={":id": {"S": short_id}},
        )
        items = [_unmarshal(item) for item in resp.get("Items", [])]
        link = next((item for item in items if item["sk"] == LINK_SK), None)
        if link is None:
            raise LinkNotFound(short_id)
        counters = [item for item in items if item["sk"].startswith(COUNTER_SK_PREFIX)]
        return _link(link, counters)

    def list_links(self, limit=20, cursor=None):
        """One page of links, newest first, and the cursor of the next page (or None).

        One Query per list shard (in parallel), merged newest first, then one BatchGetItem for
        the page's counters: LIST_SHARDS + 1 requests a page, whatever the number of links.
        """
        after = decode_link_cursor(cursor) if cursor else {}
        shards = [f"{LIST_PK_PREFIX}{n}" for n in range(LIST_SHARDS)]
        with ThreadPoolExecutor(max_workers=LIST_SHARDS) as pool:
            pages = list(pool.map(lambda shard: self._query_shard(shard, after.get(shard), limit), shards))
        # Each shard returns up to limit + 1 items, so "more than a page" also tells whether a next page exists.
        candidates = sorted((item for items in pages for item in items), key=lambda item: item["list_sk"], reverse=True)
        page = candidates[:limit]
        for item in page:
            after[item["list_pk"]] = item["list_sk"]
        counters = self._counters([item["pk"] for item in page])
        links_page = [_link(item, counters.get(item["pk"], [])) for item in page]
        return links_page, (encode_link_cursor(after) if len(candidates) > limit else None)

    def _query_shard(self, shard, after, limit):
        """Up to `limit` + 1 newest links of one list shard older than `after`."""
        condition, values = "list_pk = :p", {":p": {"S": shard}}
        if after:
            condition += " AND list_sk < :after"
            values[":after"] = {"S": after}
        resp = self._call(
            "query",
            TableName=self.table_name,
            IndexName=LIST_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            Limit=limit + 1,
        )
        return [_unmarshal(item) for item in resp.get("Items", [])]

    def _counters(self, short_ids):
        """The counter items of these links, in every region: {short_id: [items]}; one BatchGetItem."""
        keys = [_key(short_id, f"{COUNTER_SK_PREFIX}{region}") for short_id in short_ids for region in self.regions]
        found = {}
        for start in range(0, len(keys), 100):  # BatchGetItem takes at most 100 keys
            request = {self.table_name: {"Keys": keys[start : start + 100]}}
            while request:
                resp = self._call("batch_get_item", RequestItems=request)
                for item in resp.get("Responses", {}).get(self.table_name, []):
                    item = _unmarshal(item)
                    found.setdefault(item["pk"], []).append(item)
                request = resp.get("UnprocessedKeys") or None
        return found

    def set_active(self, short_id, active):
        """Enable or disable a link and return it; raise LinkNotFound when it does not exist."""
        try:
            self._call(
                "update_item",
                TableName=self.table_name,
                Key=_key(short_id, LINK_SK),
                UpdateExpression="SET is_active = :a",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":a": {"BOOL": bool(active)}},
            )
        except _ConditionFailed:
            raise LinkNotFound(short_id) from None
        return self.get_link(short_id)

    def daily_stats(self, short_id, days=30):
        """The link's per-day click stats for the last `days` UTC days, oldest first, all regions summed.

        Written by the aggregator under their own partition key; days without clicks have no item.
        """
        today = links.utcnow().date()
        first = today - timedelta(days=days - 1)
        resp = self._call(
            "query",
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues=_marshal(
                {
                    ":pk": f"{STATS_PK_PREFIX}{short_id}",
                    ":first": f"{DAY_SK_PREFIX}{first}",
                    # "~" sorts after every region name, so the last day's regions are all in.
                    ":last": f"{DAY_SK_PREFIX}{today}#~",
                }
            ),
        )
        merged = {}
        for item in resp.get("Items", []):
            day = _day(_unmarshal(item))
            total = merged.setdefault(day["day"], {"day": day["day"], "clicks": 0, "bots": 0, **{n: {} for n in _DAY_COUNTER_PREFIXES.values()}})
            total["clicks"] += day["clicks"]
            total["bots"] += day["bots"]
            for name in _DAY_COUNTER_PREFIXES.values():
                for key, value in day[name].items():
                    total[name][key] = total[name].get(key, 0) + value
        return [merged[day] for day in sorted(merged)]

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


def encode_link_cursor(after):
    """An opaque, URL-safe cursor for a link page: each list shard's last shown sort key."""
    raw = json.dumps(after, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_link_cursor(cursor):
    """The per-shard positions of a link cursor; raise InvalidCursor for anything we did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (ValueError, binascii.Error, RecursionError):  # bad base64, UTF-8 or JSON, or absurd nesting
        raise InvalidCursor(cursor) from None
    shards = {f"{LIST_PK_PREFIX}{n}" for n in range(LIST_SHARDS)}
    if (
        not isinstance(data, dict)
        or not data
        or not set(data) <= shards
        or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in data.values())
    ):
        raise InvalidCursor(cursor)
    return data


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
        elif kind == "SS":
            out[name] = set(raw)
        else:
            out[name] = raw
    return out


def _link(item, counters=()):
    """The public shape of a link, with its click counts summed over the counter items (one per region)."""
    return {
        "id": item["pk"],
        "url": item["url"],
        "title": item.get("title"),
        "created_at": item.get("created_at"),
        "created_by": item.get("created_by"),
        "expires_at": item.get("expires_at"),
        "is_active": item.get("is_active", True),
        "click_count": sum(counter.get("clicks", 0) for counter in counters),
        "bot_count": sum(counter.get("bots", 0) for counter in counters),
        "last_clicked_at": max((c["last_clicked_at"] for c in counters if c.get("last_clicked_at")), default=None),
    }


def _day(item):
    """One day of a link's stats: totals and the per-referrer, country and device counters."""
    day_and_region = item["sk"].removeprefix(DAY_SK_PREFIX)
    day = {"day": day_and_region.partition("#")[0], "clicks": item.get("clicks", 0), "bots": item.get("bots", 0)}
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
