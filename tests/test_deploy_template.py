"""cloudformation.yaml, proven offline: cfn-lint, table parity, IAM read from the template, wiring."""
import ast
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from local_stack.template import TEMPLATE_PATH, create_table_kwargs, load_template, table_properties
from tests.conftest import TABLE_NAME
from tests.static_names import resolve
from tests.test_deploy_iam import derived_actions
from tests.test_settings import read_by_code

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
# The table this stack created, or the one it adopted (ExistingTableName): its name, and ARNs built from it.
TABLE_NAME_VALUE = {"Fn::If": ["CreateTable", {"Ref": "LinksTable"}, {"Ref": "ExistingTableName"}]}


def table_arn(suffix=""):
    return {"Fn::Sub": [f"arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/${{Table}}{suffix}",
                        {"Table": TABLE_NAME_VALUE}]}


TABLE_ARN = table_arn()

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
    """The logical ids an intrinsic value points at (Ref, GetAtt, ${...} in Sub); the table, created or adopted, is LinksTable."""
    if value == TABLE_NAME_VALUE:
        return {"LinksTable"}
    if isinstance(value, dict):
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], list):
            text, variables = value["Fn::Sub"]
            names = {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
            return (referenced({"Fn::Sub": text}) - set(variables)) | referenced(
                [v for k, v in variables.items() if k in names])
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
def test_cfn_lint_reports_nothing_with_informational_checks_on():
    """Errors, warnings and the informational checks (-c I: I3011, a stateful resource without explicit
    DeletionPolicy and UpdateReplacePolicy, among them): any finding fails."""
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), "-c", "I", "--", str(TEMPLATE_PATH)], capture_output=True, text=True,
                            timeout=300)
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
    """Kept on delete and replace, but a first create that rolls back leaves no orphan table behind.

    That rollback deletes the new table, which DynamoDB refuses while deletion protection is on: so
    protection is a parameter, off by default (the first create) and turned on by `make deploy` after it.
    """
    table = RESOURCES["LinksTable"]
    assert table["DeletionPolicy"] == "RetainExceptOnCreate"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert table["Properties"]["DeletionProtectionEnabled"] == {"Fn::If": ["ProtectTable", True, False]}
    assert TEMPLATE["Conditions"]["ProtectTable"] == {"Fn::Equals": [{"Ref": "TableDeletionProtection"}, "true"]}
    assert TEMPLATE["Parameters"]["TableDeletionProtection"]["Default"] == "false"
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


# ------------------------------------------------------------------ IAM


def test_redirect_role_can_only_read_links_and_salts_and_write_its_logs():
    statements = statements_of_role("RedirectRole")
    allowed = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            allowed.setdefault(action, []).extend(as_list(statement["Resource"]))
    assert set(allowed) == {"dynamodb:GetItem", "logs:CreateLogStream", "logs:PutLogEvents"}
    assert not WRITE_ACTIONS & set(allowed)
    assert allowed["dynamodb:GetItem"] == [TABLE_ARN, {"Fn::GetAtt": ["SaltsTable", "Arn"]}]
    assert allowed["logs:PutLogEvents"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${RedirectLogGroup}:*"}
    ]


def claim_key_prefix():
    """The partition key prefix of a claim, as aggregator/layout.py names it."""
    tree = ast.parse((ROOT / "aggregator" / "layout.py").read_text())
    [prefix] = resolve(ast.Name(id="CLAIM_PK_PREFIX"), tree)
    return prefix


def test_aggregator_role_updates_the_table_reads_its_stream_and_records_skips():
    allowed_targets = {
        # No transactions, no DeleteItem, no Query or Scan: updates, claims, the reads of a retry,
        # and the stats retention setting.
        "LinksTable": {"dynamodb:UpdateItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:GetItem"},
        "ClickStream": {"kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
                        "kinesis:GetShardIterator", "kinesis:ListShards"},
        "AggregatorLogGroup": {"logs:CreateLogStream", "logs:PutLogEvents"},
        "DeadLetterQueue": {"sqs:SendMessage"},
    }
    seen = set()
    for statement in statements_of_role("AggregatorRole"):
        assert statement["Effect"] == "Allow"
        # Only the claims' PutItem and the setting's GetItem carry a condition (test_the_aggregator_may_put_only_claims,
        # test_the_aggregator_may_get_only_the_retention_setting).
        assert "Condition" not in statement or as_list(statement["Action"]) in (["dynamodb:PutItem"], ["dynamodb:GetItem"]), statement
        targets = referenced(statement["Resource"])
        assert len(targets) == 1 and targets <= allowed_targets.keys(), statement
        target = targets.pop()
        assert set(as_list(statement["Action"])) <= allowed_targets[target], statement
        seen.add(target)
    assert seen == allowed_targets.keys()


