"""The click aggregator: decoding, bots, grouping, exactly-once batches, and failures that raise."""
import importlib
import json

import pytest
from botocore.exceptions import ClientError

from local_stack.log_subscription import encode_batch
from tests.conftest import TABLE_NAME

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


@pytest.fixture
def aggregator(ddb, monkeypatch):
    """The handler module, imported after moto started (its client is built at import time)."""
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    return importlib.import_module("aggregator.handler")


def put_link(ddb, short_id):
    ddb.put_item(
        TableName=TABLE_NAME,
        Item={
            "pk": {"S": short_id},
            "sk": {"S": "link"},
            "url": {"S": "https://example.com"},
            "is_active": {"BOOL": True},
            "click_count": {"N": "0"},
            "bot_count": {"N": "0"},
        },
    )


def click(short_id, ua=HUMAN, ts="2026-11-27T10:00:00Z", ref="news.example.com", cc="DE", kind="click"):
    return json.dumps({"type": kind, "id": short_id, "ts": ts, "ref": ref, "ua": ua, "cc": cc, "Status": "302"})


def get(ddb, short_id, day=None):
    """A link item, or its stats item for one day."""
    key = {"pk": {"S": f"stats#{short_id}"}, "sk": {"S": f"day#{day}"}} if day else {"pk": {"S": short_id}, "sk": {"S": "link"}}
    item = ddb.get_item(TableName=TABLE_NAME, Key=key).get("Item", {})
    return {k: (int(v["N"]) if "N" in v else next(iter(v.values()))) for k, v in item.items()}


@pytest.mark.parametrize("agent", PREVIEW_FETCHERS)
def test_link_preview_fetchers_count_as_bots(agent):
    from aggregator.bots import classify_device

    assert classify_device(agent) == "bot"


@pytest.mark.parametrize(
    ("agent", "device"),
    [(HUMAN, "desktop"), (PHONE, "mobile"), ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)", "tablet"), ("", "bot")],
)
def test_device_classes(agent, device):
    from aggregator.bots import classify_device

    assert classify_device(agent) == device


def test_humans_and_bots_are_counted_apart(aggregator, ddb):
    put_link(ddb, "abc1234")
    lines = [click("abc1234"), click("abc1234", ua=PHONE), click("abc1234", ua="Twitterbot/1.0")]
    result = aggregator.lambda_handler(encode_batch(lines), None)
    assert result["clicks"] == 3
    link = get(ddb, "abc1234")
    assert (link["click_count"], link["bot_count"]) == (2, 1)
    assert link["last_clicked_at"] == "2026-11-27T10:00:00Z"


def test_one_write_per_link_per_batch_with_daily_stats(aggregator, ddb, monkeypatch):
    put_link(ddb, "aaa1111")
    put_link(ddb, "bbb2222")
    lines = [click("aaa1111", ts=f"2026-11-27T10:00:0{i}Z") for i in range(5)]
    lines += [click("bbb2222", ref="mail.example.org", cc="fr", ua=PHONE) for _ in range(3)]
    lines += [click("bbb2222", ts="2026-11-28T00:00:01Z", ref=None, cc=None)]
    transactions = []
    real = aggregator._client.transact_write_items
    monkeypatch.setattr(
        aggregator._client, "transact_write_items", lambda **kw: (transactions.append(kw), real(**kw))[1]
    )
    aggregator.lambda_handler(encode_batch(lines), None)

    [transaction] = transactions
    keys = [next(iter(action.values()))["Key"] for action in transaction["TransactItems"][:-1]]
    # One update per link, one per link-day, nothing per click.
    assert [(k["pk"]["S"], k["sk"]["S"]) for k in keys] == [
        ("aaa1111", "link"),
        ("stats#aaa1111", "day#2026-11-27"),
        ("bbb2222", "link"),
        ("stats#bbb2222", "day#2026-11-27"),
        ("stats#bbb2222", "day#2026-11-28"),
    ]
    assert get(ddb, "aaa1111")["click_count"] == 5
    assert get(ddb, "aaa1111")["last_clicked_at"] == "2026-11-27T10:00:04Z"
    assert get(ddb, "bbb2222")["click_count"] == 4
    day = get(ddb, "bbb2222", "2026-11-27")
    assert day["clicks"] == 3
    assert day["ref#mail.example.org"] == 3
    assert day["cc#FR"] == 3
    assert day["dev#mobile"] == 3
    assert get(ddb, "bbb2222", "2026-11-28")["dev#desktop"] == 1


