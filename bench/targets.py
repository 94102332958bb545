"""Every benchmark target as a pure function: a results record in, met or not met with the reason out.

A record is the plain data a benchmark's `measure()` returns (bench/record.py stores it in
results/bench.json). Nothing here measures, reads a file or prints: each function compares
figures of the record with a stated threshold, so each can be tested with a hand-made record
that meets it and one that does not (tests/test_bench_targets.py).
"""

from dataclasses import dataclass

from bench.report import number, times

# Thresholds, each stated once. The issue on counting set most of them; the fixed-cost ones are ours.
COLD_START_RATIO = 0.6  # ours ÷ the recipe's, an earlier issue's target
HOT_LINK_WCU = 10  # write units per second on any key of the hot link: 100× under the 1,000 limit
KEY_WRITE_LIMIT, KEY_READ_LIMIT = 1000, 3000  # AWS's per-partition-key limits, units per second
KEY_SHARE = 0.1  # no key above 10% of its limits when clicks are spread
TABLE_WRITE_LIMIT = 40_000  # the default on-demand table limit, write units per second
TABLE_SHARE = 0.5
UNITS_PER_CLICK = 2.0  # item write units per click spread thin, indexes included (claims stated beside)
COST_HOT, COST_SPREAD = 0.7, 1.3  # ours ÷ the recipe's, per million redirects
FIXED_MONTHLY_USD = 20.0  # what ours may cost a month before the first redirect
BREAK_EVEN_MILLIONS = 100.0  # a hot link pays the fixed costs back within this many redirects a month
BURST_KEY_SHARE = 0.5  # the busiest index key under half its limit at the stated create rate
STREAM_READ_CALLS = {"GetShardIterator", "GetRecords"}  # what reading records back from the stream takes
UNIQUES_EXTRA_UNITS = 1.0  # extra write units per click that unique visitors may cost, spread thin
HOT_ITEMS_PER_BATCH = 3  # a hot link's batch writes its counter, its stats item and the day's rollup, once each
SKETCH_ERROR = 0.02  # the sketch's count within 2% at the largest number of visitors measured


@dataclass
class Target:
    """One target's verdict: what is asked, what was measured, met or not (None: not measured), and why."""

    what: str
    measured: str
    met: bool | None
    reason: str | None = None

    def line(self):
        """The target as BENCHMARKS.md prints it."""
        verdict = {True: "met", False: "**NOT met**", None: "not measured"}[self.met]
        line = f"{self.what}: {self.measured} — {verdict}"
        return line + (f" ({self.reason})." if self.reason else ".")


# --- 1. Cold start ---------------------------------------------------------------------------
def cold_start_ratio(record):
    """Ours ÷ the recipe's cold start, fresh interpreter to first response (medians)."""
    what = f"Cold start ≤ {COLD_START_RATIO}× the recipe's (an earlier issue's target)"
    ratio = record.get("ratio_total")
    if ratio is None:
        return Target(what, "the recipe's handler was not found", None)
    met = ratio <= COLD_START_RATIO
    return Target(
        what,
        f"{times(ratio)} (per alternating pair: {times(record['paired_ratio']['median'])})",
        met,
        None if met else "importing botocore alone takes about half the recipe's whole cold start; see the breakdown",
    )


# --- 2. Warm redirect ------------------------------------------------------------------------
def request_counts(result):
    """'1 read, 0 writes' for a scenario's requests per redirect."""
    reads, writes = result["reads_per_redirect"], result["writes_per_redirect"]
    return f"{reads:g} read{'' if reads == 1 else 's'}, {writes:g} write{'' if writes == 1 else 's'}"


