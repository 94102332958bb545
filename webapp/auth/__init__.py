"""Signing in and out: local accounts, single sign-on, server-side sessions."""
from flask import Blueprint

bp = Blueprint("auth", __name__)

from webapp.auth import routes  # noqa: E402,F401 - registers the views on bp
from webapp.auth.session import login_required, permission_required  # noqa: E402,F401 - re-exported for other blueprints
