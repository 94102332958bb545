"""Editing a link, one path for the pages, the API and the CLI: check each new value with the link rules,
write it with the store's version check, and record what changed (old and new) in the audit log."""
import json
from datetime import date, timedelta

from flask import current_app, g, has_request_context

from webapp import abuse, audit, clock, link_rules, url_guard
from webapp.exceptions import InvalidLink, TokenNotFound
from webapp.store import get_store
from webapp.store.links import EDITABLE

# The fields a link shows, in the order a trail lists their changes.
FIELDS = ("url", "title", "tags", "note", "expires_at", "forward_query", "is_active", "archived")
_FLAGS = ("is_active", "archived", "forward_query")
# An edit that changes only one of these is recorded under its own action (still with its changes),
# so that the trail and the /audit filter read "link.disable" rather than a generic edit.
_FLAG_ACTIONS = {"is_active": ("link.enable", "link.disable"), "archived": ("link.archive", "link.unarchive")}
EXPIRY_DAYS_MAX = 3650
TRAIL_PAGE = 20
# A trail holds only the link actions: records of other kinds may target the same name (a user, a
# blocklist rule), and a link's readers must not see them (the audit log is for admins).
TRAIL_ACTIONS = "link."
# An audit record's details stop at audit.MAX_DETAILS_JSON bytes, past which whole entries are dropped
# (the last ones first: the caller's token, then the changes): the changes are cut to fit this share of
# it, and to what the record's other details leave (a token's 100-character name, a create's URL), first
# (long notes, titles and tags in other scripts, which JSON escapes to 6 or 12 bytes a character), so a
# record never loses them, nor which token made them.
CHANGES_JSON_MAX = 3000
_CUT_STEPS = (200, 60, 16, 4)
SOON_DAYS = 7  # the list flags links that expire within this many days


class InvalidField(InvalidLink):
    """A value of the wrong type, or a field no edit may change; names the field."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


def check_changes(raw):
    """{field: checked value} for the API's or the CLI's raw values; raise InvalidLink naming the first bad field.

    None clears a field: title, note, tags; for expires_at it means never expires.
    """
    if not raw:
        raise InvalidField(None, f"Nothing to change: send at least one of {', '.join(FIELDS)}.")
    unknown = sorted(set(raw) - EDITABLE)
    if unknown:
        raise InvalidField(unknown[0], f"Unknown field(s): {', '.join(unknown)}. "
                                       f"These can be changed: {', '.join(FIELDS)}.")
    config = current_app.config
    changes = {}
    for name in FIELDS:
        if name not in raw:
            continue
        value = raw[name]
        if name == "url":
            changes[name] = url_guard.normalise_url(value, config["SHORT_BASE_URL"], config["EXTRA_LOOP_HOSTS"])
        elif name == "title":
            changes[name] = link_rules.check_title(value)
        elif name == "tags":
            changes[name] = link_rules.check_tags(value)
        elif name == "note":
            changes[name] = link_rules.check_note(value)
        elif name == "expires_at":
            changes[name] = link_rules.parse_expiry(value)
        elif not isinstance(value, bool):
            raise InvalidField(name, f"{name} must be true or false.")
        else:
            changes[name] = value
    return changes


def expiry_in_days(days, now=None):
    """The expiry for "in N days" (1 to EXPIRY_DAYS_MAX); raise InvalidLink otherwise."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= EXPIRY_DAYS_MAX:
        raise InvalidField("expires_at", f"The number of days must be a whole number from 1 to {EXPIRY_DAYS_MAX}.")
    return link_rules.default_expiry(now, days)


def edit(short_id, changes, *, by, expected_version=None, via=None):
    """Apply checked changes to a link and audit them; return (link after, {field: {"old", "new"}}).

    A new destination is checked against the blocklist and the reputation service first
    (abuse.DestinationRefused); a stale expected_version raises VersionConflict; either writes nothing.
    """

    def check(current):
        # Against the link as the write finds it (a consistent read), not an earlier, maybe stale, one.
        if "url" in changes and changes["url"] != current["url"]:
            abuse.check_destination(changes["url"])

    before, after = get_store().links.update(short_id, changes, by=by, expected_version=expected_version, check=check)
    diff = differences(before, after)
    if diff:
        _record(action_for(diff), short_id, diff, actor=by, via=via)
    return after, diff