def warm_hot_path(record, backend):
    """No write on the redirect path, one GetItem on a cache miss and no request on a hit, on one backend."""
    what = f"The redirect hot path on {backend}: no write, 1 GetItem on a miss, 0 requests on a hit"
    result = record["backends"][backend]
    if isinstance(result, str):
        return Target(what, result, None)
    hit, miss, recipe = result["ours_hit"], result["ours_miss"], result.get("recipe")
    met = hit["reads_per_redirect"] == hit["writes_per_redirect"] == 0
    met = met and miss["reads_per_redirect"] == 1 and miss["writes_per_redirect"] == 0
    measured = f"hit: {request_counts(hit)}; miss: {request_counts(miss)}"
    if recipe:
        measured += f"; the recipe made {request_counts(recipe)}"
    if "hashed" in result:  # the redirect had the day's salt: the timed path is the one that hashes the visitor
        measured += "; with the day's salt, every click line carried a visitor hash" if result["hashed"] else (
            "; with the day's salt, but click lines carried NO visitor hash")
        met = met and result["hashed"]
    return Target(what, measured, met)


# --- 3. Hot link -----------------------------------------------------------------------------
def hot_link_keys(record):
    """Peak write units in one second on the hot link's counter and stats keys."""
    peak = record["peak_wcu"]
    met = max(peak["counter"], peak["stats"]) <= HOT_LINK_WCU
    return Target(
        f"Hot link, write units/s on the link's partition keys ≤ {HOT_LINK_WCU}",
        f"counter {number(peak['counter'], 1)}, stats {number(peak['stats'], 1)} in the peak second"
        f" (each stream record's claim: {number(peak['claims'], 1)} on its own key)",
        met,
    )


def hot_link_bounds(record):
    """The stats key's write units per second once forged referrers have filled its item to the bounds."""
    bounds = record["bounds"]
    met = bounds["units_per_second"] <= HOT_LINK_WCU
    return Target(
        f"Hot link, the same with the stats item at its bounds (forged 251-character referrers) ≤ {HOT_LINK_WCU}",
        f"stats {number(bounds['units_per_second'], 1)} units/s ({number(bounds['units_per_batch'])} units per batch,"
        f" item {number(bounds['item_bytes'] / 1024, 1)} KB)",
        met,
        None if met else "100 referrer hosts of up to 253 characters, each stored twice (set member and counter name),"
        " make a ~50 KB item, and once the set is full each batch's first attempt fails its condition and is written"
        " again",
    )


def hot_link_index(record):
    """Peak write units in one second on any index key while the link is hot."""
    index = record["peak_wcu"]["index"]
    return Target(f"Hot link, write units/s on any index key ≤ {HOT_LINK_WCU}", number(index, 1), index <= HOT_LINK_WCU)


def hot_link_conflicts(record):
    """No transaction (which a concurrent writer can cancel) and no batch in the DLQ."""
    transactions, dlq = record["transactions"], record["ours"]["dlq"]
    return Target(
        "Hot link, no write that a conflict can cancel, and 0 batches in the DLQ",
        f"{'transactions used' if transactions else 'no transactions'}; DLQ {dlq}",
        not transactions and dlq == 0,
    )


# --- 4. Spread -------------------------------------------------------------------------------
def spread_keys(record):
    """No partition key above 10% of its write and read limits with clicks spread over many links."""
    zipf = record["zipf"]
    write_bound, read_bound = KEY_WRITE_LIMIT * KEY_SHARE, KEY_READ_LIMIT * KEY_SHARE
    return Target(
        f"Spread, no partition key above {KEY_SHARE:.0%} of its limits (≤ {write_bound:,.0f} write units/s,"
        f" ≤ {read_bound:,.0f} read units/s)",
        f"busiest key {number(zipf['max_pk_units'], 1)} write units in one second; reads: a link at most"
        f" {number(record['link_read_units_per_second'], 1)} units/s (one GetItem per container per"
        f" {zipf['cache_seconds']:g} s cache window), the aggregator {number(record['aggregator_read_units'], 1)}",
        zipf["max_pk_units"] <= write_bound and record["link_read_units_per_second"] <= read_bound,
    )


def spread_index(record):
    """No index key above 10% of its write limit with clicks spread over many links."""
    units = record["zipf"]["max_index_units"]
    bound = KEY_WRITE_LIMIT * KEY_SHARE
    return Target(f"Spread, no index key above {KEY_SHARE:.0%} of its limit (≤ {bound:,.0f} write units/s)",
                  number(units, 1), units <= bound)


