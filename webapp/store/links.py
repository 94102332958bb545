"""Links and their daily stats in the one table; paging through the by_list index."""
import base64
import binascii
import json
from datetime import timedelta

from webapp import links
from webapp.exceptions import IdSpaceExhausted, InvalidCursor, LinkNotFound, SlugTaken
from webapp.store.table import _ConditionFailed, _key, _marshal, _unmarshal

LINK_SK = "link"
# The aggregator's per-day stats items: pk "stats#<id>", sk "day#<YYYY-MM-DD>", and counters
# named by these prefixes (see the README's table layout).
STATS_PK_PREFIX, DAY_SK_PREFIX = "stats#", "day#"
_DAY_COUNTER_PREFIXES = {"ref#": "referrers", "cc#": "countries", "dev#": "devices"}
LIST_INDEX = "by_list"
_KEY_ATTRS = ("pk", "sk", "list_pk", "list_sk")
_RANDOM_ID_ATTEMPTS = 5


class LinksMixin:
    """Create, read, list and enable or disable links; read their daily stats."""

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
