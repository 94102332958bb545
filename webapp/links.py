"""The link rules: ids, slugs, destinations, titles and expiry. Pure functions, no I/O."""
import re
import secrets
import string
import unicodedata
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import quote, urlsplit, urlunsplit

from webapp.exceptions import InvalidExpiry, InvalidSlug, InvalidTitle, InvalidUrl

# The redirect compares expires_at with "now" as strings, so every timestamp
# must have exactly this fixed-width shape.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

ID_ALPHABET = string.ascii_letters + string.digits
SLUG_MIN, SLUG_MAX = 3, 64
URL_MAX = 2048
TITLE_MAX = 200

# Paths the admin app or the redirect side may use, compared case-insensitively
# because people read them case-insensitively.
RESERVED_SLUGS = frozenset(
    {
        "about", "account", "admin", "api", "assets", "auth", "dashboard", "favicon.ico",
        "health", "healthz", "help", "links", "login", "logout", "new", "robots.txt",
        "settings", "shorten", "signin", "signout", "sitemap.xml", "static", "stats",
        "status", "well-known", "www",
    }
)

_SLUG_RE = re.compile(r"[A-Za-z0-9_-]+")
_HOST_RE = re.compile(r"[A-Za-z0-9_.-]+")
_IPV6_RE = re.compile(r"[0-9A-Fa-f:.]+")
# Any whitespace or control character, including Unicode ones (U+2028, NBSP...).
_UNSAFE_CHARS_RE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060\ufeff]")
# A "%" that does not start a valid escape would make the Location header invalid.
_STRAY_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Characters that may stay as they are in a path, query or fragment (RFC 3986).
_SAFE_PATH = "/:@!$&'()*+,;=%-._~"
_SAFE_QUERY = _SAFE_PATH + "?"
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Passed as the expiry when the client gave none (so the default applies);
# None means "never expires".
MISSING = object()