def days_left(link, now=None):
    """Whole days (rounded up) until an active link expires, when that is within SOON_DAYS; else None."""
    if not link.get("expires_at") or link_rules.link_status(link, now) != "active":
        return None
    left = clock.parse_timestamp(link["expires_at"]) - (now or clock.utcnow())
    days = -(-left // timedelta(days=1))
    return days if days <= SOON_DAYS else None


def record_create(link, *, actor=None, via=None):
    """Audit a new link with the fields it was created with (old values are all None)."""
    created = {name: {"old": None, "new": link[name]} for name in FIELDS
               if link[name] not in (None, [], "") and name not in _FLAGS}
    if not link["forward_query"]:
        created["forward_query"] = {"old": None, "new": False}
    _record("link.create", link["id"], created, actor=actor, via=via, url=link["url"])


def _record(action, short_id, changes, *, actor, via, **details):
    """Audit a link's changes, cut to the room the record's other details leave them."""
    details.update(_token_name())
    others = dict(details)
    if has_request_context() and g.get("api_token_id"):
        others["caller_token"] = g.api_token_id  # audit.record adds it
    # The changes' own key and separators: '"changes": ' and ', '.
    room = audit.MAX_DETAILS_JSON - _json_size(audit.bounded_details(others)) - len('"changes": , ')
    audit.record(action, target=short_id, actor=actor, via=via, changes=_fitted(changes, min(CHANGES_JSON_MAX, room)),
                 **details)


def _fitted(changes, limit=CHANGES_JSON_MAX):
    """The changes as the audit record keeps them: whole when they fit in limit bytes of JSON, else with
    every text cut shorter (marked with audit.CUT) until they do; at worst only which fields changed."""
    for length in (None, *_CUT_STEPS):
        fitted = changes if length is None else {name: {side: _cut(value, length) for side, value in change.items()}
                                                 for name, change in changes.items()}
        if _json_size(fitted) <= limit:
            return fitted
    return {name: {"old": audit.CUT, "new": audit.CUT} for name in changes}


def _json_size(value):
    """Bytes of a value as the audit record measures it (ASCII JSON, as audit._json writes it)."""
    return len(json.dumps(value, sort_keys=True, default=str).encode("utf-8"))


def _cut(value, limit):
    """A text (or each text of a list) of at most limit characters, marked when cut."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit - 1] + audit.CUT
    if isinstance(value, list):
        return [_cut(item, limit) for item in value]
    return value


def _token_name():
    """{"token_name": ...} of the API token making this change, so the trail can say which by name
    (audit.record keeps its id): one read, on API changes only, and the name stays after a revoke."""
    if not (has_request_context() and g.get("api_token_id")):
        return {}
    try:
        return {"token_name": get_store().tokens.get(g.api_token_id)["name"]}
    except TokenNotFound:  # revoked between its check and now: the id alone is still recorded
        return {}


def differences(before, after):
    """{field: {"old", "new"}} for each field that differs between two public links."""
    return {name: {"old": before[name], "new": after[name]} for name in FIELDS if before[name] != after[name]}


def action_for(diff):
    """The audit action of an edit: its own for a lone enable/disable/archive/unarchive, else link.edit."""
    if len(diff) == 1:
        name, change = next(iter(diff.items()))
        if name in _FLAG_ACTIONS:
            on, off = _FLAG_ACTIONS[name]
            return on if change["new"] else off
    return "link.edit"


def trail(link, limit=TRAIL_PAGE, cursor=None):
    """One page of a link's audit records, newest first, and the next cursor (store.audit.list).

    The months read run from the link's creation to today (plus one day, for a clock a little ahead).
    Only link actions (TRAIL_ACTIONS): any slug is free to take, so a link may share its id with a user.
    """
    created = link.get("created_at") or ""
    first_day = date.fromisoformat(created[:10]) if created[:10] else clock.utcnow().date()
    last_day = clock.utcnow().date() + timedelta(days=1)
    return get_store().audit.list(first_day=min(first_day, last_day), last_day=last_day, target=link["id"],
                                  action=TRAIL_ACTIONS, limit=limit, cursor=cursor)


def trail_entry(record):
    """An audit record as a link's trail shows it."""
    details = record["details"]
    entry = {"at": record["at"], "actor": record["actor"], "via": record["via"], "action": record["action"],
             "changes": details.get("changes") if isinstance(details.get("changes"), dict) else {}}
    if details.get("caller_token"):
        entry["token"] = details["caller_token"]
        entry["token_name"] = details.get("token_name")
    return entry
