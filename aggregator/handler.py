"""Count clicks off the hot path: the click stream's batches -> one conditional write per item.

The redirect prints one JSON line per click; a CloudWatch Logs subscription puts those lines
on a Kinesis stream, and Lambda's event source mapping hands this function ordered batches of
one shard at a time, retrying a failing batch until it succeeds (the template sets no retry
or age limit, so nothing is skipped but what the stream trims). A batch is applied in whole
chunks; when the call's time might run out, the handler stops between two and returns the first
record it did not apply (a partial batch response), and the mapping goes on from there. Each chunk:
1. drops producer duplicates: every record with clicks claims its identity (aggregator/claims.py);
2. becomes one UpdateItem per link (its click counter) and one per link-day (its stats),
   guarded by per-shard high-water marks (aggregator/writes.py), so any redelivery or retry
   counts every click exactly once;
3. then one UpdateItem per day: the shard's rollup of that day across links (aggregator/rollups.py),
   with the links' day totals the stats writes returned.

Two kinds of event:
- a Kinesis batch from the event source mapping;
- {"failed": <on-failure record>}, sent by `make replay-dlq` for each message of the on-failure
  queue: a range the mapping discarded. It is reported as lost (what the stream no longer
  holds) or skipped (what it still holds: only when finite retries were set), never applied.
"""
import base64
import datetime
import json
import logging
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

from aggregator import claims, layout, rollups, stream
from aggregator.clicks import AgentBudget, group, item_key, read_record
from aggregator.writes import APPLIED, DROPPED, apply_item

TABLE_NAME = os.environ["TABLE_NAME"]
# Counters are per region (single writer per item under global tables); Lambda sets AWS_REGION.
REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
# How long the stream keeps records (the template's ClickStreamRetentionHours): claims outlive it.
RETENTION_SECONDS = int(os.environ.get("CLICK_STREAM_RETENTION_HOURS", "24")) * 3600
# Item updates of one batch run in parallel: at 10,000 clicks a second on many links a batch holds
# thousands of items, and one UpdateItem takes a few milliseconds.
WRITE_THREADS = int(os.environ.get("WRITE_THREADS", "16"))
# BatchGetItem takes at most 100 keys.
READ_CHUNK = 100
# A batch is applied in chunks of about this many clicks, each whole before the next. A backlog
# batch can hold 1,000 records of up to 10,000 lines each: more than one call can apply, so the
# handler stops between chunks when the time left might not cover the next one (twice the time
# per record so far, and at least MIN_SECONDS_LEFT), and reports where to go on.
CHUNK_CLICKS = 20_000
MIN_SECONDS_LEFT = 10
# Classifying user agents not seen before (CrawlerDetect, ua-parser) takes at most this share of the
# time an invocation starts with, and stops when less than twice MIN_SECONDS_LEFT is left: a chunk is
# decoded before the time check above, and a record of forged agents costs minutes in full (see
# clicks.AgentBudget). Past it, agents get a cheap classification, counted as AgentsUnclassified.
CLASSIFY_SHARE = 0.25
METRICS_NAMESPACE = "Shortener"
# The most records an event source mapping puts in one Kinesis batch (its BatchSize limit).
MAX_BATCH_RECORDS = 10_000
# The admin's stats retention setting (webapp/store/settings.py) is read at most this often.
RETENTION_CACHE_SECONDS = 300
RETENTION_DAYS_MIN, RETENTION_DAYS_MAX = 7, 3650

# The Python runtime leaves the root logger at WARNING; the per-batch summary is INFO.
logger = logging.getLogger("aggregator")
logger.setLevel(logging.INFO)
_dynamodb = boto3.client(
    "dynamodb",
    config=Config(max_pool_connections=WRITE_THREADS, retries={"mode": "standard", "max_attempts": 5}),
)
_kinesis = boto3.client("kinesis")
# Mark name -> the last sequence number of the last batch of that shard that failed here. Its
# retry (usually to this same warm container) reads items and claims first and writes only
# what is missing, instead of paying a failed conditional write for each applied one.
_failed = {}
_retention = {"days": None, "read_at": None}  # the setting as last read, and when (time.monotonic)


