"""The salts of the visitor hash (aggregator/salts.py): made at most half a day ahead, deleted soon after their
day, never replaced by a racing run, never in a log line or a returned value, never older than 48 hours."""
import calendar
import json
import time

import pytest
from botocore.exceptions import ClientError

from aggregator import salts
from tests.conftest import SALT_TABLE_NAME


def at(text):
    """Epoch seconds of a UTC time written 2026-11-27T05:35:59."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))


def stored(ddb):
    """{day: salt bytes} of every salt item in the table."""
    items = ddb.query(TableName=SALT_TABLE_NAME, KeyConditionExpression="pk = :pk",
                      ExpressionAttributeValues={":pk": {"S": "salt#"}})["Items"]
    return {item["sk"]["S"]: item["salt"]["B"] for item in items}


def summary_lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_in_the_morning_only_todays_salt_is_made(ddb, salts_table):
    result = salts.rotate(ddb, SALT_TABLE_NAME, at("2026-11-27T05:35:59"))
    assert result == {"day": "2026-11-27", "created": ["2026-11-27"], "deleted": [], "kept": []}
    assert list(stored(ddb)) == ["2026-11-27"]


@pytest.mark.parametrize(("when", "days"), [
    ("2026-11-27T11:59:59", ["2026-11-27"]),
    ("2026-11-27T12:00:00", ["2026-11-27", "2026-11-28"]),  # the last 12 hours of the day
    ("2026-11-27T23:59:59", ["2026-11-27", "2026-11-28"]),
    ("2026-12-31T18:00:00", ["2026-12-31", "2027-01-01"]),
])
def test_tomorrows_salt_is_made_only_in_the_last_12_hours_of_today(ddb, salts_table, when, days):
    salts.rotate(ddb, SALT_TABLE_NAME, at(when))
    assert sorted(stored(ddb)) == days


def test_each_salt_is_32_random_bytes_with_a_purge_at_backstop(ddb, salts_table):
    salts.rotate(ddb, SALT_TABLE_NAME, at("2026-11-27T18:00:00"))
    items = ddb.query(TableName=SALT_TABLE_NAME, KeyConditionExpression="pk = :pk",
                      ExpressionAttributeValues={":pk": {"S": "salt#"}})["Items"]
    assert [len(item["salt"]["B"]) for item in items] == [32, 32]
    assert items[0]["salt"]["B"] != items[1]["salt"]["B"]
    # purge_at: when the day ended plus the grace (the table's TTL attribute, only a backstop).
    assert [int(item["purge_at"]["N"]) for item in items] == [at("2026-11-28T00:15:00"), at("2026-11-29T00:15:00")]


def test_yesterdays_salt_is_deleted_only_after_the_grace(ddb, salts_table):
    salts.rotate(ddb, SALT_TABLE_NAME, at("2026-11-26T18:00:00"))  # makes the 26th's and the 27th's
    before = stored(ddb)
    result = salts.rotate(ddb, SALT_TABLE_NAME, at("2026-11-27T00:14:59"))
    assert result["deleted"] == [] and sorted(stored(ddb)) == ["2026-11-26", "2026-11-27"]
    result = salts.rotate(ddb, SALT_TABLE_NAME, at("2026-11-27T00:15:00"))
    assert result == {"day": "2026-11-27", "created": [], "deleted": ["2026-11-26"], "kept": ["2026-11-27"]}
    assert stored(ddb) == {"2026-11-27": before["2026-11-27"]}  # today's kept, unchanged


def test_rotating_twice_changes_nothing(ddb, salts_table):
    now = at("2026-11-27T20:00:00")
    salts.rotate(ddb, SALT_TABLE_NAME, now)
    first = stored(ddb)
    result = salts.rotate(ddb, SALT_TABLE_NAME, now + 60)
    assert result == {"day": "2026-11-27", "created": [], "deleted": [], "kept": ["2026-11-27", "2026-11-28"]}
    assert stored(ddb) == first


def test_a_racing_rotator_never_replaces_a_salt(ddb, salts_table, monkeypatch):
    """Two runs at once: the second's put loses on the condition, and the first's salt stays."""
    now = at("2026-11-27T05:00:00")
    real_put = ddb.put_item
    raced = []

    def put_item(**kwargs):
        if not raced:  # another rotator puts its salt between this run's query and its put
            raced.append(True)
            real_put(TableName=SALT_TABLE_NAME, Item={**kwargs["Item"], "salt": {"B": b"the other run's salt, 32 bytes!"}})
        return real_put(**kwargs)

    monkeypatch.setattr(ddb, "put_item", put_item)
    result = salts.rotate(ddb, SALT_TABLE_NAME, now)
    assert result["created"] == []
    assert stored(ddb) == {"2026-11-27": b"the other run's salt, 32 bytes!"}


def test_salts_for_far_days_and_foreign_keys_under_salt_are_deleted(ddb, salts_table):
    for day in ("2026-11-30", "2025-01-01", "garbage", "2026-13-45"):
        ddb.put_item(TableName=SALT_TABLE_NAME, Item={"pk": {"S": "salt#"}, "sk": {"S": day}, "salt": {"B": b"x" * 32}})
    result = salts.rotate(ddb, SALT_TABLE_NAME, at("2026-11-27T05:00:00"))
    assert sorted(result["deleted"]) == ["2025-01-01", "2026-11-30", "2026-13-45", "garbage"]
    assert list(stored(ddb)) == ["2026-11-27"]


def test_no_salt_is_in_the_log_line_or_the_returned_value(ddb, salts_table, capsys):
    now = at("2026-11-27T18:00:00")
    result = salts.rotate(ddb, SALT_TABLE_NAME, now)
    result2 = salts.rotate(ddb, SALT_TABLE_NAME, now + 86400)  # deletes one, makes one
    out = capsys.readouterr().out
    values = list(stored(ddb).values())
    assert len(values) == 2
    for salt in values:
        for form in (salt.hex(), repr(salt), salt.decode("latin-1")):
            assert form not in out and form not in json.dumps(result) + json.dumps(result2)
    lines = [json.loads(line) for line in out.splitlines()]
    assert [set(line) for line in lines] == [{"type", "day", "created", "deleted", "kept"}] * 2
    assert lines[1] == {"type": "salts", **result2}


def test_the_rotator_never_reads_a_salts_value(ddb, salts_table):
    seen = []
    ddb.meta.events.register("provide-client-params.dynamodb", lambda params, model, **_: seen.append((model.name, params)))
    salts.rotate(ddb, SALT_TABLE_NAME, at("2026-11-27T18:00:00"))
    salts.rotate(ddb, SALT_TABLE_NAME, at("2026-11-28T18:00:00"))
    assert {name for name, _ in seen} == {"Query", "PutItem", "DeleteItem"}
    assert all(params["ProjectionExpression"] == "sk" for name, params in seen if name == "Query")
    assert all("ReturnValues" not in params for _, params in seen)
    # Every key it touches is under "salt#": the role's LeadingKeys condition (cloudformation.yaml, SaltRole).
    assert {params.get("Key", params.get("Item", {})).get("pk", {}).get("S")
            for name, params in seen if name != "Query"} == {"salt#"}


class FailingClient:
    """A client whose calls of one operation fail with a DynamoDB error whose message holds the salt."""

    def __init__(self, ddb, operation, code="ProvisionedThroughputExceededException"):
        self._ddb, self._operation, self._code = ddb, operation, code

    def __getattr__(self, name):
        call = getattr(self._ddb, name)
        if name != self._operation:
            return call

        def fail(**kwargs):
            secret = kwargs.get("Item", {}).get("salt", {}).get("B", b"")
            raise ClientError({"Error": {"Code": self._code, "Message": f"refused {secret.hex()}"}}, name)

        return fail


def test_a_failed_create_is_raised_with_its_code_only_after_the_deletes(ddb, salts_table, capsys):
    salts.rotate(ddb, SALT_TABLE_NAME, at("2026-11-26T05:00:00"))
    capsys.readouterr()
    with pytest.raises(salts.RotationError) as raised:
        salts.rotate(FailingClient(ddb, "put_item"), SALT_TABLE_NAME, at("2026-11-27T05:00:00"))
    assert str(raised.value) == "salt rotation failed: ProvisionedThroughputExceededException"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert stored(ddb) == {}  # yesterday's was deleted even though today's could not be made
    [line] = summary_lines(capsys)
    assert line == {"type": "salts", "day": "2026-11-27", "created": [], "deleted": ["2026-11-26"], "kept": [],
                    "errors": ["ProvisionedThroughputExceededException"]}
    assert "refused" not in json.dumps(line)


def test_a_failed_delete_still_makes_todays_salt_and_is_raised(ddb, salts_table, capsys):
    salts.rotate(ddb, SALT_TABLE_NAME, at("2026-11-26T05:00:00"))
    with pytest.raises(salts.RotationError, match="AccessDeniedException"):
        salts.rotate(FailingClient(ddb, "delete_item", "AccessDeniedException"), SALT_TABLE_NAME, at("2026-11-27T05:00:00"))
    assert sorted(stored(ddb)) == ["2026-11-26", "2026-11-27"]  # the next run deletes the 26th's


def test_a_day_of_15_minute_runs_keeps_no_salt_older_than_48_hours_and_always_has_todays(ddb, salts_table):
    """Three days of the schedule, from an empty table: each salt's life, from the run that made it to the
    run that deleted it, is within 48 hours (about 37), and the redirect always finds the day's salt."""
    start = at("2026-11-27T00:07:00")
    born, lives = {}, {}
    for run in range(3 * 96 + 1):
        now = start + run * 15 * 60
        salts.rotate(ddb, SALT_TABLE_NAME, now)
        days = stored(ddb)
        for day in days:
            born.setdefault(day, now)
        for day in set(born) - set(days) - set(lives):
            lives[day] = now - born[day]
        assert salts.day_of(now) in days, f"no salt for {salts.day_of(now)} at run {run}"
        assert all(now - born[day] <= 48 * 3600 for day in days)
    assert set(lives) == {"2026-11-27", "2026-11-28"}  # deleted; the 29th's and the 30th's still live
    assert lives["2026-11-28"] <= 37 * 3600  # made at 12:07 the day before, deleted at 00:22 the day after
    assert max(lives.values()) < 48 * 3600


