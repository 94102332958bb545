"""Smoke runs of every benchmark at tiny sizes, so `make bench` keeps working.

Each benchmark runs in its stages: its record (as results/bench.json stores it), its targets
judged on that record, its figures, and its section rendered from it. Assertions are on
structure, on counted requests and on DynamoDB's counted units, never on timings: a slow
machine must never fail this. The backends are the benchmark's own: the zero-latency stub,
DynamoDB Local in memory, and the local stack's Kinesis (moto).
"""

import os
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench import (
    admin_list, analytics, backlog, baseline, cold_start, cost, end_to_end, hot_link, record, report, search, shards, spread,
    targets, warm,
)
from bench.context import LINK, OUR_TABLE, RECIPE_TABLE, Context, Skip
from figures import BASES
from webapp.store import LIST_SHARDS

pytestmark = [pytest.mark.integration, pytest.mark.bench]
NO_RECIPE = "the recipe's handler is not next to the repo (../shared/seed, or BASELINE_HANDLER)"


@pytest.fixture
def recipe():
    """The recipe's handler is here: without it, skip, or fail when REQUIRE_BASELINE is set (CI sets it)."""
    if not baseline.available():
        if os.environ.get("REQUIRE_BASELINE"):
            pytest.fail(f"REQUIRE_BASELINE is set but {NO_RECIPE}: {baseline.baseline_path()}")
        pytest.skip(NO_RECIPE)
    return baseline.baseline_path()


has_recipe = pytest.mark.usefixtures("recipe")

SMOKE = {
    "cold_runs": 1,
    "warm_calls": 20,
    # 10 simulated seconds = two 5 s batching windows, inside one 10 s cache window.
    "hot_link": {"rate": 100, "seconds": 10, "containers": 5, "adversarial_seconds": 5, "recipe_calls": 10},
    "spread": {"links": 200, "rate": 100, "seconds": 5, "containers": 3, "thin_clicks": 20},
    # 100 clicks/s over 3 containers: 33 click lines a record, so 40 links make 2 records a batch.
    "shards": {"links": 40, "counts": (1, 3)},
    "backlog": {"links": 300, "batches": 2, "records": 2},
    "admin": {"sizes": (60, 120), "query_reps": 2, "scan_reps": (1, 1), "burst": 40},
    "search": {"sizes": (120, 240), "reps": 1, "import_links": 1000},
    "e2e_seconds": 0.5,
    "e2e_warmup_seconds": 0.3,
    # 50 clicks/s for 10 s: two batching windows, 500 visitors past 100 (registers).
    "analytics": {"thin_clicks": 20, "containers": 3, "hot": {"rate": 50, "seconds": 10, "containers": 3},
                  "dashboard_links": (5, 150), "dashboard_reps": 1, "sketch": (100, 2000)},
}


@pytest.fixture(scope="module")
def ctx():
    """One run's backends, shared by the tests of this module."""
    context = Context(SMOKE, quick=True)
    yield context
    context.close()


def _needs_dynamodb_local(ctx):
    try:
        ctx.dynamodb_local()
    except Skip as exc:
        if os.environ.get("REQUIRE_DYNAMODB_LOCAL"):
            pytest.fail(f"REQUIRE_DYNAMODB_LOCAL is set but DynamoDB Local did not start: {exc}")
        pytest.skip(str(exc))


def staged(module, result):
    """The record as stored, its targets judged and its section rendered: the stages `make bench` runs."""
    result = record.plain(result)
    verdicts = targets.evaluate(module.KEY, result)
    assert all(isinstance(t, targets.Target) for t in verdicts)
    section = module.section(result)
    assert section.key == module.KEY and section.how
    assert section.targets == [t.line() for t in verdicts]
    figures = module.figures(result)
    assert figures and all(key.startswith(module.KEY + ".") for key in figures)
    assert all(f["basis"] in BASES and isinstance(f["text"], str) for f in figures.values())
    return result, verdicts, section


def test_cold_start_answers_a_redirect_in_a_fresh_process(ctx):
    result = cold_start.measure_on(ctx.seeded(ctx.stub.endpoint), OUR_TABLE, RECIPE_TABLE, LINK, runs=1)
    result, verdicts, section = staged(cold_start, result)
    assert result["ours"]["statuses"] == [302]
    if baseline.available():
        assert result["recipe"]["statuses"] == [302]
        assert section.headline and verdicts[0].met is not None


@pytest.fixture(scope="module")
def warm_record(ctx):
    return staged(warm, warm.measure(ctx))


