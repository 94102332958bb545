"""Exactly-once click counting through the real pipeline (issue 7): moto Kinesis -> the event source
mapping stand-in -> aggregator.handler -> the moto table, with failures injected at every step:
before a call is sent, and after a write landed with its answer lost (tests/support/faults.py)."""
import calendar
import json

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from aggregator import layout, writes
from tests.conftest import REGION, TABLE_NAME
from tests.support.faults import Outage
from tests.support.pipeline import SHARD, STREAM, Pipeline

HUMAN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
BOT = "Twitterbot/1.0"
CHECKPOINT = (f"stream#{REGION}#{STREAM}#{SHARD}", "checkpoint")
DAY = "2026-11-27"
NOON_MS = calendar.timegm((2026, 11, 27, 12, 0, 0)) * 1000
MAX_ITEM_BYTES = 400 * 1024


# ------------------------------------------------------------------ the pipeline in moto


@pytest.fixture
def aws(aggregator):
    """The fresh aggregator, with Kinesis and the on-failure queue beside the table in one moto mock."""
    kinesis = boto3.client("kinesis", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="clicks-dlq-test")["QueueUrl"]
    return aggregator, kinesis, sqs, queue_url


def make_pipeline(aws, shards=1, **options):
    """The pipeline on a new stream, its failures sent to the queue, every aggregator call counted (`faults`)."""
    aggregator, kinesis, sqs, queue_url = aws
    return Pipeline(aggregator, kinesis, STREAM, shards=shards, queue=(sqs, queue_url), timestamp_ms=NOON_MS,
                    faults=True, **options)


@pytest.fixture
def pipeline(aws):
    return make_pipeline(aws)


def click(short_id, ua=HUMAN, ref="news.example.com", cc="DE"):
    """A click line as the redirect prints it."""
    record = {"type": "click", "id": short_id, "ua": ua}
    if ref is not None:
        record["ref"] = ref
    if cc is not None:
        record["cc"] = cc
    return json.dumps(record, separators=(",", ":"))


def item(ddb, pk, sk):
    raw = ddb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item", {})
    return {k: (int(v["N"]) if "N" in v else set(v["SS"]) if "SS" in v else v["S"]) for k, v in raw.items()}


def counts(ddb, short_id):
    """(clicks, bots) of a link's counter item."""
    found = item(ddb, short_id, f"clicks#{REGION}")
    return found.get("clicks", 0), found.get("bots", 0)


def day_stats(ddb, short_id):
    return item(ddb, f"stats#{short_id}", f"day#{DAY}#{REGION}")


def counters_only(stats):
    """The numeric counters of a stats item (no marks, no sets)."""
    return {k: v for k, v in stats.items() if isinstance(v, int)}


