"""Views of the JSON API for the destination blocklist (admins, write tokens)."""
from flask import g, url_for

from webapp import abuse, access, audit
from webapp.api import bp
from webapp.api.auth import requires
from webapp.api.responses import json_error
from webapp.api.routes import _BadBody, _json_object  # one body parser for the whole API
from webapp.store import get_store
from webapp.store.blocklist import MAX_RULES, BlocklistFull, RuleExists, RuleNotFound

_RULE_FIELDS = {"kind", "value"}


@bp.get("/api/blocklist")
@requires(access.MANAGE_BLOCKLIST)
def list_blocklist():
    """Every rule: {"rules": [{"id", "kind", "value", "created_by", "created_at"}, ...]}."""
    return {"rules": get_store().blocklist.list()}


@bp.post("/api/blocklist")
@requires(access.MANAGE_BLOCKLIST)
def add_blocklist_rule():
    """Add a rule from {"kind": "domain"|"pattern", "value": "..."}; the answer has it as stored."""
    try:
        body = _json_object()
    except _BadBody as err:
        return json_error(err.status, err.message)
    unknown = set(body) - _RULE_FIELDS
    if unknown:
        return json_error(422, f"Unknown field(s): {', '.join(sorted(unknown))}.")
    if body.get("kind") not in abuse.KINDS:
        return json_error(422, f"kind must be one of: {', '.join(abuse.KINDS)}.", field="kind")
    try:
        value = abuse.check_rule(body["kind"], body.get("value"))
    except ValueError as err:
        return json_error(422, str(err), field="value")
    try:
        rule = get_store().blocklist.add(body["kind"], value, created_by=g.api_user)
    except RuleExists:
        return json_error(409, "The blocklist already has this rule.", field="value")
    except BlocklistFull:
        return json_error(422, f"The blocklist holds {MAX_RULES} rules, the most it can. Remove one first.")
    audit.record("blocklist.add", target=rule["id"], kind=rule["kind"], value=rule["value"])
    return rule, 201, {"Location": url_for("api.list_blocklist")}


@bp.delete("/api/blocklist/<rule_id>")
@requires(access.MANAGE_BLOCKLIST)
def remove_blocklist_rule(rule_id):
    """Remove one rule by its id."""
    try:
        rule = get_store().blocklist.remove(rule_id)
    except RuleNotFound:
        return json_error(404, "There is no blocklist rule with that id.")
    audit.record("blocklist.remove", target=rule_id, kind=rule["kind"], value=rule["value"])
    return "", 204