def spread_table(record):
    """The table's write units per second under half its default on-demand limit."""
    bound = TABLE_WRITE_LIMIT * TABLE_SHARE
    return Target(f"Spread, the table's total below {bound:,.0f} write units/s",
                  f"{number(record['table_rate'])} units/s", record["table_rate"] < bound)


def spread_keeps_up(record):
    """The deployed stream (ClickStreamShards' default) applies a window's clicks within the window."""
    keep = record["keeping_up"]
    shards, seconds, window = keep["deployed_shards"], keep["deployed_batch_seconds"], keep["window"]
    met = seconds <= window
    return Target(
        "Spread, the aggregator keeps up as deployed: each shard's batch applied within its batching window (not in"
        " the issue's list; the rates above assume it)",
        f"ClickStreamShards = {shards} (the template's default): {number(seconds, 1)} s a batch against a"
        f" {window:g} s window at {keep['rate']:,} clicks/s spread over many links (modelled)",
        met,
        None if met else f"the deployed stream falls behind at this rate: it takes {keep['shards_needed']} shards"
        f" ({number(keep['needed_batch_seconds'], 1)} s a batch), and one shard keeps up with about"
        f" {number(keep['clicks_per_shard'])} clicks/s spread thin",
    )


def spread_batch_reads(record):
    """In steady state no batch reads: no record read back from the stream, and no DynamoDB read by the aggregator
    but the stats retention setting's GetItem, at most once per container every 5 minutes (issue 18)."""
    calls = record["aggregator_stream_calls"]
    record_reads = sum(n for op, n in calls.items() if op in STREAM_READ_CALLS)
    units = record["aggregator_read_units"]
    runs = [record[name] for name in ("zipf", "thin") if isinstance(record.get(name), dict)]
    ops = [run.get("aggregator_ops", {}) for run in runs]
    setting_reads = sum(op.get("GetItem", 0) for op in ops)
    other_reads = sum(n for op in ops for name, n in op.items() if name in ("BatchGetItem", "Query", "Scan"))
    met = record_reads == 0 and other_reads == 0 and setting_reads <= len(runs) and units <= setting_reads
    return Target(
        "Spread, in steady state no batch reads the stream or the table (no checkpoint, no gap check; the stats"
        " retention setting read once per container)",
        f"{record_reads} GetShardIterator/GetRecords call(s), {setting_reads} read(s) of the retention setting and"
        f" {other_reads} other read(s) by the aggregator ({number(units, 1)} read units) over {record['batches']}"
        f" batch(es) in {len(runs)} container(s); its Kinesis calls: "
        + (", ".join(f"{op} {n}" for op, n in sorted(calls.items())) or "none")
        + " (the stream's life, once per container and minute)",
        met,
    )


def spread_units_per_click(record):
    """Write units per click spread thin, indexes included, as measured: the items ≤ 2.0, the claims stated beside them."""
    thin = record["thin"]
    items, claims = record["thin_item_units_per_click"], record["thin_claim_units_per_click"]
    rollups = record.get("thin_rollup_units_per_click")
    met = items <= UNITS_PER_CLICK
    return Target(
        f"Write units per click spread thin, indexes included, with per-day stats kept: ≤ {UNITS_PER_CLICK} + claims"
        + (" + the daily rollups" if rollups is not None else ""),
        f"{number(items, 4)} for the items"
        + (f" + {number(rollups, 4)} for the daily rollups (one write per day per batch)" if rollups is not None else "")
        + f" + {number(claims, 4)} for the claims (one per stream record:"
        f" {number(thin['records'])} for {thin['clicks']:,} clicks) = {number(record['thin_units_per_click'], 4)}"
        f" in a {thin['clicks']:,}-click batch",
        met,
        None if met else "an item write took more than 1 unit: an item grew past 1 KB",
    )


