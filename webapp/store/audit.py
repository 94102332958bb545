"""Audit records in the one table: written once, never changed; listed newest first without a Scan.

Layout (README, "Table layout"):
- pk "audit#<YYYY-MM>#<0..3>", sk "<timestamp>#<sub-second><random>". A month's records spread over
  AUDIT_SHARDS partitions, chosen at random, so a burst (a 10,000-row import) never hot-keys one
  partition; a month (not a day) per partition keeps a sparse log cheap to page through: a year with
  no records costs 12 x AUDIT_SHARDS small Queries, not 365 x AUDIT_SHARDS.
- list_pk "audit#target#<target>", list_sk = sk in the by_list index: one target's trail (a user's,
  a token's, a link's) is one Query. The index projects none of the audit attributes, so a trail
  page reads its items with one BatchGetItem.
- purge_at (the table's TTL attribute) retention_days after the record; absent when kept forever.
"""
import base64
import binascii
import json
import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

from webapp import clock
from webapp.exceptions import InvalidCursor, StoreUnavailable
from webapp.store.table import LIST_INDEX, _marshal, _unmarshal

AUDIT_PK_PREFIX = "audit#"
AUDIT_TARGET_PREFIX = "audit#target#"
AUDIT_SHARDS = 4
# A page reads at most this many Query rounds (a round: one month's shards, or one trail Query), so
# a filter that matches nothing costs a bounded number of requests; the page then ends early with a
# cursor to go on from.
MAX_ROUNDS = 16
_SK_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z#[0-9a-f]{14}")
# A position: list records strictly before it. "<day>~" stands for the end of that day ("~" sorts
# after every sort key of the day).
_POSITION_RE = re.compile(rf"\d{{4}}-\d{{2}}-\d{{2}}~|{_SK_RE.pattern}")


