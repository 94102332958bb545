"""Every benchmark target can fail: each target function on a record that meets it and one that does not.

The records are hand-made, holding only the figures each target reads, so these tests run in
milliseconds with no backend. The last tests check that BENCHMARKS.md is exactly what the
stored results file renders, and that the README quotes only figures that file holds.
"""

import copy
import json
import re
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench import targets

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "bench.json"


def verdicts(check, met_record, missed_record):
    """The target's result on both records."""
    return check(met_record), check(missed_record)


def changed(record, path, value):
    """A deep copy of `record` with the value at `path` (a tuple of keys) replaced."""
    out = copy.deepcopy(record)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def assert_met_then_missed(check, record, path, missed_value):
    met, missed = verdicts(check, record, changed(record, path, missed_value))
    assert met.met is True, met.line()
    assert missed.met is False, missed.line()
    assert "— **NOT met**" in missed.line() and "— met" in met.line()


# --- 1. Cold start ---------------------------------------------------------------------------
COLD = {"ratio_total": 0.55, "paired_ratio": {"median": 0.56}}


def test_cold_start_ratio():
    assert_met_then_missed(targets.cold_start_ratio, COLD, ("ratio_total",), 0.76)


def test_cold_start_without_the_recipe_is_not_measured():
    assert targets.cold_start_ratio({"ratio_total": None}).met is None


# --- 2. Warm redirect ------------------------------------------------------------------------
def _scenario(reads, writes):
    return {"reads_per_redirect": reads, "writes_per_redirect": writes}


WARM = {"backends": {"stub": {"ours_hit": _scenario(0, 0), "ours_miss": _scenario(1, 0), "recipe": _scenario(1, 1)}}}


def test_warm_hot_path():
    check = lambda record: targets.warm_hot_path(record, "stub")  # noqa: E731
    assert_met_then_missed(check, WARM, ("backends", "stub", "ours_hit"), _scenario(0.01, 0))
    assert check(changed(WARM, ("backends", "stub", "ours_miss"), _scenario(1, 1))).met is False


def test_warm_evaluates_every_backend_and_a_skipped_one_is_not_measured():
    record = changed(WARM, ("backends", "local"), "DynamoDB Local could not start")
    stub, local = targets.evaluate("warm", record)
    assert stub.met is True and local.met is None


# --- 3. Hot link -----------------------------------------------------------------------------
HOT = {
    "peak_wcu": {"counter": 1.0, "stats": 1.0, "claims": 1.0, "index": 0.0},
    "bounds": {"units_per_second": 8.0, "units_per_batch": 40, "item_bytes": 24_000},
    "transactions": False,
    "ours": {"dlq": 0},
}


def test_hot_link_keys():
    assert_met_then_missed(targets.hot_link_keys, HOT, ("peak_wcu", "stats"), 10.5)
    assert targets.hot_link_keys(changed(HOT, ("peak_wcu", "counter"), 11)).met is False


def test_hot_link_bounds():
    assert_met_then_missed(targets.hot_link_bounds, HOT, ("bounds", "units_per_second"), 10.2)


def test_hot_link_index():
    assert_met_then_missed(targets.hot_link_index, HOT, ("peak_wcu", "index"), 10.1)


def test_hot_link_conflicts():
    assert_met_then_missed(targets.hot_link_conflicts, HOT, ("transactions",), True)
    assert targets.hot_link_conflicts(changed(HOT, ("ours", "dlq"), 1)).met is False


# --- 4. Spread -------------------------------------------------------------------------------
SPREAD = {
    "zipf": {"max_pk_units": 1.0, "max_index_units": 0.0, "cache_seconds": 10, "rate": 10_000},
    "thin": {"clicks": 2000, "batches": 1, "records": 50},
    "table_rate": 5994.0,
    "link_read_units_per_second": 2.5,
    "aggregator_read_units": 0.0,
    "aggregator_stream_calls": {"DescribeStreamSummary": 2},
    "batches": 2,
    "thin_units_per_click": 2.025,
    "thin_item_units_per_click": 2.0,
    "thin_claim_units_per_click": 0.025,
    "claim_units_per_click_at_rate": 0.005,
    "units_per_click_at_rate": 2.005,
    "keeping_up": {
        "window": 5,
        "rate": 10_000,
        "deployed_shards": 1,
        "deployed_batch_seconds": 4.9,
        "shards_needed": 1,
        "needed_batch_seconds": 4.9,
        "clicks_per_shard": 10_000,
    },
}


def test_spread_keys():
    assert_met_then_missed(targets.spread_keys, SPREAD, ("zipf", "max_pk_units"), 101)
    assert targets.spread_keys(changed(SPREAD, ("link_read_units_per_second",), 301)).met is False