def table_state(ddb):
    """Every item of the table, for comparing before and after."""
    return sorted(json.dumps(i, sort_keys=True) for i in ddb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"])


def checkpoint(ddb):
    return item(ddb, *CHECKPOINT).get("done")


# A warm-up batch, so the shard has a checkpoint and every later batch does the gap check.
WARM_UP = [click("aaa"), click("zzz")]
# The batch that fails part-way: two records, three links, one day -> 6 items.
BATCH = [
    [click("aaa"), click("aaa", ua=PHONE, ref="mail.example.org", cc="FR"), click("aaa", ua=BOT)],
    [click("bbb", ref=None, cc=None), click("aaa"), click("ccc", ref="x.example", cc="US"), click("bbb")],
]
# What WARM_UP + BATCH add up to, exactly.
EXPECTED_COUNTS = {"aaa": (4, 1), "bbb": (2, 0), "ccc": (1, 0), "zzz": (1, 0)}
EXPECTED_AAA_DAY = {
    "clicks": 4, "bots": 1, "dev#desktop": 3, "dev#mobile": 1,
    "ref#news.example.com": 3, "ref#mail.example.org": 1, "cc#DE": 3, "cc#FR": 1,
}
EXPECTED_BBB_DAY = {"clicks": 2, "bots": 0, "dev#desktop": 2, "ref#news.example.com": 1, "cc#DE": 1}
# Every call of the write path of BATCH once the shard has a checkpoint, in order. Item updates
# run in parallel, so which item is "item n" varies; each index still fails exactly one call.
WRITE_PATH = (
    ["checkpoint read", "gap check: shard iterator", "gap check: records"]
    + [f"item update {n}" for n in range(1, 7)]
    + ["checkpoint save"]
)


def assert_batch_counted_exactly(ddb):
    assert {short_id: counts(ddb, short_id) for short_id in EXPECTED_COUNTS} == EXPECTED_COUNTS
    assert counters_only(day_stats(ddb, "aaa")) == EXPECTED_AAA_DAY
    assert counters_only(day_stats(ddb, "bbb")) == EXPECTED_BBB_DAY
    assert counters_only(day_stats(ddb, "ccc")) == {"clicks": 1, "bots": 0, "dev#desktop": 1, "ref#x.example": 1, "cc#US": 1}


# ------------------------------------------------------------------ (a) a batch delivered twice


def test_a_batch_delivered_twice_counts_once(pipeline, ddb):
    pipeline.send(WARM_UP)
    sequences = pipeline.send(*BATCH)
    assert pipeline.results[-1]["records"] == 2
    before = table_state(ddb)
    again = pipeline.aggregator.lambda_handler(pipeline.event(set(sequences)), None)
    assert (again["applied"], again["already_applied"], again["dropped"], again["gap_records"]) == (0, 6, 0, 0)
    assert table_state(ddb) == before
    assert_batch_counted_exactly(ddb)


def test_a_whole_history_delivered_again_counts_once(pipeline, ddb):
    first = pipeline.send(WARM_UP)
    rest = pipeline.send(*BATCH)
    before = table_state(ddb)
    everything = pipeline.aggregator.lambda_handler(pipeline.event(set(first + rest)), None)
    assert everything["applied"] == 0
    assert table_state(ddb) == before
    assert_batch_counted_exactly(ddb)


# ------------------------------------------------------------------ (b) a batch that fails part-way


def test_the_write_path_of_a_batch_is_these_calls(pipeline, ddb):
    """Pins the call plan that the failure injection below walks through, step by step."""
    pipeline.send(WARM_UP)
    pipeline.faults.calls.clear()
    pipeline.send(*BATCH)
    assert pipeline.faults.calls == ["GetItem", "GetShardIterator", "GetRecords"] + ["UpdateItem"] * 7
    assert len(pipeline.faults.calls) == len(WRITE_PATH)


@pytest.mark.parametrize("step", range(len(WRITE_PATH)), ids=WRITE_PATH)
def test_a_batch_that_fails_part_way_is_retried_and_counted_exactly(pipeline, ddb, step):
    pipeline.send(WARM_UP)
    pipeline.faults.fail_at = {len(pipeline.faults.calls) + step}
    sequences = pipeline.send(*BATCH)

    assert pipeline.mapping.invocations == 1 + 2  # the warm-up, the failed attempt, the retry
    assert pipeline.mapping.discarded == 0
    assert_batch_counted_exactly(ddb)
    assert checkpoint(ddb) == layout.padded(sequences[-1])
    # And once more for good measure: a late redelivery of the batch changes nothing.
    before = table_state(ddb)
    pipeline.aggregator.lambda_handler(pipeline.event(set(sequences)), None)
    assert table_state(ddb) == before


@pytest.mark.parametrize("step", range(len(WRITE_PATH)), ids=WRITE_PATH)
def test_a_retry_that_fails_again_part_way_still_counts_exactly(pipeline, ddb, step):
    # The first attempt writes every item and fails to save the checkpoint; the retry then takes
    # the "already applied" path for every item and fails at `step`; the third attempt completes.
    pipeline.send(WARM_UP)
    start = len(pipeline.faults.calls)
    pipeline.faults.fail_at = {start + len(WRITE_PATH) - 1, start + len(WRITE_PATH) + step}
    sequences = pipeline.send(*BATCH)

    assert pipeline.mapping.invocations == 1 + 3
    assert pipeline.mapping.discarded == 0
    assert_batch_counted_exactly(ddb)
    assert checkpoint(ddb) == layout.padded(sequences[-1])


def test_a_retried_item_is_rebuilt_from_the_clicks_above_its_mark(pipeline, ddb):
    # A retry whose batch overlaps what an item already holds (its mark is inside the batch):
    # only the clicks above the mark are added.
    first = pipeline.send([click("aaa")])
    second = pipeline.send([click("aaa"), click("aaa")])
    overlapping = pipeline.aggregator.lambda_handler(pipeline.event(set(first + second)), None)
    assert overlapping["applied"] == 0
    assert counts(ddb, "aaa") == (3, 0)
    third = pipeline.put([click("aaa")])
    result = pipeline.aggregator.lambda_handler(pipeline.event(set(second + [third])), None)
    assert result["applied"] == 2  # counter and stats, each rebuilt from the one new click
    assert counts(ddb, "aaa") == (4, 0)
    assert day_stats(ddb, "aaa")["clicks"] == 4


# ------------------------------------------------------------------ (c) batches retried after later ones


def _fail_batch_one(pipeline, partly):
    """Make every attempt at the next batch fail: at every item write, or (partly) only at link bbb's."""
    if partly:
        pipeline.faults.fail_when = lambda op, request: op == "UpdateItem" and request.get("Key", {}).get("pk", {}).get("S") in ("bbb", "stats#bbb")
    else:
        pipeline.faults.fail_when = lambda op, request: op == "UpdateItem"


@pytest.mark.parametrize("partly", [False, True], ids=["nothing-applied", "partly-applied"])
def test_a_skipped_batch_is_read_back_by_the_next_one_and_counted_once(pipeline, ddb, partly):
    pipeline.send(WARM_UP)
    _fail_batch_one(pipeline, partly)
    batch_one = pipeline.send(*BATCH)
    assert pipeline.mapping.discarded == 1  # the mapping gave up after its retries and moved on
    [failure] = pipeline.failures()
    info = failure["KinesisBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"]) == (SHARD, batch_one[0], batch_one[-1])
    assert counts(ddb, "bbb") == (0, 0)

    pipeline.faults.clear()
    batch_two = pipeline.send([click("bbb"), click("ddd")])
    assert pipeline.results[-1]["gap_records"] == len(batch_one)
    assert counts(ddb, "bbb") == (3, 0)
    assert counts(ddb, "ddd") == (1, 0)
    assert counts(ddb, "aaa") == EXPECTED_COUNTS["aaa"]
    assert counters_only(day_stats(ddb, "aaa")) == EXPECTED_AAA_DAY
    assert checkpoint(ddb) == layout.padded(batch_two[-1])

    # A stale redelivery of batch one afterwards (the failure record replayed as a batch) changes nothing.
    before = table_state(ddb)
    stale = pipeline.aggregator.lambda_handler(pipeline.event(set(batch_one)), None)
    assert (stale["applied"], stale["gap_records"]) == (0, 0)
    assert table_state(ddb) == before


