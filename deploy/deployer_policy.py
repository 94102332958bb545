"""The deployer's and the operator's IAM policies for one stage: `python -m deploy.deployer_policy --stage prod`.

deploy/iam/deployer-policy.json is the least that `make deploy` needs: the deploy code's own calls, Zappa's
(deploy, update, rollback, status, undeploy) and what CloudFormation's resource handlers call as the deployer
(the stacks run with no service role). deploy/iam/operator-policy.json is what the operator tools need from a
laptop: `make replay-dlq` and `flask create-user`/`create-token`. deploy/iam/role-boundary-policy.json is the
permissions boundary of the stack's roles: the most any of them may do, and the only boundary with which the
deployer may create a role or change its permissions (so it cannot make itself a role with more). All three
are templates whose ${Name} placeholders this module fills from the stage file (deploy/stages/<stage>.json),
zappa_settings.json and the account id, so every grant names the stage's own stack, function, bucket, table
and parameters. tests/test_deployer_policy.py checks them against the calls the code makes and the template.
"""
import argparse
import fnmatch
import hashlib
import json
import re
import string
import sys
from pathlib import Path

from deploy import stage as stages

ROOT = Path(__file__).resolve().parent.parent
IAM_DIR = ROOT / "deploy" / "iam"
POLICIES = {"deployer": IAM_DIR / "deployer-policy.json", "operator": IAM_DIR / "operator-policy.json",
            "boundary": IAM_DIR / "role-boundary-policy.json"}
HANDLER_PERMISSIONS = IAM_DIR / "resource-handler-permissions.json"
STAGES_DIR = ROOT / "deploy" / "stages"
ZAPPA_SETTINGS = ROOT / "zappa_settings.json"
# IAM's quota for one managed policy document, counted without whitespace (IAM User Guide, IAM and STS quotas).
# The rendered deployer policy is larger, so --out writes it as several managed policies.
MANAGED_POLICY_CHARACTERS = 6144

# Zappa's keep-warm event (zappa/cli.py 0.63.0, ZappaCLI.schedule): its rule is named from these.
KEEP_WARM_EVENT = {"name": "zappa-keep-warm", "function": "handler.keep_warm_callback"}
_ACCOUNT = re.compile(r"\d{12}")
_FUNCTION = re.compile(r"[a-z0-9-]{1,64}")


class PolicyError(Exception):
    """A stage or setting the policy cannot be rendered from; the message says which."""


def load_stage(name, stages_dir=None):
    """The stage file deploy/stages/<name>.json as a dict."""
    stages_dir = stages_dir or STAGES_DIR
    if not re.fullmatch(r"[a-z0-9-]+", name or ""):
        raise PolicyError(f"stage {name!r}: use lower-case letters, digits and '-'")
    path = stages_dir / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PolicyError(f"no stage file {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}") from None
    except json.JSONDecodeError as err:
        raise PolicyError(f"{path.name} is not JSON: {err}") from None


def zappa_stage_settings(settings, stage):
    """One stage of zappa_settings.json with its `extends` chain applied, as Zappa reads it."""
    try:
        return stages.resolved_zappa_stage(settings, stage)
    except stages.StageError as err:
        raise PolicyError(str(err)) from None


def zappa_function_name(project_name, stage):
    """Zappa's Lambda function name, slugify(project_name + "-" + stage) (zappa/cli.py, load_settings);
    names that slugify would change are refused rather than guessed."""
    name = f"{project_name}-{stage}"
    if not _FUNCTION.fullmatch(name) or "--" in name or name.startswith("-") or name.endswith("-"):
        raise PolicyError(f"Zappa function name {name!r}: use lower-case letters, digits and single '-'")
    return name


def keep_warm_rule_name(function_name):
    """The EventBridge rule Zappa names for the keep-warm event (zappa/core.py, get_scheduled_event_name)."""
    name = f"{KEEP_WARM_EVENT['name']}-{KEEP_WARM_EVENT['function']}"

    def event_name(prefix):
        return "{prefix:.{width}}-{postfix}".format(prefix=prefix, width=max(0, 63 - len(name)), postfix=name)[:64]

    rule = event_name(function_name)
    if len(rule) >= 64:  # Zappa shortens a long function name to its SHA-1
        rule = event_name(hashlib.sha1(function_name.encode()).hexdigest())
    return rule


