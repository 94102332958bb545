"""The local stand-ins do what AWS does (issue 14): the event source mapping's retries, record age and the
stream's retention, a producer that retries, CloudWatch Logs' log streams and event ids, a stream
re-created under its name, and the stream line `make run` prints.

No aggregator here: a recording handler stands in for it, so these tests rely only on the Lambda event
shapes (the Kinesis event and the on-failure record).
"""
import base64
import copy
import gzip
import json
import re
import threading
import time

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from moto import mock_aws

from local_stack import event_source, log_subscription
from local_stack.click_stream import ClickStream
from local_stack.event_source import EventSourceMapping, mapping_settings, retry_pause
from local_stack.log_subscription import LogSubscription
from local_stack.template import load_template
from tests.conftest import REGION
from tests.support.faults import Faults

STREAM = "clicks-stand-ins"
SHARD = "shardId-000000000000"
# The keys of AWS's example invocation record for a Kinesis stream (kinesis-on-failure-destination).
FAILURE_RECORD_KEYS = {"requestContext", "responseContext", "version", "timestamp", "KinesisBatchInfo"}
BATCH_INFO_KEYS = {"shardId", "startSequenceNumber", "endSequenceNumber", "approximateArrivalOfFirstRecord",
                   "approximateArrivalOfLastRecord", "batchSize", "streamArn"}


class Recorder:
    """A stand-in aggregator: records each event it is invoked with, and fails the next `failures` of them,
    all of them while `failing`, or those that `fail_if(event)` picks. It answers with the next of
    `responses` (a partial batch response), then with a success."""

    def __init__(self, failures=0, responses=()):
        self.events = []
        self.contexts = []
        self.responses = list(responses)
        self.failures = failures
        self.failing = False
        self.fail_if = None
        self.lock = threading.Lock()

    def __call__(self, event, context):
        with self.lock:
            self.events.append(event)
            self.contexts.append(context)
            fail = self.failing or self.failures > 0 or bool(self.fail_if and self.fail_if(event))
            self.failures -= self.failures > 0 and fail
        if fail:
            raise RuntimeError("told to fail")
        return self.responses.pop(0) if self.responses else {"records": len(event["Records"]), "batchItemFailures": []}

    def batches(self):
        """The sequence numbers of each invocation's records, in invocation order."""
        with self.lock:
            return [[r["kinesis"]["sequenceNumber"] for r in event["Records"]] for event in self.events]

    def data(self):
        """The data of each invocation's records, in invocation order."""
        with self.lock:
            return [[base64.b64decode(r["kinesis"]["data"]) for r in event["Records"]] for event in self.events]


@pytest.fixture
def kinesis(aws_credentials):
    with mock_aws():
        client = boto3.client("kinesis", region_name=REGION)
        client.create_stream(StreamName=STREAM, ShardCount=1)
        yield client


def put(kinesis, data=b"x", stream=STREAM, hash_key=None):
    extra = {"ExplicitHashKey": hash_key} if hash_key is not None else {}
    return kinesis.put_record(StreamName=stream, Data=data, PartitionKey="clicks", **extra)["SequenceNumber"]


def mapping(kinesis, handler, failed, **settings):
    options = {"batch_size": 100, "window": 0, "max_retries": -1, "max_record_age": -1, "retention_seconds": 3600,
               "report_batch_item_failures": True, "function_timeout": 120}
    return EventSourceMapping(kinesis, STREAM, handler, failed.append, **{**options, **settings}).start_at()


# ------------------------------------------------------------------ settings from the template


def test_the_mapping_takes_its_retries_age_and_retention_from_the_template():
    template = load_template()
    props = template["Resources"]["AggregatorEventSource"]["Properties"]
    settings = mapping_settings(template)
    assert settings["max_retries"] == int(props["MaximumRetryAttempts"])
    assert settings["max_record_age"] == int(props["MaximumRecordAgeInSeconds"])
    assert settings["batch_size"] == int(props["BatchSize"])
    assert settings["report_batch_item_failures"] == ("ReportBatchItemFailures" in props.get("FunctionResponseTypes", []))
    hours = int(template["Parameters"]["ClickStreamRetentionHours"]["Default"])
    assert settings["retention_seconds"] == hours * 3600
    # Whatever the template sets, including AWS's defaults (-1: infinite) and parameters.
    changed = copy.deepcopy(template)
    changed_props = changed["Resources"]["AggregatorEventSource"]["Properties"]
    for retries, age in ((-1, -1), (7, 600)):
        changed_props.update(MaximumRetryAttempts=retries, MaximumRecordAgeInSeconds=age)
        assert (mapping_settings(changed)["max_retries"], mapping_settings(changed)["max_record_age"]) == (retries, age)


