"""Outside review of `make deploy` (issue 17): the breaks found, each as a test (reviewer rev-deploy)."""
import io
import json
import signal

import boto3
import pytest
from botocore.exceptions import ClientError

from deploy import deploy as deploy_command
from deploy.stage import STAGES_DIR, StageError, load_stage
from tests.test_deploy_command import (  # noqa: F401  (fixtures)
    REGION, Harness, aws, changes_apply_fully, harness, stack_parameters, template_text)


def stage_files(folder, **stages):
    """deploy/stages copied to folder, each named stage edited: {"drop": [...], "parameters": {...}, key: value}."""
    folder.mkdir(exist_ok=True)
    for path in STAGES_DIR.glob("*.json"):
        raw = json.loads(path.read_text())
        edit = dict(stages.get(path.stem, {}))
        for name in edit.pop("drop", []):
            raw["parameters"].pop(name)
        raw["parameters"].update(edit.pop("parameters", {}))
        raw.update(edit)
        (folder / path.name).write_text(json.dumps(raw))
    return folder


# Deletion protection: CloudFormation gives a parameter left out of a change set its template Default
# ("false"), not the stack's current value (API Parameter: "If you don't specify a key and value for a
# particular parameter, CloudFormation uses the default value that's specified in your template").


@pytest.mark.integration
def test_a_stage_file_that_omits_protection_never_turns_it_off(harness, tmp_path):
    harness.run()
    assert stack_parameters()["TableDeletionProtection"] == "true"
    harness.builder.version = "2"  # a code change, so the update is executed
    harness.run(stages_dir=stage_files(tmp_path / "omit", prod={"drop": ["TableDeletionProtection"]}))
    assert stack_parameters()["TableDeletionProtection"] == "true"
    for _, params in [(p["ChangeSetType"], p) for p in harness.recorder.params("CreateChangeSet")][3:]:
        sent = {x["ParameterKey"]: x["ParameterValue"] for x in params["Parameters"]}
        assert sent.get("TableDeletionProtection") == "true"


@pytest.mark.integration
def test_a_stage_file_saying_false_does_not_unprotect_an_existing_table(harness, tmp_path):
    harness.run()
    harness.builder.version = "2"
    harness.run(stages_dir=stage_files(tmp_path / "off", prod={"parameters": {"TableDeletionProtection": "false"}}))
    assert stack_parameters()["TableDeletionProtection"] == "true"


# Per-stage names: the template's defaults are prod's, so a stage that leaves a name out gets prod's.


@pytest.mark.parametrize("drop", [["SecretKeyParameterName"], ["OidcClientSecretParameterName"]])
def test_a_dev_stage_that_omits_its_ssm_names_is_refused_not_given_prods_secrets(tmp_path, drop):
    folder = stage_files(tmp_path / "stages", dev={"drop": drop})
    with pytest.raises(StageError, match=f"{drop[0]}.*prod"):
        load_stage("dev", folder)


def test_a_stage_file_naming_another_stages_stack_is_refused(tmp_path):
    folder = stage_files(tmp_path / "stages")
    raw = json.loads((folder / "dev.json").read_text())
    raw["stack_name"] = "links-prod"  # a copy-paste slip: dev would update prod's stack
    (folder / "dev.json").write_text(json.dumps(raw))
    with pytest.raises(StageError, match="links-prod.*prod"):
        load_stage("dev", folder)


@pytest.mark.parametrize("stack_name", ["links", "links-prod-eu"])
def test_a_stack_name_that_begins_another_stages_is_refused(tmp_path, stack_name):
    """The deployer policy names a stage's resources <stack>-*: a stack "links" would reach links-prod-*."""
    folder = stage_files(tmp_path / "stages")
    raw = json.loads((folder / "dev.json").read_text())
    raw["stack_name"] = stack_name
    (folder / "dev.json").write_text(json.dumps(raw))
    with pytest.raises(StageError, match="begins with the other"):
        load_stage("dev", folder)


# Shards: Kinesis takes whole shards; the check must refuse, not crash, on a value that is not one.


def test_a_fractional_shard_count_is_refused_before_any_aws_call(aws, tmp_path, template_text):
    harness = Harness(tmp_path, template_text)
    with pytest.raises(StageError, match="ClickStreamShards"):
        harness.run(stages_dir=harness.stage_dir(parameters={"ClickStreamShards": 2.5}))
    assert harness.recorder.clients_made == 0