@pytest.fixture(scope="module")
def hot_record(ctx):
    _needs_dynamodb_local(ctx)
    return staged(hot_link, hot_link.measure(ctx))


@pytest.fixture(scope="module")
def spread_record(ctx):
    _needs_dynamodb_local(ctx)
    return staged(spread, spread.measure(ctx))


def test_warm_counts_no_request_on_a_hit_and_one_read_on_a_miss(warm_record):
    record_, verdicts, _ = warm_record
    result = record_["backends"]["zero-latency stub"]
    assert (result["ours_hit"]["reads_per_redirect"], result["ours_hit"]["writes_per_redirect"]) == (0, 0)
    assert (result["ours_miss"]["reads_per_redirect"], result["ours_miss"]["writes_per_redirect"]) == (1, 0)
    assert result["ours_hit"]["calls"] == 20
    assert result["hashed"] is True  # the redirect had the day's salt: the timed path hashes the visitor
    assert verdicts[0].met is True


@has_recipe
def test_warm_counts_the_recipes_read_and_write(warm_record):
    recipe = warm_record[0]["backends"]["zero-latency stub"]["recipe"]
    assert (recipe["reads_per_redirect"], recipe["writes_per_redirect"]) == (1, 1)


def test_hot_link_reads_once_per_container_and_writes_each_item_once_per_window(hot_record):
    ours = hot_record[0]["ours"]
    assert ours["redirects"] == 1000
    assert ours["statuses"] == {"302": 1000}
    # Per container the link once (10 simulated seconds fit in one cache window) and the day's salt once.
    assert ours["reads"] == 5 + 5
    assert ours["records"] == 5 * 10  # one log record per container per second
    assert ours["batches"] == ours["invocations"] == 2  # one per 5 s window
    assert ours["clicks_applied"] == 1000
    # One claim per record, and per batch the counter and the stats item. No read, no transaction.
    # A counter and a stats item per window, the day's rollup once per window, the retention setting read once.
    assert ours["aggregator_ops"] == {"PutItem": 50, "UpdateItem": 2 * 2 + 2, "GetItem": 1}
    assert ours["keys"]["claims"] == {"keys": 50, "peak": 1, "total": 50}
    assert set(ours["stream_calls"]) == {"DescribeStreamSummary"}
    assert ours["dlq"] == 0 and ours["failed_conditions"] == 0
    assert ours["keys"]["counter"]["peak"] == ours["keys"]["stats"]["peak"] == 1
    assert ours["index_peaks"] == {}
    assert not ours["units_estimated"]  # DynamoDB Local reported every write's units


def test_hot_link_reports_its_targets(hot_record):
    _, verdicts, section = hot_record
    assert len(verdicts) == 4
    normal, _bounds, index, conflicts = verdicts
    assert normal.met and index.met and conflicts.met
    assert section.headline


@has_recipe
def test_hot_link_recipe_writes_on_every_redirect(hot_record):
    record_ = hot_record[0]
    recipe = record_["recipe"]
    assert (recipe["reads_per_redirect"], recipe["writes_per_redirect"]) == (1, 1)
    assert record_["recipe_write_over"] == pytest.approx(100 / 1000)


def test_spread_thin_writes_two_items_per_click_and_one_claim_per_record(spread_record):
    record_, verdicts, _ = spread_record
    thin = record_["thin"]
    assert thin["clicks_applied"] == 20 and thin["batches"] == 1
    assert thin["records"] == 3  # one per container in the one second
    # A counter and a stats item per click, the day's rollup once, and the retention setting read once.
    assert thin["aggregator_ops"] == {"PutItem": 3, "UpdateItem": 2 * 20 + 1, "GetItem": 1}
    assert thin["table_units"] == 2 * 20 + 3 + thin["rollup_units"] and thin["index_units"] == 0
    assert 1 <= thin["rollup_units"] <= 4  # the day's rollup of 20 links: one write of a few KB
    assert thin["reads"] == 20 + 3  # every click a cache miss, and each container's salt of the day once
    assert record_["thin_item_units_per_click"] == 2.0
    assert record_["thin_claim_units_per_click"] == pytest.approx(3 / 20)
    assert record_["thin_units_per_click"] == pytest.approx((43 + thin["rollup_units"]) / 20)
    assert verdicts[-1].met is True  # judged on the items; the claims are stated beside them