def lambda_handler(event, context):
    """Apply one batch of the click stream, or account for a range the mapping discarded."""
    if "failed" in event:
        return account_for_discarded(event["failed"])
    records = event.get("Records") or []
    if not records:
        return {"clicks": 0, "batchItemFailures": []}
    shard_id = records[0]["eventID"].partition(":")[0]
    arn = records[0]["eventSourceARN"]
    newest = max(float(r["kinesis"].get("approximateArrivalTimestamp") or 0) for r in records)
    life, _ = stream.life_of(_kinesis, arn, newest)
    mark = layout.mark_name(life, shard_id)
    first = layout.encode_sequence(records[0]["kinesis"]["sequenceNumber"])
    retry = mark in _failed and first <= _failed[mark]
    result, done, work_done, started = Counter(), 0, 0, time.monotonic()
    budget = _agent_budget(context)
    try:
        for chunk in _chunks(records, budget):
            # A chunk is applied whole, then the next: stopping between two is always exact. Its
            # time is guessed from the work so far (records to claim, clicks to apply), not from
            # records alone: a batch's later records can hold far more clicks than its first.
            work = _work(chunk)
            if done and _time_left(context) < max(MIN_SECONDS_LEFT, 2 * (time.monotonic() - started) / work_done * work):
                break
            result.update(apply_batch(chunk, mark, retry))
            done, work_done = done + len(chunk), work_done + work
    except Exception:
        _failed[mark] = layout.encode_sequence(records[-1]["kinesis"]["sequenceNumber"])
        raise
    _failed.pop(mark, None)
    unclassified = budget.unclassified if budget is not None else 0
    result = dict(result, shard=shard_id, records=done, retry=retry, agents_unclassified=unclassified)
    # Partial batch response (FunctionResponseTypes: ReportBatchItemFailures): the mapping goes on
    # from the first record not applied, so a backlog batch never runs into the function's timeout.
    rest = records[done:]
    result["batchItemFailures"] = [{"itemIdentifier": rest[0]["kinesis"]["sequenceNumber"]}] if rest else []
    logger.info("click batch %s", json.dumps(result, sort_keys=True))
    if unclassified:
        # Clicks whose agent got only the cheap classification (a flood of new agents, or a cold
        # container in a backlog): printed only then, so no data means none.
        emit_metrics({"AgentsUnclassified": unclassified})
    return result


def _agent_budget(context):
    """The invocation's budget of full agent classifications (none outside Lambda: no timeout to outlast)."""
    if context is None:
        return None
    return AgentBudget(lambda: _time_left(context), CLASSIFY_SHARE * _time_left(context), 2 * MIN_SECONDS_LEFT)


def _chunks(records, budget=None):
    """The batch's records, decoded (agents classified within budget), in runs of about CHUNK_CLICKS clicks
    (at least one record each)."""
    chunk, clicks = [], 0
    for r in records:
        sequence = layout.encode_sequence(r["kinesis"]["sequenceNumber"])
        record = read_record(sequence, base64.b64decode(r["kinesis"]["data"]), budget)
        chunk.append(record)
        clicks += len(record.clicks)
        if clicks >= CHUNK_CLICKS:
            yield chunk
            chunk, clicks = [], 0
    if chunk:
        yield chunk


def _work(chunk):
    """What a chunk costs, in units that time scales with: its records and its clicks."""
    return len(chunk) + sum(len(record.clicks) for record in chunk)


def _time_left(context):
    """Seconds until the function times out (no limit outside Lambda)."""
    return context.get_remaining_time_in_millis() / 1000 if context is not None else float("inf")


def apply_batch(batch, mark, retry=False):
    """Claim the batch's records, then apply the clicks of those it owns; raise if anything must be retried.

    Every claim and every item is attempted even when another fails: what succeeded stays, and
    the retry redoes only the rest.
    """
    with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
        owned, duplicates = _claim_records(pool, batch, mark, retry)
        clicks = [click for record in owned for click in record.clicks]
        groups, day_groups = group(clicks), rollups.group(clicks, mark)
        read = _read_items([*groups, *day_groups], mark) if retry else {}
        days, learned = retention_days(), {}
        outcomes = _all(pool, [
            (apply_item, _dynamodb, TABLE_NAME, key, item_clicks, mark, REGION, read.get(key) if retry else None,
             days, None, learned)
            for key, item_clicks in groups.items()
        ], "item updates")
        # After every stats item: a failure above fails the batch before its rollups are written.
        # A retry read the rollups' marks: one already applied is not written again; for one that
        # is not, the read is partial (a rollup's links are not known in advance), so it is not used.
        _all(pool, [
            (apply_item, _dynamodb, TABLE_NAME, key, day_clicks, mark, REGION, None,
             days, rollups.links_of_day(learned, key[1]))
            for key, day_clicks in day_groups.items()
            if not _applied(read.get(key), mark, day_clicks)
        ], "rollup updates")
    return {
        "clicks": len(clicks),
        "items": len(groups),
        "rollups": len(day_groups),
        "applied": outcomes.count(APPLIED),
        "already_applied": len(outcomes) - outcomes.count(APPLIED) - outcomes.count(DROPPED),
        "dropped": outcomes.count(DROPPED),
        "duplicate_records": duplicates,
    }


