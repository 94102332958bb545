"""The link pages: list, create, show, enable and disable."""
from flask import Blueprint

# The package is not called "links" because webapp/links.py holds the link rules.
bp = Blueprint("links", __name__)

from webapp.link_pages import filters, routes  # noqa: E402,F401 - registers views and filters on bp
