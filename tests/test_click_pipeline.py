"""Exactly-once click counting through the real pipeline (issues 7 and 14): moto Kinesis -> the event
source mapping stand-in -> aggregator.handler -> the moto table, with failures injected at every step:
before a call is sent, and after a write landed with its answer lost (tests/support/faults.py).

The mapping retries a failing batch, in order, until it succeeds (the template sets no retry or age
limit): a failure delays counting, never skips. The stand-in's retries are bounded here
(RETRIES_UNTIL_SUCCESS, far more than any outage below lasts); tests with the stand-in's two retries
play an operator who set finite retries, so that a range is discarded and `make replay-dlq` accounts
for it."""
import calendar
import json

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from aggregator import clicks, layout, writes
from tests.conftest import REGION, TABLE_NAME
from tests.support.faults import Outage
from tests.support.pipeline import SHARD, STREAM, Pipeline
from tests.test_aggregator import mark_of
from webapp.store import stats_items

HUMAN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
# What ua-parser makes of them: device, browser, operating system.
HUMAN_AGENT = {"dev#Desktop": 1, "br#Chrome": 1, "os#Windows": 1}
PHONE_AGENT = {"dev#iPhone": 1, "br#Mobile Safari UI/WKWebView": 1, "os#iOS": 1}
BOT = "Twitterbot/1.0"
DAY = "2026-11-27"
NOON_MS = calendar.timegm((2026, 11, 27, 12, 0, 0)) * 1000
MAX_ITEM_BYTES = 400 * 1024
# The mapping's retries when a test plays the template's "until it succeeds": a bound for the
# stand-in's loop, far above the attempts any outage here makes fail.
RETRIES_UNTIL_SUCCESS = 50
# The mapping's retries everywhere else: an operator's finite setting, so that a batch that fails on
# every attempt is discarded (and a test of one that should not can never loop for ever).
FINITE_RETRIES = 2


# ------------------------------------------------------------------ the pipeline in moto


@pytest.fixture
def aws(aggregator):
    """The fresh aggregator, with Kinesis and the on-failure queue beside the table in one moto mock."""
    kinesis = boto3.client("kinesis", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="clicks-dlq-test")["QueueUrl"]
    return aggregator, kinesis, sqs, queue_url


def make_pipeline(aws, shards=1, max_retries=FINITE_RETRIES, **options):
    """The pipeline on a new stream, its failures sent to the queue, every aggregator call counted (`faults`)."""
    aggregator, kinesis, sqs, queue_url = aws
    return Pipeline(aggregator, kinesis, STREAM, shards=shards, queue=(sqs, queue_url), timestamp_ms=NOON_MS,
                    faults=True, max_retries=max_retries, **options)


@pytest.fixture
def pipeline(aws):
    return make_pipeline(aws)


@pytest.fixture
def patient(aws):
    """The pipeline with a mapping that retries a failing batch until it succeeds (bounded: RETRIES_UNTIL_SUCCESS)."""
    return make_pipeline(aws, max_retries=RETRIES_UNTIL_SUCCESS)


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
    return {k: (int(v["N"]) if "N" in v else set(v["SS"]) if "SS" in v else {bytes(h) for h in v["BS"]} if "BS" in v
                else bytes(v["B"]) if "B" in v else v["S"]) for k, v in raw.items()}


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
    """Every item of the table, for comparing before and after.

    A claim's purge_at is left out: a redelivery claims its records again (the claim is its own),
    which moves the time the claim is purged, and changes no count.
    """
    items = ddb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
    return sorted(json.dumps({k: v for k, v in i.items() if k != "purge_at"}, sort_keys=True, default=lambda b: bytes(b).hex())
                  for i in items)


def claims(ddb):
    """The owners of the table's claims."""
    items = ddb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
    return sorted(i["owner"]["S"] for i in items if i["pk"]["S"].startswith(layout.CLAIM_PK_PREFIX))


# A warm-up batch: the container has asked which life the stream is in, as in steady state.
WARM_UP = [click("aaa"), click("zzz")]
# The batch that fails part-way: two records, three links, one day -> 2 claims, 6 items.
BATCH = [
    [click("aaa"), click("aaa", ua=PHONE, ref="mail.example.org", cc="FR"), click("aaa", ua=BOT)],
    [click("bbb", ref=None, cc=None), click("aaa"), click("ccc", ref="x.example", cc="US"), click("bbb")],
]
# What WARM_UP + BATCH add up to, exactly.
EXPECTED_COUNTS = {"aaa": (4, 1), "bbb": (2, 0), "ccc": (1, 0), "zzz": (1, 0)}


