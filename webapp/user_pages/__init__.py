"""Admins manage users: create, change role, disable and re-enable."""
from flask import Blueprint

bp = Blueprint("users", __name__)

from webapp.user_pages import routes  # noqa: E402,F401 - registers the views on bp
