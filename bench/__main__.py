"""`make bench`: run every benchmark against the recipe's handler; write results/bench.json and BENCHMARKS.md.

Each benchmark runs in stages: `measure(ctx)` returns its results record (plain data), the
pure functions of bench/targets.py judge the record, `figures(record)` names the figures
documents quote, and `section(record)` renders its part of BENCHMARKS.md. This entry point
orders them, gives them the run's sizes and backends (bench/context.py), stores every record
and figure in results/bench.json, and renders BENCHMARKS.md from that file alone, so
`--render` writes the same file again without measuring. A benchmark that fails is reported
as failed in its section, and the rest still run. `--quick` runs tiny sizes (seconds).
"""

import argparse
import sys
import time
import traceback
from pathlib import Path

from bench import (
    admin_list, analytics, backlog, baseline, cold_start, cost, end_to_end, hot_link, import_bench, record, report, search,
    shards, spread, targets, warm,
)
from bench.context import Context, Skip
from figures import duration

ROOT = Path(__file__).resolve().parent.parent
# Report order. Shards and backlog read the spread results (the shard count its rate needs);
# cost reads the warm, hot-link, spread and shards results: each comes after what it reads.
# analytics reads none, and comes last so that the earlier sections keep their numbers.
MODULES = (cold_start, warm, hot_link, spread, shards, backlog, cost, admin_list, import_bench, end_to_end, search,
           analytics)

FULL = {
    "cold_runs": 25,
    "warm_calls": 2000,
    "hot_link": {"rate": 10_000, "seconds": 30, "containers": 50, "adversarial_seconds": 25, "recipe_calls": 2000},
    "spread": {"links": 100_000, "rate": 10_000, "seconds": 5, "containers": 50, "thin_clicks": 2000},
    # Links per batch (one click each, on every shard), and the shard counts (plus the one spread's rate needs).
    "shards": {"links": 200, "counts": (1, 8, 16)},
    # Batches of records on one shard, Zipf over links; clicks per record as the spread run packs them.
    "backlog": {"links": 100_000, "batches": 3, "records": 50},
    "admin": {"sizes": (1_000, 10_000, 100_000), "query_reps": 30, "scan_reps": (10, 5, 3), "burst": 10_000},
    "import_rows": 10_000,
    # Links per table (one table per size), timed calls per query.
    "search": {"sizes": (1_000, 100_000), "reps": 10},
    "e2e_seconds": 10,
    # Clicks spread thin (one batch) and on a hot link (three 5 s windows); links of the dashboard's tables;
    # visitors counted by the sketch.
    "analytics": {"thin_clicks": 2000, "containers": 20, "hot": {"rate": 1000, "seconds": 15, "containers": 10},
                  "dashboard_links": (100, 10_000, 100_000), "dashboard_reps": 10, "sketch": (100, 10_000, 1_000_000)},
}
QUICK = {
    "cold_runs": 2,
    "warm_calls": 50,
    "hot_link": {"rate": 200, "seconds": 10, "containers": 5, "adversarial_seconds": 10, "recipe_calls": 50},
    "spread": {"links": 1_000, "rate": 400, "seconds": 5, "containers": 5, "thin_clicks": 100},
    "shards": {"links": 80, "counts": (1, 8, 16)},
    "backlog": {"links": 1_000, "batches": 2, "records": 5},
    "admin": {"sizes": (100, 500), "query_reps": 3, "scan_reps": (2, 1), "burst": 200},
    "import_rows": 600,
    "search": {"sizes": (200, 1_000), "reps": 2},
    "e2e_seconds": 1,
    "analytics": {"thin_clicks": 100, "containers": 5, "hot": {"rate": 100, "seconds": 10, "containers": 5},
                  "dashboard_links": (10, 500), "dashboard_reps": 2, "sketch": (100, 10_000, 100_000)},
}


def run(ctx, modules=MODULES):
    """Measure every benchmark in order; returns ({key: record}, failures). Records are plain JSON data."""
    records, failures = {}, []
    for module in modules:
        started = time.monotonic()
        try:
            result = module.measure(ctx)
        except Skip as exc:
            result = {"status": "skipped", "reason": str(exc)}
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others' results
            traceback.print_exc()
            failures.append(f"{module.TITLE}: {type(exc).__name__}: {exc}")
            result = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
        if "status" in result:
            result["seconds"] = time.monotonic() - started
        result = record.plain(result)
        print(f"{module.TITLE}: {time.monotonic() - started:,.0f} s", file=sys.stderr, flush=True)
        ctx.results[module.KEY] = result
        records[module.KEY] = result
    return records, failures


def figures(records, modules=MODULES):
    """Every figure of the measured records, by dotted key."""
    out = {}
    for module in modules:
        result = records.get(module.KEY)
        if result is not None and "status" not in result:
            out.update(module.figures(result))
            out.update(targets.verdict_figures(module.KEY, result))
    return out


