"""Outside review of `make deploy` (issue 17): the breaks found, each as a test (reviewer rev-deploy)."""
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
