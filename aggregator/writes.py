"""Apply a batch's clicks: one conditional UpdateItem per item, guarded by the shard's high-water mark.

Each item written (a link's counter, a link-day's stats, a day's rollup) carries, per stream
shard, the sequence number of the last click applied to it. An update applies only when that
mark is below the first click it adds, and moves the mark to the last. So a redelivered batch,
a retry after a partial failure, and a replay change nothing twice, with no transaction, no
marker item, and nothing that two writers can conflict on.

When the condition fails, DynamoDB returns the item as it was (ReturnValuesOnConditionCheckFailure),
at no extra read: the update is then rebuilt from the clicks above the stored mark, with the
sets, visitors and links the item already has, and retried on exactly that state.

Visitors: a stats or rollup item holds at most sketch.EXACT_MAX pending hashes ("uv"), and a write
ADDs the new ones with no read (a condition keeps the set that small). The sketch lives in an item
of its own next to it (layout.sketch_key), never in the counted item: DynamoDB charges a write by
the whole item's size, and a click of a link past its first visitors would pay kilobytes of
registers. When the set would overflow (the failed condition returned the item), the hashes are
folded: the sketch item is read (or taken from this container's memo), merged with the pending and
new hashes and written, guarded by its version ("uvv": every shard writes it); only then does the
counted item's update DELETE exactly the folded hashes from "uv". Registers merge by max and a
reader counts the union of "uv" and the sketch, so folding twice, a failure between the two writes,
a retry or another shard folding at the same time loses no visitor and counts none twice.
"""
import calendar
import datetime
import logging
from collections import OrderedDict

from botocore.exceptions import ClientError

from aggregator import layout, rollups
from aggregator.clicks import item_key, totals_of
from uniques import sketch

# Distinct keys one stats item (a link, a day, a region) keeps per dimension; the rest are
# counted as "(other)". Bounds the item whatever visitors send.
MAX_REFERRERS = 50
MAX_COUNTRIES = 250
MAX_DEVICES = MAX_BROWSERS = MAX_OSES = 50
# Keys of one dimension in one write, so that update and condition expressions stay below
# DynamoDB's 4 KB (each "contains" clause of a first attempt costs about 24 characters).
MAX_KEYS_PER_WRITE = 30
MAX_AGENT_KEYS_PER_WRITE = 12  # devices, browsers, operating systems: few per link and batch
MAX_ATTEMPTS = 8
# Items as this container last wrote them (seen= state), when a first attempt without that state
# would fail: a set is full, the visitors are a sketch, or a rollup (which only this shard writes).
# Without it, every batch that brings a new key or visitor to such an item would first fail its
# condition, a charged write, before the exact retry.
FULL_ITEMS_REMEMBERED = 10_000
_full_items = OrderedDict()
# Sketch items as this container last wrote or read them ((table, pk, sk) -> (version, registers
# encoded)), up to 32 KB each: a fold reads its sketch only when another container moved it on.
SKETCHES_REMEMBERED = 1_000
_sketches = OrderedDict()

logger = logging.getLogger(__name__)

APPLIED, ALREADY_APPLIED, DROPPED = "applied", "already applied", "dropped"


class MarkRace(Exception):
    """The item kept changing under us; the batch must be retried."""


def _dimensions():
    """(tag, counter prefix, set name, Totals field, limit, keys per write) of each counted dimension."""
    return (
        ("r", layout.REFERRER_PREFIX, layout.REFERRER_SET, "referrers", MAX_REFERRERS, MAX_KEYS_PER_WRITE),
        ("c", layout.COUNTRY_PREFIX, layout.COUNTRY_SET, "countries", MAX_COUNTRIES, MAX_KEYS_PER_WRITE),
        ("d", layout.DEVICE_PREFIX, layout.DEVICE_SET, "devices", MAX_DEVICES, MAX_AGENT_KEYS_PER_WRITE),
        ("b", layout.BROWSER_PREFIX, layout.BROWSER_SET, "browsers", MAX_BROWSERS, MAX_AGENT_KEYS_PER_WRITE),
        ("o", layout.OS_PREFIX, layout.OS_SET, "oses", MAX_OSES, MAX_AGENT_KEYS_PER_WRITE),
    )


def purge_time(day, retention_days):
    """The TTL of a day's items: the start of UTC day (day + retention_days + 1), epoch seconds; None keeps them."""
    if retention_days is None:
        return None
    end = datetime.date.fromisoformat(day) + datetime.timedelta(days=retention_days + 1)
    return calendar.timegm(end.timetuple())


