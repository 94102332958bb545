"""A stage file, deploy/stages/<stage>.json: read, checked against cloudformation.yaml, nothing sent anywhere.

{"region": "us-east-1", "stack_name": "links-prod", "zappa_stage": "prod",
 "artifact_bucket": "" (empty: <account>-linkshortener-<region>, created by make deploy),
 "parameters": {<a Parameter of cloudformation.yaml>: value, ...},
 "admin_settings": {<SHORTENER_ setting without the prefix>: value, ...} (optional)}

Every parameter name must be one of the template's Parameters, and every value must pass the checks
the template gives it (AllowedValues, AllowedPattern, Min/Max), so a typo stops here instead of half
way through a CloudFormation update.
"""
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from local_stack.template import load_template

ROOT = Path(__file__).resolve().parent.parent
STAGES_DIR = Path(__file__).resolve().parent / "stages"
ZAPPA_SETTINGS = ROOT / "zappa_settings.json"

KEYS = {"region", "stack_name", "zappa_stage", "artifact_bucket", "parameters", "admin_settings"}
REQUIRED_KEYS = {"region", "stack_name", "zappa_stage", "parameters"}
# Filled in by make deploy itself: the bucket it uploads to and the keys of the zips it built.
SET_BY_DEPLOY = {"ArtifactBucket", "RedirectCodeKey", "AggregatorCodeKey"}
# "AdminUrl": "auto" (or "") takes the admin's URL from Zappa once the admin exists.
AUTO = ("auto", "")
# Settings make deploy writes from the stack's outputs; a stage file may not set them by hand.
SETTINGS_FROM_STACK = {"TABLE_NAME", "SHORT_BASE_URL", "SECRET_KEY_PARAMETER", "EXTRA_LOOP_HOSTS",
                       "LINK_CACHE_SECONDS", "OIDC_CLIENT_SECRET_PARAMETER"}
# Secrets live in SSM, never in a file in the repository.
SECRET_SETTINGS = {"SECRET_KEY", "OIDC_CLIENT_SECRET"}
# For the local stack and the tests only: a deployed admin in local mode has insecure cookies and a per-container
# secret key; TESTING skips the start-up checks; DEBUG propagates exceptions.
LOCAL_ONLY_SETTINGS = {"LOCAL_MODE", "TESTING", "DEBUG"}
# The per-stage names: two stages sharing one would read each other's secrets or logs (finding #12).
PER_STAGE_NAMES = ("AdminFunctionName", "SecretKeyParameterName", "OidcClientSecretParameterName")

# Parameters AWS takes as whole numbers (Kinesis ShardCount, RetentionPeriodHours, the event source's
# MaximumBatchingWindowInSeconds, API Gateway's ThrottlingBurstLimit): the template's Number type allows 2.5.
WHOLE_NUMBERS = {"ClickStreamShards", "ClickStreamRetentionHours", "ClickBatchWindowSeconds", "ThrottlingBurstLimit"}

REGION_NAME = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
# CloudFormation allows 128 characters; 28 keep the names it generates for the stack's roles,
# <stack>-<LogicalId>-<suffix of up to 13>, within IAM's 64 without a cut, so the deployer policy
# (deploy/deployer_policy.py) can name them; the longest is <stack>-ClickSubscriptionRole-<suffix>.
STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,27}")
PLAIN_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?")
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_SETTING = re.compile(r"[A-Z][A-Z0-9_]*")


def default_bucket(account, region):
    """The artifact bucket make deploy creates when the stage names none."""
    return f"{account}-linkshortener-{region}"


def role_boundary_arn(account, stack_name, region):
    """The permissions boundary make deploy gives the stack's roles: the managed policy an administrator makes
    once from deploy/iam/role-boundary-policy.json (python -m deploy.deployer_policy --policy boundary).

    Under the path /boundary/, so no grant of the deployer's on policy/<stack>-* can ever name it (a stack
    name has no "/"): the deployer may attach it but never change it.
    """
    return f"arn:aws:iam::{account}:policy/boundary/{stack_name}-{region}"


class StageError(ValueError):
    """A stage file that make deploy will not act on; the message says what to fix."""


