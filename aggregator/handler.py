"""Count clicks off the hot path: CloudWatch Logs subscription batches -> batched counter writes.

Each delivered batch becomes a few DynamoDB transactions: one update per link, one per
link-day of stats, and a batch marker that makes the whole transaction conditional.
CloudWatch Logs delivers at least once; a redelivered batch finds its marker and
changes nothing. Anything else that fails raises, so the function's on-failure
destination (an SQS queue) keeps the batch for replay.
"""
import base64
import gzip
import hashlib
import json
import logging
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import boto3

from aggregator.bots import classify_device

TABLE_NAME = os.environ["TABLE_NAME"]
# Markers only need to outlive CloudWatch's redelivery window, which is hours.
MARKER_RETENTION_SECONDS = 7 * 24 * 3600
# TransactWriteItems takes at most 100 actions; one of them is the marker.
MAX_UPDATES_PER_TRANSACTION = 99
# Bound the attributes one update writes, so a flood of distinct referrers cannot
# push an update past DynamoDB's expression limits; the rest are summed as "other".
MAX_KEYS_PER_DIMENSION = 20

logger = logging.getLogger(__name__)
_client = boto3.client("dynamodb")


@dataclass
class LinkTotals:
    """Everything one batch adds to one link."""

    clicks: int = 0
    bots: int = 0
    last_clicked_at: str | None = None
    days: dict = field(default_factory=lambda: defaultdict(DayTotals))


@dataclass
class DayTotals:
    """Everything one batch adds to one link's stats for one UTC day."""

    clicks: int = 0
    bots: int = 0
    referrers: Counter = field(default_factory=Counter)
    countries: Counter = field(default_factory=Counter)
    devices: Counter = field(default_factory=Counter)


def lambda_handler(event, context):
    """Apply one CloudWatch Logs subscription delivery."""
    payload = decode_event(event)
    if payload.get("messageType") != "DATA_MESSAGE":
        return {"clicks": 0, "transactions": 0, "skipped": 0}
    log_events = payload.get("logEvents", [])
    totals = aggregate(parse_clicks(log_events))
    applied, skipped = apply_totals(batch_id(payload), totals)
    result = {"clicks": sum(t.clicks + t.bots for t in totals.values()), "transactions": applied, "skipped": skipped}
    logger.info("applied click batch %s", result)
    return result


def decode_event(event):
    """Unpack the base64 + gzip `awslogs` payload that CloudWatch Logs sends."""
    return json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))


def batch_id(payload):
    """A stable id for one delivery: the same log events always give the same id."""
    digest = hashlib.sha256()
    digest.update(f"{payload.get('logGroup')}|{payload.get('logStream')}".encode())
    for event_id in sorted(e["id"] for e in payload.get("logEvents", [])):
        digest.update(b"|" + event_id.encode())
    return digest.hexdigest()


def parse_clicks(log_events):
    """The click records among the log lines; everything else is dropped."""
    clicks = []
    for log_event in log_events:
        try:
            record = json.loads(log_event["message"])
        except (KeyError, TypeError, ValueError):
            continue  # Lambda's own START/END/REPORT lines and anything else that isn't ours.
        if isinstance(record, dict) and record.get("type") == "click" and isinstance(record.get("id"), str):
            clicks.append(record)
    return clicks


def aggregate(clicks):
    """Group clicks per link and per link-day, separating bots from people."""
    totals = defaultdict(LinkTotals)
    for click in clicks:
        ts = str(click.get("ts") or _now_iso())
        link = totals[click["id"]]
        day = link.days[ts[:10]]
        device = classify_device(click.get("ua") or "")
        if device == "bot":
            link.bots += 1
            day.bots += 1
            continue
        link.clicks += 1
        day.clicks += 1
        link.last_clicked_at = max(link.last_clicked_at or ts, ts)
        day.devices[device] += 1
        if click.get("ref"):
            day.referrers[str(click["ref"]).lower()] += 1
        if click.get("cc"):
            day.countries[str(click["cc"]).upper()] += 1
    return dict(totals)


def apply_totals(batch, totals):
    """Write the totals in transactions of at most 100 actions, each guarded by a marker.

    Returns (transactions applied, transactions skipped because already applied).
    """
    applied = skipped = 0
    for index, updates in enumerate(_chunks(_updates(totals))):
        marker = {
            "Put": {
                "TableName": TABLE_NAME,
                "Item": {
                    "pk": {"S": f"batch#{batch}#{index}"},
                    "sk": {"S": "batch"},
                    "purge_at": {"N": str(int(time.time()) + MARKER_RETENTION_SECONDS)},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        try:
            _client.transact_write_items(TransactItems=[*updates, marker])
            applied += 1
        except _client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons") or []
            if reasons and reasons[-1].get("Code") == "ConditionalCheckFailed":
                skipped += 1  # This part of the batch was delivered and applied before.
                continue
            raise
    return applied, skipped


def _updates(totals):
    """One Update per link and one per link-day, in a stable order so chunks are deterministic."""
    for short_id in sorted(totals):
        link = totals[short_id]
        values = {":c": {"N": str(link.clicks)}, ":b": {"N": str(link.bots)}}
        expression = "ADD click_count :c, bot_count :b"
        if link.last_clicked_at:
            values[":t"] = {"S": link.last_clicked_at}
            expression += " SET last_clicked_at = :t"
        yield {
            "Update": {
                "TableName": TABLE_NAME,
                "Key": {"pk": {"S": short_id}, "sk": {"S": "link"}},
                "UpdateExpression": expression,
                "ExpressionAttributeValues": values,
            }
        }
        for day in sorted(link.days):
            yield _day_update(short_id, day, link.days[day])


def _day_update(short_id, day, totals):
    counters = {"clicks": totals.clicks, "bots": totals.bots}
    for prefix, counter in (("ref#", totals.referrers), ("cc#", totals.countries), ("dev#", totals.devices)):
        counters.update({prefix + key: n for key, n in _top(counter).items()})
    names, values, terms = {}, {}, []
    for i, (attribute, n) in enumerate(sorted(counters.items())):
        names[f"#a{i}"] = attribute
        values[f":v{i}"] = {"N": str(n)}
        terms.append(f"#a{i} :v{i}")
    return {
        "Update": {
            "TableName": TABLE_NAME,
            # Its own partition key: on a hot link, the stats writes never share the
            # link item's partition (and its 1,000 write units a second).
            "Key": {"pk": {"S": f"stats#{short_id}"}, "sk": {"S": f"day#{day}"}},
            "UpdateExpression": "ADD " + ", ".join(terms),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def _top(counter):
    if len(counter) <= MAX_KEYS_PER_DIMENSION:
        return dict(counter)
    top = dict(counter.most_common(MAX_KEYS_PER_DIMENSION - 1))
    top["(other)"] = sum(counter.values()) - sum(top.values())
    return top


def _chunks(updates):
    chunk = []
    for update in updates:
        chunk.append(update)
        if len(chunk) == MAX_UPDATES_PER_TRANSACTION:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