# --- 5. Shards -------------------------------------------------------------------------------
def _per_shard_count(record, field, digits=4):
    return "; ".join(f"{run['shards']} shard(s): {number(run[field], digits)}" for run in record["runs"])


def shards_units_per_click(record):
    """Item write units per click spread thin ≤ 2.0 at every shard count measured, every shard touching every item."""
    runs = record["runs"]
    met = bool(runs) and all(run["item_units_per_click"] <= UNITS_PER_CLICK for run in runs)
    return Target(
        f"Write units per click spread thin, every shard touching every item, at "
        f"{', '.join(str(run['shards']) for run in runs)} shards: ≤ {UNITS_PER_CLICK} + claims",
        "items " + _per_shard_count(record, "item_units_per_click")
        + "; claims " + _per_shard_count(record, "claim_units_per_click")
        + ("; daily rollups " + _per_shard_count(record, "rollup_units_per_click")
           if all("rollup_units_per_click" in run for run in runs) else ""),
        met,
        None if met else "the marks grew an item past 1 KB at that shard count",
    )


def shards_retry(record):
    """A batch retried in the container where it failed: item units per click still ≤ 2.0, and every click counted once."""
    runs = record["runs"]
    cheap = all(run["with_retry_item_units_per_click"] <= UNITS_PER_CLICK for run in runs)
    exact = all(run["exact"] for run in runs)
    reasons = []
    if not cheap:
        reasons.append("the retry paid again for items its failed attempt had applied")
    if not exact:
        reasons.append("a counter does not hold exactly the clicks sent")
    return Target(
        f"A retried batch (one write failed, the rest applied) counts exactly, its item writes with the retry's ≤"
        f" {UNITS_PER_CLICK} per click",
        "items with the retry " + _per_shard_count(record, "with_retry_item_units_per_click")
        + "; the retry's reads per click " + _per_shard_count(record, "retry_read_units_per_click")
        + f"; counted exactly: {'yes' if exact else 'NO'}",
        bool(runs) and cheap and exact,
        "; ".join(reasons) or None,
    )


# --- 6. Backlog ------------------------------------------------------------------------------
def backlog_drains(record):
    """The backlog is drained exactly, and every call makes progress: one chunk fits the function's timeout (modelled)."""
    drained, expected = record["clicks"], record["expected_clicks"]
    seconds, timeout = record["chunk_seconds"], record["timeout_seconds"]
    exact, fits = drained == expected, seconds <= timeout / 2
    reasons = []
    if not exact:
        reasons.append("the backlog was not applied exactly")
    if not fits:
        reasons.append(
            "a call always applies its first chunk: a chunk that needs more than half the timeout can time out half-way,"
            " and the batch is retried from where it was; lower CHUNK_CLICKS"
        )
    return Target(
        "A backlog drains through ordinary batches, exactly, and every call makes progress: one chunk takes at most half"
        " the aggregator's timeout",
        f"{drained:,} of {expected:,} clicks applied; a chunk of {record['chunk_clicks']:,} clicks takes"
        f" {number(seconds)} s against {timeout} s; the mapping's largest batch ({record['full_batch_clicks']:,} clicks,"
        f" {record['deployed_batch_size']:,} records) takes {record['full_batch_calls']:,} calls (modelled on Lambda at"
        f" {number(record['lambda_clicks_per_second'])} clicks/s)",
        exact and fits,
        "; ".join(reasons) or None,
    )


# --- 7. Cost ---------------------------------------------------------------------------------
def cost_hot(record):
    """Cost per million redirects on a hot link, ours ÷ the recipe's."""
    what = f"Cost per million redirects on a hot link ≤ {COST_HOT}× the recipe's"
    ratio = record.get("ratio_hot")
    if ratio is None:
        return Target(what, "the recipe's handler was not found", None)
    return Target(what, f"{times(ratio)} (modelled)", ratio <= COST_HOT)