def test_spread_zipf_writes_each_link_and_link_day_once_per_batch_and_reads_nothing(spread_record):
    record_, verdicts, _ = spread_record
    zipf = record_["zipf"]
    assert zipf["clicks_applied"] == 500 and zipf["batches"] == 1
    assert zipf["aggregator_ops"] == {"PutItem": zipf["records"], "UpdateItem": 2 * zipf["touched"] + 1, "GetItem": 1}
    # A link's keys take 1 unit a batch; the day's rollup, one write of a few KB, may take more.
    assert zipf["index_units"] == 0 and zipf["max_pk_units"] == max(1, zipf["rollup_units"])
    assert record_["aggregator_read_units"] == 1  # the stats retention setting, read once a container (and 5 minutes)
    assert record_["aggregator_stream_calls"] == {"DescribeStreamSummary": 2}  # once per aggregator copy
    assert len(verdicts) == 6
    keep = record_["keeping_up"]
    assert keep["deployed_shards"] == 1  # the template's default, not the count that would pass


def test_shard_counts_add_the_count_the_rate_needs_when_it_is_measurable():
    assert shards.shard_counts((1, 8, 16), 11) == [1, 8, 11, 16]
    assert shards.shard_counts((1, 8, 16), 8) == [1, 8, 16]
    assert shards.shard_counts((1, 8, 16), None) == [1, 8, 16]
    assert shards.shard_counts((1, 8, 16), shards.MAX_MEASURED_SHARDS + 1) == [1, 8, 16]


@pytest.fixture(scope="module")
def shards_record(ctx):
    _needs_dynamodb_local(ctx)
    return staged(shards, shards.measure(ctx))


def test_shards_every_item_carries_every_shards_mark_and_still_costs_one_unit(shards_record):
    record_, verdicts, _ = shards_record
    assert [run["shards"] for run in record_["runs"]] == [1, 3]
    for run in record_["runs"]:
        assert run["clicks"] == 40 and run["steady"]["records"] == 2
        assert run["steady"]["item_units"] == 2 * 40 and run["steady"]["claim_units"] == 2
        assert run["steady"]["rollup_units"] >= 1  # the day's rollup: one write a batch, beside the items
        assert run["steady"]["read_units"] == 0
        assert run["exact"] and set(run["counted"].values()) == {run["shards"] + 3}
    one, three = record_["runs"]
    assert three["counter_item_bytes"] > one["counter_item_bytes"]  # two more marks
    assert all(t.met for t in verdicts)


def test_shards_a_retry_reads_first_in_its_container_and_fails_conditions_in_a_fresh_one(shards_record):
    for run in shards_record[0]["runs"]:
        attempt, retry = run["retry"]["attempt"], run["retry"]["retry"]
        assert attempt["item_units"] == 2 * 40 - 1 and attempt["claim_units"] == 2  # all but the failed write
        assert retry["retry_path"] is True
        # Only what was missing: the failed item, and the day's rollup, which waits for every item of its batch.
        assert retry["ops"].get("PutItem", 0) == 0 and retry["ops"]["UpdateItem"] == 2
        assert retry["read_units"] == 2 * 40 + 2 + 1  # each item, claim and the rollup's mark read, strongly consistent
        fresh = run["fresh_retry"]["retry"]
        assert fresh["retry_path"] is False
        assert fresh["failed_conditions"] == 2 * 40 - 1  # every applied item
        assert fresh["claim_units"] == 2 and fresh["item_units"] == 2 * 40  # claims put again; 79 failed + 1 applied
        assert run["with_retry_item_units_per_click"] == 2.0


@pytest.fixture(scope="module")
def backlog_record(ctx):
    _needs_dynamodb_local(ctx)
    return staged(backlog, backlog.measure(ctx))


def test_backlog_is_drained_exactly_through_ordinary_batches(backlog_record):
    record_, (drains,), _ = backlog_record
    assert record_["clicks"] == record_["expected_clicks"] == 2 * 2 * 33
    assert [b["records"] for b in record_["batches"]] == [2, 2]
    assert record_["clicks_per_second"] > 0 and record_["lambda_clicks_per_second"] > 0
    # The mapping's largest batch: the template's BatchSize in records of 33 clicks, against its timeout.
    assert record_["full_batch_clicks"] == record_["deployed_batch_size"] * 33 and record_["timeout_seconds"] > 0
    assert drains.met is (record_["full_batch_seconds"] <= record_["timeout_seconds"])


