"""Cost per million redirects: counted requests × AWS on-demand list prices (us-east-1).

All prices live in PRICES, in this one place, with where they were read and when.
Lambda duration cannot be measured here, so it is modelled from what is measured:
billed ms = ceil(CPU ms measured here × 1,769 ÷ memory MB + DynamoDB round trips × an
assumed in-region round trip). Lambda gives a function CPU in proportion to its memory,
one full vCPU at 1,769 MB, and we assume one core here is worth one Lambda vCPU.
"""

import contextlib
import math
import os
import time

from bench.backends import client_for
from bench.fixtures import our_item
from bench.handlers import RequestCounter, load_aggregator, load_ours
from bench.report import Section, number, times
from bench.stats import ratio
import yaml

from local_stack.http_api import to_event
from local_stack.log_subscription import encode_batch
from local_stack.template import load_template

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
# Lambda writes START, END and REPORT lines for every invocation, on both sides alike.
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


def measure_spread(endpoint, table, clicks=200):
    """Traffic spread thin: every click a different link (so a cache miss), delivered in one batch.

    Runs the real redirect handler on `clicks` distinct links and the real aggregator on
    their click lines, counting requests: the worst case for both cache and batching.
    """
    ids = [f"spread{n:05d}" for n in range(clicks)]
    client = client_for(endpoint)
    for first in range(0, clicks, 25):
        client.batch_write_item(
            RequestItems={
                table: [
                    {"PutRequest": {"Item": our_item(i, f"https://example.com/{i}")}} for i in ids[first : first + 25]
                ]
            }
        )
    redirect = load_ours(endpoint, table)
    aggregator = load_aggregator(endpoint, table)
    reads = RequestCounter(redirect._client)
    writes = RequestCounter(aggregator._client)
    lines = []

    class _Capture:
        def write(self, text):
            lines.append(text.rstrip("\n"))

        def flush(self):
            pass

    statuses = set()
    with contextlib.redirect_stdout(_Capture()):
        for i in ids:
            event = to_event("GET", f"/{i}", [("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")])
            statuses.add(redirect.lambda_handler(event, None)["statusCode"])
    cpu0 = time.thread_time()
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        aggregator.lambda_handler(encode_batch(lines, log_stream="spread"), None)
    aggregator_cpu = time.thread_time() - cpu0
    return {
        "clicks": clicks,
        "statuses": sorted(statuses),
        "reads_per_redirect": reads.reads / clicks,
        "read_units_per_redirect": reads.read_units / clicks,
        "transactions_per_batch": writes.ops["TransactWriteItems"],
        "write_units_per_redirect": writes.write_units / clicks,
        "aggregator_cpu_per_batch": aggregator_cpu,
        "log_bytes_per_redirect": sum(len(line) + 1 for line in lines) / clicks,
    }