def test_the_aggregator_may_get_only_the_retention_setting():
    """The aggregator reads one item: the stats retention setting (aggregator/handler.py retention_days)."""
    from aggregator import layout

    gets = [s for s in statements_of_role("AggregatorRole") if "dynamodb:GetItem" in as_list(s["Action"])]
    assert len(gets) == 1 and as_list(gets[0]["Action"]) == ["dynamodb:GetItem"]
    assert gets[0]["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [layout.RETENTION_SETTING_KEY["pk"]["S"]]}
    }


def test_the_aggregator_may_put_only_claims():
    """A put replaces a whole item: the aggregator's PutItem is limited to claim#... keys, so it can
    never overwrite a link, a user or a counter (aggregator/claims.py is its only PutItem)."""
    puts = [s for s in statements_of_role("AggregatorRole") if "dynamodb:PutItem" in as_list(s["Action"])]
    assert puts, "claims are written with PutItem"
    for statement in puts:
        assert as_list(statement["Action"]) == ["dynamodb:PutItem"], statement
        assert statement["Condition"] == {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{claim_key_prefix()}*"]}
        }, "PutItem without a claim#... key condition could overwrite any item"


def test_only_cloudwatch_logs_may_put_on_the_click_stream():
    role = RESOURCES["ClickSubscriptionRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "logs.amazonaws.com"}
    # The confused-deputy form the CloudWatch Logs guide gives for a subscription role (issue 17, #4).
    assert trust["Condition"] == {"StringLike": {
        "aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:*"}}}
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
    if "lambda:InvokeFunction" in derived:  # a background import invokes the admin function itself
        needed["own-function"] = {"lambda:InvokeFunction"}
    return needed


def admin_grants():
    """What AdminPolicy grants, as {resource: IAM actions}, in the same terms as admin_calls()."""
    granted = {}
    for statement in managed_policy_statements("AdminPolicy"):
        assert statement["Effect"] == "Allow"
        for resource in as_list(statement["Resource"]):
            if resource == TABLE_ARN:
                key = "table"
            elif resource == table_arn("/index/by_list"):
                key = "index/by_list"
            elif "Fn::Sub" in resource and ":parameter${SecretKeyParameterName}" in resource["Fn::Sub"]:
                key = "secret"
            elif "Fn::Sub" in resource and resource["Fn::Sub"].endswith(":lambda:${AWS::Region}:${AWS::AccountId}:function:${AdminFunctionName}"):
                key = "own-function"
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
    assert sorted(handlers) == ["aggregator.handler.lambda_handler", "aggregator.salts.lambda_handler",
                                "redirect_fn.handler.lambda_handler"]
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
        "TABLE_NAME": TABLE_NAME_VALUE,
        "LINK_CACHE_SECONDS": {"Ref": "LinkCacheSeconds"},
        "ROOT_REDIRECT_URL": {"Ref": "AdminUrl"},
        "SECURITY_CONTACT": {"Ref": "SecurityContact"},
        "SECURITY_POLICY": {"Ref": "SecurityPolicyUrl"},
        "SALT_TABLE_NAME": {"Ref": "SaltsTable"},
    }


