"""Exactly once around the core (issue 14): producer duplicates, stream lives, compact marks, retries, discarded ranges.

Each section names the failure of issue 14 it covers; every test there failed on the code before
the fix (c4af53d). Failures 2 (a heal too big for one call), 6 (alarms before the stream) and 8
(warm throughput) have no aggregator code left to test here: the batch path no longer heals, and
the others are the template's.
"""
import gzip
import io
import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from aggregator import clicks, layout, stream
from local_stack.event_source import failure_record, kinesis_event
from local_stack.log_subscription import encode_payload
from tests.conftest import REGION, TABLE_NAME
from tests.support.faults import Faults
from tests.support.pipeline import Pipeline
from tests.test_aggregator import (  # noqa: F401 - kinesis and aggregator are fixtures
    aggregator, kinesis,
    NOON, SHARD, STREAM, counter, event_for, fail_updates, item, line, put, stats,
)
from tests.test_deploy_replay import trim

ONE_WRITE_UNIT = 1024  # bytes: an item up to 1 KB costs one write unit per write
# Real Kinesis sequence numbers have about 56 digits and grow along a shard (moto's are 1, 2, 3...).
REAL_SEQUENCE = 49590338271490256608559692538361571095921575989136588898


def sequence_number(shard, n, base=REAL_SEQUENCE):
    """A realistic sequence number: the n-th record of a shard."""
    return str(base + shard * 10**24 + n * 10**4)


def batch_event(arn, shard_id, records):
    """The mapping's event for records [(sequence number, data)] of one shard, arrived now."""
    return kinesis_event([(sequence, data, time.time()) for sequence, data in records], arn, shard_id)


def arn_of(kinesis, name=STREAM):
    return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


def shard_records(kinesis, shard_id, name=STREAM):
    """(sequence number, data) of every record of one shard of a moto stream."""
    iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")
    return [(r["SequenceNumber"], r["Data"]) for r in
            kinesis.get_records(ShardIterator=iterator["ShardIterator"], Limit=10_000)["Records"]]


def record_data(kinesis, sequence):
    """The data of one record of the test stream's shard."""
    return dict(shard_records(kinesis, SHARD))[sequence]


def count_calls(client):
    """Every operation the client calls, in order, and each failed conditional write among them."""
    calls = {"all": [], "conditional_failures": 0}

    def before(model, **_):
        calls["all"].append(model.name)

    def after(parsed, **_):
        if parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            calls["conditional_failures"] += 1

    client.meta.events.register("before-call", before)
    client.meta.events.register("after-call", after)
    return calls


def dynamodb_item_size(item):
    """An item's size by DynamoDB's documented rules (its attribute names and values): a string is its
    UTF-8 bytes, a number 1 byte per two significant digits plus 1, a set the sum of its members."""
    def number(text):
        digits = text.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1

    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        elif "N" in value:
            size += number(value["N"])
        elif "SS" in value:
            size += sum(len(member.encode()) for member in value["SS"])
        elif "NS" in value:
            size += sum(number(member) for member in value["NS"])
        elif "BOOL" in value or "NULL" in value:
            size += 1
        else:
            raise AssertionError(f"an attribute type the aggregator never writes: {name} {value}")
    return size


def raw_item(ddb, pk, sk):
    return ddb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True)["Item"]


def claim_items(ddb):
    items = ddb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
    return [i for i in items if i["pk"]["S"].startswith(layout.CLAIM_PK_PREFIX)]


# ------------------------------------------------------------------ 1. a producer's retry is counted twice


