"""`make deploy` (deploy/deploy.py) run end to end against moto, with what moto cannot do stubbed (NOT_IN_MOTO).

The AWS calls are real boto3 calls into moto: STS, S3 (the bucket, its settings, the uploads), SSM (the
secrets), CloudFormation change sets (create, describe, execute, describe_stack_resource), Lambda and
DynamoDB (the smoke test's user and token, written by the admin's own store code). Zappa, the build
and the smoke test's HTTP requests are injected stand-ins that record what they were given.
"""
import json
import zipfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.cloudformation.models import ChangeSet

from deploy import deploy as deploy_command
from deploy import package
from deploy.stack import Cancelled, StackFailed, apply_change_set
from deploy.stage import PER_STAGE_NAMES, STAGES_DIR, StageError, load_stage, rule_problem
from tests.test_deploy_stack import deployable_template
from webapp.store import Store

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
STUB_API_HOST = "stubapi01.execute-api.us-east-1.amazonaws.com"
ZAPPA_API_ID = "zappaapi01"

# Each call or resource moto cannot do, and how the test stands in for it.
NOT_IN_MOTO = [
    ("CloudFormation resources of types moto 5.2 has no model for: API Gateway v2, CloudWatch alarms, Logs "
     "metric and subscription filters, WAFv2, Budgets",
     "the stack is made from the template minus them and what points at them (moto_template), as "
     "tests/test_deploy_stack.py does"),
    ("the outputs ShortBaseUrl, ExecuteApiUrl and DashboardUrl",
     "they name the HTTP API and dashboard moto cannot create: literal stand-in outputs (STUB_OUTPUTS)"),
    ("a change set's execution updating the stack's parameters and outputs",
     "moto 5.2 applies the resources but keeps the stack's old parameters and outputs; patched to do what "
     "CloudFormation does (changes_apply_fully)"),
    ("`zappa deploy` and `zappa update`",
     "a subprocess that calls Lambda, API Gateway v2 and CloudFormation: FakeZappa records argv and env and makes "
     "the function and a stand-in of Zappa's stack"),
    ("Zappa's HTTP API (the ApiV2 resource of its stack), read for the admin's URL",
     "moto cannot create AWS::ApiGatewayV2::Api: the stand-in stack's ApiV2 is a log group named like an API id"),
    ("the build: pip for Lambda's platform and `zappa package`",
     "minutes and PyPI: FakeBuilder writes small zips and publishes them with deploy.package's own key code"),
    ("the smoke test's HTTP requests to the admin and the short links",
     "nothing answers HTTP in moto: a stand-in checks the token it is given is live in the table"),
    ("running SaltFunction's code when make deploy invokes it (moto runs functions in Docker)",
     "moto's Lambda without Docker answers the Invoke without running the code; the test checks the call "
     "(tests/test_salts.py runs the rotation itself)"),
]

STUB_OUTPUTS = {
    "ShortBaseUrl": f"https://{STUB_API_HOST}",
    "ExecuteApiUrl": f"https://{STUB_API_HOST}",
    "DashboardUrl": "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards:name=links-prod",
}


def moto_template():
    """cloudformation.yaml without what moto cannot create, with stand-in outputs for what named it."""
    template, _ = deployable_template()
    template["Outputs"].update({k: {"Value": v} for k, v in STUB_OUTPUTS.items()})
    template.pop("Rules", None)  # checked by cfn-lint and CloudFormation, not by moto
    return json.dumps(template)


@pytest.fixture(scope="module")
def template_text():
    return moto_template()


@pytest.fixture
def changes_apply_fully(monkeypatch):
    """CloudFormation: executing a change set gives the stack the change set's parameters and template outputs."""
    real = ChangeSet.apply

    def apply(self):
        real(self)
        self.stack.parameters = self.parameters
        self.stack.template = self.template
        self.stack._parse_template()
        self.stack.output_map = self.stack._create_output_map()

    monkeypatch.setattr(ChangeSet, "apply", apply)


