"""The aggregator's half of the table layout: the keys and formats of the items it writes.

The admin's store reads the same items (webapp/store), and tests/test_layout_contract.py
pins the two sides together.
"""
import hashlib
import re

# Per-region click counters of a link: pk "<short_id>", sk "clicks#<region>". One writer per
# region, summed on read, so a global table never merges two regions' increments.
COUNTER_SK_PREFIX = "clicks#"
# A link's per-day stats: pk "stats#<short_id>", sk "day#<YYYY-MM-DD>#<region>".
STATS_PK_PREFIX = "stats#"
DAY_SK_PREFIX = "day#"
# Counter attributes of a stats or rollup item, one per referrer host, country, device, browser and OS.
REFERRER_PREFIX, COUNTRY_PREFIX, DEVICE_PREFIX, BROWSER_PREFIX, OS_PREFIX = "ref#", "cc#", "dev#", "br#", "os#"
# String sets naming the keys of each of those an item holds, so their number is bounded.
REFERRER_SET, COUNTRY_SET, DEVICE_SET, BROWSER_SET, OS_SET = "refs", "ccs", "devs", "brs", "oss"
OTHER = "(other)"
# Clicks by people ("h#HH") and by bots ("hb#HH") in each UTC hour of the day.
HOUR_PREFIX, BOT_HOUR_PREFIX = "h#", "hb#"
# The day's visitors. The counted item holds "uv": at most uniques.sketch.EXACT_MAX 8-byte hashes
# (a binary set), ADDed without a read. Past that they are folded into the sketch item next to it
# (sort key + SKETCH_SK_SUFFIX): the registers "uvh" (uniques.sketch.encode) and a version "uvv"
# that every sketch write moves on, so that writers of other shards can condition a
# read-modify-write on it. The sketch stays out of the counted item because DynamoDB charges a
# write by the whole item's size: a click would pay for kilobytes of registers. Counted items
# written before that change may still hold "uvh" and "uvv" themselves (folded out on their next fold).
VISITOR_SET, VISITOR_SKETCH, VISITOR_VERSION = "uv", "uvh", "uvv"
SKETCH_SK_SUFFIX = "#uvh"
# The table's TTL attribute (cloudformation.yaml TimeToLiveSpecification): epoch seconds.
PURGE_AT = "purge_at"
# A day's rollup across links: pk "rollup#<YYYY-MM-DD>", sk "<region>#<mark attribute>", one item
# per region and stream shard, so each has a single writer. "lnk#<id>": a link's clicks by people
# that day in the region, as the stats item's update returned them; "lnks" names the ids kept.
ROLLUP_PK_PREFIX = "rollup#"
LINK_PREFIX, LINK_SET = "lnk#", "lnks"
# The admin's setting of how many days stats items are kept (webapp/store/settings.py's item).
RETENTION_SETTING_KEY = {"pk": {"S": "setting#stats_retention_days"}, "sk": {"S": "setting"}}
# Per-shard high-water mark, "m#<stream life><shard number>" (the life 7 characters, the number
# in base 62): the last sequence number of that shard applied to the item. A stream's life (its ARN and creation time) is in the name,
# so a stream deleted and created again under the same name never meets its old marks.
MARK_PREFIX = "m#"
# A stream record's claim: pk "claim#<record identity>", sk "<region>". The first stream
# record with that identity owns it; a producer's retry stored under another sequence number
# finds it taken and is dropped. purge_at (the table's TTL attribute) removes it later.
CLAIM_PK_PREFIX = "claim#"
# Kinesis sequence numbers are decimal strings of up to 129 digits (API pattern 0|([1-9]\d{0,128})),
# more than a DynamoDB number holds. They are stored in base 94 (the printable ASCII characters,
# in their order), after one character that gives the length, so that string order is number
# order: 56 digits take 30 characters. Every byte counts: an item holds one mark per shard.
SEQUENCE_DIGITS_MAX = 129
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # in ASCII order
_BASE94 = "".join(chr(code) for code in range(ord("!"), ord("~") + 1))  # in ASCII order
_LENGTH_BASE = ord("!")  # lengths 1..66 map to "\"".."c": printable, and ordered
LIFE_LENGTH = 7
_SHARD_ID = re.compile(r"shardId-(\d{1,20})")


def counter_key(short_id, region):
    """The key of a link's click counter item for one region."""
    return {"pk": {"S": short_id}, "sk": {"S": f"{COUNTER_SK_PREFIX}{region}"}}


def stats_key(short_id, day, region):
    """The key of a link's stats item for one UTC day and one region."""
    return {"pk": {"S": f"{STATS_PK_PREFIX}{short_id}"}, "sk": {"S": f"{DAY_SK_PREFIX}{day}#{region}"}}


def rollup_key(day, region, mark):
    """The key of one region's and one stream shard's rollup of a UTC day."""
    return {"pk": {"S": f"{ROLLUP_PK_PREFIX}{day}"}, "sk": {"S": f"{region}#{mark}"}}


def sketch_key(counted_key):
    """The key of the visitors sketch item of a stats or rollup item (given by its key): same partition,
    its sort key + SKETCH_SK_SUFFIX, so that it sorts inside the day's Query range of the link page."""
    return {"pk": counted_key["pk"], "sk": {"S": counted_key["sk"]["S"] + SKETCH_SK_SUFFIX}}


def claim_key(identity, region):
    """The key of a stream record's claim."""
    return {"pk": {"S": f"{CLAIM_PK_PREFIX}{identity}"}, "sk": {"S": region}}


def stream_life(stream_arn, created):
    """A short name for one life of a stream: its ARN and its creation time (a string)."""
    # 40 bits: two lives of one stream share a name once in about a trillion re-creations.
    digest = int.from_bytes(hashlib.sha256(f"{stream_arn}@{created}".encode()).digest()[:5], "big")
    return _in_base(digest, _BASE62).rjust(LIFE_LENGTH, "0")


def mark_name(life, shard_id):
    """The attribute holding one shard's high-water mark, for a shard of one stream life."""
    return f"{MARK_PREFIX}{life}{_in_base(shard_number(shard_id), _BASE62)}"


def shard_number(shard_id):
    """The number in a shard id ("shardId-000000000003" -> 3)."""
    match = _SHARD_ID.fullmatch(shard_id)
    if not match:
        raise ValueError(f"not a shard id: {shard_id[:40]!r}")
    return int(match.group(1))


def encode_sequence(sequence_number):
    """A sequence number as a short string that compares like the number."""
    # isascii: str.isdigit() also accepts digits of other scripts, which Kinesis never sends.
    if (
        not (sequence_number.isascii() and sequence_number.isdigit())
        or len(sequence_number) > SEQUENCE_DIGITS_MAX
        or (len(sequence_number) > 1 and sequence_number[0] == "0")
    ):
        raise ValueError(f"not a stream sequence number: {sequence_number[:40]!r}")
    digits = _in_base(int(sequence_number), _BASE94)
    return chr(_LENGTH_BASE + len(digits)) + digits


def decode_sequence(encoded):
    """The sequence number (decimal string) that encode_sequence gave `encoded` for."""
    value = 0
    for char in encoded[1:]:
        value = value * 94 + _BASE94.index(char)
    return str(value)


def _in_base(value, alphabet):
    digits = ""
    while True:
        value, remainder = divmod(value, len(alphabet))
        digits = alphabet[remainder] + digits
        if not value:
            return digits