def test_batch_two_reading_batch_one_back_is_these_calls(pipeline, ddb):
    pipeline.send(WARM_UP)
    _fail_batch_one(pipeline, partly=False)
    pipeline.send(*BATCH)
    pipeline.faults.clear()
    pipeline.faults.calls.clear()
    pipeline.send([click("bbb"), click("ddd")])
    # 6 items of batch one, 1 more (ddd) and bbb's already counted; then the checkpoint.
    assert pipeline.faults.calls == ["GetItem", "GetShardIterator", "GetRecords", "GetRecords"] + ["UpdateItem"] * 9


GAP_PATH = (["checkpoint read", "gap: shard iterator", "gap: first record", "gap: the rest"]
            + [f"item update {n}" for n in range(1, 9)] + ["checkpoint save"])


@pytest.mark.parametrize("step", range(len(GAP_PATH)), ids=GAP_PATH)
def test_a_batch_that_fails_while_reading_a_skipped_one_back_is_retried_and_counted_exactly(pipeline, ddb, step):
    pipeline.send(WARM_UP)
    _fail_batch_one(pipeline, partly=False)
    pipeline.send(*BATCH)
    pipeline.faults.clear()
    pipeline.faults.fail_at = {len(pipeline.faults.calls) + step}
    pipeline.send([click("bbb"), click("ddd")])
    assert pipeline.mapping.discarded == 1  # only batch one
    assert counts(ddb, "bbb") == (3, 0)
    assert counts(ddb, "ddd") == (1, 0)
    assert counts(ddb, "aaa") == EXPECTED_COUNTS["aaa"]
    assert counters_only(day_stats(ddb, "aaa")) == EXPECTED_AAA_DAY


def test_several_skipped_batches_are_all_read_back_in_order(aws, ddb):
    pipeline = make_pipeline(aws, batch_size=1)
    pipeline.send([click("aaa")])
    pipeline.faults.fail_when = lambda op, request: op == "UpdateItem"
    pipeline.send([click("aaa")], [click("aaa", ua=BOT)], [click("bbb")])
    assert pipeline.mapping.discarded == 3
    pipeline.faults.clear()
    pipeline.send([click("aaa")])
    assert pipeline.results[-1]["gap_records"] == 3
    assert counts(ddb, "aaa") == (3, 1)
    assert counts(ddb, "bbb") == (1, 0)


def test_a_skipped_first_batch_of_a_shard_is_read_back_by_the_next(pipeline, ddb):
    # The very first batch of a shard (no checkpoint yet; StartingPosition TRIM_HORIZON) fails
    # past its retries. The next batch must still read it back, or its clicks are lost for good:
    # batch two moves the items' marks and the checkpoint past them, so no heal can apply them.
    pipeline.faults.fail_when = lambda op, request: op == "UpdateItem"
    pipeline.send(*BATCH)
    assert pipeline.mapping.discarded == 1
    pipeline.faults.clear()
    pipeline.send([click("bbb")])
    pipeline.aggregator.lambda_handler({"heal": {}}, None)  # and even after a heal
    assert counts(ddb, "aaa") == (3, 1)
    assert counts(ddb, "bbb") == (3, 0)


