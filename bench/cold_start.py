"""Cold start: a fresh interpreter, through import and client creation, to the first response.

Each run is a new `python -c` process that imports a handler (ours, or the recipe's
from outside the repo), lets it build its client or resource at module scope as Lambda
would, and answers one redirect. The parent notes CLOCK_MONOTONIC (system-wide on
Linux) before spawning and the child notes it at the first response, so the time
includes interpreter start-up but not interpreter exit. Ours and the recipe's runs
alternate, so a slow moment on the machine hits both sides alike; the first run of
each is a discarded warm-up that fills the bytecode cache.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import baseline
from bench.handlers import backend_env
from bench.context import LINK, OUR_TABLE, RECIPE_TABLE
from bench.record import figure
from bench.report import Section, ms, times
from bench.stats import percentile, ratio, summarize
from bench.targets import COLD_START_RATIO, evaluate
from local_stack.http_api import to_event

KEY = "cold_start"
TITLE = "Cold start"
ROOT = Path(__file__).resolve().parent.parent
# Both sides compile into the same git-ignored cache: the seed folder is not ours to write in.
PYCACHE = ROOT / ".cache" / "bench" / "pycache"

_PRELUDE = """
import time
_t0 = time.monotonic()
import json, os, resource, sys
_out = sys.stdout
sys.stdout = open(os.devnull, "w")  # the handler's own log line
"""
# Each side imports its AWS SDK first, on its own, only to time it apart: the module body
# would import exactly the same thing a moment later, so the total work is unchanged.
_OURS = """
_ta = time.monotonic()
import botocore.session
_tb = time.monotonic()
sys.path.insert(0, {root!r})
import redirect_fn.handler as module
"""
_RECIPE = """
import importlib.util
_ta = time.monotonic()
import boto3
_tb = time.monotonic()
spec = importlib.util.spec_from_file_location("lambda_function", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
"""
_INVOKE = """
_t1 = time.monotonic()
response = module.lambda_handler(json.loads({event!r}), None)
_t2 = time.monotonic()
usage = resource.getrusage(resource.RUSAGE_SELF)
_out.write(json.dumps({{"t0": _t0, "ta": _ta, "tb": _tb, "t1": _t1, "t2": _t2, "status": response["statusCode"],
                        "cpu": usage.ru_utime + usage.ru_stime}}) + "\\n")
"""


def child_script(side, short_id):
    """The `python -c` program for one side: import, build the client, answer one redirect."""
    event = to_event("GET", f"/{short_id}", [("Host", "sho.rt"), ("User-Agent", "bench")])
    if side == "ours":
        body = _OURS.format(root=str(ROOT))
    else:
        body = _RECIPE.format(path=str(baseline.baseline_path()))
        event = baseline.to_v1(event)
    return _PRELUDE + body + _INVOKE.format(event=json.dumps(event))


def run_once(script, env):
    """One cold start; returns the child's timings plus the parent-side total."""
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"cold-start child failed: {result.stderr[-2000:]}")
    child = json.loads(result.stdout.strip().splitlines()[-1])
    return {
        "total": child["t2"] - start,
        "init": child["t1"] - child["t0"],
        "sdk_import": child["tb"] - child["ta"],
        "module_body": child["t1"] - child["tb"],
        "first_invoke": child["t2"] - child["t1"],
        "cpu": child["cpu"],
        "status": child["status"],
    }


def measure(ctx):
    """Cold starts of both sides against the stub: the results record."""
    return measure_on(ctx.seeded(ctx.stub.endpoint), OUR_TABLE, RECIPE_TABLE, LINK, runs=ctx.sizes["cold_runs"])


def measure_on(endpoint, our_table, recipe_table, short_id, runs=15):
    """Alternate `runs` cold starts of each side (after one warm-up each) against `endpoint`."""
    started = time.monotonic()
    PYCACHE.mkdir(parents=True, exist_ok=True)
    sides = ["ours"] + (["recipe"] if baseline.available() else [])
    envs, scripts, samples = {}, {}, {}
    for side in sides:
        env = dict(os.environ)
        for name, value in backend_env(endpoint, our_table if side == "ours" else recipe_table).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        envs[side], scripts[side] = env, child_script(side, short_id)
        samples[side] = []
    for i in range(runs + 1):
        for side in sides:
            sample = run_once(scripts[side], envs[side])
            if i > 0:
                samples[side].append(sample)
    return summarise(samples, runs, time.monotonic() - started)


def _where_the_time_goes(data):
    """A data-driven sentence on where the difference between the sides comes from."""
    ours, recipe = data["ours"], data["recipe"]
    sdk_saved = recipe["sdk_import"]["median"] - ours["sdk_import"]["median"]
    body_saved = recipe["module_body"]["median"] - ours["module_body"]["median"]
    share = ours["sdk_import"]["median"] / ours["total"]["median"]
    return (
        f"Where the time goes: importing the SDK is {share:.0%} of our cold start. Against the recipe, ours saves"
        f" {ms(sdk_saved)} by importing botocore without boto3 and {ms(body_saved)} in the module body (one client"
        " instead of a resource and a Table). As long as the redirect loads botocore at all, the SDK import alone"
        f" puts a floor of {ms(ours['sdk_import']['median'])} under ours, i.e."
        f" {times(ours['sdk_import']['median'] / recipe['total']['median'])} the recipe's whole cold start."
    )


