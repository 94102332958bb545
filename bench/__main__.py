"""`make bench`: run every benchmark against the recipe's handler and write BENCHMARKS.md.

Order matters only for the time budget: the stub-backed benchmarks first, then
DynamoDB Local (warm, end to end, and the admin list with its bulk load last).
`--quick` runs tiny sizes (seconds, not minutes) to check the wiring.
"""

import argparse
import sys
import time
import traceback
from pathlib import Path

from bench import admin_list, baseline, cold_start, cost, end_to_end, hot_link, report, warm
from bench.backends import client_for, start_dynamodb_local
from bench.fixtures import create_our_table, our_item, short_id
from bench.report import Section, ms, number, times
from bench.stub_dynamodb import StubProcess

ROOT = Path(__file__).resolve().parent.parent
OUR_TABLE, RECIPE_TABLE = "bench-ours", "bench-recipe"
LINK = "abc1234"
HOT_LINK = "hot0001"
E2E_LINKS = 100

FULL = {
    "cold_runs": 25,
    "warm_calls": 2000,
    "hot_seconds": 60,
    "hot_recipe_calls": 2000,
    "admin_sizes": (1_000, 10_000, 100_000),
    "admin_query_reps": 30,
    "admin_scan_reps": (10, 5, 3),
    "e2e_seconds": 10,
}
QUICK = {
    "cold_runs": 2,
    "warm_calls": 50,
    "hot_seconds": 2,
    "hot_recipe_calls": 50,
    "admin_sizes": (100, 500),
    "admin_query_reps": 3,
    "admin_scan_reps": (2, 1),
    "e2e_seconds": 1,
}


def seed(client, links):
    """Both sides' tables with the given links, each in its own item format."""
    create_our_table(client, OUR_TABLE)
    for link in links:
        client.put_item(TableName=OUR_TABLE, Item=our_item(link, f"https://example.com/landing/{link}"))
    if baseline.available():
        baseline.create_table(client, RECIPE_TABLE)
        for link in links:
            client.put_item(TableName=RECIPE_TABLE, Item=baseline.item(link, f"https://example.com/landing/{link}"))


TITLES = {
    "cold_start": "1. Cold start",
    "warm": "2. Warm redirect",
    "hot_link": "3. Hot link",
    "admin_list": "4. Admin list",
    "bulk_import": "5. Bulk import",
    "end_to_end": "6. End to end over HTTP",
    "cost": "7. Cost per million redirects",
}


class _Runner:
    """Runs each benchmark, timing it; a benchmark that raises is reported as failed and the rest still run."""

    def __init__(self):
        self.sections = {}
        self.failures = []

    def __call__(self, key, fn):
        started = time.monotonic()
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others' results
            self.failures.append(f"{TITLES[key]}: {type(exc).__name__}: {exc}")
            traceback.print_exc()
            result = Section(key, TITLES[key], [f"FAILED in this run: {type(exc).__name__}: {exc}"])
        if not result.seconds:
            result.seconds = time.monotonic() - started
        self.sections[key] = result
        return result


def _skipped(key, title, reason):
    return Section(key, title, [f"Skipped: {reason}."])


def bulk_import_section():
    """Item 5 waits for the staff features' CSV import."""
    return Section(
        "bulk_import",
        "5. Bulk import",
        [
            "Pending: CSV import not built yet. When the staff features add it, this benchmark will push 10,000 rows"
            " through that import path and report wall time and DynamoDB requests (batch writes vs one conditional"
            " put per row).",
        ],
    )


def run(sizes):
    """Every benchmark; returns (sections in report order, headline rows, target lines, failures)."""
    runner = _Runner()
    links = [LINK, HOT_LINK] + [short_id(n) for n in range(E2E_LINKS)]
    warm_results, spread = {}, None
    warm_started = time.monotonic()
    with StubProcess() as stub:
        seed(client_for(stub.endpoint), links)
        runner(
            "cold_start", lambda: cold_start.run(stub.endpoint, OUR_TABLE, RECIPE_TABLE, LINK, runs=sizes["cold_runs"])
        )
        warm_started = time.monotonic()
        _run_warm(runner, warm_results, "zero-latency stub", stub.endpoint, sizes["warm_calls"])
        warm_seconds = time.monotonic() - warm_started
        runner(
            "hot_link",
            lambda: hot_link.run(
                stub.endpoint,
                OUR_TABLE,
                RECIPE_TABLE,
                HOT_LINK,
                seconds=sizes["hot_seconds"],
                recipe_calls=sizes["hot_recipe_calls"],
            ),
        )

        def _cost():
            spread = cost.measure_spread(stub.endpoint, OUR_TABLE)
            return cost.section(warm_results["zero-latency stub"], runner.sections["hot_link"].data, spread, 0)

        runner("cost", _cost)
    try:
        engine = start_dynamodb_local()
    except RuntimeError as exc:
        engine = None
        reason = f"DynamoDB Local could not start ({exc})"
        warm_results["DynamoDB Local"] = reason
        runner("admin_list", lambda: _skipped("admin_list", TITLES["admin_list"], reason))
        runner("end_to_end", lambda: _skipped("end_to_end", TITLES["end_to_end"], reason))
    if engine is not None:
        try:
            seed(engine.client(), links)
            started = time.monotonic()
            _run_warm(runner, warm_results, "DynamoDB Local", engine.endpoint, sizes["warm_calls"])
            warm_seconds += time.monotonic() - started
            runner(
                "end_to_end",
                lambda: end_to_end.run(
                    engine.endpoint, OUR_TABLE, RECIPE_TABLE, links[2:], seconds=sizes["e2e_seconds"]
                ),
            )
            runner(
                "admin_list",
                lambda: admin_list.run(
                    engine.client(max_pool_connections=8),
                    sizes=sizes["admin_sizes"],
                    query_reps=sizes["admin_query_reps"],
                    scan_reps=sizes["admin_scan_reps"],
                ),
            )
        finally:
            engine.stop()
    runner("warm", lambda: warm.section(warm_results, sizes["warm_calls"], warm_seconds))
    runner("bulk_import", bulk_import_section)
    sections = runner.sections
    ordered = [sections[key] for key in TITLES]
    return ordered, headline(sections), findings(sections), runner.failures