def test_a_gap_longer_than_one_read_is_healed_by_retries(aws, ddb, monkeypatch):
    # stream.read_after reads a gap with at most MAX_CALLS GetRecords calls; the retry must read
    # on from where the last attempt stopped. Small limits stand in for a long outage.
    from aggregator import stream

    monkeypatch.setattr(stream, "MAX_CALLS", 3)
    monkeypatch.setattr(stream, "RECORDS_PER_CALL", 1)
    pipeline = make_pipeline(aws, batch_size=8)
    pipeline.send([click("aaa")])
    pipeline.faults.fail_when = lambda op, request: op == "UpdateItem"
    pipeline.send(*[[click("aaa")] for _ in range(6)])
    assert pipeline.mapping.discarded == 1
    pipeline.faults.clear()
    for _ in range(3):  # later batches, each retried by the mapping; then heals
        pipeline.send([click("bbb")])
    for _ in range(3):
        try:
            pipeline.aggregator.lambda_handler({"heal": {}}, None)
        except Exception:  # noqa: BLE001 - a heal that cannot finish may raise; asked again, it must get there
            pass
    assert counts(ddb, "aaa") == (7, 0)
    assert counts(ddb, "bbb") == (3, 0)


# ------------------------------------------------------------------ (d) replay from the failure destination


def replay_from_queue(pipeline):
    """`make replay-dlq --local`: deploy/replay_dlq.py heals each shard named in the queue, in process."""
    from deploy import replay_dlq

    outcome = replay_dlq.replay(pipeline.queue_url, replay_dlq.call_in_process(), sqs=pipeline.sqs, wait_seconds=0)
    assert outcome.unreadable == 0
    return outcome


@pytest.mark.parametrize("partly", [False, True], ids=["nothing-applied", "partly-applied"])
def test_a_replay_from_the_failure_destination_counts_the_skipped_batch_once(pipeline, ddb, partly):
    pipeline.send(WARM_UP)
    _fail_batch_one(pipeline, partly)
    sequences = pipeline.send(*BATCH)
    assert pipeline.mapping.discarded == 1
    pipeline.faults.clear()

    outcome = replay_from_queue(pipeline)
    assert (outcome.ok, outcome.deleted) == (True, 1)
    assert pipeline.failures() == []
    assert_batch_counted_exactly(ddb)
    assert checkpoint(ddb) == layout.padded(sequences[-1])
    # Replaying again (a message delivered twice, or a heal of every shard) changes nothing.
    before = table_state(ddb)
    assert pipeline.aggregator.lambda_handler({"heal": {}}, None)[SHARD]["records"] == 0
    pipeline.aggregator.lambda_handler({"heal": {"shard": SHARD}}, None)
    assert table_state(ddb) == before
    # And the next batch does not count the replayed records again.
    pipeline.send([click("aaa")])
    assert counts(ddb, "aaa") == (EXPECTED_COUNTS["aaa"][0] + 1, 1)
    assert pipeline.results[-1]["gap_records"] == 0


HEAL_PATH = (["checkpoint read", "shard iterator", "records", "records: caught up"]
             + [f"item update {n}" for n in range(1, 7)] + ["checkpoint save"])


def test_a_heal_is_these_calls(pipeline, ddb):
    pipeline.send(WARM_UP)
    _fail_batch_one(pipeline, partly=False)
    pipeline.send(*BATCH)
    pipeline.faults.clear()
    pipeline.faults.calls.clear()
    pipeline.aggregator.lambda_handler({"heal": {"shard": SHARD}}, None)
    assert pipeline.faults.calls == ["GetItem", "GetShardIterator", "GetRecords", "GetRecords"] + ["UpdateItem"] * 7
    assert len(pipeline.faults.calls) == len(HEAL_PATH)


@pytest.mark.parametrize("step", range(len(HEAL_PATH)), ids=HEAL_PATH)
def test_a_replay_that_fails_part_way_can_be_replayed_again(pipeline, ddb, monkeypatch, step):
    from deploy import replay_dlq

    monkeypatch.setattr(replay_dlq, "VISIBILITY_TIMEOUT_SECONDS", 0)  # the message is back at once
    pipeline.send(WARM_UP)
    _fail_batch_one(pipeline, partly=False)
    pipeline.send(*BATCH)
    pipeline.faults.clear()
    pipeline.faults.fail_at = {len(pipeline.faults.calls) + step}
    failed = replay_from_queue(pipeline)
    assert (failed.failed, failed.deleted) == (1, 0)  # left in the queue
    again = replay_from_queue(pipeline)
    assert (again.ok, again.deleted) == (True, 1)
    assert_batch_counted_exactly(ddb)


