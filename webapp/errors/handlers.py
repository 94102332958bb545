"""Error handlers for the whole app; no stack trace ever reaches a response."""
from flask import current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from webapp.errors import bp
from webapp.exceptions import IdSpaceExhausted, LinkNotFound, StoreUnavailable

_API_PREFIXES = ("/api/", "/shorten")
# The error page's heading, in words for people; any other status gets HTTP's own phrase.
_TITLES = {
    400: "That request could not be used",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    413: "Too large",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Busy, try again shortly",
}


def wants_json():
    """True for the JSON API's paths and for clients that prefer JSON to HTML."""
    if request.path.startswith(_API_PREFIXES) or request.path == "/api":
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(status, message, headers=None):
    """A JSON {"error": ...} body or an HTML page, whichever the client wants."""
    if wants_json():
        response = jsonify(error=message)
    else:
        response = current_app.response_class(
            render_template("errors/error.html", status=status, message=message,
                            title=_TITLES.get(status) or HTTP_STATUS_CODES.get(status, "Error"))
        )
    response.status_code = status
    response.headers.extend(headers or {})
    return response


@bp.app_errorhandler(HTTPException)
def handle_http_error(error):
    """Render any HTTP error (404, 405, 413, CSRF 400...) with werkzeug's own description."""
    headers = {k: v for k, v in error.get_headers() if k.lower() not in ("content-type", "content-length")}
    return error_response(error.code, error.description, headers)


@bp.app_errorhandler(CSRFError)
def handle_csrf_error(error):
    """A missing or stale CSRF token: usually an old tab, so say how to recover."""
    return error_response(400, "This form has expired or was not sent from this site (CSRF check failed). "
                               "Reload the page and try again.")


@bp.app_errorhandler(LinkNotFound)
def handle_link_not_found(error):
    """A missing link is a plain 404."""
    return error_response(404, "There is no short link with that id.")


@bp.app_errorhandler(StoreUnavailable)
def handle_store_unavailable(error):
    """DynamoDB throttled us: ask the client to retry instead of failing with a 500."""
    current_app.logger.warning("store unavailable: %r", error)
    return error_response(503, "The service is busy. Please try again in a moment.", {"Retry-After": "2"})


@bp.app_errorhandler(IdSpaceExhausted)
def handle_id_space_exhausted(error):
    """Several random ids in a row were taken: nothing was written, and asking again may find a free one."""
    current_app.logger.error("no free random id: %r", error)
    return error_response(503, "No free short id was found this time. Please try again, or choose a custom slug.",
                          {"Retry-After": "1"})


@bp.app_errorhandler(InternalServerError)
def handle_server_error(error):
    """Log the original exception and answer with a generic message."""
    original = getattr(error, "original_exception", None)
    if original is not None:
        current_app.logger.error("unhandled exception", exc_info=original)
    return error_response(500, "Something went wrong on our side. Please try again.")
