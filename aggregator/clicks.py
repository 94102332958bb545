"""From stream records to validated clicks, grouped by the item each one adds to. Pure, no I/O.

Every value in a click line came from a visitor's request, so each is validated and bounded
here again, whatever the redirect did: a line that fails is dropped, a field that fails is
left out, and no value can make an item too large to update.
"""
import hashlib
import json
import re
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field

from aggregator import layout
from aggregator.bots import BOT, agent, cheap_agent, remembered
from uniques import sketch

_VALID_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A DNS name (punycode for international names), at most 253 characters in all.
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_VALID_HOST = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*")
HOST_MAX = 253
# Real referrers' hosts are far shorter (an AMP cache's, among the longest, is about 40).
REFERRER_KEY_MAX = 64
_VALID_COUNTRY = re.compile(r"[A-Z]{2}")
USER_AGENT_MAX = 256
# One record of CloudWatch Logs holds at most 10,000 log events; more is not a delivery of ours.
MAX_EVENTS_PER_RECORD = 10_000
# A Kinesis record holds at most 1 MB; CloudWatch Logs' JSON compresses well, so allow some room.
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024


class AgentBudget:
    """The time one invocation may spend classifying user agents in full, and what got the cheap classification.

    A full classification (bots.agent) of an agent the container has not seen costs ~1 ms for a real
    agent, but a visitor can forge agents that cost ~11 ms of CPU each at 256 characters (14-27 ms on
    a busy shared core), and one stream record (10,000 lines, never split: its claim covers it whole)
    of distinct forged agents would then outlast the function's timeout, failing the batch, which the
    mapping retries for ever: the shard would stall. So full classifications of agents not yet
    remembered take at most `limit` seconds of the invocation, and only while more than `floor`
    seconds are left (the writes need them); past that an agent gets bots.cheap_agent (~0.1 ms: two
    regular expressions of literals). Agents already remembered cost nothing and are always answered
    in full, so real traffic (a few thousand agents, most of them remembered) is classified as before.
    Classification only chooses which counters a click adds to: every click is still counted exactly once.
    """

    def __init__(self, seconds_left, limit, floor):
        self._seconds_left = seconds_left  # the invocation's clock: seconds until it times out
        self._limit, self._floor = limit, floor
        self.spent = 0.0  # seconds spent on full classifications
        self.unclassified = 0  # clicks whose agent got the cheap classification

    def agent(self, user_agent):
        """The Agent of a user agent: remembered, classified in full while the budget lasts, else cheaply."""
        found = remembered(user_agent)
        if found is not None:
            return found
        before = self._seconds_left()
        if self.spent < self._limit and before > self._floor:
            found = agent(user_agent)
            self.spent += before - self._seconds_left()
            return found
        self.unclassified += 1
        return cheap_agent(user_agent)


@dataclass
class Click:
    """One validated click and the stream position it came from."""

    sequence: str  # its stream record's sequence number, as layout.encode_sequence gives it
    short_id: str
    day: str  # YYYY-MM-DD, UTC
    at: str  # YYYY-MM-DDTHH:MM:SSZ, UTC
    device: str  # bots.BOT, or ua-parser's device family (bounded, like browser and os)
    referrer: str | None
    country: str | None
    visitor: bytes | None = None  # the 8-byte visitor hash of the day ("v"), when the redirect had a salt
    hour: str | None = None  # HH of `at` (taken from it when not given)
    browser: str = "Other"
    os: str = "Other"

    def __post_init__(self):
        if self.hour is None:
            self.hour = self.at[11:13]


@dataclass
class Totals:
    """What a run of clicks adds to one item, and the stream positions they span."""

    first: str
    last: str
    clicks: int = 0
    bots: int = 0
    last_clicked_at: str | None = None
    referrers: Counter = field(default_factory=Counter)
    countries: Counter = field(default_factory=Counter)
    devices: Counter = field(default_factory=Counter)
    browsers: Counter = field(default_factory=Counter)
    oses: Counter = field(default_factory=Counter)
    hours: Counter = field(default_factory=Counter)  # "HH" -> clicks by people
    bot_hours: Counter = field(default_factory=Counter)  # "HH" -> bot clicks
    visitors: set = field(default_factory=set)  # visitor hashes of people's clicks


def decode_record(data):
    """The CloudWatch Logs payload in one stream record's data (gzip of JSON), or None."""
    try:
        # CloudWatch Logs gzips every payload; a bounded decompress keeps a gzip bomb out.
        payload = json.loads(zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, MAX_PAYLOAD_BYTES))
    except (ValueError, RecursionError, zlib.error):  # RecursionError: absurdly nested JSON
        return None
    return payload if isinstance(payload, dict) else None


@dataclass
class StreamRecord:
    """One stream record: its position, the identity of its payload, and its valid clicks."""

    sequence: str  # as layout.encode_sequence gives it
    identity: str | None  # None when the record holds no click
    clicks: list