def cost_spread(record):
    """Cost per million redirects spread thin, ours ÷ the recipe's."""
    what = f"Cost per million redirects spread thin ≤ {COST_SPREAD}× the recipe's"
    ratio = record.get("ratio_spread")
    if ratio is None:
        return Target(what, "the recipe's handler was not found", None)
    met = ratio <= COST_SPREAD
    return Target(what, f"{times(ratio)} (modelled)", met,
                  None if met else "two item writes per click cost more than the recipe's one")


def cost_at_rate(record):
    """Cost per million clicks at the spread rate, on the shards it needs, ours ÷ the recipe's."""
    at_rate = record.get("at_rate")
    what = f"Cost per million clicks at the spread rate, on the shards it needs, ≤ {COST_SPREAD}× the recipe's"
    if not at_rate:
        return Target(what, "the shard count the rate needs was not measured", None)
    if at_rate["ratio"] is None:
        return Target(what, "the recipe's handler was not found", None)
    met = at_rate["ratio"] <= COST_SPREAD
    return Target(
        what,
        f"${at_rate['per_million']:,.2f} at {at_rate['rate']:,} clicks/s on {at_rate['shards']} shard(s):"
        f" {times(at_rate['ratio'])} (modelled)",
        met,
        None if met else "at that shard count every item carries more marks, and the shards' hours add to it",
    )


def cost_fixed(record):
    """The fixed monthly costs, pricing the deployed stream, within budget and paid back on a hot link."""
    what = (
        f"Fixed monthly costs priced for the deployed stack ≤ ${FIXED_MONTHLY_USD:,.0f} a month, and paid back within"
        f" {BREAK_EVEN_MILLIONS:,.0f} million redirects a month on a hot link"
    )
    fixed, shards = record["fixed_total"], record["shards_priced"]
    break_even = record.get("break_even") or {}
    hot = break_even.get("ours_hot")
    measured = (
        f"${fixed:,.2f} a month ({shards} shard(s) priced, {record['shards_deployed']} deployed); break-even hot link: "
        + (f"{number(hot, 1)} million/month" if hot else "never")
        + ", spread thin: "
        + (f"{number(break_even['ours_spread'], 1)} million/month" if break_even.get("ours_spread") else "never")
    )
    if not record.get("have_recipe"):
        return Target(what, measured + "; no recipe to break even against", None)
    reasons = []
    if shards != record["shards_deployed"]:
        reasons.append("the table prices a stream other than the deployed one")
    if fixed > FIXED_MONTHLY_USD:
        reasons.append(f"${fixed - FIXED_MONTHLY_USD:,.2f} a month over budget")
    if hot is None or hot > BREAK_EVEN_MILLIONS:
        reasons.append("a hot link does not pay the fixed costs back within the stated volume")
    return Target(what, measured, not reasons, "; ".join(reasons) or None)


# --- 8. Admin list ---------------------------------------------------------------------------
def admin_list_bounded(record):
    """The list page costs the same bounded requests and items at every size, newest first, counts right."""
    results = record["results"]
    requests = sorted({r["ours"]["requests"] for r in results})
    items = max(r["ours"]["items_read"] for r in results)
    right = all(r["counts_ok"] and r["newest_ok"] for r in results)
    return Target(
        "The admin list costs a bounded number of requests per page, whatever the number of links, and shows the counts",
        f"{', '.join(number(r) for r in requests)} requests and ≤ {number(items)} items read per page at"
        f" {', '.join(format(r['n'], ',') for r in results)} links; counts right: {'yes' if right else 'NO'}",
        len(requests) == 1 and items <= record["item_bound"] and right,
    )


def admin_burst(record):
    """A burst of creates keeps the busiest index key under half its limit at the stated create rate."""
    burst = record["burst"]
    met = record["at_stated"] <= KEY_WRITE_LIMIT * BURST_KEY_SHARE
    return Target(
        f"Creating {burst['creates']:,} links in a burst hot-keys no index",
        f"busiest `{record['index']}` key {record['share']:.1%} of the writes: {number(record['at_stated'])} units/s at"
        f" {record['stated_rate']:,} creates/s (limit 1,000); each link's own key took at most"
        f" {number(burst['max_table_pk_units'])} unit",
        met,
        f"judged as the busiest key under half its limit at {record['stated_rate']:,} creates/s",
    )