def people(humans=0, phones=0, **counters):
    """The counters of a stats item whose clicks (all at noon) came from these many HUMAN and PHONE agents."""
    day = {"clicks": humans + phones, "bots": 0, "h#12": humans + phones, **counters}
    for agent, n in ((HUMAN_AGENT, humans), (PHONE_AGENT, phones)):
        day.update({name: n for name in agent} if n else {})
    return day


EXPECTED_AAA_DAY = people(3, 1, **{"bots": 1, "hb#12": 1, "ref#news.example.com": 3, "ref#mail.example.org": 1,
                                   "cc#DE": 3, "cc#FR": 1})
EXPECTED_BBB_DAY = people(2, **{"ref#news.example.com": 1, "cc#DE": 1})
EXPECTED_CCC_DAY = people(1, **{"ref#x.example": 1, "cc#US": 1})
# The day's rollup across links (one item for the one shard): the batch's links and the warm-up's.
EXPECTED_LINKS = {"aaa": 4, "bbb": 2, "ccc": 1, "zzz": 1}
# Every call of the write path of BATCH in steady state, in order: each record claims its identity,
# then each item is updated. Claims and updates each run in parallel, so which one is "claim n" or
# "item update n" varies; each index still fails exactly one call.
# A first attempt asks which life the stream is in (its records arrived after the last answer; a
# retry's did not), then writes: claims, then items.
# Then, once every item is written, the day's rollup (the warm-up batch read the retention setting).
WRITE_PATH = ["stream life", "claim 1", "claim 2"] + [f"item update {n}" for n in range(1, 7)] + ["rollup update"]
WRITES = WRITE_PATH[1:]
LAST_ITEM = len(WRITE_PATH) - 2
# The retry, in the same container, of a batch that failed at its last item update (so before its
# rollup): it reads the claims, and the items and the rollup (strongly consistent BatchGetItem), and
# writes only the item that is missing, then the rollup.
RETRY_PATH = ["claims read", "items read", "the missing item's update", "the rollup's update"]


def assert_batch_counted_exactly(ddb):
    assert {short_id: counts(ddb, short_id) for short_id in EXPECTED_COUNTS} == EXPECTED_COUNTS
    assert counters_only(day_stats(ddb, "aaa")) == EXPECTED_AAA_DAY
    assert counters_only(day_stats(ddb, "bbb")) == EXPECTED_BBB_DAY
    assert counters_only(day_stats(ddb, "ccc")) == EXPECTED_CCC_DAY
    assert_rollup_exact(ddb)


def rollup_day(ddb):
    """The day across links, as the admin reads it: the region's rollup items merged (links by max)."""
    items = ddb.query(TableName=TABLE_NAME, KeyConditionExpression="pk = :pk", ConsistentRead=True,
                      ExpressionAttributeValues={":pk": {"S": f"{layout.ROLLUP_PK_PREFIX}{DAY}"}})["Items"]
    from boto3.dynamodb.types import TypeDeserializer

    plain = TypeDeserializer()
    day = stats_items.empty_day(DAY)
    for found in items:
        stats_items.merge(day, stats_items.part(DAY, {k: plain.deserialize(v) for k, v in found.items()}), links_by_max=True)
    return day


def assert_rollup_exact(ddb, links=None):
    """The rollup holds exactly what the stats items hold, summed, and every link's day total."""
    day = rollup_day(ddb)
    stats = [counters_only(day_stats(ddb, short_id)) for short_id in (links or EXPECTED_LINKS)]
    assert (day["clicks"], day["bots"]) == (sum(s.get("clicks", 0) for s in stats), sum(s.get("bots", 0) for s in stats))
    assert day["hours"] == {"12": day["clicks"]}
    summed = {}
    for s in stats:
        for name, value in s.items():
            if name.startswith(("dev#", "br#", "os#", "ref#", "cc#")):
                summed[name] = summed.get(name, 0) + value
    dimensions = {f"{prefix}{key}": value for prefix, field in stats_items.DIMENSIONS.items() for key, value in day[field].items()}
    assert dimensions == summed
    assert day["links"] == (links or EXPECTED_LINKS)


