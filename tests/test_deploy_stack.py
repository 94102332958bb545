"""Deploy cloudformation.yaml into moto's CloudFormation: catches wiring that cfn-lint cannot see.

moto has no CloudFormation models for API Gateway v2, CloudWatch alarms, Logs subscription
and metric filters, Budgets or WAF (see UNSUPPORTED below), and rejects nothing for them: it skips them.
So the stack deployed here is the template minus those types and minus what points at them
(the API's invoke permission, the dashboard, their outputs). What does deploy, the table,
the roles and policies, the click stream and its event source mapping, the queue, the log
groups and both functions with their zips from S3, is then checked as created, with every
Ref, GetAtt and Sub resolved.
"""
import ast
import contextlib
import json
import re

import boto3
import pytest
from moto import mock_aws
from moto.cloudformation.parsing import get_model_map

from deploy import package
from local_stack.template import create_table, load_template, table_properties
from tests.conftest import REGION

STACK = "links"
BUCKET = "links-artifacts"
PSEUDO = {"AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::StackName", "AWS::URLSuffix", "AWS::NoValue"}
# What moto 5.2 can create; asserted so that a moto upgrade that adds models is noticed.
UNSUPPORTED = {
    "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::ApiMapping", "AWS::ApiGatewayV2::DomainName",
    "AWS::ApiGatewayV2::Integration", "AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::Stage",
    "AWS::CloudWatch::Alarm", "AWS::Logs::SubscriptionFilter", "AWS::Logs::MetricFilter", "AWS::Budgets::Budget",
    "AWS::WAFv2::WebACL", "AWS::WAFv2::WebACLAssociation",
}


def references(value):
    """Logical ids a value points at: Ref, GetAtt, ${...} in Sub, DependsOn."""
    if isinstance(value, dict):
        found = set()
        for key, inner in value.items():
            if key == "Ref":
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0])
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                if not isinstance(inner, str):
                    found |= references(inner[1])
            elif key == "DependsOn":
                found |= set(inner if isinstance(inner, list) else [inner])
            else:
                found |= references(inner)
        return found - PSEUDO
    if isinstance(value, list):
        return set().union(set(), *(references(v) for v in value))
    return set()


def deployable_template():
    """The template without the types moto cannot create and everything that needs them."""
    template = load_template()
    resources = template["Resources"]
    models = get_model_map()
    skipped = {name for name, r in resources.items() if r["Type"] not in models}
    assert {resources[name]["Type"] for name in skipped} == UNSUPPORTED
    while True:
        needing = {name for name, r in resources.items() if name not in skipped and references(r) & skipped}
        if not needing:
            break
        skipped |= needing
    template["Resources"] = {name: r for name, r in resources.items() if name not in skipped}
    template["Outputs"] = {k: v for k, v in template["Outputs"].items() if not references(v) & skipped}
    return template, skipped


@pytest.fixture(scope="module")
def code_keys(tmp_path_factory):
    """The real zips of `make package`, under the S3 keys it writes."""
    out = tmp_path_factory.mktemp("code")
    zips = [package.build_redirect(out), package.build_aggregator(out)]
    keys = dict(pair.split("=") for pair in package.publish_code_keys(zips, out).read_text().split())
    return out / "s3", keys


@contextlib.contextmanager
def deployed(code_keys, before=None, **extra):
    """The deployable part of the stack, created in moto with these parameters; yields (outputs, physical ids).

    before: called inside moto before the stack is created (to arrange what the stack adopts).
    """
    staging, keys = code_keys
    template, skipped = deployable_template()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        for key in keys.values():
            s3.upload_file(str(staging / key), BUCKET, key)
        if before:
            before()
        parameters = {
            "ArtifactBucket": BUCKET, **keys,
            "AdminUrl": "https://admin.example.com/",
            "AlarmEmail": "ops@example.com",
            **extra,
        }
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
        description = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
        assert description["StackStatus"] == "CREATE_COMPLETE", description.get("StackStatusReason")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in description["Outputs"]}
        # moto lists a resource whose Condition is false (ApiAccessLogGroup by default) with no logical id.
        physical = {
            r["LogicalResourceId"]: r.get("PhysicalResourceId")
            for r in cloudformation.describe_stack_resources(StackName=STACK)["StackResources"]
            if "LogicalResourceId" in r
        }
        yield outputs, physical, skipped


