"""The click aggregator: bots and devices, click validation (clicks.py), update shapes (writes.py), the handler.

Issue 14's failures (producer duplicates, stream lives, compact marks, retries, discarded ranges)
have their own module, tests/test_exactly_once.py."""
import base64
import calendar
import gzip
import json
import random
import time
import tracemalloc
import zlib
from collections import Counter

import boto3
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from botocore.exceptions import ClientError

from aggregator import clicks, layout, writes
from aggregator.clicks import Click, Totals
from local_stack.event_source import kinesis_event
from local_stack.log_subscription import encode_payload
from tests.conftest import REGION, TABLE_NAME
from tests.support.faults import THROTTLED, Faults

HUMAN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
PREVIEW_FETCHERS = [
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",  # Microsoft Teams
    "Twitterbot/1.0",  # X
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.12026; Pro)",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
STREAM = "clicks-test"
SHARD = "shardId-000000000000"
# A mark of some stream life, for the tests of writes.py (the handler names its own: mark_of below).
MARK = layout.mark_name("life0", SHARD)
NOON = calendar.timegm((2026, 11, 27, 12, 0, 0)) * 1000  # 2026-11-27T12:00:00Z in ms
NEXT_DAY = NOON + 86_400_000


# ------------------------------------------------------------------ fixtures and helpers


@pytest.fixture
def kinesis(ddb):
    """A one-shard moto Kinesis stream (inside the same mock as the table)."""
    client = boto3.client("kinesis", region_name=REGION)
    client.create_stream(StreamName=STREAM, ShardCount=1)
    return client


@pytest.fixture
def aggregator(aggregator, kinesis):
    """The fresh aggregator handler (conftest), once the stream it reads exists."""
    return aggregator


def line(short_id, ua=HUMAN, ref="news.example.com", cc="DE", kind="click"):
    """One click line as the redirect prints it."""
    record = {"type": kind, "id": short_id, "ua": ua}
    if ref is not None:
        record["ref"] = ref
    if cc is not None:
        record["cc"] = cc
    return json.dumps(record, separators=(",", ":"))


def put(kinesis, lines, timestamp_ms=NOON):
    """Put one record of log lines on the stream; its sequence number."""
    data = encode_payload(lines, timestamp_ms=timestamp_ms)
    return kinesis.put_record(StreamName=STREAM, Data=data, PartitionKey="clicks")["SequenceNumber"]


def event_for(kinesis, sequences):
    """The event source mapping's event for these records of the stream."""
    iterator = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=SHARD, ShardIteratorType="TRIM_HORIZON")
    records = kinesis.get_records(ShardIterator=iterator["ShardIterator"], Limit=10_000)["Records"]
    wanted = [(r["SequenceNumber"], r["Data"], r["ApproximateArrivalTimestamp"].timestamp())
              for r in records if r["SequenceNumber"] in sequences]
    arn = kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]["StreamARN"]
    return kinesis_event(wanted, arn, SHARD)


def mark_of(kinesis, shard=SHARD, stream=STREAM):
    """The mark attribute the handler writes for a shard of the stream as it is now (its ARN and creation time)."""
    summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    created = summary["StreamCreationTimestamp"].timestamp()
    return layout.mark_name(layout.stream_life(summary["StreamARN"], f"{created:.3f}"), shard)


def deliver(aggregator, kinesis, *batches, timestamp_ms=NOON):
    """Put each list of lines as one record and hand them all to the handler as one batch."""
    sequences = [put(kinesis, lines, timestamp_ms) for lines in batches]
    return aggregator.lambda_handler(event_for(kinesis, sequences), None), sequences


def item(ddb, pk, sk):
    """One item as plain values ({} when missing)."""
    raw = ddb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item", {})
    return {k: (int(v["N"]) if "N" in v else set(v["SS"]) if "SS" in v else {bytes(h) for h in v["BS"]} if "BS" in v
                else bytes(v["B"]) if "B" in v else v["S"]) for k, v in raw.items()}


def counter(ddb, short_id, region=REGION):
    return item(ddb, short_id, f"clicks#{region}")


def stats(ddb, short_id, day="2026-11-27", region=REGION):
    return item(ddb, f"stats#{short_id}", f"day#{day}#{region}")


def fail_updates(client, when, code=THROTTLED):
    """Make the client's UpdateItem fail with `code`, before it is sent, whenever when(request) is true."""
    faults = Faults(client)
    faults.fault = code
    faults.fail_when = lambda operation, request: operation == "UpdateItem" and when(request)
    return faults


def a_click(sequence="1", short_id="abc1234", device="desktop", referrer="news.example.com", country="DE",
            at="2026-11-27T12:00:00Z"):
    return Click(layout.encode_sequence(sequence), short_id, at[:10], at, device, referrer, country)


# ------------------------------------------------------------------ bots and devices


@pytest.mark.parametrize("agent", PREVIEW_FETCHERS)
def test_link_preview_fetchers_count_as_bots(agent):
    from aggregator.bots import classify_device

    assert classify_device(agent) == "bot"


@pytest.mark.parametrize(
    ("agent", "device"),
    [(HUMAN, "Desktop"), (PHONE, "iPhone"), ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)", "iPad"), ("", "bot"),
     ("   ", "bot"), ("Mozilla/5.0 (PlayStation 5 3.21) AppleWebKit/605.1.15 (KHTML, like Gecko)", "PlayStation 5"),
     ("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0", "Desktop"),
     ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
      "Samsung SM-S918B")],
)
def test_devices_are_ua_parsers_families_and_desktop_on_a_desktop_os(agent, device):
    from aggregator.bots import classify_device

    assert classify_device(agent) == device


@pytest.mark.parametrize(
    ("agent", "expected"),
    [(HUMAN, ("Desktop", "Chrome", "Windows")), (PHONE, ("iPhone", "Mobile Safari UI/WKWebView", "iOS")),
     ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15",
      ("Mac", "Safari", "Mac OS X")),
     ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", ("bot", "Other", "Other"))],
)
def test_browsers_and_operating_systems_are_ua_parsers_families(agent, expected):
    from aggregator.bots import agent as parse_agent

    assert tuple(parse_agent(agent)) == expected


