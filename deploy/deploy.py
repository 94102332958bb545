"""One command from an AWS account to a working, smoke-tested short link: `make deploy STAGE=prod`.

`python -m deploy.deploy --stage prod [--yes] [--oidc-client-secret-file PATH]`. The steps, each safe to
run again (a run that stops half-way is finished by running it again):
 1. read and check deploy/stages/<stage>.json against cloudformation.yaml (no AWS call before this passes);
 2. preflight: who and where (STS), the stack's state, a shard change CloudFormation cannot make at once;
 3. build the redirect and aggregator zips (content-hashed S3 keys);
 4. the artifact bucket (derived and created when the stage names none), uploads only of what is missing;
 5. the secret key in SSM (made once, never printed), and the SSO client secret when the stage uses SSO;
 6. the main stack, by change set: shown, confirmed, executed; deletion protection on after the first create;
    then SaltFunction once, so today's salt of the visitor hash exists now, not at the schedule's first run;
 7. the admin's Zappa settings, written from the stack's outputs (build/<stage>/zappa_settings.json);
 8. the admin zip, then `zappa deploy` or `zappa update`; the admin's URL goes back into the stack's AdminUrl;
 9. the smoke test (deploy/smoke.py) with a one-day token of a service user, revoked afterwards;
10. what was deployed, and what to do next.
"""
import argparse
import getpass
import hashlib
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from deploy import stack as stacks
from deploy.stage import (ROOT, STAGES_DIR, ZAPPA_SETTINGS, StageError, default_bucket, load_stage, resolved_zappa_stage,
                          role_boundary_arn)

BUILD_DIR = ROOT / "build"
TEMPLATE_PATH = ROOT / "cloudformation.yaml"
PACKAGE_VENV = ROOT / ".venv-package"
POLL_SECONDS = 5
# AdminUrl before Zappa has given the admin a URL (the first create); .invalid never resolves (RFC 2606).
PENDING_ADMIN_URL = "https://admin-url-pending.invalid/"
# The outputs the admin's settings and the smoke test are written from.
NEEDED_OUTPUTS = ("TableName", "ShortBaseUrl", "AdminRoleArn", "ExecuteApiUrl", "LinkCacheSeconds")
# The smoke test's own account: an editor with no password (nobody can sign in as it), and its token
# lives a day at most and is revoked as soon as the test ends.
SMOKE_USER = "deploy-smoke"
SMOKE_TOKEN_NAME = "make deploy smoke test"
SMOKE_TOKEN_DAYS = 1
# Zappa's CloudFormation stack (named like the function) holds its HTTP API under this logical id.
ZAPPA_API_RESOURCE = "ApiV2"


class DeployError(Exception):
    """A step could not finish; the message says why and what to do. Running make deploy again resumes."""


class AwsClients:
    """Every AWS client make deploy uses, from one session in the stage's region (and only here)."""

    def __init__(self, region):
        session = boto3.session.Session(region_name=region)
        self.sts = session.client("sts")
        self.s3 = session.client("s3")
        self.ssm = session.client("ssm")
        self.cloudformation = session.client("cloudformation")
        self.awslambda = session.client("lambda")
        self.dynamodb = session.client("dynamodb")  # the smoke test's user and token, through webapp.store


class PackageBuilder:
    """The real build (deploy/package.py): pip for Lambda's platform, and `zappa package` for the admin."""

    def build_functions(self, out_dir):
        """The redirect and aggregator zips; {"RedirectCodeKey": key, ...} and {key: local path}."""
        from deploy import package

        zips = [package.build_redirect(out_dir), package.build_aggregator(out_dir)]
        return read_code_keys(package.publish_code_keys(zips, out_dir), out_dir)

    def build_admin(self, output, zappa_stage, settings_file):
        from deploy import package

        return package.build_admin(output, stage=zappa_stage, settings_file=settings_file)


def read_code_keys(keys_file, out_dir):
    """build/<stage>/code-keys.txt ("RedirectCodeKey=code/... AggregatorCodeKey=code/...") and where each zip is."""
    keys = dict(pair.split("=", 1) for pair in Path(keys_file).read_text().split())
    return keys, {key: Path(out_dir) / "s3" / key for key in keys.values()}