def test_spread_index():
    assert_met_then_missed(targets.spread_index, SPREAD, ("zipf", "max_index_units"), 100.5)


def test_spread_table():
    assert_met_then_missed(targets.spread_table, SPREAD, ("table_rate",), 20_000)


def test_spread_keeps_up_judges_the_deployed_stream_not_the_shards_that_would_pass():
    # The audit's case: one deployed shard takes 39.5 s a 5 s window, 8 shards would keep up.
    behind = changed(SPREAD, ("keeping_up",), SPREAD["keeping_up"] | {
        "deployed_batch_seconds": 39.5, "shards_needed": 8, "needed_batch_seconds": 5.0, "clicks_per_shard": 1250})
    met, missed = targets.spread_keeps_up(SPREAD), targets.spread_keeps_up(behind)
    assert met.met is True
    assert missed.met is False and "ClickStreamShards = 1" in missed.line() and "8 shards" in missed.line()


def test_spread_batch_reads():
    assert_met_then_missed(targets.spread_batch_reads, SPREAD, ("aggregator_read_units",), 1.0)
    stream_read = targets.spread_batch_reads(changed(SPREAD, ("aggregator_stream_calls",), {"GetRecords": 1}))
    assert stream_read.met is False and "1 GetShardIterator/GetRecords" in stream_read.line()
    # The stats retention setting, once per run's container, is the one read allowed; any other read is not.
    setting = changed(changed(SPREAD, ("aggregator_read_units",), 1.0), ("thin",), {**SPREAD["thin"], "aggregator_ops": {"GetItem": 1}})
    assert targets.spread_batch_reads(setting).met is True
    other = changed(setting, ("thin",), {**SPREAD["thin"], "aggregator_ops": {"GetItem": 1, "BatchGetItem": 1}})
    assert targets.spread_batch_reads(other).met is False


def test_spread_units_per_click_is_judged_unrounded_on_the_items_with_the_claims_beside_them():
    # The audit's case: 2.0005 measured must not round to 2.0; the claims (2.025 in all) are stated, not judged.
    assert_met_then_missed(targets.spread_units_per_click, SPREAD, ("thin_item_units_per_click",), 2.0005)
    missed = targets.spread_units_per_click(changed(SPREAD, ("thin_item_units_per_click",), 2.0005))
    assert "2.0005" in missed.line()
    met = targets.spread_units_per_click(SPREAD).line()
    assert "0.0250 for the claims" in met and "= 2.0250" in met


# --- 5. Shards -------------------------------------------------------------------------------
def _shard_run(shards, items=2.0, claims=0.005, with_retry=2.0, exact=True):
    return {"shards": shards, "item_units_per_click": items, "claim_units_per_click": claims,
            "with_retry_item_units_per_click": with_retry, "retry_read_units_per_click": 2.005, "exact": exact}


SHARDS = {"runs": [_shard_run(1), _shard_run(8), _shard_run(16)]}


def test_shards_units_per_click_judges_every_shard_count():
    assert_met_then_missed(targets.shards_units_per_click, SHARDS, ("runs", 2), _shard_run(16, items=2.0024))
    line = targets.shards_units_per_click(SHARDS).line()
    assert "16 shard(s): 2.0000" in line and "claims 1 shard(s): 0.0050" in line
    assert targets.shards_units_per_click({"runs": []}).met is False


def test_shards_retry_must_stay_cheap_and_exact():
    assert_met_then_missed(targets.shards_retry, SHARDS, ("runs", 1), _shard_run(8, with_retry=3.99))
    twice = targets.shards_retry(changed(SHARDS, ("runs", 0), _shard_run(1, exact=False)))
    assert twice.met is False and "exactly" in twice.reason


# --- 6. Backlog ------------------------------------------------------------------------------
BACKLOG = {"clicks": 30_000, "expected_clicks": 30_000, "full_batch_clicks": 200_000, "deployed_batch_size": 1000,
           "full_batch_seconds": 100.0, "timeout_seconds": 120, "lambda_clicks_per_second": 2000.0,
           "chunk_clicks": 20_000, "chunk_seconds": 10.0, "full_batch_calls": 1}


def test_backlog_drains():
    assert_met_then_missed(targets.backlog_drains, BACKLOG, ("chunk_seconds",), 60.5)
    stalls = targets.backlog_drains(changed(BACKLOG, ("chunk_seconds",), 300.0))
    assert "time out half-way" in stalls.reason and "300 s against 120 s" in stalls.line()
    lost = targets.backlog_drains(changed(BACKLOG, ("clicks",), 29_999))
    assert lost.met is False and "exactly" in lost.reason


