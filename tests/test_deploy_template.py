"""cloudformation.yaml, proven offline: cfn-lint, table parity, IAM read from the template, wiring."""
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from local_stack.template import TEMPLATE_PATH, load_template, table_properties
from tests.conftest import TABLE_NAME
from tests.test_deploy_iam import derived_actions

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
TABLE_ARN = {"Fn::GetAtt": ["LinksTable", "Arn"]}

# Every DynamoDB action that changes data. The redirect role must have none of them.
WRITE_ACTIONS = {
    "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete",
    "dynamodb:DeleteTable", "dynamodb:UpdateTable", "dynamodb:RestoreTableFromBackup",
    "dynamodb:ImportTable", "dynamodb:UpdateTimeToLive",
}


def resources_of_type(resource_type):
    return {name: r for name, r in RESOURCES.items() if r["Type"] == resource_type}


def as_list(value):
    return value if isinstance(value, list) else [value]


def statements_of_role(role_name):
    """Every statement that applies to a role: inline policies plus the template's managed policies it attaches."""
    props = RESOURCES[role_name]["Properties"]
    statements = [s for policy in props.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]
    for arn in props.get("ManagedPolicyArns", []):
        assert isinstance(arn, dict) and "Ref" in arn, f"{role_name} attaches a policy from outside the template: {arn}"
        statements += managed_policy_statements(arn["Ref"])
    return statements


def managed_policy_statements(policy_name):
    policy = RESOURCES[policy_name]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    return policy["Properties"]["PolicyDocument"]["Statement"]


def all_statements():
    """Every IAM statement in the template, with where it comes from."""
    for name, resource in RESOURCES.items():
        props = resource.get("Properties", {})
        for policy in props.get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                yield name, statement
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            for statement in props["PolicyDocument"]["Statement"]:
                yield name, statement