def run_zappa(argv, env):
    """Zappa from .venv-package (the venv it packs); nothing secret is ever in argv."""
    result = subprocess.run([str(PACKAGE_VENV / "bin" / "zappa"), *argv], env=env, cwd=ROOT, check=False)
    return result.returncode


def run_smoke(admin_url, short_url, token, cache_seconds, root_url=None):
    """deploy/smoke.py in this process, so the token never reaches a command line. A failed or interrupted
    run disables its link itself; root_url is where the bare short domain must redirect (the stack's AdminUrl)."""
    from deploy import smoke

    check = smoke.Smoke(admin_url, short_url, token, smoke.DEFAULT_TARGET_URL, root_url=root_url)
    try:
        check.run(smoke.DEFAULT_COUNT_WITHIN_SECONDS, cache_seconds)
    except smoke.SmokeFailed as err:
        raise DeployError(f"the smoke test failed: {err}") from None


def ask(question):
    """y/N on the terminal; no terminal (a CI job without --yes, or `yes | make deploy`) is a no."""
    if not sys.stdin.isatty():
        print(f"{question} [y/N] no (no terminal to ask on; --yes or YES=1 to execute)", flush=True)
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


@dataclass
class Deployment:
    """One run for one stage: what it was given and what the steps found so far."""

    stage: object
    aws: AwsClients
    builder: object = field(default_factory=PackageBuilder)
    zappa: object = run_zappa
    smoke: object = run_smoke
    confirm: object = ask
    out: object = None  # None: sys.stdout at the time of printing
    oidc_secret_file: Path = None
    build_dir: Path = None
    template_text: str = None
    poll_seconds: float = POLL_SECONDS
    account: str = None
    stack: dict = None
    bucket: str = None
    code_keys: dict = None
    code_files: dict = None
    template_url: str = None
    outputs: dict = None
    settings_file: Path = None
    admin_url: str = None

    def say(self, text):
        print(text, file=self.out, flush=True)

    def parameter(self, name):
        return self.stage.parameter(name)


# Step 2


def preflight(d):
    """Who and where; the stack's state; refuse what CloudFormation would refuse half-way."""
    identity = d.aws.sts.get_caller_identity()
    d.account = identity["Account"]
    d.say(f"Deploying stage {d.stage.name} as {identity['Arn']} to account {d.account}, {d.stage.region}")
    d.stack = stacks.describe_stack(d.aws.cloudformation, d.stage.stack_name)
    status = d.stack["StackStatus"] if d.stack else "none yet"
    d.say(f"Stack {d.stage.stack_name}: {status}")
    if d.stack is None:
        return
    if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        raise DeployError(f"{d.stage.stack_name} is {status}: wait until it settles, then run make deploy again")
    if status in stacks.STUCK:
        raise DeployError(f"{d.stage.stack_name} is {status}: " + stacks.STUCK[status].format(name=d.stage.stack_name))
    if status not in ("ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"):  # else no stream exists to reshard
        check_shard_change(stacks.parameters_of(d.stack).get("ClickStreamShards"), d.parameter("ClickStreamShards"))


