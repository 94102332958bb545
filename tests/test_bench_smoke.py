"""Smoke runs of every benchmark at tiny sizes, so `make bench` keeps working.

Assertions are on structure and on counted DynamoDB requests, never on timings: a slow
machine must never fail this. DynamoDB Local is not needed; the zero-latency stub (and
moto, for the admin list) stand in for it.
"""

from pathlib import Path

import pytest

from bench import admin_list, baseline, cold_start, cost, end_to_end, hot_link, report, warm
from bench.backends import client_for
from bench.fixtures import create_our_table, our_item, short_id
from bench.stub_dynamodb import StubProcess

OURS, RECIPE = "smoke-ours", "smoke-recipe"
LINK, HOT = "abc1234", "hot0001"
E2E_IDS = [short_id(n) for n in range(5)]
has_recipe = pytest.mark.skipif(not baseline.available(), reason="the recipe's handler is not next to the repo")


@pytest.fixture(scope="module")
def stub():
    """A stub seeded with the same links on both sides, each in its own item format."""
    with StubProcess() as process:
        client = client_for(process.endpoint)
        create_our_table(client, OURS)
        for link in [LINK, HOT, *E2E_IDS]:
            client.put_item(TableName=OURS, Item=our_item(link, f"https://example.com/{link}"))
        if baseline.available():
            baseline.create_table(client, RECIPE)
            for link in [LINK, HOT, *E2E_IDS]:
                client.put_item(TableName=RECIPE, Item=baseline.item(link, f"https://example.com/{link}"))
        yield process


@pytest.fixture(scope="module")
def warm_result(stub):
    """One small warm run, shared by the tests that read it."""
    return warm.run_backend(stub.endpoint, OURS, RECIPE, LINK, calls=20, warmup=2)


@pytest.fixture(scope="module")
def hot_section(stub):
    """A 2-second, 5-container hot-link run."""
    return hot_link.run(stub.endpoint, OURS, RECIPE, HOT, rate=500, seconds=2, containers=5, recipe_calls=10)


def test_warm_counts_no_request_on_a_hit_and_one_read_on_a_miss(warm_result):
    assert warm_result["ours_hit"]["reads_per_redirect"] == 0
    assert warm_result["ours_hit"]["writes_per_redirect"] == 0
    assert warm_result["ours_miss"]["reads_per_redirect"] == 1
    assert warm_result["ours_miss"]["writes_per_redirect"] == 0
    for scenario in ("ours_hit", "ours_miss"):
        assert warm_result[scenario]["calls"] == 20
        assert set(warm_result[scenario]["latency"]) == {"n", "median", "p99", "mean"}


@has_recipe
def test_warm_counts_the_recipes_read_and_write(warm_result):
    assert warm_result["recipe"]["reads_per_redirect"] == 1
    assert warm_result["recipe"]["writes_per_redirect"] == 1


def test_warm_section_reports_every_backend(warm_result):
    section = warm.section({"stub": warm_result, "DynamoDB Local": "not started in the smoke test"}, 20, 0.1)
    # One row per scenario (the recipe's says "recipe not found" without the baseline), plus the skipped backend.
    assert len(section.rows) == len(warm.SCENARIOS) + 1
    assert "skipped" in section.rows[-1][1]
    if not baseline.available():
        assert "recipe not found" in section.rows[len(warm.SCENARIOS) - 1]


def test_cold_start_answers_a_redirect_in_a_fresh_process(stub):
    section = cold_start.run(stub.endpoint, OURS, RECIPE, LINK, runs=1)
    assert section.data["ours"]["statuses"] == [302]
    assert section.data["ours"]["total"]["n"] == 1
    if baseline.available():
        assert section.data["recipe"]["statuses"] == [302]
        assert section.data["ratio_total"] > 0


def test_hot_link_reads_once_per_container_and_writes_once_per_batch(hot_section):
    ours = hot_section.data["ours"]
    assert ours["redirects"] == 1000
    assert ours["statuses"] == [302]
    # Two simulated seconds fit in one 10 s cache window: one read per container.
    assert ours["reads"] == 5
    # One delivery per container per second, one transaction each.
    assert ours["batches"] == 10
    assert ours["aggregator_ops"] == {"TransactWriteItems": 10}
    assert ours["clicks_delivered"] == 1000
    # Each transaction writes the link item (2 units, transactional); its day item has
    # its own partition key, so the link's partition key sees only the link item.
    assert max(ours["write_units_per_second_item"]) == 5 * 2
    assert max(ours["write_units_per_second_pk"]) == 5 * 2


