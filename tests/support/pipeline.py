"""The click pipeline, for tests and benchmarks: click lines -> a Kinesis stream -> the event source
mapping stand-in (local_stack.event_source) -> the real aggregator -> the table.

Inside moto's mock (the tests) or against a loopback Kinesis and DynamoDB Local (the benchmarks).
"""
import json

import boto3

from local_stack import event_source
from local_stack.event_source import EventSourceMapping, kinesis_event, sqs_destination
from local_stack.log_subscription import encode_payload
from tests.support.faults import Faults

STREAM = "clicks-test"
SHARD = "shardId-000000000000"


def mapping_settings(template=None):
    """The event source mapping's settings from cloudformation.yaml: batch size, window, retries, record
    age, parallelization, and the stream's retention (local_stack.event_source.mapping_settings)."""
    return event_source.mapping_settings(template)


class Pipeline:
    """Click lines -> one stream record per list of lines -> ordered batches -> the real aggregator.

    `aggregator` is the aggregator's handler module (a fresh import, or a bench copy of it).
    A batch the mapping gives up on goes to the `failed` list, or, with `queue` (an SQS client and
    a queue URL), to that queue as the deployed mapping sends it to its on-failure destination.
    With `faults`, `self.faults` counts and fails the aggregator's own DynamoDB and Kinesis calls.
    `shards=None` uses a stream that already exists. max_retries and max_record_age are the mapping's
    (-1: infinite), retention_seconds the stream's (the template's by default).
    """

    def __init__(self, aggregator, kinesis=None, stream=STREAM, shards=1, queue=None, batch_size=100,
                 window=0, max_retries=2, max_record_age=-1, retention_seconds=None, timestamp_ms=None,
                 faults=False):
        self.aggregator = aggregator
        self.kinesis = kinesis or boto3.client("kinesis")
        self.stream = stream
        if shards:
            self.kinesis.create_stream(StreamName=stream, ShardCount=shards)
        self.arn = self.kinesis.describe_stream(StreamName=stream)["StreamDescription"]["StreamARN"]
        self.timestamp_ms = timestamp_ms  # when put lines were printed: None for now
        self.results = []  # what each successful invocation returned
        self.errors = 0  # invocations that raised (each one retried or given up by the mapping)
        self.failed = []  # on-failure records, when there is no queue
        self.sqs, self.queue_url = queue or (None, None)
        self.faults = Faults(aggregator._dynamodb, aggregator._kinesis) if faults else None
        self.mapping = EventSourceMapping(
            self.kinesis, stream, self._invoke, sqs_destination(*queue) if queue else self.failed.append,
            batch_size=batch_size, window=window, max_retries=max_retries, max_record_age=max_record_age,
            retention_seconds=event_source.retention_seconds() if retention_seconds is None else retention_seconds,
        ).start_at("TRIM_HORIZON")

    def _invoke(self, event, context):
        try:
            result = self.aggregator.lambda_handler(event, context)
        except Exception:
            self.errors += 1
            raise
        self.results.append(result)
        return result

    def put(self, lines, timestamps_ms=None, shard_hash=None):
        """Put one record of log lines, as CloudWatch Logs does; its sequence number."""
        stamps = self.timestamp_ms if timestamps_ms is None else timestamps_ms
        extra = {"ExplicitHashKey": shard_hash} if shard_hash is not None else {}
        data = encode_payload(lines, timestamp_ms=stamps)
        return self.kinesis.put_record(StreamName=self.stream, Data=data, PartitionKey="clicks", **extra)["SequenceNumber"]

    def send(self, *records, timestamps_ms=None):
        """Put each list of lines as one record, then deliver everything waiting (retrying failed batches
        until they succeed or are discarded, within the mapping's drain bounds); their sequence numbers."""
        sequences = [self.put(lines, timestamps_ms) for lines in records]
        self.mapping.drain()
        return sequences

    def event(self, sequences, shard=SHARD):
        """The mapping's event for these records of a shard, e.g. to deliver a batch again."""
        iterator = self.kinesis.get_shard_iterator(StreamName=self.stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        records = self.kinesis.get_records(ShardIterator=iterator["ShardIterator"], Limit=10_000)["Records"]
        chosen = [(r["SequenceNumber"], r["Data"], r["ApproximateArrivalTimestamp"].timestamp())
                  for r in records if r["SequenceNumber"] in sequences]
        return kinesis_event(chosen, self.arn, shard)

    def failures(self):
        """The on-failure records so far (those in the queue are left in it)."""
        if self.sqs is None:
            return list(self.failed)
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]
