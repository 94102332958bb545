"""Cost per million redirects: counted requests × AWS on-demand list prices (us-east-1).

All prices live in PRICES, in this one place, with where they were read and when.
Lambda duration cannot be measured here, so it is modelled from what is measured:
billed ms = ceil(CPU ms measured here × 1,769 ÷ memory MB + DynamoDB round trips × an
assumed in-region round trip). Lambda gives a function CPU in proportion to its memory,
one full vCPU at 1,769 MB, and we assume one core here is worth one Lambda vCPU.
"""

import math
import time

import yaml

from bench.record import figure
from bench.report import Section, number, times
from bench.stats import ratio
from bench.targets import evaluate
from local_stack.template import load_template

KEY = "cost"
TITLE = "Cost per million redirects"
HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600

PRICES_CHECKED = "2026-11-27"
REGION = "us-east-1"
# List prices as published, us-east-1, first (smallest-volume) tier, no free tier: USD, and what per.
PRICES = {
    "http_api_request": (1.00 / 1e6, 1e6, "HTTP API, per million requests (first 300 million a month)"),
    "lambda_request": (0.20 / 1e6, 1e6, "Lambda, per million requests"),
    "lambda_gb_second_arm64": (0.0000133334, 1, "Lambda arm64, per GB-second (first 7.5 billion GB-s a month)"),
    "lambda_gb_second_x86_64": (0.0000166667, 1, "Lambda x86_64, per GB-second (first 6 billion GB-s a month)"),
    "dynamodb_read_unit": (0.125 / 1e6, 1e6, "DynamoDB on-demand, per million read request units"),
    "dynamodb_write_unit": (0.625 / 1e6, 1e6, "DynamoDB on-demand, per million write request units"),
    "logs_gb": (0.50, 1, "CloudWatch Logs ingestion (Standard), per GB"),
    "kinesis_shard_hour": (0.015, 1, "Kinesis Data Streams (provisioned), per shard-hour"),
    "kinesis_put_unit": (0.014 / 1e6, 1e6, "Kinesis Data Streams, per million PUT payload units (25 KB each)"),
    "cloudwatch_dashboard": (3.00, 1, "CloudWatch dashboard, per month (beyond the 3 free)"),
    "cloudwatch_alarm": (0.10, 1, "CloudWatch standard-resolution alarm, per alarm metric per month"),
}


def price(name):
    """USD per single unit (request, GB-second, request unit, GB)."""
    return PRICES[name][0]


def _usd(value):
    text = f"{value:.10f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"${whole}.{decimals.ljust(2, '0')}"


def price_list():
    """The prices as people read them: "label: $x"."""
    return [f"{label}: {_usd(value * per)}" for value, per, label in PRICES.values()]


# The AWS pages are where these prices are published. The figures were read on the date
# above from stored copies of the pages below (not fetched live); where the stored AWS page
# showed the terms but not the figure, a page quoting the us-east-1 list price was used.
PRICE_SOURCES = [
    "AWS pricing pages: https://aws.amazon.com/api-gateway/pricing/, https://aws.amazon.com/lambda/pricing/,"
    " https://aws.amazon.com/dynamodb/pricing/on-demand/ (unit definitions: eventually consistent read ≤ 4 KB ="
    " ½ unit, transactional write = 2 units per KB), https://aws.amazon.com/cloudwatch/pricing/",
    "figures as quoted for us-east-1 by: learnaws.org (HTTP API tiers), cloudchipr.com and a Lambda cost note"
    " (Lambda requests and GB-s, arm64 and x86), airbyte.com (DynamoDB on-demand after the November 2024 cut),"
    " hykell.com and duckbillgroup.com (CloudWatch Logs $0.50 per GB, first tier of Lambda's tiered log pricing)",
    "Kinesis Data Streams (https://aws.amazon.com/kinesis/data-streams/pricing/, provisioned mode, us-east-1):"
    " billed per shard-hour and per million 25 KB PUT payload units (the model as a stored copy of that page"
    " states it); the rates $0.015 and $0.014 are the long-standing us-east-1 list prices as known on 2026-11-27,"
    " not read from that copy — CHECK THEM there before relying on them",
    "CloudWatch dashboards ($3.00 a month each) and alarms ($0.10 a month per standard alarm metric), from"
    " https://aws.amazon.com/cloudwatch/pricing/ as remembered on 2026-11-27 — CHECK THEM there",
]