def _claim_records(pool, batch, mark, retry):
    """The records whose clicks this batch applies, and how many were producer duplicates."""
    first_of, copies = {}, 0
    for record in batch:
        if record.identity is None:
            continue
        if record.identity in first_of:
            copies += 1  # a copy in the same batch: the first one claims
        else:
            first_of[record.identity] = record
    owners = _read_claims(first_of) if retry else {}
    outcomes = _all(pool, [
        (claims.claim, _dynamodb, TABLE_NAME, identity, claims.owner_of(mark, record.sequence), REGION,
         RETENTION_SECONDS, owners.get(identity) if retry else None)
        for identity, record in first_of.items()
    ], "claims")
    owned = [record for record, outcome in zip(first_of.values(), outcomes) if outcome == claims.OWNED]
    copies += outcomes.count(claims.DUPLICATE)
    if copies:
        logger.warning("dropped %d duplicate stream record(s) (a producer retry)", copies)
    return owned, copies


def _all(pool, calls, what):
    """Run calls (function, *args) in the pool; their results, or raise the first error once all ran."""
    futures = [pool.submit(call[0], *call[1:]) for call in calls]
    results, errors = [], []
    for future in futures:
        try:
            results.append(future.result())
        except Exception as exc:  # noqa: BLE001 - collected, then the first is raised for a retry
            errors.append(exc)
    if errors:
        logger.warning("%d of %d %s failed; the batch will be retried", len(errors), len(calls), what)
        raise errors[0]
    return results


def _applied(read, mark, clicks):
    """Whether an item as read holds this shard's mark at or above the last of the clicks."""
    stored = (read or {}).get(mark, {}).get("S")
    return stored is not None and clicks[-1].sequence <= stored


def _read_claims(first_of):
    """For a retry: the owners of the batch's claims that exist ({identity: owner})."""
    keys = {identity: layout.claim_key(identity, REGION) for identity in first_of}
    found = _batch_get(list(keys.values()), "pk, #o", {"#o": "owner"})
    by_pk = {item["pk"]["S"]: item.get("owner", {}).get("S") for item in found}
    return {identity: by_pk.get(key["pk"]["S"]) for identity, key in keys.items()}


def _read_items(item_keys, mark):
    """For a retry: each item's mark, clicks, sets and visitors as they are now ({} for an item without them)."""
    keys = {key: item_key(key, REGION) for key in item_keys}
    names = [mark, "clicks", layout.REFERRER_SET, layout.COUNTRY_SET, layout.DEVICE_SET, layout.BROWSER_SET,
             layout.OS_SET, layout.VISITOR_SET, layout.VISITOR_SKETCH, layout.VISITOR_VERSION]
    found = _batch_get(
        list(keys.values()), "pk, sk, " + ", ".join(f"#p{i}" for i in range(len(names))),
        {f"#p{i}": name for i, name in enumerate(names)},
    )
    by_key = {(item["pk"]["S"], item["sk"]["S"]): item for item in found}
    read = {}
    for key, dynamo_key in keys.items():
        item = dict(by_key.get((dynamo_key["pk"]["S"], dynamo_key["sk"]["S"]), {}))
        item.pop("pk", None)
        item.pop("sk", None)
        read[key] = item
    return read