def summarise(samples, runs, seconds):
    """The results record: medians and p99s per side and metric, and the ratios."""
    data = {"runs": runs, "executable": sys.executable, "seconds": seconds}
    for side, runs_of_side in samples.items():
        data[side] = {
            metric: summarize([s[metric] for s in runs_of_side])
            for metric in ("total", "init", "sdk_import", "module_body", "first_invoke", "cpu")
        }
        data[side]["statuses"] = sorted({s["status"] for s in runs_of_side})
    recipe = data.get("recipe")
    data["ratio_total"] = ratio(data["ours"]["total"]["median"], recipe["total"]["median"]) if recipe else None
    if recipe:
        # Runs alternate, so run i of each side saw the same moment on the machine: the ratio per
        # pair is steadier than the ratio of medians when other work on the machine comes and goes.
        paired = [o["total"] / r["total"] for o, r in zip(samples["ours"], samples["recipe"])]
        data["paired_ratio"] = {
            "median": statistics.median(paired),
            "p10": percentile(paired, 10),
            "p90": percentile(paired, 90),
        }
    return data


def figures(data):
    """The figures documents quote."""
    out = {"cold_start.ours_ms": figure(ms(data["ours"]["total"]["median"]), data["ours"]["total"]["median"], "measured")}
    if data.get("recipe"):
        out["cold_start.recipe_ms"] = figure(
            ms(data["recipe"]["total"]["median"]), data["recipe"]["total"]["median"], "measured"
        )
        out["cold_start.ratio"] = figure(times(data["ratio_total"]), data["ratio_total"], "measured")
    return out


LABELS = {
    "total": "Fresh interpreter → first response",
    "init": "Import + client/resource creation (all module-scope work)",
    "sdk_import": "… of which importing the SDK (ours: botocore; recipe: boto3, which imports botocore)",
    "module_body": "… of which the handler module itself (ours: one client; recipe: resource + Table)",
    "first_invoke": "First invocation",
    "cpu": "CPU time of the whole process so far",
}


def section(data):
    """The report section, from the record."""
    recipe = data.get("recipe")
    sides = ["ours"] + (["recipe"] if recipe else [])
    headers = ["Metric (median of runs)", "Ours", "Recipe", "Ours ÷ recipe"]
    rows = []
    for metric, label in LABELS.items():
        ours_value = data["ours"][metric]["median"]
        recipe_value = recipe[metric]["median"] if recipe else None
        rows.append(
            [
                label,
                ms(ours_value),
                ms(recipe_value) if recipe else "recipe not found",
                times(ratio(ours_value, recipe_value)),
            ]
        )
    if recipe:
        paired = data["paired_ratio"]
        rows.append(
            [
                "Ours ÷ recipe per alternating pair of runs (median; 10th–90th percentile)",
                "",
                "",
                f"{times(paired['median'])} ({times(paired['p10'])}–{times(paired['p90'])})",
            ]
        )
    notes = [
        f"p99 of the total: ours {ms(data['ours']['total']['p99'])}"
        + (f", recipe {ms(recipe['total']['p99'])}." if recipe else "."),
        _where_the_time_goes(data) if recipe else "Breakdown: no recipe to compare with.",
        "Lambda bills the init phase of on-demand ZIP functions since 1 August 2025, so this time is paid for"
        " on every cold start, not only waited for.",
    ]
    how = [
        f"{data['runs']} runs per side, medians reported; each run is a fresh `python -c` process (`{data['executable']}`).",
        "Backend: the zero-latency stub (in its own process), seeded with the link in each side's item format, so"
        " the emulator's own latency does not blur the start-up cost.",
        "Ours: `import redirect_fn.handler` (payload 2.0 event). Recipe: its file loaded with importlib"
        " (payload 1.0 event, as its integration sends). Both answer one real redirect (status "
        + ", ".join(f"{side}: {data[side]['statuses']}" for side in sides)
        + ").",
        "Each child imports its SDK (botocore for ours, boto3 for the recipe) just before the handler module, only"
        " to time that import apart; the module would import the same a moment later, so the work is unchanged.",
        "Bytecode for both sides is compiled once into `.cache/bench/pycache` (PYTHONPYCACHEPREFIX), as a"
        " deployed package would ship it; the warm-up run is discarded.",
    ]
    section_ = Section(KEY, TITLE, how, headers, rows, notes, data, data["seconds"])
    if recipe:
        section_.headline = [
            [
                "Cold start, fresh interpreter → first response (median)",
                ms(data["ours"]["total"]["median"]),
                ms(recipe["total"]["median"]),
                f"{times(data['ratio_total'])} (target ≤ {COLD_START_RATIO}×)",
                "measured",
            ]
        ]
    section_.targets = [t.line() for t in evaluate(KEY, data)]
    return section_
