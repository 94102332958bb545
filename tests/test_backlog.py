"""A backlog batch bigger than one call can apply: whole chunks, a partial batch response, exact counts."""
import time

import pytest


from tests.test_aggregator import (  # noqa: F401 - kinesis and aggregator are fixtures
    aggregator, counter, event_for, kinesis, line, put,
)

LINKS = 100


class Budget:
    """A Lambda context whose remaining time runs out after `seconds` of wall time."""

    def __init__(self, seconds):
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self):
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def test_a_backlog_bigger_than_one_call_drains_exactly(aggregator, kinesis, ddb, monkeypatch, record_figure):
    monkeypatch.setattr(aggregator, "CHUNK_CLICKS", 1_500)
    monkeypatch.setattr(aggregator, "MIN_SECONDS_LEFT", 0.5)
    records, per_record = 200, 100
    sequences = [
        put(kinesis, [line(f"link{(r * per_record + i) % LINKS:03d}") for i in range(per_record)])
        for r in range(records)
    ]
    pending, calls, started = list(sequences), 0, time.monotonic()
    while pending:
        calls += 1
        assert calls <= 100 and time.monotonic() - started < 240, "the backlog never drained"
        # Each call gets about the time one chunk takes, so no call can apply the whole batch.
        result = aggregator.lambda_handler(event_for(kinesis, pending), Budget(seconds=1.5))
        failures = result["batchItemFailures"]
        assert result["records"] > 0, "a call applied nothing: the shard would stall"
        # The mapping goes on from the first record not applied (the partial batch response).
        pending = pending[pending.index(failures[0]["itemIdentifier"]):] if failures else []
        assert not failures or failures[0]["itemIdentifier"] == sequences[len(sequences) - len(pending)]
    assert calls > 1, "one call applied the whole backlog: the test did not reach the chunked path"
    totals = [counter(ddb, f"link{i:03d}").get("clicks", 0) for i in range(LINKS)]
    assert totals == [records * per_record // LINKS] * LINKS
    record_figure("exactly_once.largest_backlog_clicks", records * per_record, basis="counted")
    record_figure("exactly_once.largest_backlog_calls", calls, basis="counted")


def test_a_call_always_applies_its_first_chunk_however_little_time_is_left(aggregator, kinesis, ddb, monkeypatch):
    monkeypatch.setattr(aggregator, "CHUNK_CLICKS", 2)
    sequences = [put(kinesis, [line("abc1234"), line("abc1234")]) for _ in range(3)]
    result = aggregator.lambda_handler(event_for(kinesis, sequences), Budget(seconds=0))
    assert result["records"] == 1 and result["batchItemFailures"] == [{"itemIdentifier": sequences[1]}]
    assert counter(ddb, "abc1234")["clicks"] == 2


@pytest.mark.parametrize("context", [None, Budget(seconds=600)])
def test_with_time_enough_the_whole_batch_is_applied(aggregator, kinesis, ddb, context):
    sequences = [put(kinesis, [line("abc1234")]) for _ in range(5)]
    result = aggregator.lambda_handler(event_for(kinesis, sequences), context)
    assert result["batchItemFailures"] == [] and result["records"] == 5
    assert counter(ddb, "abc1234")["clicks"] == 5
