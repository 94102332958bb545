"""deploy/replay_dlq.py: shards named in the on-failure queue are healed once, and their messages leave only then."""
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
from tests.support.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent
HUMAN = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


@pytest.fixture
def setup(aggregator, monkeypatch):
    """The on-failure queue, the stream and the real aggregator (in process), with a switchable outage
    of the aggregator's item updates (off until its kind is set)."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="links-clicks-dlq")["QueueUrl"]
    pipeline = Pipeline(aggregator, queue=(sqs, url))
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
    """An outage long enough that the mapping gives up on two batches; they go to the queue."""
    pipeline.send(clicks("aaa1111", 1))
    outage.kind = "throttled"
    pipeline.send(clicks("aaa1111", 3))
    pipeline.send(clicks("bbb2222", 2))
    outage.kind = None
    assert pipeline.mapping.discarded == 2


def test_replay_heals_skipped_batches_and_empties_the_queue(ddb, setup):
    sqs, url, pipeline, outage = setup
    skip_two_batches(pipeline, outage)
    assert (click_count(ddb, "aaa1111"), click_count(ddb, "bbb2222")) == (1, 0)
    outcome = replay_dlq.replay(url, replay_dlq.call_in_process(), sqs=sqs, wait_seconds=0)
    assert (outcome.healed_shards, outcome.deleted, outcome.failed, outcome.unreadable) == (1, 2, 0, 0)
    assert (click_count(ddb, "aaa1111"), click_count(ddb, "bbb2222")) == (4, 2)
    assert messages_left(sqs, url) == 0


def test_the_next_batch_heals_on_its_own_and_a_replay_after_it_counts_nothing_twice(ddb, setup):
    sqs, url, pipeline, outage = setup
    skip_two_batches(pipeline, outage)
    pipeline.send(clicks("aaa1111", 10))  # the next batch reads the skipped ones back first
    assert (click_count(ddb, "aaa1111"), click_count(ddb, "bbb2222")) == (14, 2)
    for _ in range(2):
        outcome = replay_dlq.replay(url, replay_dlq.call_in_process(), sqs=sqs, wait_seconds=0)
        assert outcome.ok
    assert (click_count(ddb, "aaa1111"), click_count(ddb, "bbb2222")) == (14, 2)
    assert messages_left(sqs, url) == 0


def test_a_long_gap_is_read_back_over_retries_of_the_next_batch(ddb, setup, monkeypatch):
    """Each attempt reads a bounded part of the gap, applies it and moves the checkpoint: progress, not a loop."""
    sqs, url, pipeline, outage = setup
    skip_two_batches(pipeline, outage)
    monkeypatch.setattr("aggregator.stream.MAX_CALLS", 1)  # one record read back per attempt
    pipeline.send(clicks("aaa1111", 10))
    assert (click_count(ddb, "aaa1111"), click_count(ddb, "bbb2222")) == (14, 2)
    assert pipeline.mapping.discarded == 2, "the next batch needed retries, but none was given up"


def test_a_failed_heal_leaves_the_messages(ddb, setup):
    sqs, url, pipeline, outage = setup
    skip_two_batches(pipeline, outage)
    outage.kind = "throttled"
    outcome = replay_dlq.replay(url, replay_dlq.call_in_process(), sqs=sqs, wait_seconds=0)
    assert (outcome.healed_shards, outcome.failed) == (0, 2) and not outcome.ok
    assert messages_left(sqs, url) == 2
    assert click_count(ddb, "bbb2222") == 0


@pytest.mark.parametrize(
    "body",
    ["not json", json.dumps({"requestPayload": {"awslogs": {}}}), json.dumps([1, 2]),
     json.dumps({"KinesisBatchInfo": {"shardId": "../etc"}})],
)
def test_an_unreadable_message_is_kept_for_a_person(ddb, setup, body):
    sqs, url, _, _ = setup
    sqs.send_message(QueueUrl=url, MessageBody=body)
    outcome = replay_dlq.replay(url, replay_dlq.call_in_process(), sqs=sqs, wait_seconds=0)
    assert (outcome.healed_shards, outcome.unreadable) == (0, 1)
    assert messages_left(sqs, url) == 1


def test_invoke_function_asks_for_a_heal_synchronously():
    # A session of its own: boto3.client() would create boto3's default session here, outside moto,
    # and that session keeps the credentials it first read, for every later boto3.client() in this
    # process (bench's handler copies then reach DynamoDB Local under the wrong access key).
    client = boto3.session.Session(region_name=REGION).client("lambda")
    payload = {"heal": {"shard": "shardId-000000000000"}}
    ok = json.dumps({"shardId-000000000000": {"clicks": 2, "complete": True}}).encode()
    failed = json.dumps({"errorMessage": "boom", "errorType": "ClientError"}).encode()
    expected = {"FunctionName": "links-aggregator", "InvocationType": "RequestResponse",
                "Payload": json.dumps(payload).encode()}
    with Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(ok), len(ok))}, expected)
        stub.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled",
                                     "Payload": StreamingBody(io.BytesIO(failed), len(failed))}, expected)
        apply = replay_dlq.invoke_function("links-aggregator", client)
        assert apply(payload) == {"shardId-000000000000": {"clicks": 2, "complete": True}}
        with pytest.raises(replay_dlq.ReplayFailed, match="boom"):
            apply(payload)


def test_a_long_backlog_is_healed_over_several_calls(ddb, setup, monkeypatch):
    sqs, url, pipeline, outage = setup
    skip_two_batches(pipeline, outage)
    for _ in range(5):
        pipeline.put(clicks("bbb2222", 1))  # arrive after the skip, and the mapping is not polled
    monkeypatch.setattr("aggregator.stream.MAX_CALLS", 1)
    monkeypatch.setattr("aggregator.stream.RECORDS_PER_CALL", 2)
    monkeypatch.setattr("aggregator.handler.HEAL_ROUNDS", 1)
    calls = []

    def counted(payload):
        calls.append(payload)
        return replay_dlq.call_in_process()(payload)

    outcome = replay_dlq.replay(url, counted, sqs=sqs, wait_seconds=0)
    assert outcome.ok and len(calls) > 1
    assert (click_count(ddb, "aaa1111"), click_count(ddb, "bbb2222")) == (4, 7)


def test_command_line_local_mode(ddb, setup, capsys):
    sqs, url, pipeline, outage = setup
    skip_two_batches(pipeline, outage)
    assert replay_dlq.main(["--queue-url", url, "--local"]) == 0
    assert "healed 1 shard(s), deleted 2 message(s); 0 failed and 0 unreadable" in capsys.readouterr().out
    assert click_count(ddb, "aaa1111") == 4


def test_make_target_passes_queue_and_function():
    dry = subprocess.run(["make", "-n", "replay-dlq", "QUEUE_URL=https://q", "FUNCTION=links-aggregator"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert '-m deploy.replay_dlq --queue-url "https://q" --function "links-aggregator"' in dry