def utcnow():
    """The current time in UTC, truncated to whole seconds."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def format_timestamp(moment):
    """A UTC timestamp string in the fixed-width format the redirect relies on."""
    return moment.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(value):
    """The aware datetime for a stored timestamp string."""
    return datetime.strptime(value, TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)


def new_id(length=7):
    """A random base62 id that is never a reserved word."""
    while True:
        candidate = "".join(secrets.choice(ID_ALPHABET) for _ in range(length))
        if candidate.lower() not in RESERVED_SLUGS:
            return candidate


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
    if _UNSAFE_CHARS_RE.search(title.replace(" ", "")):
        raise InvalidTitle("The title cannot contain line breaks, tabs or control characters.")
    # Every control (Cc) and format (Cf) character, not only the ones listed above: bidi isolates,
    # soft hyphens, tag characters and invisible operators can disguise a title as another.
    if any(unicodedata.category(char) in ("Cc", "Cf") for char in title):
        raise InvalidTitle("The title cannot contain line breaks, tabs or control characters.")
    return title or None


def normalise_url(url, short_base_url=None):
    """Return the destination as valid ASCII (punycode host, percent-encoded rest), or raise InvalidUrl."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidUrl("Enter the destination URL.")
    url = url.strip()
    if len(url) > URL_MAX:
        raise InvalidUrl(f"The destination URL can be at most {URL_MAX} characters long.")
    # Checked before urlsplit, which silently drops tabs and newlines.
    if _UNSAFE_CHARS_RE.search(url):
        raise InvalidUrl("The destination URL cannot contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidUrl("The destination URL is malformed (check the host and port).") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidUrl("Only http and https links can be shortened.")
    if not parts.hostname:
        raise InvalidUrl("The destination URL needs a host name, like https://example.com/.")
    if parts.username is not None or parts.password is not None:
        # "https://trusted.example@evil.example/" is a classic phishing disguise.
        raise InvalidUrl("The destination URL cannot contain a user name or password.")
    host = _ascii_host(parts.hostname)
    if short_base_url and _is_same_site(scheme, host, port, short_base_url):
        raise InvalidUrl("The destination cannot be a short link itself: it would redirect in a loop.")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    normalised = urlunsplit(
        (scheme, netloc, _encode(parts.path, _SAFE_PATH), _encode(parts.query, _SAFE_QUERY),
         _encode(parts.fragment, _SAFE_QUERY))
    )
    if len(normalised) > URL_MAX:
        raise InvalidUrl(f"The destination URL can be at most {URL_MAX} characters long once encoded.")
    return normalised


def _ascii_host(hostname):
    """The host in lowercase ASCII, converting internationalised names to punycode."""
    host = hostname.rstrip(".").lower()
    if ":" in host:
        if not _IPV6_RE.fullmatch(host):
            raise InvalidUrl("The destination URL has an invalid IPv6 address.")
        return host
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidUrl("The destination URL has an invalid host name.") from None
    if not host or not _HOST_RE.fullmatch(host):
        raise InvalidUrl("The destination URL has an invalid host name.")
    return host


def _is_same_site(scheme, host, port, short_base_url):
    """True when scheme/host/port would reach the short-link domain."""
    base = urlsplit(short_base_url)
    if not base.hostname or _ascii_host(base.hostname) != host:
        return False
    base_port = base.port or _DEFAULT_PORTS.get(base.scheme.lower())
    port = port or _DEFAULT_PORTS[scheme]
    # http://sho.rt and https://sho.rt are the same site; another explicit port is not.
    both_default = port in _DEFAULT_PORTS.values() and base_port in _DEFAULT_PORTS.values()
    return port == base_port or both_default


def _encode(component, safe):
    """Percent-encode non-ASCII and unsafe characters, keeping existing escapes."""
    return quote(_STRAY_PERCENT_RE.sub("%25", component), safe=safe)


def default_expiry(now=None, days=30):
    """The expiry timestamp for a link created now with the default lifetime."""
    return format_timestamp((now or utcnow()) + timedelta(days=days))


def expiry_from_date(day, now=None):
    """The expiry timestamp for "expires on this date": the end of that day, UTC."""
    if not isinstance(day, date):
        raise InvalidExpiry("Choose the expiry date.")
    moment = datetime.combine(day, time(23, 59, 59), tzinfo=timezone.utc)
    return _future(moment, now)


def parse_expiry(value, now=None, default_days=30):
    """The expiry for an API value: missing means default, None means never, else ISO 8601 text."""
    if value is MISSING:
        return default_expiry(now, default_days)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidExpiry("expires_at must be an ISO 8601 date or date-time string, or null for never.")
    value = value.strip()
    try:
        # A bare date (YYYY-MM-DD) means the end of that day, like the form's date picker.
        day = date.fromisoformat(value) if len(value) == 10 else None
        moment = None if day else datetime.fromisoformat(value)
    except ValueError:
        raise InvalidExpiry("expires_at is not a valid ISO 8601 date or date-time.") from None
    if day:
        return expiry_from_date(day, now)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # documented: naive times are UTC
    return _future(moment, now)


def _future(moment, now):
    """Format the moment, refusing one that is not in the future."""
    try:
        moment = moment.astimezone(timezone.utc).replace(microsecond=0)
    except OverflowError:
        raise InvalidExpiry("The expiry date is out of range.") from None
    if moment <= (now or utcnow()):
        raise InvalidExpiry("The expiry must be in the future.")
    return format_timestamp(moment)


def link_status(link, now=None):
    """'disabled', 'expired' or 'active' for a stored link."""
    if not link.get("is_active", True):
        return "disabled"
    expires_at = link.get("expires_at")
    if expires_at and expires_at <= format_timestamp(now or utcnow()):
        return "expired"
    return "active"


def short_url(short_base_url, short_id):
    """The public short link for an id."""
    return f"{short_base_url.rstrip('/')}/{short_id}"
