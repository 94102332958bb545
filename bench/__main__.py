"""`make bench`: run every benchmark against the recipe's handler and write BENCHMARKS.md.

Each benchmark module owns its section, its headline rows and its targets (`run(ctx) ->
Section`); this entry point only orders them, gives them the run's sizes and backends
(bench/context.py), and writes the file. A benchmark that fails is reported as failed in
its section, and the rest still run. `--quick` runs tiny sizes (seconds) to check the wiring.
"""

import argparse
import sys
import time
import traceback
from pathlib import Path

from bench import admin_list, baseline, cold_start, cost, end_to_end, hot_link, report, spread, warm
from bench.context import Context, Skip
from bench.report import Section

ROOT = Path(__file__).resolve().parent.parent
# Report order. Cost reads the warm, hot-link and spread results, so it comes after them.
MODULES = (cold_start, warm, hot_link, spread, cost, admin_list, end_to_end)

FULL = {
    "cold_runs": 25,
    "warm_calls": 2000,
    "hot_link": {"rate": 10_000, "seconds": 30, "containers": 50, "adversarial_seconds": 25, "recipe_calls": 2000},
    "spread": {"links": 100_000, "rate": 10_000, "seconds": 5, "containers": 50, "thin_clicks": 2000},
    "admin": {"sizes": (1_000, 10_000, 100_000), "query_reps": 30, "scan_reps": (10, 5, 3), "burst": 10_000},
    "e2e_seconds": 10,
}
QUICK = {
    "cold_runs": 2,
    "warm_calls": 50,
    "hot_link": {"rate": 200, "seconds": 10, "containers": 5, "adversarial_seconds": 10, "recipe_calls": 50},
    "spread": {"links": 1_000, "rate": 400, "seconds": 5, "containers": 5, "thin_clicks": 100},
    "admin": {"sizes": (100, 500), "query_reps": 3, "scan_reps": (2, 1), "burst": 200},
    "e2e_seconds": 1,
}


def run(ctx, modules=MODULES):
    """Every benchmark in order; returns (sections, failures)."""
    sections, failures = [], []
    for module in modules:
        started = time.monotonic()
        try:
            section = module.run(ctx)
        except Skip as exc:
            section = Section(module.KEY, module.TITLE, [f"Skipped: {exc}."])
            section.targets = [f"not measured: {exc}."]
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others' results
            traceback.print_exc()
            failures.append(f"{module.TITLE}: {type(exc).__name__}: {exc}")
            section = Section(module.KEY, module.TITLE, [f"FAILED in this run: {type(exc).__name__}: {exc}"])
            section.targets = [f"not measured: the benchmark failed ({type(exc).__name__})."]
        if not section.seconds:
            section.seconds = time.monotonic() - started
        print(f"{module.TITLE}: {section.seconds:,.0f} s", file=sys.stderr, flush=True)
        ctx.results[module.KEY] = section
        sections.append(section)
    return sections, failures


def _baseline_label():
    path = baseline.baseline_path()
    try:
        shown = path.resolve().relative_to(ROOT.parent)
        shown = f"../{shown}"
    except ValueError:
        shown = str(path)
    return shown if path.is_file() else f"{shown} (NOT FOUND: baseline rows are empty)"


def main():
    """Run, write the report, print where it went."""
    parser = argparse.ArgumentParser(description="Benchmarks against the recipe's handler; writes BENCHMARKS.md.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that everything runs")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    started = time.monotonic()
    ctx = Context(QUICK if args.quick else FULL, quick=args.quick)
    try:
        sections, failures = run(ctx)
    finally:
        ctx.close()
    total = time.monotonic() - started
    info = {"machine": report.machine(), "baseline": _baseline_label()}
    args.output.write_text(report.render(sections, total, info), encoding="utf-8")
    print(f"Wrote {args.output} in {total:,.0f} s")
    if failures:
        # A broken benchmark is a bug, not a slow machine: say so, after writing what did run.
        sys.exit("Benchmarks that failed:\n  " + "\n  ".join(failures))


if __name__ == "__main__":
    main()