def test_a_redelivered_batch_is_counted_once(aggregator, ddb):
    put_link(ddb, "abc1234")
    batch = encode_batch([click("abc1234") for _ in range(4)])
    first = aggregator.lambda_handler(batch, None)
    again = aggregator.lambda_handler(batch, None)
    assert (first["transactions"], first["skipped"]) == (1, 0)
    assert (again["transactions"], again["skipped"]) == (0, 1)
    assert get(ddb, "abc1234")["click_count"] == 4
    assert get(ddb, "abc1234", "2026-11-27")["clicks"] == 4


def test_a_different_batch_with_the_same_lines_still_counts(aggregator, ddb):
    put_link(ddb, "abc1234")
    aggregator.lambda_handler(encode_batch([click("abc1234")], first_id=0), None)
    aggregator.lambda_handler(encode_batch([click("abc1234")], first_id=1), None)
    assert get(ddb, "abc1234")["click_count"] == 2


def test_batches_larger_than_one_transaction_are_split_and_still_exactly_once(aggregator, ddb):
    ids = [f"link{i:03d}" for i in range(120)]  # 240 updates -> 3 transactions
    for short_id in ids:
        put_link(ddb, short_id)
    batch = encode_batch([click(short_id) for short_id in ids])
    assert aggregator.lambda_handler(batch, None)["transactions"] == 3
    assert aggregator.lambda_handler(batch, None)["skipped"] == 3
    assert {get(ddb, short_id)["click_count"] for short_id in ids} == {1}


def test_partial_failure_then_redelivery_completes_without_double_counting(aggregator, ddb, monkeypatch):
    ids = [f"link{i:03d}" for i in range(60)]  # 120 updates -> 2 transactions
    for short_id in ids:
        put_link(ddb, short_id)
    batch = encode_batch([click(short_id) for short_id in ids])
    real = aggregator._client.transact_write_items
    calls = []

    def fail_second(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "TransactWriteItems")
        return real(**kwargs)

    monkeypatch.setattr(aggregator._client, "transact_write_items", fail_second)
    with pytest.raises(ClientError):
        aggregator.lambda_handler(batch, None)
    monkeypatch.setattr(aggregator._client, "transact_write_items", real)
    result = aggregator.lambda_handler(batch, None)  # CloudWatch/Lambda retry
    assert (result["transactions"], result["skipped"]) == (1, 1)
    assert {get(ddb, short_id)["click_count"] for short_id in ids} == {1}


def test_a_failing_batch_raises_so_the_failure_destination_keeps_it(aggregator, ddb, monkeypatch):
    def throttled(**_):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "TransactWriteItems")

    monkeypatch.setattr(aggregator._client, "transact_write_items", throttled)
    with pytest.raises(ClientError):
        aggregator.lambda_handler(encode_batch([click("abc1234")]), None)


def test_a_cancelled_transaction_for_another_reason_raises(aggregator, ddb, monkeypatch):
    error = aggregator._client.exceptions.TransactionCanceledException(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}],
        },
        "TransactWriteItems",
    )

    def cancelled(**_):
        raise error

    monkeypatch.setattr(aggregator._client, "transact_write_items", cancelled)
    with pytest.raises(aggregator._client.exceptions.TransactionCanceledException):
        aggregator.lambda_handler(encode_batch([click("abc1234")]), None)


def test_lines_that_are_not_clicks_are_dropped(aggregator, ddb):
    put_link(ddb, "abc1234")
    lines = [
        "START RequestId: 1 Version: $LATEST",
        "not json {",
        json.dumps(["a", "list"]),
        click("abc1234", kind="request"),  # a 404, 410 or HEAD
        json.dumps({"type": "click"}),  # no id
        click("abc1234"),
        "REPORT RequestId: 1 Duration: 1.2 ms",
    ]
    assert aggregator.lambda_handler(encode_batch(lines), None)["clicks"] == 1
    assert get(ddb, "abc1234")["click_count"] == 1


def test_control_messages_are_ignored(aggregator, ddb):
    import base64
    import gzip

    payload = {"messageType": "CONTROL_MESSAGE", "logEvents": [{"id": "1", "timestamp": 0, "message": "CWL CONTROL"}]}
    event = {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}
    assert aggregator.lambda_handler(event, None) == {"clicks": 0, "transactions": 0, "skipped": 0}


def test_many_distinct_referrers_are_capped_per_update(aggregator, ddb):
    put_link(ddb, "abc1234")
    lines = [click("abc1234", ref=f"site{i}.example.com") for i in range(50)]
    aggregator.lambda_handler(encode_batch(lines), None)
    day = get(ddb, "abc1234", "2026-11-27")
    referrers = {k: v for k, v in day.items() if k.startswith("ref#")}
    assert len(referrers) == aggregator.MAX_KEYS_PER_DIMENSION
    assert sum(referrers.values()) == 50
    assert referrers["ref#(other)"] == 50 - (aggregator.MAX_KEYS_PER_DIMENSION - 1)
