"""A stand-in for Lambda's Kinesis event source mapping: ordered batches per shard, retries, on-failure queue.

Like the real one (and with the template's settings): it reads each shard in order, waits up to
the batching window to fill a batch, invokes the function with the same event shape, retries a
failed batch in order up to MaximumRetryAttempts, then sends the batch's shard and sequence
range (never the records) to the on-failure destination and moves on to the next batch.
"""
import base64
import datetime
import json
import time
import traceback
import uuid

from local_stack.periodic import Periodic

# The pause before retry n is n times this (at most 0.5 s); the in-process tests set it to 0.
RETRY_DELAY_SECONDS = 0.05


def kinesis_event(records, stream_arn, shard_id):
    """The Lambda event for a batch of one shard's records: [(sequence number, data bytes, arrival seconds)]."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "clicks",
                    "sequenceNumber": sequence,
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": arrival,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{sequence}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::000000000000:role/aggregator",
                "awsRegion": "us-east-1",
                "eventSourceARN": stream_arn,
            }
            for sequence, data, arrival in records
        ]
    }


def failure_record(records, stream_arn, shard_id, attempts):
    """What the mapping sends to the on-failure destination for a discarded batch (records not included)."""
    def iso(seconds):
        return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec="milliseconds")

    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:aggregator-local",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": attempts,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": iso(time.time()),
        "KinesisBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0][0],
            "endSequenceNumber": records[-1][0],
            "approximateArrivalOfFirstRecord": iso(records[0][2]),
            "approximateArrivalOfLastRecord": iso(records[-1][2]),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


class EventSourceMapping(Periodic):
    """Polls every shard of one stream and invokes `handler(event, None)` with ordered batches."""

    def __init__(self, kinesis, stream_name, handler, on_failure, batch_size=100, window=0.5, max_retries=2, echo=None):
        super().__init__(interval=0.2, name="event-source-mapping")
        self._kinesis = kinesis
        self._stream = stream_name
        self._handler = handler
        self._on_failure = on_failure  # called with the failure record (a dict)
        self._batch_size = batch_size
        self._window = window
        self._max_retries = max_retries
        self._echo = echo
        description = kinesis.describe_stream(StreamName=stream_name)["StreamDescription"]
        self._arn = description["StreamARN"]
        self._shards = {
            shard["ShardId"]: {"iterator": None, "buffer": [], "since": None} for shard in description["Shards"]
        }
        self.invocations = self.discarded = 0

    def start_at(self, position="TRIM_HORIZON"):
        """Set every shard's starting position (the template's StartingPosition)."""
        for shard_id, state in self._shards.items():
            state["iterator"] = self._kinesis.get_shard_iterator(
                StreamName=self._stream, ShardId=shard_id, ShardIteratorType=position
            )["ShardIterator"]
        return self

    def poll(self, flush=False):
        """Read each shard once and invoke for every batch that is full, past its window, or (flush) waiting."""
        for shard_id, state in self._shards.items():
            response = self._kinesis.get_records(ShardIterator=state["iterator"], Limit=10_000)
            state["iterator"] = response["NextShardIterator"]
            for record in response["Records"]:
                arrival = record["ApproximateArrivalTimestamp"].timestamp()
                state["buffer"].append((record["SequenceNumber"], record["Data"], arrival))
                state["since"] = state["since"] or time.monotonic()
            while state["buffer"] and (
                flush or len(state["buffer"]) >= self._batch_size or time.monotonic() - state["since"] >= self._window
            ):
                batch, state["buffer"] = state["buffer"][: self._batch_size], state["buffer"][self._batch_size :]
                state["since"] = time.monotonic() if state["buffer"] else None
                self._deliver(shard_id, batch)

    def _deliver(self, shard_id, batch):
        event = kinesis_event(batch, self._arn, shard_id)
        for attempt in range(1, self._max_retries + 2):
            self.invocations += 1
            try:
                self._handler(event, None)  # invoked as Lambda would: (event, context)
                return
            except Exception:  # noqa: BLE001 - any function error means "retry", as on AWS
                if self._echo:
                    self._echo.write(f"aggregator failed (attempt {attempt}):\n{traceback.format_exc()}")
                time.sleep(min(RETRY_DELAY_SECONDS * attempt, 0.5))
        self.discarded += 1
        self._on_failure(failure_record(batch, self._arn, shard_id, self._max_retries + 1))

    def step(self, final=False):
        """One poll; the last one (on stop) delivers whatever has arrived."""
        try:
            self.poll(flush=final)
        except Exception:  # noqa: BLE001 - a stream read failed: poll again, as the real mapping does
            if self._echo:
                self._echo.write(f"stream poll failed:\n{traceback.format_exc()}")


def sqs_destination(sqs, queue_url):
    """An on-failure destination that sends the record to an SQS queue, as the deployed mapping does."""
    def send(record):
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))

    return send