def apply_item(client, table_name, key, clicks, mark, region, read=None, retention_days=None, links=None, learned=None):
    """Apply the clicks (in stream order) of one item; returns APPLIED, ALREADY_APPLIED or DROPPED.

    mark: the attribute holding this shard's high-water mark (layout.mark_name). read: the
    item's state as a read just found it ({} when it does not exist), or None. retention_days:
    the stats retention setting (None: kept forever). links: for a rollup, {short id: the
    link's clicks that day}. learned: a dict that gets learned[key] = the item's clicks after
    the write (or as found, when already applied), when DynamoDB says it at no extra cost.
    Raises on an error worth retrying (throttling, an outage); an update DynamoDB refuses as
    invalid is logged and dropped, so one bad item can never hold back the rest of the stream.
    """
    remembered = (table_name, key, region, mark)
    pending, seen = clicks, read if read is not None else _remembered(remembered)
    if seen is None and key[0] != "counter" and len(totals_of(clicks).visitors) > sketch.EXACT_MAX:
        # They must be folded (a hot link): a strongly consistent read of the small counted item,
        # rather than a first attempt whose condition must fail (a charged write).
        seen = client.get_item(TableName=table_name, Key=item_key(key, region), ConsistentRead=True).get("Item") or {}
    if seen is not None:
        # The mark was read, or written by this container, and marks only grow: what is at or
        # below it is applied (a redelivery), whatever the item holds now.
        stored = seen.get(mark, {}).get("S")
        pending = [click for click in pending if stored is None or click.sequence > stored]
        if not pending:
            _learn(learned, key, seen)
            return ALREADY_APPLIED
    day = key[2] if key[0] == "stats" else key[1] if key[0] == "rollup" else None
    purge_at = purge_time(day, retention_days) if day else None
    for _ in range(MAX_ATTEMPTS):
        totals = totals_of(pending)
        folded = _to_fold(key[0], seen, totals.visitors)
        if folded is not None:
            # Into the sketch item first: the update below removes them from "uv" only once they are there.
            legacy = (seen or {}).get(layout.VISITOR_SKETCH, {}).get("B")
            fold(client, table_name, item_key(key, region), folded, legacy, purge_at)
        update, state = build_update(key[0], totals, mark, seen, purge_at, links, folded)
        try:
            response = client.update_item(
                TableName=table_name,
                Key=item_key(key, region),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                # The stats item's new clicks (the day's total) for the rollup: returned, not read.
                **({"ReturnValues": "UPDATED_NEW"} if key[0] == "stats" else {}),
                **update,
            )
            _learn(learned, key, response.get("Attributes") or {})
            _remember(remembered, key[0], state)
            return APPLIED
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code == "ValidationException":
                logger.error("dropped an update DynamoDB refused: %s %s", key, err.response["Error"].get("Message"))
                return DROPPED
            if code != "ConditionalCheckFailedException":
                raise
            _forget(remembered)
            seen = err.response.get("Item") or {}
        stored = seen.get(mark, {}).get("S")
        if stored is not None:
            pending = [click for click in pending if click.sequence > stored]
        if not pending:
            _learn(learned, key, seen)
            return ALREADY_APPLIED
    raise MarkRace(f"{key} changed {MAX_ATTEMPTS} times while being updated")


def _learn(learned, key, attributes):
    if learned is not None and key[0] == "stats" and "N" in attributes.get("clicks", {}):
        learned[key] = int(attributes["clicks"]["N"])


def _remembered(remembered):
    """The state this container last wrote to an item (as seen= takes it), or None."""
    return _full_items.get(remembered)


def _remember(remembered, kind, state):
    """Keep an item's state after a write when a first attempt without it would fail; forget it otherwise."""
    if state is None or not (kind == "rollup" or layout.VISITOR_SKETCH in state or _any_full(state)):
        _forget(remembered)
        return
    _full_items[remembered] = state
    _full_items.move_to_end(remembered)
    while len(_full_items) > FULL_ITEMS_REMEMBERED:
        _full_items.popitem(last=False)


def _forget(remembered):
    _full_items.pop(remembered, None)


def _to_fold(kind, seen, visitors):
    """The hashes to fold into the sketch item before this update, or None: when the item is known (seen)
    and its pending set would pass sketch.EXACT_MAX, or it still holds a sketch itself (the old layout)."""
    if kind == "counter" or seen is None or not visitors:
        return None
    stored = {bytes(h) for h in seen.get(layout.VISITOR_SET, {}).get("BS", [])}
    if layout.VISITOR_SKETCH in seen or len(stored | visitors) > sketch.EXACT_MAX:
        return stored | visitors
    return None


