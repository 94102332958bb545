"""Links, their click counters and their daily stats in the one table; pages from the by_list index."""
import base64
import binascii
import json
import logging
import os
import random
import secrets
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from webapp import clock, link_rules
from webapp.exceptions import (IdSpaceExhausted, InvalidCursor, LinkNotFound, SlugTaken, StoreUnavailable,
                               VersionConflict)
from webapp.store import link_index, stats_items
from webapp.store.table import LIST_INDEX, _ConditionFailed, _key, _marshal, _TransactionCanceled, _unmarshal

LINK_SK = "link"
# Written by the aggregator (aggregator/layout.py; tests/test_layout_contract.py pins both sides):
# a link's click counters per region, pk "<id>", sk "clicks#<region>", summed on read; and its
# per-day stats, pk "stats#<id>", sk "day#<YYYY-MM-DD>#<region>", read by webapp/store/stats_items.py.
COUNTER_SK_PREFIX = "clicks#"
STATS_PK_PREFIX, DAY_SK_PREFIX = "stats#", "day#"
# Links are listed from LIST_SHARDS index keys, "links#0" to "links#7", chosen by a hash of the
# id: a burst of creates spreads over them instead of hot-keying one, and a page merges them.
# Changing the number re-keys every link, so it is fixed.
LIST_PK_PREFIX, LIST_SHARDS = "links#", 8
# An archived link moves to "archived#0".."archived#7": out of the default list at no cost to it,
# and listed by the archived filter the same way.
ARCHIVED_PK_PREFIX = "archived#"
_RANDOM_ID_ATTEMPTS = 5
# Each round of concurrent edits lets at least one through, so N editors at once need up to N rounds;
# a short random pause between rounds spreads the retries so they do not collide again in step.
_EDIT_ATTEMPTS = 12
_EDIT_PAUSE_SECONDS = 0.02
# What an edit may change (webapp/link_rules.py checks each value first).
EDITABLE = frozenset({"url", "title", "tags", "note", "expires_at", "is_active", "archived", "forward_query"})