def _ours(warm, hot, spread_mode, configs):
    """Per-redirect USD by component for our design, from counted requests."""
    redirect_cfg, agg_cfg = configs["ours_redirect"], configs["ours_aggregator"]
    ours_hot = hot["ours"]
    if spread_mode:
        spread = spread_mode
        miss_share = spread["reads_per_redirect"]
        read_units = spread["read_units_per_redirect"]
        write_units = spread["write_units_per_redirect"]
        batches_per_redirect = 1 / spread["clicks"]
        transactions_per_batch = spread["transactions_per_batch"]
        aggregator_cpu = spread["aggregator_cpu_per_batch"]
        line_bytes = spread["log_bytes_per_redirect"]
    else:
        miss_share = ours_hot["reads"] / ours_hot["redirects"]
        read_units = ours_hot["read_units"] / ours_hot["redirects"]
        write_units = ours_hot["aggregator_write_units"] / ours_hot["redirects"]
        batches_per_redirect = ours_hot["batches"] / ours_hot["redirects"]
        transactions_per_batch = ours_hot["aggregator_ops"].get("TransactWriteItems", 0) / max(ours_hot["batches"], 1)
        aggregator_cpu = ours_hot["aggregator_cpu_per_batch"]
        line_bytes = ours_hot["log_bytes_per_redirect"]
    hit_billed = billed_seconds(warm["ours_hit"]["cpu"]["median"], 0, redirect_cfg["memory_mb"])
    miss_billed = billed_seconds(warm["ours_miss"]["cpu"]["median"], 1, redirect_cfg["memory_mb"])
    redirect_billed = (1 - miss_share) * hit_billed + miss_share * miss_billed
    agg_billed = billed_seconds(aggregator_cpu, transactions_per_batch, agg_cfg["memory_mb"])
    log_bytes = line_bytes + len(PLATFORM_LOG_LINES) + batches_per_redirect * len(PLATFORM_LOG_LINES)
    return {
        "HTTP API requests": price("http_api_request"),
        "Lambda requests": price("lambda_request") * (1 + batches_per_redirect),
        "Lambda duration": lambda_duration_cost(redirect_billed, redirect_cfg)
        + batches_per_redirect * lambda_duration_cost(agg_billed, agg_cfg),
        "DynamoDB reads": read_units * price("dynamodb_read_unit"),
        "DynamoDB writes": write_units * price("dynamodb_write_unit"),
        "CloudWatch Logs ingestion": log_bytes / GB * price("logs_gb"),
    }, {
        "billed_ms_redirect": redirect_billed * 1000,
        "billed_ms_aggregator": agg_billed * 1000,
        "read_units": read_units,
        "write_units": write_units,
        "lambda_invocations": 1 + batches_per_redirect,
        "log_bytes": log_bytes,
    }


def _recipe(warm, hot, cfg):
    recipe_hot = hot["recipe"]
    billed = billed_seconds(
        warm["recipe"]["cpu"]["median"],
        recipe_hot["reads_per_redirect"] + recipe_hot["writes_per_redirect"],
        cfg["memory_mb"],
    )
    log_bytes = len(PLATFORM_LOG_LINES)  # the recipe logs nothing of its own on a successful redirect
    return {
        "HTTP API requests": price("http_api_request"),
        "Lambda requests": price("lambda_request"),
        "Lambda duration": lambda_duration_cost(billed, cfg),
        "DynamoDB reads": recipe_hot["read_units_per_redirect"] * price("dynamodb_read_unit"),
        "DynamoDB writes": recipe_hot["write_units_per_redirect"] * price("dynamodb_write_unit"),
        "CloudWatch Logs ingestion": log_bytes / GB * price("logs_gb"),
    }, {
        "billed_ms_redirect": billed * 1000,
        "read_units": recipe_hot["read_units_per_redirect"],
        "write_units": recipe_hot["write_units_per_redirect"],
        "lambda_invocations": 1,
        "log_bytes": log_bytes,
    }