@pytest.fixture
def stack(code_keys):
    """The deployable part of the stack with the default parameters; yields (outputs, physical ids, skipped)."""
    with deployed(code_keys) as created:
        yield created


def test_the_supported_resources_all_come_up(stack):
    outputs, physical, skipped = stack
    assert {"LinksTable", "RedirectRole", "AggregatorRole", "AdminRole", "AdminPolicy", "DeadLetterQueue",
            "RedirectLogGroup", "AggregatorLogGroup", "AdminLogGroup", "RedirectFunction", "AggregatorFunction",
            "ClickStream", "ClickSubscriptionRole", "AggregatorEventSource", "AlarmTopic",
            "AdminOidcSecretPolicy", "SaltLogGroup", "SaltRole", "SaltFunction", "SaltSchedule",
            "SaltInvokePermission", "SaltsTable"} <= set(physical)
    assert skipped == {"HttpApi", "RedirectIntegration", "GetLinkRoute", "HeadLinkRoute", "RootRoute",
                       "DefaultStage", "RedirectInvokePermission", "ShortDomain", "ShortDomainMapping",
                       "ClickSubscription", "Dashboard", "RedirectErrorsAlarm", "ThrottlesAlarm", "LatencyAlarm",
                       "DeadLetterQueueAlarm", "AggregatorErrorsAlarm", "ClickDelayAlarm", "ClickStreamThrottleAlarm",
                       "SkippedBatchRecordLostAlarm", "SubscriptionDeliveryErrorsAlarm", "SubscriptionThrottlingAlarm",
                       "AggregatorNotInvokedAlarm", "RecordsLostAlarm", "RecordsSkippedAlarm",
                       "SignInFailuresAlarm", "SignInLockoutsAlarm", "SecurityTxtRoute", "HeadSecurityTxtRoute",
                       "SignInWebAcl", "SignInWebAclAssociation", "RedirectStoreErrorsFilter",
                       "RedirectStoreRetryableErrorsFilter", "RedirectStoreErrorsAlarm",
                       "RedirectStoreRetryableErrorsAlarm", "Api5xxAlarm", "MonthlyBudget", "SaltRotationErrorsAlarm"}
    assert {"TableName", "AdminPolicyArn", "AdminRoleArn", "DeadLetterQueueUrl", "AggregatorFunctionName",
            "SaltsTableName", "SaltFunctionName"} <= set(outputs)


def test_the_salt_schedule_invokes_the_salt_function_every_15_minutes(stack):
    outputs, physical, _ = stack
    events = boto3.client("events", region_name=REGION)
    rule = events.describe_rule(Name=physical["SaltSchedule"])
    assert (rule["Name"], rule["ScheduleExpression"], rule["State"]) == (f"{STACK}-salts", "rate(15 minutes)", "ENABLED")
    [target] = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    function = boto3.client("lambda", region_name=REGION).get_function(FunctionName=physical["SaltFunction"])
    assert target["Arn"] == function["Configuration"]["FunctionArn"]
    assert function["Configuration"]["Handler"] == "aggregator.salts.lambda_handler"
    assert function["Configuration"]["FunctionName"] == outputs["SaltFunctionName"]  # what make deploy invokes


