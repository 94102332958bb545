"""deploy/replay_dlq.py: failed click batches go back to the aggregator, once, and leave the queue only when applied."""
import io
import json
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from deploy import replay_dlq
from local_stack.log_subscription import encode_batch
from tests.conftest import REGION, TABLE_NAME

ROOT = Path(__file__).resolve().parent.parent
HUMAN = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


@pytest.fixture
def queue(ddb, monkeypatch):
    """The dead-letter queue (moto), with TABLE_NAME set for the in-process aggregator."""
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="links-clicks-dlq", Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    for short_id in ("aaa1111", "bbb2222"):
        ddb.put_item(TableName=TABLE_NAME, Item={
            "pk": {"S": short_id}, "sk": {"S": "link"}, "url": {"S": "https://example.com"},
            "is_active": {"BOOL": True}, "click_count": {"N": "0"},
        })
    return sqs, url


def clicks(short_id, n, first_id=0):
    """One awslogs batch of n human clicks on short_id."""
    lines = [json.dumps({"type": "click", "id": short_id, "ts": "2026-11-27T10:00:00Z", "ua": HUMAN, "Status": "302"})
             for _ in range(n)]
    return encode_batch(lines, log_group="/aws/lambda/links-redirect", first_id=first_id)


def failure_record(payload):
    """What Lambda's on-failure destination puts on the queue after the last retry."""
    return json.dumps({
        "version": "1.0",
        "timestamp": "2026-11-27T10:01:00.000Z",
        "requestContext": {
            "requestId": "3c2e3b7e-0000-4000-8000-000000000000",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:links-aggregator:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "Throughput exceeds the current capacity", "errorType": "ClientError"},
    })


def click_count(ddb, short_id):
    item = ddb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": short_id}, "sk": {"S": "link"}})["Item"]
    return int(item["click_count"]["N"])


def messages_left(sqs, url):
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_replay_applies_every_batch_and_empties_the_queue(ddb, queue):
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=failure_record(clicks("aaa1111", 3)))
    sqs.send_message(QueueUrl=url, MessageBody=failure_record(clicks("bbb2222", 2, first_id=100)))
    outcome = replay_dlq.replay(url, replay_dlq.call_in_process(), sqs=sqs, wait_seconds=0)
    assert (outcome.replayed, outcome.failed, outcome.unreadable) == (2, 0, 0)
    assert (click_count(ddb, "aaa1111"), click_count(ddb, "bbb2222")) == (3, 2)
    assert messages_left(sqs, url) == 0


def test_a_batch_replayed_twice_is_counted_once(ddb, queue):
    """The same failed batch on the queue twice (or replayed by two runs): the batch marker wins."""
    sqs, url = queue
    batch = clicks("aaa1111", 4)
    for _ in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=failure_record(batch))
    first = replay_dlq.replay(url, replay_dlq.call_in_process(), sqs=sqs, wait_seconds=0)
    sqs.send_message(QueueUrl=url, MessageBody=failure_record(batch))
    second = replay_dlq.replay(url, replay_dlq.call_in_process(), sqs=sqs, wait_seconds=0)
    assert first.replayed == 2 and second.replayed == 1
    assert click_count(ddb, "aaa1111") == 4
    assert messages_left(sqs, url) == 0


def test_a_batch_that_had_been_applied_before_failing_changes_nothing(ddb, queue):
    """A delivery can be applied and still end on the queue (e.g. a timeout after the write)."""
    sqs, url = queue
    batch = clicks("bbb2222", 5)
    replay_dlq.call_in_process()(batch)
    sqs.send_message(QueueUrl=url, MessageBody=failure_record(batch))
    outcome = replay_dlq.replay(url, replay_dlq.call_in_process(), sqs=sqs, wait_seconds=0)
    assert outcome.replayed == 1 and outcome.results[0]["skipped"] >= 1
    assert click_count(ddb, "bbb2222") == 5


def test_a_failed_replay_leaves_the_message(ddb, queue):
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=failure_record(clicks("aaa1111", 1)))

    def broken(payload):
        raise replay_dlq.ReplayFailed("aggregator still failing")

    outcome = replay_dlq.replay(url, broken, sqs=sqs, wait_seconds=0)
    assert (outcome.replayed, outcome.failed) == (0, 1) and not outcome.ok
    assert messages_left(sqs, url) == 1
    assert click_count(ddb, "aaa1111") == 0


@pytest.mark.parametrize("body", ["not json", json.dumps({"requestPayload": {"records": []}}), json.dumps([1, 2])])
def test_an_unreadable_message_is_kept_for_a_person(ddb, queue, body):
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=body)
    outcome = replay_dlq.replay(url, replay_dlq.call_in_process(), sqs=sqs, wait_seconds=0)
    assert (outcome.replayed, outcome.unreadable) == (0, 1)
    assert messages_left(sqs, url) == 1


def test_invoke_function_sends_the_original_event_synchronously():
    client = boto3.client("lambda", region_name=REGION)
    payload = clicks("aaa1111", 2)
    ok = json.dumps({"clicks": 2, "transactions": 1, "skipped": 0}).encode()
    failed = json.dumps({"errorMessage": "boom", "errorType": "ClientError"}).encode()
    expected = {"FunctionName": "links-aggregator", "InvocationType": "RequestResponse",
                "Payload": json.dumps(payload).encode()}
    with Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(ok), len(ok))}, expected)
        stub.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled",
                                     "Payload": StreamingBody(io.BytesIO(failed), len(failed))}, expected)
        apply = replay_dlq.invoke_function("links-aggregator", client)
        assert apply(payload) == {"clicks": 2, "transactions": 1, "skipped": 0}
        with pytest.raises(replay_dlq.ReplayFailed, match="boom"):
            apply(payload)


def test_command_line_local_mode(ddb, queue, capsys):
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=failure_record(clicks("aaa1111", 2)))
    assert replay_dlq.main(["--queue-url", url, "--local"]) == 0
    assert "replayed 1 batch(es); 0 failed and 0 unreadable" in capsys.readouterr().out
    assert click_count(ddb, "aaa1111") == 2


def test_make_target_passes_queue_and_function():
    dry = subprocess.run(["make", "-n", "replay-dlq", "QUEUE_URL=https://q", "FUNCTION=links-aggregator"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert '-m deploy.replay_dlq --queue-url "https://q" --function "links-aggregator"' in dry
