"""The local stand-in for the SaltSchedule rule: the template's rate, a rotation at start, and failures that do not stop it."""
import io
import json

import pytest
from botocore.exceptions import ClientError

from local_stack import template
from local_stack.salt_schedule import SaltSchedule
from tests.conftest import SALT_TABLE_NAME


def test_the_interval_is_the_templates_rate():
    assert template.schedule_seconds("SaltSchedule") == 15 * 60


@pytest.mark.parametrize(("expression", "seconds"), [("rate(1 minute)", 60), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)])
def test_rates_are_read_in_every_unit(expression, seconds):
    doc = {"Resources": {"R": {"Properties": {"ScheduleExpression": expression}}}}
    assert template.schedule_seconds("R", doc) == seconds


@pytest.mark.parametrize("expression", ["cron(0 * * * ? *)", "rate(15 fortnights)", "rate(x minutes)", "rate(15minutes)"])
def test_a_schedule_that_is_not_a_rate_is_refused(expression):
    doc = {"Resources": {"R": {"Properties": {"ScheduleExpression": expression}}}}
    with pytest.raises(ValueError, match="is not a rate"):
        template.schedule_seconds("R", doc)


def test_it_rotates_at_start_so_todays_salt_exists_before_the_first_click(ddb, salts_table):
    out = io.StringIO()
    schedule = SaltSchedule(ddb, SALT_TABLE_NAME, interval=3600, out=out, clock=lambda: 1_795_757_759.0).start()
    try:
        items = ddb.query(TableName=SALT_TABLE_NAME, KeyConditionExpression="pk = :pk",
                          ExpressionAttributeValues={":pk": {"S": "salt#"}})["Items"]
        assert [item["sk"]["S"] for item in items] == ["2026-11-27"]
        assert json.loads(out.getvalue())["created"] == ["2026-11-27"]
    finally:
        schedule.stop()


def test_a_failed_run_does_not_stop_the_schedule(ddb, salts_table, monkeypatch):
    def fail(**_):
        raise ClientError({"Error": {"Code": "ThrottlingException"}}, "PutItem")

    monkeypatch.setattr(ddb, "put_item", fail)
    out = io.StringIO()
    schedule = SaltSchedule(ddb, SALT_TABLE_NAME, interval=3600, out=out, clock=lambda: 1_795_757_759.0)
    schedule.step()
    schedule.step()
    assert [json.loads(line)["errors"] for line in out.getvalue().splitlines()] == [["ThrottlingException"]] * 2
