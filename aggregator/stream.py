"""What the aggregator asks the click stream: which life a stream is in, and what a discarded range still holds.

The batch path never reads the stream's records: the event source mapping retries a failing
batch until it succeeds (MaximumRetryAttempts and MaximumRecordAgeInSeconds are -1), so there
is no gap to read back. Only a range the mapping discarded (the stream trimmed it, or an
operator set finite retries) is looked up here, to say how much of it is gone.
"""
import time

from botocore.exceptions import ClientError

from aggregator import layout

# GetRecords: 5 calls a second per shard, shared with the event source mapping's polling.
READ_PAUSE_SECONDS = 0.25
RECORDS_PER_CALL = 1000
# A discarded range holds at most one batch: 10,000 records (the mapping's BatchSize limit).
MAX_CALLS = 20

_lives = {}  # stream ARN -> (life, creation time, wall time it was checked), times in epoch seconds


def stream_name(stream_arn):
    """The stream's name from its ARN (arn:aws:kinesis:<region>:<account>:stream/<name>)."""
    return stream_arn.rpartition("/")[2]


def life_of(client, stream_arn, newest_arrival=None):
    """The stream's current life (layout.stream_life) and its creation time (epoch seconds).

    The remembered answer holds for records that arrived before it was asked: a stream deleted and
    created again under the same name (and ARN) starts a new life after that. For newer records
    (newest_arrival, epoch seconds) it is asked again: one call a batch at the head of the stream
    (DescribeStreamSummary allows 20 a second per account), none while a backlog drains.
    """
    known = _lives.get(stream_arn)
    if known and newest_arrival is not None and newest_arrival <= known[2]:
        return known[0], known[1]
    summary = client.describe_stream_summary(StreamName=stream_name(stream_arn))["StreamDescriptionSummary"]
    created = summary["StreamCreationTimestamp"].timestamp()
    life = layout.stream_life(stream_arn, f"{created:.3f}")
    _lives[stream_arn] = (life, created, time.time())
    return life, created


def created_at(client, stream_arn):
    """The stream's current creation time (epoch seconds), asked now; None when there is no such stream."""
    _lives.pop(stream_arn, None)
    try:
        return life_of(client, stream_arn)[1]
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise


def records_still_held(client, stream_arn, shard_id, first, last):
    """How many records with sequence numbers first..last (decimal strings) the shard still holds.

    0 when the stream no longer has them: trimmed after its retention, or the stream was
    deleted, or created again (Kinesis refuses a sequence number of another life).
    """
    try:
        iterator = client.get_shard_iterator(
            StreamName=stream_name(stream_arn), ShardId=shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=first,
        )["ShardIterator"]
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("InvalidArgumentException", "ResourceNotFoundException"):
            return 0
        raise
    held, last_value = 0, int(last)
    for call in range(MAX_CALLS):
        if call:
            time.sleep(READ_PAUSE_SECONDS)
        response = client.get_records(ShardIterator=iterator, Limit=RECORDS_PER_CALL)
        for record in response["Records"]:
            if int(record["SequenceNumber"]) > last_value:
                return held
            if int(record["SequenceNumber"]) >= int(first):
                held += 1
        iterator = response.get("NextShardIterator")
        if not iterator or (not response["Records"] and not response.get("MillisBehindLatest")):
            return held
    return held
