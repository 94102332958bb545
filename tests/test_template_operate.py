"""cloudformation.yaml for operating it (issue 17): clean first creates, no silent outage, adoptable tables,
custom domains that keep shared links, and parameter combinations refused before anything changes.

Where AWS evaluates something (template Rules, metric math, a log filter pattern, Zappa's rule names),
a small evaluator written from its documentation does it here, so each test can fail on the real value.
"""
import hashlib
import importlib
import json
import re
from pathlib import Path

import pytest

from local_stack.template import load_template
from tests.conftest import TABLE_NAME
from tests.test_deploy_template import TABLE_ARN, TABLE_NAME_VALUE, referenced, table_arn

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]
OUTPUTS = TEMPLATE["Outputs"]
ALARM_ACTIONS = {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}


def walk(value, stop=None):
    """Every dict and list inside a value, itself included, not looking inside a value equal to stop."""
    yield value
    if value == stop:
        return
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        yield from walk(child, stop)


# ------------------------------------------------------------------ #2: a first create rolls back cleanly


def test_deletion_protection_is_off_on_the_first_create_and_a_parameter_after():
    """RetainExceptOnCreate deletes the new table when a first create fails; DynamoDB refuses that delete
    while deletion protection is on (ROLLBACK_FAILED). Off by default, `make deploy` turns it on afterwards."""
    table = RESOURCES["LinksTable"]
    assert PARAMETERS["TableDeletionProtection"] == {
        "Type": "String", "Default": "false", "AllowedValues": ["true", "false"],
        "Description": PARAMETERS["TableDeletionProtection"]["Description"]}
    assert table["DeletionPolicy"] == "RetainExceptOnCreate" and table["UpdateReplacePolicy"] == "Retain"
    assert table["Properties"]["DeletionProtectionEnabled"] == {"Fn::If": ["ProtectTable", True, False]}
    assert "make deploy" in PARAMETERS["TableDeletionProtection"]["Description"]


# ------------------------------------------------------------------ #8: adopt a restored table or a replica


def test_the_table_is_created_only_without_an_existing_table_name():
    assert PARAMETERS["ExistingTableName"]["Default"] == ""
    assert TEMPLATE["Conditions"]["CreateTable"] == {"Fn::Equals": [{"Ref": "ExistingTableName"}, ""]}
    assert RESOURCES["LinksTable"]["Condition"] == "CreateTable"
    pattern = PARAMETERS["ExistingTableName"]["AllowedPattern"]
    for good in ("", "links-prod-restored", "Links_2026.12"):
        assert re.fullmatch(pattern, good), good
    for bad in ("ab", "links prod", "arn:aws:dynamodb:us-east-1:1:table/x", "x" * 256):
        assert not re.fullmatch(pattern, bad), bad


def test_every_use_of_the_table_names_the_adopted_one_when_set():
    """A Ref or GetAtt of LinksTable would fail (or name nothing) when the table is adopted: only the
    name chooser may point at it, and every ARN is built from that name."""
    uses = 0
    for section in ("Resources", "Outputs"):
        for name, body in TEMPLATE[section].items():
            if name == "LinksTable":
                continue
            for value in walk(body, stop=TABLE_NAME_VALUE):
                if value == TABLE_NAME_VALUE:
                    uses += 1
                    continue
                if isinstance(value, dict):
                    assert value.get("Ref") != "LinksTable", (section, name)
                    assert value.get("Fn::GetAtt", [None])[0] != "LinksTable", (section, name)
                    sub = value.get("Fn::Sub")
                    text = sub if isinstance(sub, str) else sub[0] if isinstance(sub, list) else ""
                    assert "${LinksTable" not in text, (section, name)
    # Two functions' TABLE_NAME, the output, the dashboard, and the ARNs in the three roles' policies.
    assert uses >= 10
    assert OUTPUTS["TableName"]["Value"] == TABLE_NAME_VALUE