@dataclass
class Stage:
    """A checked stage file; parameters are CloudFormation strings."""

    name: str
    region: str
    stack_name: str
    zappa_stage: str
    artifact_bucket: str
    parameters: dict
    admin_settings: dict = field(default_factory=dict)
    project_name: str = ""

    @property
    def admin_function_name(self):
        """Zappa's name for the admin function, and for the CloudFormation stack Zappa makes."""
        return zappa_lambda_name(self.project_name, self.zappa_stage)

    def parameter(self, name, template=None):
        """The value the stack gets: the stage file's, else the template's default."""
        if name in self.parameters:
            return self.parameters[name]
        default = (template or load_template())["Parameters"][name].get("Default")
        return None if default is None else cfn_string(default)

    @property
    def uses_oidc(self):
        return bool(self.admin_settings.get("OIDC_ISSUER"))


def zappa_lambda_name(project_name, zappa_stage):
    """slugify(project_name + "-" + stage), as Zappa 0.63's cli.py names the function and its stack."""
    return re.sub(r"[^a-z0-9]+", "-", f"{project_name}-{zappa_stage}".lower()).strip("-")


def cfn_string(value):
    """A JSON value as CloudFormation passes parameters: strings; true/false lower case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load_stage(name, stages_dir=STAGES_DIR, template=None, zappa_settings=ZAPPA_SETTINGS):
    """Read and check deploy/stages/<name>.json; raise StageError saying what is wrong."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name or ""):
        raise StageError(f"stage {name!r}: use lower-case letters, digits and '-'")
    path = Path(stages_dir) / f"{name}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in Path(stages_dir).glob("*.json"))) or "none"
        raise StageError(f"no stage file {path} (stages: {known})") from None
    except ValueError as err:
        raise StageError(f"{path}: not JSON: {err}") from None
    where = f"{path.name}"
    if not isinstance(raw, dict):
        raise StageError(f"{where}: must be a JSON object")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise StageError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(KEYS))})")
    missing = sorted(REQUIRED_KEYS - set(raw))
    if missing:
        raise StageError(f"{where}: missing key(s) {', '.join(missing)}")
    region, stack_name = raw["region"], raw["stack_name"]
    if not isinstance(region, str) or not REGION_NAME.fullmatch(region):
        raise StageError(f"{where}: region {region!r} is not an AWS region name like us-east-1")
    if not isinstance(stack_name, str) or not STACK_NAME.fullmatch(stack_name):
        raise StageError(f"{where}: stack_name {stack_name!r}: a letter, then letters, digits or '-', at most 28 "
                         "(the roles' generated names must fit IAM's 64)")
    bucket = raw.get("artifact_bucket", "")
    if not isinstance(bucket, str) or (bucket and not BUCKET_NAME.fullmatch(bucket)):
        raise StageError(f"{where}: artifact_bucket {bucket!r} is not an S3 bucket name (or \"\" to derive one)")
    template = template or load_template()
    parameters = _check_parameters(where, raw["parameters"], template["Parameters"])
    admin_settings = _check_admin_settings(where, raw.get("admin_settings", {}))
    project_name = _check_zappa(where, raw["zappa_stage"], stack_name, zappa_settings)
    stage = Stage(name, region, stack_name, raw["zappa_stage"], bucket, parameters, admin_settings, project_name)
    problem = rule_problem(stage, template)
    if problem:
        raise StageError(f"{where}: {problem}")
    problem = _shared_with_another_stage(stage, Path(stages_dir), template)
    if problem:
        raise StageError(f"{where}: {problem}")
    function_name = stage.parameter("AdminFunctionName", template)
    if function_name != stage.admin_function_name:
        raise StageError(f"{where}: AdminFunctionName is {function_name!r}, but Zappa names the admin function "
                         f"{stage.admin_function_name!r} (project_name-zappa_stage); set AdminFunctionName to that")
    return stage