def section(warm_stub, hot_data, spread, seconds):
    """The cost section: per-million USD by component for ours (hot link, spread) and the recipe."""
    configs = lambda_configs()
    ours_hot, ours_hot_facts = _ours(warm_stub, hot_data, None, configs)
    ours_spread, ours_spread_facts = _ours(warm_stub, hot_data, spread, configs)
    have_recipe = "recipe" in warm_stub and hot_data.get("recipe")
    recipe, recipe_facts = _recipe(warm_stub, hot_data, configs["recipe"]) if have_recipe else ({}, {})
    headers = ["Per million redirects (USD)", "Ours: hot link", "Ours: spread thin", "Recipe"]
    rows = []
    for component in ours_hot:
        rows.append(
            [
                component,
                f"${ours_hot[component] * 1e6:,.3f}",
                f"${ours_spread[component] * 1e6:,.3f}",
                f"${recipe[component] * 1e6:,.3f}" if have_recipe else "recipe not found",
            ]
        )
    totals = {
        "ours_hot": sum(ours_hot.values()) * 1e6,
        "ours_spread": sum(ours_spread.values()) * 1e6,
        "recipe": sum(recipe.values()) * 1e6 if have_recipe else None,
    }
    rows.append(
        [
            "**Total**",
            f"**${totals['ours_hot']:,.2f}**",
            f"**${totals['ours_spread']:,.2f}**",
            f"**${totals['recipe']:,.2f}**" if have_recipe else "–",
        ]
    )
    rows.append(
        [
            "Ours ÷ recipe",
            times(ratio(totals["ours_hot"], totals["recipe"])),
            times(ratio(totals["ours_spread"], totals["recipe"])),
            "1.00×" if have_recipe else "–",
        ]
    )
    facts = [("ours_hot", ours_hot_facts), ("ours_spread", ours_spread_facts), ("recipe", recipe_facts)]
    rows.append(["Modelled billed ms per redirect", *(number(f.get("billed_ms_redirect"), 1) for _, f in facts)])
    rows.append(["Read units per redirect (counted)", *(number(f.get("read_units"), 4) for _, f in facts)])
    rows.append(["Write units per redirect (counted)", *(number(f.get("write_units"), 4) for _, f in facts)])
    rows.append(["Lambda invocations per redirect", *(number(f.get("lambda_invocations"), 4) for _, f in facts)])
    rows.append(["Log bytes per redirect", *(number(f.get("log_bytes")) for _, f in facts)])
    data = {
        "totals": totals,
        "ratio_hot": ratio(totals["ours_hot"], totals["recipe"]),
        "ratio_spread": ratio(totals["ours_spread"], totals["recipe"]),
    }
    how = [
        f"List prices as published for {REGION}, checked {PRICES_CHECKED} (read from the pages below as stored by our"
        " search index, not fetched live; re-check them on the AWS pages before relying on them; first tier, no free"
        " tier): " + "; ".join(price_list()) + ".",
        "Sources: " + "; ".join(PRICE_SOURCES) + ".",
        "Request counts come from the runs above: **hot link** uses the hot-link simulation's counted reads,"
        f" aggregator transactions and write units; **spread thin** runs the real redirect on {spread['clicks']}"
        " different links (every one a cache miss) and the real aggregator on their click lines in one batch,"
        " the worst case for cache and batching; the **recipe** uses its counted 1 read + 1 write per redirect.",
        "Lambda: "
        + "; ".join(
            f"{label} {configs[key]['arch']} at {configs[key]['memory_mb']} MB ({configs[key]['source']})"
            for key, label in (
                ("ours_redirect", "our redirect"),
                ("ours_aggregator", "our aggregator"),
                ("recipe", "the recipe"),
            )
        )
        + ". Billed duration is modelled:"
        f" ceil(CPU ms measured on the stub × {FULL_VCPU_MB:,} ÷ memory MB + DynamoDB round trips ×"
        f" {DYNAMODB_ROUND_TRIP_SECONDS * 1000:g} ms) — an assumption, since Lambda cannot run here.",
        f"Logs: our click line as measured ({number(hot_data['ours']['log_bytes_per_redirect'])} bytes on average on"
        f" the hot link, {number(spread['log_bytes_per_redirect'])} spread thin)"
        f" plus Lambda's START/END/REPORT lines (~{len(PLATFORM_LOG_LINES)} bytes) for every invocation on both sides.",
    ]
    notes = [
        "Not included: data transfer out, storage, the EMF custom metrics (a fixed monthly charge per metric, not"
        " per request), the dashboard and alarms, and cold starts (billed since August 2025, but rare).",
    ]
    if have_recipe:
        notes.append(
            f"Spread thin, the aggregator writes {number(spread['write_units_per_redirect'], 2)} write units per click"
            f" against the recipe's {number(hot_data['recipe']['write_units_per_redirect'], 0)}: each click on a new"
            " link updates the link item and its per-day stats item, inside a transaction (2 units each). That is"
            " the price of exactly-once counting and per-day stats; it only pays off when clicks on a link share a"
            " batch."
        )
    return Section("cost", "7. Cost per million redirects", how, headers, rows, notes, data, seconds)