def test_cost_prices_both_sides_and_the_fixed_costs(warm_record, hot_record, spread_record, shards_record):
    result = cost.model(warm_record[0]["backends"]["zero-latency stub"], hot_record[0], spread_record[0],
                        shards=shards_record[0])
    result["seconds"] = 0.1
    result, verdicts, section = staged(cost, result)
    totals = result["totals"]
    assert totals["ours_hot"] > 0 and totals["ours_spread"] > 0 and totals["recipe"] > 0
    assert any(row[0] == "**Total**" for row in section.rows)
    (caption, _, fixed_rows), = section.extra_tables
    assert any(row[0] == "Kinesis shards" for row in fixed_rows)
    assert any(row[0].startswith("Break-even") for row in fixed_rows)
    assert result["shards_priced"] == result["shards_deployed"] == 1
    assert not any("checkpoint" in row[0] for row in fixed_rows)
    assert any(row[0] == cost.CLAIMS for row in section.rows)
    at_rate = result["at_rate"]  # 100 clicks/s needs 1 shard, which the shards benchmark measured
    assert at_rate["shards"] == 1 and at_rate["rate"] == 100
    # The same items per click as spread thin (2.0 at one shard), plus the fixed costs over a month at that rate.
    per_month = 100 * cost.SECONDS_PER_MONTH / 1e6
    assert at_rate["per_million"] == pytest.approx(totals["ours_spread"] + at_rate["fixed_monthly"] / per_month)
    assert len(verdicts) == 4 and all(t.met is not None for t in verdicts)


def test_admin_list_is_bounded_and_shows_counts(ctx):
    _needs_dynamodb_local(ctx)
    result, verdicts, _ = staged(admin_list, admin_list.measure(ctx))
    results = result["results"]
    assert [r["n"] for r in results] == [60, 120]
    for r in results:
        assert r["newest_ok"] and r["counts_ok"]
        assert r["ours"]["requests"] == LIST_SHARDS + 1  # a Query per list shard + one BatchGetItem
        assert r["scan"]["items_read"] >= r["n"]
    burst = result["burst"]
    assert burst["creates"] == burst["puts"] == 40
    assert sum(burst["per_key"].values()) == 40  # one index write per create, on one of the 8 keys
    assert set(burst["per_key"]) <= {f"links#{n}" for n in range(LIST_SHARDS)}
    assert verdicts[0].met is True


def test_search_and_filters_cost_the_same_requests_at_every_size(ctx):
    _needs_dynamodb_local(ctx)
    result, verdicts, _ = staged(search, search.measure(ctx))
    assert [r["n"] for r in result["results"]] == [120, 240]
    for r in result["results"]:
        assert all(q["ok"] for q in r["queries"].values()), r["queries"]
    assert result["model"]["links"] == 1000 and result["model"]["top_key"].startswith("find#")
    assert [t.met for t in verdicts] == [True, True]


@pytest.fixture(scope="module")
def e2e_record(ctx):
    _needs_dynamodb_local(ctx)
    return staged(end_to_end, end_to_end.measure(ctx))


def test_end_to_end_serves_redirects_and_counts_each_at_most_once(e2e_record):
    result = e2e_record[0]
    ours = result["ours"]
    assert ours["requests"] > 0 and set(ours["statuses"]) == {"302"} and ours["errors"] == 0
    assert 0 < ours["clicks_counted"] <= ours["redirects_served"] and ours["dlq"] == 0
    assert ours["max_events_per_record"] <= 10_000  # what the aggregator reads from one record
    if baseline.available():
        assert result["recipe"]["writes_per_request"] == 1


def test_end_to_end_counts_every_redirect_served(e2e_record):
    result, (counted,), _ = e2e_record
    ours = result["ours"]
    assert ours["clicks_counted"] == ours["redirects_served"]
    assert counted.met is True


def test_missing_baseline_leaves_its_rows_empty_and_the_rest_runs(ctx, monkeypatch, tmp_path):
    monkeypatch.setenv("BASELINE_HANDLER", str(tmp_path / "missing.py"))
    assert not baseline.available()
    with pytest.raises(baseline.BaselineMissing):
        baseline.load(ctx.stub.endpoint, RECIPE_TABLE)
    result = warm.run_backend(ctx.seeded(ctx.stub.endpoint), OUR_TABLE, RECIPE_TABLE, LINK, calls=3, warmup=1)
    assert set(result) - {"hashed"} == {"ours_hit", "ours_miss"}
    section = warm.section(record.plain({"calls": 3, "backends": {"stub": result}, "seconds": 0.1}))
    assert any("recipe not found" in row for row in section.rows)