def check_shard_change(current, wanted):
    """Kinesis UpdateShardCount goes at most to double or half the current count per call."""
    if current is None or wanted is None:
        return
    current, wanted = _shard_count(current, "the stack's current"), _shard_count(wanted, "the stage file's")
    if current / 2 <= wanted <= current * 2:
        return
    steps, value = [], current
    while value != wanted:
        value = min(value * 2, wanted) if wanted > value else max(-(-value // 2), wanted)
        steps.append(str(value))
    raise DeployError(
        f"ClickStreamShards {current} -> {wanted} in one deploy would fail: Kinesis changes a stream's shards to at "
        f"most double or half at a time. Deploy these values one after another: {', '.join(steps)}"
    )


def _shard_count(value, whose):
    """A whole number of shards ("2.0" is 2), or a DeployError naming the value, never a ValueError."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not number.is_integer() or number < 1:
        raise DeployError(f"ClickStreamShards: {whose} value {value!r} is not a whole number of shards; "
                          f"set the stack's current count in deploy/stages/<stage>.json")
    return int(number)


# Step 3


def build_functions(d):
    d.code_keys, d.code_files = d.builder.build_functions(d.build_dir)
    d.say("Built: " + ", ".join(f"{k}={v}" for k, v in sorted(d.code_keys.items())))


# Step 4


def ensure_bucket(d):
    """The stage's bucket, or <account>-linkshortener-<region>, created private and encrypted when missing."""
    d.bucket = d.stage.artifact_bucket or default_bucket(d.account, d.stage.region)
    s3 = d.aws.s3
    try:
        # ExpectedBucketOwner: never upload code into a bucket of that name that another account owns.
        s3.head_bucket(Bucket=d.bucket, ExpectedBucketOwner=d.account)
    except ClientError as err:
        code = err.response["Error"]["Code"]
        if code in ("403", "AccessDenied", "Forbidden"):
            raise DeployError(f"bucket {d.bucket} exists but is not this account's (or is not readable): name "
                              f"another in artifact_bucket of deploy/stages/{d.stage.name}.json") from None
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise
        create_bucket(d)
    else:
        if not d.stage.artifact_bucket:
            # The derived bucket is make deploy's own: a run that stopped between CreateBucket and these
            # settings left it without them, so they are applied again (each is an idempotent PUT).
            harden_bucket(d)
        region = s3.get_bucket_location(Bucket=d.bucket, ExpectedBucketOwner=d.account).get("LocationConstraint")
        if (region or "us-east-1") != d.stage.region:
            raise DeployError(f"bucket {d.bucket} is in {region or 'us-east-1'}, not {d.stage.region}: Lambda takes "
                              f"code only from a bucket in its own region")
    for key, path in sorted(d.code_files.items()):
        upload_once(d, key, Path(path).read_bytes())
    template = d.template_text if d.template_text is not None else TEMPLATE_PATH.read_text(encoding="utf-8")
    # The template is over the 51,200 bytes TemplateBody takes, so CloudFormation reads it from S3.
    key = f"templates/cloudformation-{hashlib.sha256(template.encode()).hexdigest()[:16]}.yaml"
    upload_once(d, key, template.encode())
    d.template_url = f"https://{d.bucket}.s3.{d.stage.region}.amazonaws.com/{key}"


def create_bucket(d):
    s3 = d.aws.s3
    kwargs = {"Bucket": d.bucket, "ObjectOwnership": "BucketOwnerEnforced"}
    if d.stage.region != "us-east-1":  # us-east-1 refuses a LocationConstraint naming itself
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": d.stage.region}
    s3.create_bucket(**kwargs)
    harden_bucket(d)
    d.say(f"Created bucket {d.bucket} (public access blocked, encrypted, owner enforced)")


def harden_bucket(d):
    s3 = d.aws.s3
    s3.put_public_access_block(Bucket=d.bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_encryption(Bucket=d.bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]})
    s3.put_bucket_ownership_controls(Bucket=d.bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})


def upload_once(d, key, body):
    """Content-hashed keys: a key already there holds these very bytes."""
    try:
        d.aws.s3.head_object(Bucket=d.bucket, Key=key, ExpectedBucketOwner=d.account)
        return
    except ClientError as err:
        if err.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
    d.aws.s3.put_object(Bucket=d.bucket, Key=key, Body=body, ExpectedBucketOwner=d.account)
    d.say(f"Uploaded s3://{d.bucket}/{key}")


# Step 5


def ensure_secrets(d):
    """The Flask secret key (made here, once) and, with SSO, its client secret (from a file or a prompt)."""
    name = d.parameter("SecretKeyParameterName")
    if parameter_exists(d, name):
        d.say(f"Secret key {name}: exists, kept")
    else:
        put_secure_parameter(d, name, secrets.token_hex(32))
        d.say(f"Secret key {name}: created")
    if not d.stage.uses_oidc:
        return
    name = d.parameter("OidcClientSecretParameterName")
    if parameter_exists(d, name):
        d.say(f"SSO client secret {name}: exists, kept")
        return
    if d.oidc_secret_file:
        value = Path(d.oidc_secret_file).read_text(encoding="utf-8").strip()
    else:
        try:
            value = getpass.getpass(f"SSO client secret for {d.stage.admin_settings['OIDC_ISSUER']} (not echoed): ").strip()
        except EOFError:  # no terminal, and nothing on stdin: getpass's fallback reads stdin
            value = ""
    if not value:
        raise DeployError(f"no SSO client secret given; {name} is needed because the stage sets OIDC_ISSUER: "
                          f"type it at the prompt, or give --oidc-client-secret-file PATH")
    put_secure_parameter(d, name, value)
    d.say(f"SSO client secret {name}: stored")


