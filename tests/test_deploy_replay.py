"""deploy/replay_dlq.py: each range named in the on-failure queue is accounted for once (lost or skipped,
never applied), and its message leaves the queue only then. (The Lambda client's timeout and retries,
and a refused message on the deployed path: tests/test_exactly_once.py, issue 14's failure 7.)

The mapping discards a range only when the stream trimmed it, or when an operator set finite retries
(here: the stand-in's two). The aggregator, sent {"failed": <message>}, checks the stream and reports.
"""
import io
import json
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from deploy import replay_dlq
from tests.conftest import REGION, TABLE_NAME
from tests.support.faults import Outage
from tests.support.pipeline import STREAM, Pipeline

ROOT = Path(__file__).resolve().parent.parent
HUMAN = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


@pytest.fixture
def setup(aggregator, monkeypatch):
    """The on-failure queue, the stream and the real aggregator (in process), with a switchable outage
    of the aggregator's item updates (off until its kind is set)."""
    monkeypatch.setattr("aggregator.stream.READ_PAUSE_SECONDS", 0)  # the shard's read limit is not tested here
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="links-clicks-dlq")["QueueUrl"]
    pipeline = Pipeline(aggregator, queue=(sqs, url), max_retries=2)  # an operator's finite retries
    outage = Outage(monkeypatch, aggregator._dynamodb, operations={"UpdateItem"})
    yield sqs, url, pipeline, outage
    outage.end()


def clicks(short_id, n):
    return [json.dumps({"type": "click", "id": short_id, "ua": HUMAN}) for _ in range(n)]


def click_count(ddb, short_id):
    item = ddb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": short_id}, "sk": {"S": f"clicks#{REGION}"}}).get("Item")
    return int(item["clicks"]["N"]) if item else 0


def messages_left(sqs, url):
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def skip_two_batches(pipeline, outage):
    """An outage that outlasts the mapping's (finite) retries of two batches; their ranges go to the queue."""
    pipeline.send(clicks("aaa1111", 1))
    outage.kind = "throttled"
    pipeline.send(clicks("aaa1111", 3))
    pipeline.send(clicks("bbb2222", 2))
    outage.kind = None
    assert pipeline.mapping.discarded == 2