def _bounded(key):
    from aggregator.bots import KEY_MAX

    return 0 < len(key) <= KEY_MAX and key.isprintable() and key == key.strip()


# A device family copied from the agent (uap-core's generic Android rule): the visitor chooses it.
FORGED = "Mozilla/5.0 (Linux; Android 10; {} Build/QP1A) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36"


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=80).map(lambda junk: FORGED.format(junk)),
    st.text(min_size=1, max_size=200).map(lambda model: FORGED.format(model)),
))
@example(FORGED.format(" "))  # ua-parser raises ValueError on it: "Unable to find device family"
def test_hostile_user_agents_give_bounded_keys(agent):
    message = json.dumps({"type": "click", "id": "abc1234", "ua": agent})
    click = clicks.parse_line("1", {"timestamp": NOON, "message": message})
    assert click is not None
    for key in (click.device, click.browser, click.os):
        assert _bounded(key), key
        key.encode()  # no lone surrogate: DynamoDB takes UTF-8 only


def test_a_forged_device_family_is_cut_to_64_printable_characters():
    from aggregator.bots import KEY_MAX, agent as parse_agent

    device = parse_agent(FORGED.format("Evil\x01\x7f" + "M" * 300)[: clicks.USER_AGENT_MAX]).device
    assert _bounded(device) and len(device) <= KEY_MAX and "\x01" not in device


def test_an_agent_ua_parser_refuses_keeps_its_browser_and_os():
    from aggregator.bots import agent as parse_agent

    assert tuple(parse_agent(FORGED.format(" "))) == ("Other", "Android", "Android")


# ------------------------------------------------------------------ clicks.py: validation


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("news.example.com", "news.example.com"),
        ("NEWS.Example.COM", "news.example.com"),
        ("news.example.com.", "news.example.com"),  # the root's dot
        ("localhost", "localhost"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),  # punycode
        ("a1-b2.c3", "a1-b2.c3"),
        (".".join(["a" * 63] * 3) + "." + "b" * 61, ".".join(["a" * 63] * 3) + "." + "b" * 61),  # 253 characters
    ],
)
def test_valid_referrer_hosts_are_kept_lower_case(value, expected):
    assert clicks.valid_host(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "a" * 9000,  # the flood of issue 7
        ".".join(["a" * 60] * 150),  # 9,000 characters of valid-looking labels
        ".".join(["a" * 63] * 3) + "." + "b" * 62,  # 254 characters
        "a" * 64 + ".example",  # a label longer than 63
        "<script>alert(1)</script>",
        "<SCRIPT>.example",
        "bücher.example",  # unicode: only punycode is a DNS name
        "例え.jp",
        "ｅｘａｍｐｌｅ.com",  # full-width letters
        "exa mple.com",
        "example.com\n",
        "example.com\x00evil",
        "-leading.example",
        "trailing-.example",
        "a..b",
        ".",
        "under_score.example",
        "user@example.com",
        "example.com:8080",
        "",
        None,
        42,
        ["example.com"],
    ],
)
def test_hostile_referrer_hosts_are_left_out(value):
    assert clicks.valid_host(value) is None


@pytest.mark.parametrize("value", ["DE", "US", "ZZ", "XX"])  # forged but well-formed codes pass the shape check
def test_countries_are_two_upper_case_letters(value):
    assert clicks.valid_country(value) == value


@pytest.mark.parametrize(
    "value",
    ["de", "De", "DEU", "D", "", "<SCRIPT>ALERT(1)</SCRIPT>", "Z" * 9000, "ＤＥ", "ÄB", "D1", "DE\n", " DE", None, 49, ["DE"]],
)
def test_forged_countries_are_left_out(value):
    assert clicks.valid_country(value) is None


@pytest.mark.parametrize("short_id", ["a", "abc1234", "A-b_9", "x" * 64])
def test_valid_ids_make_a_click(short_id):
    click = clicks.parse_line(layout.encode_sequence("7"), {"timestamp": NOON, "message": line(short_id)})
    assert click.short_id == short_id
    assert (click.sequence, click.day, click.at) == (layout.encode_sequence("7"), "2026-11-27", "2026-11-27T12:00:00Z")
    assert (click.device, click.referrer, click.country) == ("Desktop", "news.example.com", "DE")
    assert (click.browser, click.os, click.hour, click.visitor) == ("Chrome", "Windows", "12", None)


@pytest.mark.parametrize(
    "short_id", ["", "x" * 65, "../etc/passwd", "abc 123", "<script>", "ä", "abc\n", "a/b", None, 123, ["abc"], {"a": 1}]
)
def test_bad_ids_make_no_click(short_id):
    message = json.dumps({"type": "click", "id": short_id, "ua": HUMAN})
    assert clicks.parse_line("1", {"timestamp": NOON, "message": message}) is None