# --- 7. Cost ---------------------------------------------------------------------------------
COST = {
    "have_recipe": True,
    "ratio_hot": 0.61,
    "ratio_spread": 1.28,
    "fixed_total": 15.62,
    "shards_priced": 1,
    "shards_deployed": 1,
    "break_even": {"ours_hot": 18.9, "ours_spread": None},
    "at_rate": {"rate": 10_000, "shards": 11, "per_million": 2.75, "ratio": 1.29},
}


def test_cost_hot():
    assert_met_then_missed(targets.cost_hot, COST, ("ratio_hot",), 0.71)


def test_cost_spread():
    assert_met_then_missed(targets.cost_spread, COST, ("ratio_spread",), 1.31)


def test_cost_at_rate():
    assert_met_then_missed(targets.cost_at_rate, COST, ("at_rate", "ratio"), 1.31)
    assert "on 11 shard(s)" in targets.cost_at_rate(COST).line()
    assert targets.cost_at_rate(changed(COST, ("at_rate",), None)).met is None
    assert targets.cost_at_rate(changed(COST, ("at_rate", "ratio"), None)).met is None


def test_cost_fixed_is_computed_from_the_record():
    assert_met_then_missed(targets.cost_fixed, COST, ("fixed_total",), 20.01)
    assert targets.cost_fixed(changed(COST, ("break_even", "ours_hot"), None)).met is False
    assert targets.cost_fixed(changed(COST, ("break_even", "ours_hot"), 100.1)).met is False
    assert targets.cost_fixed(changed(COST, ("shards_priced",), 8)).met is False
    assert targets.cost_fixed(changed(COST, ("have_recipe",), False)).met is None


# --- 8. Admin list ---------------------------------------------------------------------------
def _size(n, requests=9, items=458, ok=True):
    return {"n": n, "ours": {"requests": requests, "items_read": items}, "counts_ok": ok, "newest_ok": ok}


ADMIN = {
    "results": [_size(1000), _size(100_000)],
    "item_bound": 458,
    "burst": {"creates": 10_000, "max_table_pk_units": 1},
    "index": "by_list",
    "share": 0.13,
    "at_stated": 130.0,
    "stated_rate": 1000,
}


def test_admin_list_bounded():
    assert_met_then_missed(targets.admin_list_bounded, ADMIN, ("results", 1), _size(100_000, requests=10))
    assert targets.admin_list_bounded(changed(ADMIN, ("results", 1), _size(100_000, items=459))).met is False
    assert targets.admin_list_bounded(changed(ADMIN, ("results", 0), _size(1000, ok=False))).met is False


def test_admin_burst():
    assert_met_then_missed(targets.admin_burst, ADMIN, ("at_stated",), 501)


# --- 9. End to end ---------------------------------------------------------------------------
E2E = {"ours": {"clicks_counted": 52_523, "redirects_served": 52_523, "dlq": 0}}


def test_end_to_end_counted():
    assert_met_then_missed(targets.end_to_end_counted, E2E, ("ours", "clicks_counted"), 52_522)
    twice = targets.end_to_end_counted(changed(E2E, ("ours", "clicks_counted"), 52_524))
    assert twice.met is False and "counted twice" in twice.reason
    assert targets.end_to_end_counted(changed(E2E, ("ours", "dlq"), 1)).met is False


# --- 10. Search and filters -------------------------------------------------------------------
def _search_size(n, requests=18, ok=True):
    return {"n": n, "queries": {"word": {"requests": requests, "ok": ok, "three": True},
                                "common word": {"requests": 18, "ok": True, "three": False}}}


SEARCH = {
    "matches": 3,
    "results": [_search_size(1000), _search_size(100_000)],
    "model": {"links": 10_000, "rate": 1000, "top_key": "find#co#7", "top_wcu_per_second": 272.0},
}


def test_search_bounded():
    assert_met_then_missed(targets.search_bounded, SEARCH, ("results", 1), _search_size(100_000, requests=19))
    assert targets.search_bounded(changed(SEARCH, ("results", 0), _search_size(1000, ok=False))).met is False
    many = changed(SEARCH, ("results",), [_search_size(1000, requests=30), _search_size(100_000, requests=30)])
    assert targets.search_bounded(many).met is False


def test_search_busiest_key():
    assert_met_then_missed(targets.search_busiest_key, SEARCH, ("model", "top_wcu_per_second"), 501.0)