def test_http_api_routes_go_to_the_redirect_function():
    integration = RESOURCES["RedirectIntegration"]["Properties"]
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["PayloadFormatVersion"] == "2.0"
    assert integration["IntegrationUri"] == {"Fn::GetAtt": ["RedirectFunction", "Arn"]}
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in resources_of_type("AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {"GET /{short_id}", "HEAD /{short_id}", "GET /", "GET /.well-known/security.txt",
                           "HEAD /.well-known/security.txt"}
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
    # A custom domain keeps the execute-api URL unless KeepExecuteApiEndpoint is "false": links shared on it keep working.
    assert RESOURCES["HttpApi"]["Properties"]["DisableExecuteApiEndpoint"] == {"Fn::If": ["DisableExecuteApi", True, False]}
    assert TEMPLATE["Conditions"]["DisableExecuteApi"] == {"Fn::And": [
        {"Fn::Condition": "HasShortDomain"}, {"Fn::Equals": [{"Ref": "KeepExecuteApiEndpoint"}, "false"]}]}
    assert TEMPLATE["Parameters"]["KeepExecuteApiEndpoint"]["Default"] == "true"
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
    assert RESOURCES["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert "AggregatorInvokeConfig" not in RESOURCES and "AggregatorInvokePermission" not in RESOURCES
    for group in ("RedirectLogGroup", "AggregatorLogGroup"):
        assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_mapping_never_skips_a_failing_batch():
    """-1 is AWS's documented "retried until the record expires" and "doesn't discard records": the
    aggregator has no heal and no stream read on its batch path, so a skip would be a gap for good."""
    mapping = RESOURCES["AggregatorEventSource"]["Properties"]
    assert mapping["MaximumRetryAttempts"] == -1, (
        "finite retries skip a failing batch after an outage, and nothing reads a skipped range back: "
        "those clicks would be lost (only reported as RecordsSkipped)")
    assert mapping["MaximumRecordAgeInSeconds"] == -1, (
        "a record age limit skips every batch older than it after an outage of DynamoDB or the aggregator; "
        "-1 keeps retrying until the stream's retention trims the records")
    # Whole batches in order: the claims and marks make a retried batch count once; halves add nothing.
    assert mapping["BisectBatchOnFunctionError"] is False
    assert mapping["ParallelizationFactor"] == 1
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"], (
        "without partial batch responses a backlog batch longer than one call times out, and is retried for ever")
    # What is still discarded is what the stream trimmed: its range goes to the queue, reported as lost.
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert "RecordsLost" in TEMPLATE["Parameters"]["ClickStreamRetentionHours"]["Description"]


def test_the_aggregator_is_told_exactly_the_settings_its_code_reads():
    """Its claims must outlive the stream's retention, so the function is given the stack's retention."""
    variables = RESOURCES["AggregatorFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["CLICK_STREAM_RETENTION_HOURS"] == {"Ref": "ClickStreamRetentionHours"}
    unread = set(variables) - read_by_code(("aggregator",))
    assert not unread, f"the template sets {sorted(unread)} for the aggregator, whose code never reads them"


def test_the_redirect_logs_no_platform_lines_and_the_aggregator_logs_its_batches():
    redirect = RESOURCES["RedirectFunction"]["Properties"]["LoggingConfig"]
    assert redirect == {"LogGroup": {"Ref": "RedirectLogGroup"}, "LogFormat": "JSON", "SystemLogLevel": "WARN"}
    aggregator = RESOURCES["AggregatorFunction"]["Properties"]
    assert aggregator["LoggingConfig"]["ApplicationLogLevel"] == "INFO"


def test_warm_throughput_is_a_parameter_off_by_default():
    """A new on-demand table takes 4,000 writes a second; a campaign spread thin at 10,000 clicks a
    second needs about 20,000 (2 items a click). Pre-warming is billed and cannot be undone, so it is
    the operator's choice, and 0 (the default) sets nothing."""
    parameter = TEMPLATE["Parameters"]["TableWarmWriteUnitsPerSecond"]
    assert parameter["Type"] == "Number" and parameter["Default"] == 0 and parameter["MinValue"] == 0
    for figure in ("4,000", "20,000", "billed"):
        assert figure in parameter["Description"], figure
    assert TEMPLATE["Conditions"]["HasWarmWrites"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "TableWarmWriteUnitsPerSecond"}, 0]}]}
    assert table_properties()["WarmThroughput"] == {"Fn::If": [
        "HasWarmWrites", {"WriteUnitsPerSecond": {"Ref": "TableWarmWriteUnitsPerSecond"}}, {"Ref": "AWS::NoValue"}]}
    # The local and test tables are created without it (DynamoDB Local has no throughput to warm).
    assert "WarmThroughput" not in create_table_kwargs("local")


