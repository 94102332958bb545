"""Warm redirects: latency and CPU per invocation, and DynamoDB requests per redirect.

Three scenarios run interleaved, call by call, so that a busy moment on the machine
lands on all of them alike: ours on a cache miss (the cache is cleared before the
call), ours on a cache hit (the call right after, which the miss has just cached),
and the recipe's handler (GetItem + UpdateItem every time). Latency is wall time
around `lambda_handler`; CPU is the calling thread's CPU time (time.thread_time), so
the backend's own work, in another process, is not counted. Requests are counted with
botocore's `before-call` hook on each handler's own client.
"""

import contextlib
import time

from bench import baseline
from bench.backends import client_for
from bench.context import LINK, OUR_TABLE, RECIPE_TABLE, Skip
from bench.fixtures import seed_salts
from bench.handlers import RequestCounter, load_ours
from bench.record import figure
from bench.report import Section, ms, number, times
from bench.stats import ratio, summarize
from bench.targets import evaluate, request_counts
from local_stack.http_api import to_event
from local_stack.template import salts_table_name

KEY = "warm"
TITLE = "Warm redirect"
SCENARIOS = ("ours_miss", "ours_hit", "recipe")
LABELS = {"ours_hit": "Ours, cache hit", "ours_miss": "Ours, cache miss", "recipe": "Recipe"}


class _Side:
    """One scenario's handler, event, counter and samples."""

    def __init__(self, handler, event, counter, before=None):
        self.handler, self.event, self.counter, self.before = handler, event, counter, before
        self.wall, self.cpu = [], []
        self.reads = self.writes = 0

    def call(self, measure=True):
        if self.before:
            self.before()
        reads, writes = self.counter.reads, self.counter.writes
        cpu0 = time.thread_time()
        t0 = time.perf_counter()
        response = self.handler(self.event, None)
        t1 = time.perf_counter()
        cpu1 = time.thread_time()
        if response["statusCode"] != 302:
            raise RuntimeError(f"expected a redirect, got {response['statusCode']}")
        if measure:
            self.wall.append(t1 - t0)
            self.cpu.append(cpu1 - cpu0)
            self.reads += self.counter.reads - reads
            self.writes += self.counter.writes - writes

    def summary(self):
        calls = len(self.wall)
        return {
            "latency": summarize(self.wall),
            "cpu": summarize(self.cpu),
            "reads_per_redirect": self.reads / calls,
            "writes_per_redirect": self.writes / calls,
            "calls": calls,
        }


class _ClickLines:
    """The redirect's stdout: counts its click lines, and those that carry a visitor hash ("v")."""

    def __init__(self):
        self.lines = self.hashed = 0

    def write(self, text):
        for line in text.split("\n"):
            if '"type": "click"' in line or '"type":"click"' in line:
                self.lines += 1
                self.hashed += '"v":' in line
        return len(text)

    def flush(self):
        pass


def run_backend(endpoint, our_table, recipe_table, short_id, calls=2000, warmup=50):
    """All three scenarios on one backend; returns {scenario: summary} and "hashed": whether every click line
    of ours carried a visitor hash. The redirect has the day's salt (and the next day's, should the run cross
    midnight), so the timed path hashes the visitor as deployed: one salt GetItem per container and day, in
    the warm-up."""
    salt_table = salts_table_name(our_table)
    now = time.time()
    seed_salts(client_for(endpoint), salt_table, [time.strftime("%Y-%m-%d", time.gmtime(now + d)) for d in (0, 86400)])
    ours = load_ours(endpoint, our_table, salt_table)
    event = to_event(
        "GET", f"/{short_id}", [("Host", "sho.rt"), ("User-Agent", "bench/1.0"), ("Referer", "https://news.example/")]
    )
    our_counter = RequestCounter(ours._client)
    sides = {
        "ours_miss": _Side(ours.lambda_handler, event, our_counter, before=ours._cache.clear),
        "ours_hit": _Side(ours.lambda_handler, event, our_counter),
    }
    if baseline.available():
        recipe = baseline.load(endpoint, recipe_table)
        sides["recipe"] = _Side(
            recipe.lambda_handler, baseline.to_v1(event), RequestCounter(baseline.client_of(recipe))
        )
    sink = _ClickLines()
    with contextlib.redirect_stdout(sink):
        for i in range(warmup + calls):
            for side in sides.values():
                side.call(measure=i >= warmup)
    ours._cache.clear()
    result = {name: side.summary() for name, side in sides.items()}
    result["hashed"] = sink.lines > 0 and sink.hashed == sink.lines
    return result


def measure(ctx):
    """The warm benchmark on the stub and on DynamoDB Local; a backend that fails is reported, the other still runs."""
    started = time.monotonic()
    calls = ctx.sizes["warm_calls"]
    results = {}
    backends = [("zero-latency stub", lambda: ctx.stub.endpoint), ("DynamoDB Local", lambda: ctx.dynamodb_local().endpoint)]
    for name, endpoint in backends:
        try:
            results[name] = run_backend(ctx.seeded(endpoint()), OUR_TABLE, RECIPE_TABLE, LINK, calls=calls)
        except Skip as exc:
            results[name] = str(exc)
    return {"calls": calls, "backends": results, "seconds": time.monotonic() - started}


