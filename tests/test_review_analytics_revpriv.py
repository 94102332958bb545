"""Outside review of issue 18's unique visitors (revpriv): who can reach a salt, and where one could leak."""
import pytest
from botocore.exceptions import ClientError
from tests.test_deployer_policy import ACCOUNT, OPERATOR, STAGE, ZAPPA_SETTINGS, allows, policy
from deploy import deployer_policy

_SALTS = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/links-prod-SaltsTable-9Z8Y7X6W5V4U"
_LINKS = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/links-prod-LinksTable-1A2B3C4D5E6F"


def test_the_operator_cannot_read_or_replace_a_salt():
    """The README says only the redirect, the salt function and the account's administrators can read a salt.

    The operator's laptop policy (flask create-user, make replay-dlq) named the links table as
    table/<stack>-*, which is also the salts' generated table/<stack>-SaltsTable-*: an operator could
    GetItem today's salt (and recompute every hash of the day) or PutItem a salt of their choosing.
    """
    for action in ("dynamodb:GetItem", "dynamodb:PutItem"):
        assert allows(OPERATOR, action, _LINKS), action
        assert not allows(OPERATOR, action, _SALTS), action


def test_an_operator_of_an_adopted_links_table_is_granted_that_table_by_name():
    stage = {**STAGE, "parameters": {**STAGE["parameters"], "ExistingTableName": "links-restored"}}
    operator = deployer_policy.render(policy("operator"), deployer_policy.values(stage, ACCOUNT, ZAPPA_SETTINGS))
    assert allows(operator, "dynamodb:GetItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/links-restored")
    assert not allows(operator, "dynamodb:GetItem", _SALTS)


# The salts' own lifetime edges (aggregator/salts.py).

from aggregator import salts  # noqa: E402
from tests.conftest import SALT_TABLE_NAME  # noqa: E402
from tests.test_salts import at, stored  # noqa: E402


def test_tomorrows_salt_made_at_exactly_noon_is_kept_by_a_run_at_the_same_second(ddb, salts_table):
    """The create and keep rules meet at one instant: a second run then must neither delete nor remake it."""
    noon = at("2026-11-27T12:00:00")
    salts.rotate(ddb, SALT_TABLE_NAME, noon)
    first = stored(ddb)
    assert sorted(first) == ["2026-11-27", "2026-11-28"]
    result = salts.rotate(ddb, SALT_TABLE_NAME, noon)
    assert result["deleted"] == [] and result["created"] == []
    assert stored(ddb) == first


def test_botocores_debug_log_would_print_the_salt_so_no_function_that_touches_one_logs_at_debug(ddb, salts_table, caplog):
    """botocore logs each request's body and each answer's at DEBUG: the put salt, the read one.

    Lambda's JSON log format filters application logs by ApplicationLogLevel (INFO when unset), and
    the Python runtime sets the root logger to it: DEBUG or TRACE there would print every salt into
    the log group, which outlives the salt by LogRetentionDays.
    """
    import base64
    import logging

    from local_stack.template import load_template

    with caplog.at_level(logging.DEBUG, logger="botocore"):
        salts.rotate(ddb, SALT_TABLE_NAME, at("2026-11-27T05:35:59"))
    salt = stored(ddb)["2026-11-27"]
    assert base64.b64encode(salt).decode() in caplog.text  # the hazard is real
    resources = load_template()["Resources"]
    for name in ("SaltFunction", "RedirectFunction"):
        logging_config = resources[name]["Properties"]["LoggingConfig"]
        assert logging_config["LogFormat"] == "JSON", name
        assert logging_config.get("ApplicationLogLevel", "INFO") not in ("DEBUG", "TRACE"), name
        assert "AWS_LAMBDA_LOG_LEVEL" not in resources[name]["Properties"]["Environment"]["Variables"], name


class _PagedClient:
    """A DynamoDB client stand-in whose Query answers one item a page, as a flooded salts partition would."""

    def __init__(self, days):
        self.days, self.deleted, self.queries = list(days), [], []

    def query(self, **kwargs):
        self.queries.append(kwargs)
        start = kwargs.get("ExclusiveStartKey")
        i = 0 if start is None else self.days.index(start["sk"]["S"]) + 1
        page = {"Items": [{"pk": {"S": "salt#"}, "sk": {"S": day}} for day in self.days[i:i + 1]]}
        if i + 1 < len(self.days):
            page["LastEvaluatedKey"] = {"pk": {"S": "salt#"}, "sk": {"S": self.days[i]}}
        return page

    def delete_item(self, TableName, Key):
        self.deleted.append(Key["sk"]["S"])

    def put_item(self, **kwargs):
        pass


def test_every_page_of_stored_salts_is_listed_so_none_on_a_later_page_outlives_its_day():
    client = _PagedClient(["2026-11-20", "2026-11-25", "2026-11-27", "junk"])
    result = salts.rotate(client, SALT_TABLE_NAME, at("2026-11-27T05:35:59"))
    assert client.deleted == ["2026-11-20", "2026-11-25", "junk"]
    assert result["kept"] == ["2026-11-27"]
    # Strongly consistent: a salt put a moment ago by a racing run is listed, so it is judged now.
    assert all(query["ConsistentRead"] is True and query["ProjectionExpression"] == "sk" for query in client.queries)