def retention_days():
    """The stats retention setting in days, or None (kept forever), read at most every RETENTION_CACHE_SECONDS."""
    now = time.monotonic()
    if _retention["read_at"] is not None and now - _retention["read_at"] < RETENTION_CACHE_SECONDS:
        return _retention["days"]
    item = _dynamodb.get_item(TableName=TABLE_NAME, Key=layout.RETENTION_SETTING_KEY,
                              ProjectionExpression="#v", ExpressionAttributeNames={"#v": "value"}).get("Item") or {}
    _retention.update(days=_valid_retention(item.get("value")), read_at=now)
    return _retention["days"]


def _valid_retention(value):
    """Whole days in the allowed range from a setting's stored value, else None (and a warning for a bad one)."""
    if value is None:
        return None
    try:
        number = float(value.get("N")) if isinstance(value, dict) and "N" in value else None
    except ValueError:
        number = None
    if number is not None and number.is_integer() and RETENTION_DAYS_MIN <= number <= RETENTION_DAYS_MAX:
        return int(number)
    logger.warning("ignored the stats retention setting: not a whole number of days from %d to %d",
                   RETENTION_DAYS_MIN, RETENTION_DAYS_MAX)
    return None


def _batch_get(keys, projection, names):
    """Strongly consistent BatchGetItem of any number of keys, unprocessed keys asked again."""
    items = []
    for start in range(0, len(keys), READ_CHUNK):
        request = {TABLE_NAME: {
            "Keys": keys[start:start + READ_CHUNK], "ConsistentRead": True,
            "ProjectionExpression": projection, "ExpressionAttributeNames": names,
        }}
        for attempt in range(8):
            response = _dynamodb.batch_get_item(RequestItems=request)
            items.extend(response.get("Responses", {}).get(TABLE_NAME, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(0.05 * 2 ** attempt)
        else:
            raise RuntimeError("BatchGetItem kept returning unprocessed keys")
    return items


def account_for_discarded(failure):
    """Report a range the event source mapping discarded: lost (gone from the stream) or skipped.

    Returns what was found. Raises ValueError for a message that is not an on-failure record of
    a Kinesis mapping (replay-dlq leaves it in the queue for a person).
    """
    info = failure.get("KinesisBatchInfo") if isinstance(failure, dict) else None
    if not isinstance(info, dict):
        raise ValueError("not an on-failure record of a Kinesis event source mapping")
    try:
        shard_id, arn = str(info["shardId"]), str(info["streamArn"])
        first, last = str(info["startSequenceNumber"]), str(info["endSequenceNumber"])
        size = int(info["batchSize"])
        layout.shard_number(shard_id)
        if layout.encode_sequence(first) > layout.encode_sequence(last):
            raise ValueError("the range ends before it starts")
        if not 1 <= size <= MAX_BATCH_RECORDS:
            raise ValueError(f"a batch of {size} records")
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an on-failure record of a Kinesis event source mapping: {exc}") from None
    created = stream.created_at(_kinesis, arn)
    if created is None or _arrived_before(info.get("approximateArrivalOfLastRecord"), created):
        held = 0  # the stream is gone, or the range belongs to an earlier life of it: gone with it
    else:
        held = min(size, stream.records_still_held(_kinesis, arn, shard_id, first, last))
    result = {
        "shard": shard_id, "first": first, "last": last, "records": size,
        "lost": size - held, "skipped": held,
        "condition": (failure.get("requestContext") or {}).get("condition"),
    }
    # Lost: trimmed before the mapping could apply them. Skipped: still held, but the mapping
    # gave up on them (finite retries): applying them now could count twice the items their
    # failed attempts reached, so they are reported, not applied.
    logger.error("discarded click records %s", json.dumps(result, sort_keys=True))
    emit_metrics({"RecordsLost": result["lost"], "RecordsSkipped": result["skipped"]})
    return result


def _arrived_before(arrival, created):
    """Whether an on-failure record's ISO arrival time is before the stream's creation (epoch seconds)."""
    try:
        return datetime.datetime.fromisoformat(str(arrival).replace("Z", "+00:00")).timestamp() < created
    except ValueError:
        return False  # no usable time: the stream itself is asked


def emit_metrics(values):
    """Publish counts as CloudWatch embedded metrics: one JSON line that CloudWatch Logs turns into metrics."""
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "aggregator-local")
    print(json.dumps({
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": [{"Name": name, "Unit": "Count"} for name in values],
            }],
        },
        "FunctionName": function,
        **values,
    }), flush=True)
