"""The audit log: one record per security-relevant action (who, what, to whom, from where, through what).

Every view that signs someone in, changes a user, a token, a setting or a link calls record(). This is
the one audit mechanism of the app; the per-link trail reads the same records (store.audit.list with
target=<link id>). A record is stored in the table (webapp/store/audit.py), append-only, and also
logged as one JSON line.
"""
import json
import math
import os
import time

from flask import current_app, g, has_request_context, request

from webapp.client_address import UNKNOWN, client_address
from webapp.exceptions import StoreUnavailable
from webapp.store import get_store
from webapp.store.signin import client_digest

# Through what an action came: the web pages, the JSON API, single sign-on, or the operator's CLI.
WEB, API, SSO, CLI = "web", "api", "sso", "cli"

# Bounds, so that no value (a hostile username, a 100 KB form field) can bloat a record: strings are
# cut at these lengths (characters), details at MAX_DETAILS entries and MAX_DETAILS_JSON bytes in all.
MAX_ACTION, MAX_ACTOR, MAX_TARGET, MAX_SHORT = 64, 128, 200, 32
MAX_DETAIL_TEXT = 500
MAX_DETAILS = 20
MAX_DETAIL_DEPTH = 3  # e.g. changes={"tags": {"old": [...], "new": [...]}}
MAX_DETAILS_JSON = 4000
CUT = "…"
# Marks the log line of a record the table did not take, so an operator can find and replay it.
NOT_STORED_MARKER = "AUDIT_NOT_STORED"

# Sign-in failures and lockouts also become CloudWatch metrics (embedded metric format), which
# cloudformation.yaml's SignInFailuresAlarm and SignInLockoutsAlarm watch.
METRICS_NAMESPACE = "Shortener"
METRIC_OF_ACTION = {"signin.failed": "SignInFailures", "signin.locked": "SignInLockouts",
                    "signin.disabled": "SignInFailures"}
# Every other check of a password or a code (the second factor, a password change, the password or code
# asked again) records a wrong guess as outcome "failed" and a limit's refusal as "locked": the same
# attack, so the same alarms.
METRIC_OF_OUTCOME = {"failed": "SignInFailures", "locked": "SignInLockouts"}


def record(action, *, target=None, outcome="ok", actor=None, via=None, **details):
    """Record one action, e.g. record("user.role", target="bob", role="editor").

    actor defaults to the signed-in user (g.user) or the API caller (g.api_user); via to api or web
    by blueprint. details are small JSON values; anything request-borne is stored bounded, only ever
    rendered escaped or logged as JSON, never spliced into a log line.
    """
    client = None
    if has_request_context():
        actor = actor or g.get("api_user") or g.get("user")
        via = via or (API if g.get("api_user") else WEB)
        if g.get("api_token_id"):
            # Which of the caller's tokens: a stolen one's actions must say which to revoke.
            details = {**details, "caller_token": g.api_token_id}
        address = client_address(request.environ)
        # A keyed hash, as the sign-in counters keep it: records never hold an IP address.
        client = address if address == UNKNOWN else client_digest(address, current_app.config["SECRET_KEY"])
    event = {
        "action": _cut(action, MAX_ACTION),
        "actor": _cut(actor, MAX_ACTOR),
        "target": _cut(target, MAX_TARGET),
        "outcome": _cut(outcome, MAX_SHORT),
        "via": _cut(via, MAX_SHORT),
        "client": client,
        "details": bounded_details(details),
    }
    # JSON on one line: a newline in any value is escaped, so no value can forge a log line.
    current_app.logger.info("audit %s", _json(event))
    metric = METRIC_OF_ACTION.get(event["action"]) or METRIC_OF_OUTCOME.get(event["outcome"])
    if metric:
        emit_metric(metric)
    try:
        get_store().audit.add({**event, "details": _json(event["details"])}, current_app.config["AUDIT_RETENTION_DAYS"])
    except StoreUnavailable:
        # The action this records has already happened (a user was created, a token revoked): failing
        # the request now would only hide that it did. The record stays in the log, marked to be found.
        current_app.logger.error("%s %s", NOT_STORED_MARKER, _json(event))
    return event


def bounded_details(details):
    """The details as JSON values within the bounds: at most MAX_DETAILS entries, strings cut, nesting limited."""
    bounded = {}
    for name, value in list(details.items())[:MAX_DETAILS]:
        bounded[_cut(str(name), MAX_SHORT)] = _bounded(value, MAX_DETAIL_DEPTH)
    if len(details) > MAX_DETAILS:
        bounded["details_dropped"] = len(details) - MAX_DETAILS
    while len(_json(bounded).encode("utf-8")) > MAX_DETAILS_JSON:
        # Still too large (many long values): drop entries from the end, and count them.
        dropped = bounded.pop("details_dropped", 0)
        bounded.popitem()
        bounded["details_dropped"] = dropped + 1
    return bounded


def _bounded(value, depth):
    """A JSON value with every string cut and at most MAX_DETAILS items a level, MAX_DETAIL_DEPTH levels deep."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth > 0 and isinstance(value, dict):
        return {_cut(str(k), MAX_SHORT): _bounded(v, depth - 1) for k, v in list(value.items())[:MAX_DETAILS]}
    if depth > 0 and isinstance(value, (list, tuple, set, frozenset)):
        return [_bounded(v, depth - 1) for v in list(value)[:MAX_DETAILS]]
    return _cut(str(value), MAX_DETAIL_TEXT)


def _cut(value, limit):
    """A string of at most limit characters (marked when cut), or None."""
    if value is None:
        return None
    # A lone surrogate (JSON allows "\ud800") cannot be encoded for the table or the log: replaced.
    value = str(value).encode("utf-8", "replace").decode("utf-8")
    return value if len(value) <= limit else value[:limit - 1] + CUT


def _json(value):
    # ASCII only: besides \n, U+2028, U+2029 and U+0085 end a line for many log readers, so no raw one may pass.
    return json.dumps(value, sort_keys=True, default=str)


def emit_metric(name):
    """Count one event as a CloudWatch embedded metric: a JSON line that CloudWatch Logs turns into a metric.

    Printed, not logged: the line must be the whole log event, with no level prefix, to be parsed.
    """
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "admin-local")
    print(json.dumps({
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": [{"Name": name, "Unit": "Count"}],
            }],
        },
        "FunctionName": function,
        name: 1,
    }), flush=True)