def artifact_bucket(stage, account):
    """The stage's artifact bucket: its own, or the one make deploy names from the account and region."""
    return stage.get("artifact_bucket") or stages.default_bucket(account, stage["region"])


def role_boundary(stage, account):
    """The stack's roles' permissions boundary: the stage file's RolePermissionsBoundaryArn, else the one
    make deploy derives from the account, stack and region."""
    return (stage.get("parameters", {}).get("RolePermissionsBoundaryArn")
            or stages.role_boundary_arn(account, stage["stack_name"], stage["region"]))


def values(stage, account, zappa_settings):
    """Every placeholder of the policies, for this stage and account, each checked."""
    if not _ACCOUNT.fullmatch(str(account)):
        raise PolicyError(f"account {account!r}: a 12-digit AWS account id")
    for key in ("region", "stack_name", "zappa_stage"):
        if not isinstance(stage.get(key), str) or not stage[key]:
            raise PolicyError(f"the stage file needs {key!r}")
    if not stages.REGION_NAME.fullmatch(stage["region"]):
        raise PolicyError(f"region {stage['region']!r} is not a region name such as us-east-1")
    if not stages.STACK_NAME.fullmatch(stage["stack_name"]):
        raise PolicyError(f"stack_name {stage['stack_name']!r}: a letter, then letters, digits or '-', 28 at most (the roles' generated names must fit 64)")
    bucket = artifact_bucket(stage, account)
    if not stages.BUCKET_NAME.fullmatch(bucket):
        raise PolicyError(f"artifact_bucket {bucket!r} is not an S3 bucket name")
    zappa = zappa_stage_settings(zappa_settings, stage["zappa_stage"])
    function = zappa_function_name(zappa["project_name"], stage["zappa_stage"])
    parameters = stage.get("parameters", {})
    secret = parameters.get("SecretKeyParameterName") or zappa.get("environment_variables", {}).get(
        "SHORTENER_SECRET_KEY_PARAMETER", "")
    path = secret.strip("/").rpartition("/")[0]
    if not secret.startswith("/") or not path:
        raise PolicyError(f"the secret key's parameter {secret!r} must be a path such as /app/stage/secret-key")
    # make deploy stores the SSO secret too: one grant covers both only if they share the path.
    oidc = parameters.get("OidcClientSecretParameterName", "")
    if oidc and not oidc.startswith(f"/{path}/"):
        raise PolicyError(f"OidcClientSecretParameterName {oidc!r} must be under /{path}/, beside the secret key")
    # The admin's log group is named after AdminFunctionName, and the policy after Zappa's function.
    if parameters.get("AdminFunctionName", function) != function:
        raise PolicyError(f"AdminFunctionName {parameters['AdminFunctionName']!r} is not Zappa's function {function!r}")
    existing_table = parameters.get("ExistingTableName", "")
    boundary = role_boundary(stage, account)
    # The deployer may change policies named policy/<stack>-*: a boundary among them it could rewrite.
    if fnmatch.fnmatchcase(boundary, f"arn:aws:iam::{account}:policy/{stage['stack_name']}-*"):
        raise PolicyError(f"RolePermissionsBoundaryArn {boundary!r} is a policy the deployer may change; "
                          f"name it outside policy/{stage['stack_name']}-*")
    return {
        "Account": str(account),
        "Region": stage["region"],
        "StackName": stage["stack_name"],
        "ZappaFunction": function,
        "KeepWarmRule": keep_warm_rule_name(function),
        "ArtifactBucket": bucket,
        "ParameterPath": path,
        # The operator reads the secret key alone (flask create-user), never the SSO client secret beside it.
        "SecretKeyParameter": secret.lstrip("/"),
        # The stack's own table has a generated name that starts with the stack's; an adopted one is named.
        "TableName": existing_table or f"{stage['stack_name']}-*",
        # The links table alone, for the operator: <stack>-* would also name the salts' table below.
        "LinksTableName": existing_table or f"{stage['stack_name']}-LinksTable-*",
        # The salts' table is always the stack's own (also with an adopted links table): a generated name.
        "SaltsTableName": f"{stage['stack_name']}-SaltsTable-*",
        "RoleBoundaryArn": boundary,
    }