@pytest.mark.parametrize(
    "message",
    [
        "START RequestId: 1 Version: $LATEST",
        "REPORT RequestId: 1 Duration: 1.2 ms",
        "not json {",
        "",
        "null",
        '"click"',
        "[1, 2]",
        json.dumps([{"type": "click", "id": "abc1234"}]),
        json.dumps({"type": "request", "id": "abc1234"}),  # a 404, 410 or HEAD
        json.dumps({"type": "CLICK", "id": "abc1234"}),
        json.dumps({"type": "click"}),  # no id
        '{"type": "click", "id": "abc1234"',  # cut off
        b"\xff\xfe".decode("latin-1"),
        # Absurd nesting: json raises RecursionError, not ValueError; one such line must not sink a batch.
        pytest.param('{"type": "click", "id": "abc1234", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", id="absurd-nesting"),
    ],
)
def test_lines_that_are_not_clicks_are_dropped(message):
    assert clicks.parse_line("1", {"timestamp": NOON, "message": message}) is None


@pytest.mark.parametrize("event", [None, "text", [], {"timestamp": NOON}, {"timestamp": NOON, "message": 12}])
def test_log_events_of_the_wrong_shape_are_dropped(event):
    assert clicks.parse_line("1", event) is None


def test_odd_field_types_are_left_out_but_the_click_counts():
    message = json.dumps({"type": "click", "id": "abc1234", "ua": 7, "ref": ["x.example"], "cc": {"DE": 1}})
    click = clicks.parse_line("1", {"timestamp": NOON, "message": message})
    assert (click.short_id, click.device, click.referrer, click.country) == ("abc1234", "bot", None, None)


def test_a_long_user_agent_is_classified_by_its_first_256_characters():
    # The tail would make it a bot; only the bounded head is looked at.
    message = line("abc1234", ua=HUMAN + " " * (clicks.USER_AGENT_MAX - len(HUMAN)) + "Googlebot/2.1")
    assert clicks.parse_line("1", {"timestamp": NOON, "message": message}).device == "Desktop"


@pytest.mark.parametrize("stamp", [None, "1700000000000", -5, 0, 10**15, True, 1.5e12])
def test_a_missing_or_absurd_event_time_counts_as_now(stamp):
    before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    click = clicks.parse_line("1", {"timestamp": stamp, "message": line("abc1234")})
    after = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    assert before <= click.at <= after
    assert click.day == click.at[:10]


# ------------------------------------------------------------------ clicks.py: records


def test_a_record_gives_its_click_lines_in_order():
    data = encode_payload([line("aaa"), "START RequestId: 1", line("bbb", ua="Twitterbot/1.0")], timestamp_ms=NOON)
    parsed = clicks.parse_record(layout.encode_sequence("5"), data)
    assert [(c.short_id, c.device, c.sequence) for c in parsed] == [
        ("aaa", "Desktop", layout.encode_sequence("5")), ("bbb", "bot", layout.encode_sequence("5"))
    ]


def _gzip_json(payload):
    # mtime=0: gzip otherwise stamps the current time into its header, and the bytes would differ run to run.
    return gzip.compress(json.dumps(payload).encode(), mtime=0)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not gzip at all", id="not-gzip"),
        pytest.param(gzip.compress(b"not json", mtime=0), id="gzip-of-not-json"),
        pytest.param(gzip.compress(b"\xff\xfe\xfd", mtime=0), id="gzip-of-not-utf8"),
        pytest.param(_gzip_json(["a", "list"]), id="a-json-list"),
        pytest.param(_gzip_json({"messageType": "CONTROL_MESSAGE", "logEvents": [{"id": "1", "timestamp": 0, "message": "CWL CONTROL MESSAGE"}]}),
                     id="control-message"),
        pytest.param(_gzip_json({"messageType": "CONTROL_MESSAGE", "logEvents": [{"id": "1", "timestamp": NOON, "message": line("abc1234")}]}),
                     id="control-message-with-a-click-line"),
        pytest.param(_gzip_json({"messageType": "DATA_MESSAGE", "logEvents": "not a list"}), id="log-events-not-a-list"),
        pytest.param(_gzip_json({"messageType": "DATA_MESSAGE"}), id="no-log-events"),
        pytest.param(_gzip_json({"messageType": "DATA_MESSAGE", "logEvents": []})[:-10], id="truncated"),
    ],
)
def test_records_that_are_not_click_data_give_no_clicks(data):
    assert clicks.parse_record(layout.encode_sequence("1"), data) == []