# --- Search and filters ----------------------------------------------------------------------
SEARCH_REQUESTS = 24  # a 3-match search or filter: 16 shard Queries, 2 BatchGetItems, a few refills


def search_bounded(record):
    """A search or filter with 3 matches costs the same few requests at every size, and finds exactly them."""
    rows = [q for r in record["results"] for q in r["queries"].values()]
    three = [[r["queries"][name]["requests"] for r in record["results"]]
             for name, q in record["results"][0]["queries"].items() if q["three"]]
    most = max((max(counts) for counts in three), default=0)
    same = all(len(set(counts)) == 1 for counts in three)
    right = all(q["ok"] for q in rows)
    return Target(
        f"A search or filter matching {record['matches']} links costs requests in proportion to its results",
        f"at most {number(most)} requests at {', '.join(format(r['n'], ',') for r in record['results'])} links"
        f" ({'the same at every size' if same else 'NOT the same at every size'}); right results: {'yes' if right else 'NO'}",
        bool(three) and same and most <= SEARCH_REQUESTS and right,
    )


def search_busiest_key(record):
    """An import of 10,000 links sharing common words keeps the busiest index key under half its limit."""
    model = record["model"]
    return Target(
        f"Importing {model['links']:,} links that share www, com and the company's name at {model['rate']:,}/s"
        " hot-keys no search index key",
        f"busiest `{model['top_key']}`: {number(model['top_wcu_per_second'])} write units/s (limit 1,000)",
        model["top_wcu_per_second"] <= KEY_WRITE_LIMIT * BURST_KEY_SHARE,
        "judged as the busiest key under half its limit",
    )


# --- 9. End to end ---------------------------------------------------------------------------
def end_to_end_counted(record):
    """Every redirect served over HTTP is counted exactly once, nothing in the DLQ."""
    ours = record["ours"]
    counted, served = ours["clicks_counted"], ours["redirects_served"]
    met = counted == served and ours["dlq"] == 0
    if met:
        reason = None
    elif counted > served:
        reason = "more clicks counted than redirects served: something counted twice"
    elif ours["dlq"]:
        reason = "batches went to the failure destination"
    else:
        reason = "clicks were lost between the redirect's output and the table (log subscription, stream or mapping)"
    return Target(
        "End to end, every redirect served is counted once (log subscription → stream → mapping → aggregator)",
        f"{counted:,} counted for {served:,} served; DLQ {ours['dlq']}",
        met,
        reason,
    )


# --- Analytics (issue 18) ----------------------------------------------------------------------
def analytics_uniques_units(record):
    """Unique visitors cost at most 1 extra write unit per click spread thin (measured: on minus off)."""
    w = record["writes"]
    extra = w["extra_thin"]
    met = extra <= UNIQUES_EXTRA_UNITS
    return Target(
        f"Unique visitors add at most {UNIQUES_EXTRA_UNITS:g} write unit per click spread thin",
        f"{number(w['thin_on']['units_per_click'], 4)} with, {number(w['thin_off']['units_per_click'], 4)} without:"
        f" {number(extra, 4)} extra (hot link: {number(w['extra_hot'], 4)})",
        met,
        None if met else "a visitor hash grew an item past a 1 KB unit, or added a write",
    )