def test_no_index_projects_a_counter():
    for index in table_properties()["GlobalSecondaryIndexes"]:
        projection = index["Projection"]
        assert projection["ProjectionType"] == "INCLUDE"
        assert not {"clicks", "bots", "last_clicked_at", "click_count", "bot_count"} & set(projection["NonKeyAttributes"])


# ------------------------------------------------------------------ dashboard, alarms, outputs


def test_dashboard_body_is_json_with_every_widget():
    body, variables = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert variables == {"TableName": TABLE_NAME_VALUE}
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
    # What is not counted: delivery failures before the stream, and what the aggregator reports lost.
    for needle in ("DeliveryErrors", "DeliveryThrottling", "RecordsLost", "RecordsSkipped"):
        assert needle in text, needle


def test_dashboard_table_throttles_use_metrics_published_per_table():
    """ThrottledRequests exists only per TableName and Operation, so a TableName-only line stays empty."""
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "1", RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]))
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
            expression = expression["Fn::Sub"] if isinstance(expression, dict) else expression
            used = {i for i in ids if re.search(rf"\b{i}\b", expression)}
            filled = set(re.findall(r"FILL\((\w+),\s*0\)", expression))
            assert len(used) < 2 or used <= filled, f"{name}: {expression}"
            checked += 1
    assert checked, "ThrottlesAlarm sums two functions' throttles"


def test_alarms_cover_errors_throttles_latency_and_the_queue():
    alarms = resources_of_type("AWS::CloudWatch::Alarm")
    assert set(alarms) == {"RedirectErrorsAlarm", "ThrottlesAlarm", "LatencyAlarm", "DeadLetterQueueAlarm",
                           "AggregatorErrorsAlarm", "ClickDelayAlarm", "ClickStreamThrottleAlarm",
                           "SkippedBatchRecordLostAlarm", "SubscriptionDeliveryErrorsAlarm",
                           "SubscriptionThrottlingAlarm", "AggregatorNotInvokedAlarm", "RecordsLostAlarm",
                           "RecordsSkippedAlarm", "SignInFailuresAlarm", "SignInLockoutsAlarm",
                           "RedirectStoreErrorsAlarm", "RedirectStoreRetryableErrorsAlarm", "Api5xxAlarm",
                           "SaltRotationErrorsAlarm"}
    assert alarms["ClickDelayAlarm"]["Properties"]["MetricName"] == "IteratorAge"
    latency = alarms["LatencyAlarm"]["Properties"]
    [p99] = [m for m in latency["Metrics"] if m["Id"] == "p99"]
    assert p99["MetricStat"]["Stat"] == "p99" and latency["Threshold"] == {"Ref": "P99LatencyThresholdMs"}
    assert alarms["DeadLetterQueueAlarm"]["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == {
            "Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]
        }
    assert RESOURCES["AlarmTopic"]["Condition"] == "HasAlarmEmail"


def test_the_queue_alarm_means_discarded_ranges_not_yet_accounted_for():
    """The mapping never gives up, so a message is a range the stream trimmed; replay-dlq accounts for it."""
    description = RESOURCES["DeadLetterQueueAlarm"]["Properties"]["AlarmDescription"]
    assert "make replay-dlq" in description and "ClickStreamRetentionHours" in description
    assert "next batch" not in description, "no batch reads a discarded range back any more"


# Every metric of the namespace (no SCHEMA): AWS documents the delivery metrics' valid dimensions
# (CloudWatch Logs user guide, "Monitoring with CloudWatch metrics") but not which sets it publishes.
LOGS_NAMESPACE = '"AWS/Logs"'


@pytest.mark.parametrize(("alarm", "metric"), [
    ("SubscriptionDeliveryErrorsAlarm", "DeliveryErrors"),
    ("SubscriptionThrottlingAlarm", "DeliveryThrottling"),
])
def test_delivery_failures_before_the_stream_are_alarmed(alarm, metric):
    """Lines CloudWatch Logs fails to put on the stream never reach the aggregator: no aggregator
    metric can see them. The query names the redirect log group, whatever DestinationType's value
    and the generated filter name are."""
    props = RESOURCES[alarm]["Properties"]
    [query] = props["Metrics"]
    assert query["ReturnData"] is True and query["Period"] >= 60
    assert query["Expression"] == {"Fn::Sub": (
        f"SELECT SUM({metric}) FROM {LOGS_NAMESPACE} WHERE LogGroupName = '${{RedirectLogGroup}}'")}
    assert RESOURCES["ClickSubscription"]["Properties"]["LogGroupName"] == {"Ref": "RedirectLogGroup"}
    assert props["Threshold"] == 1 and props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["TreatMissingData"] == "notBreaching"