def test_a_mapping_built_without_settings_uses_the_templates(kinesis):
    expected = mapping_settings()
    built = EventSourceMapping(kinesis, STREAM, Recorder(), [].append)
    assert (built._max_retries, built._max_age, built._retention) == (
        expected["max_retries"], expected["max_record_age"], expected["retention_seconds"])


# ------------------------------------------------------------------ retries


def test_with_infinite_settings_a_failed_batch_is_retried_in_order_until_it_succeeds(kinesis):
    recorder, failed = Recorder(failures=7), []
    esm = mapping(kinesis, recorder, failed, batch_size=2)
    first = [put(kinesis) for _ in range(3)]
    assert esm.drain()
    later = put(kinesis)
    assert esm.drain()
    # The first batch, eight times (seven failures), and nothing behind it before it succeeded.
    assert recorder.batches() == [first[:2]] * 8 + [first[2:], [later]]
    assert failed == [] and esm.discarded == 0


def test_a_retry_waits_a_growing_pause_and_does_not_hold_the_poll(kinesis, monkeypatch):
    monkeypatch.setattr(event_source, "RETRY_DELAY_SECONDS", 0.2)
    assert [retry_pause(n) for n in (1, 2, 3)] == [0.2, 0.4, 0.8]
    assert retry_pause(30) == event_source.MAX_RETRY_DELAY_SECONDS
    recorder, failed = Recorder(failures=1), []
    esm = mapping(kinesis, recorder, failed)
    put(kinesis)
    started = time.monotonic()
    esm.poll(flush=True)
    esm.poll(flush=True)  # within the pause: no second attempt, and the poll returns at once
    assert len(recorder.events) == 1 and time.monotonic() - started < 0.15
    assert not esm.idle()
    assert esm.drain()  # sleeps through the pause, then the retry succeeds
    assert len(recorder.events) == 2 and time.monotonic() - started >= 0.2


def test_when_the_retries_run_out_the_range_goes_to_the_on_failure_destination_and_the_next_batch_follows(kinesis):
    recorder, failed = Recorder(failures=3), []
    esm = mapping(kinesis, recorder, failed, batch_size=2, max_retries=2)
    sequences = [put(kinesis) for _ in range(3)]
    assert esm.drain()
    assert recorder.batches() == [sequences[:2]] * 3 + [sequences[2:]]
    (record,) = failed
    assert set(record) == FAILURE_RECORD_KEYS and set(record["KinesisBatchInfo"]) == BATCH_INFO_KEYS
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"]["functionError"] == "Unhandled"
    info = record["KinesisBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        SHARD, sequences[0], sequences[1], 2)
    summary = kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]
    assert info["streamArn"] == summary["StreamARN"]


def test_a_partial_batch_response_makes_the_mapping_go_on_from_the_first_record_not_processed(kinesis):
    sequences = [put(kinesis) for _ in range(5)]
    recorder, failed = Recorder(responses=[
        {"batchItemFailures": [{"itemIdentifier": sequences[3]}, {"itemIdentifier": sequences[2]}]},  # the lowest counts
        {"batchItemFailures": [{"itemIdentifier": sequences[4]}]},
    ]), []
    esm = mapping(kinesis, recorder, failed, max_retries=0, report_batch_item_failures=True)
    assert esm.drain()
    # Progress is not a failed attempt: with no retries allowed, nothing is discarded.
    assert recorder.batches() == [sequences, sequences[2:], sequences[4:]] and failed == []


@pytest.mark.parametrize("failures", [[{"itemIdentifier": ""}], [{"itemIdentifier": None}], [{"sequenceNumber": "1"}],
                                      [{"itemIdentifier": "999"}]], ids=["empty", "null", "bad-key", "unknown"])