def test_the_lambda_handler_rotates_the_salts_table_named_in_its_environment(ddb, salts_table, monkeypatch, capsys):
    monkeypatch.setenv("SALT_TABLE_NAME", SALT_TABLE_NAME)
    monkeypatch.delenv("TABLE_NAME", raising=False)  # the links table is none of its business
    monkeypatch.setattr(salts, "_client", ddb)
    monkeypatch.setattr(salts.time, "time", lambda: at("2026-11-27T13:00:00"))
    result = salts.lambda_handler({"source": "aws.events"}, None)
    assert result["created"] == ["2026-11-27", "2026-11-28"]
    assert summary_lines(capsys)[0]["type"] == "salts"


@pytest.mark.parametrize("day", ["2026-11-27 ", "2026-1-27", "", None, "2026-02-30", "27-11-2026"])
def test_day_start_refuses_anything_but_a_day(day):
    with pytest.raises(ValueError):
        salts.day_start(day)


# The template's side: who may touch a salt, and the schedule the lifetime above assumes.

def _resources():
    from local_stack.template import load_template

    return load_template()["Resources"]


SALTS_ARN = {"Fn::GetAtt": ["SaltsTable", "Arn"]}
LINKS_ARN = {"Fn::Sub": ["arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${Table}",
                         {"Table": {"Fn::If": ["CreateTable", {"Ref": "LinksTable"}, {"Ref": "ExistingTableName"}]}}]}


