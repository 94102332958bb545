"""The link rules: ids, slugs, destinations, titles and expiry. Pure functions, no I/O."""
import ipaddress
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
# Any stored id (random or custom) is at most this long, so an id in a path that is longer, or
# uses other characters, names no link: the store answers "not found" without asking DynamoDB
# (whose keys stop at 2,048 bytes). The redirect side stops at the same length.
ID_MAX = SLUG_MAX
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
# (Titles are checked more widely, by Unicode category: see check_title.)
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


def _is_invisible(char):
    """True for a character a title must not hold: any control (Cc) or format (Cf) character,
    such as the bidi controls and isolates that can reorder what staff read, and any whitespace but
    the plain space (line and paragraph separators, NBSP, tabs)."""
    if char == " ":
        return False
    return unicodedata.category(char) in ("Cc", "Cf") or bool(_UNSAFE_CHARS_RE.match(char))


def normalise_url(url, short_base_url=None, extra_loop_hosts=()):
    """Return the destination as valid ASCII (punycode host, percent-encoded rest), or raise InvalidUrl.

    A destination that would reach the short domain again is refused (it would redirect in a loop):
    the short domain itself, in any spelling of its address, every loopback name and address when
    the short domain is on loopback (the local stack), and any host in extra_loop_hosts (on AWS, the
    short-link API's own execute-api host name).
    """
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
    if _loops(scheme, host, port, short_base_url, extra_loop_hosts):
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


def _loops(scheme, host, port, short_base_url, extra_loop_hosts):
    """True when scheme/host/port would reach the short-link domain (or another host of it)."""
    canonical = _canonical_host(host)
    if canonical in loop_hosts(extra_loop_hosts):
        return True  # another name of the short-link API: refused on any port
    if not short_base_url:
        return False
    base = urlsplit(short_base_url)
    if not base.hostname:
        return False
    base_host = _canonical_host(_ascii_host(base.hostname))
    same_host = canonical == base_host or (_is_loopback(base_host) and _is_loopback(canonical))
    if not same_host:
        return False
    base_port = base.port or _DEFAULT_PORTS.get(base.scheme.lower())
    port = port or _DEFAULT_PORTS[scheme]
    # http://sho.rt and https://sho.rt are the same site; another explicit port is not.
    both_default = port in _DEFAULT_PORTS.values() and base_port in _DEFAULT_PORTS.values()
    return port == base_port or both_default


def loop_hosts(entries):
    """The hosts of the loop-host setting in the one spelling compared, each given as a host name or
    a URL (https://abc123.execute-api.us-east-1.amazonaws.com/); raise InvalidUrl for a bad entry."""
    hosts = set()
    for entry in entries:
        entry = entry.strip()
        try:
            name = urlsplit(entry if "//" in entry else f"//{entry}").hostname
        except ValueError:
            name = None
        if not name:
            raise InvalidUrl(f"{entry!r} is not a host name or URL.")
        hosts.add(_canonical_host(_ascii_host(name)))
    return frozenset(hosts)


def _canonical_host(host):
    """The host as one spelling: an IP address in its compressed form (IPv4-mapped IPv6 as IPv4,
    and IPv4 from any spelling a browser or inet_aton accepts: 127.1, 2130706433, 0x7f000001,
    0177.0.0.1), else the lowercase ASCII name."""
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host.partition("%")[0])
        except ValueError:
            return host
        return str(address.ipv4_mapped or address)
    address = _inet_aton(host)
    return str(address) if address is not None else host


def _inet_aton(host):
    """The IPv4 address of a dotted host in inet_aton's (and the WHATWG URL standard's) forms, or None.

    One to four parts, each decimal, octal (leading 0) or hex (0x); the last part fills the
    remaining bytes: 127.1 is 127.0.0.1 and 2130706433 is 127.0.0.1.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        number = _ipv4_number(part)
        if number is None:
            return None
        numbers.append(number)
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_number(part):
    """One part of an IPv4 host in decimal, octal or hex, or None when it is not a number."""
    try:
        if part[:2].lower() == "0x":
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8)
        return int(part, 10) if part.isascii() and part.isdigit() else None
    except ValueError:
        return None


def _is_loopback(canonical_host):
    """True for a host that always means this machine: localhost (and *.localhost, RFC 6761),
    127.0.0.0/8, ::1, and the unspecified address (0.0.0.0 or ::, which connects locally)."""
    if canonical_host == "localhost" or canonical_host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(canonical_host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


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
