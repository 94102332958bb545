"""Signing in and out with local accounts."""
from flask import Blueprint

bp = Blueprint("auth", __name__)

from webapp.auth import routes  # noqa: E402,F401 - registers the views on bp
from webapp.auth.session import login_required  # noqa: E402,F401 - re-exported for other blueprints