def referenced(value):
    """The logical ids an intrinsic value points at (Ref, GetAtt, ${...} in Sub)."""
    if isinstance(value, dict):
        if "Ref" in value:
            return {value["Ref"]}
        if "Fn::GetAtt" in value:
            return {value["Fn::GetAtt"][0]}
        if "Fn::Sub" in value:
            template = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            return {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", template)} - {
                "AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::StackName", "AWS::URLSuffix"
            }
        return set().union(*(referenced(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(referenced(v) for v in value)) if value else set()
    return set()


# ------------------------------------------------------------------ cfn-lint


@pytest.mark.scan
def test_cfn_lint_reports_no_errors_and_no_warnings():
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(TEMPLATE_PATH)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_cfn_lint_is_pinned():
    assert re.search(r"^cfn-lint==\d+\.\d+\.\d+$", (ROOT / "requirements-dev.txt").read_text(), re.MULTILINE)


# ------------------------------------------------------------------ the table


def test_local_table_equals_the_template_table(ddb):
    """The table the local stack and the tests create is the one the stack deploys."""
    props = table_properties()
    table = ddb.describe_table(TableName=TABLE_NAME)["Table"]
    assert table["KeySchema"] == props["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        props["AttributeDefinitions"], key=lambda a: a["AttributeName"]
    )
    assert table["BillingModeSummary"]["BillingMode"] == props["BillingMode"] == "PAY_PER_REQUEST"
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    expected = {i["IndexName"]: i for i in props["GlobalSecondaryIndexes"]}
    assert indexes.keys() == expected.keys() == {"by_list"}
    for name, index in expected.items():
        assert indexes[name]["KeySchema"] == index["KeySchema"]
        assert indexes[name]["Projection"] == index["Projection"]
    ttl = ddb.describe_time_to_live(TableName=TABLE_NAME)["TimeToLiveDescription"]
    assert ttl == {"AttributeName": "purge_at", "TimeToLiveStatus": "ENABLED"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "purge_at", "Enabled": True}


def test_table_is_kept_and_protected():
    """Kept on delete and replace, but a first create that rolls back leaves no orphan table behind."""
    table = RESOURCES["LinksTable"]
    assert table["DeletionPolicy"] == "RetainExceptOnCreate"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


# ------------------------------------------------------------------ IAM


def test_redirect_role_can_only_read_links_and_write_its_logs():
    statements = statements_of_role("RedirectRole")
    allowed = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            allowed.setdefault(action, []).extend(as_list(statement["Resource"]))
    assert set(allowed) == {"dynamodb:GetItem", "logs:CreateLogStream", "logs:PutLogEvents"}
    assert not WRITE_ACTIONS & set(allowed)
    assert allowed["dynamodb:GetItem"] == [TABLE_ARN]
    assert allowed["logs:PutLogEvents"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${RedirectLogGroup}:*"}
    ]


def test_aggregator_role_updates_the_table_reads_its_stream_and_records_skips():
    allowed_targets = {
        # No PutItem, no transactions, no Query or Scan: updates and the checkpoint read only.
        "LinksTable": {"dynamodb:UpdateItem", "dynamodb:GetItem"},
        "ClickStream": {"kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
                        "kinesis:GetShardIterator", "kinesis:ListShards"},
        "AggregatorLogGroup": {"logs:CreateLogStream", "logs:PutLogEvents"},
        "DeadLetterQueue": {"sqs:SendMessage"},
    }
    seen = set()
    for statement in statements_of_role("AggregatorRole"):
        assert statement["Effect"] == "Allow" and "Condition" not in statement
        targets = referenced(statement["Resource"])
        assert len(targets) == 1 and targets <= allowed_targets.keys(), statement
        target = targets.pop()
        assert set(as_list(statement["Action"])) <= allowed_targets[target], statement
        seen.add(target)
    assert seen == allowed_targets.keys()


def test_only_cloudwatch_logs_may_put_on_the_click_stream():
    role = RESOURCES["ClickSubscriptionRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "logs.amazonaws.com"}
    assert "${RedirectLogGroup}" in trust["Condition"]["StringLike"]["aws:SourceArn"]["Fn::Sub"]
    [statement] = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert statement["Action"] == "kinesis:PutRecord"
    assert statement["Resource"] == {"Fn::GetAtt": ["ClickStream", "Arn"]}


ADMIN_SOURCES = sorted((ROOT / "webapp").rglob("*.py"))
INDEX_NAMES = [index["IndexName"] for index in table_properties().get("GlobalSecondaryIndexes", [])]


def admin_calls():
    """What the admin code calls, as {resource: IAM actions}, read from webapp/'s source."""
    source = "\n".join(path.read_text() for path in ADMIN_SOURCES)
    # Every call, derived by tests/test_deploy_iam.py: DynamoDB's on the table, SSM's on the secret.
    derived = derived_actions(("webapp",))
    needed = {"table": {action for action in derived if action.startswith("dynamodb:")}}
    # An index is queried when the code names it and passes IndexName.
    if "IndexName" in source:
        for name in INDEX_NAMES:
            if re.search(rf"[\"']{re.escape(name)}[\"']", source):
                needed[f"index/{name}"] = {"dynamodb:Query"}
    if "ssm:GetParameter" in derived:
        needed["secret"] = {"ssm:GetParameter"}
    return needed


def admin_grants():
    """What AdminPolicy grants, as {resource: IAM actions}, in the same terms as admin_calls()."""
    granted = {}
    for statement in managed_policy_statements("AdminPolicy"):
        assert statement["Effect"] == "Allow"
        for resource in as_list(statement["Resource"]):
            if resource == TABLE_ARN:
                key = "table"
            elif "Fn::Sub" in resource and resource["Fn::Sub"].startswith("${LinksTable.Arn}/index/"):
                key = resource["Fn::Sub"].removeprefix("${LinksTable.Arn}/")
            elif "Fn::Sub" in resource and ":parameter${SecretKeyParameterName}" in resource["Fn::Sub"]:
                key = "secret"
            else:
                raise AssertionError(f"AdminPolicy grants on an unexpected resource: {resource}")
            granted.setdefault(key, set()).update(as_list(statement["Action"]))
    return granted


def test_admin_policy_grants_exactly_the_calls_the_admin_code_makes():
    """Derived from webapp/: a new client call fails this until its action is granted, and an unused grant fails it too."""
    needed, granted = admin_calls(), admin_grants()
    assert needed["table"] >= {"dynamodb:GetItem", "dynamodb:PutItem"}, "the call finder found the store's calls"
    assert "dynamodb:Scan" not in granted.get("table", set()), "listing pages come from Query, never Scan"
    for resource in sorted(needed.keys() | granted.keys()):
        missing = needed.get(resource, set()) - granted.get(resource, set())
        unused = granted.get(resource, set()) - needed.get(resource, set())
        assert not missing, f"AdminPolicy lacks {sorted(missing)} on {resource}, which webapp/ calls"
        assert not unused, f"AdminPolicy grants {sorted(unused)} on {resource}, which webapp/ never calls"


def test_admin_role_is_the_policy_plus_its_own_log_streams():
    props = RESOURCES["AdminRole"]["Properties"]
    assert [a["Ref"] for a in props["ManagedPolicyArns"]] == ["AdminPolicy"]
    inline = [s for policy in props["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert {a for s in inline for a in as_list(s["Action"])} == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert all(referenced(s["Resource"]) == {"AdminLogGroup"} for s in inline)


def test_no_statement_allows_everything():
    for source, statement in all_statements():
        for resource in as_list(statement["Resource"]):
            assert resource != "*", f"{source}: Resource '*' where an ARN fits"
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{source}: wildcard action {action}"


def test_admin_log_group_is_the_stacks_with_the_same_retention():
    """Lambda would create the Zappa function's group on first write, without a retention."""
    group = RESOURCES["AdminLogGroup"]["Properties"]
    assert group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AdminFunctionName}"}
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    actions = {a for s in statements_of_role("AdminRole") for a in as_list(s["Action"])}
    assert "logs:CreateLogGroup" not in actions
    logs = [s for s in statements_of_role("AdminRole") if any(a.startswith("logs:") for a in as_list(s["Action"]))]
    assert logs and all(s["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${AdminLogGroup}:*"
    } for s in logs)


def test_every_log_group_expires():
    groups = resources_of_type("AWS::Logs::LogGroup")
    assert {"RedirectLogGroup", "AdminLogGroup", "ApiAccessLogGroup"} <= set(groups)
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


def test_keep_warm_can_name_the_admin_role_on_its_rule():
    """Zappa's keep_warm puts an EventBridge rule with RoleArn = role_arn; EventBridge must be able to assume it."""
    settings = json.loads((ROOT / "zappa_settings.json").read_text())
    assert any(stage.get("keep_warm") for stage in settings.values()), "prod keeps the admin warm"
    trust = RESOURCES["AdminRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    principals = {s["Principal"]["Service"] for s in trust if s["Effect"] == "Allow" and s["Action"] == "sts:AssumeRole"}
    assert principals == {"lambda.amazonaws.com", "events.amazonaws.com"}


# ------------------------------------------------------------------ wiring


def test_every_handler_and_the_zappa_app_resolve_to_callables(tmp_path):
    """Import each entry point in a fresh interpreter, as Lambda would, and check it is callable."""
    handlers = [r["Properties"]["Handler"] for r in resources_of_type("AWS::Lambda::Function").values()]
    assert sorted(handlers) == ["aggregator.handler.lambda_handler", "redirect_fn.handler.lambda_handler"]
    settings = json.loads((ROOT / "zappa_settings.json").read_text())
    app_functions = {stage["app_function"] for stage in settings.values() if "app_function" in stage}
    assert app_functions == {"webapp.wsgi.app"}
    script = textwrap.dedent(
        """
        import importlib, sys
        for dotted in sys.argv[1:]:
            module, _, name = dotted.rpartition(".")
            target = getattr(importlib.import_module(module), name)
            assert callable(target), dotted
            print("ok", dotted)
        """
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "TABLE_NAME": "wiring",
        "SHORTENER_TABLE_NAME": "wiring", "SHORTENER_SHORT_BASE_URL": "https://sho.rt",
        "SHORTENER_SECRET_KEY": "wiring-test-key",
    }
    result = subprocess.run(
        [sys.executable, "-c", script, *handlers, *app_functions],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok ") == len(handlers) + len(app_functions)


def test_functions_run_a_current_python_on_arm64():
    for name, function in resources_of_type("AWS::Lambda::Function").items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.13", name
        assert props["Architectures"] == ["arm64"], name
        assert set(props["Code"]) == {"S3Bucket", "S3Key"}, "code comes from `make package`, not inline"
    memory = TEMPLATE["Parameters"]["RedirectMemoryMB"]
    assert RESOURCES["RedirectFunction"]["Properties"]["MemorySize"] == {"Ref": "RedirectMemoryMB"}
    assert all(128 <= m <= 256 for m in memory["AllowedValues"])
    env = RESOURCES["RedirectFunction"]["Properties"]["Environment"]["Variables"]
    assert env == {
        "TABLE_NAME": {"Ref": "LinksTable"},
        "LINK_CACHE_SECONDS": {"Ref": "LinkCacheSeconds"},
        "ROOT_REDIRECT_URL": {"Ref": "AdminUrl"},
    }


def test_http_api_routes_go_to_the_redirect_function():
    integration = RESOURCES["RedirectIntegration"]["Properties"]
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["PayloadFormatVersion"] == "2.0"
    assert integration["IntegrationUri"] == {"Fn::GetAtt": ["RedirectFunction", "Arn"]}
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in resources_of_type("AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {"GET /{short_id}", "HEAD /{short_id}", "GET /"}
    assert all(r["Target"] == {"Fn::Sub": "integrations/${RedirectIntegration}"} for r in routes.values())
    stage = RESOURCES["DefaultStage"]["Properties"]
    assert stage["StageName"] == "$default" and stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
    }
    permission = RESOURCES["RedirectInvokePermission"]["Properties"]
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert "${HttpApi}" in permission["SourceArn"]["Fn::Sub"]


def test_custom_domain_is_optional():
    for name in ("ShortDomain", "ShortDomainMapping"):
        assert RESOURCES[name]["Condition"] == "HasShortDomain"
    # With a custom domain, the execute-api URL is switched off: one way in.
    assert RESOURCES["HttpApi"]["Properties"]["DisableExecuteApiEndpoint"] == {"Fn::If": ["HasShortDomain", True, False]}
    assert RESOURCES["ShortDomainMapping"]["Properties"]["Stage"] == {"Ref": "DefaultStage"}
    for parameter in ("ShortDomainName", "CertificateArn", "AlarmEmail"):
        assert TEMPLATE["Parameters"][parameter]["Default"] == ""


def test_click_pipeline_is_an_ordered_stream_that_keeps_skipped_batches():
    subscription = RESOURCES["ClickSubscription"]["Properties"]
    assert subscription["LogGroupName"] == {"Ref": "RedirectLogGroup"}
    assert subscription["FilterPattern"] == '{ $.type = "click" }'
    assert subscription["DestinationArn"] == {"Fn::GetAtt": ["ClickStream", "Arn"]}
    assert subscription["RoleArn"] == {"Fn::GetAtt": ["ClickSubscriptionRole", "Arn"]}
    stream = RESOURCES["ClickStream"]["Properties"]
    assert stream["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert stream["ShardCount"] == {"Ref": "ClickStreamShards"}
    assert TEMPLATE["Parameters"]["ClickStreamShards"]["Default"] == 1
    mapping = RESOURCES["AggregatorEventSource"]["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["ClickStream", "Arn"]}
    # One invocation per shard at a time keeps each shard's batches in order.
    assert mapping["ParallelizationFactor"] == 1
    assert mapping["MaximumBatchingWindowInSeconds"] == {"Ref": "ClickBatchWindowSeconds"}
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    # A skipped batch is healed from the stream, so the mapping must give up well within the retention.
    assert 0 < mapping["MaximumRecordAgeInSeconds"] < 24 * 3600 <= TEMPLATE["Parameters"]["ClickStreamRetentionHours"]["MinValue"] * 3600
    assert RESOURCES["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert "AggregatorInvokeConfig" not in RESOURCES and "AggregatorInvokePermission" not in RESOURCES
    for group in ("RedirectLogGroup", "AggregatorLogGroup"):
        assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_redirect_logs_no_platform_lines_and_the_aggregator_logs_its_batches():
    redirect = RESOURCES["RedirectFunction"]["Properties"]["LoggingConfig"]
    assert redirect == {"LogGroup": {"Ref": "RedirectLogGroup"}, "LogFormat": "JSON", "SystemLogLevel": "WARN"}
    aggregator = RESOURCES["AggregatorFunction"]["Properties"]
    assert aggregator["LoggingConfig"]["ApplicationLogLevel"] == "INFO"
    assert aggregator["Environment"]["Variables"]["CLICK_STREAM_NAME"] == {"Ref": "ClickStream"}


def test_no_index_projects_a_counter():
    for index in table_properties()["GlobalSecondaryIndexes"]:
        projection = index["Projection"]
        assert projection["ProjectionType"] == "INCLUDE"
        assert not {"clicks", "bots", "last_clicked_at", "click_count", "bot_count"} & set(projection["NonKeyAttributes"])


# ------------------------------------------------------------------ dashboard, alarms, outputs


def test_dashboard_body_is_json_with_every_widget():
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for name in referenced(RESOURCES["Dashboard"]["Properties"]["DashboardBody"]):
        assert name in RESOURCES or name in TEMPLATE["Parameters"], name
    rendered = re.sub(r"\$\{[^}]+\}", "1", body)
    widgets = json.loads(rendered)["widgets"]
    text = json.dumps(widgets)
    for needle in ("Invocations", "Errors", "Duration", "ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits",
                   "4xx", "5xx", "Latency", "p50", "p99", "DestinationDeliveryFailures",
                   "ApproximateNumberOfMessagesVisible"):
        assert needle in text, needle
    # The click pipeline: records in, write throttles, and how far behind the aggregator is.
    for needle in ("IncomingRecords", "WriteProvisionedThroughputExceeded", "IteratorAge"):
        assert needle in text, needle


def test_dashboard_table_throttles_use_metrics_published_per_table():
    """ThrottledRequests exists only per TableName and Operation, so a TableName-only line stays empty."""
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "1", RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]))
    rows = [row for w in widgets["widgets"] for row in w["properties"]["metrics"]]
    table_metrics = set()
    namespace = None
    for row in rows:
        names = [x for x in row if isinstance(x, str)]
        if not names:
            continue
        namespace = names[0] if names[0] != "." else namespace
        if namespace == "AWS/DynamoDB":
            assert names[1] != "ThrottledRequests" or "Operation" in names, row
            table_metrics.add(names[1])
    assert {"ReadThrottleEvents", "WriteThrottleEvents"} <= table_metrics


def test_api_access_logs_are_optional_and_hold_no_ip():
    assert TEMPLATE["Parameters"]["ApiAccessLogs"]["Default"] == "false"
    assert RESOURCES["ApiAccessLogGroup"]["Condition"] == "HasApiAccessLogs"
    setting = RESOURCES["DefaultStage"]["Properties"]["AccessLogSettings"]["Fn::If"]
    assert setting[0] == "HasApiAccessLogs" and setting[2] == {"Ref": "AWS::NoValue"}
    assert setting[1]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    line = json.loads(setting[1]["Format"])
    assert "$context.requestId" in line.values() and "$context.status" in line.values()
    assert not [v for v in line.values() if "sourceIp" in v or "identity" in v], "no client IP is stored"


def test_alarm_topic_is_never_under_the_aws_managed_sns_key():
    """CloudWatch alarms cannot publish to a topic encrypted with alias/aws/sns: every alarm mail would be lost."""
    key = RESOURCES["AlarmTopic"]["Properties"]["KmsMasterKeyId"]
    assert key == {"Fn::If": ["HasAlarmTopicKey", {"Ref": "AlarmTopicKmsKeyArn"}, {"Ref": "AWS::NoValue"}]}
    assert TEMPLATE["Parameters"]["AlarmTopicKmsKeyArn"]["Default"] == ""


def test_metric_math_fills_every_metric_that_may_have_no_data():
    """A function that was never throttled has no datapoints, and `a + b` with one side empty is empty."""
    checked = 0
    for name, alarm in resources_of_type("AWS::CloudWatch::Alarm").items():
        metrics = alarm["Properties"].get("Metrics", [])
        ids = {m["Id"] for m in metrics if "MetricStat" in m}
        for expression in (m["Expression"] for m in metrics if "Expression" in m):
            used = {i for i in ids if re.search(rf"\b{i}\b", expression)}
            filled = set(re.findall(r"FILL\((\w+),\s*0\)", expression))
            assert len(used) < 2 or used <= filled, f"{name}: {expression}"
            checked += 1
    assert checked, "ThrottlesAlarm sums two functions' throttles"


def test_alarms_cover_errors_throttles_latency_and_the_queue():
    alarms = resources_of_type("AWS::CloudWatch::Alarm")
    assert set(alarms) == {"RedirectErrorsAlarm", "ThrottlesAlarm", "LatencyAlarm", "DeadLetterQueueAlarm",
                           "AggregatorErrorsAlarm", "ClickDelayAlarm", "ClickStreamThrottleAlarm",
                           "SkippedBatchRecordLostAlarm"}
    assert alarms["ClickDelayAlarm"]["Properties"]["MetricName"] == "IteratorAge"
    latency = alarms["LatencyAlarm"]["Properties"]
    assert latency["ExtendedStatistic"] == "p99" and latency["Threshold"] == {"Ref": "P99LatencyThresholdMs"}
    assert alarms["DeadLetterQueueAlarm"]["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == {
            "Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]
        }
    assert RESOURCES["AlarmTopic"]["Condition"] == "HasAlarmEmail"


def test_outputs_feed_zappa_and_the_operator():
    assert {"TableName", "ShortBaseUrl", "AdminPolicyArn", "AdminRoleArn", "DashboardUrl",
            "DeadLetterQueueUrl"} <= set(TEMPLATE["Outputs"])


def test_code_key_parameters_accept_what_make_package_writes(tmp_path):
    from deploy.package import publish_code_keys

    zips = []
    for name in ("redirect", "aggregator"):
        zips.append(tmp_path / f"{name}.zip")
        zips[-1].write_bytes(name.encode())
    keys_file = publish_code_keys(zips, tmp_path)
    overrides = dict(pair.split("=") for pair in keys_file.read_text().split())
    assert set(overrides) == {"RedirectCodeKey", "AggregatorCodeKey"}
    for parameter, key in overrides.items():
        assert re.fullmatch(TEMPLATE["Parameters"][parameter]["AllowedPattern"], key)
        assert (tmp_path / "s3" / key).read_bytes() in (b"redirect", b"aggregator")
