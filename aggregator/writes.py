"""Apply a batch's clicks: one conditional UpdateItem per item, guarded by the shard's high-water mark.

Each item written (a link's counter, a link-day's stats) carries, per stream shard, the
sequence number of the last click applied to it. An update applies only when that mark is
below the first click it adds, and moves the mark to the last. So a redelivered batch, a retry
after a partial failure, and a replay change nothing twice, with no transaction, no marker
item, and nothing that two writers can conflict on.

When the condition fails, DynamoDB returns the item as it was (ReturnValuesOnConditionCheckFailure),
at no extra read: the update is then rebuilt from the clicks above the stored mark, with the
referrers and countries the item already has, and retried on exactly that state.
"""
import logging
from collections import OrderedDict

from botocore.exceptions import ClientError

from aggregator import layout
from aggregator.clicks import item_key, totals_of

# Distinct referrer hosts and countries one stats item (a link, a day, a region) keeps; the
# rest are counted as "(other)". Bounds the item whatever visitors send.
MAX_REFERRERS = 50
MAX_COUNTRIES = 250
# Keys of one dimension in one write, so an update expression stays far below DynamoDB's 4 KB.
MAX_KEYS_PER_WRITE = 30
MAX_ATTEMPTS = 8
# Stats items whose referrer or country set is full, as this container last wrote them. Without
# it, every batch that brings a new referrer to a full item (a popular link, or forged referrers)
# would first fail its room condition, a charged write, before the exact retry.
FULL_ITEMS_REMEMBERED = 10_000
_full_items = OrderedDict()

logger = logging.getLogger(__name__)

APPLIED, ALREADY_APPLIED, DROPPED = "applied", "already applied", "dropped"


class MarkRace(Exception):
    """The item kept changing under us; the batch must be retried."""


def apply_item(client, table_name, key, clicks, mark, region, read=None):
    """Apply the clicks (in stream order) of one item; returns APPLIED, ALREADY_APPLIED or DROPPED.

    mark: the attribute holding this shard's high-water mark (layout.mark_name). read: the
    item's mark and sets as a read just found them ({} when it does not exist), or None.
    Raises on an error worth retrying (throttling, an outage); an update DynamoDB refuses as
    invalid is logged and dropped, so one bad item can never hold back the rest of the stream.
    """
    remembered = (table_name, key, region, mark)
    pending, seen = clicks, read if read is not None else _full_items.get(remembered)
    if seen is not None:
        # The mark was read, or written by this container, and marks only grow: what is at or
        # below it is applied (a redelivery), whatever the item holds now.
        stored = seen.get(mark, {}).get("S")
        pending = [click for click in pending if stored is None or click.sequence > stored]
        if not pending:
            return ALREADY_APPLIED
    for _ in range(MAX_ATTEMPTS):
        update, sets = build_update(key[0], totals_of(pending), mark, seen)
        try:
            client.update_item(
                TableName=table_name,
                Key=item_key(key, region),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **update,
            )
            _remember_if_full(remembered, mark, pending[-1].sequence, sets)
            return APPLIED
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code == "ValidationException":
                logger.error("dropped an update DynamoDB refused: %s %s", key, err.response["Error"].get("Message"))
                return DROPPED
            if code != "ConditionalCheckFailedException":
                raise
            _full_items.pop(remembered, None)
            seen = err.response.get("Item") or {}
        stored = seen.get(mark, {}).get("S")
        if stored is not None:
            pending = [click for click in pending if click.sequence > stored]
        if not pending:
            return ALREADY_APPLIED
    raise MarkRace(f"{key} changed {MAX_ATTEMPTS} times while being updated")


def _remember_if_full(remembered, mark, last, sets):
    """Keep the item's state (as seen= takes it) when one of its sets is full; forget it otherwise."""
    limits = {layout.REFERRER_SET: MAX_REFERRERS, layout.COUNTRY_SET: MAX_COUNTRIES}
    if sets is None or not any(len(keys) >= limits[name] for name, keys in sets.items()):
        _full_items.pop(remembered, None)
        return
    state = {mark: {"S": last}}
    state.update({name: {"SS": sorted(keys)} for name, keys in sets.items() if keys})
    _full_items[remembered] = state
    _full_items.move_to_end(remembered)
    while len(_full_items) > FULL_ITEMS_REMEMBERED:
        _full_items.popitem(last=False)


