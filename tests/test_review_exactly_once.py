"""An outside review of issue 14's aggregator: each test here failed on the code it reviewed (f9e422a).

(Two more showed that marks of closed shards and of a stream's earlier lives are never removed, so a
counter item touched by 8 parent shards and their 16 children, or by two lives of 16 shards, passes
1 KB: those are a known limit, stated in the README, not tests.)

Each docstring says what the test shows and where AWS documents the behaviour it rests on.
"""
import datetime
import time
import types

import pytest

from local_stack.log_subscription import encode_payload
from tests.test_aggregator import (  # noqa: F401 - kinesis and aggregator are fixtures
    aggregator, kinesis,
    NOON, SHARD, STREAM, counter, line,
)
from tests.test_exactly_once import (
    REAL_SEQUENCE, arn_of, batch_event, sequence_number,
)

TIMEOUT_SECONDS = 120  # the aggregator's Timeout in cloudformation.yaml


# ------------------------------------------------------------------ a call's time budget


class _Clock:
    """A monotonic clock that moves only when the fake work below says so."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now


class _Context:
    """Lambda's context: the time left before the call is ended, on the fake clock."""

    def __init__(self, clock):
        self.clock = clock

    def get_remaining_time_in_millis(self):
        return max(0, int((TIMEOUT_SECONDS - self.clock.now) * 1000))


class _CallEnded(Exception):
    """Lambda ended the call at its timeout: the mapping retries the whole batch."""


def test_a_call_never_starts_a_chunk_it_cannot_finish_when_later_records_hold_more_clicks(aggregator, kinesis,
                                                                                          monkeypatch):
    """The handler guesses the next chunk's time per *record*, but chunks are cut by *clicks*.

    A backlog whose early records are small (quiet hours: few lines per CloudWatch Logs record) and
    whose later ones are large (a campaign: CloudWatch Logs packs many lines per record) has a first
    chunk of many records and later chunks of a few. Guessed per record, a later chunk of the same
    clicks looks 50 times cheaper than it is, and the handler starts one with less time left than it
    needs. Lambda ends the call at its timeout; a timeout fails the whole batch (no partial response),
    the mapping retries it from its first record (MaximumRetryAttempts -1: "retried until the record
    expires", Lambda developer guide, services-kinesis-parameters), and the retry, doing the same work
    in the same time, ends the same way. The shard stalls until the stream trims the batch.

    Modelled here: CHUNK_CLICKS is 200 and every click costs 0.105 s of the call (about 21 s a chunk,
    more than MIN_SECONDS_LEFT; `make bench` models a real 20,000-click chunk at about 40 s), against
    the template's 120 s timeout. Estimated per click the handler
    stops after four chunks, with time left; estimated per record it starts a sixth and is ended.
    """
    clock = _Clock()
    monkeypatch.setattr(aggregator, "CHUNK_CLICKS", 200)
    monkeypatch.setattr(aggregator, "time", types.SimpleNamespace(monotonic=clock.monotonic, time=time.time,
                                                                  sleep=time.sleep))

    def apply_batch(chunk, mark, retry=False):
        clicks = sum(len(record.clicks) for record in chunk)
        clock.now += 0.105 * clicks
        if clock.now > TIMEOUT_SECONDS:
            raise _CallEnded(f"the call ran {clock.now:.0f} s of its {TIMEOUT_SECONDS} s")
        return {"clicks": clicks, "items": 0, "applied": 0, "already_applied": 0, "dropped": 0, "duplicate_records": 0}

    monkeypatch.setattr(aggregator, "apply_batch", apply_batch)
    small = [encode_payload([line("abc1234")] * 2, timestamp_ms=NOON) for _ in range(100)]
    large = [encode_payload([line("abc1234")] * 100, timestamp_ms=NOON) for _ in range(20)]
    records = [(sequence_number(0, n), data) for n, data in enumerate(small + large, start=1)]
    event = batch_event(arn_of(kinesis), SHARD, records)
    outcomes = []
    for _ in range(3):  # the mapping's retries of the batch (without limit on AWS)
        clock.now = 0.0
        try:
            outcomes.append(aggregator.lambda_handler(event, _Context(clock)))
            break
        except _CallEnded as ended:
            outcomes.append(str(ended))
    assert isinstance(outcomes[-1], dict), f"every attempt was ended by the timeout: {outcomes}"
    assert outcomes[-1]["records"] > 0 and outcomes[-1]["batchItemFailures"]


# ------------------------------------------------------------------ marks that outlive their shard or their stream


