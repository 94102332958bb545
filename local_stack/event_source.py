"""A stand-in for Lambda's Kinesis event source mapping: ordered batches per shard, retries, record age,
the stream's retention, and the on-failure destination.

What it reproduces, and the AWS page each behaviour comes from:
- Batching: each shard is read in order; a batch waits up to the batching window to fill, and holds at
  most BatchSize records and 6 MB (the payload limit of a synchronous invocation).
  https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html ("Polling and batching streams")
- Error handling: a batch the function fails is retried whole, in order, and nothing behind it in its
  shard goes first, "until the records in the batch expire, exceed the maximum age, or reach the configured
  retry quota"; then the batch is discarded, only described (never its records) on the on-failure
  destination, and the shard moves on. Records already past the maximum age are discarded before
  invocation. https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
- Partial batch response (FunctionResponseTypes: ReportBatchItemFailures): the function returns the
  first record it did not process; Lambda checkpoints there and retries from that record. An empty or
  null list, or no response, is a complete success; an empty or null itemIdentifier, or a bad key name,
  a complete failure. Without the setting the response is ignored. (Not documented, our reading: an
  identifier naming no record of the batch fails it whole, and a checkpoint past the first record is
  progress, not a failed attempt: the rest goes at once, its attempts counted afresh.)
  https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html
- -1 is infinite for MaximumRetryAttempts ("failed records are retried until the record expires") and for
  MaximumRecordAgeInSeconds ("Kinesis Data Streams data retention settings still apply").
  https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-parameters.html
- Retention: a record stays on the stream for the retention period and is then no longer accessible.
  moto never trims, so the stand-in treats an older record as trimmed: never delivered, and its range
  described on the on-failure destination like a batch that expired.
  https://docs.aws.amazon.com/streams/latest/dev/kinesis-extended-retention.html

The function gets a context whose remaining time counts down from the template's Timeout, as Lambda's.
A failing batch never holds the poll loop: it stays in flight in its shard, and a later poll retries it
once its pause is over, so other shards go on and stop() is prompt.
"""
import base64
import datetime
import json
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field

from local_stack.periodic import Periodic
from local_stack.template import load_template

# The pause before the retry that follows failed attempt n is this times 2**(n - 1), at most
# MAX_RETRY_DELAY_SECONDS. AWS documents retries, not their schedule: these keep `make run` quick to
# recover, and the in-process tests set the first pause to 0.
RETRY_DELAY_SECONDS = 0.05
MAX_RETRY_DELAY_SECONDS = 2.0
# The on-failure record's `condition`. AWS's example record shows RetryAttemptsExhausted; for records past
# the maximum age (or trimmed) its pages give no example, and RecordAgeExceeded is the value LocalStack's
# event source mapping sends.
RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# The size of a record in the event besides its base64 data (keys, sequence number, ARNs), rounded up.
RECORD_OVERHEAD_BYTES = 600
# Records read ahead of the batches per shard: one GetRecords call's worth. More waits on the stream.
READ_AHEAD_RECORDS = 10_000
FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:aggregator-local"


def mapping_settings(template=None):
    """The template's AggregatorEventSource settings, and the stream's retention, for this stand-in."""
    template = template or load_template()
    props = template["Resources"]["AggregatorEventSource"]["Properties"]

    def value(name, default):
        found = props.get(name, default)
        if isinstance(found, dict) and "Ref" in found:
            found = template["Parameters"][found["Ref"]]["Default"]
        return int(found)

    function = template["Resources"]["AggregatorFunction"]["Properties"]
    return {
        "batch_size": value("BatchSize", 100),
        "window": value("MaximumBatchingWindowInSeconds", 0),
        # -1, AWS's default for both: retried until the record expires, never discarded for its age.
        "max_retries": value("MaximumRetryAttempts", -1),
        "max_record_age": value("MaximumRecordAgeInSeconds", -1),
        "parallelization": value("ParallelizationFactor", 1),
        "report_batch_item_failures": "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
        "function_timeout": int(function.get("Timeout", 3)),
        "retention_seconds": retention_seconds(template),
    }