def test_table_arns_are_built_from_the_chosen_name():
    admin = {s["Sid"]: s for s in RESOURCES["AdminPolicy"]["Properties"]["PolicyDocument"]["Statement"]}
    assert admin["LinksCrud"]["Resource"] == TABLE_ARN
    assert admin["ListPages"]["Resource"] == table_arn("/index/by_list")
    assert RESOURCES["AdminAuditAppendOnlyPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Resource"] == TABLE_ARN
    # The ARN's form, as DynamoDB gives it: arn:<partition>:dynamodb:<region>:<account>:table/<name>.
    text, variables = TABLE_ARN["Fn::Sub"]
    rendered = text.replace("${AWS::Partition}", "aws").replace("${AWS::Region}", "us-east-1").replace(
        "${AWS::AccountId}", "123456789012").replace("${Table}", "links-restored")
    assert rendered == "arn:aws:dynamodb:us-east-1:123456789012:table/links-restored"
    assert set(variables) == {"Table"}


def test_the_local_table_schema_still_comes_from_the_template():
    """local_stack/template.py reads LinksTable's Properties; the Condition does not change them."""
    from local_stack.template import create_table_kwargs

    kwargs = create_table_kwargs("x")
    assert [k["AttributeName"] for k in kwargs["KeySchema"]] == ["pk", "sk"]
    assert [i["IndexName"] for i in kwargs["GlobalSecondaryIndexes"]] == ["by_list"]


# ------------------------------------------------------------------ #9, #19: custom domains keep shared links


def test_a_custom_domain_keeps_the_execute_api_url_unless_asked():
    conditions = TEMPLATE["Conditions"]
    assert RESOURCES["HttpApi"]["Properties"]["DisableExecuteApiEndpoint"] == {"Fn::If": ["DisableExecuteApi", True, False]}
    for domain, keep, disabled in [(False, "true", False), (False, "false", False), (True, "true", False),
                                   (True, "false", True)]:
        params = {"ShortDomainName": "sho.rt" if domain else "", "CertificateArn": "arn:cert" if domain else "",
                  "KeepExecuteApiEndpoint": keep}
        assert condition(conditions, "DisableExecuteApi", params) is disabled, params


def test_outputs_give_the_api_url_the_alias_zone_and_the_cache_window():
    assert OUTPUTS["ExecuteApiUrl"]["Value"] == {"Fn::GetAtt": ["HttpApi", "ApiEndpoint"]}
    assert "Condition" not in OUTPUTS["ExecuteApiUrl"]
    assert OUTPUTS["RegionalHostedZoneId"] == {
        "Condition": "HasShortDomain", "Description": OUTPUTS["RegionalHostedZoneId"]["Description"],
        "Value": {"Fn::GetAtt": ["ShortDomain", "RegionalHostedZoneId"]}}
    assert OUTPUTS["LinkCacheSeconds"]["Value"] == {"Ref": "LinkCacheSeconds"}


# ------------------------------------------------------------------ conditions and Rules, evaluated


def evaluate(value, params, conditions=None):
    """A Conditions or Rules expression, as CloudFormation evaluates it: parameters are strings."""
    if isinstance(value, dict):
        [(function, argument)] = value.items()
        if function == "Ref":
            return params[argument]
        if function in ("Condition", "Fn::Condition"):
            return condition(conditions, argument, params)
        if function == "Fn::Equals":
            left, right = (str(evaluate(a, params, conditions)) for a in argument)
            return left == right
        if function == "Fn::Not":
            return not evaluate(argument[0], params, conditions)
        if function == "Fn::And":
            assert 2 <= len(argument) <= 10, "CloudFormation's Fn::And takes 2 to 10 conditions"
            return all(evaluate(a, params, conditions) for a in argument)
        if function == "Fn::Or":
            assert 2 <= len(argument) <= 10
            return any(evaluate(a, params, conditions) for a in argument)
        if function == "Fn::Contains":
            values, needle = argument
            return str(evaluate(needle, params, conditions)) in [str(evaluate(v, params, conditions)) for v in values]
        raise AssertionError(f"not a function Rules or Conditions allow: {function}")
    return value


def parameters(**overrides):
    """Every parameter's value as CloudFormation passes it: the default, as a string, unless given."""
    values = {name: str(p.get("Default", "")) for name, p in PARAMETERS.items()}
    values.update({k: str(v) for k, v in overrides.items()})
    return values


def condition(conditions, name, params):
    return bool(evaluate(conditions[name], parameters(**params), conditions))


def refused(**overrides):
    """The AssertDescription of every rule these parameters break (CloudFormation refuses the stack)."""
    params = parameters(**overrides)
    broken = []
    for rule in TEMPLATE["Rules"].values():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], params):
            continue
        broken += [a["AssertDescription"] for a in rule["Assertions"] if not evaluate(a["Assert"], params)]
    return broken