def test_a_replay_of_a_skipped_first_batch_with_no_checkpoint_counts_it(pipeline, ddb):
    pipeline.faults.fail_when = lambda op, request: op == "UpdateItem"
    pipeline.send(*BATCH)
    pipeline.faults.clear()
    assert checkpoint(ddb) is None
    assert replay_from_queue(pipeline).deleted == 1
    assert counts(ddb, "aaa") == (3, 1)
    assert counts(ddb, "bbb") == (2, 0)


# ------------------------------------------------------------------ (e) a flood of junk on one link


def _junk_host(n):
    """A distinct, valid, 253-character host name: the largest a referrer may be."""
    head = f"j{n:05d}"
    return f"{head}{'a' * (63 - len(head))}.{'b' * 63}.{'c' * 63}.{'d' * 61}"


def _item_bytes(found):
    """An upper bound of an item's size by DynamoDB's rules (names + values; numbers at most 21 bytes)."""
    size = 0
    for name, value in found.items():
        size += len(name.encode())
        if isinstance(value, int):
            size += 21
        elif isinstance(value, set):
            size += sum(len(member.encode()) for member in value)
        else:
            size += len(value.encode())
    return size


def test_a_flood_of_junk_referrers_and_forged_countries_keeps_the_stats_item_bounded(pipeline, ddb):
    codes = [f"{a}{b}" for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    hostile = ["x" * 9000, "<script>alert(1)</script>", "bücher.example", ".".join(["a" * 60] * 150)]
    flood_clicks = valid_refs = valid_ccs = 0
    calm = {"calm1": 0, "calm2": 0}
    n = 0
    for batch in range(6):
        records = []
        for _ in range(4):
            lines = []
            for _ in range(60):
                if n % 7 == 0:
                    lines.append(click("flood", ref=hostile[n % len(hostile)], cc="<SCRIPT>ALERT(1)</SCRIPT>"))
                else:
                    lines.append(click("flood", ref=_junk_host(n), cc=codes[n % len(codes)]))
                    valid_refs += 1
                    valid_ccs += 1
                flood_clicks += 1
                n += 1
            lines += [click("calm1", ref="news.example.com")] * (batch + 1) + [click("calm2", ua=PHONE, cc="SE")] * 2
            calm["calm1"] += batch + 1
            calm["calm2"] += 2
            records.append(lines)
        pipeline.send(*records)

    assert pipeline.mapping.discarded == 0
    stats = day_stats(ddb, "flood")
    referrers = {k: v for k, v in stats.items() if k.startswith("ref#")}
    countries = {k: v for k, v in stats.items() if k.startswith("cc#")}
    assert stats["clicks"] == flood_clicks
    assert counts(ddb, "flood") == (flood_clicks, 0)
    assert len(stats["refs"]) == writes.MAX_REFERRERS
    assert len(referrers) == writes.MAX_REFERRERS + 1
    assert "ref#(other)" in referrers
    assert sum(referrers.values()) == valid_refs  # nothing lost, nothing counted twice
    assert len(stats["ccs"]) <= writes.MAX_COUNTRIES
    assert len(countries) <= writes.MAX_COUNTRIES + 1
    assert sum(countries.values()) == valid_ccs
    assert all(len(k) == len("cc#") + 2 or k == "cc#(other)" for k in countries)
    assert _item_bytes(stats) < MAX_ITEM_BYTES
    # Other links in the same batches stay exact.
    assert counts(ddb, "calm1") == (calm["calm1"], 0)
    assert counts(ddb, "calm2") == (calm["calm2"], 0)
    assert counters_only(day_stats(ddb, "calm2")) == {
        "clicks": calm["calm2"], "bots": 0, "dev#mobile": calm["calm2"], "ref#news.example.com": calm["calm2"], "cc#SE": calm["calm2"]
    }


def test_a_stats_item_at_its_limit_still_takes_every_later_click(pipeline, ddb):
    for batch in range(4):
        pipeline.send([click("full", ref=_junk_host(batch * 40 + i)) for i in range(40)])
    pipeline.send([click("full", ref=_junk_host(0)), click("full", ref="late.example"), click("full", ref=None)])
    stats = day_stats(ddb, "full")
    assert stats["clicks"] == 163
    assert len(stats["refs"]) == writes.MAX_REFERRERS
    assert sum(v for k, v in stats.items() if k.startswith("ref#")) == 162
    assert _item_bytes(stats) < MAX_ITEM_BYTES


def test_one_poison_line_does_not_stop_the_shard(pipeline, ddb):
    # A line that is JSON nested 100,000 deep: json raises RecursionError, which is not a ValueError.
    # Today it fails the batch on every attempt, and every later batch too (each reads it back
    # as part of its gap), so the shard counts nothing more until the record leaves the stream.
    poison = '{"type":"click","id":"aaa","x":' + "[" * 100_000 + "]" * 100_000 + "}"
    pipeline.send([click("zzz")])
    pipeline.send([click("aaa"), poison, click("bbb")])
    pipeline.send([click("aaa")])
    assert counts(ddb, "aaa") == (2, 0)
    assert counts(ddb, "bbb") == (1, 0)
    assert pipeline.mapping.discarded == 0


# ------------------------------------------------------------------ (f) one refused item


def test_one_validation_exception_does_not_stop_the_others(pipeline, ddb):
    pipeline.send(WARM_UP)
    pipeline.faults.fault = "ValidationException"
    pipeline.faults.fail_when = lambda op, request: request.get("Key", {}).get("pk", {}).get("S") == "stats#aaa"
    sequences = pipeline.send(*BATCH)
    result = pipeline.results[-1]
    assert (result["applied"], result["dropped"]) == (5, 1)
    assert pipeline.mapping.invocations == 2  # not retried: a refused update would be refused again
    assert pipeline.mapping.discarded == 0
    assert counts(ddb, "aaa") == EXPECTED_COUNTS["aaa"]  # its counter is another item
    assert counters_only(day_stats(ddb, "aaa")) == {"clicks": 1, "bots": 0, "dev#desktop": 1, "ref#news.example.com": 1, "cc#DE": 1}
    assert counts(ddb, "bbb") == EXPECTED_COUNTS["bbb"]
    assert counters_only(day_stats(ddb, "bbb")) == EXPECTED_BBB_DAY
    assert counts(ddb, "ccc") == EXPECTED_COUNTS["ccc"]
    assert checkpoint(ddb) == layout.padded(sequences[-1])
    # The next batch on that link is counted again as normal.
    pipeline.faults.clear()
    pipeline.send([click("aaa")])
    assert day_stats(ddb, "aaa")["clicks"] == 2


def test_a_refused_item_and_a_throttled_item_in_one_batch(pipeline, ddb):
    pipeline.send(WARM_UP)
    refused = {"stats#aaa"}
    throttled_once = {"bbb"}

    def fail(op, request):
        pk = request.get("Key", {}).get("pk", {}).get("S")
        if pk in refused:
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "too large"}}, op)
        if pk in throttled_once:
            throttled_once.clear()
            return True
        return False

    pipeline.faults.fail_when = fail
    pipeline.send(*BATCH)
    assert pipeline.mapping.invocations == 1 + 2
    assert counts(ddb, "bbb") == EXPECTED_COUNTS["bbb"]
    assert counts(ddb, "aaa") == EXPECTED_COUNTS["aaa"]
    assert counts(ddb, "ccc") == EXPECTED_COUNTS["ccc"]
    assert day_stats(ddb, "aaa").get("clicks") == 1  # only the warm-up's