def test_a_record_stored_twice_by_a_producer_retry_counts_once(aggregator, kinesis, ddb):
    first = put(kinesis, [line("abc1234"), line("abc1234"), line("bbb2222")])
    data = kinesis.get_records(
        ShardIterator=kinesis.get_shard_iterator(StreamName=STREAM, ShardId=SHARD, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    )["Records"][0]["Data"]
    copy = kinesis.put_record(StreamName=STREAM, Data=data, PartitionKey="clicks")["SequenceNumber"]
    aggregator.lambda_handler(event_for(kinesis, [first]), None)
    result = aggregator.lambda_handler(event_for(kinesis, [copy]), None)
    assert counter(ddb, "abc1234")["clicks"] == 2 and counter(ddb, "bbb2222")["clicks"] == 1
    assert result["duplicate_records"] == 1


def test_a_copy_in_the_same_batch_counts_once(aggregator, kinesis, ddb):
    first = put(kinesis, [line("abc1234")])
    data = kinesis.get_records(
        ShardIterator=kinesis.get_shard_iterator(StreamName=STREAM, ShardId=SHARD, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    )["Records"][0]["Data"]
    copy = kinesis.put_record(StreamName=STREAM, Data=data, PartitionKey="clicks")["SequenceNumber"]
    result = aggregator.lambda_handler(event_for(kinesis, [first, copy]), None)
    assert counter(ddb, "abc1234")["clicks"] == 1 and result["duplicate_records"] == 1


def test_a_redelivered_batch_keeps_its_claims_and_counts_once(aggregator, kinesis, ddb):
    sequences = [put(kinesis, [line("abc1234")]), put(kinesis, [line("bbb2222")])]
    event = event_for(kinesis, sequences)
    aggregator.lambda_handler(event, None)
    again = aggregator.lambda_handler(event, None)
    assert counter(ddb, "abc1234")["clicks"] == 1 and counter(ddb, "bbb2222")["clicks"] == 1
    assert again["duplicate_records"] == 0  # its own claims: a redelivery is not a copy of itself


@pytest.fixture
def two_shards(aggregator, ddb):
    """A two-shard stream (the test stream, created again), its ARN and each shard's starting hash key."""
    client = boto3.client("kinesis", region_name=REGION)
    client.delete_stream(StreamName=STREAM)
    client.create_stream(StreamName=STREAM, ShardCount=2)
    shards = client.list_shards(StreamName=STREAM)["Shards"]
    return client, arn_of(client), [(s["ShardId"], s["HashKeyRange"]["StartingHashKey"]) for s in shards]


def _put_on(client, shard_hash, data):
    return client.put_record(StreamName=STREAM, Data=data, PartitionKey="clicks", ExplicitHashKey=shard_hash)


def test_a_copy_stored_in_another_shard_counts_once(aggregator, two_shards, ddb):
    # A producer's retry after a reshard, or to another partition, lands in another shard.
    client, arn, [(first_shard, low), (second_shard, high)] = two_shards
    data = encode_payload([line("abc1234"), line("abc1234", ua="Twitterbot/1.0")], timestamp_ms=NOON)
    _put_on(client, low, data)
    _put_on(client, high, encode_payload([line("bbb2222")], timestamp_ms=NOON))
    _put_on(client, high, data)
    first = aggregator.lambda_handler(batch_event(arn, first_shard, shard_records(client, first_shard)), None)
    second = aggregator.lambda_handler(batch_event(arn, second_shard, shard_records(client, second_shard)), None)
    assert (counter(ddb, "abc1234")["clicks"], counter(ddb, "abc1234")["bots"]) == (1, 1)
    assert counter(ddb, "bbb2222")["clicks"] == 1
    assert stats(ddb, "abc1234")["clicks"] == 1
    assert (first["duplicate_records"], second["duplicate_records"]) == (0, 1)


def test_a_copy_in_another_shard_met_while_the_original_is_retried_counts_once(aggregator, two_shards, ddb):
    # The original's batch claims its record, then fails at an item; meanwhile the other shard's
    # batch brings the copy. The copy is dropped; the original's retry applies the clicks once.
    client, arn, [(first_shard, low), (second_shard, high)] = two_shards
    data = encode_payload([line("abc1234"), line("ccc3333")], timestamp_ms=NOON)
    _put_on(client, low, data)
    _put_on(client, high, data)
    original = batch_event(arn, first_shard, shard_records(client, first_shard))
    faults = fail_updates(aggregator._dynamodb, lambda params: params["Key"]["pk"]["S"] == "ccc3333")
    with pytest.raises(ClientError):
        aggregator.lambda_handler(original, None)
    faults.clear()
    copy = aggregator.lambda_handler(batch_event(arn, second_shard, shard_records(client, second_shard)), None)
    aggregator.lambda_handler(original, None)
    assert (counter(ddb, "abc1234")["clicks"], counter(ddb, "ccc3333")["clicks"]) == (1, 1)
    assert (stats(ddb, "abc1234")["clicks"], stats(ddb, "ccc3333")["clicks"]) == (1, 1)
    assert (copy["duplicate_records"], copy["clicks"]) == (1, 0)


def test_a_claim_costs_one_write_per_record_with_clicks_and_none_without(aggregator, kinesis, ddb):
    calls = count_calls(aggregator._dynamodb)
    control = gzip.compress(json.dumps({"messageType": "CONTROL_MESSAGE", "logEvents": [
        {"id": "1", "timestamp": NOON, "message": "CWL CONTROL MESSAGE"}]}).encode())
    sequences = [
        put(kinesis, [line("abc1234")] * 250),  # CloudWatch Logs packs many lines in one record
        put(kinesis, [line("abc1234"), line("bbb2222")]),
        put(kinesis, ["START RequestId: 1 Version: $LATEST", "REPORT RequestId: 1"]),  # no click line
        kinesis.put_record(StreamName=STREAM, Data=control, PartitionKey="c")["SequenceNumber"],
        put(kinesis, [line("ccc3333", ua="Twitterbot/1.0")]),  # a bot's click is a click too
    ]
    result = aggregator.lambda_handler(event_for(kinesis, sequences), None)
    assert result["clicks"] == 253
    assert calls["all"].count("PutItem") == 3
    claimed = claim_items(ddb)
    assert len(claimed) == 3
    # Each claim is one write unit: 3 writes for 253 clicks here.
    assert all(dynamodb_item_size(claim) <= ONE_WRITE_UNIT for claim in claimed)
    assert all(set(claim) == {"pk", "sk", "owner", "purge_at"} for claim in claimed)


# ------------------------------------------------------------------ 3. a re-created stack loses clicks or stalls


def test_a_stream_created_again_under_the_same_name_counts_its_clicks(aggregator, kinesis, ddb):
    for _ in range(5):
        put(kinesis, [line("abc1234")])
    sequences = [put(kinesis, [line("abc1234")]) for _ in range(3)]
    aggregator.lambda_handler(event_for(kinesis, sequences), None)
    kinesis.delete_stream(StreamName=STREAM)
    time.sleep(0.01)
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    stream._lives.clear()  # a re-created stack brings a new function, with no memory
    # The new stream's sequence numbers start again, below the old life's marks.
    again = [put(kinesis, [line("abc1234")]) for _ in range(2)]
    assert int(again[-1]) < int(sequences[0])
    aggregator.lambda_handler(event_for(kinesis, again), None)
    assert counter(ddb, "abc1234")["clicks"] == 5


def refuse_other_lives(client, issued):
    """Make Kinesis refuse a sequence number the stream did not issue, as AWS does for one of another
    stream ("... did not come from this stream"); moto accepts any number."""
    faults = Faults(client)
    faults.fault = "InvalidArgumentException"
    faults.fail_when = lambda operation, request: (
        operation == "GetShardIterator" and "StartingSequenceNumber" in request
        and request["StartingSequenceNumber"] not in issued
    )
    return faults


@pytest.mark.parametrize("numbers", ["lower", "higher"])
@pytest.mark.parametrize("container", ["new", "warm"])
def test_a_stream_created_again_counts_its_clicks_whatever_its_sequence_numbers(aggregator, kinesis, ddb, monkeypatch,
                                                                                 numbers, container):
    """A stack deleted and created again under its name: same stream name, same shard ids, and the
    table (which survives) still holds the old life's marks. The new life's numbers may be lower
    (its clicks were silently taken as applied) or higher (each batch asked Kinesis for an iterator
    after a number of the old life, was refused, and failed: the shard stalled)."""
    old_arn = arn_of(kinesis)
    old = [sequence_number(0, n) for n in range(1, 4)]
    aggregator.lambda_handler(batch_event(old_arn, SHARD, [(s, encode_payload([line("abc1234")])) for s in old]), None)
    kinesis.delete_stream(StreamName=STREAM)
    time.sleep(0.01)
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    if container == "new":
        stream._lives.clear()  # a new stack's function, with no memory
    # A warm container remembers the old life, but the new records arrived after it asked: it asks again.
    base = REAL_SEQUENCE - 10**40 if numbers == "lower" else REAL_SEQUENCE + 10**40
    new = [sequence_number(0, n, base) for n in range(1, 3)]
    assert (int(new[0]) < int(old[0])) == (numbers == "lower")
    refuse_other_lives(aggregator._kinesis, issued=set(new))
    event = batch_event(arn_of(kinesis), SHARD, [(s, encode_payload([line("abc1234")])) for s in new])
    for _ in range(3):  # the mapping's retries, if the batch fails
        try:
            aggregator.lambda_handler(event, None)
            break
        except ClientError:
            continue
    assert counter(ddb, "abc1234")["clicks"] == 3 + 2


# ------------------------------------------------------------------ 4. marks grow with the shard count


def test_marks_are_compact():
    mark = layout.mark_name(layout.stream_life("arn:aws:kinesis:us-east-1:123456789012:stream/clicks", "1.000"), "shardId-000000000015")
    value = layout.encode_sequence("49590338271490256608559692538361571095921575989136588898")
    assert len(mark) + len(value) <= 50


@pytest.mark.parametrize("pair", [("1", "2"), ("9", "10"), ("99", "100"), ("9" * 128, "1" + "0" * 128), ("0", "1")])
def test_encoded_sequences_compare_like_numbers(pair):
    small, large = pair
    assert layout.encode_sequence(small) < layout.encode_sequence(large)
    assert layout.decode_sequence(layout.encode_sequence(large)) == large


@pytest.mark.parametrize("value", ["", "01", "1" * 130, "12a", "١٢", "-1"])
def test_encoding_refuses_what_is_not_a_sequence_number(value):
    with pytest.raises(ValueError):
        layout.encode_sequence(value)


# What a link-day's stats item holds on a realistic day: a few referrer hosts and countries, and
# the devices of people; one click a shard (spread thin), each from one of these.
REFERRERS = ["www.google.com", "t.co", "www.linkedin.com", "news.ycombinator.com", "l.facebook.com"]
COUNTRIES = ["US", "DE", "GB", "FR", "IN", "BR"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)",
]


@pytest.mark.parametrize("shards", [1, 8, 16])
def test_items_touched_by_every_shard_stay_within_the_write_budget(aggregator, ddb, shards):
    """A counter item stays within one write unit; a stats item, which now also counts hours,
    browsers and operating systems, within the one extra write unit issue 18 allows."""
    client = boto3.client("kinesis", region_name=REGION)
    client.delete_stream(StreamName=STREAM)
    client.create_stream(StreamName=STREAM, ShardCount=shards)
    arn = arn_of(client)
    for round_ in range(3):  # every shard brings clicks of the link, several batches each
        for shard in range(shards):
            n = round_ * shards + shard
            lines = [line("abc1234", ua=AGENTS[n % len(AGENTS)], ref=REFERRERS[n % len(REFERRERS)],
                          cc=COUNTRIES[n % len(COUNTRIES)])]
            sequence = sequence_number(shard, round_ + 1)
            data = encode_payload(lines, timestamp_ms=NOON)
            aggregator.lambda_handler(batch_event(arn, f"shardId-{shard:012d}", [(sequence, data)]), None)
    counter_item = raw_item(ddb, "abc1234", f"clicks#{REGION}")
    stats_item = raw_item(ddb, "stats#abc1234", f"day#2026-11-27#{REGION}")
    assert int(counter_item["clicks"]["N"]) + int(counter_item["bots"]["N"]) == 3 * shards
    marks = [name for name in counter_item if name.startswith(layout.MARK_PREFIX)]
    assert len(marks) == shards and len([name for name in stats_item if name.startswith(layout.MARK_PREFIX)]) == shards
    sizes = {"counter": dynamodb_item_size(counter_item), "stats": dynamodb_item_size(stats_item)}
    assert sizes["counter"] <= ONE_WRITE_UNIT and sizes["stats"] <= 2 * ONE_WRITE_UNIT, sizes


@pytest.mark.parametrize("first_attempt", ["failed before it was sent", "landed and its answer was lost"])
def test_a_retry_reads_first_and_writes_only_what_is_missing(aggregator, kinesis, ddb, first_attempt):
    """A retried batch once paid a failed conditional write (a charged write) for every item it had
    already applied; a read costs a fifth of that."""
    sequences = [put(kinesis, [line(f"link{n:03d}") for n in range(10)]), put(kinesis, [line("last999")])]
    event = event_for(kinesis, sequences)
    faults = Faults(aggregator._dynamodb)
    if first_attempt.startswith("landed"):
        faults.lose_responses()
    faults.fail_when = lambda operation, request: operation == "UpdateItem" and request["Key"]["pk"]["S"] == "last999"
    with pytest.raises(Exception):
        aggregator.lambda_handler(event, None)
    faults.clear()
    calls = count_calls(aggregator._dynamodb)
    aggregator.lambda_handler(event, None)  # the mapping's retry, in the same warm container
    missing = 1 if first_attempt.startswith("failed") else 0  # last999's counter (its stats item was written)
    assert calls["conditional_failures"] == 0
    # ... and the day's rollup, which the first attempt never reached (it comes after every stats item).
    assert sorted(calls["all"]) == ["BatchGetItem"] * 2 + ["UpdateItem"] * (missing + 1)
    assert [counter(ddb, f"link{n:03d}")["clicks"] for n in range(10)] == [1] * 10
    assert (counter(ddb, "last999")["clicks"], stats(ddb, "last999")["clicks"]) == (1, 1)


# ------------------------------------------------------------------ 5. the steady state reads the stream on every batch


def test_in_steady_state_no_batch_reads_the_stream(aggregator, ddb, monkeypatch):
    # The kinesis fixture's stream; no batch is expected to fail.
    pipeline = Pipeline(aggregator, shards=None, batch_size=1, max_retries=0)
    calls = count_calls(aggregator._kinesis)
    for n in range(20):
        pipeline.send([line(f"link{n % 3}")])
    assert len(pipeline.results) == 20
    # At the head of the stream each batch asks which life the stream is in (its records arrived
    # after the last answer), and reads nothing else: no GetShardIterator, no GetRecords.
    assert calls["all"] == ["DescribeStreamSummary"] * 20
    # A backlog: records that arrived before the answer need no new one.
    for n in range(10):
        pipeline.put([line(f"link{n % 3}")])
    assert pipeline.mapping.drain()
    assert calls["all"] == ["DescribeStreamSummary"] * 21
    assert sum(counter(ddb, f"link{n}")["clicks"] for n in range(3)) == 30


# ------------------------------------------------------------------ 7. the failure queue misleads


@pytest.fixture
def discarded(aggregator, kinesis, monkeypatch):
    """A range of two records on the stream (never delivered), its on-failure record as the mapping
    sends it, and the function's name for the metric; the account's read pauses are not slept."""
    monkeypatch.setattr(stream, "READ_PAUSE_SECONDS", 0)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "links-aggregator")
    sequences = [put(kinesis, [line("abc1234")] * 3), put(kinesis, [line("bbb2222")])]
    later = put(kinesis, [line("ccc3333")])
    records = [(s, record_data(kinesis, s), time.time()) for s in sequences]
    return failure_record(records, arn_of(kinesis), SHARD, attempts=11), sequences, later