def trim(stream_name, up_to):
    """Remove every record of the stream up to sequence number `up_to`, as Kinesis does once they
    are older than its retention (moto never trims). Keep a later record: moto numbers a new
    record after the last one it holds."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.kinesis.models import kinesis_backends

    stream = kinesis_backends[DEFAULT_ACCOUNT_ID][REGION].streams[stream_name]
    for shard in stream.shards.values():
        for sequence in [s for s in shard.records if s <= int(up_to)]:
            del shard.records[sequence]
        assert shard.records, "keep a later record on the shard"


def test_replay_reports_ranges_still_on_the_stream_as_skipped_applies_nothing_and_empties_the_queue(ddb, setup):
    sqs, url, pipeline, outage = setup
    skip_two_batches(pipeline, outage)
    assert (click_count(ddb, "aaa1111"), click_count(ddb, "bbb2222")) == (1, 0)
    outcome = replay_dlq.replay(url, replay_dlq.call_in_process(), sqs=sqs, wait_seconds=0)
    assert (outcome.accounted, outcome.skipped, outcome.lost, outcome.failed, outcome.unreadable) == (2, 2, 0, 0, 0)
    assert [r["records"] for r in outcome.results] == [1, 1]
    assert (click_count(ddb, "aaa1111"), click_count(ddb, "bbb2222")) == (1, 0)  # reported, never applied
    assert messages_left(sqs, url) == 0


def test_replay_reports_a_trimmed_range_as_lost(ddb, setup):
    sqs, url, pipeline, outage = setup
    skip_two_batches(pipeline, outage)
    pipeline.send(clicks("ccc3333", 1))  # a later record, counted as usual
    [first, second] = pipeline.failures()
    trim(STREAM, first["KinesisBatchInfo"]["endSequenceNumber"])  # the first range is past the retention
    outcome = replay_dlq.replay(url, replay_dlq.call_in_process(), sqs=sqs, wait_seconds=0)
    assert (outcome.accounted, outcome.lost, outcome.skipped) == (2, 1, 1)
    by_first = {r["first"]: (r["lost"], r["skipped"]) for r in outcome.results}
    assert by_first == {first["KinesisBatchInfo"]["startSequenceNumber"]: (1, 0),
                        second["KinesisBatchInfo"]["startSequenceNumber"]: (0, 1)}
    assert messages_left(sqs, url) == 0


def test_the_next_batch_counts_only_its_own_and_replays_count_nothing(ddb, setup):
    sqs, url, pipeline, outage = setup
    skip_two_batches(pipeline, outage)
    pipeline.send(clicks("aaa1111", 10))  # no gap is read back: only its own record
    assert pipeline.results[-1]["records"] == 1
    assert (click_count(ddb, "aaa1111"), click_count(ddb, "bbb2222")) == (11, 0)
    first = replay_dlq.replay(url, replay_dlq.call_in_process(), sqs=sqs, wait_seconds=0)
    again = replay_dlq.replay(url, replay_dlq.call_in_process(), sqs=sqs, wait_seconds=0)
    assert (first.ok, first.accounted, again.ok, again.accounted) == (True, 2, True, 0)
    assert (click_count(ddb, "aaa1111"), click_count(ddb, "bbb2222")) == (11, 0)
    assert messages_left(sqs, url) == 0


def test_a_failed_account_leaves_the_messages(ddb, setup, monkeypatch):
    sqs, url, pipeline, outage = setup
    skip_two_batches(pipeline, outage)
    stream_outage = Outage(monkeypatch, pipeline.aggregator._kinesis, operations={"GetShardIterator"})
    stream_outage.kind = "internal-error"
    try:
        outcome = replay_dlq.replay(url, replay_dlq.call_in_process(), sqs=sqs, wait_seconds=0)
    finally:
        stream_outage.end()
    assert (outcome.accounted, outcome.failed) == (0, 2) and not outcome.ok
    assert stream_outage.failed_sends >= 2
    assert messages_left(sqs, url) == 2


@pytest.mark.parametrize(
    "body",
    ["not json", json.dumps({"requestPayload": {"awslogs": {}}}), json.dumps([1, 2]),
     json.dumps({"KinesisBatchInfo": {"shardId": "../etc"}})],
)
def test_an_unreadable_message_is_kept_for_a_person(ddb, setup, body):
    sqs, url, _, _ = setup
    sqs.send_message(QueueUrl=url, MessageBody=body)
    outcome = replay_dlq.replay(url, replay_dlq.call_in_process(), sqs=sqs, wait_seconds=0)
    assert (outcome.accounted, outcome.unreadable) == (0, 1)
    assert messages_left(sqs, url) == 1


def test_a_message_the_aggregator_refuses_is_kept_and_the_others_are_accounted_for(ddb, setup):
    # It names a shard, so replay_dlq sends it; the aggregator finds no range in it (ValueError).
    sqs, url, pipeline, outage = setup
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"KinesisBatchInfo": {"shardId": "shardId-000000000000"}}))
    skip_two_batches(pipeline, outage)
    outcome = replay_dlq.replay(url, replay_dlq.call_in_process(), sqs=sqs, wait_seconds=0)
    assert (outcome.accounted, outcome.failed + outcome.unreadable) == (2, 1) and not outcome.ok
    assert messages_left(sqs, url) == 1


def test_invoke_function_sends_the_failure_record_synchronously():
    # A session of its own: boto3.client() would create boto3's default session here, outside moto,
    # and that session keeps the credentials it first read, for every later boto3.client() in this
    # process (bench's handler copies then reach DynamoDB Local under the wrong access key).
    client = boto3.session.Session(region_name=REGION).client("lambda")
    payload = {"failed": {"KinesisBatchInfo": {"shardId": "shardId-000000000000", "batchSize": 2}}}
    ok = json.dumps({"shard": "shardId-000000000000", "lost": 2, "skipped": 0}).encode()
    failed = json.dumps({"errorMessage": "boom", "errorType": "ClientError"}).encode()
    expected = {"FunctionName": "links-aggregator", "InvocationType": "RequestResponse",
                "Payload": json.dumps(payload).encode()}
    with Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(ok), len(ok))}, expected)
        stub.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled",
                                     "Payload": StreamingBody(io.BytesIO(failed), len(failed))}, expected)
        apply = replay_dlq.invoke_function("links-aggregator", client)
        assert apply(payload) == {"shard": "shardId-000000000000", "lost": 2, "skipped": 0}
        with pytest.raises(replay_dlq.ReplayFailed, match="boom"):
            apply(payload)


def test_command_line_local_mode(ddb, setup, capsys):
    sqs, url, pipeline, outage = setup
    skip_two_batches(pipeline, outage)
    assert replay_dlq.main(["--queue-url", url, "--local"]) == 0
    out = capsys.readouterr().out
    assert ("accounted for 2 discarded range(s): 0 record(s) lost, 2 skipped; 0 failed and 0 unreadable left in the queue"
            in out)
    assert click_count(ddb, "aaa1111") == 1
    assert messages_left(sqs, url) == 0


def test_make_target_passes_queue_and_function():
    dry = subprocess.run(["make", "-n", "replay-dlq", "QUEUE_URL=https://q", "FUNCTION=links-aggregator"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert '-m deploy.replay_dlq --queue-url "https://q" --function "links-aggregator"' in dry