def test_the_entry_point_orders_records_reports_failures_and_skips_and_renders_from_the_file(ctx, tmp_path):
    class Broken:
        KEY, TITLE = "broken", "Broken"

        @staticmethod
        def measure(_ctx):
            raise ValueError("boom")

    class Skipped:
        KEY, TITLE = "skipped", "Skipped"

        @staticmethod
        def measure(_ctx):
            raise Skip("no backend")

    class Fine:
        KEY, TITLE = "fine", "Fine"

        @staticmethod
        def measure(_ctx):
            return {"value": 1, "seconds": 0.1}

        @staticmethod
        def figures(result):
            return {"fine.value": record.figure(str(result["value"]), result["value"], "measured")}

        @staticmethod
        def section(result):
            section = report.Section("fine", "Fine", ["how"], seconds=result["seconds"])
            section.targets = [targets.Target("a target", str(result["value"]), result["value"] <= 1).line()]
            section.headline = [["What", "1", "2", "0.5×", "measured"]]
            return section

    modules = (Broken, Skipped, Fine)
    records, failures = bench_main.run(ctx, modules=modules)
    assert list(records) == ["broken", "skipped", "fine"]
    assert failures == ["Broken: ValueError: boom"]
    info = {"machine": report.machine(), "baseline": "../shared/seed/lambda_function.py", "total_seconds": 1.0}
    path = tmp_path / "bench.json"
    record.write(path, record.document(records, bench_main.figures(records, modules), info))
    doc = record.load(path)
    assert doc["source"] == "bench" and doc["command"] == "make bench"
    assert doc["figures"] == {"fine.value": {"text": "1", "value": 1, "basis": "measured"}}
    text = bench_main.render(doc, modules)
    assert "## 1. Broken" in text and "FAILED in this run" in text and "Skipped: no backend" in text
    assert "- **3. Fine:** a target: 1 — met." in text and "| What | 1 | 2 | 0.5× | measured |" in text
    assert bench_main.render(record.load(path), modules) == text  # rendering again gives the same file


@pytest.fixture(scope="module")
def analytics_record(ctx):
    _needs_dynamodb_local(ctx)
    return staged(analytics, analytics.measure(ctx))


def test_analytics_uniques_add_a_hash_to_every_line_and_no_write(analytics_record):
    record_, verdicts, _ = analytics_record
    w = record_["writes"]
    for case in ("thin_on", "thin_off", "hot_on", "hot_off", "hot_sketch"):
        assert w[case]["clicks_applied"] == w[case]["clicks"] and w[case]["dlq"] == 0, case
        assert not w[case]["units_estimated"], case  # DynamoDB Local's own figures
    assert w["thin_on"]["hashed_lines"] == w["thin_on"]["clicks"] == 20
    assert w["thin_off"]["hashed_lines"] == w["hot_off"]["hashed_lines"] == 0
    # Spread thin: each link's counter and stats item, and one rollup, with or without visitors.
    assert w["thin_on"]["item_writes"] == w["thin_off"]["item_writes"] == 2 * 20 + 1
    assert w["thin_on"]["batches"] == w["thin_off"]["batches"] == 1
    assert w["thin_on"]["set_items"] == 21 and w["thin_off"]["set_items"] == 0
    assert 0 <= w["extra_thin"] <= 1
    # The hot link: counter, stats and rollup once a batch; every extra write is a failed first attempt.
    for case in ("hot_on", "hot_off"):
        assert w[case]["batches"] == 2 and w[case]["item_writes"] == 3 * 2 and w[case]["failed_conditions"] == 0
    sketch_case = w["hot_sketch"]
    # Counter, stats, rollup and, with new visitors past 100, the two sketch items: once each per batch.
    assert sketch_case["item_writes"] == 5 * sketch_case["batches"] + sketch_case["failed_conditions"]
    assert sketch_case["sketch_items"] == 2 and sketch_case["set_items"] == 0  # the link-day and the rollup
    assert w["hot_on"]["set_items"] == 2 and w["hot_on"]["sketch_items"] == 0
    names = [t.what for t in verdicts]
    assert len(names) == 4
    assert verdicts[0].met is True