def fold(client, table_name, counted_key, hashes, legacy=None, purge_at=None):
    """Merge hashes (and a sketch the counted item itself held, legacy) into the sketch item of the item
    with key counted_key: a read-modify-write guarded by the sketch's version, from this container's
    memo of it, else a strongly consistent read; a failed condition returns the item to retry on."""
    key = layout.sketch_key(counted_key)
    memo = (table_name, key["pk"]["S"], key["sk"]["S"])
    current = _sketches.get(memo)
    if current is None:
        found = client.get_item(TableName=table_name, Key=key, ConsistentRead=True,
                                ProjectionExpression="#uvh, #uvv",
                                ExpressionAttributeNames={"#uvh": layout.VISITOR_SKETCH, "#uvv": layout.VISITOR_VERSION})
        current = _sketch_state(found.get("Item") or {})
    for _ in range(MAX_ATTEMPTS):
        version, blob = current
        registers = sketch.decode(blob) if blob is not None else sketch.new_registers()
        if legacy is not None:
            sketch.merge(registers, sketch.decode(bytes(legacy)))
        encoded = sketch.encode(sketch.add(registers, hashes))
        if blob is not None and encoded == blob:
            _memo_sketch(memo, current)  # all in already (a fold done twice): nothing to write
            return
        names = {"#uvh": layout.VISITOR_SKETCH, "#uvv": layout.VISITOR_VERSION, "#pa": layout.PURGE_AT}
        values = {":uvh": {"B": encoded}, ":next": {"N": str(int(version or 0) + 1)}}
        if version is None:
            condition = "attribute_not_exists(#uvv)"
        else:
            condition, values[":uvv"] = "#uvv = :uvv", {"N": version}
        if purge_at is not None:
            values[":purge"] = {"N": str(purge_at)}
            expression = "SET #uvh = :uvh, #uvv = :next, #pa = :purge"
        else:
            expression = "SET #uvh = :uvh, #uvv = :next REMOVE #pa"
        try:
            client.update_item(TableName=table_name, Key=key, UpdateExpression=expression,
                               ConditionExpression=condition, ExpressionAttributeNames=names,
                               ExpressionAttributeValues=values, ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                _sketches.pop(memo, None)
                raise
            current = _sketch_state(err.response.get("Item") or {})  # another writer moved it on
            continue
        _memo_sketch(memo, (values[":next"]["N"], encoded))
        return
    _sketches.pop(memo, None)
    raise MarkRace(f"{key} changed {MAX_ATTEMPTS} times while being folded")


def _sketch_state(item):
    """(version, encoded registers) of a sketch item as DynamoDB returned it; (None, None) when absent."""
    blob = item.get(layout.VISITOR_SKETCH, {}).get("B")
    return item.get(layout.VISITOR_VERSION, {}).get("N"), bytes(blob) if blob is not None else None


def _memo_sketch(memo, state):
    _sketches[memo] = state
    _sketches.move_to_end(memo)
    while len(_sketches) > SKETCHES_REMEMBERED:
        _sketches.popitem(last=False)


def _any_full(state):
    return any(len(state.get(set_name, {}).get("SS", ())) >= limit for _, _, set_name, _, limit, _ in _dimensions())


def build_update(kind, totals, mark, seen=None, purge_at=None, links=None, folded=None):
    """UpdateItem arguments for a counter, stats or rollup item, and the item's state after it when known.

    With seen=None (the first attempt) the condition only asks that the mark be below the
    first click, that the item's sets have room for every key as if all were new (or hold
    them all already), and that its visitors are still a small set. With seen (the item
    returned by a failed condition, read, or remembered) the update adds exactly what fits
    and is conditional on the item being still as seen; then its state after the write is
    returned (as seen= takes it: exact for a rollup, which only this shard writes), else None.
    folded: hashes already merged into the item's sketch item (writes.fold), removed from its set.
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
    for hour, count in sorted(totals.hours.items()):
        expression.add(layout.HOUR_PREFIX + hour, count)
    for hour, count in sorted(totals.bot_hours.items()):
        expression.add(layout.BOT_HOUR_PREFIX + hour, count)
    if purge_at is not None:
        expression.values[":purge"] = {"N": str(purge_at)}
        expression.sets.append("#pa = :purge")
    else:
        expression.removes.append("#pa")  # the setting was cleared: kept forever again
    expression.names["#pa"] = layout.PURGE_AT
    state = None if seen is None else {mark: {"S": totals.last}}
    for tag, prefix, set_name, field_name, limit, per_write in _dimensions():
        counter = getattr(totals, field_name)
        kept = _add_dimension(expression, tag, prefix, set_name, counter, limit, seen, per_write) if counter else []
        if state is not None:
            keys = set(seen.get(set_name, {}).get("SS", [])) | set(kept)
            if keys:
                state[set_name] = {"SS": sorted(keys)}
    _add_visitors(expression, totals.visitors, seen, state, folded)
    if kind == "rollup":
        rollups.add_links(expression, links or {}, seen, state)
    return expression.arguments(), state


def _add_visitors(expression, visitors, seen, state, folded=None):
    """ADD new visitor hashes to the small set while it stays small; or, after a fold, DELETE the folded ones."""
    stored = {bytes(h) for h in seen.get(layout.VISITOR_SET, {}).get("BS", [])} if seen is not None else set()
    if state is not None:  # unchanged unless written below
        state.update({name: seen[name] for name in (layout.VISITOR_SET, layout.VISITOR_SKETCH, layout.VISITOR_VERSION)
                      if name in seen})
    if folded is not None:
        # Exactly the hashes now in the sketch item (another shard's added since stay), and a sketch
        # of the old layout, merged into it too, guarded by its version so that no write to it is lost.
        gone = stored & folded
        if gone:
            expression.names["#uv"] = layout.VISITOR_SET
            expression.values[":uvgone"] = {"BS": sorted(gone)}
            expression.deletes.append("#uv :uvgone")
        version = seen.get(layout.VISITOR_VERSION, {}).get("N") if seen is not None else None
        if seen is not None and (layout.VISITOR_SKETCH in seen or version is not None):
            expression.names.update({"#uvh": layout.VISITOR_SKETCH, "#uvv": layout.VISITOR_VERSION})
            if version is None:
                expression.conditions.append("attribute_not_exists(#uvv)")
            else:
                expression.values[":uvv"] = {"N": version}
                expression.conditions.append("#uvv = :uvv")
            expression.removes.append("#uvh, #uvv")
        if state is not None:
            state.pop(layout.VISITOR_SKETCH, None)
            state.pop(layout.VISITOR_VERSION, None)
            if stored - folded:
                state[layout.VISITOR_SET] = {"BS": sorted(stored - folded)}
            else:
                state.pop(layout.VISITOR_SET, None)
        return
    new = visitors - stored
    if not new:
        return
    # Room for the new ones even if every other shard's hashes since were new too: the set only
    # grows but by a fold; no sketch in the counted item (the old layout: it must be folded out).
    expression.values[":uvroom"] = {"N": str(sketch.EXACT_MAX - len(new))}
    expression.values[":uvs"] = {"BS": sorted(new)}
    expression.names.update({"#uv": layout.VISITOR_SET, "#uvh": layout.VISITOR_SKETCH})
    expression.conditions.append("attribute_not_exists(#uvh) AND (attribute_not_exists(#uv) OR size(#uv) <= :uvroom)")
    expression.adds.append("#uv :uvs")
    if state is not None:
        state[layout.VISITOR_SET] = {"BS": sorted(stored | new)}


def _add_dimension(expression, tag, prefix, set_name, counter, limit, seen, per_write=MAX_KEYS_PER_WRITE):
    """Count one dimension's keys, folding what does not fit into "(other)"."""
    set_ref = f"#{tag}s"
    # "(other)" is never a kept key: what a click already counts there (a referrer host too long to be a key,
    # or a forged family of that name) joins the overflow below, so the attribute is added once per update
    # (DynamoDB refuses an update whose paths overlap, and the item's clicks would be dropped).
    ranked = [key for key, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])) if key != layout.OTHER]
    if seen is None:
        kept = ranked[:per_write]
        if kept:  # nothing but "(other)": no key joins the set, so neither the set nor its room is named
            expression.names[set_ref] = set_name
            expression.values[f":{tag}room"] = {"N": str(limit - len(kept))}
            known = " AND ".join(f"contains({set_ref}, :{tag}k{i})" for i in range(len(kept)))
            for i, key in enumerate(kept):
                expression.values[f":{tag}k{i}"] = {"S": key}
            expression.conditions.append(
                f"(attribute_not_exists({set_ref}) OR size({set_ref}) <= :{tag}room OR ({known}))"
            )
    else:
        expression.names[set_ref] = set_name
        stored = set(seen.get(set_name, {}).get("SS", []))
        room = max(0, limit - len(stored))
        kept = [key for key in ranked if key in stored][:per_write]
        kept += [key for key in ranked if key not in stored][: min(room, per_write - len(kept))]
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
        self.sets, self.adds, self.removes, self.deletes, self.conditions = [], [], [], [], []

    def add(self, attribute, amount):
        """ADD a number to an attribute (creating it at 0)."""
        i = len(self.adds)
        self.names[f"#a{i}"] = attribute
        self.values[f":a{i}"] = {"N": str(amount)}
        self.adds.append(f"#a{i} :a{i}")

    def arguments(self):
        removes = f" REMOVE {', '.join(self.removes)}" if self.removes else ""
        deletes = f" DELETE {', '.join(self.deletes)}" if self.deletes else ""
        return {
            "UpdateExpression": f"SET {', '.join(self.sets)} ADD {', '.join(self.adds)}{removes}{deletes}",
            "ConditionExpression": " AND ".join(self.conditions),
            "ExpressionAttributeNames": self.names,
            "ExpressionAttributeValues": self.values,
        }