# Lambda configurations compared. Ours come from cloudformation.yaml (MemorySize and
# Architectures of the functions whose Handler is ours), falling back to these when the
# template does not define them; the recipe deploys with `--memory-size 256` and no
# architecture, so x86_64.
_FALLBACK = {
    "ours_redirect": {"memory_mb": 128, "arch": "arm64", "source": "assumed"},
    "ours_aggregator": {"memory_mb": 128, "arch": "arm64", "source": "assumed"},
}
RECIPE_LAMBDA = {"memory_mb": 256, "arch": "x86_64", "source": "the recipe's deploy step"}
_HANDLERS = {
    "ours_redirect": "redirect_fn.handler.lambda_handler",
    "ours_aggregator": "aggregator.handler.lambda_handler",
}


def lambda_configs(template=None):
    """Memory and architecture of our two functions (from the template) and of the recipe's."""
    configs = {"recipe": RECIPE_LAMBDA}
    try:
        template = template or load_template()
    except (OSError, yaml.YAMLError):
        template = {}
    parameters = template.get("Parameters") or {}
    functions = {
        resource["Properties"].get("Handler"): resource["Properties"]
        for resource in (template.get("Resources") or {}).values()
        if resource.get("Type") == "AWS::Lambda::Function"
    }
    for key, handler in _HANDLERS.items():
        props = functions.get(handler)
        memory = props.get("MemorySize") if props else None
        if isinstance(memory, dict) and "Ref" in memory:
            memory = (parameters.get(memory["Ref"]) or {}).get("Default")
        if props is None or memory is None:
            configs[key] = _FALLBACK[key]
            continue
        arch = (props.get("Architectures") or ["x86_64"])[0]
        configs[key] = {"memory_mb": int(memory), "arch": arch, "source": "cloudformation.yaml"}
    return configs


FULL_VCPU_MB = 1769
DYNAMODB_ROUND_TRIP_SECONDS = 0.005  # assumed: "single-digit milliseconds" in-region
# Lambda writes START, END and REPORT lines for every invocation. The recipe pays them on every
# redirect; our redirect sets LoggingConfig.SystemLogLevel WARN, which drops them; our
# aggregator keeps them (INFO), once per batch.
PLATFORM_LOG_LINES = (
    "START RequestId: 3f2b5d1e-7c4a-4e8f-9b6d-2a1c0e9f8d7b Version: $LATEST\n"
    "END RequestId: 3f2b5d1e-7c4a-4e8f-9b6d-2a1c0e9f8d7b\n"
    "REPORT RequestId: 3f2b5d1e-7c4a-4e8f-9b6d-2a1c0e9f8d7b\tDuration: 1.84 ms\tBilled Duration: 2 ms\t"
    "Memory Size: 128 MB\tMax Memory Used: 52 MB\t\n"
)
GB = 1024**3


def billed_seconds(cpu_seconds, round_trips, memory_mb):
    """Modelled billed duration of one invocation, rounded up to Lambda's 1 ms."""
    seconds = cpu_seconds * FULL_VCPU_MB / memory_mb + round_trips * DYNAMODB_ROUND_TRIP_SECONDS
    return math.ceil(seconds * 1000) / 1000


def lambda_duration_cost(billed, config):
    """USD for one invocation of `billed` seconds."""
    return billed * config["memory_mb"] / 1024 * price(f"lambda_gb_second_{config['arch']}")



# The aggregator's own log per batch besides START/END/REPORT: one INFO summary line (assumed size).
AGGREGATOR_SUMMARY_LOG_BYTES = 250
WRITE_THREADS = 16  # aggregator/handler.py's default


def _redirect_duration(warm, miss_share, cfg):
    hit = billed_seconds(warm["ours_hit"]["cpu"]["median"], 0, cfg["memory_mb"])
    miss = billed_seconds(warm["ours_miss"]["cpu"]["median"], 1, cfg["memory_mb"])
    return (1 - miss_share) * hit + miss_share * miss


