"""Count clicks off the hot path: the click stream's batches -> one conditional write per item.

The redirect prints one JSON line per click; a CloudWatch Logs subscription puts those lines
on a Kinesis stream, and Lambda's event source mapping hands this function ordered batches of
one shard at a time. Each batch becomes one UpdateItem per link (its click counter) and one per
link-day (its stats), guarded by per-shard high-water marks (aggregator/writes.py), so any
redelivery, retry or replay counts every click exactly once.

Two kinds of event:
- a Kinesis batch from the event source mapping;
- {"heal": {"shard": "<shard id>"}} (shard optional: all shards), sent by `make replay-dlq`:
  apply everything after a shard's checkpoint, up to the newest record.
"""
import base64
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from aggregator import layout, stream
from aggregator.clicks import group, parse_record
from aggregator.writes import APPLIED, DROPPED, apply_item

TABLE_NAME = os.environ["TABLE_NAME"]
# Counters are per region (single writer per item under global tables); Lambda sets AWS_REGION.
REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
# The stream a heal request reads; a Kinesis batch names its own.
CLICK_STREAM_NAME = os.environ.get("CLICK_STREAM_NAME")
# Item updates of one batch run in parallel: at 10,000 clicks a second on many links a batch holds
# thousands of items, and one UpdateItem takes a few milliseconds.
WRITE_THREADS = int(os.environ.get("WRITE_THREADS", "16"))
# Reads of up to stream.MAX_CALLS calls each that one heal request makes; a longer backlog
# is reported incomplete, and `make replay-dlq` asks again.
HEAL_ROUNDS = 20

# The Python runtime leaves the root logger at WARNING; the per-batch summary is INFO.
logger = logging.getLogger("aggregator")
logger.setLevel(logging.INFO)
_dynamodb = boto3.client(
    "dynamodb",
    config=Config(max_pool_connections=WRITE_THREADS, retries={"mode": "standard", "max_attempts": 5}),
)
_kinesis = boto3.client("kinesis")


def lambda_handler(event, context):
    """Apply one batch of the click stream, or heal the shards a heal request names."""
    if "heal" in event:
        return heal((event.get("heal") or {}).get("shard"))
    records = event.get("Records") or []
    if not records:
        return {"clicks": 0}
    shard_id, _, _ = records[0]["eventID"].partition(":")
    name = stream.stream_name(records[0]["eventSourceARN"])
    shard = layout.shard_name(name, shard_id)
    batch = [(layout.padded(r["kinesis"]["sequenceNumber"]), base64.b64decode(r["kinesis"]["data"])) for r in records]
    checkpoint = read_checkpoint(shard)
    gap = []
    # No checkpoint yet: the shard's first batch may have been skipped too, so read from the start.
    if checkpoint is None or checkpoint < batch[0][0]:
        after = stream.unpadded(checkpoint) if checkpoint else None
        gap, complete = stream.read_after(_kinesis, name, shard_id, after, before=batch[0][0])
        if not complete:
            # A long gap: apply what was read, keep the progress, and let the retry read on.
            if gap:
                apply_records(shard, gap)
                save_checkpoint(shard, gap[-1][0])
            raise GapNotHealed(f"{shard_id}: read back {len(gap)} skipped records, more remain")
    result = apply_records(shard, gap + batch)
    save_checkpoint(shard, batch[-1][0])
    result.update(shard=shard_id, records=len(batch), gap_records=len(gap))
    logger.info("click batch %s", json.dumps(result, sort_keys=True))
    return result


class GapNotHealed(Exception):
    """More skipped records remain than one invocation reads; the retry goes on from the checkpoint."""


def heal(shard_id=None):
    """Apply everything after each shard's checkpoint, up to the newest record; for replays.

    Returns per shard what was applied and whether the shard is complete (else ask again).
    """
    if not CLICK_STREAM_NAME:
        raise RuntimeError("CLICK_STREAM_NAME is not set")
    shards = [shard_id] if shard_id else [s["ShardId"] for s in _kinesis.list_shards(StreamName=CLICK_STREAM_NAME)["Shards"]]
    results = {}
    for shard_id in shards:
        shard = layout.shard_name(CLICK_STREAM_NAME, shard_id)
        totals = {"records": 0, "clicks": 0, "complete": False}
        for _ in range(HEAL_ROUNDS):
            checkpoint = read_checkpoint(shard)
            after = stream.unpadded(checkpoint) if checkpoint else None
            records, complete = stream.read_after(_kinesis, CLICK_STREAM_NAME, shard_id, after)
            result = apply_records(shard, records)
            if records:
                save_checkpoint(shard, records[-1][0])
            totals["records"] += len(records)
            totals["clicks"] += result["clicks"]
            if complete:
                totals["complete"] = True
                break
        results[shard_id] = totals
    logger.info("healed %s", json.dumps(results, sort_keys=True))
    return results


def apply_records(shard, records):
    """Apply the clicks of (padded sequence, data) records, in order; raise if any item must be retried.

    Every item is attempted even when another fails: what succeeded stays applied, its marks
    make the retry skip it, and the retry redoes only the rest.
    """
    clicks = [click for sequence, data in records for click in parse_record(sequence, data)]
    groups = group(clicks)
    outcomes, errors = [], []
    with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
        futures = [
            pool.submit(apply_item, _dynamodb, TABLE_NAME, key, item_clicks, shard, REGION)
            for key, item_clicks in groups.items()
        ]
        for future in futures:
            try:
                outcomes.append(future.result())
            except Exception as exc:  # noqa: BLE001 - collected, then the first is raised for a retry
                errors.append(exc)
    if errors:
        logger.warning("%d of %d item updates failed; the batch will be retried", len(errors), len(groups))
        raise errors[0]
    return {
        "clicks": len(clicks),
        "items": len(groups),
        "applied": outcomes.count(APPLIED),
        "already_applied": len(outcomes) - outcomes.count(APPLIED) - outcomes.count(DROPPED),
        "dropped": outcomes.count(DROPPED),
    }


def read_checkpoint(shard):
    """The padded last sequence number of the shard's last completed batch, or None."""
    item = _dynamodb.get_item(
        TableName=TABLE_NAME, Key=layout.checkpoint_key(REGION, shard), ConsistentRead=True
    ).get("Item")
    return item["done"]["S"] if item and "done" in item else None


def save_checkpoint(shard, sequence):
    """Move the shard's checkpoint forward to `sequence` (never back)."""
    try:
        _dynamodb.update_item(
            TableName=TABLE_NAME,
            Key=layout.checkpoint_key(REGION, shard),
            UpdateExpression="SET done = :s",
            ConditionExpression="attribute_not_exists(done) OR done < :s",
            ExpressionAttributeValues={":s": {"S": sequence}},
        )
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        # A later batch or a heal got there first: the checkpoint is already past this one.
