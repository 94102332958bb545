"""Producer duplicates: each stream record claims its identity before its clicks are applied.

CloudWatch Logs puts records on the stream, and Kinesis documents that a producer's retry can
store one record twice, under two sequence numbers (possibly in another shard, after a
reshard). The marks cannot tell the copy from new clicks: it comes later in the stream. So
each record with clicks writes one claim, keyed by its identity (clicks.record_identity):
`attribute_not_exists(pk) OR owner = :me`. The record that wrote it first owns it, and so do
its own redeliveries and retries; a copy finds it owned by another position and is dropped.
"""
import time

from botocore.exceptions import ClientError

from aggregator import layout

# A copy can be put while CloudWatch Logs still retries (up to 24 hours) and read while the
# stream keeps it (its retention): a claim must outlive both.
PRODUCER_RETRY_SECONDS = 24 * 3600
OWNED, DUPLICATE = "owned", "duplicate"


def owner_of(mark, sequence):
    """Who a record is: its shard's mark name and its own sequence number."""
    return f"{mark}:{sequence}"


def claim(client, table_name, identity, owner, region, retention_seconds, known_owner=None):
    """Claim a record's identity for `owner`: OWNED (its clicks are to be applied) or DUPLICATE.

    known_owner: the claim's owner as a read just found it (a retry reads first: a read costs a
    fifth of a write), or None when unknown.
    """
    if known_owner is not None:
        return OWNED if known_owner == owner else DUPLICATE
    purge_at = int(time.time()) + PRODUCER_RETRY_SECONDS + retention_seconds
    try:
        client.put_item(
            TableName=table_name,
            Item={**layout.claim_key(identity, region), "owner": {"S": owner}, "purge_at": {"N": str(purge_at)}},
            ConditionExpression="attribute_not_exists(pk) OR #o = :me",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":me": {"S": owner}},
        )
        return OWNED
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        return DUPLICATE