def _counts(result):
    reads, writes = result["reads_per_redirect"], result["writes_per_redirect"]
    return f"{reads:g} read{'' if reads == 1 else 's'}, {writes:g} write{'' if writes == 1 else 's'}"


def headline(sections):
    """The short table at the top of BENCHMARKS.md (and, by hand, in the README)."""
    rows = []
    cold = sections["cold_start"].data
    if cold.get("recipe"):
        rows.append(
            [
                "Cold start, fresh interpreter → first response (median)",
                ms(cold["ours"]["total"]["median"]),
                ms(cold["recipe"]["total"]["median"]),
                f"{times(cold['ratio_total'])} (target ≤ 0.6×)",
            ]
        )
    for backend, result in sections["warm"].data.items():
        if isinstance(result, str) or "recipe" not in result:
            continue
        recipe = result["recipe"]["latency"]["median"]
        if backend != "zero-latency stub":
            rows.append(
                [
                    f"Warm redirect, cache miss, {backend} (median)",
                    ms(result["ours_miss"]["latency"]["median"]),
                    ms(recipe),
                    times(result["ours_miss"]["latency"]["median"] / recipe, 3),
                ]
            )
            continue
        for scenario, label in (("ours_hit", "hit"), ("ours_miss", "miss")):
            ours = result[scenario]["latency"]["median"]
            rows.append(
                [f"Warm redirect, cache {label}, {backend} (median)", ms(ours), ms(recipe), times(ours / recipe, 3)]
            )
    stub = sections["warm"].data.get("zero-latency stub")
    if isinstance(stub, dict) and "recipe" in stub:
        rows.append(
            [
                "DynamoDB requests per redirect",
                f"hit: {_counts(stub['ours_hit'])}; miss: {_counts(stub['ours_miss'])}",
                f"{stub['recipe']['reads_per_redirect']:g} read + {stub['recipe']['writes_per_redirect']:g} write",
                "–",
            ]
        )
    hot = sections["hot_link"].data
    if hot.get("recipe") and "ours" in hot:
        rows.append(
            [
                "Hot link (10k/s), read units/s on the link vs 3,000",
                number(hot["ours_peak_read_units"], 1),
                number(hot["recipe"]["read_units_per_redirect"] * hot["rate"]),
                f"ours {times(hot['ours_read_headroom'], 0)} headroom; recipe {times(hot['recipe_read_over'], 1)} over",
            ]
        )
        rows.append(
            [
                "Hot link (10k/s), write units/s on the link vs 1,000",
                f"{number(max(hot['ours']['write_units_per_second_item']))} (item),"
                f" {number(max(hot['ours']['write_units_per_second_pk']))} (partition key)",
                number(hot["recipe"]["write_units_per_redirect"] * hot["rate"]),
                f"ours {times(hot['ours_item_write_headroom'], 1)} / {times(hot['ours_pk_write_headroom'], 1)}"
                " headroom;"
                f" recipe {times(hot['recipe_write_over'], 1)} over",
            ]
        )
    admin = sections["admin_list"].data
    if admin:
        top = admin["results"][-1]
        rows.append(
            [
                f"Admin list, first page at {top['n']:,} links (median)",
                ms(top["ours"]["latency"]["median"]),
                f"{ms(top['scan']['latency']['median'])} (Scan)",
                f"{times(top['ours']['latency']['median'] / top['scan']['latency']['median'], 3)}; ours at"
                f" {top['n']:,} takes {times(admin['flatness'])} its time at {admin['results'][0]['n']:,}",
            ]
        )
    e2e = sections["end_to_end"].data
    if e2e.get("recipe"):
        rows.append(
            [
                "End to end over HTTP, redirects/s",
                number(e2e["ours"]["per_second"]),
                number(e2e["recipe"]["per_second"]),
                times(e2e["throughput_ratio"]),
            ]
        )
    totals = sections["cost"].data.get("totals", {})
    if totals.get("recipe"):
        rows.append(
            [
                "Cost per million redirects (hot link / spread thin)",
                f"${totals['ours_hot']:,.2f} / ${totals['ours_spread']:,.2f}",
                f"${totals['recipe']:,.2f}",
                f"{times(sections['cost'].data['ratio_hot'])} / {times(sections['cost'].data['ratio_spread'])}",
            ]
        )
    return rows