def _table_statements(role):
    return [s for p in _resources()[role]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]
            if any(a.startswith("dynamodb:") for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))]


def test_the_salt_role_may_only_put_list_and_delete_items_under_salt_in_the_salts_table():
    [statement] = _table_statements("SaltRole")
    assert sorted(statement["Action"]) == ["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Query"]
    assert statement["Resource"] == SALTS_ARN  # and nothing of the links table
    assert statement["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [salts.SALT_PK]}}


def test_the_redirect_reads_links_and_salts_with_getitem_only_and_writes_nothing():
    statements = _table_statements("RedirectRole")
    assert [(s["Action"], s["Resource"], s.get("Condition")) for s in statements] == [
        ("dynamodb:GetItem", LINKS_ARN, None), ("dynamodb:GetItem", SALTS_ARN, None)]


def test_the_salts_table_keeps_no_history_and_is_made_for_every_stack():
    resources = _resources()
    table = resources["SaltsTable"]
    props = table["Properties"]
    assert table["Type"] == "AWS::DynamoDB::Table" and "Condition" not in table  # also when ExistingTableName adopts
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": False}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "purge_at", "Enabled": True}
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"], props["DeletionProtectionEnabled"]) == ("Delete", "Delete", False)
    assert "SSESpecification" not in props and "SSESpecification" not in resources["LinksTable"]["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert "GlobalSecondaryIndexes" not in props and "StreamSpecification" not in props


def test_the_local_salts_table_is_read_from_the_template_not_the_links_table():
    """local_stack/template.py builds the salts' table from SaltsTable: keys only, the same TTL attribute."""
    from local_stack import template

    kwargs = template.create_table_kwargs("t-salts", resource=template.SALTS_TABLE_RESOURCE)
    assert [a["AttributeName"] for a in kwargs["AttributeDefinitions"]] == ["pk", "sk"]
    assert "GlobalSecondaryIndexes" not in kwargs and kwargs["BillingMode"] == "PAY_PER_REQUEST"
    assert template.ttl_attribute(resource=template.SALTS_TABLE_RESOURCE) == "purge_at"
    assert template.salts_table_name("links-local") == "links-local-salts"
    assert "GlobalSecondaryIndexes" in template.create_table_kwargs("t")  # the default is still the links table


def test_the_salts_table_is_made_with_its_ttl(ddb, salts_table):
    described = ddb.describe_time_to_live(TableName=salts_table)["TimeToLiveDescription"]
    assert (described["AttributeName"], described["TimeToLiveStatus"]) == ("purge_at", "ENABLED")
    assert ddb.describe_table(TableName=salts_table)["Table"].get("GlobalSecondaryIndexes") in (None, [])


def _names(value):
    """Every logical id an intrinsic value points at (Ref, GetAtt, ${...} in Sub)."""
    import re

    if isinstance(value, dict):
        found = set()
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0])
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
                if not isinstance(inner, str):
                    found |= _names(inner[1])
            else:
                found |= _names(inner)
        return found
    if isinstance(value, list):
        return set().union(*(_names(v) for v in value)) if value else set()
    return set()


