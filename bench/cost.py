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
MIN_BILLED_SECONDS = 0.001  # Lambda bills at least 1 ms an invocation
CLAIMS = "DynamoDB writes (claims, one per stream record)"


def _redirect_duration(warm, miss_share, cfg):
    hit = billed_seconds(warm["ours_hit"]["cpu"]["median"], 0, cfg["memory_mb"])
    miss = billed_seconds(warm["ours_miss"]["cpu"]["median"], 1, cfg["memory_mb"])
    return (1 - miss_share) * hit + miss_share * miss


def ours_per_redirect(warm, flow, configs):
    """Per-redirect USD by component for our design, from one pipeline run's counts (`flow`)."""
    redirect_cfg, agg_cfg = configs["ours_redirect"], configs["ours_aggregator"]
    redirect_billed = _redirect_duration(warm, flow["miss_share"], redirect_cfg)
    # The aggregator's work per click: its CPU (scaled to its memory), then its claims (one per
    # record) and its item writes, WRITE_THREADS at a time.
    agg_seconds = (
        flow["aggregator_cpu_per_click"] * FULL_VCPU_MB / agg_cfg["memory_mb"]
        + (flow["records_per_click"] + flow["items_per_click"]) / WRITE_THREADS * DYNAMODB_ROUND_TRIP_SECONDS
    )
    components = {
        "HTTP API requests": price("http_api_request"),
        "Lambda requests (redirect)": price("lambda_request"),
        "Lambda duration (redirect)": lambda_duration_cost(redirect_billed, redirect_cfg),
        "Lambda duration (aggregator, per click)": lambda_duration_cost(agg_seconds, agg_cfg),
        "DynamoDB reads": flow["read_units"] * price("dynamodb_read_unit"),
        "DynamoDB writes": flow["write_units"] * price("dynamodb_write_unit"),
        CLAIMS: flow["claim_units"] * price("dynamodb_write_unit"),
        "CloudWatch Logs ingestion": flow["log_bytes"] / GB * price("logs_gb"),
        "Kinesis PUT payload units": flow["put_units"] * price("kinesis_put_unit"),
    }
    facts = {
        "billed_ms_redirect": redirect_billed * 1000,
        "read_units": flow["read_units"],
        "write_units": flow["write_units"],
        "claim_units": flow["claim_units"],
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
        CLAIMS: 0.0,
        "CloudWatch Logs ingestion": log_bytes / GB * price("logs_gb"),
        "Kinesis PUT payload units": 0.0,
    }
    facts = {
        "billed_ms_redirect": billed * 1000,
        "read_units": recipe["read_units_per_redirect"],
        "write_units": recipe["write_units_per_redirect"],
        "claim_units": 0,
        "log_bytes": log_bytes,
        "put_units": 0,
    }
    return components, facts


def _units(result, op):
    """Write units of one operation in a pipeline run: UpdateItem for the items, PutItem for the claims."""
    return result["write_units_by_op"].get(op, 0.0)


def hot_flow(hot):
    """Per-click counts of the hot-link run (per-batch costs are in the fixed table)."""
    clicks = hot["redirects"]
    return {
        "miss_share": hot["reads"] / clicks,
        "read_units": hot["read_units"] / clicks,
        "write_units": _units(hot, "UpdateItem") / clicks,
        "claim_units": _units(hot, "PutItem") / clicks,
        "items_per_click": hot["aggregator_ops"].get("UpdateItem", 0) / clicks,
        "records_per_click": hot["records"] / clicks,
        "aggregator_cpu_per_click": hot["aggregator_cpu"] / clicks,
        "log_bytes": hot["line_bytes"] / max(hot["lines"], 1),
        "put_units": hot["put_units"] / clicks,
    }