def _gzip_bomb(inflated_mb):
    """Gzip of a DATA_MESSAGE padded with `inflated_mb` MB of spaces: small on the wire, huge inflated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(b'{"messageType": "DATA_MESSAGE", "logEvents": [')]
    chunk = b" " * (1024 * 1024)
    parts += [compressor.compress(chunk) for _ in range(inflated_mb)]
    parts.append(compressor.compress(b'{"timestamp": 0, "message": "{\\"type\\":\\"click\\",\\"id\\":\\"abc\\"}"}]}'))
    parts.append(compressor.flush())
    return b"".join(parts)


def test_a_gzip_bomb_is_inflated_only_up_to_the_bound():
    bomb = _gzip_bomb(200)
    assert len(bomb) < 1024 * 1024  # fits one Kinesis record
    tracemalloc.start()
    try:
        started = time.monotonic()
        assert clicks.decode_record(bomb) is None
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * clicks.MAX_PAYLOAD_BYTES  # never the 200 MB it would inflate to
    assert elapsed < 5


def test_a_payload_within_the_bound_is_read():
    assert clicks.parse_record("1", _gzip_bomb(2))[0].short_id == "abc"


def test_a_record_holds_at_most_ten_thousand_events():
    data = encode_payload([line("abc1234")] * (clicks.MAX_EVENTS_PER_RECORD + 5), timestamp_ms=NOON)
    assert len(clicks.parse_record("1", data)) == clicks.MAX_EVENTS_PER_RECORD


# ------------------------------------------------------------------ clicks.py: grouping and totals


def test_clicks_are_grouped_by_counter_and_link_day():
    batch = [a_click("1", "aaa"), a_click("2", "bbb"), a_click("3", "aaa", at="2026-11-28T00:00:01Z")]
    groups = clicks.group(batch)
    assert list(groups) == [
        ("counter", "aaa"), ("stats", "aaa", "2026-11-27"), ("counter", "bbb"), ("stats", "bbb", "2026-11-27"),
        ("stats", "aaa", "2026-11-28"),
    ]
    assert [c.sequence for c in groups[("counter", "aaa")]] == [layout.encode_sequence("1"), layout.encode_sequence("3")]
    assert clicks.item_key(("counter", "aaa"), "eu-west-1") == {"pk": {"S": "aaa"}, "sk": {"S": "clicks#eu-west-1"}}
    assert clicks.item_key(("stats", "aaa", "2026-11-28"), "eu-west-1") == {
        "pk": {"S": "stats#aaa"}, "sk": {"S": "day#2026-11-28#eu-west-1"}
    }


def test_totals_count_bots_apart_and_keep_only_people_in_the_breakdowns():
    batch = [
        a_click("1", at="2026-11-27T12:00:05Z"),
        a_click("2", device="mobile", referrer=None, country="FR", at="2026-11-27T12:00:09Z"),
        a_click("3", device="bot", referrer="crawler.example", country="US", at="2026-11-27T12:00:30Z"),
        a_click("4", at="2026-11-27T12:00:01Z"),
    ]
    totals = clicks.totals_of(batch)
    assert (totals.first, totals.last) == (layout.encode_sequence("1"), layout.encode_sequence("4"))
    assert (totals.clicks, totals.bots, totals.last_clicked_at) == (3, 1, "2026-11-27T12:00:09Z")
    assert totals.referrers == Counter({"news.example.com": 2})
    assert totals.countries == Counter({"DE": 2, "FR": 1})
    assert totals.devices == Counter({"desktop": 2, "mobile": 1})


# ------------------------------------------------------------------ layout: sequence numbers


def test_encoded_sequence_numbers_keep_number_order_in_string_order():
    rng = random.Random(14)
    # Real Kinesis numbers are about 56 digits; moto's are small; any length up to 129 digits may come.
    numbers = [rng.randrange(10 ** rng.randint(1, 129)) for _ in range(2000)]
    numbers += [0, 1, 9, 10, 61, 62, 10**55 - 1, 10**55, 10**129 - 1, 49590338271490256608559692538361571095921575989136588898]
    encoded = {number: layout.encode_sequence(str(number)) for number in numbers}
    assert sorted(numbers, key=encoded.get) == sorted(numbers)
    assert all(layout.decode_sequence(value) == str(number) for number, value in encoded.items())
    # Printable ASCII only: an attribute value that a person can read in the console, and 1 byte a character.
    assert all(value.isascii() and value.isprintable() for value in encoded.values())


def test_a_real_sequence_number_takes_far_fewer_bytes_than_padded_to_129_digits():
    assert len(layout.encode_sequence("49590338271490256608559692538361571095921575989136588898")) <= 34


@pytest.mark.parametrize(
    "value", ["", "-1", "1e5", "12a", "1" * 130, " 1", "007", "1 ", pytest.param("\u0661\u0662", id="arabic-indic-digits")]
)
def test_anything_but_a_sequence_number_is_refused(value):
    with pytest.raises(ValueError):
        layout.encode_sequence(value)


# ------------------------------------------------------------------ writes.build_update


def test_a_first_attempt_applies_only_above_the_mark():
    totals = Totals(first="0001", last="0009", clicks=3, bots=1, last_clicked_at="2026-11-27T12:00:09Z")
    update, _ = writes.build_update("counter", totals, MARK)
    assert update["ConditionExpression"] == "(attribute_not_exists(#m) OR #m < :first)"
    assert update["ExpressionAttributeNames"]["#m"] == MARK
    values = update["ExpressionAttributeValues"]
    assert (values[":first"], values[":last"], values[":at"]) == ({"S": "0001"}, {"S": "0009"}, {"S": "2026-11-27T12:00:09Z"})
    assert update["UpdateExpression"] == "SET #m = :last, last_clicked_at = :at ADD #a0 :a0, #a1 :a1"
    adds = {update["ExpressionAttributeNames"][f"#a{i}"]: values[f":a{i}"]["N"] for i in range(2)}
    assert adds == {"clicks": "3", "bots": "1"}


def test_a_bots_only_update_leaves_last_clicked_at_alone():
    update, _ = writes.build_update("counter", Totals(first="1", last="1", bots=2), MARK)
    assert "last_clicked_at" not in update["UpdateExpression"]


def test_a_rebuilt_update_is_conditional_on_the_mark_seen():
    totals = Totals(first="0005", last="0009", clicks=1)
    update, _ = writes.build_update("counter", totals, MARK, seen={MARK: {"S": "0004"}, "clicks": {"N": "3"}})
    assert update["ConditionExpression"] == "#m = :seen"
    assert update["ExpressionAttributeValues"][":seen"] == {"S": "0004"}
    assert ":first" not in update["ExpressionAttributeValues"]


def test_a_rebuilt_update_of_an_item_without_this_shards_mark_asks_it_stays_so():
    other_shard = layout.mark_name("life0", "shardId-000000000009")
    update, _ = writes.build_update("counter", Totals(first="1", last="2", clicks=1), MARK, seen={other_shard: {"S": "9"}})
    assert update["ConditionExpression"] == "attribute_not_exists(#m)"


def _stats_totals(referrers=(), countries=(), devices=None):
    return Totals(first="1", last="2", clicks=1, referrers=Counter(referrers), countries=Counter(countries),
                  devices=Counter(devices or {"desktop": 1}))


def _added(update):
    """{attribute: amount} of an update's ADD clauses."""
    names, values = update["ExpressionAttributeNames"], update["ExpressionAttributeValues"]
    return {names[f"#a{i}"]: int(values[f":a{i}"]["N"]) for i in range(len(names)) if f"#a{i}" in names}