def _click_from(aggregator, arn, shard, n):
    """One record with one click on abc1234, as shard `shard` delivers it in its n-th batch."""
    data = encode_payload([line("abc1234")], timestamp_ms=NOON)
    aggregator.lambda_handler(batch_event(arn, f"shardId-{shard:012d}", [(sequence_number(shard, n), data)]), None)


# ------------------------------------------------------------------ the life a warm container remembers


def test_a_stream_created_again_under_a_warm_container_counts_its_first_clicks(aggregator, kinesis, ddb):
    """For 60 s (then LIFE_CHECK_SECONDS) a warm container applied a new stream life's records under the old
    life's marks, and where the new numbers are lower their clicks are taken as applied: lost, with no
    error, no failure record and no metric.

    The stream is deleted and created again under its name while the function keeps running (by hand,
    or by a script that re-creates it: a delete and a create take seconds). The new stream has the same
    name, ARN and shard ids (issue 14, failure 3). Its first batch arrives within the minute, after the
    container last asked for the stream's creation time, so life_of answers from memory.
    """
    old = [sequence_number(0, n) for n in range(1, 4)]
    aggregator.lambda_handler(batch_event(arn_of(kinesis), SHARD,
                                          [(s, encode_payload([line("abc1234")], timestamp_ms=NOON)) for s in old]), None)
    kinesis.delete_stream(StreamName=STREAM)
    time.sleep(0.01)
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    new = [sequence_number(0, n, REAL_SEQUENCE - 10**40) for n in range(1, 3)]
    aggregator.lambda_handler(batch_event(arn_of(kinesis), SHARD,
                                          [(s, encode_payload([line("abc1234")], timestamp_ms=NOON)) for s in new]), None)
    assert counter(ddb, "abc1234")["clicks"] == 3 + 2


# ------------------------------------------------------------------ on-failure records that cannot be the mapping's


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"batchSize": 0}, id="no-record"),  # a discarded batch holds at least one record
        pytest.param({"batchSize": -5}, id="negative"),  # it would subtract from RecordsLost
        pytest.param({"batchSize": 10_001}, id="above-BatchSize-limit"),  # CreateEventSourceMapping: at most 10,000
        pytest.param({"batchSize": 10**12}, id="a-trillion"),
        pytest.param({"startSequenceNumber": "2", "endSequenceNumber": "1"}, id="ends-before-it-starts"),
    ],
)
def test_an_on_failure_record_no_mapping_could_send_is_refused(aggregator, kinesis, change):
    """account_for_discarded checks the types of KinesisBatchInfo but not its values, so a message no
    mapping could have sent is reported as lost or skipped records, raising RecordsLostAlarm or
    RecordsSkippedAlarm with a made-up count, and `make replay-dlq` deletes it. It should be refused
    (ValueError), which leaves it in the queue for a person, as other malformed messages are."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    info = {"shardId": SHARD, "streamArn": arn_of(kinesis), "startSequenceNumber": "1", "endSequenceNumber": "2",
            "batchSize": 2, "approximateArrivalOfFirstRecord": now, "approximateArrivalOfLastRecord": now, **change}
    with pytest.raises(ValueError):
        aggregator.lambda_handler({"failed": {"requestContext": {"condition": "RetryAttemptsExhausted"},
                                              "KinesisBatchInfo": info}}, None)


# ------------------------------------------------------------------ the stand-in's timeout


def test_the_mapping_stand_in_fails_an_invocation_that_outlives_the_functions_timeout(kinesis):
    """The event source mapping stand-in hands the function a context counting down from its Timeout,
    but never ends a call that runs past it: the late answer is taken as a success. On AWS the call is
    ended ("Task timed out", a function error) and the whole batch is retried (Lambda developer guide,
    kinesis-on-failure-destination: "If the function is invoked but returns an error, Lambda retries").
    So no test on the stand-in can see a batch that outgrows the function's time (the first test
    above), and test_backlog's drain passes whatever the handler's time check does."""
    from local_stack.event_source import EventSourceMapping

    calls = []

    def slow_then_quick(event, context):
        calls.append([r["kinesis"]["sequenceNumber"] for r in event["Records"]])
        if len(calls) == 1:
            time.sleep(0.3)  # past the 0.2 s Timeout below
        return {"batchItemFailures": []}

    sequences = [kinesis.put_record(StreamName=STREAM, Data=b"x", PartitionKey="k")["SequenceNumber"] for _ in range(2)]
    esm = EventSourceMapping(kinesis, STREAM, slow_then_quick, [].append, batch_size=10, window=0, max_retries=-1,
                             max_record_age=-1, retention_seconds=3600, report_batch_item_failures=True,
                             function_timeout=0.2).start_at()
    assert esm.drain(max_polls=10, timeout=5)
    assert calls == [sequences, sequences], "the late answer was taken as a success"