def assert_marks_at(pipeline, ddb, sequence):
    """Every item BATCH touched holds this shard's mark at `sequence` (the batch's last record)."""
    mark = mark_of(pipeline.kinesis)
    for short_id in ("aaa", "bbb", "ccc"):
        assert item(ddb, short_id, f"clicks#{REGION}")[mark] == layout.encode_sequence(sequence)


# ------------------------------------------------------------------ (a) a batch delivered twice


def test_a_batch_delivered_twice_counts_once(pipeline, ddb):
    pipeline.send(WARM_UP)
    sequences = pipeline.send(*BATCH)
    assert pipeline.results[-1]["records"] == 2
    before = table_state(ddb)
    again = pipeline.aggregator.lambda_handler(pipeline.event(set(sequences)), None)
    assert (again["applied"], again["already_applied"], again["dropped"], again["duplicate_records"]) == (0, 6, 0, 0)
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
    # Nothing read from the table, nor from the stream: only its life, then the writes.
    assert pipeline.faults.calls == ["DescribeStreamSummary"] + ["PutItem"] * 2 + ["UpdateItem"] * 7
    assert len(pipeline.faults.calls) == len(WRITE_PATH)


def test_the_retry_of_a_batch_that_failed_at_its_last_item_is_these_calls(pipeline, ddb):
    pipeline.send(WARM_UP)
    start = len(pipeline.faults.calls)
    pipeline.faults.fail_at = {start + LAST_ITEM}
    pipeline.send(*BATCH)
    # The failed attempt stopped before its rollup: the retry writes the missing item, then the rollup.
    assert pipeline.faults.calls[start + LAST_ITEM + 1:] == ["BatchGetItem", "BatchGetItem", "UpdateItem", "UpdateItem"]
    assert pipeline.results[-1]["retry"] is True
    assert (pipeline.results[-1]["applied"], pipeline.results[-1]["already_applied"]) == (1, 5)
    assert_batch_counted_exactly(ddb)


def test_the_retry_of_a_batch_that_failed_at_its_rollup_writes_only_the_rollup(pipeline, ddb):
    pipeline.send(WARM_UP)
    start = len(pipeline.faults.calls)
    pipeline.faults.fail_at = {start + len(WRITE_PATH) - 1}
    pipeline.send(*BATCH)
    assert pipeline.faults.calls[start + len(WRITE_PATH):] == ["BatchGetItem", "BatchGetItem", "UpdateItem"]
    assert (pipeline.results[-1]["applied"], pipeline.results[-1]["already_applied"]) == (0, 6)
    assert_batch_counted_exactly(ddb)


@pytest.mark.parametrize("step", range(len(WRITE_PATH)), ids=WRITE_PATH)
def test_a_batch_that_fails_part_way_is_retried_and_counted_exactly(pipeline, ddb, step):
    pipeline.send(WARM_UP)
    pipeline.faults.fail_at = {len(pipeline.faults.calls) + step}
    sequences = pipeline.send(*BATCH)

    assert pipeline.mapping.invocations == 1 + 2  # the warm-up, the failed attempt, the retry
    assert pipeline.mapping.discarded == 0
    assert_batch_counted_exactly(ddb)
    assert_marks_at(pipeline, ddb, sequences[-1])
    assert len(claims(ddb)) == 1 + 2  # the warm-up record and the batch's two, each claimed once
    # And once more for good measure: a late redelivery of the batch changes nothing.
    before = table_state(ddb)
    pipeline.aggregator.lambda_handler(pipeline.event(set(sequences)), None)
    assert table_state(ddb) == before


@pytest.mark.parametrize("step", range(len(RETRY_PATH)), ids=RETRY_PATH)
def test_a_retry_that_fails_again_part_way_still_counts_exactly(pipeline, ddb, step):
    # The first attempt writes every claim and every item but the last (and so no rollup); the retry
    # reads, writes the missing item and the rollup, and fails at `step`; the third attempt completes.
    pipeline.send(WARM_UP)
    start = len(pipeline.faults.calls)
    pipeline.faults.fail_at = {start + LAST_ITEM, start + LAST_ITEM + 1 + step}
    pipeline.send(*BATCH)

    assert pipeline.mapping.invocations == 1 + 3
    assert pipeline.mapping.discarded == 0
    assert_batch_counted_exactly(ddb)