def _shared_with_another_stage(stage, stages_dir, template):
    """Why this stage would share a stack, function or secret with another stage file in its region, or None.

    The template's defaults for the per-stage names are prod's, so a stage file that leaves one out would
    read prod's secrets (finding #12); a copied stack_name would update the other stage's stack.
    """
    for path in sorted(stages_dir.glob("*.json")):
        if path.stem == stage.name:
            continue
        try:
            other = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue  # that file's own run reports it
        if not isinstance(other, dict) or other.get("region") != stage.region:
            continue
        theirs = other.get("stack_name")
        if theirs == stage.stack_name:
            return f"stack_name {stage.stack_name!r} is also {path.name}'s: one stage would update the other's stack"
        if isinstance(theirs, str) and (theirs.startswith(stage.stack_name + "-")
                                        or stage.stack_name.startswith(theirs + "-")):
            # The deployer policy names a stage's resources <stack>-*: "links" would reach "links-prod-*".
            return (f"stack_name {stage.stack_name!r} and {path.name}'s {theirs!r}: one begins with the other and '-', "
                    f"so one stage's deployer policy (<stack>-*) would reach the other's resources")
        parameters = other.get("parameters") if isinstance(other.get("parameters"), dict) else {}
        for name in PER_STAGE_NAMES:
            default = template["Parameters"][name].get("Default")
            theirs = parameters.get(name, default)
            if theirs is not None and cfn_string(theirs) == stage.parameter(name, template):
                how = "" if name in stage.parameters else " (the template's default, as it is not set here)"
                return (f"{name} {cfn_string(theirs)!r}{how} is also {path.name}'s: each stage needs its own, "
                        f"or one stage's admin reads the other's secrets")
    return None


def _check_parameters(where, parameters, declared):
    if not isinstance(parameters, dict):
        raise StageError(f"{where}: parameters must be a JSON object")
    checked = {}
    for name, value in parameters.items():
        if name not in declared:
            raise StageError(f"{where}: {name} is not a parameter of cloudformation.yaml")
        if name in SET_BY_DEPLOY:
            raise StageError(f"{where}: {name} is set by make deploy itself; remove it from the stage file")
        if not isinstance(value, (str, int, float, bool)) or value is None:
            raise StageError(f"{where}: {name} must be a string, number or true/false, not {value!r}")
        text = cfn_string(value)
        if name in WHOLE_NUMBERS and not re.fullmatch(r"\d+", text):
            raise StageError(f"{where}: {name}={text!r}: a whole number")
        if not (name == "AdminUrl" and text in AUTO):
            problem = parameter_problem(text, declared[name])
            if problem:
                raise StageError(f"{where}: {name}={text!r}: {problem}")
        checked[name] = text
    return checked


def parameter_problem(text, spec):
    """Why CloudFormation would refuse this value for this parameter, or None."""
    if spec.get("Type") == "Number":
        # Written plainly: the template's Rules compare the text ("05" or "9.0" is not "9"), and float()
        # would take "nan", "inf" and "1e3", which CloudFormation or the service would refuse later.
        if not PLAIN_NUMBER.fullmatch(text):
            return "not a number written plainly (such as 10 or 2.5)"
        number = float(text)
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return f"below the template's MinValue {spec['MinValue']}"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return f"above the template's MaxValue {spec['MaxValue']}"
    if "AllowedValues" in spec and text not in [cfn_string(v) for v in spec["AllowedValues"]]:
        return f"not one of {', '.join(cfn_string(v) for v in spec['AllowedValues'])}"
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], text):
        return f"does not match the template's AllowedPattern {spec['AllowedPattern']}"
    if "MinLength" in spec and len(text) < int(spec["MinLength"]):
        return f"shorter than the template's MinLength {spec['MinLength']}"
    if "MaxLength" in spec and len(text) > int(spec["MaxLength"]):
        return f"longer than the template's MaxLength {spec['MaxLength']}"
    return None


