"""Reading a shard of the click stream back, for the records a skipped batch left behind.

Lambda's event source mapping gives up on a batch after its retries and moves on (the batch's
range goes to the on-failure queue). Later batches would then raise the items' high-water
marks past the skipped clicks, and a replay could no longer apply them. So before applying a
batch, the aggregator checks that it starts right after the shard's checkpoint (the last
sequence number of the last batch it completed); anything in between is read back from the
stream here and applied first, in order.
"""
from aggregator.layout import padded

# GetRecords is limited to 5 calls a second per shard, shared with the event source mapping's
# own polling; a gap is read with at most this many calls before the batch is retried.
MAX_CALLS = 50
RECORDS_PER_CALL = 1000


def stream_name(stream_arn):
    """The stream's name from its ARN (arn:aws:kinesis:<region>:<account>:stream/<name>)."""
    return stream_arn.rpartition("/")[2]


def read_after(client, stream, shard_id, after, before=None):
    """The shard's records (padded sequence number, data bytes) after `after` and before `before`,
    and whether that is all of them (False: MAX_CALLS ran out; read on from the last one).

    `after` is an unpadded sequence number, or None for the oldest record kept; `before` a
    padded one, or None to read up to the newest.
    """
    if after is None:
        position = {"ShardIteratorType": "TRIM_HORIZON"}
    else:
        position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
    iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard_id, **position)["ShardIterator"]
    records = []
    # The first call asks for one record: usually it is the batch's own first, and there is no gap.
    limit = 1 if before is not None else RECORDS_PER_CALL
    for _ in range(MAX_CALLS):
        response = client.get_records(ShardIterator=iterator, Limit=limit)
        for record in response["Records"]:
            sequence = padded(record["SequenceNumber"])
            if before is not None and sequence >= before:
                return records, True
            records.append((sequence, record["Data"]))
        iterator = response.get("NextShardIterator")
        if not iterator or (not response["Records"] and not response.get("MillisBehindLatest")):
            return records, True  # caught up with the newest record (or the shard is closed)
        limit = RECORDS_PER_CALL
    return records, False


def unpadded(sequence):
    """A padded sequence number as Kinesis spells it."""
    return sequence.lstrip("0") or "0"
