"""The link rules: ids, slugs, titles and expiry (the destination rule is webapp/url_guard.py). Pure functions, no I/O."""
import re
import secrets
import string
import unicodedata
from datetime import date, datetime, time, timedelta, timezone

from webapp import clock
from webapp.exceptions import InvalidExpiry, InvalidNote, InvalidSlug, InvalidTags, InvalidTitle
from webapp.url_guard import UNSAFE_CHARS_RE

ID_ALPHABET = string.ascii_letters + string.digits
SLUG_MIN, SLUG_MAX = 3, 64
# Any stored id (random or custom) is at most this long, so an id in a path that is longer, or
# uses other characters, names no link: the store answers "not found" without asking DynamoDB
# (whose keys stop at 2,048 bytes). The redirect side stops at the same length.
ID_MAX = SLUG_MAX
TITLE_MAX = 200
# Tags are labels to filter by, not prose: a few short words each.
TAGS_MAX, TAG_MAX = 10, 32
NOTE_MAX = 1000

# Paths the admin app or the redirect side may use, compared case-insensitively
# because people read them case-insensitively.
RESERVED_SLUGS = frozenset(
    {
        "about", "account", "admin", "api", "assets", "auth", "dashboard", "export", "favicon.ico",
        "health", "healthz", "help", "import", "links", "login", "logout", "new", "robots.txt",
        "settings", "shorten", "signin", "signout", "sitemap.xml", "static", "stats",
        "status", "well-known", "www",
    }
)

_SLUG_RE = re.compile(r"[A-Za-z0-9_-]+")

# Passed as the expiry when the client gave none (so the default applies);
# None means "never expires".
MISSING = object()


def new_id(length=7):
    """A random base62 id that is never a reserved word."""
    while True:
        candidate = "".join(secrets.choice(ID_ALPHABET) for _ in range(length))
        if candidate.lower() not in RESERVED_SLUGS:
            return candidate


def is_short_id(value):
    """True when the value could be a stored link id: 1 to ID_MAX of A-Z a-z 0-9 - _."""
    return isinstance(value, str) and len(value) <= ID_MAX and bool(_SLUG_RE.fullmatch(value))


def optional_slug(value):
    """The custom slug of an API request: None (absent, null or "") means a random id; else check_slug.

    Only text or null is accepted: false, 0, [] and {} are refused rather than read as "no slug".
    """
    if value is None or value == "":
        return None
    return check_slug(value)


def check_slug(slug):
    """Return the custom slug unchanged, or raise InvalidSlug saying what is wrong."""
    if not isinstance(slug, str):
        raise InvalidSlug("The custom slug must be text.")
    if not SLUG_MIN <= len(slug) <= SLUG_MAX:
        raise InvalidSlug(f"The custom slug must be {SLUG_MIN} to {SLUG_MAX} characters long.")
    if not _SLUG_RE.fullmatch(slug):
        raise InvalidSlug("The custom slug may only use letters A-Z and a-z, digits, '-' and '_'.")
    if slug.lower() in RESERVED_SLUGS:
        raise InvalidSlug(f"'{slug}' is reserved. Choose another custom slug.")
    return slug


def check_title(title):
    """Return the title stripped (None when empty), or raise InvalidTitle."""
    if title is None:
        return None
    if not isinstance(title, str):
        raise InvalidTitle("The title must be text.")
    title = title.strip()
    if len(title) > TITLE_MAX:
        raise InvalidTitle(f"The title can be at most {TITLE_MAX} characters long.")
    if any(_is_invisible(char) for char in title):
        raise InvalidTitle(
            "The title cannot contain line breaks, tabs or control characters, including invisible ones "
            "(bidi controls, zero-width characters, soft hyphens)."
        )
    return title or None