class Recorder:
    """Every AWS request made through make deploy's clients: (service, operation, params)."""

    def __init__(self):
        self.calls = []
        self.clients_made = 0

    def clients(self, region):
        self.clients_made += 1
        aws = deploy_command.AwsClients(region)
        for client in (aws.sts, aws.s3, aws.ssm, aws.cloudformation, aws.awslambda, aws.dynamodb):
            client.meta.events.register("provide-client-params.*.*", self._record)
        return aws

    def _record(self, params, model, **kwargs):
        self.calls.append((model.service_model.service_name, model.name, dict(params)))

    def operations(self, service=None):
        return [op for svc, op, _ in self.calls if service in (None, svc)]

    def params(self, operation):
        return [p for _, op, p in self.calls if op == operation]


class FakeBuilder:
    """Small zips under deploy.package's content-hashed keys; `version` changes the code."""

    def __init__(self):
        self.version = "1"
        self.admin_builds = []

    def build_functions(self, out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        zips = []
        for name in ("redirect", "aggregator"):
            path = out_dir / f"{name}.zip"
            with zipfile.ZipFile(path, "w") as zf:
                zf.writestr(zipfile.ZipInfo(f"{name}/__init__.py", date_time=(1980, 1, 1, 0, 0, 0)),
                            f"VERSION = {self.version!r}\n")
            zips.append(path)
        return deploy_command.read_code_keys(package.publish_code_keys(zips, out_dir), out_dir)

    def build_admin(self, output, zappa_stage, settings_file):
        self.admin_builds.append(json.loads(Path(settings_file).read_text()))
        with zipfile.ZipFile(output, "w") as zf:
            zf.writestr("handler.py", "def lambda_handler(event, context): pass\n")
        return output


class FakeZappa:
    """`zappa deploy|update STAGE -s SETTINGS -z ZIP`: makes or updates the function and Zappa's stack."""

    def __init__(self, secrets):
        self.secrets = secrets  # each value must never reach argv
        self.calls = []
        self.fail_next = False

    def __call__(self, argv, env):
        for secret in self.secrets():
            assert not any(secret in arg for arg in argv), "a secret on Zappa's command line"
        self.calls.append(list(argv))
        command, stage = argv[0], argv[1]
        settings_file, zip_file = argv[argv.index("-s") + 1], argv[argv.index("-z") + 1]
        assert env["VIRTUAL_ENV"].endswith(".venv-package")
        config = json.loads(Path(settings_file).read_text())[stage]
        name = f"{config['project_name']}-{stage}"
        awslambda = boto3.client("lambda", region_name=config["aws_region"])
        code = Path(zip_file).read_bytes()
        if command == "deploy":
            awslambda.create_function(FunctionName=name, Runtime=config["runtime"], Role=config["role_arn"],
                                      Handler="handler.lambda_handler", Code={"ZipFile": code})
        else:
            assert command == "update", argv
            awslambda.update_function_code(FunctionName=name, ZipFile=code)
        if self.fail_next:  # half-way: the function is there, its API is not
            self.fail_next = False
            return 1
        # Zappa's update, like its deploy, creates its stack when it is missing.
        cloudformation = boto3.client("cloudformation", region_name=config["aws_region"])
        if not _stack_exists(cloudformation, name):
            cloudformation.create_stack(StackName=name, TemplateBody=json.dumps({"Resources": {
                "ApiV2": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": ZAPPA_API_ID}}}}))
        return 0


def _stack_exists(cloudformation, name):
    return any(s["StackName"] == name and s["StackStatus"] != "DELETE_COMPLETE"
               for s in cloudformation.list_stacks()["StackSummaries"])


class FakeSmoke:
    """The smoke test's place: checks it got a live token for the smoke user, and the stack's cache figure."""

    def __init__(self):
        self.calls = []

    def __call__(self, admin_url, short_url, token, cache_seconds, root_url):
        table = boto3.client("cloudformation", region_name=REGION).describe_stacks(StackName="links-prod")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in table["Stacks"][0]["Outputs"]}
        live = Store(outputs["TableName"], client=boto3.client("dynamodb", region_name=REGION)).tokens.resolve(token)
        self.calls.append({"admin_url": admin_url, "short_url": short_url, "token": token,
                           "cache_seconds": cache_seconds, "root_url": root_url, "live": live})


@pytest.fixture
def aws(changes_apply_fully):
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


@pytest.fixture
def harness(aws, tmp_path, template_text):
    return Harness(tmp_path, template_text)


class Harness:
    """make deploy with every stand-in wired; run() is one `make deploy STAGE=... YES=1`."""

    def __init__(self, tmp_path, template_text):
        self.tmp_path = tmp_path
        self.template_text = template_text
        self.recorder = Recorder()
        self.builder = FakeBuilder()
        self.zappa = FakeZappa(self.secrets)
        self.smoke = FakeSmoke()

    def run(self, stage="prod", stages_dir=STAGES_DIR, **kwargs):
        kwargs.setdefault("yes", True)
        return deploy_command.deploy(
            stage, clients=self.recorder.clients, build_root=self.tmp_path / "build", stages_dir=stages_dir,
            builder=self.builder, zappa=self.zappa, smoke=self.smoke, template_text=self.template_text,
            poll_seconds=0, **kwargs)

    def secrets(self):
        ssm = boto3.client("ssm", region_name=REGION)
        found = []
        for name in ("/linkshortener/prod/secret-key", "/linkshortener/prod/oidc-client-secret"):
            try:
                found.append(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])
            except ssm.exceptions.ParameterNotFound:
                pass
        return found + [call["token"] for call in self.smoke.calls]

    def stage_dir(self, stage="prod", **changes):
        """A copy of a shipped stage file with changes: parameters={...} merges, other keys replace."""
        raw = json.loads((STAGES_DIR / f"{stage}.json").read_text())
        raw["parameters"].update(changes.pop("parameters", {}))
        raw.update(changes)
        folder = self.tmp_path / "stages"
        folder.mkdir(exist_ok=True)
        (folder / f"{stage}.json").write_text(json.dumps(raw))
        return folder


def stack_parameters(name="links-prod"):
    stack = boto3.client("cloudformation", region_name=REGION).describe_stacks(StackName=name)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


def change_sets(recorder):
    return [(p["ChangeSetType"], {x["ParameterKey"]: x["ParameterValue"] for x in p["Parameters"]})
            for p in recorder.params("CreateChangeSet")]


# The stage files


def test_the_shipped_stage_files_are_valid():
    for name in ("dev", "prod"):
        stage = load_stage(name)
        assert stage.name == name and stage.zappa_stage == name


def test_no_stage_shares_a_function_or_ssm_parameter_name_with_another():
    stages = [load_stage(path.stem) for path in sorted(STAGES_DIR.glob("*.json"))]
    assert len(stages) >= 2
    for name in PER_STAGE_NAMES:
        values = [stage.parameter(name) for stage in stages]
        assert len(set(values)) == len(values), f"{name} is shared between stages: {values}"
    assert len({stage.stack_name for stage in stages}) == len(stages)
    assert load_stage("dev").parameter("OidcClientSecretParameterName") == "/linkshortener/dev/oidc-client-secret"


@pytest.mark.parametrize("changes, message", [
    ({"parameters": {"ClickStreamShard": 2}}, "ClickStreamShard is not a parameter of cloudformation.yaml"),
    ({"parameters": {"RedirectMemoryMB": 512}}, "RedirectMemoryMB='512': not one of 128, 192, 256"),
    ({"parameters": {"LinkCacheSeconds": 301}}, "above the template's MaxValue 300"),
    ({"parameters": {"LinkCacheSeconds": "ten"}}, "LinkCacheSeconds='ten': not a number"),
    ({"parameters": {"LinkCacheSeconds": "nan"}}, "LinkCacheSeconds='nan': not a number written plainly"),
    ({"parameters": {"AdminSignInRateLimit": "05"}}, "AdminSignInRateLimit='05': not a number written plainly"),
    ({"parameters": {"MonthlyBudgetUsd": "0.0"}}, "MonthlyBudgetUsd='0.0': not a number written plainly"),
    ({"parameters": {"LinkCacheSeconds": "1e1"}}, "LinkCacheSeconds='1e1': not a number written plainly"),
    ({"parameters": {"AdminUrl": "http://admin.example.com/"}}, "does not match the template's AllowedPattern"),
    ({"parameters": {"TableDeletionProtection": "yes"}}, "not one of true, false"),
    ({"parameters": {"ArtifactBucket": "mine"}}, "ArtifactBucket is set by make deploy itself"),
    ({"parameters": {"AdminFunctionName": "links-admin"}}, "Zappa names the admin function 'linkshortener-prod'"),
    ({"stack_name": "linkshortener-prod"}, "is the name of the CloudFormation stack Zappa creates"),
    ({"stack_name": "links-" + "x" * 23}, "at most 28 (the roles' generated names must fit IAM's 64)"),
    ({"zappa_stage": "staging"}, "zappa_stage 'staging' is not a stage of zappa_settings.json"),
    ({"region": "US East"}, "is not an AWS region name"),
    ({"artifact_bucket": "My_Bucket"}, "is not an S3 bucket name"),
    ({"admin_settings": {"OIDC_CLIENT_SECRET": "s3cr3t"}}, "is a secret; make deploy keeps it in SSM"),
    ({"admin_settings": {"TABLE_NAME": "other"}}, "comes from the stack's outputs"),
    ({"shards": 2}, "unknown key(s) shards"),
    # The template's Rules, checked here as CloudFormation checks them when the change set is made.
    ({"parameters": {"ShortDomainName": "go.example.com"}}, "template rule DomainNeedsCertificate: ShortDomainName"),
    ({"parameters": {"AdminSignInRateLimit": 5}}, "template rule SignInRateLimitIsValid: "),
])
def test_a_bad_stage_file_is_refused_before_any_aws_call(tmp_path, template_text, changes, message):
    harness = Harness(tmp_path, template_text)
    with pytest.raises(StageError) as caught:
        harness.run(stages_dir=harness.stage_dir(**changes))
    assert message in str(caught.value)
    assert harness.recorder.clients_made == 0 and harness.recorder.calls == []


def test_rules_the_check_cannot_evaluate_are_left_to_cloudformation():
    stage = load_stage("prod")
    template = {"Parameters": {}, "Rules": {"Unknown": {"Assertions": [
        {"Assert": {"Fn::EachMemberEquals": [["a"], "b"]}, "AssertDescription": "never checked here"}]}}}
    assert rule_problem(stage, template) is None


def test_a_missing_stage_file_names_the_stages_there_are(tmp_path, template_text):
    with pytest.raises(StageError, match=r"no stage file .*staging\.json \(stages: dev, prod\)"):
        Harness(tmp_path, template_text).run("staging")


def test_main_reports_a_bad_stage_file_and_changes_nothing(capsys):
    assert deploy_command.main(["--stage", "no-such-stage"]) == 2
    assert "Nothing was changed" in capsys.readouterr().err


# The whole flow


@pytest.mark.integration
def test_a_first_deploy_makes_everything_then_protects_the_table(harness, capsys):
    d = harness.run()
    s3 = boto3.client("s3", region_name=REGION)
    bucket = f"{ACCOUNT}-linkshortener-{REGION}"
    assert d.bucket == bucket
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert set(d.code_keys.values()) <= keys

    secret = boto3.client("ssm", region_name=REGION).get_parameter(Name="/linkshortener/prod/secret-key")["Parameter"]
    assert secret["Type"] == "SecureString"

    # Created with protection off, then one update turning it on; then AdminUrl from Zappa's API.
    sets = change_sets(harness.recorder)
    assert [(kind, params["TableDeletionProtection"]) for kind, params in sets] == [
        ("CREATE", "false"), ("UPDATE", "true"), ("UPDATE", "true")]
    assert sets[0][1]["AdminUrl"] == deploy_command.PENDING_ADMIN_URL
    admin_url = f"https://{ZAPPA_API_ID}.execute-api.{REGION}.amazonaws.com/prod"
    assert sets[2][1]["AdminUrl"] == admin_url == d.admin_url
    assert stack_parameters()["TableDeletionProtection"] == "true"
    assert stack_parameters()["AdminUrl"] == admin_url

    # Today's salt is made at once: SaltFunction runs once, after the stack's changes and before the admin.
    [invoke] = harness.recorder.params("Invoke")
    assert invoke["FunctionName"] == d.outputs["SaltFunctionName"] == "links-prod-salts"
    assert invoke["InvocationType"] == "RequestResponse"
    operations = harness.recorder.operations()
    # After the create and the protection update, before the AdminUrl update that follows Zappa.
    assert operations[:operations.index("Invoke")].count("ExecuteChangeSet") == 2
    assert d.outputs["SaltsTableName"].startswith("links-prod-SaltsTable-")
    assert d.outputs["SaltsTableName"] != d.outputs["TableName"]

    # The admin's settings come from the stack's outputs, with nothing left to fill in by hand.
    assert harness.zappa.calls[0][:2] == ["deploy", "prod"]
    settings = harness.builder.admin_builds[0]["prod"]
    assert "extends" not in settings
    assert settings["role_arn"] == d.outputs["AdminRoleArn"]
    assert settings["s3_bucket"] == bucket
    env = settings["environment_variables"]
    assert env["SHORTENER_TABLE_NAME"] == d.outputs["TableName"]
    assert env["SHORTENER_SHORT_BASE_URL"] == STUB_OUTPUTS["ShortBaseUrl"]
    assert env["SHORTENER_SECRET_KEY_PARAMETER"] == "/linkshortener/prod/secret-key"
    assert env["SHORTENER_LINK_CACHE_SECONDS"] == "10"
    assert "SHORTENER_EXTRA_LOOP_HOSTS" not in env  # no custom domain: the short host is the execute-api host
    assert settings["keep_warm"] is True  # prod's own keys survive the resolved `extends`

    # The smoke test got a live token, which is revoked afterwards.
    [smoke] = harness.smoke.calls
    assert smoke["live"] is not None and smoke["live"]["username"] == deploy_command.SMOKE_USER
    assert (smoke["admin_url"], smoke["short_url"], smoke["cache_seconds"], smoke["root_url"]) == (
        admin_url, STUB_OUTPUTS["ShortBaseUrl"], 10.0, admin_url)  # AdminUrl "auto": / goes to Zappa's URL
    store = Store(d.outputs["TableName"], client=boto3.client("dynamodb", region_name=REGION))
    assert store.tokens.resolve(smoke["token"]) is None

    out = capsys.readouterr().out
    assert admin_url in out and STUB_OUTPUTS["ShortBaseUrl"] in out and "dashboards:name=" in out
    assert "create-user alice --role admin" in out
    for secret in harness.secrets():
        assert secret not in out


@pytest.mark.integration
def test_a_second_run_changes_nothing_it_need_not(harness):
    harness.run()
    secret_before = harness.secrets()[0]
    first = len(harness.recorder.calls)
    harness.run()
    again = [op for _, op, _ in harness.recorder.calls[first:]]
    for operation in ("CreateBucket", "PutObject", "PutParameter", "ExecuteChangeSet"):
        assert operation not in again, operation
    assert harness.secrets()[0] == secret_before
    assert harness.zappa.calls[-1][:2] == ["update", "prod"]
    assert len(harness.smoke.calls) == 2


@pytest.mark.integration
def test_changed_code_gets_new_keys_and_one_update(harness):
    harness.run()
    first = len(harness.recorder.calls)
    harness.builder.version = "2"
    d = harness.run()
    uploads = [p["Key"] for _, op, p in harness.recorder.calls[first:] if op == "PutObject"]
    assert sorted(uploads) == sorted(d.code_keys.values())
    assert [op for _, op, _ in harness.recorder.calls[first:]].count("ExecuteChangeSet") == 1
    assert stack_parameters()["RedirectCodeKey"] == d.code_keys["RedirectCodeKey"]


@pytest.mark.integration
def test_a_jump_in_shards_is_refused_with_the_steps_to_take(harness):
    harness.run()
    first = len(harness.recorder.calls)
    with pytest.raises(deploy_command.DeployError, match=r"ClickStreamShards 1 -> 8 .* one after another: 2, 4, 8"):
        harness.run(stages_dir=harness.stage_dir(parameters={"ClickStreamShards": 8}))
    assert "CreateChangeSet" not in [op for _, op, _ in harness.recorder.calls[first:]]


@pytest.mark.parametrize("current, wanted, steps", [(1, 8, "2, 4, 8"), (8, 1, "4, 2, 1"), (3, 13, "6, 12, 13"),
                                                    (5, 1, "3, 2, 1")])
def test_shard_steps_at_most_double_or_halve(current, wanted, steps):
    with pytest.raises(deploy_command.DeployError, match=f"one after another: {steps}$"):
        deploy_command.check_shard_change(current, wanted)


@pytest.mark.parametrize("current, wanted", [(1, 2), (4, 2), (4, 8), (5, 3), (6, 6)])
def test_shard_changes_within_double_or_half_pass(current, wanted):
    deploy_command.check_shard_change(str(current), str(wanted))


@pytest.mark.integration
def test_a_run_that_fails_half_way_is_finished_by_running_it_again(harness):
    harness.zappa.fail_next = True  # Zappa made the function, then stopped before its API
    with pytest.raises(deploy_command.DeployError, match="zappa deploy failed"):
        harness.run()
    assert harness.smoke.calls == []
    secret = harness.secrets()[0]
    d = harness.run()
    # The function exists without Zappa's stack: Zappa 0.63's update would not make the stack ("re-deploy to
    # enable updates") and its deploy refuses an existing function, so the half-made function goes first.
    assert harness.zappa.calls[-1][:2] == ["deploy", "prod"]
    assert "DeleteFunction" in harness.recorder.operations("lambda")
    assert d.admin_url.startswith(f"https://{ZAPPA_API_ID}.")
    assert harness.secrets()[0] == secret
    assert stack_parameters()["TableDeletionProtection"] == "true"
    assert len(harness.smoke.calls) == 1


@pytest.mark.integration
def test_a_declined_change_set_changes_nothing_and_a_later_run_creates_the_stack(harness):
    with pytest.raises(Cancelled):
        harness.run(yes=False, confirm=lambda question: False)
    assert "ExecuteChangeSet" not in harness.recorder.operations()
    assert "DeleteChangeSet" in harness.recorder.operations()
    d = harness.run()
    assert d.stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")


@pytest.mark.integration
def test_sso_client_secret_comes_from_a_file_into_ssm_and_never_into_argv_or_output(harness, tmp_path, capsys):
    secret_file = tmp_path / "oidc-secret"
    secret_file.write_text("the-sso-client-secret\n")
    stages = harness.stage_dir(admin_settings={"OIDC_ISSUER": "https://sso.example.com", "OIDC_CLIENT_ID": "links"})
    harness.run(stages_dir=stages, oidc_secret_file=secret_file)
    ssm = boto3.client("ssm", region_name=REGION)
    stored = ssm.get_parameter(Name="/linkshortener/prod/oidc-client-secret", WithDecryption=True)["Parameter"]
    assert (stored["Type"], stored["Value"]) == ("SecureString", "the-sso-client-secret")
    env = harness.builder.admin_builds[0]["prod"]["environment_variables"]
    assert env["SHORTENER_OIDC_CLIENT_SECRET_PARAMETER"] == "/linkshortener/prod/oidc-client-secret"
    assert env["SHORTENER_OIDC_ISSUER"] == "https://sso.example.com"
    assert "the-sso-client-secret" not in json.dumps(harness.builder.admin_builds)
    assert "the-sso-client-secret" not in capsys.readouterr().out
    # A second run keeps the stored secret and asks for none.
    secret_file.write_text("another\n")
    harness.run(stages_dir=stages, oidc_secret_file=secret_file)
    assert ssm.get_parameter(Name="/linkshortener/prod/oidc-client-secret",
                             WithDecryption=True)["Parameter"]["Value"] == "the-sso-client-secret"


@pytest.mark.integration
def test_a_custom_domain_makes_the_execute_api_host_a_loop_host(harness, template_text, monkeypatch):
    harness.template_text = template_text.replace(f'"https://{STUB_API_HOST}"', '"https://go.example.com"', 1)
    harness.run()
    env = harness.builder.admin_builds[0]["prod"]["environment_variables"]
    assert env["SHORTENER_SHORT_BASE_URL"] == "https://go.example.com"
    assert env["SHORTENER_EXTRA_LOOP_HOSTS"] == STUB_API_HOST


# CloudFormation's answer to an unchanged stack, as AWS documents it (moto refuses the change set instead)


class UnchangedStack:
    """A CloudFormation whose change set fails as AWS's does for an unchanged stack."""

    def __init__(self):
        self.calls = []

    def create_change_set(self, **kwargs):
        self.calls.append("create_change_set")

    def describe_change_set(self, **kwargs):
        return {"Status": "FAILED", "Changes": [],
                "StatusReason": "The submitted information didn't contain changes. Submit different information "
                                "to create a change set."}

    def delete_change_set(self, **kwargs):
        self.calls.append("delete_change_set")

    def execute_change_set(self, **kwargs):
        raise AssertionError("an unchanged stack's change set is never executed")


def test_an_unchanged_stack_is_no_error_and_its_failed_change_set_is_deleted(capsys):
    cloudformation = UnchangedStack()
    assert apply_change_set(cloudformation, "links-prod", "https://b/t.yaml", {}, "UPDATE",
                            lambda question: True, None, 0) is False
    assert cloudformation.calls == ["create_change_set", "delete_change_set"]
    assert "links-prod: no changes" in capsys.readouterr().out


@pytest.mark.integration
def test_a_first_create_that_rolled_back_is_shown_deleted_after_asking_and_created_again(harness, capsys):
    from moto.cloudformation.models import cloudformation_backends

    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(StackName="links-prod", TemplateBody=json.dumps(
        {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}))
    # What a failed first create leaves (moto's creates do not fail): ROLLBACK_COMPLETE and the reason.
    [stack] = [s for s in cloudformation_backends[ACCOUNT][REGION].stacks.values() if s.name == "links-prod"]
    stack._add_stack_event("CREATE_FAILED", resource_status_reason="Resource handler returned message: \"boom\"")
    stack.status = "ROLLBACK_COMPLETE"
    questions = []
    harness.run(yes=False, confirm=lambda question: questions.append(question) or True)
    assert questions[0] == "Delete links-prod (it holds nothing) and create it again?"
    assert '"boom"' in capsys.readouterr().out
    assert change_sets(harness.recorder)[0][0] == "CREATE"
    assert boto3.client("cloudformation", region_name=REGION).describe_stacks(
        StackName="links-prod")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"


@pytest.mark.integration
def test_declining_to_delete_a_rolled_back_stack_changes_nothing(harness):
    from moto.cloudformation.models import cloudformation_backends

    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="links-prod", TemplateBody=json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}))
    [stack] = [s for s in cloudformation_backends[ACCOUNT][REGION].stacks.values() if s.name == "links-prod"]
    stack.status = "ROLLBACK_COMPLETE"
    with pytest.raises(Cancelled):
        harness.run(yes=False, confirm=lambda question: False)
    assert "DeleteStack" not in harness.recorder.operations()
    assert "CreateChangeSet" not in harness.recorder.operations()