def test_a_malformed_partial_batch_response_fails_the_whole_batch(kinesis, failures):
    sequences = [put(kinesis) for _ in range(2)]
    recorder, failed = Recorder(responses=[{"batchItemFailures": failures}]), []
    esm = mapping(kinesis, recorder, failed, max_retries=1, report_batch_item_failures=True)
    assert esm.drain()
    assert recorder.batches() == [sequences, sequences] and failed == []  # retried whole, then a success


def test_without_report_batch_item_failures_a_partial_response_is_a_success(kinesis):
    sequences = [put(kinesis) for _ in range(2)]
    recorder, failed = Recorder(responses=[{"batchItemFailures": [{"itemIdentifier": sequences[1]}]}]), []
    esm = mapping(kinesis, recorder, failed, report_batch_item_failures=False)
    assert esm.drain()
    assert recorder.batches() == [sequences]


def test_the_function_gets_a_context_counting_down_from_its_timeout(kinesis):
    recorder, failed = Recorder(), []
    esm = mapping(kinesis, recorder, failed, function_timeout=120)
    put(kinesis)
    assert esm.drain()
    (context,) = recorder.contexts
    assert 119_000 < context.get_remaining_time_in_millis() <= 120_000
    assert mapping_settings()["function_timeout"] == int(
        load_template()["Resources"]["AggregatorFunction"]["Properties"]["Timeout"])


def test_a_batch_holds_at_most_six_megabytes(kinesis):
    recorder, failed = Recorder(), []
    esm = mapping(kinesis, recorder, failed)
    sequences = [put(kinesis, bytes([n]) * 900_000) for n in range(8)]
    assert esm.drain()
    assert [s for batch in recorder.batches() for s in batch] == sequences
    assert len(recorder.events) > 1
    assert all(len(json.dumps(event)) <= 6 * 1024 * 1024 for event in recorder.events)


# ------------------------------------------------------------------ record age and retention