def _check_admin_settings(where, settings):
    if not isinstance(settings, dict):
        raise StageError(f"{where}: admin_settings must be a JSON object")
    for name, value in settings.items():
        bare = name.removeprefix("SHORTENER_")
        if not _SETTING.fullmatch(bare):
            raise StageError(f"{where}: admin_settings: {name!r} is not a setting name (like OIDC_ISSUER)")
        if bare in SECRET_SETTINGS:
            raise StageError(f"{where}: admin_settings: {bare} is a secret; make deploy keeps it in SSM, never in a file")
        if bare in LOCAL_ONLY_SETTINGS:
            raise StageError(f"{where}: admin_settings: {bare} is for the local stack and tests, never a deployed admin")
        if bare in SETTINGS_FROM_STACK:
            raise StageError(f"{where}: admin_settings: {bare} comes from the stack's outputs; remove it")
        if not isinstance(value, (str, int, bool)):
            raise StageError(f"{where}: admin_settings: {bare} must be a string, number or true/false")
    return {name.removeprefix("SHORTENER_"): cfn_string(value) for name, value in settings.items()}


def _check_zappa(where, zappa_stage, stack_name, zappa_settings):
    """The Zappa stage must exist; the main stack must not take the name of the stack Zappa makes."""
    settings = json.loads(Path(zappa_settings).read_text(encoding="utf-8"))
    if zappa_stage not in settings:
        raise StageError(f"{where}: zappa_stage {zappa_stage!r} is not a stage of zappa_settings.json "
                         f"({', '.join(sorted(settings))})")
    project_name = resolved_zappa_stage(settings, zappa_stage)["project_name"]
    zappa_stack = zappa_lambda_name(project_name, zappa_stage)
    if stack_name.lower() == zappa_stack:
        raise StageError(f"{where}: stack_name {stack_name!r} is the name of the CloudFormation stack Zappa "
                         f"creates for the admin ({zappa_stack}); one deploy would overwrite the other. "
                         f"Choose another, such as links-{zappa_stage}")
    return project_name


def resolved_zappa_stage(settings, zappa_stage, source="zappa_settings.json"):
    """One stage of a Zappa settings file with its `extends` chain applied (shallow, as Zappa does).

    The one reading of `extends` for make deploy, make package and the deployer policy; a missing stage,
    a loop or a dangling parent is a StageError naming the stages (Zappa refuses them too)."""
    if zappa_stage not in settings:
        raise StageError(f"{source} has no stage {zappa_stage!r} (it has {', '.join(sorted(settings))})")
    config, seen = dict(settings[zappa_stage]), [zappa_stage]
    while "extends" in config:
        name = config.pop("extends")
        if name in seen:
            raise StageError(f"{source}: extends goes round: {' -> '.join(seen + [name])}")
        if name not in settings:
            raise StageError(f"{source}: {seen[-1]} extends {name!r}, which is not a stage")
        seen.append(name)
        config = {**settings[name], **config}
    return config


class _CannotEvaluate(Exception):
    """A rule function this check does not model: CloudFormation checks that rule itself."""


def rule_problem(stage, template):
    """The AssertDescription of the first template Rule the stage's parameters break, or None.

    The same check CloudFormation makes when the change set is created, made here so that a bad
    combination stops before anything is created. Rules using functions not modelled are left to it.
    """
    for name, rule in (template.get("Rules") or {}).items():
        try:
            if "RuleCondition" in rule and not _evaluate(rule["RuleCondition"], stage, template):
                continue
            for assertion in rule.get("Assertions", []):
                if not _evaluate(assertion["Assert"], stage, template):
                    return f"template rule {name}: {assertion.get('AssertDescription', 'not met')}"
        except _CannotEvaluate:
            continue
    return None


def _evaluate(node, stage, template):
    if isinstance(node, (str, int, float)):
        return cfn_string(node)
    if isinstance(node, list):
        return [_evaluate(item, stage, template) for item in node]
    if not isinstance(node, dict) or len(node) != 1:
        raise _CannotEvaluate(node)
    [(function, args)] = node.items()
    if function == "Ref":
        if args in SET_BY_DEPLOY or args not in template["Parameters"]:
            raise _CannotEvaluate(args)  # known only once make deploy runs
        return stage.parameter(args, template)
    values = _evaluate(args, stage, template)
    if function == "Fn::Equals":
        return values[0] == values[1]
    if function == "Fn::Not":
        return not values[0]
    if function == "Fn::And":
        return all(values)
    if function == "Fn::Or":
        return any(values)
    if function == "Fn::Contains":
        return values[1] in values[0]
    raise _CannotEvaluate(function)
