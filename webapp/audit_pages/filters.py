"""The audit log's filters, read from a query string with no I/O: one set of rules for the page and the API."""
import re
from datetime import date, timedelta

from webapp import audit, clock, whole_numbers

ACTION_RE = re.compile(r"[a-z0-9_.-]{1,64}")
DEFAULT_DAYS = 365  # the range shown when no start day is given
EARLIEST = date(2000, 1, 1)
PAGE_SIZE, MAX_PAGE_SIZE = 50, 100


class BadFilter(ValueError):
    """A filter value that cannot be used; carries the field at fault."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field, self.message = field, message


def parse(args, *, with_limit=False):
    """{actor, action, target, first_day, last_day, cursor, limit} from request args; raise BadFilter."""
    today = clock.utcnow().date()
    last_day = _day(args, "to", today)
    first_day = _day(args, "from", max(last_day - timedelta(days=DEFAULT_DAYS), EARLIEST))
    if first_day > last_day:
        raise BadFilter("from", "from must be on or before to.")
    action = _text(args, "action", audit.MAX_ACTION)
    if action is not None and not ACTION_RE.fullmatch(action):
        raise BadFilter("action", "action is an action name or its start, such as signin. or user.role.")
    return {
        "actor": _text(args, "actor", audit.MAX_ACTOR),
        "action": action,
        "target": _text(args, "target", audit.MAX_TARGET),
        "first_day": first_day,
        "last_day": last_day,
        "cursor": args.get("cursor") or None,
        "limit": _limit(args) if with_limit else PAGE_SIZE,
    }


def _day(args, name, default):
    value = (args.get(name) or "").strip()
    if not value:
        return default
    try:
        day = date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        day = None
    if day is None or not EARLIEST <= day <= date(9998, 12, 31):
        raise BadFilter(name, f"{name} must be a day written as YYYY-MM-DD, from {EARLIEST.isoformat()}.")
    return day


def _text(args, name, limit):
    value = (args.get(name) or "").strip()
    if len(value) > limit:
        raise BadFilter(name, f"{name} can be at most {limit} characters long.")
    return value or None


def _limit(args):
    value = args.get("limit")
    if value is None or value == "":
        return PAGE_SIZE
    limit = whole_numbers.parse(value, 4)
    if limit is None or not 1 <= limit <= MAX_PAGE_SIZE:
        raise BadFilter("limit", f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}.")
    return limit
