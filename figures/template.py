"""Figures read from cloudformation.yaml itself: `python -m figures` writes results/template.json."""
from local_stack.template import load_template

import figures

COMMAND = "python -m figures"


def _actions(statement):
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def admin_policy_actions(template=None):
    """{"table": [...], "by_list": [...], "ssm": [...], "lambda": [...]}: the AdminPolicy's actions, in the template's order."""
    template = template or load_template()
    statements = template["Resources"]["AdminPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    grouped = {"table": [], "by_list": [], "ssm": [], "lambda": []}
    for statement in statements:
        resource = str(statement["Resource"])
        group = ("ssm" if "ssm" in resource else "by_list" if "/index/by_list" in resource
                 else "lambda" if ":lambda:" in resource else "table")
        grouped[group] += _actions(statement)
    return grouped


def _listed(actions, prefix=False):
    """`GetItem`, `PutItem` and `Query`: service prefixes dropped unless asked for, as the README lists them."""
    names = [f"`{action if prefix else action.split(':', 1)[1]}`" for action in actions]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def derive(template=None):
    """The template's figures, keyed as documents quote them."""
    grouped = admin_policy_actions(template)
    return {
        f"admin_policy.{group}": figures.figure(actions, _listed(actions, prefix=group in ("ssm", "lambda")), basis="counted")
        for group, actions in grouped.items()
    }


def write(results_dir=None):
    """Derive the template's figures and write results/template.json, only when they changed (no churn)."""
    derived = derive()
    try:
        if figures.load("template", results_dir)["figures"] == derived:
            return None
    except FileNotFoundError:
        pass
    return figures.write("template", COMMAND, derived, results_dir)