def analytics_hot_writes(record):
    """On a hot link every batch still writes each of its items once: counter, stats and rollup."""
    w = record["writes"]
    cases = {"uniques off": w["hot_off"], "uniques on": w["hot_on"], "past 100 visitors": w["hot_sketch"]}
    # Past 100 visitors a batch of new visitors also folds into the stats' and the rollup's sketch items.
    items = {"uniques off": HOT_ITEMS_PER_BATCH, "uniques on": HOT_ITEMS_PER_BATCH,
             "past 100 visitors": HOT_ITEMS_PER_BATCH + 2}
    met = all(c["item_writes"] == items[name] * c["batches"] and c["batches"] > 0 and not c["failed_conditions"]
              for name, c in cases.items())
    return Target(
        f"Hot link, still one write per item per batch ({HOT_ITEMS_PER_BATCH}: counter, stats, rollup; past 100"
        " visitors also the two sketch items)",
        "; ".join(f"{name}: {c['item_writes']} item writes in {c['batches']} batches"
                  f" ({c['failed_conditions']} failed condition(s))" for name, c in cases.items()),
        met,
        None if met else "a batch wrote an item more than once: a first attempt failed its condition (charged) and"
        " was written again; see the section's note",
    )


def analytics_dashboard_requests(record):
    """The home dashboard makes the same requests at every number of links: 2 × days + 1."""
    dash = record["dashboard"]
    bound = 2 * dash["days"] + 1
    counts = sorted({n for size in dash["sizes"] for n in size["requests"]})
    met = counts == [bound]
    return Target(
        f"The home dashboard ({dash['days']} days) makes the same {bound} requests (2 × days + 1) at any number of"
        " links",
        ", ".join(f"{size['links']:,} links: {', '.join(str(n) for n in size['requests'])}" for size in dash["sizes"]),
        met,
    )


def analytics_sketch_error(record):
    """The visitor count is exact up to EXACT_MAX and within 2% at the largest number measured, merged or not."""
    runs = sorted(record["sketch"]["runs"], key=lambda r: r["visitors"])
    exact = [r for r in runs if r["visitors"] <= record["sketch"]["exact_max"]]
    largest = runs[-1]
    worst = max(abs(largest["error"]), abs(largest["merged_error"]))
    is_exact = bool(exact) and all(r["estimate"] == r["merged_estimate"] == r["visitors"] for r in exact)
    met = is_exact and worst <= SKETCH_ERROR
    return Target(
        f"Unique visitors exact up to {record['sketch']['exact_max']}, within {SKETCH_ERROR:.0%} at"
        f" {largest['visitors']:,} (one item, and merged parts)",
        "; ".join(f"{r['visitors']:,}: {r['error']:+.2%} (merged {r['merged_error']:+.2%})" for r in runs),
        met,
    )


def verdict_figures(key, record):
    """Each target's verdict as a quotable figure, `targets.<function>`: "met", "NOT met" or "not measured"."""
    out = {}
    for check in BY_BENCHMARK.get(key, ()):
        met = check(record).met
        text = {True: "met", False: "NOT met", None: "not measured"}[met]
        out[f"targets.{check.__name__}"] = {"text": text, "value": met, "basis": BASIS.get(check, "measured")}
    return out


def evaluate(key, record):
    """Every target of benchmark `key` on its record, in report order."""
    if key == "warm":
        return [warm_hot_path(record, backend) for backend in record["backends"]]
    return [check(record) for check in BY_BENCHMARK.get(key, ())]


BY_BENCHMARK = {
    "cold_start": (cold_start_ratio,),
    "hot_link": (hot_link_keys, hot_link_bounds, hot_link_index, hot_link_conflicts),
    "spread": (spread_keys, spread_index, spread_table, spread_keeps_up, spread_batch_reads, spread_units_per_click),
    "shards": (shards_units_per_click, shards_retry),
    "backlog": (backlog_drains,),
    "cost": (cost_hot, cost_spread, cost_at_rate, cost_fixed),
    "admin_list": (admin_list_bounded, admin_burst),
    "search": (search_bounded, search_busiest_key),
    "end_to_end": (end_to_end_counted,),
    "analytics": (analytics_uniques_units, analytics_hot_writes, analytics_dashboard_requests, analytics_sketch_error),
}

# Verdicts that rest on a model (prices, or Lambda durations scaled from CPU measured here).
BASIS = {
    spread_keeps_up: "modelled", backlog_drains: "modelled",
    cost_hot: "modelled", cost_spread: "modelled", cost_at_rate: "modelled", cost_fixed: "modelled",
    search_busiest_key: "modelled",
}
