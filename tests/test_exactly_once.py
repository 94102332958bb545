"""Exactly once around the core (issue 14): producer duplicates, stream lives, compact marks, retries, discarded ranges."""
import time

import pytest

from aggregator import claims, layout, stream
from tests.conftest import REGION, TABLE_NAME
from tests.test_aggregator import (  # noqa: F401 - kinesis and aggregator are fixtures
    aggregator, kinesis,
    NOON, SHARD, STREAM, counter, event_for, fail_updates, item, line, put, stats,
)


def test_a_record_stored_twice_by_a_producer_retry_counts_once(aggregator, kinesis, ddb):
    first = put(kinesis, [line("abc1234"), line("abc1234"), line("bbb2222")])
    data = kinesis.get_records(
        ShardIterator=kinesis.get_shard_iterator(StreamName=STREAM, ShardId=SHARD, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    )["Records"][0]["Data"]
    copy = kinesis.put_record(StreamName=STREAM, Data=data, PartitionKey="clicks")["SequenceNumber"]
    aggregator.lambda_handler(event_for(kinesis, [first]), None)
    result = aggregator.lambda_handler(event_for(kinesis, [copy]), None)
    assert result["duplicate_records"] == 1
    assert counter(ddb, "abc1234")["clicks"] == 2 and counter(ddb, "bbb2222")["clicks"] == 1


def test_a_copy_in_the_same_batch_counts_once(aggregator, kinesis, ddb):
    first = put(kinesis, [line("abc1234")])
    data = kinesis.get_records(
        ShardIterator=kinesis.get_shard_iterator(StreamName=STREAM, ShardId=SHARD, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    )["Records"][0]["Data"]
    copy = kinesis.put_record(StreamName=STREAM, Data=data, PartitionKey="clicks")["SequenceNumber"]
    result = aggregator.lambda_handler(event_for(kinesis, [first, copy]), None)
    assert result["duplicate_records"] == 1 and counter(ddb, "abc1234")["clicks"] == 1


def test_a_redelivered_batch_keeps_its_claims_and_counts_once(aggregator, kinesis, ddb):
    sequences = [put(kinesis, [line("abc1234")]), put(kinesis, [line("bbb2222")])]
    event = event_for(kinesis, sequences)
    aggregator.lambda_handler(event, None)
    assert aggregator.lambda_handler(event, None)["duplicate_records"] == 0
    assert counter(ddb, "abc1234")["clicks"] == 1 and counter(ddb, "bbb2222")["clicks"] == 1


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