def emitted_metrics(capsys):
    return [json.loads(out) for out in capsys.readouterr().out.splitlines() if out.startswith('{"_aws"')]


def test_a_trimmed_range_is_reported_lost_with_a_metric(aggregator, discarded, ddb, capsys):
    failure, sequences, _ = discarded
    trim(STREAM, sequences[-1])  # past the stream's retention
    capsys.readouterr()
    result = aggregator.lambda_handler({"failed": failure}, None)
    assert (result.get("lost"), result.get("skipped"), result.get("records")) == (2, 0, 2)
    [metric] = emitted_metrics(capsys)
    assert (metric["RecordsLost"], metric["RecordsSkipped"], metric["FunctionName"]) == (2, 0, "links-aggregator")
    [directive] = metric["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Shortener" and directive["Dimensions"] == [["FunctionName"]]
    assert {m["Name"] for m in directive["Metrics"]} == {"RecordsLost", "RecordsSkipped"}
    assert ddb.scan(TableName=TABLE_NAME)["Count"] == 0


def test_a_range_still_on_the_stream_is_reported_skipped_and_applied_by_nobody(aggregator, discarded, ddb, capsys):
    failure, _, _ = discarded
    capsys.readouterr()
    result = aggregator.lambda_handler({"failed": failure}, None)
    assert (result.get("lost"), result.get("skipped")) == (0, 2)
    [metric] = emitted_metrics(capsys)
    assert (metric["RecordsLost"], metric["RecordsSkipped"]) == (0, 2)
    assert ddb.scan(TableName=TABLE_NAME)["Count"] == 0  # no click applied, no claim taken


@pytest.mark.parametrize("stream_now", ["created again", "deleted"])
def test_a_range_of_another_stream_life_is_reported_lost(aggregator, discarded, kinesis, ddb, stream_now):
    failure, _, _ = discarded
    kinesis.delete_stream(StreamName=STREAM)
    if stream_now == "created again":
        kinesis.create_stream(StreamName=STREAM, ShardCount=1)
        issued = {put(kinesis, [line("ddd4444")]) for _ in range(5)}
        # moto numbers every stream from 1, so the new life issued the old range's numbers too; on
        # AWS they carry their stream, and the new life refuses them.
        old_range = {failure["KinesisBatchInfo"]["startSequenceNumber"], failure["KinesisBatchInfo"]["endSequenceNumber"]}
        refuse_other_lives(aggregator._kinesis, issued - old_range)
    result = aggregator.lambda_handler({"failed": failure}, None)
    assert (result.get("lost"), result.get("skipped")) == (2, 0)


@pytest.mark.parametrize(
    "failure",
    [
        {}, [], "text", {"KinesisBatchInfo": "x"}, {"KinesisBatchInfo": {}},
        {"requestPayload": {"awslogs": {}}},  # a failure record of another kind of event source
        {"KinesisBatchInfo": {"shardId": "shardId-000000000000"}},
        {"KinesisBatchInfo": {"shardId": "../etc", "streamArn": "a", "startSequenceNumber": "1", "endSequenceNumber": "2",
                              "batchSize": 2}},
        {"KinesisBatchInfo": {"shardId": "shardId-000000000000", "streamArn": "a", "startSequenceNumber": "1; drop",
                              "endSequenceNumber": "2", "batchSize": 2}},
        {"KinesisBatchInfo": {"shardId": "shardId-000000000000", "streamArn": "a", "startSequenceNumber": "1",
                              "endSequenceNumber": "2", "batchSize": "two"}},
    ],
)
def test_a_malformed_failure_record_raises_value_error(aggregator, failure):
    with pytest.raises(ValueError):
        aggregator.lambda_handler({"failed": failure}, None)


class _InProcessLambda:
    """A Lambda client that runs the aggregator here and answers as Lambda does: an uncaught error is
    a FunctionError with its message in the payload."""

    def __init__(self, handler):
        self.handler = handler

    def invoke(self, FunctionName, InvocationType, Payload):  # noqa: N803 - botocore's parameter names
        try:
            body, error = json.dumps(self.handler(json.loads(Payload), None)).encode(), None
        except Exception as exc:  # noqa: BLE001 - Lambda reports any error of the function
            body, error = json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}).encode(), "Unhandled"
        response = {"StatusCode": 200, "Payload": io.BytesIO(body)}
        if error:
            response["FunctionError"] = error
        return response