# ------------------------------------------------------------------ (g) lost responses: the write landed, its answer did not
# Each write lands in the table, then the aggregator gets a read timeout (or a dropped connection)
# instead of DynamoDB's answer, as when a connection breaks after DynamoDB applied the update.
# The batch fails and is delivered again: every click must still count exactly once.

WRITES = [step for step, name in enumerate(WRITE_PATH) if name.startswith(("item update", "checkpoint save"))]
LOST_FAULTS = [ReadTimeoutError, pytest.param(ConnectionClosedError, marks=pytest.mark.exhaustive)]


def _lose(pipeline, steps, fault=ReadTimeoutError):
    """Let the calls at these steps (counted from the next call) land, and lose their answers."""
    start = len(pipeline.faults.calls)
    pipeline.faults.lose_responses(fault).fail_at = {start + step for step in steps}
    return start


@pytest.mark.parametrize("fault", LOST_FAULTS, ids=["read-timeout", "connection-closed"])
@pytest.mark.parametrize("step", WRITES, ids=[WRITE_PATH[step] for step in WRITES])
def test_a_write_whose_response_is_lost_is_counted_once_on_the_retry(pipeline, ddb, step, fault):
    pipeline.send(WARM_UP)
    start = _lose(pipeline, [step], fault)
    sequences = pipeline.send(*BATCH)

    assert pipeline.faults.lost_calls == [start + step]  # it was sent and applied, and its answer lost
    assert pipeline.faults.calls[start + step] == "UpdateItem"
    assert pipeline.mapping.invocations == 1 + 2  # the warm-up, the attempt that lost an answer, the retry
    assert pipeline.mapping.discarded == 0
    assert_batch_counted_exactly(ddb)
    assert checkpoint(ddb) == layout.padded(sequences[-1])