def render(document, fills):
    """The policy with every ${Name} filled; an unknown placeholder is an error, never left in."""
    if isinstance(document, dict):
        return {key: render(value, fills) for key, value in document.items()}
    if isinstance(document, list):
        return [render(value, fills) for value in document]
    if isinstance(document, str):
        try:
            return string.Template(document).substitute(fills)
        except KeyError as err:
            raise PolicyError(f"the policy names an unknown placeholder {err}") from None
    return document


def policy_size(document):
    """Characters IAM counts against its quota: the JSON without whitespace."""
    return len(re.sub(r"\s", "", json.dumps(document)))


def managed_policies(document, limit=MANAGED_POLICY_CHARACTERS):
    """The policy as managed policy documents, each within IAM's size quota, statements kept whole and in order."""
    parts, current = [], []
    for statement in document["Statement"]:
        if policy_size({"Version": document["Version"], "Statement": [statement]}) > limit:
            raise PolicyError(f"statement {statement.get('Sid')} alone is over IAM's {limit} characters")
        if current and policy_size({"Version": document["Version"], "Statement": current + [statement]}) > limit:
            parts.append(current)
            current = []
        current.append(statement)
    parts.append(current)
    return [{"Version": document["Version"], "Statement": statements} for statements in parts]


def load_policy(kind):
    """The policy template of this kind ("deployer", "operator" or "boundary")."""
    return json.loads(POLICIES[kind].read_text())


def caller_account():
    """The account of the credentials in use (sts:GetCallerIdentity needs no permission)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sts = boto3.client("sts")
        return sts.get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as err:
        raise PolicyError(f"cannot read the account from your credentials ({type(err).__name__}); give --account") from None


def refresh_handler_permissions(schema_dir, out=HANDLER_PERMISSIONS):
    """Rewrite resource-handler-permissions.json from a directory of CloudFormation resource provider schemas
    (aws-<service>-<type>.json, as in the registry's CloudformationSchema.zip), for the types already listed."""
    current = json.loads(out.read_text())
    schemas = {}
    for path in sorted(Path(schema_dir).glob("*.json")):
        schema = json.loads(path.read_text())
        schemas[schema.get("typeName")] = schema
    for type_name in [t for t in current if not t.startswith("_")]:
        handlers = schemas.get(type_name, {}).get("handlers")
        if handlers:  # a type with no handlers in the registry (AWS::Budgets::Budget) keeps its entry
            current[type_name] = {kind: handlers[kind]["permissions"]
                                  for kind in ("create", "read", "update", "delete") if kind in handlers}
    out.write_text(json.dumps(current, indent=2) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True, help="a stage file of deploy/stages/ (prod for prod.json)")
    parser.add_argument("--policy", choices=sorted(POLICIES), default="deployer")
    parser.add_argument("--account", help="the 12-digit account id (default: the current credentials' account)")
    parser.add_argument("--out", type=Path, help="write it as managed policies, each within IAM's size quota, "
                                                  "to OUT/<policy>-<stage>-<n>.json, and print their paths")
    args = parser.parse_args(argv)
    try:
        stage = load_stage(args.stage)
        account = args.account or caller_account()
        fills = values(stage, account, json.loads(ZAPPA_SETTINGS.read_text()))
        document = render(load_policy(args.policy), fills)
        if args.out is None:
            print(json.dumps(document, indent=2))
            return 0
        args.out.mkdir(parents=True, exist_ok=True)
        for number, part in enumerate(managed_policies(document), start=1):
            path = args.out / f"{args.policy}-{args.stage}-{number}.json"
            path.write_text(json.dumps(part, indent=2) + "\n")
            print(path)
    except PolicyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