def test_the_defaults_pass_every_rule():
    assert refused() == []


@pytest.mark.parametrize(("overrides", "needle"), [
    ({"ShortDomainName": "sho.rt"}, "ShortDomainName and CertificateArn"),
    ({"CertificateArn": "arn:aws:acm:us-east-1:1:certificate/x"}, "ShortDomainName and CertificateArn"),
    ({"KeepExecuteApiEndpoint": "false"}, "KeepExecuteApiEndpoint"),
    *[({"AdminSignInRateLimit": n}, "AdminSignInRateLimit") for n in range(1, 10)],
    ({"AdminWafResourceArn": "arn:aws:apigateway:us-east-1::/restapis/a/stages/prod"}, "AdminWafResourceArn"),
    ({"MonthlyBudgetUsd": 50}, "AlarmEmail"),
    ({"ExistingTableName": "links-restored", "TableWarmWriteUnitsPerSecond": 20000}, "TableWarmWriteUnitsPerSecond"),
])
def test_combinations_that_cannot_work_are_refused(overrides, needle):
    [description] = refused(**overrides)
    assert needle in description


@pytest.mark.parametrize("overrides", [
    {"ShortDomainName": "sho.rt", "CertificateArn": "arn:aws:acm:us-east-1:1:certificate/x"},
    {"ShortDomainName": "sho.rt", "CertificateArn": "arn:aws:acm:us-east-1:1:certificate/x", "KeepExecuteApiEndpoint": "false"},
    {"AdminSignInRateLimit": 0}, {"AdminSignInRateLimit": 10}, {"AdminSignInRateLimit": 19}, {"AdminSignInRateLimit": 100},
    {"AdminSignInRateLimit": 10, "AdminWafResourceArn": "arn:aws:apigateway:us-east-1::/restapis/a/stages/prod"},
    {"MonthlyBudgetUsd": 50, "AlarmEmail": "ops@example.com"},
    {"ExistingTableName": "links-restored"},
    {"ExistingTableName": "links-restored", "TableDeletionProtection": "true"},
])
def test_combinations_that_work_pass(overrides):
    assert refused(**overrides) == []


def test_the_waf_minimum_in_the_rule_matches_the_parameter_description():
    """AWS WAF accepts rate limits from 10 (AWS What's New, 30 August 2024); 1-9 fail only at deploy."""
    assert "at least 10" in PARAMETERS["AdminSignInRateLimit"]["Description"]
    assert PARAMETERS["AdminSignInRateLimit"]["MinValue"] == 0


# ------------------------------------------------------------------ #5: the redirect's store errors


def filter_matches(pattern, line):
    """Whether a CloudWatch Logs JSON filter pattern matches a log line, for the forms this template uses:
    { $.field = "text" } and { $.field IS TRUE|FALSE }, terms in parentheses joined by &&
    ("Filter pattern syntax for metric filters, subscription filters, and filter log events")."""
    body = re.fullmatch(r"\{\s*(.*?)\s*\}", pattern).group(1)
    try:
        event = json.loads(line)
    except ValueError:
        return False  # a JSON pattern never matches a line that is not JSON
    for term in re.split(r"\s*&&\s*", body):
        term = term.strip()
        if term.startswith("(") and term.endswith(")"):
            term = term[1:-1].strip()
        if m := re.fullmatch(r'\$\.(\w+)\s*=\s*"([^"*]*)"', term):
            if event.get(m.group(1)) != m.group(2):
                return False
        elif m := re.fullmatch(r"\$\.(\w+)\s+IS\s+(TRUE|FALSE)", term):
            if event.get(m.group(1)) is not (m.group(2) == "TRUE"):
                return False
        else:
            raise AssertionError(f"a filter form this evaluator does not know: {term}")
    return True


@pytest.fixture
def handler(ddb, monkeypatch):
    """The redirect module, imported after moto started (its client is built at import time)."""
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    module = importlib.import_module("redirect_fn.handler")
    monkeypatch.setattr(module, "FUNCTION_NAME", "links-redirect")
    return module


def printed(capsys, function, *args):
    capsys.readouterr()
    function(*args)
    [line] = capsys.readouterr().out.splitlines()
    return line


