"""The audit log for admins: a page and GET /api/audit, both filtered and paged."""
from flask import Blueprint

bp = Blueprint("audit", __name__)


@bp.record_once
def _check_settings(state):
    """Refuse to start with a retention that is not a whole number of days (0: kept forever)."""
    days = state.app.config["AUDIT_RETENTION_DAYS"]
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise RuntimeError("SHORTENER_AUDIT_RETENTION_DAYS: use a whole number of days (0 keeps records forever).")


from webapp.audit_pages import routes  # noqa: E402,F401 - registers the views on bp