def test_every_write_of_a_batch_landing_with_its_answer_lost_counts_once(pipeline, ddb):
    pipeline.send(WARM_UP)
    start = _lose(pipeline, [step for step in WRITES if WRITE_PATH[step].startswith("item update")])
    pipeline.send(*BATCH)
    # The six item updates run in parallel and all land; the failed batch never saves its checkpoint.
    assert len(pipeline.faults.lost_calls) == 6
    assert pipeline.results[-1]["already_applied"] == 6  # the retry applies nothing again
    assert pipeline.mapping.discarded == 0
    assert_batch_counted_exactly(ddb)
    assert pipeline.faults.calls[start:start + 3] == ["GetItem", "GetShardIterator", "GetRecords"]


# After a first attempt whose checkpoint save landed, the retry finds the checkpoint at the batch's end:
# no gap check, every item on the "already applied" path (a failed condition), the save again.
RETRY_PATH = ["checkpoint read"] + [f"item update {n}" for n in range(1, 7)] + ["checkpoint save"]


@pytest.mark.exhaustive  # a matrix: in make test; the fast lane keeps the single-step cases above
@pytest.mark.parametrize("step", range(1, len(RETRY_PATH)), ids=RETRY_PATH[1:])
def test_a_retry_that_loses_an_answer_again_still_counts_once(pipeline, ddb, step):
    # The first attempt writes every item and loses the checkpoint save's answer; the retry loses
    # the answer of `step`; the third attempt completes.
    pipeline.send(WARM_UP)
    start = _lose(pipeline, [len(WRITE_PATH) - 1, len(WRITE_PATH) + step])
    sequences = pipeline.send(*BATCH)

    retry = pipeline.faults.calls[start + len(WRITE_PATH):]
    assert retry[:step + 1] == ["GetItem"] + ["UpdateItem"] * step  # the retry's path, as RETRY_PATH says
    assert len(pipeline.faults.lost_calls) == 2
    assert pipeline.mapping.invocations == 1 + 3
    assert pipeline.mapping.discarded == 0
    assert_batch_counted_exactly(ddb)
    assert checkpoint(ddb) == layout.padded(sequences[-1])


def test_a_batch_whose_answers_are_lost_on_every_attempt_is_read_back_once(pipeline, ddb):
    # Every attempt lands every write and loses every answer, so the mapping gives up on a batch
    # that the table already holds in full. The next batch reads it back: nothing counts twice.
    pipeline.send(WARM_UP)
    pipeline.faults.lose_responses().fail_when = lambda op, request: op == "UpdateItem"
    pipeline.send(*BATCH)
    assert pipeline.mapping.discarded == 1
    assert len(pipeline.faults.lost_calls) == 3 * 6  # each attempt: six items, then no checkpoint save
    assert_batch_counted_exactly(ddb)
    pipeline.faults.clear()
    batch_two = pipeline.send([click("bbb"), click("ddd")])
    # Its checkpoint was never saved, so batch one is read back; four of its six items hold it already.
    assert (pipeline.results[-1]["gap_records"], pipeline.results[-1]["already_applied"]) == (2, 4)
    assert counts(ddb, "bbb") == (EXPECTED_COUNTS["bbb"][0] + 1, 0)
    assert counts(ddb, "ddd") == (1, 0)
    assert counts(ddb, "aaa") == EXPECTED_COUNTS["aaa"]
    assert counters_only(day_stats(ddb, "aaa")) == EXPECTED_AAA_DAY
    assert checkpoint(ddb) == layout.padded(batch_two[-1])
    # And the failure record, replayed, counts nothing again.
    before = table_state(ddb)
    assert replay_from_queue(pipeline).deleted == 1
    assert table_state(ddb) == before


GAP_WRITES = [step for step, name in enumerate(GAP_PATH) if name.startswith(("item update", "checkpoint save"))]


@pytest.mark.exhaustive  # a matrix: in make test; the fast lane keeps the single-step cases above
@pytest.mark.parametrize("step", GAP_WRITES, ids=[GAP_PATH[step] for step in GAP_WRITES])
def test_a_batch_reading_a_skipped_one_back_that_loses_an_answer_counts_once(pipeline, ddb, step):
    pipeline.send(WARM_UP)
    _fail_batch_one(pipeline, partly=False)
    pipeline.send(*BATCH)
    pipeline.faults.clear()
    start = _lose(pipeline, [step])
    pipeline.send([click("bbb"), click("ddd")])
    assert pipeline.faults.lost_calls == [start + step]
    assert pipeline.mapping.discarded == 1  # only batch one
    assert counts(ddb, "bbb") == (3, 0)
    assert counts(ddb, "ddd") == (1, 0)
    assert counts(ddb, "aaa") == EXPECTED_COUNTS["aaa"]
    assert counters_only(day_stats(ddb, "aaa")) == EXPECTED_AAA_DAY
    assert counters_only(day_stats(ddb, "bbb"))["clicks"] == 3


