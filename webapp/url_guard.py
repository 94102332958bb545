"""The destination URL rule: parse and normalise a URL, and refuse one that would loop back to a short link.

A loop can hide behind any spelling of an address (127.1, 0x7f000001, ::ffff:127.0.0.1, *.localhost),
so hosts are compared in one canonical spelling.
"""
import ipaddress
import re
from urllib.parse import quote, urlsplit, urlunsplit

from webapp.exceptions import InvalidUrl

URL_MAX = 2048

_HOST_RE = re.compile(r"[A-Za-z0-9_.-]+")
_IPV6_RE = re.compile(r"[0-9A-Fa-f:.]+")
# Any whitespace or control character, including Unicode ones (U+2028, NBSP...).
# (Link titles use it too, with a wider check by Unicode category: see link_rules.check_title.)
UNSAFE_CHARS_RE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060\ufeff]")
# A "%" that does not start a valid escape would make the Location header invalid.
_STRAY_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Characters that may stay as they are in a path, query or fragment (RFC 3986).
_SAFE_PATH = "/:@!$&'()*+,;=%-._~"
_SAFE_QUERY = _SAFE_PATH + "?"
_DEFAULT_PORTS = {"http": 80, "https": 443}


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
    if UNSAFE_CHARS_RE.search(url):
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
    return frozenset(canonical_host(entry) for entry in entries)


def canonical_host(entry):
    """The host of a host name or URL in the one spelling compared (lowercase punycode, no trailing
    dot, an IP address in its compressed form); raise InvalidUrl when it has none. (The blocklist too.)"""
    entry = entry.strip()
    if "//" not in entry and entry.count(":") > 1 and not entry.startswith("["):
        entry = f"[{entry}]"  # a bare IPv6 address; unbracketed, its first group would read as a host and port
    try:
        name = urlsplit(entry if "//" in entry else f"//{entry}").hostname
    except ValueError:
        name = None
    if not name:
        raise InvalidUrl(f"{entry!r} is not a host name or URL.")
    return _canonical_host(_ascii_host(name))


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
