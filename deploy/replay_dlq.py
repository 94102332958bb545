"""Heal the click stream's skipped batches: `make replay-dlq QUEUE_URL=... FUNCTION=...`.

When Lambda's event source mapping gives up on a batch, it puts the batch's shard and sequence
range (never the records) on the on-failure queue. The records are still on the stream for its
retention. The next batch of that shard applies them first on its own; this command covers a
shard where no next batch comes (traffic stopped), or does it now: for each shard named in the
queue, it asks the aggregator to heal it ({"heal": {"shard": ...}}: everything after the shard's
checkpoint), and deletes that shard's messages only once the aggregator succeeded. The
aggregator's high-water marks make healing safe to repeat: nothing is counted twice.
"""
import argparse
import json
import logging
import sys
from dataclasses import dataclass, field

import boto3
from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger("replay_dlq")

# Longer than one heal takes; a message whose heal failed comes back after this.
VISIBILITY_TIMEOUT_SECONDS = 300
# Each heal reads a bounded number of records; a long backlog takes several.
MAX_HEAL_CALLS = 50


@dataclass
class Outcome:
    """What one run did."""

    healed_shards: int = 0
    deleted: int = 0
    failed: int = 0
    unreadable: int = 0
    results: list = field(default_factory=list)

    @property
    def ok(self):
        return self.failed == 0 and self.unreadable == 0


class ReplayFailed(Exception):
    """The aggregator did not heal the shard; its messages stay in the queue."""


def skipped_shard(body):
    """The shard id in an on-failure record of a Kinesis event source mapping."""
    record = json.loads(body)
    info = record.get("KinesisBatchInfo") if isinstance(record, dict) else None
    shard = info.get("shardId") if isinstance(info, dict) else None
    if not isinstance(shard, str) or not shard.startswith("shardId-"):
        raise ValueError("not an on-failure record of the click stream's event source mapping")
    return shard


def invoke_function(function_name, client=None):
    """An applier that invokes the deployed aggregator synchronously and raises unless it succeeded."""
    client = client or boto3.client("lambda")

    def apply(payload):
        response = client.invoke(
            FunctionName=function_name, InvocationType="RequestResponse", Payload=json.dumps(payload).encode()
        )
        body = response["Payload"].read()
        if response.get("FunctionError"):
            raise ReplayFailed(f"{function_name} failed: {body[:500].decode(errors='replace')}")
        return json.loads(body) if body else None

    return apply


def call_in_process():
    """An applier that runs the aggregator's handler here (TABLE_NAME, CLICK_STREAM_NAME and AWS settings from the environment)."""
    from aggregator.handler import lambda_handler

    def apply(payload):
        return lambda_handler(payload, None)

    return apply


def replay(queue_url, apply, sqs=None, wait_seconds=2):
    """Read the whole queue, heal each shard it names once, and delete a shard's messages after its heal."""
    sqs = sqs or boto3.client("sqs")
    outcome = Outcome()
    by_shard, seen = {}, set()
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=VISIBILITY_TIMEOUT_SECONDS,
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            try:
                by_shard.setdefault(skipped_shard(message["Body"]), []).append(message)
            except ValueError as exc:
                # Kept for a person to look at; deleting it could hide a problem.
                outcome.unreadable += 1
                logger.warning("message %s left in the queue: %s", message["MessageId"], exc)
    for shard, messages in sorted(by_shard.items()):
        try:
            result = _heal_completely(apply, shard)
        except (ReplayFailed, ClientError, BotoCoreError) as exc:
            outcome.failed += len(messages)
            logger.warning("%s not healed, %d message(s) left in the queue: %s", shard, len(messages), exc)
            continue
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        outcome.healed_shards += 1
        outcome.deleted += len(messages)
        outcome.results.append(result)
    return outcome


def _heal_completely(apply, shard, max_calls=MAX_HEAL_CALLS):
    """Ask for a heal until the shard is complete; raise ReplayFailed if it never is."""
    for _ in range(max_calls):
        result = apply({"heal": {"shard": shard}})
        if (result or {}).get(shard, {}).get("complete"):
            return result
    raise ReplayFailed(f"{shard} still had records to read after {max_calls} heals")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Heal the click stream's shards named in the on-failure queue.")
    parser.add_argument("--queue-url", required=True, help="the stack output DeadLetterQueueUrl")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--function", help="the stack output AggregatorFunctionName")
    target.add_argument("--local", action="store_true", help="run the aggregator in this process instead")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    apply = call_in_process() if args.local else invoke_function(args.function)
    outcome = replay(args.queue_url, apply)
    print(f"healed {outcome.healed_shards} shard(s), deleted {outcome.deleted} message(s); "
          f"{outcome.failed} failed and {outcome.unreadable} unreadable left in the queue")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
