"""Read the aggregator's stats items: a link's day (pk "stats#<id>") and a day's rollup (pk "rollup#<day>").

Both kinds share one attribute layout (aggregator/layout.py writes it; tests/test_layout_contract.py
pins both sides): clicks and bots; per UTC hour "h#HH" (people) and "hb#HH" (bots); counters per
referrer, country, device, browser and operating system; the day's visitors as an exact set of
hashes ("uv", at most 100 not yet in the sketch). The sketch ("uvh") is an item of its own next to
it (sort key + "#uvh", so a day's or a region's Query takes it in): as a part it adds visitors and
nothing else, and sketch.count takes the union with "uv". Items of the older layout hold "uvh"
themselves: read alike. A rollup also holds "lnk#<id>": that link's clicks by people that day in
its region, as its shard last saw it.

An item is one region's share (and, for a rollup, one stream shard's): `merge` sums them into
one day. Pure functions, no I/O.
"""
from uniques import sketch

DIMENSIONS = {"ref#": "referrers", "cc#": "countries", "dev#": "devices", "br#": "browsers", "os#": "oses"}
HOUR_PREFIX, BOT_HOUR_PREFIX = "h#", "hb#"
LINK_PREFIX = "lnk#"
VISITOR_SET, VISITOR_SKETCH = "uv", "uvh"


def empty_day(day):
    """A day with nothing counted yet, in the shape `part` and `merge` give."""
    return {
        "day": day, "clicks": 0, "bots": 0, "hours": {}, "bot_hours": {},
        **{name: {} for name in DIMENSIONS.values()},
        "links": {}, "visitors": [],
    }


def expired(item, now):
    """Whether the item is past its purge_at (the table's TTL attribute) at `now` (an aware datetime):
    DynamoDB deletes such items only some time later, so readers skip them for a day to go at once and
    whole (AWS, "Working with expired items")."""
    purge_at = item.get("purge_at")
    return purge_at is not None and purge_at <= now.timestamp()


def part(day, item):
    """One unmarshalled item as a day: its counters, and its visitors as (hashes, sketch) for sketch.count."""
    result = empty_day(day)
    result["clicks"], result["bots"] = item.get("clicks", 0), item.get("bots", 0)
    for attribute, value in item.items():
        prefix, _, key = attribute.partition("#")
        prefix += "#"
        if not key:
            continue
        if prefix in DIMENSIONS:
            result[DIMENSIONS[prefix]][key] = value
        elif prefix == HOUR_PREFIX:
            result["hours"][key] = value
        elif prefix == BOT_HOUR_PREFIX:
            result["bot_hours"][key] = value
        elif prefix == LINK_PREFIX:
            result["links"][key] = value
    hashes = item.get(VISITOR_SET)
    blob = item.get(VISITOR_SKETCH)
    if hashes or blob is not None:
        result["visitors"].append((set(bytes(h) for h in hashes or ()), bytes(blob) if blob is not None else None))
    return result


def merge(total, other, links_by_max=False):
    """Add one day's part into total (in place). Link totals are summed across regions, but across
    one region's shards the largest is the latest: links_by_max for parts of the same region."""
    total["clicks"] += other["clicks"]
    total["bots"] += other["bots"]
    for name in ("hours", "bot_hours", *DIMENSIONS.values()):
        for key, value in other[name].items():
            total[name][key] = total[name].get(key, 0) + value
    for key, value in other["links"].items():
        total["links"][key] = max(total["links"].get(key, 0), value) if links_by_max else total["links"].get(key, 0) + value
    total["visitors"].extend(other["visitors"])
    return total


def visitors(day):
    """The day's distinct visitors (exact up to sketch.EXACT_MAX), or None when no click of it had a visitor hash."""
    return sketch.count(day["visitors"]) if day["visitors"] else None
