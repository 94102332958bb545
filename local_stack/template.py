"""Read cloudformation.yaml, the single source of truth for the table schema."""
import copy
from pathlib import Path

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "cloudformation.yaml"
TABLE_RESOURCE = "LinksTable"
# The visitor hash's daily salts, in a table of their own (no point-in-time history, no admin access).
SALTS_TABLE_RESOURCE = "SaltsTable"


class _TemplateLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """A SafeLoader that keeps CloudFormation's short-form tags (!Ref, !Sub, ...) as plain data.

    libyaml's loader when PyYAML has it: the pure-Python one takes about 0.2 s for this template,
    and every test table is built from it.
    """


def _intrinsic(loader, tag_suffix, node):
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if name == "Fn::GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {name: value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


_parsed = {}  # (path, mtime, size) -> the parsed template, kept unmodified


def load_template(path=TEMPLATE_PATH):
    """Parse the template into plain dicts, intrinsic functions included (a fresh copy on each call)."""
    stat = Path(path).stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _parsed:
        with open(path, encoding="utf-8") as f:
            _parsed[key] = yaml.load(f, Loader=_TemplateLoader)  # noqa: S506 - SafeLoader subclass
    return copy.deepcopy(_parsed[key])


def table_properties(template=None, resource=TABLE_RESOURCE):
    """The Properties of a table resource (the links table unless `resource` names another)."""
    template = template or load_template()
    return template["Resources"][resource]["Properties"]


def create_table_kwargs(table_name, template=None, resource=TABLE_RESOURCE):
    """Keyword arguments for DynamoDB CreateTable, taken from the template's table."""
    props = table_properties(template, resource)
    kwargs = {
        "TableName": table_name,
        "BillingMode": props["BillingMode"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
    }
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return kwargs


def ttl_attribute(template=None, resource=TABLE_RESOURCE):
    """The TTL attribute name, or None when the template sets none."""
    spec = table_properties(template, resource).get("TimeToLiveSpecification") or {}
    return spec.get("AttributeName") if spec.get("Enabled") else None


def create_table(client, table_name, template=None, resource=TABLE_RESOURCE):
    """Create the table (and its TTL setting) exactly as the template describes it."""
    client.create_table(**create_table_kwargs(table_name, template, resource))
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    ttl = ttl_attribute(template, resource)
    if ttl:
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"AttributeName": ttl, "Enabled": True},
        )


def create_salts_table(client, table_name, template=None):
    """Create the salts table as the template's SaltsTable describes it."""
    create_table(client, table_name, template, SALTS_TABLE_RESOURCE)


def salts_table_name(table_name):
    """The local salts table beside a links table: its name + "-salts" (a stack names it itself on AWS)."""
    return f"{table_name}-salts"


def http_api_routes(template=None):
    """The route keys of the short-link HTTP API, like "GET /{short_id}": all the paths it answers."""
    template = template or load_template()
    return frozenset(
        resource["Properties"]["RouteKey"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::ApiGatewayV2::Route"
    )


_RATE_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def schedule_seconds(rule, template=None):
    """The interval of an EventBridge rule's rate(<n> <unit>) schedule, in seconds."""
    template = template or load_template()
    expression = template["Resources"][rule]["Properties"]["ScheduleExpression"]
    count, _, unit = expression.removeprefix("rate(").removesuffix(")").partition(" ")
    if not expression.startswith("rate(") or not count.isdigit() or unit not in _RATE_UNITS:
        raise ValueError(f"{rule}: {expression!r} is not a rate(<n> <unit>) schedule")
    return int(count) * _RATE_UNITS[unit]
