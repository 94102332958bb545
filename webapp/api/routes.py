"""Views of the JSON API."""
import json

from flask import current_app, g, request, url_for

from webapp import abuse, access, audit, csv_export, link_rules, url_guard
from webapp.api import bp
from webapp.api.auth import requires
from webapp.api.responses import json_error, link_json
from webapp.exceptions import InvalidCursor, InvalidLink, SlugTaken
from webapp.store import get_store, link_search

_CREATE_FIELDS = {"url", "slug", "title", "expires_at"}
MAX_PAGE_SIZE = 100
MAX_STATS_DAYS = 366


class _BadBody(Exception):
    """The body is not a JSON object; carries the HTTP status and message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


@bp.post("/api/links")
@bp.post("/shorten")
@requires(access.WRITE_LINKS)
def create_link():
    """Create a short link from {"url", "slug"?, "title"?, "expires_at"?}."""
    try:
        body = _json_object()
        unknown = set(body) - _CREATE_FIELDS
        if unknown:
            return json_error(422, f"Unknown field(s): {', '.join(sorted(unknown))}.")
        config = current_app.config
        url = url_guard.normalise_url(body.get("url"), config["SHORT_BASE_URL"], config["EXTRA_LOOP_HOSTS"])
        slug = link_rules.optional_slug(body.get("slug"))
        title = link_rules.check_title(body.get("title"))
        expires_at = link_rules.parse_expiry(body.get("expires_at", link_rules.MISSING), default_days=config["DEFAULT_EXPIRY_DAYS"])
        reserved = abuse.admit_creation(url, g.api_user, g.api_token_id)
        link = _create(url, reserved, slug=slug, title=title, expires_at=expires_at, id_length=config["ID_LENGTH"])
    except _BadBody as err:
        return json_error(err.status, err.message)
    except InvalidLink as err:
        return json_error(422, err.message, field=err.field)
    except abuse.DestinationRefused as err:
        return json_error(err.status, err.message, field="url")
    except abuse.CreationLimited as err:
        return json_error(429, err.message, {"Retry-After": str(err.retry_after)})
    except SlugTaken:
        return json_error(409, "That custom slug is already taken.", field="slug")
    audit.record("link.create", target=link["id"], url=link["url"])
    return link_json(link), 201, {"Location": url_for("api.get_link", short_id=link["id"])}


def _create(url, reserved, **fields):
    """Store the link; a create that wrote nothing (a taken slug) gives back its reserved count."""
    try:
        return get_store().links.create(url, created_by=g.api_user, **fields)
    except SlugTaken:
        abuse.release_creation(g.api_user, g.api_token_id, reserved)
        raise


@bp.get("/api/links")
@requires(access.READ_LINKS)
def list_links():
    """One page of links, newest first, searched and filtered by q, tag, status, mine and sort:
    {"links": [...], "next_cursor": "..." or null}."""
    raw_limit = request.args.get("limit", str(current_app.config["PAGE_SIZE"]))
    # ASCII digits only: no signs, spaces, decimals or Unicode digits that int() rejects.
    limit = int(raw_limit) if raw_limit.isascii() and raw_limit.isdigit() else 0
    if not 1 <= limit <= MAX_PAGE_SIZE:
        return json_error(422, f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}.", field="limit")
    try:
        query = link_search.parse_query(request.args, g.api_user)
        page, next_cursor = get_store().link_search.find(query, limit, request.args.get("cursor") or None)
    except link_search.InvalidQuery as err:
        return json_error(422, err.message, field=err.field)
    except InvalidCursor:
        return json_error(422, "cursor is not one this API handed out.", field="cursor")
    return {"links": [link_json(link) for link in page], "next_cursor": next_cursor}


@bp.get("/api/links/export")
@requires(access.READ_LINKS)
def export_links():
    """The links as CSV (text/csv), newest first, filtered as the list is (q, tag, status, mine)."""
    try:
        query = link_search.parse_query(request.args, g.api_user)
    except link_search.InvalidQuery as err:
        return json_error(422, err.message, field=err.field)
    return csv_export.csv_response(query)


@bp.get("/api/links/<short_id>")
@requires(access.READ_LINKS)
def get_link(short_id):
    """One link with its click counts."""
    return link_json(get_store().links.get(short_id))


@bp.get("/api/links/<short_id>/stats")
@requires(access.READ_LINKS)
def link_stats(short_id):
    """A link's clicks per UTC day, with referrers, countries and devices: {"days": [...]} oldest first."""
    raw_days = request.args.get("days", str(current_app.config["STATS_DAYS"]))
    days = int(raw_days) if raw_days.isascii() and raw_days.isdigit() else 0
    if not 1 <= days <= MAX_STATS_DAYS:
        return json_error(422, f"days must be a whole number from 1 to {MAX_STATS_DAYS}.", field="days")
    store = get_store()
    store.links.get(short_id)  # 404 for a link that does not exist, rather than an empty list
    return {"short_id": short_id, "days": store.links.daily_stats(short_id, days)}


@bp.patch("/api/links/<short_id>")
@requires(access.WRITE_LINKS)
def update_link(short_id):
    """Enable or disable a link with {"is_active": true|false}."""
    try:
        body = _json_object()
    except _BadBody as err:
        return json_error(err.status, err.message)
    if set(body) != {"is_active"} or not isinstance(body["is_active"], bool):
        return json_error(422, 'Only "is_active" can be changed, and it must be true or false.', field="is_active")
    link = get_store().links.set_active(short_id, body["is_active"])
    audit.record("link.enable" if body["is_active"] else "link.disable", target=short_id)
    return link_json(link)


def _json_object():
    """The request body as a dict, or raise _BadBody (415 wrong type, 400 malformed)."""
    if request.mimetype != "application/json":
        raise _BadBody(415, "Send the body as JSON with Content-Type: application/json.")
    try:
        # get_data() raises 413 itself when the body is over MAX_CONTENT_LENGTH.
        body = json.loads(request.get_data())
        # A lone surrogate ("\ud800") is valid JSON but not text: no field may carry one to the table.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeError; RecursionError: absurd nesting
        raise _BadBody(400, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise _BadBody(400, "The body must be a JSON object.")
    return body
