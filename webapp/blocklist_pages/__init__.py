"""Admins manage the destination blocklist at /settings/blocklist: list, add and remove rules."""
from flask import Blueprint

bp = Blueprint("blocklist", __name__)

from webapp.blocklist_pages import routes  # noqa: E402,F401 - registers the views on bp