def test_a_retry_in_another_container_counts_exactly_too(pipeline, ddb):
    # Lambda may run the retry in a container that never saw the failure: it has no memory that
    # the batch failed, so it claims and updates as a first attempt would, and the claims' owners
    # and the items' marks make what the failed attempt wrote count once.
    pipeline.send(WARM_UP)
    pipeline.faults.fail_when = lambda op, request: op == "UpdateItem" and request["Key"]["pk"]["S"] == "bbb"
    sequences = [pipeline.put(lines) for lines in BATCH]
    with pytest.raises(ClientError):
        pipeline.aggregator.lambda_handler(pipeline.event(set(sequences)), None)
    pipeline.faults.clear()
    pipeline.aggregator._failed.clear()  # the other container
    writes._full_items.clear()
    writes._sketches.clear()
    result = pipeline.aggregator.lambda_handler(pipeline.event(set(sequences)), None)
    assert (result["retry"], result["applied"], result["already_applied"], result["duplicate_records"]) == (False, 1, 5, 0)
    assert_batch_counted_exactly(ddb)


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


# ------------------------------------------------------------------ (c) an outage: retried until it succeeds


def _fail_attempts(pipeline, attempts, partly):
    """Fail the next `attempts` invocations: at every item write, or (partly) only at link bbb's."""
    until = pipeline.mapping.invocations + attempts

    def failing(op, request):
        if op != "UpdateItem" or pipeline.mapping.invocations > until:
            return False
        return not partly or request.get("Key", {}).get("pk", {}).get("S") in ("bbb", "stats#bbb")

    pipeline.faults.fail_when = failing


@pytest.mark.parametrize("partly", [False, True], ids=["nothing-applied", "partly-applied"])
def test_a_batch_that_fails_attempt_after_attempt_is_counted_once_when_it_succeeds(patient, ddb, partly):
    patient.send(WARM_UP)
    _fail_attempts(patient, 12, partly)
    batch_one = patient.send(*BATCH)
    assert patient.mapping.invocations == 1 + 12 + 1
    assert patient.mapping.discarded == 0 and patient.failures() == []  # nothing skipped, nothing on the queue
    assert_batch_counted_exactly(ddb)
    assert_marks_at(patient, ddb, batch_one[-1])

    patient.send([click("bbb"), click("ddd")])
    assert patient.results[-1]["records"] == 1  # only its own record: nothing is read back
    assert counts(ddb, "bbb") == (3, 0)
    assert counts(ddb, "ddd") == (1, 0)
    assert counts(ddb, "aaa") == EXPECTED_COUNTS["aaa"]
    assert counters_only(day_stats(ddb, "aaa")) == EXPECTED_AAA_DAY

    # A stale redelivery of batch one afterwards changes nothing.
    before = table_state(ddb)
    stale = patient.aggregator.lambda_handler(patient.event(set(batch_one)), None)
    assert (stale["applied"], stale["duplicate_records"]) == (0, 0)
    assert table_state(ddb) == before


def test_batches_held_back_by_an_outage_are_all_counted_in_order(aws, ddb):
    pipeline = make_pipeline(aws, batch_size=1, max_retries=RETRIES_UNTIL_SUCCESS)
    pipeline.send([click("aaa")])
    _fail_attempts(pipeline, 8, partly=False)
    pipeline.send([click("aaa")], [click("aaa", ua=BOT)], [click("bbb")])
    assert pipeline.mapping.discarded == 0
    assert [r["records"] for r in pipeline.results] == [1, 1, 1, 1]
    assert counts(ddb, "aaa") == (2, 1)
    assert counts(ddb, "bbb") == (1, 0)
    # No stream read on any attempt: only the stream's life, asked for records newer than its last answer.
    # (And the retention setting, once: it is cached for minutes.)
    others = [call for call in pipeline.faults.calls if call not in ("PutItem", "UpdateItem", "BatchGetItem")]
    assert set(others) == {"DescribeStreamSummary", "GetItem"} and others.count("GetItem") == 1
    assert_rollup_exact(ddb, {"aaa": 2, "bbb": 1})


# ------------------------------------------------------------------ (d) a range the mapping discarded, and replay-dlq
# Only with finite retries (an operator's setting, here the stand-in's two) or past the stream's
# retention does the mapping discard a range. replay-dlq then accounts for it: still on the stream,
# it is reported skipped (never applied: its failed attempts may have reached some items); gone,
# lost. Either way the aggregator writes nothing.