def parameter_exists(d, name):
    try:
        d.aws.ssm.get_parameter(Name=name)  # not decrypted: only whether it is there
        return True
    except ClientError as err:
        if err.response["Error"]["Code"] == "ParameterNotFound":
            return False
        raise


def put_secure_parameter(d, name, value):
    try:
        d.aws.ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=False)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ParameterAlreadyExists":  # made meanwhile: keep that one
            raise


# Step 6


def deploy_stack(d):
    """Create or update the stack by change set; turn deletion protection on after the first create."""
    cloudformation = d.aws.cloudformation
    if d.stack and d.stack["StackStatus"] == "ROLLBACK_COMPLETE":
        d.say(f"{d.stage.stack_name}: its first create failed and rolled back:\n"
              + stacks.failure_reasons(cloudformation, d.stage.stack_name))
        if not d.confirm(f"Delete {d.stage.stack_name} (it holds nothing) and create it again?"):
            raise stacks.Cancelled("the rolled-back stack was left as it is")
        stacks.delete_stack(cloudformation, d.stage.stack_name, d.poll_seconds)
        d.stack = None
    if d.stack and d.stack["StackStatus"] == "REVIEW_IN_PROGRESS":
        # A create change set that was never executed: the stack holds nothing yet, so it starts afresh.
        stacks.delete_stack(cloudformation, d.stage.stack_name, d.poll_seconds)
        d.stack = None
    first_create = d.stack is None
    parameters = stack_parameters(d)
    protect = parameters.get("TableDeletionProtection")
    if first_create and protect is not None:
        # Off on the first create: a failed create must be able to delete the table it made (finding #2).
        parameters["TableDeletionProtection"] = "false"
    change_set(d, parameters, "CREATE" if first_create else "UPDATE")
    if first_create and protect == "true":
        d.say("Turning the table's deletion protection on, now that the stack exists")
        change_set(d, {**parameters, "TableDeletionProtection": "true"}, "UPDATE")
    read_outputs(d)


def first_salt(d):
    """Invoke SaltFunction once after the stack change: its schedule first fires up to 15 minutes after the
    create, and until a salt exists clicks carry no visitor hash. A failure is said, not fatal: the schedule
    makes the salt within 15 minutes, and SaltRotationErrorsAlarm tells when it keeps failing."""
    name = d.outputs.get("SaltFunctionName")
    if not name:
        return  # a stack from an older template: it has no salt function
    try:
        response = d.aws.awslambda.invoke(FunctionName=name, InvocationType="RequestResponse", Payload=b"{}")
    except (BotoCoreError, ClientError) as err:
        code = getattr(err, "response", {}).get("Error", {}).get("Code") or type(err).__name__
        d.say(f"Could not run {name} ({code}): its schedule makes today's salt within 15 minutes")
        return
    if response.get("FunctionError"):
        d.say(f"{name} failed ({response['FunctionError']}; its log group says why): its schedule tries again "
              f"within 15 minutes")
        return
    d.say(f"Ran {name}: today's salt of the visitor hash exists")


def change_set(d, parameters, change_type):
    stacks.apply_change_set(d.aws.cloudformation, d.stage.stack_name, d.template_url, parameters, change_type,
                            d.confirm, d.out, d.poll_seconds)