# The real builder and smoke runner: thin calls into deploy/package.py and deploy/smoke.py


def test_the_real_builder_builds_the_functions_and_the_admin_from_the_written_settings(tmp_path, monkeypatch):
    calls = []

    def fake_zip(name):
        def build(out_dir):
            calls.append((name, out_dir))
            path = out_dir / f"{name}.zip"
            path.write_bytes(name.encode())
            return path
        return build

    monkeypatch.setattr(package, "build_redirect", fake_zip("redirect"))
    monkeypatch.setattr(package, "build_aggregator", fake_zip("aggregator"))
    monkeypatch.setattr(package, "build_admin", lambda output, **kwargs: calls.append(("admin", output, kwargs)) or output)
    keys, files = deploy_command.PackageBuilder().build_functions(tmp_path)
    assert set(keys) == {"RedirectCodeKey", "AggregatorCodeKey"}
    assert all(files[key].read_bytes() in (b"redirect", b"aggregator") for key in keys.values())
    deploy_command.PackageBuilder().build_admin(tmp_path / "admin.zip", "prod", tmp_path / "zappa_settings.json")
    assert calls[-1] == ("admin", tmp_path / "admin.zip", {"stage": "prod", "settings_file": tmp_path / "zappa_settings.json"})


def test_the_smoke_step_runs_deploy_smoke_in_process_with_the_stacks_admin_url(monkeypatch):
    from deploy import smoke

    seen = []

    class Smoke:
        def __init__(self, admin_url, short_url, token, target_url, root_url=None):
            seen.append(("init", admin_url, short_url, token, target_url, root_url))

        def run(self, count_within, cache_seconds):
            seen.append(("run", count_within, cache_seconds))
            raise smoke.SmokeFailed("follow answered 503")

    monkeypatch.setattr(smoke, "Smoke", Smoke)
    with pytest.raises(deploy_command.DeployError, match="the smoke test failed: follow answered 503"):
        deploy_command.run_smoke("https://a/prod", "https://s", "shk_token", 30.0, root_url="https://admin.example.org/")
    assert seen == [("init", "https://a/prod", "https://s", "shk_token", smoke.DEFAULT_TARGET_URL, "https://admin.example.org/"),
                    ("run", smoke.DEFAULT_COUNT_WITHIN_SECONDS, 30.0)]


