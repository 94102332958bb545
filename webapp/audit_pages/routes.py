"""Views of the audit log: the admin page and GET /api/audit."""
import functools

from flask import abort, g, render_template, request

from webapp import access
from webapp.api.auth import require_token
from webapp.api.responses import json_error
from webapp.audit_pages import bp, filters
from webapp.auth import permission_required
from webapp.exceptions import InvalidCursor
from webapp.store import get_store

# Reading the log is an admin's; a read token is enough, since it changes nothing.
READ_AUDIT = access.MANAGE_USERS


@bp.get("/audit")
@permission_required(READ_AUDIT)
def index():
    """The audit log, newest first, filtered by actor, action, target and days, one page at a time."""
    try:
        chosen = filters.parse(request.args)
        records, next_cursor = _page(chosen)
    except filters.BadFilter as err:
        return render_template("audit/index.html", records=[], chosen=request.args, error=err, next_cursor=None), 422
    except InvalidCursor:
        abort(400, "That page link is not valid. Start again from the first page.")
    return render_template("audit/index.html", records=records, chosen=request.args, error=None,
                           next_cursor=next_cursor)


def _api_admin(view):
    """Bearer token required (401), and its owner must be an admin (403); any scope may read."""

    @functools.wraps(view)
    def checked(**kwargs):
        refused = require_token()
        if refused is not None:
            return refused
        if not access.role_allows(g.api_role, READ_AUDIT):
            return json_error(403, f"Your role ({g.api_role}) does not allow this.")
        return view(**kwargs)

    return checked


@bp.get("/api/audit")
@_api_admin
def api_index():
    """Audit records, newest first: {"records": [...], "next": cursor or null}; same filters as the page, plus limit."""
    try:
        records, next_cursor = _page(filters.parse(request.args, with_limit=True))
    except filters.BadFilter as err:
        return json_error(422, err.message, field=err.field)
    except InvalidCursor:
        return json_error(422, "cursor is not one this API handed out for these filters.", field="cursor")
    return {"records": records, "next": next_cursor}


def _page(chosen):
    return get_store().audit.list(**chosen)