def stack_parameters(d):
    """The stage file's parameters, the bucket and code keys, the roles' boundary, and the AdminUrl known best so far."""
    parameters = {name: value for name, value in d.stage.parameters.items() if name != "AdminUrl"}
    parameters["ArtifactBucket"] = d.bucket
    # The deployer may create or change the stack's roles only with this boundary (deploy/iam/deployer-policy.json).
    # Not checked here (that would need iam:GetPolicy): a boundary the administrator has not made yet fails the
    # change set at the first role, with IAM's NoSuchEntity naming the policy, and rolls back.
    parameters["RolePermissionsBoundaryArn"] = (d.stage.parameters.get("RolePermissionsBoundaryArn")
                                                or role_boundary_arn(d.account, d.stage.stack_name, d.stage.region))
    parameters.update(d.code_keys)
    parameters["AdminUrl"] = admin_url_parameter(d)
    if stacks.parameters_of(d.stack).get("TableDeletionProtection") == "true" and \
            parameters.get("TableDeletionProtection") != "true":
        # A parameter left out of a change set gets the template's Default ("false"), not the stack's value,
        # and a stage file saying "false" is most likely a copy of dev's: make deploy never turns it off.
        d.say("TableDeletionProtection stays \"true\": make deploy never turns the table's deletion protection "
              "off (to delete the stack, turn it off in the console first)")
        parameters["TableDeletionProtection"] = "true"
    return parameters


def admin_url_parameter(d):
    wanted = d.stage.parameters.get("AdminUrl", "auto")
    if wanted not in ("auto", ""):
        return wanted
    return d.admin_url or stacks.parameters_of(d.stack).get("AdminUrl") or PENDING_ADMIN_URL


def read_outputs(d):
    d.stack = stacks.describe_stack(d.aws.cloudformation, d.stage.stack_name)
    d.outputs = stacks.outputs_of(d.stack)
    missing = [name for name in NEEDED_OUTPUTS if name not in d.outputs]
    if missing:
        raise DeployError(f"{d.stage.stack_name} has no output {', '.join(missing)}: is the deployed "
                          f"cloudformation.yaml older than this deploy code?")


# Step 7


def write_admin_settings(d, settings_path=ZAPPA_SETTINGS):
    """build/<stage>/zappa_settings.json: the committed stage, `extends` resolved, with this stack's values."""
    settings = json.loads(Path(settings_path).read_text(encoding="utf-8"))
    # Resolved here because Zappa's `extends` is shallow: a stage that names environment_variables
    # replaces its parent's whole dict. The file written holds one stage and no `extends`.
    config = resolved_zappa_stage(settings, d.stage.zappa_stage)
    config["aws_region"] = d.stage.region
    config["role_arn"] = d.outputs["AdminRoleArn"]
    config["s3_bucket"] = d.bucket
    env = dict(config.get("environment_variables", {}))
    env["SHORTENER_TABLE_NAME"] = d.outputs["TableName"]
    env["SHORTENER_SHORT_BASE_URL"] = d.outputs["ShortBaseUrl"]
    env["SHORTENER_SECRET_KEY_PARAMETER"] = d.parameter("SecretKeyParameterName")
    env["SHORTENER_LINK_CACHE_SECONDS"] = str(d.outputs["LinkCacheSeconds"])
    execute_api_host = urlsplit(d.outputs["ExecuteApiUrl"]).hostname
    if execute_api_host and execute_api_host != urlsplit(d.outputs["ShortBaseUrl"]).hostname:
        # With a custom domain the execute-api host still reaches the links: a link to it would loop.
        env["SHORTENER_EXTRA_LOOP_HOSTS"] = execute_api_host
    if d.stage.uses_oidc:
        env["SHORTENER_OIDC_CLIENT_SECRET_PARAMETER"] = d.parameter("OidcClientSecretParameterName")
    env.update({f"SHORTENER_{name}": value for name, value in d.stage.admin_settings.items()})
    config["environment_variables"] = env
    text = json.dumps({d.stage.zappa_stage: config}, indent=4) + "\n"
    if "REPLACE" in text:
        raise DeployError(f"the admin settings still hold a REPLACE placeholder: {settings_path}")
    d.settings_file = d.build_dir / "zappa_settings.json"
    d.settings_file.parent.mkdir(parents=True, exist_ok=True)
    d.settings_file.write_text(text, encoding="utf-8")
    d.say(f"Wrote {d.settings_file}")