def sections(records, modules=MODULES):
    """The report's sections, rendered from the records."""
    out = []
    for module in modules:
        result = records.get(module.KEY)
        if result is None:
            continue
        if "status" in result:
            out.append(report.failed(module.KEY, module.TITLE, result))
        else:
            out.append(module.section(result))
    return out


def render(doc, modules=MODULES):
    """BENCHMARKS.md's text from a results document (what `record.load` gives back)."""
    run_info = doc["run"]
    return report.render(sections(doc["records"], modules), run_info["total_seconds"], run_info)


def _baseline_label():
    path = baseline.baseline_path()
    try:
        shown = path.relative_to(ROOT.parent)  # not resolved: ../shared may be a symlink
        shown = f"../{shown}"
    except ValueError:
        shown = str(path)
    return shown if path.is_file() else f"{shown} (NOT FOUND: baseline rows are empty)"


def select(only, modules=MODULES):
    """The modules named in `only` ("KEY[,KEY]"), in report order; ValueError naming an unknown key."""
    keys = [key.strip() for key in only.split(",") if key.strip()]
    known = {module.KEY: module for module in modules}
    unknown = [key for key in keys if key not in known]
    if unknown or not keys:
        raise ValueError(f"unknown benchmark(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}")
    return tuple(module for module in modules if module.KEY in keys)


def merge_results(previous, records, seconds, modules=MODULES):
    """A results document with `records` replacing their keys in `previous` (a document, or None) and every
    other record kept: the figures are computed again from the merged records, the run's facts kept and the
    re-run noted."""
    merged = dict(previous["records"]) if previous else {}
    merged.update(records)
    if previous:
        run_info = dict(previous["run"])
    else:
        run_info = {"machine": report.machine(), "baseline": _baseline_label(), "total_seconds": seconds}
    run_info["rerun"] = {"modules": list(records), "seconds": seconds, "date": report.machine()["date"]}
    found = figures(merged, modules)
    found["run.seconds"] = (previous or {}).get("figures", {}).get("run.seconds") or record.figure(
        duration(run_info["total_seconds"]), round(run_info["total_seconds"]), "measured")
    return record.document(merged, found, run_info)


def main():
    """Run, store the records and figures, render the report from them; or only render (--render)."""
    parser = argparse.ArgumentParser(description="Benchmarks against the recipe's handler; writes BENCHMARKS.md.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that everything runs")
    parser.add_argument("--render", action="store_true", help="only render BENCHMARKS.md from the results file")
    parser.add_argument("--only", metavar="KEY[,KEY]",
                        help="run only these benchmarks and keep the other records of the results file"
                             f" ({', '.join(module.KEY for module in MODULES)})")
    parser.add_argument("--output", type=Path, help="default: BENCHMARKS.md (build/BENCHMARKS-quick.md with --quick)")
    parser.add_argument("--results", type=Path, help="default: results/bench.json (build/bench-quick.json with --quick)")
    args = parser.parse_args()
    try:
        modules = select(args.only, MODULES) if args.only else MODULES
    except ValueError as exc:
        parser.error(str(exc))
    # A quick run's tiny figures must never replace the committed ones by accident.
    build = ROOT / "build"
    args.output = args.output or (build / "BENCHMARKS-quick.md" if args.quick else ROOT / "BENCHMARKS.md")
    args.results = args.results or (build / "bench-quick.json" if args.quick else ROOT / "results" / "bench.json")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.render:
        args.output.write_text(render(record.load(args.results), MODULES), encoding="utf-8")
        print(f"Wrote {args.output} from {args.results}")
        return
    # Read first: a results file that cannot be read stops the run before it measures anything.
    previous = record.load(args.results) if args.only and args.results.is_file() else None
    started = time.monotonic()
    ctx = Context(QUICK if args.quick else FULL, quick=args.quick)
    if previous:
        ctx.results.update(previous["records"])  # what a re-run module reads of the others (cost reads four)
    try:
        records, failures = run(ctx, modules)
    finally:
        ctx.close()
    seconds = time.monotonic() - started
    if args.only:
        doc = merge_results(previous, records, seconds, MODULES)
    else:
        run_info = {"machine": report.machine(), "baseline": _baseline_label(), "total_seconds": seconds}
        found = figures(records, MODULES)
        found["run.seconds"] = record.figure(duration(seconds), round(seconds), "measured")
        doc = record.document(records, found, run_info)
    record.write(args.results, doc)
    # Rendered from the file just written, so a later --render gives the same text.
    args.output.write_text(render(record.load(args.results), MODULES), encoding="utf-8")
    print(f"Wrote {args.results} and {args.output} in {seconds:,.0f} s")
    if failures:
        # A broken benchmark is a bug, not a slow machine: say so, after writing what did run.
        sys.exit("Benchmarks that failed:\n  " + "\n  ".join(failures))


if __name__ == "__main__":
    main()