@pytest.mark.parametrize("current", ["2.0", "two", ""])
def test_the_shard_check_refuses_clearly_when_the_stacks_value_is_odd(current):
    # A ValueError from int() would escape main()'s handlers as a traceback.
    with pytest.raises(deploy_command.DeployError, match="ClickStreamShards"):
        deploy_command.check_shard_change(current, "8")


# The bucket: a run stopped after CreateBucket must still harden the bucket when run again.


@pytest.mark.integration
def test_a_bucket_made_by_a_run_that_stopped_is_hardened_by_the_next(harness):
    real_clients = harness.recorder.clients
    failed = []

    def clients(region):
        aws = real_clients(region)

        def fail_once(**kwargs):
            if not failed:
                failed.append(True)
                raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "try again"}},
                                  "PutPublicAccessBlock")
        aws.s3.meta.events.register("before-call.s3.PutPublicAccessBlock", fail_once)
        return aws

    harness.recorder.clients = clients
    with pytest.raises(ClientError):
        harness.run()
    harness.run()
    s3 = boto3.client("s3", region_name=REGION)
    bucket = harness.recorder.params("HeadBucket")[0]["Bucket"]
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


# zappa_settings.json: a circular or dangling `extends` (Zappa refuses both) must be refused, not hang.


@pytest.mark.parametrize("settings", [
    {"dev": {"extends": "prod", "project_name": "linkshortener"}, "prod": {"extends": "dev"}},
    {"dev": {"project_name": "linkshortener"}, "prod": {"extends": "staging"}},
])
def test_a_circular_or_dangling_extends_is_refused(tmp_path, settings):
    path = tmp_path / "zappa_settings.json"
    path.write_text(json.dumps(settings))

    def hung(signum, frame):
        raise TimeoutError("load_stage loops on the extends chain")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        with pytest.raises(StageError, match="extends"):
            load_stage("prod", zappa_settings=path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# Confirmation and prompts with no terminal.


def test_a_yes_piped_in_without_a_terminal_is_still_a_no(monkeypatch):
    # `yes | make deploy STAGE=prod`, or a CI step whose stdin happens to hold a "y": no person saw the change set.
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert deploy_command.ask("Execute this change set on links-prod?") is False


@pytest.mark.integration
def test_no_terminal_and_no_secret_file_is_a_clear_refusal_not_a_traceback(harness, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # a CI job: getpass falls back to stdin, which is empty
    stages = harness.stage_dir(admin_settings={"OIDC_ISSUER": "https://sso.example.com", "OIDC_CLIENT_ID": "links"})
    with pytest.raises(deploy_command.DeployError, match="--oidc-client-secret-file"):
        harness.run(stages_dir=stages)


# admin_settings: settings that are for the local stack or tests only must not reach a deployed admin.


@pytest.mark.parametrize("name", ["LOCAL_MODE", "SHORTENER_TESTING", "DEBUG"])
def test_a_local_or_test_only_admin_setting_is_refused(tmp_path, name):
    folder = stage_files(tmp_path / "stages", prod={"admin_settings": {name: "true"}})
    with pytest.raises(StageError, match=name.removeprefix("SHORTENER_")):
        load_stage("prod", folder)


# The deployer policy: the stack's roles are made by CloudFormation as the deployer, so the deployer may create
# any role named <stack>-*, give it any inline policy, attach any managed policy and trust whom it likes. With
# iam:CreateRole + iam:PutRolePolicy (or AttachRolePolicy of arn:aws:iam::aws:policy/AdministratorAccess) on
# role/links-prod-*, a role trusting the deployer's own ARN (a same-account trust policy naming the principal
# needs no sts:AssumeRole grant), or passed to a function links-prod-x, makes the deployer an administrator.
_ESCALATION_ROLE = "arn:aws:iam::123456789012:role/links-prod-escalate"


@pytest.mark.parametrize("action, context", [
    ("iam:CreateRole", {}),
    ("iam:PutRolePolicy", {}),
    ("iam:AttachRolePolicy", {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    ("iam:PutRolePermissionsBoundary", {"iam:PermissionsBoundary": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    ("iam:DeleteRolePermissionsBoundary", {}),
])
def test_the_deployer_cannot_make_a_role_without_a_permissions_boundary(action, context):
    from tests.test_deployer_policy import DEPLOYER, allows

    assert not allows(DEPLOYER, action, _ESCALATION_ROLE, context)


def test_the_only_role_the_deployer_can_make_is_capped_by_the_stages_boundary():
    from tests.test_deployer_policy import BOUNDARY, DEPLOYER, FILLS, allows

    capped = {"iam:PermissionsBoundary": FILLS["RoleBoundaryArn"]}
    assert allows(DEPLOYER, "iam:CreateRole", _ESCALATION_ROLE, capped)
    assert allows(DEPLOYER, "iam:AttachRolePolicy", _ESCALATION_ROLE,
                  {**capped, "iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"})
    # ... and such a role, even with AdministratorAccess, can do nothing the boundary does not allow.
    for action, resource in [("iam:CreateRole", "arn:aws:iam::123456789012:role/x"), ("sts:AssumeRole", "*"),
                             ("s3:GetObject", "arn:aws:s3:::any/x"), ("dynamodb:Scan", "*")]:
        assert not allows(BOUNDARY, action, resource)


@pytest.mark.integration
def test_make_deploy_gives_the_stack_the_boundary_the_deployer_policy_names(harness):
    from deploy.deployer_policy import role_boundary
    from tests.test_deploy_command import change_sets

    harness.run()
    expected = role_boundary({"stack_name": "links-prod", "region": REGION}, "123456789012")
    assert expected == "arn:aws:iam::123456789012:policy/boundary/links-prod-us-east-1"
    assert {params["RolePermissionsBoundaryArn"] for _, params in change_sets(harness.recorder)} == {expected}
    assert stack_parameters()["RolePermissionsBoundaryArn"] == expected


# Tests for mutations of deploy.py that tests/test_deploy_command.py let through.


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_that_closes_at_the_question_is_a_no(monkeypatch):
    monkeypatch.setattr("sys.stdin", _Tty(""))
    assert deploy_command.ask("Execute this change set on links-prod?") is False


class _FakeStacks:
    def __init__(self, status):
        self.status = status

    def get_caller_identity(self):
        return {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/deployer"}

    def describe_stacks(self, StackName):
        return {"Stacks": [{"StackName": StackName, "StackStatus": self.status,
                            "Parameters": [{"ParameterKey": "ClickStreamShards", "ParameterValue": "1"}]}]}


@pytest.mark.parametrize("status, says", [
    ("ROLLBACK_FAILED", "delete it in the CloudFormation console"),
    ("UPDATE_ROLLBACK_FAILED", "continue-update-rollback --stack-name links-prod"),
    ("DELETE_FAILED", "finish deleting it"),
    ("UPDATE_IN_PROGRESS", "wait until it settles"),
    ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "wait until it settles"),
    ("DELETE_IN_PROGRESS", "wait until it settles"),
])
def test_a_stack_that_needs_a_person_or_is_busy_is_refused_with_what_to_do(status, says):
    fake = _FakeStacks(status)
    aws = type("Aws", (), {"sts": fake, "cloudformation": fake})()
    d = deploy_command.Deployment(load_stage("prod"), aws, out=io.StringIO())
    with pytest.raises(deploy_command.DeployError, match=f"links-prod is {status}: .*{says}"):
        deploy_command.preflight(d)


@pytest.mark.integration
def test_every_bucket_call_names_the_expected_owner_and_secrets_are_never_overwritten(harness):
    harness.run()
    harness.builder.version = "2"
    harness.run()  # the bucket exists now: its location is read, new code uploaded
    for operation in ("HeadBucket", "GetBucketLocation", "HeadObject", "PutObject"):
        calls = harness.recorder.params(operation)
        assert calls and all(p.get("ExpectedBucketOwner") == "123456789012" for p in calls), operation
    puts = harness.recorder.params("PutParameter")
    assert puts and all(p["Overwrite"] is False for p in puts)


# Eventual consistency: ExecuteChangeSet and DeleteStack return before the stack's status moves on, so a stack
# just executed from REVIEW_IN_PROGRESS may still read REVIEW_IN_PROGRESS once. boto3's stack_create_complete
# waiter (what `aws cloudformation deploy` uses) keeps polling through it; wait_stack returned at once.


class _CreateThatLags:
    def __init__(self):
        self.statuses = ["REVIEW_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_COMPLETE"]

    def create_change_set(self, **kwargs):
        pass

    def describe_change_set(self, **kwargs):
        return {"Status": "CREATE_COMPLETE", "Changes": []}

    def execute_change_set(self, **kwargs):
        pass

    def describe_stacks(self, StackName):
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"Stacks": [{"StackName": StackName, "StackStatus": status}]}

    def describe_stack_events(self, StackName):
        return {"StackEvents": []}


def test_a_create_that_still_reads_review_in_progress_just_after_execute_is_waited_for():
    from deploy.stack import apply_change_set

    assert apply_change_set(_CreateThatLags(), "links-prod", "https://b/t.yaml", {}, "CREATE",
                            lambda question: True, io.StringIO(), 0) is True


@pytest.mark.parametrize("current, wanted, steps", [(6, 2, "3, 2"), (9, 4, "5, 4"), (3, 7, "6, 7")])
def test_a_shard_change_just_past_half_or_double_is_refused(current, wanted, steps):
    with pytest.raises(deploy_command.DeployError, match=f"one after another: {steps}$"):
        deploy_command.check_shard_change(str(current), str(wanted))


@pytest.mark.integration
def test_an_own_bucket_in_another_region_is_refused_before_any_upload(harness):
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket=f"123456789012-linkshortener-{REGION}", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with pytest.raises(deploy_command.DeployError, match="is in eu-west-1, not us-east-1"):
        harness.run()
    assert "PutObject" not in harness.recorder.operations()


@pytest.mark.integration
def test_an_empty_sso_secret_file_is_refused_and_nothing_is_stored(harness, tmp_path):
    secret_file = tmp_path / "oidc-secret"
    secret_file.write_text(" \n")
    stages = harness.stage_dir(admin_settings={"OIDC_ISSUER": "https://sso.example.com", "OIDC_CLIENT_ID": "links"})
    with pytest.raises(deploy_command.DeployError, match="no SSO client secret given"):
        harness.run(stages_dir=stages, oidc_secret_file=secret_file)
    assert [p["Name"] for p in harness.recorder.params("PutParameter")] == ["/linkshortener/prod/secret-key"]


def test_a_first_create_that_rolled_back_has_no_stream_to_reshard(tmp_path):
    stage = load_stage("prod", stage_files(tmp_path / "stages", prod={"parameters": {"ClickStreamShards": 8}}))
    fake = _FakeStacks("ROLLBACK_COMPLETE")  # its parameters say 1 shard; the stream was deleted with it
    aws = type("Aws", (), {"sts": fake, "cloudformation": fake})()
    deploy_command.preflight(deploy_command.Deployment(stage, aws, out=io.StringIO()))


def test_a_placeholder_left_in_the_committed_settings_stops_the_deploy(tmp_path):
    settings = json.loads((STAGES_DIR.parent.parent / "zappa_settings.json").read_text())
    settings["prod"]["environment_variables"]["SHORTENER_SECURITY_CONTACT"] = "REPLACE-with-your-contact"
    path = tmp_path / "zappa_settings.json"
    path.write_text(json.dumps(settings))
    d = deploy_command.Deployment(load_stage("prod"), aws=None, out=io.StringIO(), build_dir=tmp_path / "build",
                                  bucket="b", outputs={"AdminRoleArn": "arn:aws:iam::123456789012:role/r",
                                                       "TableName": "t", "ShortBaseUrl": "https://s.example",
                                                       "LinkCacheSeconds": "10",
                                                       "ExecuteApiUrl": "https://s.example"})
    with pytest.raises(deploy_command.DeployError, match="REPLACE placeholder"):
        deploy_command.write_admin_settings(d, path)
    assert not (tmp_path / "build" / "zappa_settings.json").exists()


# Zappa 0.63 `update` with the function there but its API stack missing logs "CloudFormation stack missing,
# re-deploy to enable updates" and returns (core.py update_stack, update_only=True); `deploy` refuses a function
# that exists ("already deployed - did you mean to call update?"). A `zappa deploy` that stopped after
# CreateFunction and before its stack therefore never finishes by running make deploy again.


class _ZappaAsReleased:
    """The harness's FakeZappa, but `update` leaves a missing stack missing and `deploy` refuses an existing function."""

    def __init__(self, fake):
        self.fake = fake
        self.calls = fake.calls

    def __call__(self, argv, env):
        from tests.test_deploy_command import _stack_exists

        config = json.loads(open(argv[argv.index("-s") + 1]).read())[argv[1]]
        name = f"{config['project_name']}-{argv[1]}"
        awslambda = boto3.client("lambda", region_name=REGION)
        exists = name in [f["FunctionName"] for f in awslambda.list_functions()["Functions"]]
        if argv[0] == "deploy" and exists:
            self.calls.append(list(argv))
            return 1  # "This application is already deployed - did you mean to call update?"
        if argv[0] == "update" and not _stack_exists(boto3.client("cloudformation", region_name=REGION), name):
            self.calls.append(list(argv))
            awslambda.update_function_code(FunctionName=name, ZipFile=b"PK\x05\x06" + b"\0" * 18)
            return 0  # "CloudFormation stack missing, re-deploy to enable updates"
        return self.fake(argv, env)


@pytest.mark.integration
def test_a_zappa_deploy_that_stopped_before_its_api_is_finished_by_running_again(harness):
    harness.zappa.fail_next = True  # the function is made, its API stack is not
    with pytest.raises(deploy_command.DeployError, match="zappa deploy failed"):
        harness.run()
    harness.zappa = _ZappaAsReleased(harness.zappa)
    d = harness.run()
    assert d.admin_url.startswith("https://zappaapi01.")
    assert harness.zappa.calls[-1][0] == "deploy"


def test_the_operator_may_read_the_secret_key_but_not_the_sso_client_secret():
    # flask create-user needs the admin's SECRET_KEY; nothing the operator runs needs the SSO client secret, and
    # GetParameter on a SecureString under the aws/ssm key needs no KMS grant of its own.
    from tests.test_deployer_policy import OPERATOR, allows

    ssm = "arn:aws:ssm:us-east-1:123456789012:parameter/linkshortener/prod"
    assert allows(OPERATOR, "ssm:GetParameter", f"{ssm}/secret-key")
    assert not allows(OPERATOR, "ssm:GetParameter", f"{ssm}/oidc-client-secret")


def test_the_deployer_may_change_only_its_own_functions_event_source_mappings():
    # The Service Authorization Reference lists lambda:FunctionArn for Delete/Get/UpdateEventSourceMapping: without
    # it, event-source-mapping:* lets the deployer stop or repoint any mapping of the account and region.
    from tests.test_deployer_policy import DEPLOYER, allows

    mapping = "arn:aws:lambda:us-east-1:123456789012:event-source-mapping:0f2e7d3c-1111-2222-3333-444455556666"
    own = {"lambda:FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:links-prod-aggregator"}
    other = {"lambda:FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:billing-consumer"}
    for action in ("lambda:DeleteEventSourceMapping", "lambda:UpdateEventSourceMapping"):
        assert allows(DEPLOYER, action, mapping, own)
        assert not allows(DEPLOYER, action, mapping, other)


class _PagedChangeSet(_CreateThatLags):
    def describe_change_set(self, NextToken=None, **kwargs):
        change = {"ResourceChange": {"Action": "Modify", "ResourceType": "AWS::DynamoDB::Table",
                                     "Replacement": "True"}}
        if NextToken is None:
            return {"Status": "CREATE_COMPLETE", "NextToken": "2",
                    "Changes": [{"ResourceChange": {**change["ResourceChange"], "LogicalResourceId": "PageOne"}}]}
        return {"Status": "CREATE_COMPLETE",
                "Changes": [{"ResourceChange": {**change["ResourceChange"], "LogicalResourceId": "LinksTable"}}]}


def test_a_change_set_longer_than_one_page_is_shown_whole_before_asking():
    from deploy.stack import apply_change_set

    out, shown = io.StringIO(), []
    apply_change_set(_PagedChangeSet(), "links-prod", "https://b/t.yaml", {}, "UPDATE",
                     lambda question: shown.append(out.getvalue()) or True, out, 0)
    assert "PageOne" in shown[0] and "LinksTable" in shown[0].split("REPLACED")[-2]


@pytest.mark.integration
def test_zappa_runs_without_the_callers_pythonpath(harness, monkeypatch):
    # .venv-package's zappa must import its own packages, not the dev venv's found through PYTHONPATH.
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    seen = []
    fake = harness.zappa
    harness.zappa = lambda argv, env: seen.append(dict(env)) or fake(argv, env)
    harness.run()
    assert seen and all("PYTHONPATH" not in env for env in seen)