def build_update(kind, totals, mark, seen=None):
    """UpdateItem arguments for a counter or stats item, and the item's sets after it when they are known.

    With seen=None (the first attempt) the condition only asks that the mark be below the
    first click, and that the item's sets have room for every key as if all were new (or
    hold them all already). With seen (the item returned by a failed condition) the update
    adds exactly what fits and is conditional on the item being still as seen; then the sets
    it will hold are known and returned ({set name: keys}), else None.
    """
    expression = _Expression()
    expression.names["#m"] = mark
    expression.values[":last"] = {"S": totals.last}
    expression.sets.append("#m = :last")
    if seen is None:
        expression.values[":first"] = {"S": totals.first}
        expression.conditions.append("(attribute_not_exists(#m) OR #m < :first)")
    elif mark in seen:
        expression.values[":seen"] = seen[mark]
        expression.conditions.append("#m = :seen")
    else:
        expression.conditions.append("attribute_not_exists(#m)")
    expression.add("clicks", totals.clicks)
    expression.add("bots", totals.bots)
    if kind == "counter":
        if totals.last_clicked_at:
            expression.values[":at"] = {"S": totals.last_clicked_at}
            expression.sets.append("last_clicked_at = :at")
        return expression.arguments(), None
    for device, count in sorted(totals.devices.items()):
        expression.add(layout.DEVICE_PREFIX + device, count)
    dimensions = (
        ("r", layout.REFERRER_PREFIX, layout.REFERRER_SET, totals.referrers, MAX_REFERRERS),
        ("c", layout.COUNTRY_PREFIX, layout.COUNTRY_SET, totals.countries, MAX_COUNTRIES),
    )
    sets = None if seen is None else {}
    for tag, prefix, set_name, counter, limit in dimensions:
        stored = set(seen.get(set_name, {}).get("SS", [])) if seen is not None else set()
        kept = _add_dimension(expression, tag, prefix, set_name, counter, limit, seen) if counter else []
        if sets is not None:
            sets[set_name] = stored | set(kept)
    return expression.arguments(), sets


def _add_dimension(expression, tag, prefix, set_name, counter, limit, seen):
    """Count one dimension's keys, folding what does not fit into "(other)"."""
    set_ref = f"#{tag}s"
    expression.names[set_ref] = set_name
    ranked = [key for key, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]
    if seen is None:
        kept = ranked[:MAX_KEYS_PER_WRITE]
        expression.values[f":{tag}room"] = {"N": str(limit - len(kept))}
        known = " AND ".join(f"contains({set_ref}, :{tag}k{i})" for i in range(len(kept)))
        for i, key in enumerate(kept):
            expression.values[f":{tag}k{i}"] = {"S": key}
        expression.conditions.append(
            f"(attribute_not_exists({set_ref}) OR size({set_ref}) <= :{tag}room OR ({known}))"
        )
    else:
        stored = set(seen.get(set_name, {}).get("SS", []))
        room = max(0, limit - len(stored))
        kept = [key for key in ranked if key in stored][:MAX_KEYS_PER_WRITE]
        kept += [key for key in ranked if key not in stored][: min(room, MAX_KEYS_PER_WRITE - len(kept))]
        if stored:
            expression.values[f":{tag}size"] = {"N": str(len(stored))}
            expression.conditions.append(f"size({set_ref}) = :{tag}size")
        else:
            expression.conditions.append(f"attribute_not_exists({set_ref})")
    for key in kept:
        expression.add(prefix + key, counter[key])
    other = sum(counter.values()) - sum(counter[key] for key in kept)
    if other:
        expression.add(prefix + layout.OTHER, other)
    if kept:
        expression.values[f":{tag}set"] = {"SS": sorted(kept)}
        expression.adds.append(f"{set_ref} :{tag}set")
    return kept


class _Expression:
    """Collects the parts of one UpdateItem: SET and ADD clauses, a condition, names and values."""

    def __init__(self):
        self.names, self.values = {}, {}
        self.sets, self.adds, self.conditions = [], [], []

    def add(self, attribute, amount):
        """ADD a number to an attribute (creating it at 0)."""
        i = len(self.adds)
        self.names[f"#a{i}"] = attribute
        self.values[f":a{i}"] = {"N": str(amount)}
        self.adds.append(f"#a{i} :a{i}")

    def arguments(self):
        return {
            "UpdateExpression": f"SET {', '.join(self.sets)} ADD {', '.join(self.adds)}",
            "ConditionExpression": " AND ".join(self.conditions),
            "ExpressionAttributeNames": self.names,
            "ExpressionAttributeValues": self.values,
        }
