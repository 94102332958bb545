"""tests/support/faults.py: an injected fault fails a call before it is sent, or after it landed (a lost answer)."""
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from tests.conftest import TABLE_NAME
from tests.support.faults import Faults, Outage

KEY = {"pk": {"S": "probe"}, "sk": {"S": "clicks#us-east-1"}}


def add_one(ddb):
    """An unconditional ADD: applied twice, it shows 2."""
    return ddb.update_item(TableName=TABLE_NAME, Key=KEY, UpdateExpression="ADD clicks :one",
                           ExpressionAttributeValues={":one": {"N": "1"}})


def clicks(ddb):
    item = ddb.get_item(TableName=TABLE_NAME, Key=KEY, ConsistentRead=True).get("Item")
    return int(item["clicks"]["N"]) if item else 0


def test_a_call_failed_before_it_is_sent_writes_nothing(ddb):
    faults = Faults(ddb)
    faults.fail_at = {0}
    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        add_one(ddb)
    assert (clicks(ddb), faults.calls, faults.lost_calls) == (0, ["UpdateItem", "GetItem"], [])


@pytest.mark.parametrize("fault", [ReadTimeoutError, ConnectionClosedError], ids=["read-timeout", "connection-closed"])
def test_a_call_whose_answer_is_lost_was_applied(ddb, fault):
    faults = Faults(ddb).lose_responses(fault)
    faults.fail_when = lambda operation, request: operation == "UpdateItem" and request["Key"] == KEY
    with pytest.raises(fault):
        add_one(ddb)
    assert (faults.lost_calls, clicks(ddb)) == ([0], 1)
    faults.clear()
    add_one(ddb)
    assert clicks(ddb) == 2


def test_an_outage_answer_never_reaches_the_table(ddb, monkeypatch):
    outage = Outage(monkeypatch, ddb, operations={"UpdateItem"})
    outage.kind = "throttled"
    try:
        with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
            add_one(ddb)
        assert clicks(ddb) == 0  # GetItem is not in the outage
        assert outage.failed_sends >= 2 and len(outage.sleeps) == outage.failed_sends - 1  # botocore retried
    finally:
        outage.end()
    add_one(ddb)
    assert clicks(ddb) == 1  # moto answers again


def test_a_lost_answer_at_the_http_layer_is_applied_and_sent_again_by_botocore(ddb, monkeypatch):
    outage = Outage(monkeypatch, ddb, operations={"UpdateItem"}, lost=True)
    outage.kind, outage.first_sends = "read-timeout", True
    try:
        add_one(ddb)  # the caller sees success: botocore's retry got the answer
    finally:
        outage.end()
    assert outage.failed_sends == 1
    assert clicks(ddb) == 2  # an unguarded write applied twice: why the aggregator's writes carry a mark