def ours_per_redirect(warm, flow, configs):
    """Per-redirect USD by component for our design, from one pipeline run's counts (`flow`)."""
    redirect_cfg, agg_cfg = configs["ours_redirect"], configs["ours_aggregator"]
    redirect_billed = _redirect_duration(warm, flow["miss_share"], redirect_cfg)
    # The aggregator's work per click: its CPU (scaled to its memory) and its item writes, WRITE_THREADS at a time.
    agg_seconds = (
        flow["aggregator_cpu_per_click"] * FULL_VCPU_MB / agg_cfg["memory_mb"]
        + flow["items_per_click"] / WRITE_THREADS * DYNAMODB_ROUND_TRIP_SECONDS
    )
    components = {
        "HTTP API requests": price("http_api_request"),
        "Lambda requests (redirect)": price("lambda_request"),
        "Lambda duration (redirect)": lambda_duration_cost(redirect_billed, redirect_cfg),
        "Lambda duration (aggregator, per click)": lambda_duration_cost(agg_seconds, agg_cfg),
        "DynamoDB reads": flow["read_units"] * price("dynamodb_read_unit"),
        "DynamoDB writes": flow["write_units"] * price("dynamodb_write_unit"),
        "CloudWatch Logs ingestion": flow["log_bytes"] / GB * price("logs_gb"),
        "Kinesis PUT payload units": flow["put_units"] * price("kinesis_put_unit"),
    }
    facts = {
        "billed_ms_redirect": redirect_billed * 1000,
        "read_units": flow["read_units"],
        "write_units": flow["write_units"],
        "log_bytes": flow["log_bytes"],
        "put_units": flow["put_units"],
    }
    return components, facts


def recipe_per_redirect(warm, recipe, cfg):
    """Per-redirect USD by component for the recipe, from its counted requests and measured output."""
    billed = billed_seconds(
        warm["recipe"]["cpu"]["median"], recipe["reads_per_redirect"] + recipe["writes_per_redirect"], cfg["memory_mb"]
    )
    log_bytes = recipe["log_bytes_per_redirect"] + len(PLATFORM_LOG_LINES)
    components = {
        "HTTP API requests": price("http_api_request"),
        "Lambda requests (redirect)": price("lambda_request"),
        "Lambda duration (redirect)": lambda_duration_cost(billed, cfg),
        "Lambda duration (aggregator, per click)": 0.0,
        "DynamoDB reads": recipe["read_units_per_redirect"] * price("dynamodb_read_unit"),
        "DynamoDB writes": recipe["write_units_per_redirect"] * price("dynamodb_write_unit"),
        "CloudWatch Logs ingestion": log_bytes / GB * price("logs_gb"),
        "Kinesis PUT payload units": 0.0,
    }
    facts = {
        "billed_ms_redirect": billed * 1000,
        "read_units": recipe["read_units_per_redirect"],
        "write_units": recipe["write_units_per_redirect"],
        "log_bytes": log_bytes,
        "put_units": 0,
    }
    return components, facts


def hot_flow(hot):
    """Per-click counts of the hot-link run (per-batch costs are in the fixed table)."""
    clicks = hot["redirects"]
    batches = max(hot["batches"], 1)
    return {
        "miss_share": hot["reads"] / clicks,
        "read_units": hot["read_units"] / clicks,
        "write_units": (hot["write_units"] - batches) / clicks,  # less the checkpoint, one per batch
        "items_per_click": (hot["aggregator_ops"].get("UpdateItem", 0) - batches) / clicks,
        "aggregator_cpu_per_click": hot["aggregator_cpu"] / clicks,
        "log_bytes": hot["line_bytes"] / max(hot["lines"], 1),
        "put_units": hot["put_units"] / clicks,
    }


def thin_flow(thin, zipf):
    """Per-click counts spread thin: the thin run's reads and writes, the 10k/s run's records per click."""
    clicks = thin["clicks"]
    batches = max(thin["batches"], 1)
    return {
        "miss_share": thin["reads"] / clicks,
        "read_units": thin["read_units"] / clicks,
        "write_units": (thin["table_units"] + thin["index_units"] - batches) / clicks,
        "items_per_click": (thin["aggregator_ops"].get("UpdateItem", 0) - batches) / clicks,
        "aggregator_cpu_per_click": thin["aggregator_cpu"] / clicks,
        "log_bytes": thin["line_bytes"] / max(thin["lines"], 1),
        "put_units": zipf["put_units"] / max(zipf["lines"], 1),
    }