def read_record(sequence, data, budget=None):
    """A stream record (encoded sequence number, raw data) as a StreamRecord; others hold no click.

    Agents are classified within `budget` (an AgentBudget), or all in full without one."""
    payload = decode_record(data)
    if not payload or payload.get("messageType") != "DATA_MESSAGE" or not isinstance(payload.get("logEvents"), list):
        return StreamRecord(sequence, None, [])
    events = payload["logEvents"][:MAX_EVENTS_PER_RECORD]
    clicks = [click for click in (parse_line(sequence, event, budget) for event in events) if click is not None]
    return StreamRecord(sequence, record_identity(payload, events) if clicks else None, clicks)


def record_identity(payload, events):
    """What a producer's retry repeats exactly: the log group, the log stream and the log events
    (their ids, times and lines), hashed. CloudWatch Logs ids are unique in a log group, so two
    records share an identity only when one is a copy of the other."""
    content = json.dumps([payload.get("logGroup"), payload.get("logStream"), events], sort_keys=True, default=str)
    return hashlib.blake2b(content.encode(), digest_size=16).hexdigest()


def parse_record(sequence, data):
    """The clicks in one stream record (its encoded sequence number and raw data)."""
    return read_record(sequence, data).clicks


def parse_line(sequence, event, budget=None):
    """One log event as a Click, or None when it is not a valid click line of ours."""
    if not isinstance(event, dict) or not isinstance(event.get("message"), str):
        return None
    try:
        record = json.loads(event["message"])
    except (ValueError, RecursionError):
        return None  # Lambda's own lines, absurdly nested JSON, and anything else that isn't ours
    if not isinstance(record, dict) or record.get("type") != "click":
        return None
    short_id = record.get("id")
    if not isinstance(short_id, str) or not _VALID_ID.fullmatch(short_id):
        return None
    at = _timestamp(event.get("timestamp"))
    user_agent = record.get("ua") if isinstance(record.get("ua"), str) else ""
    user_agent = user_agent[:USER_AGENT_MAX]
    device, browser, system = budget.agent(user_agent) if budget is not None else agent(user_agent)
    return Click(
        sequence=sequence,
        short_id=short_id,
        day=at[:10],
        at=at,
        device=device,
        referrer=referrer_key(record.get("ref")),
        country=valid_country(record.get("cc")),
        visitor=sketch.visitor_hash(record.get("v")),
        hour=at[11:13],
        browser=browser,
        os=system,
    )


def referrer_key(value):
    """The referrer's host as a counter's key: a valid host of at most REFERRER_KEY_MAX characters, or
    "(other)" for a longer one. Every key is paid for (in the item and its set) on every later write of a
    stats item and its rollup, so forged long hosts must not be able to make those writes large."""
    host = valid_host(value)
    if host is not None and len(host) > REFERRER_KEY_MAX:
        return layout.OTHER
    return host


def valid_host(value):
    """A lower-case DNS host name of at most 253 characters, or None."""
    if not isinstance(value, str) or not value or len(value) > HOST_MAX:
        return None
    host = value.lower().rstrip(".")
    return host if _VALID_HOST.fullmatch(host) else None


def valid_country(value):
    """A two-letter upper-case country code, or None."""
    return value if isinstance(value, str) and _VALID_COUNTRY.fullmatch(value) else None


def _timestamp(millis):
    """The log event's time (when the redirect answered), or now when it is missing or absurd."""
    # Compared as an int before dividing: a huge one (10**400) overflows a float and would raise.
    if isinstance(millis, int) and not isinstance(millis, bool) and 0 < millis < 32503680000 * 1000:  # before year 3000
        seconds = millis / 1000
    else:
        seconds = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def group(clicks):
    """The clicks per item they add to, in stream order: one counter item per link, one stats item per link-day.

    Keys are ("counter", short_id) and ("stats", short_id, day).
    """
    groups = {}
    for click in clicks:
        groups.setdefault(("counter", click.short_id), []).append(click)
        groups.setdefault(("stats", click.short_id, click.day), []).append(click)
    return groups


def totals_of(clicks):
    """What a run of clicks (in stream order) adds to one item."""
    totals = Totals(first=clicks[0].sequence, last=clicks[-1].sequence)
    for click in clicks:
        if click.device == BOT:
            totals.bots += 1
            totals.bot_hours[click.hour] += 1
            continue
        totals.clicks += 1
        totals.last_clicked_at = max(totals.last_clicked_at or click.at, click.at)
        totals.hours[click.hour] += 1
        totals.devices[click.device] += 1
        totals.browsers[click.browser] += 1
        totals.oses[click.os] += 1
        if click.visitor is not None:
            totals.visitors.add(click.visitor)
        if click.referrer:
            totals.referrers[click.referrer] += 1
        if click.country:
            totals.countries[click.country] += 1
    return totals


def item_key(key, region):
    """The DynamoDB key of a grouped item (a rollup's key also names its shard's mark: see rollups.py)."""
    if key[0] == "counter":
        return layout.counter_key(key[1], region)
    if key[0] == "rollup":
        return layout.rollup_key(key[1], region, key[2])
    return layout.stats_key(key[1], key[2], region)