class RolledBackUpdate:
    """A CloudFormation whose update fails and rolls back, with the events AWS records for it."""

    def create_change_set(self, **kwargs):
        pass

    def describe_change_set(self, **kwargs):
        return {"Status": "CREATE_COMPLETE", "Changes": [{"ResourceChange": {
            "Action": "Modify", "LogicalResourceId": "LinksTable", "ResourceType": "AWS::DynamoDB::Table",
            "Replacement": "True"}}]}

    def execute_change_set(self, **kwargs):
        pass

    def describe_stacks(self, **kwargs):
        return {"Stacks": [{"StackName": "links-prod", "StackStatus": "UPDATE_ROLLBACK_COMPLETE"}]}

    def describe_stack_events(self, **kwargs):
        from datetime import datetime, timedelta, timezone

        now = datetime.now(timezone.utc) + timedelta(seconds=5)
        return {"StackEvents": [  # newest first, as CloudFormation lists them
            {"LogicalResourceId": "links-prod", "ResourceStatus": "UPDATE_ROLLBACK_COMPLETE", "Timestamp": now},
            {"LogicalResourceId": "ClickStream", "ResourceType": "AWS::Kinesis::Stream", "ResourceStatus": "UPDATE_FAILED",
             "ResourceStatusReason": "Resource update cancelled", "Timestamp": now},
            {"LogicalResourceId": "LinksTable", "ResourceType": "AWS::DynamoDB::Table", "ResourceStatus": "UPDATE_FAILED",
             "ResourceStatusReason": "CloudFormation cannot update a stack when a custom-named resource requires "
                                     "replacing", "Timestamp": now},
            {"LogicalResourceId": "OldFailure", "ResourceStatus": "UPDATE_FAILED",
             "ResourceStatusReason": "from an earlier deploy", "Timestamp": now - timedelta(days=1)},
        ]}