def test_a_first_stats_attempt_asks_for_room_or_known_keys():
    totals = _stats_totals({"a.example": 2, "b.example": 1}, {"DE": 1})
    update, _ = writes.build_update("stats", totals, MARK)
    condition = update["ConditionExpression"]
    assert condition == (
        "(attribute_not_exists(#m) OR #m < :first)"
        " AND (attribute_not_exists(#rs) OR size(#rs) <= :rroom OR (contains(#rs, :rk0) AND contains(#rs, :rk1)))"
        " AND (attribute_not_exists(#cs) OR size(#cs) <= :croom OR (contains(#cs, :ck0)))"
        " AND (attribute_not_exists(#ds) OR size(#ds) <= :droom OR (contains(#ds, :dk0)))"
    )
    values = update["ExpressionAttributeValues"]
    assert values[":rroom"] == {"N": str(writes.MAX_REFERRERS - 2)}
    assert values[":croom"] == {"N": str(writes.MAX_COUNTRIES - 1)}
    assert (values[":rk0"], values[":rk1"], values[":ck0"]) == ({"S": "a.example"}, {"S": "b.example"}, {"S": "DE"})
    assert values[":rset"] == {"SS": ["a.example", "b.example"]}
    assert (update["ExpressionAttributeNames"]["#rs"], update["ExpressionAttributeNames"]["#cs"]) == ("refs", "ccs")
    assert _added(update) == {"clicks": 1, "bots": 0, "dev#desktop": 1, "ref#a.example": 2, "ref#b.example": 1, "cc#DE": 1}


def test_one_write_adds_at_most_max_keys_per_write_and_folds_the_rest():
    referrers = {f"site{i:02d}.example": 100 - i for i in range(writes.MAX_KEYS_PER_WRITE + 10)}
    update, _ = writes.build_update("stats", _stats_totals(referrers), MARK)
    added = _added(update)
    kept = [k for k in added if k.startswith("ref#") and k != "ref#(other)"]
    assert len(kept) == writes.MAX_KEYS_PER_WRITE
    assert added["ref#(other)"] == sum(referrers.values()) - sum(added[k] for k in kept)
    assert sum(v for k, v in added.items() if k.startswith("ref#")) == sum(referrers.values())
    # The most clicked are the ones kept.
    assert set(kept) == {f"ref#site{i:02d}.example" for i in range(writes.MAX_KEYS_PER_WRITE)}


def test_a_rebuilt_stats_update_adds_only_what_fits_in_the_stored_set():
    stored = [f"old{i}.example" for i in range(writes.MAX_REFERRERS - 1)]
    seen = {MARK: {"S": "0"}, "refs": {"SS": stored}}
    totals = _stats_totals({"old3.example": 4, "new1.example": 3, "new2.example": 2})
    update, _ = writes.build_update("stats", totals, MARK, seen=seen)
    assert update["ConditionExpression"] == "#m = :seen AND size(#rs) = :rsize AND attribute_not_exists(#ds)"
    assert update["ExpressionAttributeValues"][":rsize"] == {"N": str(writes.MAX_REFERRERS - 1)}
    added = _added(update)
    # One slot was free: the known key, the most clicked new key, and the rest in (other).
    assert {k: v for k, v in added.items() if k.startswith("ref#")} == {
        "ref#old3.example": 4, "ref#new1.example": 3, "ref#(other)": 2
    }
    assert update["ExpressionAttributeValues"][":rset"] == {"SS": ["new1.example", "old3.example"]}


def test_a_rebuilt_update_of_a_full_set_folds_every_new_key():
    seen = {MARK: {"S": "0"}, "ccs": {"SS": [f"{a}{b}" for a in "ABCDEFGHIJ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXY"]}}
    assert len(seen["ccs"]["SS"]) == writes.MAX_COUNTRIES
    update, _ = writes.build_update("stats", _stats_totals(countries={"ZZ": 5, "AB": 1}), MARK, seen=seen)
    added = _added(update)
    assert {k: v for k, v in added.items() if k.startswith("cc#")} == {"cc#AB": 1, "cc#(other)": 5}