STUB = "zero-latency stub"


def figures(record):
    """The figures documents quote: the stub's requests per redirect and latency ratios."""
    result = record["backends"].get(STUB)
    if not isinstance(result, dict):
        return {}
    hit, miss, recipe = result["ours_hit"], result["ours_miss"], result.get("recipe")
    out = {
        "warm.hit_requests": figure(request_counts(hit), hit["reads_per_redirect"] + hit["writes_per_redirect"], "measured"),
        "warm.miss_requests": figure(request_counts(miss), miss["reads_per_redirect"] + miss["writes_per_redirect"], "measured"),
    }
    if recipe:
        out["warm.recipe_requests"] = figure(
            request_counts(recipe), recipe["reads_per_redirect"] + recipe["writes_per_redirect"], "measured"
        )
        for scenario, name in (("ours_hit", "hit"), ("ours_miss", "miss")):
            value = ratio(result[scenario]["latency"]["median"], recipe["latency"]["median"])
            digits = 3 if scenario == "ours_hit" else 2
            out[f"warm.{name}_latency_ratio"] = figure(times(value, digits), value, "measured")
    return out


def _summary_rows(results):
    """Headline rows."""
    rows = []
    for backend, result in results.items():
        if isinstance(result, str):
            continue
        recipe = result.get("recipe")
        hit, miss = result["ours_hit"], result["ours_miss"]
        labels = (("ours_hit", "hit"), ("ours_miss", "miss")) if backend == STUB else (("ours_miss", "miss"),)
        for scenario, label in labels:
            ours = result[scenario]["latency"]["median"]
            rows.append(
                [
                    f"Warm redirect, cache {label}, {backend} (median)",
                    ms(ours),
                    ms(recipe["latency"]["median"]) if recipe else "–",
                    times(ratio(ours, recipe["latency"]["median"]), 3) if recipe else "–",
                    "measured",
                ]
            )
        if backend == STUB:
            rows.append(
                [
                    "DynamoDB requests per redirect",
                    f"hit: {request_counts(hit)}; miss: {request_counts(miss)}",
                    request_counts(recipe) if recipe else "–",
                    "–",
                    "measured",
                ]
            )
    return rows


def section(record):
    """The report section, from the record ({backend name: run_backend result, or why it was skipped})."""
    results, calls, seconds = record["backends"], record["calls"], record["seconds"]
    headers = [
        "Backend",
        "Scenario",
        "Latency median",
        "Latency p99",
        "CPU median",
        "CPU p99",
        "Reads / redirect",
        "Writes / redirect",
        "Latency ÷ recipe",
        "CPU ÷ recipe",
    ]
    rows, notes = [], []
    for backend, result in results.items():
        if isinstance(result, str):
            rows.append([backend, f"skipped: {result}"] + [""] * 8)
            continue
        recipe = result.get("recipe")
        for scenario in SCENARIOS:
            if scenario not in result:
                rows.append([backend, LABELS[scenario], "recipe not found"] + [""] * 7)
                continue
            r = result[scenario]
            rows.append(
                [
                    backend,
                    LABELS[scenario],
                    ms(r["latency"]["median"]),
                    ms(r["latency"]["p99"]),
                    ms(r["cpu"]["median"]),
                    ms(r["cpu"]["p99"]),
                    number(r["reads_per_redirect"], 2),
                    number(r["writes_per_redirect"], 2),
                    times(ratio(r["latency"]["median"], recipe["latency"]["median"])) if recipe else "–",
                    times(ratio(r["cpu"]["median"], recipe["cpu"]["median"])) if recipe else "–",
                ]
            )
        if recipe:
            notes.append(f"{backend}: the recipe made {request_counts(recipe)} per redirect.")
    how = [
        f"{calls:,} measured calls per scenario per backend (after 50 unmeasured warm-up calls), interleaved call by"
        " call: ours on a miss (cache cleared first), ours on a hit, then the recipe's.",
        "Latency: wall time around `lambda_handler`. CPU: `time.thread_time()` of the calling thread, so the backend's"
        " work in its own process is excluded. p99 is the nearest-rank 99th percentile.",
        "Requests: counted with `before-call.dynamodb` hooks on `redirect_fn.handler._client` and on the recipe's"
        " `table.meta.client`.",
        "Backends: (a) the zero-latency stub (bench/stub_dynamodb.py, its own process, TCP_NODELAY, keep-alive),"
        " which shows the handlers' own cost; (b) DynamoDB Local in memory, which adds the emulator's few ms per"
        " request, as the network and DynamoDB would on AWS.",
        "Each side reads its own table in its own item format: ours is the project table from cloudformation.yaml,"
        " the recipe's has the hash key `short_id`.",
    ]
    section_ = Section(KEY, TITLE, how, headers, rows, notes, record, seconds)
    section_.headline = _summary_rows(results)
    section_.targets = [t.line() for t in evaluate(KEY, record)]
    return section_