class Audit:
    """Append audit records and list them, newest first, filtered by actor, action prefix, target and days."""

    def __init__(self, table):
        self.table = table

    def add(self, record, retention_days):
        """Store one record (a dict of bounded strings from webapp.audit); never overwrites one."""
        now = clock.utcnow()
        stamp = clock.format_timestamp(now)
        # Sub-second digits order records of the same second; the random tail makes the key unique.
        sk = f"{stamp}#{time.time_ns() // 1000 % 1_000_000:06d}{secrets.token_hex(4)}"
        item = {
            "pk": f"{AUDIT_PK_PREFIX}{stamp[:7]}#{secrets.randbelow(AUDIT_SHARDS)}",
            "sk": sk,
            "at": stamp,
            **{name: value for name, value in record.items() if value is not None},
        }
        if record.get("target"):
            item["list_pk"], item["list_sk"] = f"{AUDIT_TARGET_PREFIX}{record['target']}", sk
        if retention_days:
            item["purge_at"] = int((now + timedelta(days=retention_days)).timestamp())
        # attribute_not_exists: a record is never overwritten (and the admin's IAM denies updates and deletes).
        self.table.put_new(item, StoreUnavailable("audit key collision"))
        return _public(item)

    def list(self, *, first_day, last_day, limit=50, cursor=None, actor=None, action=None, target=None):
        """One page of records from first_day to last_day (dates, inclusive), newest first, and the next cursor.

        actor matches exactly, action as a prefix ("signin." finds every sign-in record), target through
        the by_list index. Requests are bounded by MAX_ROUNDS whatever the filters; a page may then hold
        fewer than `limit` records and still have a next cursor.
        """
        position = decode_cursor(cursor) if cursor else f"{last_day.isoformat()}~"
        if not first_day.isoformat() <= position[:10] <= last_day.isoformat():
            raise InvalidCursor(cursor)
        lowest = first_day.isoformat()
        found = []
        for _ in range(MAX_ROUNDS):
            if position is None or len(found) >= limit:
                break
            if target:
                examined, boundary = self._trail_round(target, lowest, position, limit)
            else:
                examined, boundary = self._month_round(lowest, position, limit)
            # Every source has examined everything at or above the boundary (sort key order), so the
            # records there are complete; the next round goes on strictly below it.
            matched = sorted((item for item in examined if item["sk"] != position
                              and (boundary is None or item["sk"] >= boundary)
                              and _matches(item, actor, action)), key=lambda item: item["sk"], reverse=True)
            need = limit - len(found)
            found += matched[:need]
            if len(matched) > need:
                position = matched[need - 1]["sk"]
            elif boundary is not None:
                position = boundary
            else:
                position = None if target else _previous_month_end(position, lowest)
        return [_public(item) for item in found], (encode_cursor(position) if position else None)

    def _month_round(self, lowest, position, limit):
        """Query each shard of position's month once (in parallel): (items examined, boundary or None)."""
        month = position[:7]

        def shard(n):
            return self._query(KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                               values={":pk": f"{AUDIT_PK_PREFIX}{month}#{n}", ":lo": lowest, ":hi": position},
                               limit=limit, last_key="sk")

        with ThreadPoolExecutor(max_workers=AUDIT_SHARDS) as pool:
            results = list(pool.map(shard, range(AUDIT_SHARDS)))
        return _merge(results)

    def _trail_round(self, target, lowest, position, limit):
        """One Query of a target's trail in the index, then its items: (items examined, boundary or None)."""
        keys, boundary = self._query(IndexName=LIST_INDEX,
                                     KeyConditionExpression="list_pk = :pk AND list_sk BETWEEN :lo AND :hi",
                                     values={":pk": f"{AUDIT_TARGET_PREFIX}{target}", ":lo": lowest, ":hi": position},
                                     limit=limit, last_key="list_sk")
        # The index holds only keys for audit records: the full items come from the table.
        items = self.table.batch_get([{"pk": {"S": k["pk"]}, "sk": {"S": k["sk"]}} for k in keys]) if keys else []
        return items, boundary

    def _query(self, *, values, limit, last_key, **kwargs):
        """One Query, newest first: (items, sort key of the last examined item when there may be more)."""
        resp = self.table.call("query", TableName=self.table.name, ExpressionAttributeValues=_marshal(values),
                               ScanIndexForward=False, Limit=min(limit + 1, 100), **kwargs)
        last = resp.get("LastEvaluatedKey")
        return [_unmarshal(item) for item in resp.get("Items", [])], (last[last_key]["S"] if last else None)


def _merge(results):
    """The shards' items together, and the highest of their boundaries (None: every shard is done)."""
    boundaries = [boundary for _, boundary in results if boundary is not None]
    return [item for items, _ in results for item in items], (max(boundaries) if boundaries else None)


def _matches(item, actor, action):
    return (actor is None or item.get("actor") == actor) and (action is None or item.get("action", "").startswith(action))


def _previous_month_end(position, lowest):
    """The position at the end of the month before position's, or None when that is before lowest."""
    first = date.fromisoformat(position[:7] + "-01")
    end = first - timedelta(days=1)
    return f"{end.isoformat()}~" if end.isoformat() >= lowest else None


def encode_cursor(position):
    """An opaque, URL-safe cursor for the next page."""
    return base64.urlsafe_b64encode(position.encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(cursor):
    """The position a cursor holds; raise InvalidCursor for anything we did not hand out."""
    if not isinstance(cursor, str) or len(cursor) > 100:
        raise InvalidCursor(cursor)
    try:
        position = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, binascii.Error):  # bad base64 or not ASCII
        raise InvalidCursor(cursor) from None
    if not _POSITION_RE.fullmatch(position):
        raise InvalidCursor(cursor)
    try:
        date.fromisoformat(position[:10])
    except ValueError:
        raise InvalidCursor(cursor) from None
    return position


def _public(item):
    """A record as pages and the API show it; details are stored as one JSON string."""
    record = {name: item.get(name) for name in ("at", "action", "actor", "target", "outcome", "via", "client")}
    try:
        details = json.loads(item.get("details") or "{}")
    except ValueError:
        details = {}
    return {"id": item["sk"], **record, "details": details if isinstance(details, dict) else {}}