def test_update_expressions_stay_under_dynamodbs_4_kb_at_their_largest():
    host = ".".join(["a" * 63] * 3) + "." + "b" * 61
    referrers = {f"{i:03d}{host[3:]}": 1 for i in range(200)}
    countries = {f"{a}{b}": 1 for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    devices = {f"{'D' * 60}{i:04d}": 1 for i in range(80)}
    for seen in (None, {MARK: {"S": "0"}, "refs": {"SS": ["x.example"]}, "ccs": {"SS": ["DE"]}}):
        totals = _stats_totals(referrers, countries, devices)
        totals.browsers.update({f"b{i}": 1 for i in range(80)})
        totals.oses.update({f"o{i}": 1 for i in range(80)})
        totals.hours.update({f"{h:02d}": 1 for h in range(24)})
        totals.bot_hours.update({f"{h:02d}": 1 for h in range(24)})
        totals.visitors.update(bytes([i]) * 8 for i in range(200))  # the sketch's read-modify-write
        update, _ = writes.build_update("stats", totals, MARK, seen=seen, purge_at=1)
        assert len(update["UpdateExpression"].encode()) < 4096
        assert len(update["ConditionExpression"].encode()) < 4096


# ------------------------------------------------------------------ writes.apply_item against the table


def test_apply_item_applies_once_and_reports_a_repeat(ddb):
    key = ("counter", "abc1234")
    batch = [a_click("1"), a_click("2", device="bot")]
    assert writes.apply_item(ddb, TABLE_NAME, key, batch, MARK, REGION) == writes.APPLIED
    assert writes.apply_item(ddb, TABLE_NAME, key, batch, MARK, REGION) == writes.ALREADY_APPLIED
    stored = counter(ddb, "abc1234")
    assert (stored["clicks"], stored["bots"], stored[MARK]) == (1, 1, layout.encode_sequence("2"))


def test_apply_item_adds_only_the_clicks_above_a_mark_inside_the_run(ddb):
    key = ("counter", "abc1234")
    writes.apply_item(ddb, TABLE_NAME, key, [a_click("1"), a_click("2")], MARK, REGION)
    # An overlapping run (2 was applied, 3 and 4 were not): only 3 and 4 are added.
    assert writes.apply_item(ddb, TABLE_NAME, key, [a_click("2"), a_click("3"), a_click("4")], MARK, REGION) == writes.APPLIED
    assert counter(ddb, "abc1234")["clicks"] == 4


def test_apply_item_keeps_each_shards_mark_apart(ddb):
    key = ("counter", "abc1234")
    marks = [layout.mark_name("life0", "shardId-000000000001"), layout.mark_name("life0", "shardId-000000000002")]
    for mark in marks:
        writes.apply_item(ddb, TABLE_NAME, key, [a_click("5")], mark, REGION)
    stored = counter(ddb, "abc1234")
    assert stored["clicks"] == 2
    assert {name: stored[name] for name in marks} == dict.fromkeys(marks, layout.encode_sequence("5"))


def test_apply_item_keeps_each_stream_lifes_mark_apart(ddb):
    # A stream created again under the same name numbers its records from low again: its marks are
    # other attributes, so a low sequence number of the new life is not "already applied".
    key = ("counter", "abc1234")
    old, new = layout.mark_name("life0", SHARD), layout.mark_name("life1", SHARD)
    assert writes.apply_item(ddb, TABLE_NAME, key, [a_click("900")], old, REGION) == writes.APPLIED
    assert writes.apply_item(ddb, TABLE_NAME, key, [a_click("3")], new, REGION) == writes.APPLIED
    assert counter(ddb, "abc1234")["clicks"] == 2


def test_a_full_stats_item_folds_new_referrers_into_other(ddb):
    key = ("stats", "abc1234", "2026-11-27")
    first = [a_click(str(i + 1), referrer=f"site{i}.example") for i in range(writes.MAX_REFERRERS)]
    for start in range(0, len(first), 20):  # several batches, so no single write is capped
        writes.apply_item(ddb, TABLE_NAME, key, first[start:start + 20], MARK, REGION)
    later = [a_click("500", referrer="site3.example"), a_click("501", referrer="late.example")]
    assert writes.apply_item(ddb, TABLE_NAME, key, later, MARK, REGION) == writes.APPLIED
    stored = stats(ddb, "abc1234")
    assert len(stored["refs"]) == writes.MAX_REFERRERS
    assert stored["ref#site3.example"] == 2
    assert stored["ref#(other)"] == 1
    assert "ref#late.example" not in stored
    assert stored["clicks"] == writes.MAX_REFERRERS + 2


def _fill_referrers(ddb, key, mark):
    first = [a_click(str(i + 1), referrer=f"site{i}.example") for i in range(writes.MAX_REFERRERS)]
    for start in range(0, len(first), 20):
        writes.apply_item(ddb, TABLE_NAME, key, first[start:start + 20], mark, REGION)


def _update_calls(ddb):
    calls = []
    ddb.meta.events.register("provide-client-params.dynamodb.UpdateItem", lambda params, **_: calls.append(params))
    return calls


def test_a_full_stats_item_is_remembered_so_new_referrers_cost_no_failed_write(ddb):
    mark, key = MARK, ("stats", "abc1234", "2026-11-27")
    _fill_referrers(ddb, key, mark)
    calls = _update_calls(ddb)
    for n in range(3):  # forged referrers, one new host a batch
        batch = [a_click(str(600 + n), referrer=f"forged{n}.example")]
        assert writes.apply_item(ddb, TABLE_NAME, key, batch, mark, REGION) == writes.APPLIED
    # The first new host finds the set full (a failed write that returns the item); from then on the
    # full set is remembered and new hosts go to (other) at once: one write a batch.
    assert len(calls) == 4
    assert "size(#rs) <= :rroom" in calls[0]["ConditionExpression"]
    assert all("size(#rs) = :rsize" in c["ConditionExpression"] for c in calls[1:])
    stored = stats(ddb, "abc1234")
    assert stored["ref#(other)"] == 3 and len(stored["refs"]) == writes.MAX_REFERRERS
    # A redelivery of a batch at or below the remembered mark changes nothing, without a write.
    assert writes.apply_item(ddb, TABLE_NAME, key, [a_click("601", referrer="x.example")], mark, REGION) == writes.ALREADY_APPLIED
    assert len(calls) == 4 and stats(ddb, "abc1234")["clicks"] == stored["clicks"]


def test_a_redelivery_of_the_last_batch_to_a_remembered_full_item_writes_nothing(ddb):
    """The remembered mark is the last click applied: a batch ending on it (the mapping's redelivery of
    the very last batch) is already applied, with no write (a >= in place of > counted it twice)."""
    mark, key = MARK, ("stats", "abc1234", "2026-11-27")
    _fill_referrers(ddb, key, mark)
    last = [a_click("600", referrer="forged0.example"), a_click("601", referrer="forged1.example")]
    assert writes.apply_item(ddb, TABLE_NAME, key, last, mark, REGION) == writes.APPLIED
    assert writes._full_items, "the full item is remembered"
    before, calls = stats(ddb, "abc1234"), _update_calls(ddb)
    assert writes.apply_item(ddb, TABLE_NAME, key, last, mark, REGION) == writes.ALREADY_APPLIED
    assert writes.apply_item(ddb, TABLE_NAME, key, last[-1:], mark, REGION) == writes.ALREADY_APPLIED
    assert calls == [] and stats(ddb, "abc1234") == before


def test_a_remembered_item_that_changed_elsewhere_is_read_back_and_counted_once(ddb):
    mark, key = MARK, ("stats", "abc1234", "2026-11-27")
    _fill_referrers(ddb, key, mark)
    writes.apply_item(ddb, TABLE_NAME, key, [a_click("600", referrer="late.example")], mark, REGION)
    this_container = dict(writes._full_items)
    # Another container applies the shard's next batch; then this one, with its stale memory, the one after.
    writes._full_items.clear()
    writes.apply_item(ddb, TABLE_NAME, key, [a_click("601"), a_click("602")], mark, REGION)
    writes._full_items.clear()
    writes._full_items.update(this_container)
    assert writes.apply_item(ddb, TABLE_NAME, key, [a_click("603", referrer="later.example")], mark, REGION) == writes.APPLIED
    stored = stats(ddb, "abc1234")
    assert stored["clicks"] == writes.MAX_REFERRERS + 4
    # late, the two news.example.com clicks and later: the set was full for each.
    assert stored["ref#(other)"] == 4 and stored[MARK] == layout.encode_sequence("603")


def test_a_refused_update_is_dropped_and_a_retryable_one_raises(ddb):
    fail_updates(ddb, lambda params: params["Key"]["pk"]["S"] == "bad", code="ValidationException")
    fail_updates(ddb, lambda params: params["Key"]["pk"]["S"] == "slow")
    assert writes.apply_item(ddb, TABLE_NAME, ("counter", "bad"), [a_click("1")], MARK, REGION) == writes.DROPPED
    with pytest.raises(ClientError) as raised:
        writes.apply_item(ddb, TABLE_NAME, ("counter", "slow"), [a_click("1")], MARK, REGION)
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"


# ------------------------------------------------------------------ the handler


def test_humans_and_bots_are_counted_apart(aggregator, kinesis, ddb):
    result, _ = deliver(aggregator, kinesis, [line("abc1234"), line("abc1234", ua=PHONE), line("abc1234", ua="Twitterbot/1.0")])
    assert (result["clicks"], result["items"], result["applied"]) == (3, 2, 2)
    link = counter(ddb, "abc1234")
    assert (link["clicks"], link["bots"], link["last_clicked_at"]) == (2, 1, "2026-11-27T12:00:00Z")
    day = stats(ddb, "abc1234")
    assert (day["clicks"], day["bots"], day["dev#Desktop"], day["dev#iPhone"]) == (2, 1, 1, 1)
    assert (day["br#Chrome"], day["os#Windows"], day["os#iOS"], day["h#12"], day["hb#12"]) == (1, 1, 1, 2, 1)
    assert (day["devs"], day["oss"]) == ({"Desktop", "iPhone"}, {"Windows", "iOS"})
    assert (day["ref#news.example.com"], day["cc#DE"], day["refs"], day["ccs"]) == (2, 2, {"news.example.com"}, {"DE"})


def test_one_write_per_item_per_batch_and_one_claim_per_record(aggregator, kinesis, ddb):
    writes_seen = []
    aggregator._dynamodb.meta.events.register(
        "before-parameter-build.dynamodb",
        lambda params, model, **_: writes_seen.append((model.name, params["Key"]["pk"]["S"] if "Key" in params else
                                                       params.get("Item", {}).get("pk", {}).get("S"))),
    )
    lines = [line("aaa1111") for _ in range(5)] + [line("bbb2222", ref="mail.example.org", cc="FR", ua=PHONE)] * 3
    sequences = [put(kinesis, lines), put(kinesis, [line("bbb2222", ref=None, cc=None)], timestamp_ms=NEXT_DAY)]
    result = aggregator.lambda_handler(event_for(kinesis, sequences), None)
    assert result == {"clicks": 9, "items": 5, "rollups": 2, "applied": 5, "already_applied": 0, "dropped": 0,
                      "duplicate_records": 0, "shard": SHARD, "records": 2, "retry": False, "batchItemFailures": [],
                      "agents_unclassified": 0}
    updates = sorted(pk_sk for operation, pk_sk in writes_seen if operation == "UpdateItem")
    # Links + link-days + one rollup per day: never one per click.
    assert updates == sorted(["aaa1111", "stats#aaa1111", "bbb2222", "stats#bbb2222", "stats#bbb2222",
                              "rollup#2026-11-27", "rollup#2026-11-28"])
    claimed = [pk for operation, pk in writes_seen if operation == "PutItem"]
    assert len(claimed) == 2 and all(pk.startswith(layout.CLAIM_PK_PREFIX) for pk in claimed)
    # No other write; one read: the retention setting, cached for minutes.
    assert sorted(operation for operation, _ in writes_seen if operation not in ("PutItem", "UpdateItem")) == ["GetItem"]
    assert counter(ddb, "aaa1111")["clicks"] == 5
    assert counter(ddb, "bbb2222")["clicks"] == 4
    assert counter(ddb, "bbb2222")["last_clicked_at"] == "2026-11-28T12:00:00Z"
    day = stats(ddb, "bbb2222")
    assert (day["clicks"], day["ref#mail.example.org"], day["cc#FR"], day["dev#iPhone"]) == (3, 3, 3, 3)
    assert stats(ddb, "bbb2222", "2026-11-28")["dev#Desktop"] == 1
    # Each item carries this shard's mark, the last sequence number that added to it, encoded.
    mark = mark_of(kinesis)
    assert counter(ddb, "aaa1111")[mark] == layout.encode_sequence(sequences[0])
    assert counter(ddb, "bbb2222")[mark] == layout.encode_sequence(sequences[-1])


def test_a_batch_never_reads_the_stream(aggregator, kinesis, ddb):
    """The mapping retries a failing batch until it succeeds: there is no gap to read back, so a
    batch asks Kinesis only which life the stream is in (for records newer than its last answer)."""
    calls = []
    aggregator._kinesis.meta.events.register("before-call.kinesis", lambda model, **_: calls.append(model.name))
    for _ in range(3):
        deliver(aggregator, kinesis, [line("abc1234")])
    fail_updates(aggregator._dynamodb, lambda params: True)
    with pytest.raises(ClientError):
        deliver(aggregator, kinesis, [line("abc1234")])
    assert set(calls) == {"DescribeStreamSummary"} and len(calls) <= 4


def test_a_redelivered_batch_is_counted_once(aggregator, kinesis, ddb):
    first, sequences = deliver(aggregator, kinesis, [line("abc1234")] * 4)
    again = aggregator.lambda_handler(event_for(kinesis, sequences), None)
    assert (first["applied"], first["already_applied"]) == (2, 0)
    assert (again["applied"], again["already_applied"]) == (0, 2)
    assert counter(ddb, "abc1234")["clicks"] == 4
    assert stats(ddb, "abc1234")["clicks"] == 4


def test_the_same_lines_in_a_later_record_still_count(aggregator, kinesis, ddb):
    deliver(aggregator, kinesis, [line("abc1234")])
    deliver(aggregator, kinesis, [line("abc1234")])
    assert counter(ddb, "abc1234")["clicks"] == 2


def test_hostile_values_are_left_out_of_the_stats_but_the_click_counts(aggregator, kinesis, ddb):
    lines = [
        line("abc1234", ref="a" * 9000, cc="<SCRIPT>ALERT(1)</SCRIPT>"),
        line("abc1234", ref="<script>alert(1)</script>", cc="Z" * 9000),
        line("abc1234", ref="bücher.example", cc="zz"),
        line("abc1234", ref="News.Example.com", cc="ZZ"),
    ]
    deliver(aggregator, kinesis, lines)
    day = stats(ddb, "abc1234")
    assert day["clicks"] == 4
    assert {k: v for k, v in day.items() if k.startswith(("ref#", "cc#"))} == {"ref#news.example.com": 1, "cc#ZZ": 1}


def test_lines_that_are_not_clicks_are_dropped_by_the_handler(aggregator, kinesis, ddb):
    lines = ["START RequestId: 1 Version: $LATEST", "not json {", json.dumps(["a"]), line("abc1234", kind="request"),
             json.dumps({"type": "click"}), json.dumps({"type": "click", "id": "../x"}), line("abc1234")]
    result, _ = deliver(aggregator, kinesis, lines)
    assert result["clicks"] == 1
    assert counter(ddb, "abc1234")["clicks"] == 1


def test_a_control_message_counts_nothing_and_writes_nothing(aggregator, kinesis, ddb):
    payload = {"messageType": "CONTROL_MESSAGE", "logEvents": [{"id": "1", "timestamp": 0, "message": "CWL CONTROL MESSAGE"}]}
    sequence = kinesis.put_record(StreamName=STREAM, Data=_gzip_json(payload), PartitionKey="c")["SequenceNumber"]
    result = aggregator.lambda_handler(event_for(kinesis, [sequence]), None)
    assert (result["clicks"], result["items"], result["records"], result["duplicate_records"]) == (0, 0, 1, 0)
    assert ddb.scan(TableName=TABLE_NAME)["Count"] == 0  # not even a claim: it holds no click


def test_an_empty_event_does_nothing(aggregator, ddb):
    assert aggregator.lambda_handler({"Records": []}, None) == {"clicks": 0, "batchItemFailures": []}
    assert ddb.scan(TableName=TABLE_NAME)["Count"] == 0


def test_a_throttled_item_fails_the_batch_after_every_other_item_was_written(aggregator, kinesis, ddb):
    fail_updates(aggregator._dynamodb, lambda params: params["Key"]["pk"]["S"] == "slow")
    with pytest.raises(ClientError) as raised:
        deliver(aggregator, kinesis, [line("fast"), line("slow"), line("also-fast")])
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert (counter(ddb, "fast")["clicks"], counter(ddb, "also-fast")["clicks"]) == (1, 1)
    assert (stats(ddb, "fast")["clicks"], stats(ddb, "also-fast")["clicks"]) == (1, 1)
    assert counter(ddb, "slow") == {}


def test_the_retry_of_a_batch_that_failed_here_writes_only_what_is_missing(aggregator, kinesis, ddb):
    faults = fail_updates(aggregator._dynamodb, lambda params: params["Key"]["pk"]["S"] == "slow")
    sequences = [put(kinesis, [line("fast")]), put(kinesis, [line("slow"), line("also-fast")])]
    event = event_for(kinesis, sequences)
    with pytest.raises(ClientError):
        aggregator.lambda_handler(event, None)
    faults.clear()
    faults.calls.clear()
    result = aggregator.lambda_handler(event, None)
    # One read of the claims, one of the items; the one missing update and the day's rollup; no claim written again.
    assert sorted(faults.calls) == ["BatchGetItem", "BatchGetItem", "UpdateItem", "UpdateItem"]
    assert (result["retry"], result["applied"], result["already_applied"]) == (True, 1, 5)
    assert {short_id: counter(ddb, short_id)["clicks"] for short_id in ("fast", "slow", "also-fast")} == dict.fromkeys(
        ("fast", "slow", "also-fast"), 1
    )


def test_a_refused_item_is_dropped_and_the_batch_completes(aggregator, kinesis, ddb):
    fail_updates(aggregator._dynamodb, lambda params: params["Key"]["pk"]["S"] == "stats#bad", code="ValidationException")
    result, sequences = deliver(aggregator, kinesis, [line("bad"), line("good")])
    assert (result["applied"], result["dropped"]) == (3, 1)
    assert (counter(ddb, "bad")["clicks"], counter(ddb, "good")["clicks"], stats(ddb, "good")["clicks"]) == (1, 1, 1)
    assert stats(ddb, "bad") == {}
    # Not retried: the batch succeeded, and its marks stand at its last record.
    assert counter(ddb, "good")[mark_of(kinesis)] == layout.encode_sequence(sequences[-1])


def test_counters_are_written_for_the_functions_region(aggregator, kinesis, ddb, monkeypatch):
    monkeypatch.setattr(aggregator, "REGION", "eu-west-1")
    deliver(aggregator, kinesis, [line("abc1234")])
    assert counter(ddb, "abc1234", "eu-west-1")["clicks"] == 1
    assert stats(ddb, "abc1234", region="eu-west-1")["clicks"] == 1
    assert counter(ddb, "abc1234") == {}


def test_the_handler_reads_lambdas_kinesis_event_shape(aggregator, kinesis, ddb):
    # The event exactly as Lambda documents it: base64 data, the shard in eventID, the stream in the ARN.
    sequence = put(kinesis, [line("abc1234")])
    event = event_for(kinesis, [sequence])
    record = event["Records"][0]
    assert record["eventID"] == f"{SHARD}:{sequence}"
    assert gzip.decompress(base64.b64decode(record["kinesis"]["data"]))
    assert aggregator.lambda_handler(event, None)["shard"] == SHARD
    assert counter(ddb, "abc1234")["clicks"] == 1