def store_error_line(handler, capsys, code):
    from botocore.exceptions import ClientError

    return printed(capsys, handler._log_store_error, ClientError({"Error": {"Code": code, "Message": "m"}}, "GetItem"))


def test_store_error_filters_count_the_redirects_lines_and_never_a_click(handler, capsys):
    denied = store_error_line(handler, capsys, "AccessDeniedException")
    throttled = store_error_line(handler, capsys, "ThrottlingException")
    click = printed(capsys, handler._log_click, "abc1234", {"user-agent": "error", "referer": "https://e.example/"})
    hard = RESOURCES["RedirectStoreErrorsFilter"]["Properties"]
    soft = RESOURCES["RedirectStoreRetryableErrorsFilter"]["Properties"]
    subscription = RESOURCES["ClickSubscription"]["Properties"]["FilterPattern"]
    assert [filter_matches(hard["FilterPattern"], line) for line in (denied, throttled, click)] == [True, False, False]
    assert [filter_matches(soft["FilterPattern"], line) for line in (denied, throttled, click)] == [False, True, False]
    assert [filter_matches(subscription, line) for line in (denied, throttled, click)] == [False, False, True]
    # The dimension comes from the line, and names the function the alarm watches.
    for props, metric in ((hard, "RedirectStoreErrors"), (soft, "RedirectStoreRetryableErrors")):
        assert props["LogGroupName"] == {"Ref": "RedirectLogGroup"}
        [transformation] = props["MetricTransformations"]
        assert (transformation["MetricNamespace"], transformation["MetricName"], transformation["MetricValue"]) == (
            "Shortener", metric, "1")
        [dimension] = transformation["Dimensions"]
        assert dimension == {"Key": "FunctionName", "Value": "$.function"}
        assert json.loads(denied)["function"] == "links-redirect"


def test_the_evaluator_can_tell_lines_apart():
    pattern = '{ ($.type = "error") && ($.retryable IS FALSE) }'
    assert filter_matches(pattern, '{"type":"error","retryable":false}')
    assert not filter_matches(pattern, '{"type":"error","retryable":"false"}'), "IS FALSE is the JSON boolean"
    assert not filter_matches(pattern, '{"type":"errors","retryable":false}')
    assert not filter_matches(pattern, "error retryable false")


def test_the_function_name_the_line_carries_is_the_one_lambda_sets(handler):
    source = (ROOT / "redirect_fn" / "handler.py").read_text()
    assert 'os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")' in source


def test_non_retryable_store_errors_alarm_at_the_first_one():
    alarm = RESOURCES["RedirectStoreErrorsAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("Shortener", "RedirectStoreErrors")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "RedirectFunction"}}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"], alarm["Threshold"]) == ("Sum", 300, 1, 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching" and alarm["AlarmActions"] == ALARM_ACTIONS
    retryable = RESOURCES["RedirectStoreRetryableErrorsAlarm"]["Properties"]
    assert retryable["MetricName"] == "RedirectStoreRetryableErrors"
    assert retryable["EvaluationPeriods"] == retryable["DatapointsToAlarm"] == 5, "sustained, not one throttle"


def test_the_api_5xx_alarm_watches_the_short_link_api():
    """HTTP API metrics: namespace AWS/ApiGateway, metric 5xx, dimension ApiId (API Gateway developer guide)."""
    alarm = RESOURCES["Api5xxAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/ApiGateway", "5xx", "Sum")
    assert alarm["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": "HttpApi"}}]
    assert alarm["Threshold"] >= 1 and alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == ALARM_ACTIONS


# ------------------------------------------------------------------ #7: latency judged only with enough requests


def metric_math(expression, **values):
    """CloudWatch metric math for one datapoint: IF(condition, a, b), FILL(metric, value), comparisons."""
    def fill(value, default):
        return default if value is None else value

    def if_(test, then, otherwise):
        return then if test else otherwise

    python = expression.replace("IF(", "if_(").replace("FILL(", "fill(")
    assert re.fullmatch(r"[\w\s(),.>=<]+", python), python
    return eval(python, {"__builtins__": {}}, {"if_": if_, "fill": fill, **values})  # noqa: S307 - checked above


def latency_alarm_value(requests, p99, min_requests=None):
    alarm = RESOURCES["LatencyAlarm"]["Properties"]
    [judged] = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    minimum = PARAMETERS["LatencyAlarmMinRequests"]["Default"] if min_requests is None else min_requests
    expression = judged["Expression"]["Fn::Sub"].replace("${LatencyAlarmMinRequests}", str(minimum))
    return metric_math(expression, requests=requests, p99=p99)


