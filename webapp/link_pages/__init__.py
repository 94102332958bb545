"""The link pages: list, create, show, enable and disable."""
from flask import Blueprint

# Not called "links", which would read as the link rules (webapp/link_rules.py) or the store part (webapp/store/links.py).
bp = Blueprint("links", __name__)

from webapp.link_pages import filters, routes  # noqa: E402,F401 - registers views and filters on bp
from webapp.link_pages import qr_routes  # noqa: E402,F401 - registers the QR views and template global on bp
from webapp.link_pages import import_routes  # noqa: E402,F401 - registers the CSV import pages on bp