def _verdict(ok):
    return "met" if ok else "**NOT met**"


def findings(sections):
    """Each target of the issue, with the measured value and whether it was met."""
    out = []
    cold = sections["cold_start"].data
    if cold.get("recipe"):
        out.append(
            f"Cold start ≤ 0.6× the recipe's: {times(cold['ratio_total'])}, {_verdict(cold['ratio_total'] <= 0.6)}."
        )
    for backend, result in sections["warm"].data.items():
        if isinstance(result, str):
            out.append(f"Warm redirect on {backend}: not measured ({result}).")
            continue
        hit, miss = result["ours_hit"], result["ours_miss"]
        ok = hit["reads_per_redirect"] == hit["writes_per_redirect"] == 0
        ok = ok and miss["reads_per_redirect"] == 1 and miss["writes_per_redirect"] == 0
        line = f"Requests per redirect on {backend} (0 on a hit; 1 read, 0 writes on a miss): {_verdict(ok)}"
        if "recipe" in result:
            recipe = result["recipe"]
            line += f"; the recipe made {recipe['reads_per_redirect']:g} read + {recipe['writes_per_redirect']:g} write"
        out.append(line + ".")
    hot = sections["hot_link"].data
    if "ours" in hot:
        out.append(
            f"Hot link, ours ≥ 10× under both per-partition limits: reads {times(hot['ours_read_headroom'], 0)}"
            f" ({_verdict(hot['ours_read_headroom'] >= 10)}); writes on the link item"
            f" {times(hot['ours_item_write_headroom'], 1)} ({_verdict(hot['ours_item_write_headroom'] >= 10)});"
            " writes on"
            f" the link's whole partition key, {times(hot['ours_pk_write_headroom'], 1)}"
            f" ({_verdict(hot['ours_pk_write_headroom'] >= 10)})."
        )
    if hot.get("recipe"):
        out.append(
            f"Hot link, the recipe over the write limit: {times(hot['recipe_write_over'], 1)} (the issue expects 10×)."
        )
    admin = sections["admin_list"].data
    if admin:
        reads = {r["ours"]["items_read"] for r in admin["results"]}
        out.append(
            f"Admin list flat as N grows: ours reads {', '.join(number(x) for x in sorted(reads))} items at every"
            " size and"
            f" takes {times(admin['flatness'])} at {admin['top']:,} links what it takes at"
            f" {admin['results'][0]['n']:,}; the scan reads all N."
        )
    out.append("Bulk import: pending — CSV import not built yet.")
    cost_data = sections["cost"].data
    if cost_data.get("ratio_hot") is not None:
        out.append(
            f"Cost per million redirects: ours {times(cost_data['ratio_hot'])} the recipe's on a hot link and"
            f" {times(cost_data['ratio_spread'])} spread thin over many links (modelled Lambda duration;"
            " see section 7)."
        )
    return out



def _run_warm(runner, warm_results, backend, endpoint, calls):
    """Run the warm benchmark on one backend; a failure is reported in its section and the rest still runs."""
    try:
        warm_results[backend] = warm.run_backend(endpoint, OUR_TABLE, RECIPE_TABLE, LINK, calls=calls)
    except Exception as exc:  # noqa: BLE001 - reported in the warm section, the rest still runs
        traceback.print_exc()
        warm_results[backend] = f"FAILED: {type(exc).__name__}: {exc}"
        runner.failures.append(f"{TITLES['warm']} ({backend}): {type(exc).__name__}: {exc}")

def main():
    """Run, write the report, print where it went."""
    parser = argparse.ArgumentParser(description="Benchmarks against the recipe's handler; writes BENCHMARKS.md.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that everything runs")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    started = time.monotonic()
    sections, rows, targets, failures = run(QUICK if args.quick else FULL)
    total = time.monotonic() - started
    info = {"machine": report.machine(), "baseline": _baseline_label()}
    args.output.write_text(report.render(sections, rows, targets, total, info), encoding="utf-8")
    print(f"Wrote {args.output} in {total:,.0f} s")
    if failures:
        # A broken benchmark is a bug, not a slow machine: say so, after writing what did run.
        sys.exit("Benchmarks that failed:\n  " + "\n  ".join(failures))


def _baseline_label():
    path = baseline.baseline_path()
    try:
        shown = path.resolve().relative_to(ROOT.parent)
        shown = f"../{shown}"
    except ValueError:
        shown = str(path)
    return shown if path.is_file() else f"{shown} (NOT FOUND: baseline rows are empty)"


if __name__ == "__main__":
    main()
