"""Outside review of issue 17's template and redirect error line (reviewer rev-template)."""
import json
import re
from pathlib import Path

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.parsers import create_parser

from tests.conftest import TABLE_NAME
from tests.test_deploy_iam import _admin_statements, _as_list, _request_pks, _string_like, admin_writes  # noqa: F401
from tests.test_template_operate import RESOURCES, filter_matches, handler  # noqa: F401


def parsed_get_item_error(status, body):
    """The ClientError botocore's own DynamoDB parser builds from an HTTP answer (as the client would raise it)."""
    model = botocore.session.get_session().get_service_model("dynamodb")
    operation = model.operation_model("GetItem")
    response = create_parser(model.metadata["protocol"]).parse(
        {"status_code": status, "headers": {}, "body": body}, operation.output_shape)
    return ClientError(response, "GetItem")


def error_line(handler, capsys, error):
    capsys.readouterr()
    handler._log_store_error(error)
    [line] = capsys.readouterr().out.splitlines()
    return line


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_with_no_dynamodb_code_is_retryable_not_an_operator_page(handler, capsys, status):
    """A 5xx whose body is not DynamoDB's JSON (a load balancer's HTML page, an empty body) reaches the code
    as ClientError with Code "503" (botocore's JSON parser falls back to the status code). botocore's own
    standard retry mode treats 500/502/503/504 as transient, and so must the line: classified non-retryable,
    it would fire RedirectStoreErrorsAlarm (threshold 1) and send the operator after an IAM or table fault
    that does not exist."""
    error = parsed_get_item_error(status, b"<html><body>Service Unavailable</body></html>")
    assert error.response["Error"]["Code"] == str(status)  # what the handler really sees
    line = error_line(handler, capsys, error)
    assert json.loads(line)["retryable"] is True
    hard = RESOURCES["RedirectStoreErrorsFilter"]["Properties"]["FilterPattern"]
    soft = RESOURCES["RedirectStoreRetryableErrorsFilter"]["Properties"]["FilterPattern"]
    assert (filter_matches(hard, line), filter_matches(soft, line)) == (False, True)


@pytest.mark.parametrize(("body", "code"), [
    (b'{"__type":"com.amazonaws.dynamodb.v20120810#AccessDeniedException","message":"no"}', "AccessDeniedException"),
    (b'{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"no"}',
     "ResourceNotFoundException"),
])
def test_a_parsed_4xx_fault_stays_non_retryable(handler, capsys, body, code):
    line = json.loads(error_line(handler, capsys, parsed_get_item_error(400, body)))
    assert (line["error"], line["retryable"]) == (code, False)


def test_the_hard_error_filter_needs_the_error_type_too():
    """Mutation survivor: dropping ($.type = "error") from RedirectStoreErrorsFilter passed every test. Any
    other JSON line with "retryable": false (a future log line of the redirect) would then page."""
    hard = RESOURCES["RedirectStoreErrorsFilter"]["Properties"]["FilterPattern"]
    assert not filter_matches(hard, '{"type":"warning","retryable":false,"function":"links-redirect"}')
    soft = RESOURCES["RedirectStoreRetryableErrorsFilter"]["Properties"]["FilterPattern"]
    assert not filter_matches(soft, '{"type":"warning","retryable":true,"function":"links-redirect"}')


# RUNBOOK.md's commands against what they search: mutation survivors (a RUNBOOK filter of '{ $.type = "errors" }',
# an Insights 'filter type = "err"' or a wrong environment variable name passed tests/test_runbook.py).
RUNBOOK = (Path(__file__).resolve().parent.parent / "RUNBOOK.md").read_text()


def test_every_runbook_log_filter_finds_the_redirects_error_lines_and_no_click(handler, capsys):
    patterns = re.findall(r"--filter-pattern '([^']*)'", RUNBOOK)
    assert patterns
    denied = error_line(handler, capsys, ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetItem"))
    throttled = error_line(handler, capsys, ClientError({"Error": {"Code": "ThrottlingException"}}, "GetItem"))
    capsys.readouterr()
    handler._log_click("abc1234", {"user-agent": "error"})
    click = capsys.readouterr().out.strip()
    for pattern in patterns:
        assert filter_matches(pattern, denied) or filter_matches(pattern, throttled), pattern
        assert not filter_matches(pattern, click), pattern
        if "IS TRUE" in pattern:
            assert filter_matches(pattern, throttled) and not filter_matches(pattern, denied), pattern


def test_every_runbook_insights_type_filter_names_a_type_its_log_group_gets(handler, capsys):
    filters = re.findall(r'insights "\$\(res (\w+)\)"[^\']*\'([^\']*)\'', RUNBOOK)
    types = {(group, kind) for group, query in filters for kind in re.findall(r'type = "([^"]*)"', query)}
    assert {group for group, _ in types} == {"RedirectLogGroup", "SaltLogGroup"}
    line = error_line(handler, capsys, ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetItem"))
    printed = {"RedirectLogGroup": {json.loads(line)["type"]}, "SaltLogGroup": {_salt_summary_type()}}
    assert all(kind in printed[group] for group, kind in types), types


def _salt_summary_type():
    """The type of the one line a salt rotation prints (aggregator/salts.py), from a run on a stand-in table."""
    import io

    from aggregator import salts

    class Table:
        def query(self, **_):
            return {"Items": []}

        def put_item(self, **_):
            return {}

    out = io.StringIO()
    salts.rotate(Table(), "salts", 1_800_000_000, out=out)
    return json.loads(out.getvalue())["type"]


def test_every_environment_variable_the_runbook_reads_is_one_the_template_sets():
    names = set(re.findall(r"Environment\.Variables\.(\w+)", RUNBOOK))
    assert names
    env = set(RESOURCES["RedirectFunction"]["Properties"]["Environment"]["Variables"])
    env |= set(RESOURCES["AggregatorFunction"]["Properties"]["Environment"]["Variables"])
    # The admin's (Zappa's) settings: SHORTENER_<key> of a key create_app() has a default for.
    from webapp import create_app

    admin = create_app({"TESTING": True, "LOCAL": True, "SECRET_KEY": "x", "TABLE_NAME": TABLE_NAME}).config
    env |= {f"SHORTENER_{key}" for key in admin}
    assert names <= env
