"""The home dashboard at /dashboard: clicks across all links, from the aggregator's daily rollups."""
from flask import Blueprint

bp = Blueprint("dashboard", __name__)

from webapp.dashboard import routes  # noqa: E402,F401 - registers the views on bp
from webapp.dashboard import retention_routes  # noqa: E402,F401 - registers /settings/stats on bp
