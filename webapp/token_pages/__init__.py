"""API tokens in the browser: create (shown once), list with last use, revoke."""
from flask import Blueprint

bp = Blueprint("tokens", __name__)

from webapp.token_pages import routes  # noqa: E402,F401 - registers the views on bp