def fixed_monthly(window, configs, template=None, shards=None):
    """[(item, USD a month, how)]: what ours pays whatever the traffic (or at most, per batching window).

    `shards` defaults to what the stack deploys (ClickStreamShards' default in the template).
    """
    template = template or load_template()
    if shards is None:
        shards = int(template["Parameters"]["ClickStreamShards"]["Default"])
    resources = (template.get("Resources") or {}).values()
    alarms = sum(1 for r in resources if r.get("Type") == "AWS::CloudWatch::Alarm")
    dashboards = sum(1 for r in resources if r.get("Type") == "AWS::CloudWatch::Dashboard")
    batches = SECONDS_PER_MONTH / window * shards
    agg_cfg = configs["ours_aggregator"]
    # Per batch: the invocation, ~4 round trips (checkpoint read, stream check x2, checkpoint write),
    # the checkpoint's strongly consistent read (1 unit) and write (1 unit), and its log lines.
    per_batch = (
        price("lambda_request")
        + lambda_duration_cost(billed_seconds(0, 4, agg_cfg["memory_mb"]), agg_cfg)
        + price("dynamodb_read_unit")
        + price("dynamodb_write_unit")
        + (len(PLATFORM_LOG_LINES) + AGGREGATOR_SUMMARY_LOG_BYTES) / GB * price("logs_gb")
    )
    return [
        ("Kinesis shards", shards * HOURS_PER_MONTH * price("kinesis_shard_hour"),
         f"{shards} shard(s) (ClickStreamShards) × {HOURS_PER_MONTH} h"),
        ("Aggregator batches: invocation, checkpoint read + write, logs", batches * per_batch,
         f"at most one batch per shard per {window} s window ({number(batches)} a month), when clicks arrive in every window"),
        ("CloudWatch dashboard", dashboards * price("cloudwatch_dashboard"),
         f"{dashboards} in cloudformation.yaml (free if the account has fewer than 3)"),
        ("CloudWatch alarms", alarms * price("cloudwatch_alarm"), f"{alarms} in cloudformation.yaml"),
    ]


def _money(usd):
    """Dollars with 3 decimals, or 2 significant digits when smaller than that."""
    return f"${usd:,.3f}" if usd == 0 or usd >= 0.001 else f"${usd:.2g}"


def measure(ctx):
    """The cost model's record, from the warm, hot-link and spread records of this run."""
    started = time.monotonic()
    warm = ctx.results["warm"].get("backends", {}).get("zero-latency stub")
    hot, spread = ctx.results["hot_link"], ctx.results["spread"]
    if not isinstance(warm, dict) or "ours" not in hot or "thin" not in spread:
        raise RuntimeError("the warm, hot-link and spread benchmarks must have run first")
    record = model(warm, hot, spread)
    record["seconds"] = time.monotonic() - started
    return record


