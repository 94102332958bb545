"""CORS for the JSON API, by hand: only origins listed in CORS_ORIGINS, never "*"."""
from flask import current_app, request

from webapp.api import bp

ALLOWED_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type"
MAX_AGE = "600"


@bp.after_request
def add_cors_headers(response):
    """Echo the Origin back when it is listed; answer preflights with what we accept."""
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if not origin or origin not in current_app.config["CORS_ORIGINS"]:
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = MAX_AGE
    return response