def default_regions():
    """The regions whose click counters are summed: this one (where its aggregator runs)."""
    return [os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"]


def list_shard(short_id, archived=False):
    """The by_list partition key of a link."""
    prefix = ARCHIVED_PK_PREFIX if archived else LIST_PK_PREFIX
    return f"{prefix}{zlib.crc32(short_id.encode('utf-8')) % LIST_SHARDS}"


def _present(fields):
    """The fields worth storing: None, "" and [] are left out (DynamoDB needs no empty attribute)."""
    return {name: value for name, value in fields.items() if value not in (None, "", [])}


def _edited(item, changes):
    """The link item with these changes applied; defaults (forward_query true, not archived) are not stored."""
    new = {name: value for name, value in item.items() if name not in changes}
    new.update(_present(changes))
    if new.get("forward_query") is True:
        del new["forward_query"]
    if new.get("archived") is False:
        del new["archived"]
    new["list_pk"] = list_shard(item["pk"], new.get("archived", False))
    return new


class Links:
    """Create, read, list and enable or disable links; read their counters and daily stats."""

    def __init__(self, table, regions=None):
        self.table = table
        # The regions whose click counters are summed; None: this one (see default_regions).
        self.regions = list(regions) if regions else None

    def click_regions(self):
        """The regions whose counters this store sums."""
        return list(self.regions or default_regions())

    def create(self, url, *, created_by, slug=None, title=None, expires_at=None, id_length=7,
               tags=(), note=None, forward_query=True, extra=None):
        """Store a new link and return it; a custom slug that is taken raises SlugTaken.

        extra: more attributes for the link item (an import job marks the links it made).
        """
        fields = {"url": url, "created_by": created_by, "title": title, "expires_at": expires_at,
                  "tags": list(tags), "note": note, "forward_query": forward_query, **(extra or {})}
        if slug:
            return self._put_link(slug, fields)
        for _ in range(_RANDOM_ID_ATTEMPTS):
            try:
                return self._put_link(link_rules.new_id(id_length), fields)
            except SlugTaken:
                continue  # a random id collided: try a fresh one, never overwrite
        raise IdSpaceExhausted(f"No free id after {_RANDOM_ID_ATTEMPTS} attempts")

    def _put_link(self, short_id, fields):
        """Conditionally put one link item and its index entries; raise SlugTaken when the id exists."""
        created_at = clock.format_timestamp(clock.utcnow())
        item = {
            "pk": short_id,
            "sk": LINK_SK,
            "list_pk": list_shard(short_id),
            "list_sk": f"{created_at}#{short_id}",
            "created_at": created_at,
            "is_active": True,
            "version": 1,
            # Tells this create's item from an identical one made in the same second by another request, when
            # a lost answer makes it read back whether its own write landed (_holds).
            "create_id": secrets.token_hex(8),
        }
        item.update(_present(fields))
        if item.get("forward_query") is True:
            del item["forward_query"]  # absent means true, as the redirect reads it
        try:
            self.table.put_new(item, SlugTaken(short_id))
        except (SlugTaken, StoreUnavailable):
            # A write whose answer was lost (a read timeout) may have landed, and botocore resends it, which
            # then finds the id taken: if this very item (its created_at included) is stored, the create
            # landed, once; else the id is someone else's, or the create failed.
            if not self._holds(item):
                raise
        # The entries follow the link rather than share a transaction with it: a transaction costs twice the
        # write units (a link has up to 48 entries, link_index.MAX_ENTRIES), and a link whose entries were
        # not all written (the function stopped between the two) is still listed, redirected and counted; a
        # search re-checks every link it finds, and `flask reindex-links` or the link's next edit writes them.
        try:
            self.table.batch_put([_marshal(entry) for entry in link_index.entries(item)])
        except StoreUnavailable:
            # The link exists: answering 503 now would make a retry meet its own slug as "taken".
            logging.getLogger(__name__).warning("link %r stored without all its search entries", short_id)
        return _link(item)

    def get(self, short_id):
        """The link with this id and its click counts, or raise LinkNotFound.

        One Query on the id's partition reads the link and its counter items together.
        """
        _known_shape(short_id)
        resp = self.table.call(
            "query",
            TableName=self.table.name,
            KeyConditionExpression="pk = :id",
            ExpressionAttributeValues={":id": {"S": short_id}},
        )
        items = [_unmarshal(item) for item in resp.get("Items", [])]
        link = next((item for item in items if item["sk"] == LINK_SK), None)
        if link is None:
            raise LinkNotFound(short_id)
        counters = [item for item in items if item["sk"].startswith(COUNTER_SK_PREFIX)]
        return _link(link, counters)

    def list(self, limit=20, cursor=None):
        """One page of links, newest first, and the cursor of the next page (or None).

        One Query per list shard (in parallel), merged newest first, then one BatchGetItem for
        the page's counters: LIST_SHARDS + 1 requests a page, whatever the number of links.
        """
        after = decode_cursor(cursor) if cursor else {}
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
        return links_page, (encode_cursor(after) if len(candidates) > limit else None)

    def _query_shard(self, shard, after, limit):
        """Up to `limit` + 1 newest links of one list shard older than `after`."""
        condition, values = "list_pk = :p", {":p": {"S": shard}}
        if after:
            condition += " AND list_sk < :after"
            values[":after"] = {"S": after}
        resp = self.table.call(
            "query",
            TableName=self.table.name,
            IndexName=LIST_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            Limit=limit + 1,
        )
        return [_unmarshal(item) for item in resp.get("Items", [])]

    def _counters(self, short_ids):
        """The counter items of these links in every region: {short_id: [items]}; one BatchGetItem a page."""
        keys = [_key(short_id, f"{COUNTER_SK_PREFIX}{region}") for short_id in short_ids for region in self.click_regions()]
        found = {}
        for start in range(0, len(keys), 100):  # BatchGetItem takes at most 100 keys
            for item in self.table.batch_get(keys[start:start + 100]):
                found.setdefault(item["pk"], []).append(item)
        return found

    def set_active(self, short_id, active, *, by=None):
        """Enable or disable a link and return it; raise LinkNotFound when it does not exist."""
        return self.update(short_id, {"is_active": bool(active)}, by=by)[1]

    def update(self, short_id, changes, *, by, expected_version=None, check=None):
        """Change some fields of a link; return (before, after) as public links (the same when nothing changed).

        changes: {field: new value} of EDITABLE fields, already checked by the link rules; None or []
        removes a field. Each write is conditional on the version it was read at, so two edits never
        lose one another: without expected_version a concurrent edit makes this read again and
        re-apply the changes (each field is set, not computed, so that is safe); with it (the version
        an edit form or an API client saw) a concurrent edit raises VersionConflict and writes nothing.
        check: called with the stored link (public shape) that a write is about to replace, read
        consistently; an exception it raises stops the edit with nothing written.
        """
        unknown = set(changes) - EDITABLE
        if unknown:
            raise ValueError(f"not editable: {sorted(unknown)}")
        _known_shape(short_id)
        for attempt in range(_EDIT_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, _EDIT_PAUSE_SECONDS * attempt))
            item = self._read_item(short_id)
            version = item.get("version", 0)
            if expected_version is not None and expected_version != version:
                raise VersionConflict(_link(item))
            new = _edited(item, changes)
            if new == item:
                counters = self._counters([short_id]).get(short_id, [])
                return _link(item, counters), _link(item, counters)
            if check:
                check(_link(item))
            new.update(version=version + 1, updated_at=clock.format_timestamp(clock.utcnow()))
            if by:
                new["updated_by"] = by
            if self._write_edit(item, new):
                # The counts are the aggregator's items, which no edit touches: read once, shown on both.
                counters = self._counters([short_id]).get(short_id, [])
                return _link(item, counters), _link(new, counters)
        raise StoreUnavailable(f"{short_id} kept changing under {_EDIT_ATTEMPTS} edits in a row")

    def _read_item(self, short_id):
        """The stored link item, read consistently (an edit must start from the latest version)."""
        resp = self.table.call("get_item", TableName=self.table.name, Key=_key(short_id, LINK_SK), ConsistentRead=True)
        if "Item" not in resp:
            raise LinkNotFound(short_id)
        return _unmarshal(resp["Item"])

    def _write_edit(self, old, new):
        """Replace the link item if it is still at old's version, with its index entries; False if it was not."""
        condition = {
            "ConditionExpression": "attribute_exists(pk) AND " + (
                "version = :v" if "version" in old else "attribute_not_exists(version)"),
        }
        if "version" in old:
            condition["ExpressionAttributeValues"] = {":v": {"N": str(old["version"])}}
        old_entries = {(e["pk"], e["sk"]): e for e in link_index.entries(old)}
        new_entries = {(e["pk"], e["sk"]): e for e in link_index.entries(new)}
        puts = [entry for key, entry in new_entries.items() if old_entries.get(key) != entry]
        deletes = [key for key in old_entries if key not in new_entries]
        try:
            if not puts and not deletes:
                self.table.call("put_item", TableName=self.table.name, Item=_marshal(new), **condition)
                return True
            parts = [{"Put": {"TableName": self.table.name, "Item": _marshal(new), **condition}}]
            parts += [{"Put": {"TableName": self.table.name, "Item": _marshal(entry)}} for entry in puts]
            parts += [{"Delete": {"TableName": self.table.name, "Key": _key(*key)}} for key in deletes]
            self.table.call("transact_write_items", TransactItems=parts)
            return True
        except (_ConditionFailed, _TransactionCanceled):
            # Another edit landed first (or was landing): read again. Unless it was this one: botocore resends
            # a request whose answer timed out, and a resent PutItem fails its own version condition.
            return self._holds(new)
        except StoreUnavailable:
            # A write whose answer was lost (a read timeout) may have landed: if the link is now exactly
            # what this edit wrote, it did, and the edit is done (so it is audited, once); else it failed.
            if self._holds(new):
                return True
            raise

    def _holds(self, item):
        """True when the stored link is this very item (its version and updated_at included); False when
        it is not, or cannot be read now."""
        try:
            return self._read_item(item["pk"]) == item
        except (StoreUnavailable, LinkNotFound):
            return False

    def daily_stats(self, short_id, days=30, today=None):
        """The link's stats for the last `days` UTC days (today included), oldest first, one entry per day
        that has a live item (not past its purge_at), click_regions() summed: webapp/store/stats_items.py's
        day (clicks, bots, "hours", "bot_hours", the five dimensions, and "visitors" as parts for
        stats_items.visitors).

        One Query of the link's stats partition whatever the window, paged on LastEvaluatedKey only
        when the items pass DynamoDB's 1 MB a page; days without clicks have no item. `today` (a date,
        default the clock's) is the caller's, so that a window read across midnight ends on the caller's day.
        """
        _known_shape(short_id)
        today = today or clock.utcnow().date()
        first = today - timedelta(days=days - 1)
        request = {
            "TableName": self.table.name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
            "ExpressionAttributeValues": _marshal({
                ":pk": f"{STATS_PK_PREFIX}{short_id}",
                ":first": f"{DAY_SK_PREFIX}{first}",
                # "~" sorts after every region name, so the last day's regions are all in.
                ":last": f"{DAY_SK_PREFIX}{today}#~",
            }),
        }
        merged, regions, now = {}, set(self.click_regions()), clock.utcnow()
        while True:
            resp = self.table.call("query", **request)
            for raw in resp.get("Items", []):
                item = _unmarshal(raw)
                day, _, region = item["sk"].removeprefix(DAY_SK_PREFIX).partition("#")
                # Only the regions the link's total sums (as the dashboard's rollups), and no day past its purge_at.
                if region not in regions or stats_items.expired(item, now):
                    continue
                stats_items.merge(merged.setdefault(day, stats_items.empty_day(day)), stats_items.part(day, item))
            if "LastEvaluatedKey" not in resp:
                return [merged[day] for day in sorted(merged)]
            request["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def _known_shape(short_id):
    """Raise LinkNotFound, without a request, for an id no link can have: DynamoDB refuses a key
    over 2,048 bytes with a ValidationException, which would otherwise be a 500."""
    if not link_rules.is_short_id(short_id):
        raise LinkNotFound(short_id)


def encode_cursor(after):
    """An opaque, URL-safe cursor for a link page: each list shard's last shown sort key."""
    raw = json.dumps(after, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor):
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
        "tags": list(item.get("tags", [])),
        "note": item.get("note"),
        "forward_query": item.get("forward_query", True),
        "archived": item.get("archived", False),
        "version": item.get("version", 0),
        "updated_at": item.get("updated_at"),
        "updated_by": item.get("updated_by"),
        "click_count": sum(counter.get("clicks", 0) for counter in counters),
        "bot_count": sum(counter.get("bots", 0) for counter in counters),
        "last_clicked_at": max((c["last_clicked_at"] for c in counters if c.get("last_clicked_at")), default=None),
    }