def test_a_failed_update_names_the_reasons_oldest_first_and_flags_a_replaced_table(capsys):
    with pytest.raises(StackFailed) as caught:
        apply_change_set(RolledBackUpdate(), "links-prod", "https://b/t.yaml", {}, "UPDATE", lambda question: True, None, 0)
    message = str(caught.value)
    assert message.startswith("links-prod ended in UPDATE_ROLLBACK_COMPLETE")
    assert message.index("custom-named resource") < message.index("Resource update cancelled")
    assert "earlier deploy" not in message
    assert "LinksTable" in capsys.readouterr().out.split("REPLACED")[0].splitlines()[-1]


class _FirstSaltRun:
    """Just what first_salt reads of a deployment: the outputs, a Lambda client, and what it says."""

    def __init__(self, outputs, invoke):
        self.outputs, self.said = outputs, []
        self.aws = type("Aws", (), {"awslambda": type("Lambda", (), {"invoke": staticmethod(invoke)})()})()

    def say(self, text):
        self.said.append(text)


def test_a_salt_function_that_cannot_run_is_said_and_the_deploy_goes_on():
    from botocore.exceptions import ClientError

    def denied(**kwargs):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Invoke")

    run = _FirstSaltRun({"SaltFunctionName": "links-prod-salts"}, denied)
    deploy_command.first_salt(run)
    assert run.said == ["Could not run links-prod-salts (AccessDeniedException): its schedule makes today's salt within 15 minutes"]
    run = _FirstSaltRun({"SaltFunctionName": "links-prod-salts"}, lambda **kwargs: {"FunctionError": "Unhandled"})
    deploy_command.first_salt(run)
    assert "links-prod-salts failed (Unhandled" in run.said[0]


def test_a_stack_without_a_salt_function_is_not_asked_to_run_one():
    def invoke(**kwargs):
        raise AssertionError("invoked")

    run = _FirstSaltRun({"TableName": "links-prod-LinksTable-1"}, invoke)
    deploy_command.first_salt(run)
    assert run.said == []