HEAL_WRITES = [step for step, name in enumerate(HEAL_PATH) if name.startswith(("item update", "checkpoint save"))]


@pytest.mark.exhaustive  # a matrix: in make test; the fast lane keeps the single-step cases above
@pytest.mark.parametrize("step", HEAL_WRITES, ids=[HEAL_PATH[step] for step in HEAL_WRITES])
def test_a_replay_that_loses_an_answer_can_be_replayed_again_and_counts_once(pipeline, ddb, monkeypatch, step):
    from deploy import replay_dlq

    monkeypatch.setattr(replay_dlq, "VISIBILITY_TIMEOUT_SECONDS", 0)  # the message is back at once
    pipeline.send(WARM_UP)
    _fail_batch_one(pipeline, partly=False)
    pipeline.send(*BATCH)
    pipeline.faults.clear()
    start = _lose(pipeline, [step])
    failed = replay_from_queue(pipeline)
    assert pipeline.faults.lost_calls == [start + step]
    assert (failed.failed, failed.deleted) == (1, 0)  # left in the queue
    again = replay_from_queue(pipeline)
    assert (again.ok, again.deleted) == (True, 1)
    assert_batch_counted_exactly(ddb)
    # The next batch counts only its own click.
    pipeline.send([click("aaa")])
    assert counts(ddb, "aaa") == (EXPECTED_COUNTS["aaa"][0] + 1, 1)


def test_a_lost_answer_of_a_rebuilt_update_counts_once(pipeline, ddb):
    # The rebuilt update (after a failed condition, conditional on the mark it saw) lands and
    # loses its answer: the retry must see that mark moved and add nothing again.
    first = pipeline.send([click("aaa")])
    second = pipeline.put([click("aaa"), click("aaa")])
    # Deliver records one and two together: counter and stats fail their first condition (mark
    # inside the batch) and are rebuilt from the clicks above the mark; lose those answers.
    rebuilt = lambda op, request: op == "UpdateItem" and "#m = :seen" in request.get("ConditionExpression", "")
    pipeline.faults.lose_responses().fail_when = rebuilt
    with pytest.raises(ReadTimeoutError):
        pipeline.aggregator.lambda_handler(pipeline.event(set(first + [second])), None)
    assert len(pipeline.faults.lost_calls) == 2
    pipeline.faults.clear()
    pipeline.mapping.poll(flush=True)  # the mapping delivers record two as its own batch
    assert counts(ddb, "aaa") == (3, 0)
    assert day_stats(ddb, "aaa")["clicks"] == 3


def test_answers_lost_at_the_http_layer_are_resent_by_botocore_and_counted_once(pipeline, ddb, monkeypatch):
    # The common case on AWS: a write lands, the connection drops before its answer, and botocore
    # itself sends the same request again. The resent update must find its own mark and add nothing.
    pipeline.send(WARM_UP)
    outage = Outage(monkeypatch, pipeline.aggregator._dynamodb, operations={"UpdateItem"}, lost=True)
    outage.kind, outage.first_sends = "read-timeout", True  # each update's first send lands, and its answer is lost
    try:
        sequences = pipeline.send(*BATCH)
    finally:
        outage.end()
    assert outage.failed_sends == 7 and len(outage.sleeps) == 7  # six items and the checkpoint save, each resent once
    assert pipeline.mapping.invocations == 1 + 1  # botocore's resends absorbed every lost answer
    result = pipeline.results[-1]
    assert (result["applied"], result["already_applied"]) == (0, 6)  # each resend met its own mark
    assert_batch_counted_exactly(ddb)
    assert checkpoint(ddb) == layout.padded(sequences[-1])


# ------------------------------------------------------------------ shards


def test_each_shard_keeps_its_own_marks_and_checkpoint(aws, ddb):
    pipeline = make_pipeline(aws, shards=2)
    shards = pipeline.kinesis.list_shards(StreamName=STREAM)["Shards"]
    low, high = (s["HashKeyRange"]["StartingHashKey"] for s in shards)
    pipeline.put([click("aaa"), click("aaa")], shard_hash=low)
    pipeline.put([click("aaa")], shard_hash=high)
    pipeline.mapping.poll(flush=True)
    pipeline.put([click("aaa")], shard_hash=high)
    pipeline.mapping.poll(flush=True)
    assert counts(ddb, "aaa") == (4, 0)
    marks = {k for k in item(ddb, "aaa", f"clicks#{REGION}") if k.startswith(layout.MARK_PREFIX)}
    assert marks == {f"{layout.MARK_PREFIX}{STREAM}#{s['ShardId']}" for s in shards}
    before = table_state(ddb)
    assert all(r["records"] == 0 for r in pipeline.aggregator.lambda_handler({"heal": {}}, None).values())
    assert table_state(ddb) == before