# Step 8


def deploy_admin(d):
    """Build the admin zip from the written settings; `zappa deploy` the first time, `zappa update` after."""
    zip_path = d.builder.build_admin(d.build_dir / "admin.zip", d.stage.zappa_stage, d.settings_file)
    command = zappa_command(d)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(VIRTUAL_ENV=str(PACKAGE_VENV), AWS_DEFAULT_REGION=d.stage.region, AWS_REGION=d.stage.region,
               PATH=f"{PACKAGE_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    argv = [command, d.stage.zappa_stage, "-s", str(d.settings_file), "-z", str(zip_path)]
    d.say(f"zappa {' '.join(argv)}")
    if d.zappa(argv, env) != 0:
        raise DeployError(f"zappa {command} failed (above); fix the cause and run make deploy again")
    d.admin_url = read_admin_url(d)
    d.say(f"Admin: {d.admin_url}")
    if d.stage.parameters.get("AdminUrl", "auto") in ("auto", "") and \
            stacks.parameters_of(d.stack).get("AdminUrl") != d.admin_url:
        d.say("Pointing the short domain's / at the admin (AdminUrl)")
        change_set(d, stack_parameters(d), "UPDATE")
        read_outputs(d)


def zappa_command(d):
    """`update` when the admin and Zappa's stack both exist, else `deploy`, clearing a half-made admin first.

    Zappa 0.63's update leaves a missing stack missing ("re-deploy to enable updates") and its deploy refuses a
    function that exists, so a `zappa deploy` that stopped between the two would never finish by itself.
    """
    if not admin_function_exists(d):
        return "deploy"
    name = d.stage.admin_function_name
    zappa_stack = stacks.describe_stack(d.aws.cloudformation, name)
    if zappa_stack and zappa_stack["StackStatus"] == "ROLLBACK_COMPLETE":  # its create failed: it holds nothing
        d.say(f"Zappa's stack {name} is ROLLBACK_COMPLETE: deleting it")
        stacks.delete_stack(d.aws.cloudformation, name, d.poll_seconds)
        zappa_stack = None
    if zappa_stack is not None:
        return "update"
    # No API stack: nothing reaches the function, so deleting it loses nothing and lets `zappa deploy` start afresh.
    d.say(f"The admin function {name} exists without Zappa's stack (a zappa deploy that stopped): deleting it "
          f"so that zappa deploy can make both")
    d.aws.awslambda.delete_function(FunctionName=name)
    return "deploy"


def admin_function_exists(d):
    try:
        d.aws.awslambda.get_function(FunctionName=d.stage.admin_function_name)
        return True
    except ClientError as err:
        if err.response["Error"]["Code"] == "ResourceNotFoundException":
            return False
        raise


def read_admin_url(d):
    """The admin's URL as Zappa 0.63 builds it (core.get_api_url): its stack's ApiV2 id, region, stage."""
    try:
        resource = d.aws.cloudformation.describe_stack_resource(
            StackName=d.stage.admin_function_name, LogicalResourceId=ZAPPA_API_RESOURCE)
    except ClientError as err:
        raise DeployError(f"Zappa's stack {d.stage.admin_function_name} has no API "
                          f"({err.response['Error']['Message']}); run make deploy again") from None
    api_id = resource["StackResourceDetail"]["PhysicalResourceId"]
    return f"https://{api_id}.execute-api.{d.stage.region}.amazonaws.com/{d.stage.zappa_stage}"


# Step 9


def smoke_test(d):
    """A service user's one-day token, made with the admin's own store code, used once and revoked."""
    from webapp import access
    from webapp.exceptions import UserExists
    from webapp.store import Store

    store = Store(d.outputs["TableName"], client=d.aws.dynamodb)
    try:
        store.users.create(SMOKE_USER, password=None, role=access.EDITOR)
        d.say(f"Created the smoke test's user {SMOKE_USER} (editor, no password: nobody signs in as it)")
    except UserExists:
        pass
    token, token_id = store.tokens.create(SMOKE_USER, SMOKE_TOKEN_NAME, scope=access.WRITE, days=SMOKE_TOKEN_DAYS)
    try:
        d.smoke(d.admin_url, d.outputs["ShortBaseUrl"], token, float(d.outputs["LinkCacheSeconds"]),
                root_url=admin_url_parameter(d))
    finally:
        store.tokens.revoke(token_id)
        d.say(f"Revoked the smoke test's token {token_id}")


# Step 10


def summary(d):
    table_env = (f"AWS_DEFAULT_REGION={d.stage.region} SHORTENER_TABLE_NAME={d.outputs['TableName']} "
                 f"SHORTENER_SHORT_BASE_URL={d.outputs['ShortBaseUrl']} "
                 f"SHORTENER_SECRET_KEY_PARAMETER={d.parameter('SecretKeyParameterName')}")
    lines = [
        "",
        f"Stage {d.stage.name} is deployed and passed the smoke test.",
        f"  Admin:        {d.admin_url}",
        f"  Short links:  {d.outputs['ShortBaseUrl']}",
        f"  Dashboard:    {d.outputs.get('DashboardUrl', '(no DashboardUrl output)')}",
        "Next steps:",
        "  - Create the first admin (it prompts for the password):",
        f"      {table_env} .venv/bin/flask --app webapp.wsgi create-user alice --role admin",
    ]
    if not d.parameter("AlarmEmail"):
        lines.append(f"  - Alarms go nowhere: set AlarmEmail in deploy/stages/{d.stage.name}.json and deploy again.")
    if d.parameter("MonthlyBudgetUsd") in (None, "0"):
        lines.append(f"  - No cost budget: set MonthlyBudgetUsd in deploy/stages/{d.stage.name}.json.")
    if not d.parameter("ShortDomainName"):
        lines.append("  - Short links use the execute-api host: a custom domain needs ShortDomainName and CertificateArn.")
    if not d.stage.uses_oidc:
        lines.append("  - Single sign-on is off: set OIDC_ISSUER and OIDC_CLIENT_ID in admin_settings to turn it on.")
    d.say("\n".join(lines))


STEPS = (preflight, build_functions, ensure_bucket, ensure_secrets, deploy_stack, first_salt, write_admin_settings,
         deploy_admin, smoke_test, summary)


def deploy(stage_name, *, yes=False, oidc_secret_file=None, clients=AwsClients, build_root=BUILD_DIR,
           stages_dir=STAGES_DIR, **overrides):
    """Every step for one stage; raises StageError, DeployError, StackFailed or Cancelled."""
    stage = load_stage(stage_name, stages_dir)  # before any AWS client exists: a bad file changes nothing
    if oidc_secret_file is not None and not Path(oidc_secret_file).is_file():
        raise StageError(f"--oidc-client-secret-file {oidc_secret_file}: no such file")
    d = Deployment(stage, clients(stage.region), oidc_secret_file=oidc_secret_file,
                   build_dir=Path(build_root) / stage.name, **overrides)
    if yes:
        d.confirm = lambda question: True
    for step in STEPS:
        step(d)
    return d


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True, help="a stage file's name: deploy/stages/<stage>.json")
    parser.add_argument("--yes", action="store_true", help="execute change sets without asking")
    parser.add_argument("--oidc-client-secret-file", type=Path,
                        help="a file holding the SSO client secret, read when its SSM parameter is missing "
                             "(else it is prompted for; never give a secret on the command line)")
    args = parser.parse_args(argv)
    try:
        deploy(args.stage, yes=args.yes, oidc_secret_file=args.oidc_client_secret_file)
    except StageError as err:
        print(f"make deploy: {err}\nNothing was changed.", file=sys.stderr)
        return 2
    except stacks.Cancelled as err:
        print(f"make deploy: cancelled: {err}", file=sys.stderr)
        return 1
    except (DeployError, stacks.StackFailed) as err:
        print(f"make deploy: {err}\nRun make deploy again once the cause is fixed; it picks up where it stopped.",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nmake deploy: stopped. Run it again to finish; it picks up where it stopped.", file=sys.stderr)
        return 130
    except (ClientError, BotoCoreError) as err:
        print(f"make deploy: AWS refused: {err}\nRun make deploy again once the cause is fixed.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
