"""The main stack, changed only through CloudFormation change sets: create, show, confirm, execute, wait."""
import time
from datetime import datetime, timezone

from botocore.exceptions import ClientError

CAPABILITIES = ["CAPABILITY_IAM"]
# CloudFormation answers an unchanged stack with one of these (a FAILED change set, or a refusal).
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
# Types whose replacement loses data: their changes are flagged when shown.
STATEFUL_TYPES = {"AWS::DynamoDB::Table", "AWS::Kinesis::Stream", "AWS::SQS::Queue", "AWS::Logs::LogGroup"}
DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE"}
# A stack in one of these needs a person first; make deploy says what to do.
STUCK = {
    "ROLLBACK_FAILED": "delete it in the CloudFormation console (retaining what it could not delete), then run make deploy again",
    "DELETE_FAILED": "finish deleting it in the CloudFormation console, then run make deploy again",
    "UPDATE_ROLLBACK_FAILED": "run `aws cloudformation continue-update-rollback --stack-name {name}`, then make deploy again",
}


class StackFailed(Exception):
    """CloudFormation refused or rolled back; the message names the reasons it gave."""


class Cancelled(Exception):
    """The operator said no; nothing was changed."""


def describe_stack(cloudformation, stack_name):
    """The stack's description, or None when there is no such stack."""
    try:
        return cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as err:
        # CloudFormation has no error code of its own for this: a ValidationError that says so.
        if err.response["Error"]["Code"] == "ValidationError" and "does not exist" in err.response["Error"]["Message"]:
            return None
        raise


def parameters_of(stack):
    return {p["ParameterKey"]: p.get("ParameterValue") for p in (stack or {}).get("Parameters") or []}


def outputs_of(stack):
    return {o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs") or []}


def apply_change_set(cloudformation, stack_name, template_url, parameters, change_type, confirm, out, poll_seconds):
    """Create a change set, show it, ask, execute it and wait. True when executed, False when nothing changed."""
    name = f"make-deploy-{datetime.now(timezone.utc):%Y%m%d%H%M%S}"
    try:
        cloudformation.create_change_set(
            StackName=stack_name,
            ChangeSetName=name,
            ChangeSetType=change_type,
            TemplateURL=template_url,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())],
            Capabilities=CAPABILITIES,
            Description="make deploy",
        )
    except ClientError as err:
        if _no_changes(err.response["Error"]["Message"]):
            print(f"{stack_name}: no changes", file=out)
            return False
        raise
    change_set = _wait_change_set(cloudformation, stack_name, name, poll_seconds)
    if change_set["Status"] == "FAILED":
        reason = change_set.get("StatusReason", "")
        cloudformation.delete_change_set(StackName=stack_name, ChangeSetName=name)
        if _no_changes(reason):
            print(f"{stack_name}: no changes", file=out)
            return False
        raise StackFailed(f"CloudFormation could not make the change set: {reason}")
    print_changes(change_set["Changes"], change_type, stack_name, out)
    if not confirm(f"Execute this change set on {stack_name}?"):
        cloudformation.delete_change_set(StackName=stack_name, ChangeSetName=name)
        raise Cancelled(f"change set {name} not executed and deleted; nothing changed")
    started = datetime.now(timezone.utc)
    cloudformation.execute_change_set(StackName=stack_name, ChangeSetName=name)
    stack = wait_stack(cloudformation, stack_name, poll_seconds)
    status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise StackFailed(f"{stack_name} ended in {status}:\n" + failure_reasons(cloudformation, stack_name, started))
    print(f"{stack_name}: {status}", file=out)
    return True


def print_changes(changes, change_type, stack_name, out):
    """One line per resource: action, logical id, type, replacement."""
    print(f"Change set ({change_type}) for {stack_name}:", file=out)
    if not changes:
        print("  (no resource changes; parameters or outputs only)", file=out)
    for change in changes:
        resource = change.get("ResourceChange", {})
        replacement = resource.get("Replacement", "-")
        warning = ""
        if replacement in ("True", "Conditional") and resource.get("ResourceType") in STATEFUL_TYPES:
            warning = "   <- REPLACED: its data does not move to the new one"
        print(f"  {resource.get('Action', '?'):8} {resource.get('LogicalResourceId', '?'):36} "
              f"{resource.get('ResourceType', '?'):36} replacement: {replacement}{warning}", file=out)


def wait_stack(cloudformation, stack_name, poll_seconds):
    """Poll until the stack is no longer *_IN_PROGRESS; its description (None once deleted)."""
    while True:
        stack = describe_stack(cloudformation, stack_name)
        # REVIEW_IN_PROGRESS too: just after ExecuteChangeSet or DeleteStack the status may not have moved on
        # yet (boto3's stack_create_complete waiter polls through it as well).
        if stack is None or not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        time.sleep(poll_seconds)


def delete_stack(cloudformation, stack_name, poll_seconds):
    """Delete the stack and wait until it is gone."""
    cloudformation.delete_stack(StackName=stack_name)
    stack = wait_stack(cloudformation, stack_name, poll_seconds)
    if stack is not None and stack["StackStatus"] != "DELETE_COMPLETE":
        raise StackFailed(f"{stack_name} could not be deleted: {stack['StackStatus']} {stack.get('StackStatusReason', '')}")


def failure_reasons(cloudformation, stack_name, since=None):
    """The stack's failed events (since a moment), oldest first, one line each."""
    events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
    lines = [
        f"  {e['LogicalResourceId']} ({e.get('ResourceType', '')}): {e['ResourceStatus']}: {e['ResourceStatusReason']}"
        for e in reversed(events)
        if e["ResourceStatus"].endswith("FAILED") and e.get("ResourceStatusReason")
        and (since is None or e["Timestamp"] >= since)
    ]
    return "\n".join(lines) or "  (no failed events with a reason; see the stack's events in the console)"


def _wait_change_set(cloudformation, stack_name, name, poll_seconds):
    while True:
        change_set = cloudformation.describe_change_set(StackName=stack_name, ChangeSetName=name)
        if change_set["Status"] not in ("CREATE_PENDING", "CREATE_IN_PROGRESS"):
            break
        time.sleep(poll_seconds)
    changes = list(change_set.get("Changes", []))
    while change_set.get("NextToken"):
        change_set = cloudformation.describe_change_set(StackName=stack_name, ChangeSetName=name,
                                                        NextToken=change_set["NextToken"])
        changes += change_set.get("Changes", [])
    return {**change_set, "Changes": changes}


def _no_changes(message):
    return any(text in (message or "") for text in NO_CHANGES)