def test_only_the_redirect_and_the_salt_function_are_given_the_salts_table():
    """The admin app's policy, the aggregator and every other resource never name it: they cannot read a salt."""
    from local_stack.template import load_template

    template = load_template()
    naming = {name for name, resource in template["Resources"].items() if "SaltsTable" in _names(resource)}
    assert naming == {"RedirectRole", "RedirectFunction", "SaltRole", "SaltFunction"}
    assert {name for name, output in template["Outputs"].items() if "SaltsTable" in _names(output)} == {"SaltsTableName"}
    environments = {name: template["Resources"][name]["Properties"]["Environment"]["Variables"]
                    for name in ("RedirectFunction", "SaltFunction")}
    assert environments["RedirectFunction"]["SALT_TABLE_NAME"] == {"Ref": "SaltsTable"}
    assert environments["SaltFunction"] == {"SALT_TABLE_NAME": {"Ref": "SaltsTable"}}  # no links table at all


def test_the_salt_function_runs_the_aggregators_code_on_the_schedule_the_lifetime_assumes():
    resources = _resources()
    function = resources["SaltFunction"]["Properties"]
    assert function["Handler"] == "aggregator.salts.lambda_handler"
    assert function["Code"] == resources["AggregatorFunction"]["Properties"]["Code"]
    assert function["Runtime"] == resources["AggregatorFunction"]["Properties"]["Runtime"]
    rule = resources["SaltSchedule"]["Properties"]
    assert rule["Targets"] == [{"Id": "salts", "Arn": {"Fn::GetAtt": ["SaltFunction", "Arn"]}}]
    from local_stack.template import schedule_seconds

    longest_life = salts.CREATE_AHEAD_SECONDS + salts.DAY_SECONDS + salts.GRACE_SECONDS + schedule_seconds("SaltSchedule")
    assert longest_life < 48 * 3600
    permission = resources["SaltInvokePermission"]["Properties"]
    assert (permission["Principal"], permission["SourceArn"]) == ("events.amazonaws.com", {"Fn::GetAtt": ["SaltSchedule", "Arn"]})