def test_a_few_cold_starts_do_not_fire_the_latency_alarm():
    threshold = PARAMETERS["P99LatencyThresholdMs"]["Default"]
    minimum = PARAMETERS["LatencyAlarmMinRequests"]["Default"]
    assert minimum >= 100, "p99 of fewer requests is set by one or two of them"
    assert latency_alarm_value(requests=minimum - 1, p99=2500) <= threshold
    assert latency_alarm_value(requests=None, p99=None) <= threshold
    assert latency_alarm_value(requests=minimum, p99=2500) > threshold
    assert latency_alarm_value(requests=minimum * 10, p99=threshold - 1) <= threshold
    assert latency_alarm_value(requests=3, p99=900, min_requests=0) == 900


def test_the_latency_alarm_reads_the_apis_p99_and_count():
    alarm = RESOURCES["LatencyAlarm"]["Properties"]
    stats = {m["Id"]: (m["MetricStat"]["Metric"]["MetricName"], m["MetricStat"]["Stat"], m["MetricStat"]["Period"])
             for m in alarm["Metrics"] if "MetricStat" in m}
    assert stats == {"p99": ("Latency", "p99", 300), "requests": ("Count", "Sum", 300)}
    for m in alarm["Metrics"]:
        if "MetricStat" in m:
            assert m["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": "HttpApi"}}]


# ------------------------------------------------------------------ #6: a budget and a throttle the pipeline keeps up with


def test_the_default_throttle_is_not_above_what_one_shard_counts():
    bench = json.loads((ROOT / "results" / "bench.json").read_text())
    per_shard = bench["figures"]["spread.clicks_per_shard"]["value"]  # the figure the README quotes
    assert PARAMETERS["ClickStreamShards"]["Default"] == 1
    assert PARAMETERS["ThrottlingRateLimit"]["Default"] <= per_shard
    assert PARAMETERS["ThrottlingBurstLimit"]["Default"] >= PARAMETERS["ThrottlingRateLimit"]["Default"]


def test_the_budget_is_optional_monthly_and_mails_at_80_actual_and_100_forecast():
    assert PARAMETERS["MonthlyBudgetUsd"]["Default"] == 0
    assert TEMPLATE["Conditions"]["HasBudget"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "MonthlyBudgetUsd"}, 0]}]}
    budget = RESOURCES["MonthlyBudget"]
    assert budget["Type"] == "AWS::Budgets::Budget" and budget["Condition"] == "HasBudget"
    spec = budget["Properties"]["Budget"]
    assert (spec["BudgetType"], spec["TimeUnit"]) == ("COST", "MONTHLY")
    assert spec["BudgetLimit"] == {"Amount": {"Ref": "MonthlyBudgetUsd"}, "Unit": "USD"}
    notices = {(n["Notification"]["NotificationType"], n["Notification"]["Threshold"]): n
               for n in budget["Properties"]["NotificationsWithSubscribers"]}
    assert set(notices) == {("ACTUAL", 80), ("FORECASTED", 100)}
    for notice in notices.values():
        assert notice["Notification"]["ThresholdType"] == "PERCENTAGE"
        assert notice["Notification"]["ComparisonOperator"] == "GREATER_THAN"
        assert notice["Subscribers"] == [{"SubscriptionType": "EMAIL", "Address": {"Ref": "AlarmEmail"}}]


# ------------------------------------------------------------------ #10: stateful resources say what happens to them


STATEFUL = {"AWS::DynamoDB::Table", "AWS::Kinesis::Stream", "AWS::SQS::Queue", "AWS::Logs::LogGroup"}