def test_the_salts_table_is_its_own_with_the_templates_keys_and_no_protection(stack):
    """SaltsTable: beside the links table, never it; the schema is the template's; deleted with the stack."""
    outputs, physical, _ = stack
    ddb = boto3.client("dynamodb", region_name=REGION)
    table = ddb.describe_table(TableName=outputs["SaltsTableName"])["Table"]
    assert outputs["SaltsTableName"] == physical["SaltsTable"] != outputs["TableName"]
    assert outputs["SaltsTableName"].startswith(f"{STACK}-SaltsTable-")  # the deployer policy's pattern
    assert table["KeySchema"] == table_properties(resource="SaltsTable")["KeySchema"]
    assert not table.get("GlobalSecondaryIndexes")  # moto lists none as []
    assert table["DeletionProtectionEnabled"] is False
    lambda_ = boto3.client("lambda", region_name=REGION)
    env = lambda_.get_function(FunctionName=physical["SaltFunction"])["Configuration"]["Environment"]["Variables"]
    assert env == {"SALT_TABLE_NAME": outputs["SaltsTableName"]}


def test_the_deployed_table_matches_the_template(stack):
    outputs, _, _ = stack
    table = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=outputs["TableName"])["Table"]
    props = table_properties()
    assert table["KeySchema"] == props["KeySchema"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["by_list"]
    # Off on a first create (TableDeletionProtection's default), so a failed create can delete the new table.
    assert table["DeletionProtectionEnabled"] is False
    # moto's CloudFormation does not apply TTL or PITR; the template tests check those properties.


def test_deletion_protection_follows_its_parameter(code_keys):
    """What `make deploy` passes after the first create."""
    with deployed(code_keys, TableDeletionProtection="true") as (outputs, _, _):
        ddb = boto3.client("dynamodb", region_name=REGION)
        table = ddb.describe_table(TableName=outputs["TableName"])["Table"]
        assert table["DeletionProtectionEnabled"] is True
        # Never the salts': they go with the stack (DeletionPolicy Delete), and protection would only stop that.
        assert ddb.describe_table(TableName=outputs["SaltsTableName"])["Table"]["DeletionProtectionEnabled"] is False


ADOPTED = "links-restored"


def test_an_existing_table_is_adopted_and_no_table_is_created(code_keys):
    """A point-in-time restore (or a replica) named by ExistingTableName: the stack creates no table, and
    both functions, every role and the outputs name the adopted one."""
    def restore():
        create_table(boto3.client("dynamodb", region_name=REGION), ADOPTED)

    with deployed(code_keys, before=restore, ExistingTableName=ADOPTED) as (outputs, physical, _):
        ddb = boto3.client("dynamodb", region_name=REGION)
        # The salts' table is the stack's own also here: an adopted (restored) table's salts are never used.
        assert sorted(ddb.list_tables()["TableNames"]) == sorted([ADOPTED, outputs["SaltsTableName"]])
        assert "LinksTable" not in physical or physical["LinksTable"] in (None, "")
        assert outputs["TableName"] == ADOPTED
        lambda_ = boto3.client("lambda", region_name=REGION)
        for function in (physical["RedirectFunction"], outputs["AggregatorFunctionName"]):
            env = lambda_.get_function(FunctionName=function)["Configuration"]["Environment"]["Variables"]
            assert env["TABLE_NAME"] == ADOPTED, function
        table_arn = ddb.describe_table(TableName=ADOPTED)["Table"]["TableArn"]
        iam = boto3.client("iam", region_name=REGION)
        named = set()
        for role in ("RedirectRole", "AggregatorRole"):
            for policy in iam.list_role_policies(RoleName=physical[role])["PolicyNames"]:
                doc = iam.get_role_policy(RoleName=physical[role], PolicyName=policy)["PolicyDocument"]
                doc = ast.literal_eval(doc) if isinstance(doc, str) else doc
                named |= {r for s in doc["Statement"] for r in ([s["Resource"]] if isinstance(s["Resource"], str)
                                                                 else s["Resource"]) if ":dynamodb:" in r}
        version = iam.get_policy(PolicyArn=outputs["AdminPolicyArn"])["Policy"]["DefaultVersionId"]
        admin = iam.get_policy_version(PolicyArn=outputs["AdminPolicyArn"], VersionId=version)["PolicyVersion"]["Document"]
        named |= {s["Resource"] for s in admin["Statement"] if ":dynamodb:" in s["Resource"]}
        salts_arn = ddb.describe_table(TableName=outputs["SaltsTableName"])["Table"]["TableArn"]
        assert named == {table_arn, f"{table_arn}/index/by_list", salts_arn}  # salts: the redirect's read


def test_roles_point_at_the_real_table_log_groups_and_queue(stack):
    outputs, physical, _ = stack
    iam = boto3.client("iam", region_name=REGION)
    table_arn = boto3.client("dynamodb", region_name=REGION).describe_table(
        TableName=outputs["TableName"])["Table"]["TableArn"]
    queue_arn = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=outputs["DeadLetterQueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def inline(role):
        name = physical[role]
        docs = [iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                for p in iam.list_role_policies(RoleName=name)["PolicyNames"]]
        # moto stores an inline policy built with Fn::Sub as the dict's repr, not as JSON.
        docs = [ast.literal_eval(doc) if isinstance(doc, str) else doc for doc in docs]
        actions = {}
        for statement in (s for doc in docs for s in doc["Statement"]):
            resource = statement["Resource"] if isinstance(statement["Resource"], str) else tuple(statement["Resource"])
            granted = statement["Action"]
            actions.setdefault(resource, set()).update([granted] if isinstance(granted, str) else granted)
        return actions

    salts_arn = boto3.client("dynamodb", region_name=REGION).describe_table(
        TableName=outputs["SaltsTableName"])["Table"]["TableArn"]
    log_arn = f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/lambda/{STACK}-%s:*"
    assert inline("RedirectRole") == {
        table_arn: {"dynamodb:GetItem"},
        salts_arn: {"dynamodb:GetItem"},
        log_arn % "redirect": {"logs:CreateLogStream", "logs:PutLogEvents"},
    }
    # The salt function: its table and its logs, nothing of the links table.
    assert inline("SaltRole") == {
        salts_arn: {"dynamodb:PutItem", "dynamodb:Query", "dynamodb:DeleteItem"},
        log_arn % "salts": {"logs:CreateLogStream", "logs:PutLogEvents"},
    }
    stream_arn = boto3.client("kinesis", region_name=REGION).describe_stream_summary(
        StreamName=outputs["ClickStreamName"])["StreamDescriptionSummary"]["StreamARN"]
    aggregator = inline("AggregatorRole")
    assert set(aggregator) == {table_arn, stream_arn, log_arn % "aggregator", queue_arn}
    assert aggregator[queue_arn] == {"sqs:SendMessage"}
    assert aggregator[table_arn] == {"dynamodb:UpdateItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:GetItem"}

    version = iam.get_policy(PolicyArn=outputs["AdminPolicyArn"])["Policy"]["DefaultVersionId"]
    admin = iam.get_policy_version(PolicyArn=outputs["AdminPolicyArn"], VersionId=version)["PolicyVersion"]["Document"]
    resources = {s["Sid"]: s["Resource"] for s in admin["Statement"]}
    assert resources == {
        "LinksCrud": table_arn,
        "BatchWrites": table_arn,
        "Deletes": table_arn,
        "ListPages": f"{table_arn}/index/by_list",
        "SecretKey": f"arn:aws:ssm:{REGION}:123456789012:parameter/linkshortener/prod/secret-key",
        "BackgroundImports": f"arn:aws:lambda:{REGION}:123456789012:function:linkshortener-prod",
    }


def test_functions_get_their_code_role_and_settings(stack):
    outputs, physical, _ = stack
    lambda_ = boto3.client("lambda", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    redirect = lambda_.get_function(FunctionName=physical["RedirectFunction"])["Configuration"]
    assert redirect["FunctionName"] == f"{STACK}-redirect"
    assert redirect["Handler"] == "redirect_fn.handler.lambda_handler" and redirect["Runtime"] == "python3.13"
    assert redirect["Role"] == iam.get_role(RoleName=physical["RedirectRole"])["Role"]["Arn"]
    # Lambda keeps environment values as strings; moto keeps a Number parameter's int.
    assert {k: str(v) for k, v in redirect["Environment"]["Variables"].items()} == {
        "TABLE_NAME": outputs["TableName"], "LINK_CACHE_SECONDS": "10", "SECURITY_CONTACT": "", "SECURITY_POLICY": "",
        "ROOT_REDIRECT_URL": "https://admin.example.com/", "SALT_TABLE_NAME": outputs["SaltsTableName"],
    }
    aggregator = lambda_.get_function(FunctionName=outputs["AggregatorFunctionName"])["Configuration"]
    assert {k: str(v) for k, v in aggregator["Environment"]["Variables"].items()} == {
        "TABLE_NAME": outputs["TableName"], "CLICK_STREAM_RETENTION_HOURS": "24",
    }
    assert aggregator["Role"] == iam.get_role(RoleName=physical["AggregatorRole"])["Role"]["Arn"]


def test_the_aggregator_reads_the_click_stream(stack):
    outputs, _, _ = stack
    stream_arn = boto3.client("kinesis", region_name=REGION).describe_stream_summary(
        StreamName=outputs["ClickStreamName"])["StreamDescriptionSummary"]["StreamARN"]
    (mapping,) = boto3.client("lambda", region_name=REGION).list_event_source_mappings(
        FunctionName=outputs["AggregatorFunctionName"])["EventSourceMappings"]
    assert mapping["EventSourceArn"] == stream_arn


def test_log_groups_and_queue_keep_what_they_should(stack):
    outputs, _, _ = stack
    groups = boto3.client("logs", region_name=REGION).describe_log_groups()["logGroups"]
    assert {g["logGroupName"]: g["retentionInDays"] for g in groups} == {
        f"/aws/lambda/{STACK}-redirect": 30, f"/aws/lambda/{STACK}-aggregator": 30, f"/aws/lambda/{STACK}-salts": 30,
        "/aws/lambda/linkshortener-prod": 30,  # the Zappa admin's (AdminFunctionName's default)
    }
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=outputs["DeadLetterQueueUrl"], AttributeNames=["All"])["Attributes"]
    assert attributes["MessageRetentionPeriod"] == "1209600"


def _make_boundary():
    """The stage's boundary as the administrator makes it once (deploy/iam/role-boundary-policy.json, rendered)."""
    from deploy import deployer_policy
    from tests.test_deployer_policy import BOUNDARY

    arn = deployer_policy.role_boundary({"stack_name": STACK, "region": REGION}, "123456789012")
    path, _, name = arn.partition(":policy")[2].rpartition("/")
    boto3.client("iam", region_name=REGION).create_policy(PolicyName=name, Path=f"{path}/", PolicyDocument=json.dumps(BOUNDARY))
    return arn


def test_with_a_boundary_every_role_of_the_stack_carries_it(code_keys):
    from deploy import deployer_policy

    arn = deployer_policy.role_boundary({"stack_name": STACK, "region": REGION}, "123456789012")
    with deployed(code_keys, before=_make_boundary, RolePermissionsBoundaryArn=arn) as (_, physical, _):
        iam = boto3.client("iam", region_name=REGION)
        roles = [name for name, r in load_template()["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
        assert len(roles) == 5
        for role in roles:
            assert iam.get_role(RoleName=physical[role])["Role"]["PermissionsBoundary"] == {
                "PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": arn}, role


def test_without_a_boundary_the_roles_have_none(stack):
    _, physical, _ = stack
    role = boto3.client("iam", region_name=REGION).get_role(RoleName=physical["AdminRole"])["Role"]
    assert "PermissionsBoundary" not in role