def test_analytics_dashboard_and_sketch(analytics_record):
    record_, verdicts, section = analytics_record
    small, large = record_["dashboard"]["sizes"]
    assert small["requests"] == large["requests"] == [2 * 30 + 1]
    assert small["rollup_items"] == large["rollup_items"] == 60 * small["shards"]
    assert small["top_links"] == small["titled"] == 5 and large["top_links"] == large["titled"] == 10
    exact, big = record_["sketch"]["runs"]
    assert exact["estimate"] == exact["merged_estimate"] == 100 and exact["stored_bytes"] == 800
    assert exact["mode"] == "exact set" and big["mode"] == "registers"
    assert abs(big["merged_error"]) < 0.05
    assert verdicts[2].met is True and verdicts[3].met is True
    assert [caption for caption, _, _ in section.extra_tables] == ["The home dashboard, 30 days", "The visitor sketch"]


class _Fake:
    """A benchmark module that measures a counter, for the entry point's tests."""

    def __init__(self, key):
        self.KEY = self.TITLE = key
        self.runs = 0

    def measure(self, _ctx):
        self.runs += 1
        return {"value": self.runs, "seconds": 0.1}

    def figures(self, result):
        return {f"{self.KEY}.value": record.figure(str(result["value"]), result["value"], "measured")}

    def section(self, result):
        return report.Section(self.KEY, self.TITLE, ["how"], seconds=result["seconds"])


class _NoBackends:
    def __init__(self, sizes, quick=False):
        self.sizes, self.quick, self.results = sizes, quick, {}

    def close(self):
        pass


def test_only_runs_the_named_modules_and_keeps_the_other_records(monkeypatch, tmp_path, capsys):
    first, second = _Fake("first"), _Fake("second")
    monkeypatch.setattr(bench_main, "MODULES", (first, second))
    monkeypatch.setattr(bench_main, "Context", _NoBackends)
    results, output = tmp_path / "bench.json", tmp_path / "BENCHMARKS.md"
    files = ["--results", str(results), "--output", str(output)]
    monkeypatch.setattr("sys.argv", ["bench", *files])
    bench_main.main()
    assert (first.runs, second.runs) == (1, 1)
    before = record.load(results)
    monkeypatch.setattr("sys.argv", ["bench", "--only", "second", *files])
    bench_main.main()
    assert (first.runs, second.runs) == (1, 2)
    after = record.load(results)
    assert after["records"]["first"] == before["records"]["first"]
    assert after["records"]["second"]["value"] == 2
    assert after["figures"]["first.value"]["value"] == 1 and after["figures"]["second.value"]["value"] == 2
    assert after["figures"]["run.seconds"] == before["figures"]["run.seconds"]
    assert after["run"]["rerun"]["modules"] == ["second"]
    assert output.read_text(encoding="utf-8") == bench_main.render(after, (first, second))
    # An unknown key is refused before anything runs or is written.
    monkeypatch.setattr("sys.argv", ["bench", "--only", "second,nope", *files])
    with pytest.raises(SystemExit):
        bench_main.main()
    assert "unknown benchmark(s) nope" in capsys.readouterr().err
    assert second.runs == 2 and record.load(results) == after


def test_only_without_a_results_file_writes_one_with_that_module(monkeypatch, tmp_path):
    first, second = _Fake("first"), _Fake("second")
    monkeypatch.setattr(bench_main, "MODULES", (first, second))
    monkeypatch.setattr(bench_main, "Context", _NoBackends)
    results = tmp_path / "bench.json"
    monkeypatch.setattr("sys.argv", ["bench", "--only", "first", "--results", str(results),
                                     "--output", str(tmp_path / "B.md")])
    bench_main.main()
    doc = record.load(results)
    assert list(doc["records"]) == ["first"] and second.runs == 0
    assert set(doc["figures"]) == {"first.value", "run.seconds"}


def test_the_analytics_module_is_listed_last_with_full_and_quick_sizes():
    assert bench_main.MODULES[-1] is analytics
    assert set(bench_main.FULL["analytics"]) == set(bench_main.QUICK["analytics"]) == set(SMOKE["analytics"])
    assert bench_main.FULL["analytics"]["dashboard_links"][-1] == 100_000
    assert bench_main.FULL["analytics"]["sketch"] == (100, 10_000, 1_000_000)


def test_the_recipe_is_loaded_not_copied(recipe):
    """No line of the recipe's handler may appear in bench/ (it is read from ../shared at run time)."""
    path = recipe
    distinctive = {line.strip() for line in path.read_text().splitlines() if len(line.strip()) > 40}
    for source in (Path(__file__).resolve().parent.parent / "bench").glob("*.py"):
        text = source.read_text()
        assert not [line for line in distinctive if line in text], source.name