def retention_seconds(template=None):
    """How long the click stream keeps a record: the template's default ClickStreamRetentionHours."""
    template = template or load_template()
    return int(template["Parameters"]["ClickStreamRetentionHours"]["Default"]) * 3600


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


def failure_record(records, stream_arn, shard_id, attempts, condition=RETRY_ATTEMPTS_EXHAUSTED):
    """What the mapping sends to the on-failure destination for discarded records (records not included).

    `attempts`: how often the function was invoked with them; a range discarded before any invocation
    has no response to describe.
    """
    def iso(seconds):
        return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec="milliseconds")

    record = {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": FUNCTION_ARN,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
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
    if attempts:
        record["responseContext"] = {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    return record


class LambdaContext:
    """The parts of Lambda's context object a handler uses: its names, and the time left before it times out."""

    def __init__(self, timeout_seconds, function_name="aggregator-local"):
        self.function_name = function_name
        self.invoked_function_arn = FUNCTION_ARN
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def unprocessed_records(batch, response):
    """The records of `batch` a partial batch response asks to retry: None for a complete success, the
    whole batch for a complete failure, else those from the lowest sequence number it names."""
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return None
    sequences = [record[0] for record in batch]
    firsts = []
    for failure in response["batchItemFailures"]:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in sequences:
            return batch  # an empty, null or misnamed identifier: the whole batch failed
        firsts.append(sequences.index(identifier))
    return batch[min(firsts):]


def retry_pause(attempts):
    """Seconds to wait after `attempts` failed invocations of one batch before the next."""
    return min(RETRY_DELAY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_DELAY_SECONDS)


@dataclass
class _Shard:
    """One shard's reading position, the records read but not yet in a batch, and the batch in flight."""

    iterator: str = None
    buffer: list = field(default_factory=list)  # [(sequence, data, arrival seconds)], oldest first
    since: float = None  # monotonic time the oldest buffered record was read: the batching window's start
    batch: list = None  # the batch being delivered: retried until it succeeds or is discarded
    attempts: int = 0
    next_try: float = 0.0  # monotonic time the batch in flight may be retried


class EventSourceMapping(Periodic):
    """Polls every shard of one stream and invokes `handler(event, None)` with ordered batches.

    `on_failure(record)` receives the on-failure record of each discarded range. max_retries and
    max_record_age (seconds, -1 meaning infinite), report_batch_item_failures and the function's
    timeout are the template's by default; retention_seconds is the stream's (the template's default).
    `clock` gives the wall time records' ages are measured by.
    """

    def __init__(self, kinesis, stream_name, handler, on_failure, batch_size=100, window=0.5, max_retries=None,
                 max_record_age=None, retention_seconds=None, report_batch_item_failures=None, function_timeout=None,
                 echo=None, interval=0.2, clock=time.time):
        super().__init__(interval=interval, name="event-source-mapping")
        chosen = (max_retries, max_record_age, retention_seconds, report_batch_item_failures, function_timeout)
        template = None if None not in chosen else mapping_settings()
        self._kinesis = kinesis
        self._stream = stream_name
        self._handler = handler
        self._on_failure = on_failure
        self._batch_size = batch_size
        self._window = window
        self._max_retries = template["max_retries"] if max_retries is None else max_retries
        self._max_age = template["max_record_age"] if max_record_age is None else max_record_age
        self._retention = template["retention_seconds"] if retention_seconds is None else retention_seconds
        self._partial = (template["report_batch_item_failures"] if report_batch_item_failures is None
                         else report_batch_item_failures)
        self._timeout = template["function_timeout"] if function_timeout is None else function_timeout
        self._echo = echo
        self._clock = clock
        self._lock = threading.RLock()  # poll() runs in the thread, follow() and drain() in the caller's
        self._position = "TRIM_HORIZON"
        self.invocations = self.discarded = 0
        self._describe()

    def _describe(self):
        description = self._kinesis.describe_stream(StreamName=self._stream)["StreamDescription"]
        self._arn = description["StreamARN"]
        self._shards = {shard["ShardId"]: _Shard() for shard in description["Shards"]}

    def start_at(self, position="TRIM_HORIZON"):
        """Set every shard's starting position (the template's StartingPosition)."""
        with self._lock:
            self._position = position
            for shard_id, shard in self._shards.items():
                shard.iterator = self._kinesis.get_shard_iterator(
                    StreamName=self._stream, ShardId=shard_id, ShardIteratorType=position
                )["ShardIterator"]
        return self

    def follow(self):
        """Read the stream again from its start, after it was deleted and created again under its name.

        The old life's records went with it, so what was buffered or in flight is dropped, as a mapping
        created with a re-created stack starts afresh.
        """
        with self._lock:
            self._describe()
            return self.start_at(self._position)

    # --- polling ------------------------------------------------------------------------------
    def poll(self, flush=False):
        """Read each shard once, discard what is too old, and invoke the batches that are due.

        A batch is due when it is full, past its window or (flush) waiting; a batch in flight when its
        pause is over. Returns how many records were read.
        """
        read = 0
        with self._lock:
            for shard_id, shard in self._shards.items():
                read += self._read(shard)
                self._discard_expired(shard_id, shard)
                self._advance(shard_id, shard, flush)
        return read

    def idle(self):
        """True when no record is waiting for a batch and no batch is in flight."""
        with self._lock:
            return all(not shard.buffer and shard.batch is None for shard in self._shards.values())

    def drain(self, max_polls=100, timeout=30.0):
        """Poll (flushing) until everything on the stream is delivered or discarded, within max_polls
        polls and `timeout` seconds, sleeping through retry pauses; True when nothing is left."""
        deadline = time.monotonic() + timeout
        for _ in range(max_polls):
            if self.poll(flush=True) == 0 and self.idle():
                return True
            pause = self._next_retry() - time.monotonic()
            if time.monotonic() + pause > deadline:
                break
            if pause > 0:
                time.sleep(pause)
        return False

    def step(self, final=False):
        """One poll; the last one (on stop) delivers whatever has arrived."""
        try:
            self.poll(flush=final)
        except Exception:  # noqa: BLE001 - a stream read failed: poll again, as the real mapping does
            self._log(f"stream poll failed:\n{traceback.format_exc()}")

    # --- one shard ----------------------------------------------------------------------------
    def _read(self, shard):
        if len(shard.buffer) >= READ_AHEAD_RECORDS:
            return 0
        response = self._kinesis.get_records(ShardIterator=shard.iterator, Limit=READ_AHEAD_RECORDS)
        shard.iterator = response["NextShardIterator"]
        for record in response["Records"]:
            arrival = record["ApproximateArrivalTimestamp"].timestamp()
            shard.buffer.append((record["SequenceNumber"], record["Data"], arrival))
            shard.since = shard.since or time.monotonic()
        return len(response["Records"])

    def _expired(self, record):
        age = self._clock() - record[2]
        return age > self._retention or 0 <= self._max_age < age

    def _discard_expired(self, shard_id, shard):
        """Send the records past the maximum age, or trimmed, to the on-failure destination: first those
        of the batch in flight, then those waiting, in batches. Arrival times grow along a shard, so the
        expired records are always the oldest."""
        if shard.batch:
            count = self._expired_prefix(shard.batch)
            if count:
                self._discard(shard_id, shard.batch[:count], shard.attempts, RECORD_AGE_EXCEEDED)
                shard.batch = shard.batch[count:] or None
                if shard.batch is None:
                    shard.attempts = 0
        count = self._expired_prefix(shard.buffer)
        for start in range(0, count, self._batch_size):
            self._discard(shard_id, shard.buffer[start:min(start + self._batch_size, count)], 0, RECORD_AGE_EXCEEDED)
        if count:
            del shard.buffer[:count]
            shard.since = time.monotonic() if shard.buffer else None

    def _expired_prefix(self, records):
        count = 0
        while count < len(records) and self._expired(records[count]):
            count += 1
        return count

    def _advance(self, shard_id, shard, flush):
        """Deliver this shard's batches in order until one fails, or none is due. Each turn ends a batch
        or returns, so the loop is bounded by the records read."""
        while True:
            if shard.batch is None:
                if not self._batch_due(shard, flush):
                    return
                shard.batch, shard.attempts, shard.next_try = self._take_batch(shard), 0, 0.0
            if time.monotonic() < shard.next_try or not self._invoke(shard_id, shard):
                return

    def _batch_due(self, shard, flush):
        if not shard.buffer:
            return False
        return flush or len(shard.buffer) >= self._batch_size or time.monotonic() - shard.since >= self._window

    def _take_batch(self, shard):
        """The oldest waiting records, at most batch_size of them and MAX_PAYLOAD_BYTES (never none)."""
        size = count = 0
        for _, data, _ in shard.buffer[: self._batch_size]:
            size += 4 * (len(data) + 2) // 3 + RECORD_OVERHEAD_BYTES
            if count and size > MAX_PAYLOAD_BYTES:
                break
            count += 1
        batch, shard.buffer = shard.buffer[:count], shard.buffer[count:]
        shard.since = time.monotonic() if shard.buffer else None
        return batch

    def _invoke(self, shard_id, shard):
        """One attempt at the batch in flight; True when the shard may go on (delivered, discarded, or
        partly processed with the rest to send at once)."""
        shard.attempts += 1
        self.invocations += 1
        event = kinesis_event(shard.batch, self._arn, shard_id)
        context = LambdaContext(self._timeout)
        try:
            response = self._handler(event, context)  # as Lambda invokes: (event, context)
            if context.get_remaining_time_in_millis() <= 0:
                # Lambda ends a call at its Timeout ("Task timed out"): whatever it would have
                # answered is lost, and the whole batch counts as failed.
                raise TimeoutError(f"Task timed out after {self._timeout} seconds")
        except Exception:  # noqa: BLE001 - any function error means "retry", as on AWS
            if shard.attempts == 1:
                self._log(f"aggregator failed (attempt 1):\n{traceback.format_exc()}")
            else:
                self._log(f"aggregator failed again (attempt {shard.attempts}); the batch waits in its shard\n")
            return self._failed(shard_id, shard)
        rest = unprocessed_records(shard.batch, response) if self._partial else None
        if rest is None:
            shard.batch, shard.attempts = None, 0
            return True
        if len(rest) < len(shard.batch):
            # A checkpoint: the records before it are done, and the mapping goes on from it at once.
            shard.batch, shard.attempts, shard.next_try = rest, 0, 0.0
            return True
        self._log(f"aggregator reported the whole batch failed (attempt {shard.attempts})\n")
        return self._failed(shard_id, shard)

    def _failed(self, shard_id, shard):
        """After a failed attempt: discard the batch if the retries ran out, else pause before the next."""
        if 0 <= self._max_retries < shard.attempts:
            self._discard(shard_id, shard.batch, shard.attempts, RETRY_ATTEMPTS_EXHAUSTED)
            shard.batch, shard.attempts = None, 0
            return True
        shard.next_try = time.monotonic() + retry_pause(shard.attempts)
        return False

    def _discard(self, shard_id, records, attempts, condition):
        self.discarded += 1
        self._on_failure(failure_record(records, self._arn, shard_id, attempts, condition))

    def _next_retry(self):
        with self._lock:
            pending = [shard.next_try for shard in self._shards.values() if shard.batch is not None]
        return min(pending, default=0.0)

    def _log(self, text):
        if self._echo:
            self._echo.write(text)


def sqs_destination(sqs, queue_url):
    """An on-failure destination that sends the record to an SQS queue, as the deployed mapping does."""
    def send(record):
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))

    return send
