"""Replay the click batches that the aggregator gave up on: `make replay-dlq QUEUE_URL=... FUNCTION=...`.

Each message in the dead-letter queue is a Lambda invocation record whose `requestPayload` is
the original CloudWatch Logs `awslogs` event. This sends that event to the aggregator again
(a synchronous invoke, or with --local the handler in this process) and deletes the message
only once the batch was applied. A batch that had in fact been applied before changes nothing:
the aggregator's batch markers make a replay safe, so replaying twice is harmless.
"""
import argparse
import json
import logging
import sys
from dataclasses import dataclass, field

import boto3
from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger("replay_dlq")

# Longer than one replay takes; a message whose replay failed comes back after this.
VISIBILITY_TIMEOUT_SECONDS = 300


@dataclass
class Outcome:
    """What one run did."""

    replayed: int = 0
    failed: int = 0
    unreadable: int = 0
    results: list = field(default_factory=list)

    @property
    def ok(self):
        return self.failed == 0 and self.unreadable == 0


class ReplayFailed(Exception):
    """The aggregator did not apply the batch; the message stays in the queue."""


def request_payload(body):
    """The original aggregator event inside an on-failure destination record."""
    record = json.loads(body)
    payload = record.get("requestPayload") if isinstance(record, dict) else None
    if not isinstance(payload, dict) or "awslogs" not in payload:
        raise ValueError("not a Lambda invocation record with an awslogs requestPayload")
    return payload


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
    """An applier that runs the aggregator's handler here (TABLE_NAME and AWS settings from the environment)."""
    from aggregator.handler import lambda_handler

    def apply(payload):
        return lambda_handler(payload, None)

    return apply


def replay(queue_url, apply, sqs=None, max_messages=None, wait_seconds=2):
    """Replay every message once; delete each one only after `apply` returned. Returns an Outcome.

    Receives use long polling (wait_seconds): a short poll can come back empty from a
    queue that still holds messages, which would end the run early.
    """
    sqs = sqs or boto3.client("sqs")
    outcome = Outcome()
    seen = set()
    while max_messages is None or len(seen) < max_messages:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=VISIBILITY_TIMEOUT_SECONDS,
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            try:
                payload = request_payload(message["Body"])
            except ValueError as exc:
                # Kept for a person to look at; deleting it could drop clicks.
                outcome.unreadable += 1
                logger.warning("message %s left in the queue: %s", message["MessageId"], exc)
                continue
            try:
                result = apply(payload)
            except (ReplayFailed, ClientError, BotoCoreError) as exc:
                outcome.failed += 1
                logger.warning("message %s left in the queue: %s", message["MessageId"], exc)
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            outcome.replayed += 1
            outcome.results.append(result)
    return outcome


def main(argv=None):
    parser = argparse.ArgumentParser(description="Replay failed click batches from the aggregator's dead-letter queue.")
    parser.add_argument("--queue-url", required=True, help="the stack output DeadLetterQueueUrl")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--function", help="the stack output AggregatorFunctionName")
    target.add_argument("--local", action="store_true", help="run the aggregator in this process instead")
    parser.add_argument("--max-messages", type=int, default=None, help="stop after this many messages")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    apply = call_in_process() if args.local else invoke_function(args.function)
    outcome = replay(args.queue_url, apply, max_messages=args.max_messages)
    print(f"replayed {outcome.replayed} batch(es); {outcome.failed} failed and "
          f"{outcome.unreadable} unreadable left in the queue")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
