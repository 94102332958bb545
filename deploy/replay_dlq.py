"""Account for the click batches the event source mapping discarded: `make replay-dlq QUEUE_URL=... FUNCTION=...`.

The mapping retries a failing batch until it succeeds, so it discards a range only when the
stream no longer holds it (trimmed after its retention) or when an operator set finite
retries. It then puts the range (shard and sequence numbers, never the records) on the
on-failure queue. This command sends each message to the aggregator ({"failed": <message>}),
which checks the stream and reports the range's records as lost or skipped, in a log line and
the RecordsLost / RecordsSkipped metrics (each with an alarm), and deletes the message once
that is done. Messages go one at a time, so no two reads of one shard run at once, and each
call waits as long as the aggregator may run, without botocore's retries (a retried call
would report a range twice).
"""
import argparse
import json
import logging
import sys
from dataclasses import dataclass, field

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger("replay_dlq")

# Longer than one call of the aggregator may take (its timeout, 120 s) plus the read timeout.
VISIBILITY_TIMEOUT_SECONDS = 300
# The aggregator's timeout and some: an invoke that returns later than this has failed.
INVOKE_READ_TIMEOUT_SECONDS = 150


@dataclass
class Outcome:
    """What one run did."""

    accounted: int = 0
    failed: int = 0
    unreadable: int = 0
    lost: int = 0
    skipped: int = 0
    results: list = field(default_factory=list)

    @property
    def ok(self):
        return self.failed == 0 and self.unreadable == 0


class ReplayFailed(Exception):
    """The aggregator did not account for the message; it stays in the queue."""


def discarded_range(body):
    """The on-failure record in a message body, checked to be one of a Kinesis event source mapping."""
    record = json.loads(body)
    info = record.get("KinesisBatchInfo") if isinstance(record, dict) else None
    shard = info.get("shardId") if isinstance(info, dict) else None
    if not isinstance(shard, str) or not shard.startswith("shardId-"):
        raise ValueError("not an on-failure record of the click stream's event source mapping")
    return record


def invoke_function(function_name, client=None):
    """An applier that invokes the deployed aggregator synchronously and raises unless it succeeded."""
    client = client or boto3.client(
        "lambda",
        config=Config(read_timeout=INVOKE_READ_TIMEOUT_SECONDS, retries={"total_max_attempts": 1}),
    )

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
    """An applier that runs the aggregator's handler here (TABLE_NAME and AWS settings from the environment)."""
    from aggregator.handler import lambda_handler

    def apply(payload):
        try:
            return lambda_handler(payload, None)
        except Exception as exc:  # noqa: BLE001 - as a deployed invoke reports any error of the function
            raise ReplayFailed(f"the aggregator failed: {exc}") from exc

    return apply


def replay(queue_url, apply, sqs=None, wait_seconds=2):
    """Send every message of the queue to the aggregator, one at a time; delete each it accounted for."""
    sqs = sqs or boto3.client("sqs")
    outcome, seen = Outcome(), set()
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=VISIBILITY_TIMEOUT_SECONDS,
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            return outcome
        for message in fresh:
            seen.add(message["MessageId"])
            try:
                record = discarded_range(message["Body"])
            except ValueError as exc:
                # Kept for a person to look at; deleting it could hide a problem.
                outcome.unreadable += 1
                logger.warning("message %s left in the queue: %s", message["MessageId"], exc)
                continue
            try:
                result = apply({"failed": record}) or {}
            except (ReplayFailed, ClientError, BotoCoreError) as exc:
                outcome.failed += 1
                logger.warning("message %s left in the queue: %s", message["MessageId"], exc)
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            outcome.accounted += 1
            outcome.lost += int(result.get("lost", 0))
            outcome.skipped += int(result.get("skipped", 0))
            outcome.results.append(result)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Account for the click batches named in the on-failure queue.")
    parser.add_argument("--queue-url", required=True, help="the stack output DeadLetterQueueUrl")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--function", help="the stack output AggregatorFunctionName")
    target.add_argument("--local", action="store_true", help="run the aggregator in this process instead")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    apply = call_in_process() if args.local else invoke_function(args.function)
    outcome = replay(args.queue_url, apply)
    print(f"accounted for {outcome.accounted} discarded range(s): {outcome.lost} record(s) lost, "
          f"{outcome.skipped} skipped; {outcome.failed} failed and {outcome.unreadable} unreadable left in the queue")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