def test_replay_leaves_a_message_the_aggregator_refuses_in_the_queue(aggregator, discarded, monkeypatch):
    from deploy import replay_dlq

    monkeypatch.setattr(replay_dlq, "VISIBILITY_TIMEOUT_SECONDS", 0)  # what is left can be looked at at once
    failure, _, _ = discarded
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="links-clicks-dlq")["QueueUrl"]
    refused = {"KinesisBatchInfo": {"shardId": SHARD, "streamArn": failure["KinesisBatchInfo"]["streamArn"]}}
    for body in (refused, failure):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    deployed = replay_dlq.invoke_function("links-aggregator", _InProcessLambda(aggregator.lambda_handler))
    outcome = replay_dlq.replay(url, deployed, sqs=sqs, wait_seconds=0)
    left = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    assert [json.loads(m["Body"]) for m in left] == [refused]
    assert (outcome.accounted, outcome.skipped, outcome.failed, outcome.ok) == (1, 2, 1, False)


def test_the_replay_client_waits_longer_than_the_aggregator_may_run_and_never_retries(monkeypatch):
    """botocore's default read timeout (60 s) is shorter than the aggregator's 120 s, and botocore retries
    a timed-out call: two accounts of one range would then run at once."""
    from deploy import replay_dlq
    from local_stack.template import load_template

    made = []
    monkeypatch.setattr(replay_dlq.boto3, "client", lambda service, **kwargs: made.append((service, kwargs)) or object())
    replay_dlq.invoke_function("links-aggregator")
    [(service, kwargs)] = made
    config = kwargs.get("config")
    timeout = load_template()["Resources"]["AggregatorFunction"]["Properties"]["Timeout"]
    assert service == "lambda" and config is not None
    assert config.read_timeout > timeout
    assert config.retries == {"total_max_attempts": 1}
    assert replay_dlq.VISIBILITY_TIMEOUT_SECONDS > config.read_timeout  # no other reader takes the message meanwhile