def test_every_stateful_resource_says_what_delete_and_replace_do():
    seen = set()
    for name, resource in RESOURCES.items():
        if resource["Type"] in STATEFUL:
            seen.add(name)
            assert resource.get("DeletionPolicy") in {"Delete", "Retain", "RetainExceptOnCreate"}, name
            assert resource.get("UpdateReplacePolicy") in {"Delete", "Retain"}, name
    assert {"LinksTable", "ClickStream", "DeadLetterQueue", "RedirectLogGroup", "AggregatorLogGroup",
            "AdminLogGroup", "ApiAccessLogGroup", "SaltLogGroup", "SaltsTable"} == seen
    # Kept: the links, and the audit copy. Neither may be left behind by a failed first create.
    assert RESOURCES["AdminLogGroup"]["DeletionPolicy"] == "RetainExceptOnCreate"
    assert RESOURCES["ClickStream"]["DeletionPolicy"] == "Delete"
    # The salts are worth nothing once gone, and must not outlive their deletion (no PITR, no retained copy).
    assert (RESOURCES["SaltsTable"]["DeletionPolicy"], RESOURCES["SaltsTable"]["UpdateReplacePolicy"]) == ("Delete", "Delete")


def test_each_deletion_policy_has_its_reason():
    text = (ROOT / "cloudformation.yaml").read_text()
    for name in ("ClickStream", "DeadLetterQueue", "RedirectLogGroup", "AggregatorLogGroup", "AdminLogGroup",
                 "ApiAccessLogGroup", "SaltLogGroup", "SaltsTable"):
        block = text[text.index(f"\n  {name}:\n"):]
        block = block[:block.index("DeletionPolicy")]
        assert re.search(r"\n    # \S", block), f"{name}: say why Delete or Retain on the line above"


# ------------------------------------------------------------------ #14: EventBridge may assume the admin role only for keep-warm


def zappa_event_name(lambda_name, name):
    """Zappa 0.63's Zappa.get_event_name and its long-name fallback (zappa/core.py, get_scheduled_event_name)."""
    def event_name(prefix):
        return "{prefix:.{width}}-{postfix}".format(prefix=prefix, width=max(0, 63 - len(name)), postfix=name)[:64]

    candidate = event_name(lambda_name)
    if len(candidate) >= 64:
        candidate = event_name(hashlib.sha1(lambda_name.encode()).hexdigest())
    return candidate


def arn_like(pattern, arn):
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), arn) is not None


def test_eventbridge_may_assume_the_admin_role_only_for_this_accounts_keep_warm_rule():
    settings = json.loads((ROOT / "zappa_settings.json").read_text())
    trust = RESOURCES["AdminRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    [events] = [s for s in trust if s["Principal"] == {"Service": "events.amazonaws.com"}]
    assert events["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    pattern = events["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"].replace(
        "${AWS::Partition}", "aws").replace("${AWS::Region}", "us-east-1").replace("${AWS::AccountId}", "123456789012")
    # Zappa's keep-warm event: name "zappa-keep-warm", function "handler.keep_warm_callback" (zappa/cli.py).
    suffix = "zappa-keep-warm-handler.keep_warm_callback"
    stages = [f"{settings[s].get('project_name', 'linkshortener')}-{s}" for s in settings]
    for function_name in [*stages, PARAMETERS["AdminFunctionName"]["Default"], "a" * 64]:
        rule = f"arn:aws:events:us-east-1:123456789012:rule/{zappa_event_name(function_name, suffix)}"
        assert arn_like(pattern, rule), rule
    assert not arn_like(pattern, "arn:aws:events:us-east-1:123456789012:rule/someone-elses-rule")
    assert not arn_like(pattern, f"arn:aws:events:us-east-1:999999999999:rule/x-{suffix}")


# ------------------------------------------------------------------ #4: the subscription role


def test_the_subscription_role_uses_the_documented_confused_deputy_condition():
    [trust] = RESOURCES["ClickSubscriptionRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"] == {"StringLike": {
        "aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:*"}}}


def test_new_resources_point_at_what_exists():
    for name in ("RedirectStoreErrorsFilter", "RedirectStoreRetryableErrorsFilter", "RedirectStoreErrorsAlarm",
                 "RedirectStoreRetryableErrorsAlarm", "Api5xxAlarm", "LatencyAlarm", "MonthlyBudget"):
        for target in referenced(RESOURCES[name]):
            assert target in RESOURCES or target in PARAMETERS or target.startswith("AWS::"), (name, target)


def test_the_dashboard_shows_the_redirects_store_errors():
    body, _ = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "1", body))["widgets"]
    rows = [row for w in widgets for row in w["properties"]["metrics"] if isinstance(row[0], str)]
    names = {(row[0], row[1]) for row in rows if isinstance(row[1], str)}
    assert {("Shortener", "RedirectStoreErrors"), (".", "RedirectStoreRetryableErrors")} <= names