def check_tags(tags):
    """Return the tags as a sorted list of distinct lowercase strings ([] for none), or raise InvalidTags.

    Accepts a list of strings (the API) or one comma-separated string (the form). Lowercase, so that
    "Launch" and "launch" are one tag to filter by; a tag is letters, digits, spaces, '-', '_' and '.'.
    """
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise InvalidTags("tags must be a list of text labels.")
    cleaned = sorted({" ".join(tag.split()).lower() for tag in tags} - {""})
    if len(cleaned) > TAGS_MAX:
        raise InvalidTags(f"A link can have at most {TAGS_MAX} tags.")
    for tag in cleaned:
        if len(tag) > TAG_MAX:
            raise InvalidTags(f"Each tag can be at most {TAG_MAX} characters long.")
        if not all(char.isalnum() or char in " -_." for char in tag):
            raise InvalidTags(f"The tag '{tag}' may only use letters, digits, spaces, '-', '_' and '.'.")
    return cleaned


def check_note(note):
    """Return the note stripped (None when empty), or raise InvalidNote. Line breaks are allowed."""
    if note is None:
        return None
    if not isinstance(note, str):
        raise InvalidNote("The note must be text.")
    note = note.replace("\r\n", "\n").strip()
    if len(note) > NOTE_MAX:
        raise InvalidNote(f"The note can be at most {NOTE_MAX} characters long.")
    if any(char != "\n" and _is_invisible(char) for char in note):
        raise InvalidNote("The note cannot contain tabs or control characters, including invisible ones.")
    return note or None


def _is_invisible(char):
    """True for a character a title must not hold: any control (Cc) or format (Cf) character,
    such as the bidi controls and isolates that can reorder what staff read, and any whitespace but
    the plain space (line and paragraph separators, NBSP, tabs)."""
    if char == " ":
        return False
    return unicodedata.category(char) in ("Cc", "Cf") or bool(UNSAFE_CHARS_RE.match(char))


def default_expiry(now=None, days=30):
    """The expiry timestamp for a link created now with the default lifetime."""
    return clock.format_timestamp((now or clock.utcnow()) + timedelta(days=days))


def expiry_from_date(day, now=None):
    """The expiry timestamp for "expires on this date": the end of that day, UTC."""
    if not isinstance(day, date):
        raise InvalidExpiry("Choose the expiry date.")
    moment = datetime.combine(day, time(23, 59, 59), tzinfo=timezone.utc)
    return _future(moment, now)


def parse_date(value):
    """The date of a date-only ISO 8601 string (2030-01-01, 20300101, 2030-W01-2...), or None."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_expiry(value, now=None, default_days=30):
    """The expiry for an API value: missing means default, None means never, else ISO 8601 text."""
    if value is MISSING:
        return default_expiry(now, default_days)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidExpiry("expires_at must be an ISO 8601 date or date-time string, or null for never.")
    value = value.strip()
    day = parse_date(value)
    if day is not None:
        # A date without a time, in any spelling ISO 8601 allows, means the end of that day,
        # like the form's date picker: "20300101" and "2030-01-01" are the same instant.
        return expiry_from_date(day, now)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidExpiry("expires_at is not a valid ISO 8601 date or date-time.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # documented: naive times are UTC
    return _future(moment, now)


def _future(moment, now):
    """Format the moment, refusing one that is not in the future."""
    try:
        moment = moment.astimezone(timezone.utc).replace(microsecond=0)
    except OverflowError:
        raise InvalidExpiry("The expiry date is out of range.") from None
    if moment <= (now or clock.utcnow()):
        raise InvalidExpiry("The expiry must be in the future.")
    return clock.format_timestamp(moment)


def link_status(link, now=None):
    """'disabled', 'expired' or 'active' for a stored link."""
    if not link.get("is_active", True):
        return "disabled"
    expires_at = link.get("expires_at")
    if expires_at and expires_at <= clock.format_timestamp(now or clock.utcnow()):
        return "expired"
    return "active"


def short_url(short_base_url, short_id):
    """The public short link for an id."""
    return f"{short_base_url.rstrip('/')}/{short_id}"