def test_records_past_the_maximum_age_are_discarded_before_invocation(kinesis):
    now = [None]
    recorder, failed = Recorder(), []
    esm = mapping(kinesis, recorder, failed, max_record_age=60, clock=lambda: now[0] or time.time())
    old = [put(kinesis) for _ in range(2)]
    now[0] = time.time() + 61
    esm.poll(flush=True)
    assert recorder.events == []
    (record,) = failed
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0 and "responseContext" not in record
    info = record["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (*old, 2)
    now[0] = None
    fresh = put(kinesis)
    assert esm.drain()
    assert recorder.batches() == [[fresh]]


def test_a_failing_batch_is_discarded_once_its_records_pass_the_maximum_age(kinesis):
    now = [None]
    recorder, failed = Recorder(), []
    recorder.failing = True
    esm = mapping(kinesis, recorder, failed, max_record_age=60, clock=lambda: now[0] or time.time())
    sequence = put(kinesis)
    for _ in range(4):
        esm.poll(flush=True)
    assert len(recorder.events) == 4 and failed == []  # retried, with no limit on the attempts
    now[0] = time.time() + 61
    esm.poll(flush=True)
    (record,) = failed
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 4 and "responseContext" in record
    assert record["KinesisBatchInfo"]["startSequenceNumber"] == sequence
    assert len(recorder.events) == 4 and esm.idle()


def test_records_the_stream_has_trimmed_are_never_delivered_and_their_range_goes_to_the_destination(kinesis):
    recorder, failed = Recorder(), []
    esm = mapping(kinesis, recorder, failed, batch_size=2, retention_seconds=1)  # infinite retries and age
    trimmed = [put(kinesis) for _ in range(3)]
    time.sleep(1.1)  # the mapping was not polling (a stalled shard): the stream trims them meanwhile
    kept = put(kinesis)
    assert esm.drain()
    assert recorder.batches() == [[kept]]
    assert [(r["requestContext"]["condition"], r["KinesisBatchInfo"]["startSequenceNumber"],
             r["KinesisBatchInfo"]["endSequenceNumber"]) for r in failed] == [
        ("RecordAgeExceeded", trimmed[0], trimmed[1]), ("RecordAgeExceeded", trimmed[2], trimmed[2])]


def test_a_batch_failing_until_the_stream_trims_it_goes_to_the_destination(kinesis):
    recorder, failed = Recorder(), []
    recorder.failing = True
    esm = mapping(kinesis, recorder, failed, retention_seconds=1)
    sequence = put(kinesis)
    deadline = time.monotonic() + 5
    while not failed and time.monotonic() < deadline:
        esm.poll(flush=True)
        time.sleep(0.05)
    (record,) = failed
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["KinesisBatchInfo"]["startSequenceNumber"] == sequence
    assert record["requestContext"]["approximateInvokeCount"] == len(recorder.events) > 1
    assert esm.idle()


# ------------------------------------------------------------------ stopping


def test_stop_is_prompt_while_a_batch_keeps_failing_and_other_shards_go_on(aws_credentials, monkeypatch):
    monkeypatch.setattr(event_source, "RETRY_DELAY_SECONDS", 0.02)
    monkeypatch.setattr(event_source, "MAX_RETRY_DELAY_SECONDS", 0.1)
    with mock_aws():
        kinesis = boto3.client("kinesis", region_name=REGION)
        kinesis.create_stream(StreamName=STREAM, ShardCount=2)
        recorder, failed = Recorder(), []
        recorder.fail_if = lambda event: b"stuck" in [base64.b64decode(r["kinesis"]["data"]) for r in event["Records"]]
        esm = mapping(kinesis, recorder, failed, interval=0.02).start()
        try:
            put(kinesis, b"stuck", hash_key="0")  # shard one
            put(kinesis, b"moving", hash_key=str(2**127 + 1))  # shard two
            deadline = time.monotonic() + 5
            while recorder.data().count([b"stuck"]) < 5 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            # stop() in a thread of its own, so that a stop that never returns fails this test, not hangs it.
            stopping = threading.Thread(target=esm.stop, daemon=True)
            started = time.monotonic()
            stopping.start()
            stopping.join(timeout=5)
            stopped_in = time.monotonic() - started
    assert not stopping.is_alive() and stopped_in < 1.0
    assert recorder.data().count([b"stuck"]) >= 5  # retried with growing pauses, in the background
    assert recorder.data().count([b"moving"]) == 1  # delivered, not held behind the failing shard
    assert failed == []  # infinite retries: nothing discarded


# ------------------------------------------------------------------ the producer


class Lines:
    """An echo that keeps what passes through."""

    def write(self, text):
        pass

    def flush(self):
        pass


def click(n):
    return json.dumps({"type": "click", "id": f"id{n:05d}", "ua": "x"})


def stored(kinesis, stream=STREAM):
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=SHARD, ShardIteratorType="TRIM_HORIZON")
    return kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]


def test_a_duplicated_put_stores_the_same_data_twice_under_two_sequence_numbers(kinesis):
    subscription = LogSubscription(lambda data: put(kinesis, data), echo=Lines()).duplicate_puts(1)
    subscription.write("".join(click(n) + "\n" for n in range(3)))
    assert subscription.deliver_pending() == 3
    subscription.write(click(9) + "\n")
    assert subscription.deliver_pending() == 1  # only the next put was duplicated
    first, copy_, other = stored(kinesis)
    assert first["Data"] == copy_["Data"] and first["SequenceNumber"] != copy_["SequenceNumber"]
    assert len(json.loads(gzip.decompress(first["Data"]))["logEvents"]) == 3
    assert other["Data"] != first["Data"]


def test_a_put_whose_answer_is_lost_is_put_again_with_the_same_bytes(kinesis):
    faults = Faults(kinesis).lose_responses(ReadTimeoutError).fail_next("PutRecord")
    subscription = LogSubscription(lambda data: put(kinesis, data), echo=Lines())
    subscription.write(click(1) + "\n" + click(2) + "\n")
    assert subscription.deliver_pending() == 0  # stored, but the subscription saw a timeout
    subscription.write(click(3) + "\n")  # printed meanwhile: it waits for a record of its own
    assert subscription.deliver_pending() == 3
    records = stored(kinesis)
    assert len(records) == 3 and len(faults.lost_calls) == 1
    assert records[0]["Data"] == records[1]["Data"] != records[2]["Data"]
    assert [len(json.loads(gzip.decompress(r["Data"]))["logEvents"]) for r in records] == [2, 2, 1]