# ------------------------------------------------------------------ hostile input on the claim path


def _data_message(events, log_group="/aws/lambda/redirect", log_stream="2026/11/27/[$LATEST]abc"):
    return gzip.compress(json.dumps({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": log_group,
                                     "logStream": log_stream, "logEvents": events}).encode())


CLICK = line("abc1234")
HOSTILE_PAYLOADS = {
    "events-not-dicts": [1, "text", None, [CLICK], {"message": CLICK, "id": "1", "timestamp": NOON}],
    "huge-ids": [{"id": "9" * 200_000, "timestamp": NOON, "message": CLICK}, {"id": "x" * 100_000, "message": CLICK}],
    "absurd-ids": [{"id": {"nested": [1, 2, {"deep": "x" * 1000}]}, "timestamp": NOON, "message": CLICK},
                   {"id": 10**300, "timestamp": 10**400, "message": CLICK}, {"id": -1.5e308, "message": CLICK},
                   {"id": "\ud800\udfff\x00", "message": CLICK}],
    "many-events": [{"id": str(n), "timestamp": NOON, "message": CLICK} for n in range(20_000)],
    "huge-lines": [{"id": "1", "timestamp": NOON, "message": CLICK + " " * 200_000}, {"id": "2", "message": "x" * 300_000}],
}


