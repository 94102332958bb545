"""The aggregator's half of the table layout: the keys and formats of the items it writes.

The admin's store reads the same items (webapp/store), and tests/test_layout_contract.py
pins the two sides together.
"""
# Per-region click counters of a link: pk "<short_id>", sk "clicks#<region>". One writer per
# region, summed on read, so a global table never merges two regions' increments.
COUNTER_SK_PREFIX = "clicks#"
# A link's per-day stats: pk "stats#<short_id>", sk "day#<YYYY-MM-DD>#<region>".
STATS_PK_PREFIX = "stats#"
DAY_SK_PREFIX = "day#"
# Counter attributes of a stats item, one per referrer host, country and device class.
REFERRER_PREFIX, COUNTRY_PREFIX, DEVICE_PREFIX = "ref#", "cc#", "dev#"
# String sets naming the referrers and countries a stats item holds, so their number is bounded.
REFERRER_SET, COUNTRY_SET = "refs", "ccs"
OTHER = "(other)"
# Per-shard high-water mark, "hwm#<stream name>#<shard id>": the last stream sequence number
# applied to the item. Named by stream too, so a new stream (whose numbers start afresh, as a
# local one's do) never meets an old stream's marks.
MARK_PREFIX = "hwm#"
# The last sequence number of the last fully applied batch of a shard:
# pk "stream#<region>#<stream name>#<shard id>", sk "checkpoint".
CHECKPOINT_PK_PREFIX, CHECKPOINT_SK = "stream#", "checkpoint"
# Kinesis sequence numbers are decimal strings of up to 129 digits (API pattern 0|([1-9]\d{0,128})),
# more than a DynamoDB number holds: they are stored zero-padded to one width, so string order is number order.
SEQUENCE_WIDTH = 129


def shard_name(stream_name, shard_id):
    """How marks and checkpoints name one shard of one stream."""
    return f"{stream_name}#{shard_id}"


def counter_key(short_id, region):
    """The key of a link's click counter item for one region."""
    return {"pk": {"S": short_id}, "sk": {"S": f"{COUNTER_SK_PREFIX}{region}"}}


def stats_key(short_id, day, region):
    """The key of a link's stats item for one UTC day and one region."""
    return {"pk": {"S": f"{STATS_PK_PREFIX}{short_id}"}, "sk": {"S": f"{DAY_SK_PREFIX}{day}#{region}"}}


def checkpoint_key(region, shard):
    """The key of a shard's checkpoint item (shard as named by shard_name)."""
    return {"pk": {"S": f"{CHECKPOINT_PK_PREFIX}{region}#{shard}"}, "sk": {"S": CHECKPOINT_SK}}


def padded(sequence_number):
    """A sequence number as a fixed-width string that compares like the number."""
    # isascii: str.isdigit() also accepts digits of other scripts, which Kinesis never sends.
    if not (sequence_number.isascii() and sequence_number.isdigit()) or len(sequence_number) > SEQUENCE_WIDTH:
        raise ValueError(f"not a stream sequence number: {sequence_number[:40]!r}")
    return sequence_number.zfill(SEQUENCE_WIDTH)