def test_warm_hot_path_with_a_salt_needs_every_click_line_hashed():
    check = lambda record: targets.warm_hot_path(record, "stub")  # noqa: E731
    assert_met_then_missed(check, changed(WARM, ("backends", "stub", "hashed"), True),
                           ("backends", "stub", "hashed"), False)


# --- Analytics -------------------------------------------------------------------------------
def _write_case(units_per_click, item_writes=3, batches=1, failed=0):
    return {"units_per_click": units_per_click, "item_writes": item_writes, "batches": batches,
            "failed_conditions": failed}


ANALYTICS = {
    "writes": {
        "thin_on": _write_case(2.03, 201), "thin_off": _write_case(2.02, 201),
        "hot_on": _write_case(0.05, 9, 3), "hot_off": _write_case(0.05, 9, 3), "hot_sketch": _write_case(0.1, 15, 3),
        "extra_thin": 0.01, "extra_hot": 0.0,
    },
    "dashboard": {"days": 30, "sizes": [{"links": 100, "requests": [61]}, {"links": 100_000, "requests": [61]}]},
    "sketch": {"exact_max": 100, "runs": [
        {"visitors": 100, "estimate": 100, "merged_estimate": 100, "error": 0.0, "merged_error": 0.0},
        {"visitors": 1_000_000, "estimate": 1_004_000, "merged_estimate": 996_000, "error": 0.004,
         "merged_error": -0.004},
    ]},
}


def test_analytics_uniques_units():
    assert_met_then_missed(targets.analytics_uniques_units, ANALYTICS, ("writes", "extra_thin"), 1.01)


def test_analytics_hot_writes():
    missed = _write_case(0.1, 17, 3, 2)  # two first attempts failed and written again
    assert_met_then_missed(targets.analytics_hot_writes, ANALYTICS, ("writes", "hot_sketch"), missed)
    assert targets.analytics_hot_writes(changed(ANALYTICS, ("writes", "hot_on", "item_writes"), 4)).met is False


def test_analytics_dashboard_requests():
    assert_met_then_missed(targets.analytics_dashboard_requests, ANALYTICS, ("dashboard", "sizes", 1, "requests"), [62])
    # The same at both sizes, but not the bound.
    over = changed(ANALYTICS, ("dashboard", "sizes", 0, "requests"), [70])
    over = changed(over, ("dashboard", "sizes", 1, "requests"), [70])
    assert targets.analytics_dashboard_requests(over).met is False


def test_analytics_sketch_error():
    assert_met_then_missed(targets.analytics_sketch_error, ANALYTICS, ("sketch", "runs", 1, "merged_error"), -0.021)
    assert targets.analytics_sketch_error(changed(ANALYTICS, ("sketch", "runs", 0, "merged_estimate"), 99)).met is False


def test_every_benchmark_with_targets_is_covered_here():
    """A new target function needs its own test above."""
    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    for checks in targets.BY_BENCHMARK.values():
        for check in checks:
            assert any(name.startswith(check.__name__) for name in tested), check.__name__


def test_verdicts_are_quotable_figures():
    met = targets.verdict_figures("spread", SPREAD)
    missed = targets.verdict_figures("spread", changed(SPREAD, ("thin_item_units_per_click",), 2.0005))
    assert met["targets.spread_units_per_click"] == {"text": "met", "value": True, "basis": "measured"}
    assert missed["targets.spread_units_per_click"]["text"] == "NOT met"
    assert met["targets.spread_keeps_up"]["basis"] == "modelled"


# --- The stored results ----------------------------------------------------------------------
def _stored():
    if not RESULTS.is_file():
        pytest.fail(f"{RESULTS.relative_to(ROOT)} is missing: run `make bench` and commit it")
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def test_benchmarks_md_is_what_the_stored_results_render():
    doc = _stored()
    assert (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8") == bench_main.render(doc), (
        "BENCHMARKS.md differs from results/bench.json: run `python -m bench --render` (or `make bench`)"
    )


def test_stored_figures_have_text_value_and_basis():
    figures = _stored()["figures"]
    assert figures
    for key, figure in figures.items():
        assert set(figure) == {"text", "value", "basis"}, key
        assert figure["basis"] in ("measured", "modelled", "counted"), key


def test_readme_quotes_only_stored_bench_figures():
    figures = _stored()["figures"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quoted = re.findall(r"<!--fig bench:([\w.]+)-->(.*?)<!--/fig-->", readme)
    assert quoted, "the README's benchmark table quotes no bench figure"
    for key, text in quoted:
        assert key in figures, f"README quotes bench:{key}, which results/bench.json does not hold"
        assert text == figures[key]["text"], f"README says {text!r} for bench:{key}, the results say {figures[key]['text']!r}"