def thin_flow(thin, zipf):
    """Per-click counts spread thin: the thin run's reads and item writes, the 10k/s run's records (and so claims) per click."""
    clicks = thin["clicks"]
    return {
        "miss_share": thin["reads"] / clicks,
        "read_units": thin["read_units"] / clicks,
        "write_units": _units(thin, "UpdateItem") / clicks,
        "claim_units": _units(zipf, "PutItem") / zipf["clicks"],
        "items_per_click": thin["aggregator_ops"].get("UpdateItem", 0) / clicks,
        "records_per_click": zipf["records"] / max(zipf["lines"], 1),
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
    # Per batch: the invocation, its first billed millisecond, and its log lines. No read and no
    # write of its own: the claims and item writes are per click, and the stream's life is asked
    # once per container and minute (a Kinesis control-plane call, not billed).
    per_batch = (
        price("lambda_request")
        + lambda_duration_cost(MIN_BILLED_SECONDS, agg_cfg)
        + (len(PLATFORM_LOG_LINES) + AGGREGATOR_SUMMARY_LOG_BYTES) / GB * price("logs_gb")
    )
    return [
        ("Kinesis shards", shards * HOURS_PER_MONTH * price("kinesis_shard_hour"),
         f"{shards} shard(s) (ClickStreamShards) × {HOURS_PER_MONTH} h"),
        ("Aggregator batches: invocation, logs", batches * per_batch,
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
    shards = ctx.results.get("shards")
    record = model(warm, hot, spread, shards=shards if shards and "runs" in shards else None)
    record["seconds"] = time.monotonic() - started
    return record


def at_rate(warm, spread_flow, shards, keep, configs, window, template, recipe_total):
    """Per million clicks at the spread rate on the shards it needs (spread's keeping-up model), or None.

    Spread thin, with the item write units measured at that shard count when every shard touches
    every item (bench/shards.py: the worst case for the marks), and the fixed costs of that many
    shards spread over the clicks of a month at that rate.
    """
    needed, rate = keep.get("shards_needed"), keep.get("rate")
    run = next((r for r in (shards or {}).get("runs", ()) if r["shards"] == needed), None)
    if run is None or not rate:
        return None
    # Item writes priced with the daily rollups' (one write per day per batch), which the shards run states apart.
    flow = dict(spread_flow, write_units=run["item_units_per_click"] + run.get("rollup_units_per_click", 0.0))
    parts, _ = ours_per_redirect(warm, flow, configs)
    variable = sum(parts.values()) * 1e6
    fixed = sum(usd for _, usd, _ in fixed_monthly(window, configs, template, shards=needed))
    per_million = variable + fixed / (rate * SECONDS_PER_MONTH / 1e6)
    return {
        "rate": rate,
        "shards": needed,
        "item_units_per_click": run["item_units_per_click"],
        "claim_units_per_click": flow["claim_units"],
        "variable_per_million": variable,
        "fixed_monthly": fixed,
        "per_million": per_million,
        "ratio": ratio(per_million, recipe_total),
    }


def model(warm, hot, spread, template=None, shards=None):
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
        "at_rate": at_rate(warm, flows["ours_spread"], shards, keep, configs, window, template, totals["recipe"]),
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
    rated = record.get("at_rate")
    if rated:
        out["cost.at_rate_per_million"] = figure(f"${rated['per_million']:,.2f}", rated["per_million"], "modelled")
        out["cost.at_rate_shards"] = figure(str(rated["shards"]), rated["shards"], "modelled")
        out["cost.at_rate_clicks_per_second"] = figure(f"{rated['rate']:,}", rated["rate"], "measured")
        if rated["ratio"] is not None:
            out["cost.at_rate_ratio"] = figure(times(rated["ratio"]), rated["ratio"], "modelled")
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
        ("Item write units per redirect (indexes included)", "write_units", 4),
        ("Claim write units per redirect (records per click, modelled packing)", "claim_units", 4),
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
        " cache miss and two item writes each), with the Kinesis records (and so claims) per click of the 10,000"
        " clicks/s Zipf run. Claims: one conditional PutItem per stream record, 1 unit each; how many records"
        " CloudWatch Logs makes of the click lines is modelled (one per container per second)."
        " **Recipe**: its counted 1 read + 1 write per redirect and the bytes it printed or logged, measured.",
        "Lambda: "
        + "; ".join(
            f"{label} {configs[key]['arch']} at {configs[key]['memory_mb']} MB ({configs[key]['source']})"
            for key, label in (("ours_redirect", "our redirect"), ("ours_aggregator", "our aggregator"), ("recipe", "the recipe"))
        )
        + f". Billed duration is modelled: ceil(CPU ms measured on the stub × {FULL_VCPU_MB:,} ÷ memory MB +"
        f" DynamoDB round trips × {DYNAMODB_ROUND_TRIP_SECONDS * 1000:g} ms) — an assumption, since Lambda cannot run"
        f" here. The aggregator's share per click: its measured CPU per click, scaled the same way, plus its claims"
        f" and item writes {WRITE_THREADS} at a time. A batch reads nothing (no checkpoint, no stream read).",
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
    rated = record.get("at_rate")
    if rated:
        notes.append(
            f"At {rated['rate']:,} clicks/s spread thin, on the {rated['shards']} shard(s) that rate needs (the spread"
            f" section's keeping-up model): ${rated['per_million']:,.2f} per million clicks"
            + (f" ({times(rated['ratio'])} the recipe's)" if rated["ratio"] is not None else "")
            + f": ${rated['variable_per_million']:,.2f} of it the clicks' own costs, the rest ${rated['fixed_monthly']:,.2f}"
            " a month of fixed costs (those shards, their batches, the alarms and the dashboard) spread over a month of"
            f" clicks at that rate. Item writes priced at {number(rated['item_units_per_click'], 4)} units per click, as measured at"
            f" {rated['shards']} shard(s) with every shard touching every item (the worst case for the marks, section"
            f" \"Write units per click across shards\"), claims at {number(rated['claim_units_per_click'], 4)}."
        )
    else:
        notes.append("Per million clicks on the shards the spread rate needs: not priced (that shard count was not measured).")
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
        if rated:
            section_.headline.append(
                [
                    f"Cost per million clicks at {rated['rate']:,} clicks/s spread thin, on the {rated['shards']} shard(s)"
                    " it needs",
                    f"${rated['per_million']:,.2f}",
                    f"${totals['recipe']:,.2f}",
                    times(rated["ratio"]),
                    "modelled",
                ]
            )
    section_.targets = [t.line() for t in evaluate(KEY, record)]
    return section_
