"""The JSON API, authenticated with bearer tokens."""
from flask import Blueprint

bp = Blueprint("api", __name__)

from webapp.api import access_routes, auth, blocklist_routes, cors, routes  # noqa: E402,F401 - registers hooks and views on bp
from webapp.api import qr_routes  # noqa: E402,F401 - registers the QR view on bp
from webapp.api import openapi  # noqa: E402,F401 - registers GET /api/openapi.json on bp
from webapp.api import import_routes  # noqa: E402,F401 - registers the CSV import views on bp
from webapp.api import stats_routes  # noqa: E402,F401 - registers GET /api/stats on bp