def test_each_subscription_is_a_log_stream_of_its_own_and_event_ids_never_repeat(monkeypatch):
    payloads = []

    def run():
        subscription = LogSubscription(payloads.append, echo=Lines())
        subscription.write("".join(click(n) + "\n" for n in range(5)))
        subscription.deliver_pending()
        return json.loads(gzip.decompress(payloads[-1]))

    monkeypatch.setattr(log_subscription, "_last_low", 0)  # each run is a new `make run` process
    first = run()
    monkeypatch.setattr(log_subscription, "_last_low", 0)
    second = run()
    assert first["logStream"] != second["logStream"]
    for payload in (first, second):
        assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", payload["logStream"])
        ids = [event["id"] for event in payload["logEvents"]]
        assert all(re.fullmatch(r"[1-9]\d{55}", event_id) for event_id in ids)
        assert [int(i) for i in ids] == sorted(int(i) for i in ids) and len(set(ids)) == 5
        # As CloudWatch Logs' ids: the event's timestamp in ms, shifted left by 144 bits, then a count.
        assert all(int(e["id"]) >> 144 == e["timestamp"] for e in payload["logEvents"])
    assert not {e["id"] for e in first["logEvents"]} & {e["id"] for e in second["logEvents"]}
    # Below the timestamp, ids grow with time too: a later run's never meet an earlier run's.
    low_bits = [[int(e["id"]) % 2**144 for e in payload["logEvents"]] for payload in (first, second)]
    assert min(low_bits[1]) > max(low_bits[0])
    # The same lines, in two runs, never make two records of one identity.
    assert [e["message"] for e in first["logEvents"]] == [e["message"] for e in second["logEvents"]]


# ------------------------------------------------------------------ a stream re-created under its name


def test_a_recreated_stream_keeps_its_name_and_shards_and_starts_a_new_life(aws_credentials):
    with mock_aws():
        kinesis = boto3.client("kinesis", region_name=REGION)
        kinesis.create_stream(StreamName=STREAM, ShardCount=2)
        stream = ClickStream(None, STREAM, None, kinesis, None, None)
        recorder, failed = Recorder(), []
        esm = mapping(kinesis, recorder, failed)
        old = [put(kinesis, b"old") for _ in range(3)]
        assert esm.drain()
        before = stream.summary()
        after = stream.recreate()
        assert after["StreamName"] == STREAM and after["OpenShardCount"] == 2
        assert after["StreamCreationTimestamp"] > before["StreamCreationTimestamp"]
        again = put(kinesis, b"new")
        assert int(again) <= int(old[0])  # moto's sequence numbers start again
        esm.follow()
        assert esm.drain()
    assert recorder.data() == [[b"old"] * 3, [b"new"]]
    assert recorder.batches()[-1] == [again] and failed == []


# ------------------------------------------------------------------ `make run`


@pytest.mark.integration
def test_make_run_prints_the_stream_and_its_endpoint_and_the_stream_is_there(tmp_path):
    from tests.stack_process import Stack

    stack = Stack("moto", tmp_path)
    try:
        found = [re.search(r"stream '([^']+)' at (http://127\.0\.0\.1:\d+)", line) for line in stack.lines]
        (match,) = [m for m in found if m]
        kinesis = boto3.client("kinesis", endpoint_url=match[2], region_name=REGION,
                               aws_access_key_id="local", aws_secret_access_key="local")
        summary = kinesis.describe_stream_summary(StreamName=match[1])["StreamDescriptionSummary"]
        assert summary["StreamStatus"] == "ACTIVE"
    finally:
        assert stack.stop() == 0


def test_decoded_records_are_what_was_put(kinesis):
    """The event carries each record's data as base64, as Lambda's does."""
    recorder, failed = Recorder(), []
    esm = mapping(kinesis, recorder, failed)
    put(kinesis, b"\x00\xffclick")
    assert esm.drain()
    (event,) = recorder.events
    assert base64.b64decode(event["Records"][0]["kinesis"]["data"]) == b"\x00\xffclick"