# The redirect's copy of the day's salt (redirect_fn/handler.py).

from tests.test_redirect import NOW, SALT, click_lines, clicked_v, expected_v, put_link, put_salt, redirect, visitor_event  # noqa: E402,F401


def test_yesterdays_salt_is_dropped_from_memory_at_the_first_click_after_midnight_even_while_reads_wait(
        redirect, ddb, capsys, monkeypatch):
    """A link read that fails just after midnight holds salt reads back a minute; yesterday's salt must
    not stay in memory meanwhile (the README: "until the first request of the next UTC day")."""
    put_link(ddb, "abc1234")
    put_salt(ddb)
    assert clicked_v(redirect, visitor_event(), capsys) is not None
    assert redirect._salt.key == SALT
    midnight = 1_795_824_000.0  # 2026-11-28T00:00:00Z, the day after NOW's
    assert midnight - NOW < 86400
    redirect._salt.retry_at = midnight + 30  # as a failed link read at midnight sets it
    monkeypatch.setattr(redirect.time, "time", lambda: midnight + 1)
    redirect._cache.clear()
    put_link(ddb, "abc1234")
    assert clicked_v(redirect, visitor_event(), capsys) is None  # no salt read yet: no v
    assert redirect._salt.key is None


@pytest.mark.parametrize("tomorrows", ["missing", "unreadable"])
def test_after_midnight_without_a_new_salt_a_click_has_no_v_never_one_made_with_yesterdays_salt(
        redirect, ddb, capsys, monkeypatch, tomorrows):
    put_link(ddb, "abc1234")
    put_salt(ddb)
    assert clicked_v(redirect, visitor_event(), capsys) is not None
    midnight = 1_795_824_000.0  # 2026-11-28T00:00:00Z
    monkeypatch.setattr(redirect.time, "time", lambda: midnight + 5)
    if tomorrows == "unreadable":
        real_get_item = redirect._client.get_item

        def get_item(**kwargs):
            if kwargs["TableName"] == SALT_TABLE_NAME:
                raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetItem")
            return real_get_item(**kwargs)

        monkeypatch.setattr(redirect._client, "get_item", get_item)
    assert redirect.lambda_handler(visitor_event(), None)["statusCode"] == 302
    [click] = [line for line in click_lines(capsys) if line["type"] == "click"]
    assert "v" not in click
    assert redirect._salt.key is None


def test_the_salt_of_the_utc_day_is_read_whatever_the_local_time_zone(redirect, ddb, capsys, monkeypatch):
    """make run on a laptop far from UTC: the rotator keys salts by UTC day, so must the redirect."""
    import time

    put_link(ddb, "abc1234")
    put_salt(ddb)  # NOW's UTC day
    monkeypatch.setenv("TZ", "Pacific/Pago_Pago")  # UTC-11: still the day before there at NOW
    time.tzset()
    try:
        assert time.strftime("%Y-%m-%d", time.localtime(NOW)) != time.strftime("%Y-%m-%d", time.gmtime(NOW))
        assert clicked_v(redirect, visitor_event(), capsys) is not None
    finally:
        monkeypatch.undo()
        time.tzset()


def test_v_hashes_the_user_agent_as_the_click_line_carries_it_cut_at_256(redirect, ddb, capsys):
    """The contract: v is over exactly the line's "ua", so a reader of the line knows what was hashed."""
    put_link(ddb, "abc1234")
    put_salt(ddb)
    long_agent = "Mozilla/5.0 " + "x" * 400
    assert redirect.lambda_handler(visitor_event(user_agent=long_agent), None)["statusCode"] == 302
    [click] = click_lines(capsys)
    assert click["ua"] == long_agent[:256]
    assert click["v"] == expected_v("203.0.113.9", long_agent[:256])


def test_the_rotator_keys_salts_by_utc_day_whatever_the_local_time_zone(ddb, salts_table, monkeypatch):
    import time

    monkeypatch.setenv("TZ", "Pacific/Pago_Pago")  # UTC-11
    time.tzset()
    try:
        salts.rotate(ddb, SALT_TABLE_NAME, at("2026-11-27T05:35:59"))  # 18:35 on the 26th there
        assert list(stored(ddb)) == ["2026-11-27"]
    finally:
        monkeypatch.undo()
        time.tzset()


# What keeps the 48-hour promise when the rotation stops: the rule runs, and the alarm says when it does not.

def _salt_resources():
    from local_stack.template import load_template

    resources = load_template()["Resources"]
    return resources["SaltSchedule"]["Properties"], resources["SaltRotationErrorsAlarm"]["Properties"]


def test_the_salt_rule_is_enabled():
    rule, _ = _salt_resources()
    assert rule["State"] == "ENABLED"


def test_the_salt_alarm_fires_when_runs_fail_and_when_none_run_at_all():
    """A disabled rule or a lost permission makes no Errors at all: only missing Invocations tell."""
    _, alarm = _salt_resources()
    [expression] = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    metrics = {m["Id"]: m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert metrics == {"errors": "Errors", "invocations": "Invocations"}
    text = expression["Expression"].replace(" ", "")
    assert "FILL(errors,0)>0" in text and "FILL(invocations,0)==0" in text and "OR" in text
    # A function that never ran publishes no datapoint at all: missing data must count as failing.
    assert alarm["TreatMissingData"] == "breaching"
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