def replay_from_queue(pipeline):
    """`make replay-dlq --local`: deploy/replay_dlq.py sends each queue message to the aggregator, in process."""
    from deploy import replay_dlq

    outcome = replay_dlq.replay(pipeline.queue_url, replay_dlq.call_in_process(), sqs=pipeline.sqs, wait_seconds=0)
    assert outcome.unreadable == 0
    return outcome


@pytest.fixture
def no_read_pause(monkeypatch):
    """No pause between the GetRecords calls of an account (the shard's read limit is not what is tested here)."""
    from aggregator import stream

    monkeypatch.setattr(stream, "READ_PAUSE_SECONDS", 0)


def _fail_every_attempt(pipeline, partly):
    """Make every attempt at the next batch fail: at every item write, or (partly) only at link bbb's."""
    _fail_attempts(pipeline, float("inf"), partly)


def emitted_metrics(capsys):
    """The embedded-metric lines printed so far, as dicts."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]


@pytest.mark.parametrize("partly", [False, True], ids=["nothing-applied", "partly-applied"])
def test_a_discarded_range_still_on_the_stream_is_reported_skipped_and_applied_by_nobody(pipeline, ddb, no_read_pause,
                                                                                       capsys, partly):
    pipeline.send(WARM_UP)
    _fail_every_attempt(pipeline, partly)
    batch_one = pipeline.send(*BATCH)
    assert pipeline.mapping.discarded == 1  # finite retries: the mapping gave up and moved on
    [failure] = pipeline.failures()
    info = failure["KinesisBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"]) == (SHARD, batch_one[0], batch_one[-1])
    pipeline.faults.clear()
    before = table_state(ddb)
    capsys.readouterr()

    outcome = replay_from_queue(pipeline)
    assert (outcome.ok, outcome.accounted, outcome.skipped, outcome.lost) == (True, 1, 2, 0)
    assert pipeline.failures() == []
    assert table_state(ddb) == before
    [metric] = emitted_metrics(capsys)
    assert (metric["RecordsSkipped"], metric["RecordsLost"]) == (2, 0)
    # And the next batch counts only its own clicks: nothing is read back.
    pipeline.send([click("bbb"), click("ddd")])
    assert pipeline.results[-1]["records"] == 1
    assert counts(ddb, "bbb") == (1, 0) and counts(ddb, "ddd") == (1, 0)


ACCOUNT_PATH = ["stream summary: its life", "shard iterator", "records", "records: caught up"]


def test_an_account_is_these_calls(pipeline, ddb, no_read_pause):
    pipeline.send(WARM_UP)
    _fail_every_attempt(pipeline, partly=False)
    pipeline.send(*BATCH)
    pipeline.faults.clear()
    pipeline.faults.calls.clear()
    replay_from_queue(pipeline)
    # The stream asked afresh (a range of an earlier life is gone), then read: no table call at all.
    assert pipeline.faults.calls == ["DescribeStreamSummary", "GetShardIterator", "GetRecords", "GetRecords"]
    assert len(pipeline.faults.calls) == len(ACCOUNT_PATH)


@pytest.mark.parametrize("step", range(len(ACCOUNT_PATH)), ids=ACCOUNT_PATH)
def test_an_account_that_fails_part_way_leaves_the_message_and_reports_once(pipeline, ddb, no_read_pause, monkeypatch,
                                                                           capsys, step):
    from deploy import replay_dlq

    monkeypatch.setattr(replay_dlq, "VISIBILITY_TIMEOUT_SECONDS", 0)  # the message is back at once
    pipeline.send(WARM_UP)
    _fail_every_attempt(pipeline, partly=False)
    pipeline.send(*BATCH)
    pipeline.faults.clear()
    pipeline.faults.fail_at = {len(pipeline.faults.calls) + step}
    capsys.readouterr()
    failed = replay_from_queue(pipeline)
    assert (failed.failed, failed.accounted) == (1, 0)  # left in the queue
    again = replay_from_queue(pipeline)
    assert (again.ok, again.accounted, again.skipped) == (True, 1, 2)
    assert len(emitted_metrics(capsys)) == 1  # the failed attempt reported nothing
    assert pipeline.failures() == []


# ------------------------------------------------------------------ (e) a flood of junk on one link


def _junk_host(n):
    """A distinct, valid host name as long as a referrer key may be (clicks.REFERRER_KEY_MAX; longer ones count
    under "(other)")."""
    head = f"j{n:05d}"
    return f"{head}{'a' * (clicks.REFERRER_KEY_MAX - len(head) - len('.example'))}.example"


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
        name: value * calm["calm2"] for name, value in people(phones=1, **{"ref#news.example.com": 1, "cc#SE": 1}).items()
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


def test_one_poison_line_does_not_stop_the_shard(patient, ddb):
    # A line that is JSON nested 100,000 deep: json raises RecursionError, which is not a ValueError.
    # A batch that raised on it would raise on every attempt, and the mapping retries until the
    # batch succeeds: the shard would count nothing more until the record left the stream.
    poison = '{"type":"click","id":"aaa","x":' + "[" * 100_000 + "]" * 100_000 + "}"
    patient.send([click("zzz")])
    patient.send([click("aaa"), poison, click("bbb")])
    patient.send([click("aaa")])
    assert counts(ddb, "aaa") == (2, 0)
    assert counts(ddb, "bbb") == (1, 0)
    assert (patient.mapping.invocations, patient.mapping.discarded) == (3, 0)


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
    assert counters_only(day_stats(ddb, "aaa")) == people(1, **{"ref#news.example.com": 1, "cc#DE": 1})
    assert counts(ddb, "bbb") == EXPECTED_COUNTS["bbb"]
    assert counters_only(day_stats(ddb, "bbb")) == EXPECTED_BBB_DAY
    assert counts(ddb, "ccc") == EXPECTED_COUNTS["ccc"]
    assert_marks_at(pipeline, ddb, sequences[-1])
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

LOST_FAULTS = [ReadTimeoutError, pytest.param(ConnectionClosedError, marks=pytest.mark.exhaustive)]


def _lose(pipeline, steps, fault=ReadTimeoutError):
    """Let the calls at these steps (counted from the next call) land, and lose their answers."""
    start = len(pipeline.faults.calls)
    pipeline.faults.lose_responses(fault).fail_at = {start + step for step in steps}
    return start


@pytest.mark.parametrize("fault", LOST_FAULTS, ids=["read-timeout", "connection-closed"])
@pytest.mark.parametrize("step", range(1, len(WRITE_PATH)), ids=WRITES)
def test_a_write_whose_response_is_lost_is_counted_once_on_the_retry(pipeline, ddb, step, fault):
    pipeline.send(WARM_UP)
    start = _lose(pipeline, [step], fault)
    sequences = pipeline.send(*BATCH)

    assert pipeline.faults.lost_calls == [start + step]  # it was sent and applied, and its answer lost
    assert pipeline.faults.calls[start + step] in ("PutItem", "UpdateItem")
    assert pipeline.mapping.invocations == 1 + 2  # the warm-up, the attempt that lost an answer, the retry
    assert pipeline.mapping.discarded == 0
    assert pipeline.results[-1]["duplicate_records"] == 0  # a claim whose answer was lost is still its own
    assert_batch_counted_exactly(ddb)
    assert_marks_at(pipeline, ddb, sequences[-1])


def test_every_write_of_a_batch_landing_with_its_answer_lost_on_every_attempt_counts_once(patient, ddb):
    pipeline = patient
    pipeline.send(WARM_UP)
    pipeline.faults.lose_responses().fail_when = lambda op, request: op in ("PutItem", "UpdateItem")
    start = len(pipeline.faults.calls)
    pipeline.send(*BATCH)
    # Attempt 1: both claims land and lose their answers, so no item is updated. Attempt 2 (a retry
    # here): reads the claims (its own), writes the six items, which land and lose their answers.
    # Attempt 3: reads the claims, the items and the rollup, writes the rollup, which loses its answer.
    # Attempt 4: reads them all, and has nothing left to write.
    assert pipeline.faults.calls[start:] == (
        ["DescribeStreamSummary"] + ["PutItem"] * 2 + ["BatchGetItem"] * 2 + ["UpdateItem"] * 6
        + ["BatchGetItem"] * 2 + ["UpdateItem"] + ["BatchGetItem"] * 2
    )
    assert len(pipeline.faults.lost_calls) == 2 + 6 + 1
    assert (pipeline.mapping.invocations, pipeline.mapping.discarded) == (1 + 4, 0)
    assert_batch_counted_exactly(ddb)


def test_a_batch_whose_item_answers_are_lost_is_done_by_a_retry_that_writes_nothing(pipeline, ddb):
    pipeline.send(WARM_UP)
    pipeline.faults.lose_responses().fail_when = lambda op, request: op == "UpdateItem"
    start = len(pipeline.faults.calls)
    pipeline.send(*BATCH)
    # Every item update landed and lost its answer (so no rollup was written); the retry reads the
    # claims and the items, finds every item at its mark, and writes only the rollup, which lands and
    # loses its answer too; the third attempt reads the rollup at its mark and writes nothing (not
    # even a failed conditional write).
    assert len(pipeline.faults.lost_calls) == 6 + 1
    assert pipeline.faults.calls[start + len(WRITE_PATH) - 1:] == ["BatchGetItem"] * 2 + ["UpdateItem"] + ["BatchGetItem"] * 2
    assert (pipeline.mapping.invocations, pipeline.mapping.discarded) == (1 + 3, 0)
    assert (pipeline.results[-1]["applied"], pipeline.results[-1]["already_applied"]) == (0, 6)
    assert_batch_counted_exactly(ddb)


# The retry of a batch whose first attempt lost the answer of its first claim: both claims are
# written, no item is. The retry reads the claims (its own) and the items (none), and updates all six.
RETRY_AFTER_A_LOST_CLAIM = ["claims read", "items read"] + [f"item update {n}" for n in range(1, 7)] + ["rollup update"]
RETRY_WRITES = [step for step, name in enumerate(RETRY_AFTER_A_LOST_CLAIM) if "read" not in name]


@pytest.mark.exhaustive  # a matrix: in make test; the fast lane keeps the single-step cases above
@pytest.mark.parametrize("step", RETRY_WRITES, ids=[RETRY_AFTER_A_LOST_CLAIM[s] for s in RETRY_WRITES])
def test_a_retry_that_loses_an_answer_again_still_counts_once(pipeline, ddb, step):
    # The first attempt loses its first claim's answer; the retry loses the answer of `step`; the
    # third attempt reads what the retry wrote and completes.
    pipeline.send(WARM_UP)
    retry_start = len(pipeline.faults.calls) + 3  # after the stream life and the two claims
    start = _lose(pipeline, [1, 3 + step])
    sequences = pipeline.send(*BATCH)

    retry = pipeline.faults.calls[retry_start:retry_start + len(RETRY_AFTER_A_LOST_CLAIM)]
    # The retry's path, as RETRY_AFTER_A_LOST_CLAIM says (a lost item answer fails it before its rollup).
    assert retry[:8] == ["BatchGetItem"] * 2 + ["UpdateItem"] * 6
    assert pipeline.faults.lost_calls == [start + 1, start + 3 + step]
    assert pipeline.mapping.invocations == 1 + 3
    assert pipeline.mapping.discarded == 0
    assert_batch_counted_exactly(ddb)
    assert_marks_at(pipeline, ddb, sequences[-1])


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
    # itself sends the same request again. The resent claim must find itself the owner, and the
    # resent update its own mark, so that nothing is added twice and the batch does not fail.
    pipeline.send(WARM_UP)
    outage = Outage(monkeypatch, pipeline.aggregator._dynamodb, operations={"PutItem", "UpdateItem"}, lost=True)
    outage.kind, outage.first_sends = "read-timeout", True  # each write's first send lands, and its answer is lost
    try:
        sequences = pipeline.send(*BATCH)
    finally:
        outage.end()
    assert outage.failed_sends == 9 and len(outage.sleeps) == 9  # two claims, six items and the rollup, each resent once
    assert pipeline.mapping.invocations == 1 + 1  # botocore's resends absorbed every lost answer
    result = pipeline.results[-1]
    assert (result["applied"], result["already_applied"], result["duplicate_records"]) == (0, 6, 0)
    assert_batch_counted_exactly(ddb)
    assert_marks_at(pipeline, ddb, sequences[-1])


# ------------------------------------------------------------------ shards


def test_each_shard_keeps_its_own_marks(aws, ddb):
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
    assert marks == {mark_of(pipeline.kinesis, s["ShardId"]) for s in shards}
    # Redelivering each shard's batches changes nothing.
    before = table_state(ddb)
    for shard in shards:
        records = pipeline.kinesis.get_records(ShardIterator=pipeline.kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"])["Records"]
        pipeline.aggregator.lambda_handler(pipeline.event({r["SequenceNumber"] for r in records}, shard["ShardId"]), None)
    assert table_state(ddb) == before
    assert_rollup_exact(ddb, {"aaa": 4})  # one rollup item per shard: the link's total is the larger


# ------------------------------------------------------------------ visitors (issue 18), through every failure


def hashed(n):
    """Visitor n's 8-byte hash: uniformly spread, as the redirect's keyed BLAKE2b makes them."""
    import hashlib

    return hashlib.blake2b(str(n).encode(), digest_size=8).digest()


def visitor_click(short_id, visitor, ua=HUMAN):
    return json.dumps({"type": "click", "id": short_id, "ua": ua, "v": hashed(visitor).hex()}, separators=(",", ":"))


# Link "hot" gets more visitors than an exact set holds (so a sketch, written read-modify-write),
# link "few" a handful; both bring visitors already counted by the warm-up.
VISITOR_WARM_UP = [visitor_click("hot", n) for n in range(60)] + [visitor_click("few", n) for n in range(3)]
VISITOR_BATCH = [
    [visitor_click("hot", n) for n in range(40, 140)] + [visitor_click("few", n) for n in range(2, 5)],
    [visitor_click("hot", n) for n in range(130, 170)] + [visitor_click("few", 1, ua=BOT)],
]
# The item calls include the folds of "hot" and of the rollup into their sketch items (a failed condition,
# the sketch's read, its write, then the update that deletes the folded hashes): a failure at any of them.
VISITOR_WRITE_PATH = ["stream life", "claim 1", "claim 2"] + [f"item call {n}" for n in range(1, 8)] + [
    f"rollup call {n}" for n in range(1, 4)]


def visitors_of(ddb, pk, sk):
    from uniques import sketch

    key = {"pk": {"S": pk}, "sk": {"S": sk}}
    raw = ddb.get_item(TableName=TABLE_NAME, Key=key, ConsistentRead=True)["Item"]
    # The sketch is an item of its own next to the counted one; readers count the union of both.
    kept = ddb.get_item(TableName=TABLE_NAME, Key=layout.sketch_key(key), ConsistentRead=True).get("Item", {})
    exact = {bytes(h) for h in raw.get(layout.VISITOR_SET, {}).get("BS", [])}
    blob = kept.get(layout.VISITOR_SKETCH, {}).get("B")
    assert layout.VISITOR_SKETCH not in raw and len(exact) <= sketch.EXACT_MAX
    return sketch.count([(exact, bytes(blob) if blob is not None else None)])


def expected_visitors(values):
    from uniques import sketch

    hashes = {hashed(value) for value in values}
    if len(hashes) <= sketch.EXACT_MAX:
        return len(hashes)
    return sketch.count([(None, sketch.encode(sketch.add(sketch.new_registers(), hashes)))])


def assert_visitors_exact(ddb):
    assert visitors_of(ddb, "stats#hot", f"day#{DAY}#{REGION}") == expected_visitors(range(170))
    assert visitors_of(ddb, "stats#few", f"day#{DAY}#{REGION}") == 5  # the bot's hash is not a visitor
    assert rollup_day(ddb)["links"] == {"hot": 60 + 100 + 40, "few": 3 + 3}
    assert stats_items.visitors(rollup_day(ddb)) == expected_visitors(range(170))
    assert_rollup_exact(ddb, {"hot": 200, "few": 6})


@pytest.mark.parametrize("lost", [False, True], ids=["failed", "answer-lost"])
@pytest.mark.parametrize("step", range(len(VISITOR_WRITE_PATH)), ids=VISITOR_WRITE_PATH)
def test_visitors_and_rollups_stay_exact_when_a_batch_fails_part_way(patient, ddb, step, lost):
    patient.send(VISITOR_WARM_UP)
    start = len(patient.faults.calls)
    if lost and step:
        patient.faults.lose_responses()
    patient.faults.fail_at = {start + step}
    sequences = patient.send(*VISITOR_BATCH)
    assert patient.mapping.discarded == 0 and patient.mapping.invocations >= 1 + 2
    assert_visitors_exact(ddb)
    # A late redelivery, and a replay of the whole history in another container, change nothing.
    before = table_state(ddb)
    patient.aggregator.lambda_handler(patient.event(set(sequences)), None)
    writes._full_items.clear()
    writes._sketches.clear()
    patient.aggregator._failed.clear()
    iterator = patient.kinesis.get_shard_iterator(StreamName=STREAM, ShardId=SHARD, ShardIteratorType="TRIM_HORIZON")
    history = {r["SequenceNumber"] for r in patient.kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]}
    patient.aggregator.lambda_handler(patient.event(history), None)
    assert table_state(ddb) == before
    assert_visitors_exact(ddb)