def model(warm, hot, spread, template=None):
    """Per-million and fixed costs of both sides, priced from the counts of the other benchmarks' records."""
    template = template or load_template()
    configs = lambda_configs(template)
    flows = {"ours_hot": hot_flow(hot["ours"]), "ours_spread": thin_flow(spread["thin"], spread["zipf"])}
    columns = {key: ours_per_redirect(warm, flow, configs) for key, flow in flows.items()}
    recipe = hot.get("recipe")
    have_recipe = bool(recipe) and "recipe" in warm
    if have_recipe:
        columns["recipe"] = recipe_per_redirect(warm, recipe, configs["recipe"])
    totals = {key: sum(parts.values()) * 1e6 for key, (parts, _) in columns.items()}
    totals.setdefault("recipe", None)
    window = hot["ours"]["window"]
    deployed = int(template["Parameters"]["ClickStreamShards"]["Default"])
    fixed = fixed_monthly(window, configs, template, shards=deployed)
    fixed_total = sum(usd for _, usd, _ in fixed)
    savings, break_even = {}, {}
    if have_recipe:
        for key in ("ours_hot", "ours_spread"):
            savings[key] = totals["recipe"] - totals[key]  # USD per million redirects
            break_even[key] = fixed_total / savings[key] if savings[key] > 0 else None
    keep = spread.get("keeping_up") or {}
    return {
        "configs": configs,
        "flows": flows,
        "columns": {key: {"parts": parts, "facts": facts} for key, (parts, facts) in columns.items()},
        "totals": totals,
        "have_recipe": have_recipe,
        "ratio_hot": ratio(totals["ours_hot"], totals["recipe"]),
        "ratio_spread": ratio(totals["ours_spread"], totals["recipe"]),
        "window": window,
        "fixed": [{"item": item, "usd": usd, "how": how} for item, usd, how in fixed],
        "fixed_total": fixed_total,
        "shards_priced": deployed,
        "shards_deployed": deployed,
        "shard_month_usd": HOURS_PER_MONTH * price("kinesis_shard_hour"),
        "shards_for_rate": keep.get("shards_needed"),
        "rate_for_shards": keep.get("rate"),
        "savings": savings,
        "break_even": break_even,
    }


def figures(record):
    """The figures documents quote (all modelled: counted requests × list prices)."""
    totals = record["totals"]
    out = {
        "cost.ours_hot_per_million": figure(f"${totals['ours_hot']:,.2f}", totals["ours_hot"], "modelled"),
        "cost.ours_spread_per_million": figure(f"${totals['ours_spread']:,.2f}", totals["ours_spread"], "modelled"),
        "cost.fixed_monthly": figure(f"${record['fixed_total']:,.2f}", record["fixed_total"], "modelled"),
        "cost.shard_month": figure(f"${record['shard_month_usd']:,.2f}", record["shard_month_usd"], "modelled"),
    }
    if record["have_recipe"]:
        out["cost.recipe_per_million"] = figure(f"${totals['recipe']:,.2f}", totals["recipe"], "modelled")
        out["cost.ratio_hot"] = figure(times(record["ratio_hot"]), record["ratio_hot"], "modelled")
        out["cost.ratio_spread"] = figure(times(record["ratio_spread"]), record["ratio_spread"], "modelled")
        hot = record["break_even"].get("ours_hot")
        out["cost.break_even_hot"] = figure(f"{number(hot, 1)} million" if hot else "never", hot, "modelled")
    return out