def test_records_arriving_while_the_aggregator_is_not_invoked_are_alarmed():
    """When the mapping stops invoking the aggregator, IteratorAge and Errors publish nothing and the
    delay alarm treats that as not breaching: only the stream's own IncomingRecords still moves."""
    assert RESOURCES["ClickDelayAlarm"]["Properties"]["TreatMissingData"] == "notBreaching"
    props = RESOURCES["AggregatorNotInvokedAlarm"]["Properties"]
    queries = {m["Id"]: m for m in props["Metrics"]}
    incoming = queries["incoming"]["MetricStat"]
    invocations = queries["invocations"]["MetricStat"]
    assert (incoming["Metric"]["Namespace"], incoming["Metric"]["MetricName"], incoming["Stat"]) == (
        "AWS/Kinesis", "IncomingRecords", "Sum")
    assert incoming["Metric"]["Dimensions"] == [{"Name": "StreamName", "Value": {"Ref": "ClickStream"}}]
    assert (invocations["Metric"]["Namespace"], invocations["Metric"]["MetricName"], invocations["Stat"]) == (
        "AWS/Lambda", "Invocations", "Sum")
    assert invocations["Metric"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "AggregatorFunction"}}]
    [result] = [m for m in props["Metrics"] if m.get("ReturnData")]
    assert result["Expression"] == "FILL(incoming, 0) > 0 AND FILL(invocations, 0) == 0"
    # Each period outlasts the longest batching window, and every evaluated period must breach, so
    # records whose batch lands in the next period never fire it.
    longest_window = TEMPLATE["Parameters"]["ClickBatchWindowSeconds"]["MaxValue"]
    assert incoming["Period"] == invocations["Period"] >= longest_window
    assert props["DatapointsToAlarm"] == props["EvaluationPeriods"] >= 2
    assert props["Threshold"] == 1 and props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def aggregator_metrics():
    """(namespace, {metric names}, {dimension names}) of the embedded metrics aggregator/ prints."""
    namespaces, names, dimensions = set(), set(), set()
    for path in sorted((ROOT / "aggregator").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "emit_metrics" and node.args:
                names |= {k.value for k in node.args[0].keys if isinstance(k, ast.Constant)}
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and key.value == "Namespace":
                        namespaces |= resolve(value, tree)
                    if isinstance(key, ast.Constant) and key.value == "Dimensions" and isinstance(value, ast.List):
                        dimensions |= {e.value for group in value.elts for e in group.elts}
    [namespace] = namespaces
    return namespace, names, dimensions


@pytest.mark.parametrize(("alarm", "metric"), [("RecordsLostAlarm", "RecordsLost"),
                                               ("RecordsSkippedAlarm", "RecordsSkipped")])
def test_what_the_aggregator_reports_lost_or_skipped_is_alarmed(alarm, metric):
    """The alarm watches the embedded metric the aggregator prints, under its namespace and dimension."""
    namespace, names, dimensions = aggregator_metrics()
    props = RESOURCES[alarm]["Properties"]
    assert metric in names and props["MetricName"] == metric
    assert props["Namespace"] == namespace == "Shortener"
    assert dimensions == {"FunctionName"}
    assert props["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "AggregatorFunction"}}]
    assert props["Statistic"] == "Sum" and props["Threshold"] == 1
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # Printed only when a discarded range is accounted for: no data means nothing was lost.
    assert props["TreatMissingData"] == "notBreaching"


def readme_parameters():
    """The parameter names in the first column of the README's stack parameter table."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| Parameter | Default | What |"):]
    table = table[:table.index("\n\n")]
    return {name for line in table.splitlines()[2:] for name in re.findall(r"`(\w+)`", line.split("|")[1])}


def test_the_readme_documents_every_stack_parameter():
    missing = set(TEMPLATE["Parameters"]) - readme_parameters()
    assert not missing, f"add these to the README's parameter table (Deploy to AWS, step 3): {sorted(missing)}"


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