@has_recipe
def test_hot_link_recipe_writes_on_every_redirect(hot_section):
    recipe = hot_section.data["recipe"]
    assert (recipe["reads_per_redirect"], recipe["writes_per_redirect"]) == (1, 1)
    assert hot_section.data["recipe_write_over"] == pytest.approx(500 / 1000)


def test_admin_list_reads_one_page_while_the_scan_reads_everything(ddb):
    section = admin_list.run(ddb, sizes=(60, 120), query_reps=2, scan_reps=(1, 1), threads=1)
    results = section.data["results"]
    assert [r["n"] for r in results] == [60, 120]
    for r in results:
        assert r["newest_ok"]
        assert r["ours"]["requests"] == 1
        assert r["ours"]["items_read"] <= admin_list.PAGE + 1
        assert r["scan"]["items_read"] == r["n"]


def test_end_to_end_serves_redirects_over_http(stub):
    section = end_to_end.run(stub.endpoint, OURS, RECIPE, E2E_IDS, seconds=0.5, connections=2)
    ours = section.data["ours"]
    assert ours["requests"] > 0
    assert set(ours["statuses"]) == {"302"}
    assert ours["errors"] == 0
    if baseline.available():
        assert set(section.data["recipe"]["statuses"]) == {"302"}
        assert section.data["recipe"]["writes_per_request"] == 1


@has_recipe
def test_cost_counts_spread_traffic_and_prices_both_sides(stub, warm_result, hot_section):
    spread = cost.measure_spread(stub.endpoint, OURS, clicks=30)
    assert spread["statuses"] == [302]
    assert spread["reads_per_redirect"] == 1
    # 30 links: one link update and one day update each, in one transaction of 60 + 1 marker.
    assert spread["transactions_per_batch"] == 1
    assert spread["write_units_per_redirect"] == pytest.approx((30 * 2 + 1) * 2 / 30)
    section = cost.section(warm_result, hot_section.data, spread, 0.1)
    totals = section.data["totals"]
    assert totals["ours_hot"] > 0 and totals["ours_spread"] > 0 and totals["recipe"] > 0
    assert any(row[0] == "**Total**" for row in section.rows)


def test_missing_baseline_leaves_its_rows_empty_and_the_rest_runs(stub, monkeypatch, tmp_path):
    monkeypatch.setenv("BASELINE_HANDLER", str(tmp_path / "missing.py"))
    assert not baseline.available()
    with pytest.raises(baseline.BaselineMissing):
        baseline.load(stub.endpoint, RECIPE)
    result = warm.run_backend(stub.endpoint, OURS, RECIPE, LINK, calls=3, warmup=1)
    assert set(result) == {"ours_hit", "ours_miss"}
    section = warm.section({"stub": result}, 3, 0.1)
    assert any("recipe not found" in row for row in section.rows)


def test_report_renders_sections_and_headline():
    section = report.Section("x", "9. Example", ["how it was measured"], ["A", "B"], [["1", "2"]], ["a note"])
    info = {"machine": report.machine(), "baseline": "../shared/seed/lambda_function.py"}
    text = report.render([section], [["What", "1 ms", "2 ms", "0.50×"]], ["a target: met."], 12.0, info)
    assert "## 9. Example" in text and "| 1 | 2 |" in text and "- a target: met." in text
    assert f"{info['machine']['cpus']} CPUs" in text


def test_the_recipe_is_loaded_not_copied():
    """No line of the recipe's handler may appear in bench/ (it is read from ../shared at run time)."""
    path = baseline.baseline_path()
    if not path.is_file():
        pytest.skip("the recipe's handler is not next to the repo")
    distinctive = {line.strip() for line in path.read_text().splitlines() if len(line.strip()) > 40}
    for source in (Path(__file__).resolve().parent.parent / "bench").glob("*.py"):
        text = source.read_text()
        assert not [line for line in distinctive if line in text], source.name