def section(record):
    """The cost section, from its record."""
    configs, columns, totals = record["configs"], record["columns"], record["totals"]
    have_recipe, window = record["have_recipe"], record["window"]
    sides = ("ours_hot", "ours_spread", "recipe")
    headers = ["Per million redirects (USD)", "Ours: hot link", "Ours: spread thin", "Recipe"]
    rows = []
    for component in columns["ours_hot"]["parts"]:
        rows.append(
            [component]
            + [_money(columns[key]["parts"][component] * 1e6) if key in columns else "recipe not found" for key in sides]
        )
    rows.append(["**Total**"] + [f"**${totals[k]:,.2f}**" if totals[k] else "–" for k in sides])
    rows.append(["Ours ÷ recipe", times(record["ratio_hot"]), times(record["ratio_spread"]), "1.00×" if have_recipe else "–"])
    for label, fact, digits in (
        ("Modelled billed ms per redirect", "billed_ms_redirect", 1),
        ("Read units per redirect", "read_units", 4),
        ("Write units per redirect (indexes included)", "write_units", 4),
        ("Log bytes ingested per redirect", "log_bytes", 0),
        ("Kinesis PUT payload units per redirect", "put_units", 4),
    ):
        rows.append([label] + [number(columns[k]["facts"][fact], digits) if k in columns else "–" for k in sides])
    fixed_total = record["fixed_total"]
    fixed_rows = [[f["item"], f"${f['usd']:,.2f}", f["how"]] for f in record["fixed"]]
    fixed_rows.append(["**Total fixed**", f"**${fixed_total:,.2f}**", "a month"])
    for key, label in (("ours_hot", "hot link"), ("ours_spread", "spread thin")):
        if key not in record["savings"]:
            continue
        saving, break_even = record["savings"][key], record["break_even"][key]
        fixed_rows.append(
            [
                f"Break-even vs the recipe, {label}",
                f"{number(break_even, 1)} million redirects a month" if break_even else "never",
                f"ours saves ${saving:,.2f} per million" if saving > 0
                else f"ours costs ${-saving:,.2f} more per million, so the fixed costs are never paid back",
            ]
        )
    how = [
        f"List prices as published for {REGION}, checked {PRICES_CHECKED} (read from stored copies of the pages"
        " below, not fetched live; re-check them on the AWS pages before relying on them; first tier, no free"
        " tier): " + "; ".join(price_list()) + ".",
        "Sources: " + "; ".join(PRICE_SOURCES) + ".",
        f"**Hot link**: the counts of section \"Hot link\" (10,000 clicks/s on one link, 50 containers, one batch per"
        f" {window} s window). **Spread thin**: the counts of the spread-thin run (every click a different link, so a"
        " cache miss and two item writes each), with the Kinesis records per click of the 10,000 clicks/s Zipf run."
        " **Recipe**: its counted 1 read + 1 write per redirect and the bytes it printed or logged, measured.",
        "Lambda: "
        + "; ".join(
            f"{label} {configs[key]['arch']} at {configs[key]['memory_mb']} MB ({configs[key]['source']})"
            for key, label in (("ours_redirect", "our redirect"), ("ours_aggregator", "our aggregator"), ("recipe", "the recipe"))
        )
        + f". Billed duration is modelled: ceil(CPU ms measured on the stub × {FULL_VCPU_MB:,} ÷ memory MB +"
        f" DynamoDB round trips × {DYNAMODB_ROUND_TRIP_SECONDS * 1000:g} ms) — an assumption, since Lambda cannot run"
        f" here. The aggregator's share per click: its measured CPU per click, scaled the same way, plus its item"
        f" writes {WRITE_THREADS} at a time.",
        f"Logs: our redirect's click line as its real handler printed it (SystemLogLevel WARN drops Lambda's"
        f" START/END/REPORT lines); the recipe's own output as measured plus START/END/REPORT"
        f" (~{len(PLATFORM_LOG_LINES)} bytes) on every redirect; the aggregator's lines once per batch (fixed table).",
        "Kinesis: each log record is billed in 25 KB PUT payload units, rounded up per record, as measured on the"
        " records the pipeline put; the shard-hours are fixed. GetRecords by the event source mapping costs nothing"
        " extra on a provisioned stream.",
    ]
    notes = [
        "Not included: data transfer out, storage, KMS requests for the stream's encryption (AWS managed key, data"
        " keys reused), the SQS failure queue (empty when nothing fails), and cold starts.",
        f"At low volume the fixed ${fixed_total:,.2f} a month dominates: the per-million figures above are what each"
        " further million redirects costs.",
    ]
    if record.get("shards_for_rate") and record["shards_for_rate"] > record["shards_deployed"]:
        extra = record["shards_for_rate"] - record["shards_deployed"]
        notes.append(
            f"The fixed table prices the stream as deployed ({record['shards_deployed']} shard(s)). Sized for"
            f" {record['rate_for_shards']:,} clicks/s spread over many links ({record['shards_for_rate']} shards, see"
            f" the spread section) it would cost ${extra * record['shard_month_usd']:,.2f} a month more."
        )
    section_ = Section(KEY, TITLE, how, headers, rows, notes, record, record["seconds"])
    section_.extra_tables = [("Fixed monthly costs of ours (the recipe has none):", ["Item", "USD a month", "How"], fixed_rows)]
    if have_recipe:
        section_.headline = [
            [
                "Cost per million redirects (hot link / spread thin)",
                f"${totals['ours_hot']:,.2f} / ${totals['ours_spread']:,.2f} (+ ${fixed_total:,.2f} a month fixed)",
                f"${totals['recipe']:,.2f}",
                f"{times(record['ratio_hot'])} / {times(record['ratio_spread'])}",
                "modelled",
            ]
        ]
    section_.targets = [t.line() for t in evaluate(KEY, record)]
    return section_
