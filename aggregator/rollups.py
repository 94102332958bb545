"""A day's rollup across links: what the home dashboard reads, written once per batch, never per click.

One rollup item per UTC day, region and stream shard (layout.rollup_key): its only writer is
that shard's batch, so it takes one conditional UpdateItem per day of a batch, guarded by the
shard's mark like any other item (writes.apply_item). It holds what a stats item holds, summed
over every link (clicks, bots, hours, the five dimensions, the visitors), plus the links with
the most clicks that day: "lnk#<id>" = the link's clicks by people in the region that day, as
its stats item's update returned them (its total, not this batch's share: so a reader takes the
largest over a day's items of a region, and a redelivery cannot count it twice), and "lnks"
naming the TOP_LINKS kept.

The rollup is written after the batch's stats items: a stats write that fails fails the batch
before its rollups, and the retry adds the clicks to the rollup once (its mark decides).
"""
from aggregator import layout

TOP_LINKS = 100


def group(clicks, mark):
    """The clicks per rollup they add to, in stream order: keys ("rollup", day, mark)."""
    groups = {}
    for click in clicks:
        groups.setdefault(("rollup", click.day, mark), []).append(click)
    return groups


def links_of_day(learned, day):
    """{short id: clicks by people that day} from what the stats writes learned ({("stats", id, day): clicks}).

    A link only bots followed has none, and is no top link."""
    return {key[1]: total for key, total in learned.items() if key[0] == "stats" and key[2] == day and total > 0}


def top(totals, limit=TOP_LINKS):
    """The ids of the `limit` highest totals (ties by id, so that every writer keeps the same)."""
    return [short_id for short_id, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def add_links(expression, links, seen, state):
    """Set the links' day totals on a rollup update (writes._Expression), keeping the TOP_LINKS highest.

    Without seen, the condition asks for room as if every link were new; with seen (exact: only
    this shard writes the item, and the mark condition holds it as seen) the lowest are evicted.
    """
    if seen is None:
        if not links:
            return
        kept = top(links)
        expression.names["#ls"] = layout.LINK_SET
        expression.values[":lroom"] = {"N": str(TOP_LINKS - len(kept))}
        expression.conditions.append("(attribute_not_exists(#ls) OR size(#ls) <= :lroom)")
        for i, short_id in enumerate(kept):
            _set_link(expression, i, short_id, links[short_id])
        expression.values[":lids"] = {"SS": sorted(kept)}
        expression.adds.append("#ls :lids")
        return
    stored = {short_id: int(seen.get(layout.LINK_PREFIX + short_id, {}).get("N", "0"))
              for short_id in seen.get(layout.LINK_SET, {}).get("SS", [])}
    merged = dict(stored)
    for short_id, total in links.items():
        merged[short_id] = max(merged.get(short_id, 0), total)  # totals only grow
    kept = top(merged)
    changed = [short_id for short_id in kept if merged[short_id] != stored.get(short_id)]
    evicted = sorted(set(stored) - set(kept))
    for i, short_id in enumerate(changed):
        _set_link(expression, i, short_id, merged[short_id])
    for i, short_id in enumerate(evicted):
        expression.names[f"#le{i}"] = layout.LINK_PREFIX + short_id
        expression.removes.append(f"#le{i}")
    if set(kept) != set(stored):
        expression.names["#ls"] = layout.LINK_SET
        expression.values[":lids"] = {"SS": sorted(kept)}
        expression.sets.append("#ls = :lids")
    if state is not None and kept:
        state[layout.LINK_SET] = {"SS": sorted(kept)}
        state.update({layout.LINK_PREFIX + short_id: {"N": str(merged[short_id])} for short_id in kept})


def _set_link(expression, i, short_id, total):
    expression.names[f"#l{i}"] = layout.LINK_PREFIX + short_id
    expression.values[f":l{i}"] = {"N": str(total)}
    expression.sets.append(f"#l{i} = :l{i}")