@pytest.mark.parametrize("events", HOSTILE_PAYLOADS.values(), ids=HOSTILE_PAYLOADS.keys())
@pytest.mark.parametrize("envelope", ["plain", "huge-log-group"])
def test_hostile_log_events_never_raise_and_claim_keys_stay_within_dynamodbs_limits(aggregator, kinesis, ddb, events,
                                                                                   envelope):
    group = "/aws/lambda/redirect" if envelope == "plain" else "g" * 500_000
    data = _data_message(events, log_group=group)
    calls = count_calls(aggregator._dynamodb)
    event = batch_event(arn_of(kinesis), SHARD, [(sequence_number(0, 1), data), (sequence_number(0, 2), data)])
    result = aggregator.lambda_handler(event, None)
    # The same data twice: the second record is a copy, and the valid clicks count once.
    valid = clicks.parse_record(layout.encode_sequence("1"), data)
    assert counter(ddb, "abc1234").get("clicks", 0) == result["clicks"] == len(valid)
    assert result.get("duplicate_records") == (1 if valid else 0)
    for claim in claim_items(ddb):
        assert len(claim["pk"]["S"].encode()) <= 2048 and len(claim["sk"]["S"].encode()) <= 1024  # DynamoDB's key limits
        assert dynamodb_item_size(claim) <= ONE_WRITE_UNIT
    assert calls["all"].count("PutItem") <= 1


def test_a_retry_that_reads_a_claim_owned_by_another_record_still_drops_the_copy(aggregator, kinesis, ddb):
    """The retry path reads claims instead of writing them: a claim it finds owned by another record
    (the original, in another shard) must still make the copy a duplicate."""
    arn = arn_of(kinesis)
    original = encode_payload([line("abc1234")], timestamp_ms=NOON)
    aggregator.lambda_handler(batch_event(arn, "shardId-000000000000", [(sequence_number(0, 1), original)]), None)
    other = encode_payload([line("ccc3333")], timestamp_ms=NOON)
    event = batch_event(arn, "shardId-000000000001", [(sequence_number(1, 1), original), (sequence_number(1, 2), other)])
    faults = fail_updates(aggregator._dynamodb, lambda params: "ccc3333" in params["Key"]["pk"]["S"])
    with pytest.raises(ClientError):
        aggregator.lambda_handler(event, None)
    faults.clear()
    result = aggregator.lambda_handler(event, None)  # the same warm container: it reads first
    assert result["retry"] is True and result["duplicate_records"] == 1
    assert counter(ddb, "abc1234")["clicks"] == 1 and counter(ddb, "ccc3333")["clicks"] == 1
