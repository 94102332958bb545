"""Views of the JSON API."""
import json

from flask import current_app, g, request, url_for

from webapp import abuse, access, clock, csv_export, link_edits, link_rules, stats, url_guard, whole_numbers
from webapp.api import bp
from webapp.api.auth import requires
from webapp.api.responses import json_error, link_json
from webapp.exceptions import InvalidCursor, InvalidLink, SlugTaken, VersionConflict
from webapp.store import get_store, link_search

_CREATE_FIELDS = {"url", "slug", "title", "expires_at", "tags", "note", "forward_query"}
MAX_AUDIT_PAGE = 100
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
    """Create a short link from {"url", "slug"?, "title"?, "expires_at"?, "tags"?, "note"?, "forward_query"?}."""
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
        tags = link_rules.check_tags(body.get("tags"))
        note = link_rules.check_note(body.get("note"))
        forward_query = body.get("forward_query", True)
        if not isinstance(forward_query, bool):
            return json_error(422, "forward_query must be true or false.", field="forward_query")
        reserved = abuse.admit_creation(url, g.api_user, g.api_token_id)
        link = _create(url, reserved, slug=slug, title=title, expires_at=expires_at, id_length=config["ID_LENGTH"],
                       tags=tags, note=note, forward_query=forward_query)
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
    link_edits.record_create(link)
    return link_json(link), 201, {"Location": url_for("api.get_link", short_id=link["id"]), "ETag": _etag(link)}


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
    limit = whole_numbers.parse(raw_limit, 4) or 0
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
    """One link with its click counts; its ETag is its version, for If-Match on PATCH."""
    link = get_store().links.get(short_id)
    return link_json(link), {"ETag": _etag(link)}


@bp.get("/api/links/<short_id>/stats")
@requires(access.READ_LINKS)
def link_stats(short_id):
    """A link's clicks, bot clicks and visitors per UTC day (every day of the window, oldest first), with
    its referrers, countries, devices, browsers and operating systems per day and over the window."""
    days, refusal = _stats_days()
    if refusal is not None:
        return refusal
    get_store().links.get(short_id)  # 404 for a link that does not exist, rather than an empty list
    today = clock.utcnow().date()  # read once: a Query across midnight still ends on this day
    found = get_store().links.daily_stats(short_id, days, today)
    series = stats.daily(found, today, days)
    summed = stats.totals(found)
    return {"short_id": short_id, "first_day": series[0]["day"], "last_day": series[-1]["day"],
            "clicks": summed["clicks"], "bots": summed["bots"],
            **{name: dict(summed[name]) for name in stats.DIMENSIONS}, "days": series}


@bp.get("/api/links/<short_id>/stats.csv")
@requires(access.READ_LINKS)
def link_stats_csv(short_id):
    """A link's clicks, bot clicks and visitors per UTC day as a CSV download."""
    days, refusal = _stats_days()
    if refusal is not None:
        return refusal
    get_store().links.get(short_id)
    today = clock.utcnow().date()
    found = get_store().links.daily_stats(short_id, days, today)
    return stats.csv_response(short_id, stats.daily(found, today, days))


def _stats_days():
    """(days, None) for ?days= a whole number from 1 to MAX_STATS_DAYS (default SHORTENER_STATS_DAYS), else (None, the 422)."""
    raw_days = request.args.get("days", str(current_app.config["STATS_DAYS"]))
    days = whole_numbers.parse(raw_days, 4) or 0
    if not 1 <= days <= MAX_STATS_DAYS:
        return None, json_error(422, f"days must be a whole number from 1 to {MAX_STATS_DAYS}.", field="days")
    return days, None


@bp.patch("/api/links/<short_id>")
@requires(access.WRITE_LINKS)
def update_link(short_id):
    """Change any of url, title, tags, note, expires_at, is_active, archived, forward_query; If-Match: "<version>" optional."""
    try:
        body = _json_object()
        expected_version = _if_match()
        changes = link_edits.check_changes(body)
        link, _ = link_edits.edit(short_id, changes, by=g.api_user, expected_version=expected_version)
    except _BadBody as err:
        return json_error(err.status, err.message)
    except InvalidLink as err:
        return json_error(422, err.message, field=err.field)
    except abuse.DestinationRefused as err:
        return json_error(err.status, err.message, field="url")
    except VersionConflict as err:
        current = err.current
        return json_error(412, f"The link is at version {current['version']} (changed by {current['updated_by'] or 'someone'} "
                               f"at {current['updated_at']}), not the one in If-Match; nothing was changed. "
                               "GET it again and re-apply your change.", {"ETag": _etag(current)})
    return link_json(link), {"ETag": _etag(link)}


@bp.get("/api/links/<short_id>/audit")
@requires(access.READ_LINKS)
def link_audit(short_id):
    """A link's changes, newest first: {"entries": [{"at", "actor", "via", "action", "changes"}], "next_cursor"}."""
    raw_limit = request.args.get("limit", str(link_edits.TRAIL_PAGE))
    limit = whole_numbers.parse(raw_limit, 4) or 0
    if not 1 <= limit <= MAX_AUDIT_PAGE:
        return json_error(422, f"limit must be a whole number from 1 to {MAX_AUDIT_PAGE}.", field="limit")
    link = get_store().links.get(short_id)
    try:
        records, next_cursor = link_edits.trail(link, limit, request.args.get("cursor") or None)
    except InvalidCursor:
        return json_error(422, "cursor is not one this API handed out.", field="cursor")
    return {"entries": [link_edits.trail_entry(record) for record in records], "next_cursor": next_cursor}


def _etag(link):
    """A link's entity tag: its version, quoted."""
    return f'"{link["version"]}"'


def _if_match():
    """The version named by If-Match ("<version>"), or None without one (or with *); raise _BadBody(412) otherwise."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    tag = header.strip()
    if len(tag) < 3 or tag[0] != '"' or tag[-1] != '"' or not tag[1:-1].isascii() or not tag[1:-1].isdigit() or len(tag) > 20:
        raise _BadBody(412, 'If-Match must be one ETag of this link, as GET gave it: "<version>".')
    return int(tag[1:-1])


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
