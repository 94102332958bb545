"""Abuse controls on link creation: the destination blocklist, the reputation hook and the creation limits.

Every path that stores a destination (create today; edit and import later) calls check_destination(),
and every path that creates links calls admit_creation() (the limit, then the destination) just before it writes.

Blocklist rules, checked against the destination as url_guard.normalise_url returns it:
- a domain rule ("example.com") blocks that host and every subdomain of it, in any spelling the URL
  rules accept (case, a trailing dot, Unicode or punycode, an IP address written as 127.1 or 0x7f000001);
- a pattern rule is a shell-style glob ("https://example.net/phish/*": * any run of characters,
  ? one character, [abc] one of them), matched case-insensitively against the whole normalised URL
  and against it as a browser asks for it (no default port, "/" for no path, dot segments resolved),
  each also with its %-escapes decoded. Globs, never regular expressions: an admin's typo cannot
  make every creation slow.
The list is read from the table on every check (no cache), so a rule applies at once in every container.
"""
import json
import threading
import urllib.request
from fnmatch import fnmatchcase
from http.client import HTTPException
from urllib.parse import unquote, urlsplit, urlunsplit

from flask import current_app

from webapp import audit, url_guard
from webapp.exceptions import InvalidUrl
from webapp.store import get_store

DOMAIN, PATTERN = "domain", "pattern"
KINDS = (DOMAIN, PATTERN)
PATTERN_MAX = 300
# A pattern that matches any of these would block nearly everything: "*", "http*", "http*://[!ew]*",
# "https://*[!/]". Varied on purpose: hosts from several letters, with and without a path, a query,
# a final slash; a pattern that names a site or a path matches none of them.
_ORDINARY_URLS = ("https://example.com/", "http://www.example.org/a/b.html?q=1#top",
                  "https://docs.python.org/3/library/fnmatch.html", "http://news.ycombinator.com/item?id=1",
                  "https://mail.example.net", "https://go.dev/doc/")
ALLOW, REFUSE = "allow", "refuse"  # what a failure of the reputation service does
_REPLY_MAX = 16 * 1024
_REASON_MAX = 200
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class DestinationRefused(Exception):
    """The destination may not be stored: a blocklist rule, the reputation service, or (when failures
    refuse) no answer from it. message is written for people; rule names what refused it."""

    def __init__(self, message, rule, status=422):
        super().__init__(message)
        self.message, self.rule, self.status = message, rule, status


class CreationLimited(Exception):
    """The user or the token has created its limit of links in this window; nothing was written."""

    def __init__(self, message, retry_after):
        super().__init__(message)
        self.message, self.retry_after = message, retry_after


def check_rule(kind, value):
    """Return the rule's value in the one form stored and compared; raise ValueError with a message for people."""
    if kind not in KINDS:
        raise ValueError(f"Choose one of: {', '.join(KINDS)}.")
    if not isinstance(value, str) or not value.strip():
        raise ValueError("Enter a domain or a pattern.")
    value = value.strip()
    if len(value) > PATTERN_MAX:
        raise ValueError(f"Use at most {PATTERN_MAX} characters.")
    if url_guard.UNSAFE_CHARS_RE.search(value):
        raise ValueError("A rule cannot contain spaces or control characters.")
    if kind == DOMAIN:
        if "*" in value or "?" in value:
            raise ValueError("Enter a plain domain like example.com: it blocks its subdomains too.")
        try:
            host = url_guard.canonical_host(value)
        except InvalidUrl:
            host = None
        # One label alone ("com") is a whole top-level domain: nearly every destination, as "*" is for patterns.
        # (An IP address in any spelling is canonical by now, so it has its dots or colons.)
        if host is None or not ("." in host or ":" in host):
            raise ValueError("Enter a domain like example.com (it blocks its subdomains too) or an IP address.")
        return host
    if not value.isascii():
        raise ValueError("Write the pattern in ASCII, with the host in punycode (xn--...), as destinations are stored.")
    value = value.lower()
    if any(fnmatchcase(url, value) for url in _ORDINARY_URLS):
        raise ValueError(f"This pattern would block ordinary destinations such as {_ORDINARY_URLS[0]}: "
                         "make it name a site or a path.")
    return value


def describe(rule):
    """A rule as people read it: 'domain example.com' or 'pattern https://example.net/*'."""
    return f"{rule['kind']} {rule['value']}"


def matching_rule(url, rules):
    """The first rule that blocks the destination url, or None."""
    host = url_guard.canonical_host(url)
    requested = _as_requested(url)
    spellings = {spelling.lower() for spelling in (url, unquote(url), requested, unquote(requested))}
    for rule in rules:
        if rule["kind"] == DOMAIN:
            if host == rule["value"] or host.endswith("." + rule["value"]):
                return rule
        elif any(fnmatchcase(spelling, rule["value"]) for spelling in spellings):
            return rule
    return None


_DEFAULT_PORTS = {"http": 80, "https": 443}
_DOT, _DOT_DOT = {".", "%2e"}, {"..", ".%2e", "%2e.", "%2e%2e"}


def _as_requested(url):
    """The url as a browser asks for it, so that a pattern cannot be dodged by another spelling of it:
    without the scheme's default port, "/" for an empty path, dot segments ("/x/../", "%2e") resolved."""
    parts = urlsplit(url)
    netloc = parts.netloc.removesuffix(f":{_DEFAULT_PORTS[parts.scheme]}")
    return urlunsplit((parts.scheme, netloc, _without_dot_segments(parts.path), parts.query, parts.fragment))


def _without_dot_segments(path):
    """An absolute path with "." and ".." segments resolved as browsers do (WHATWG URL; RFC 3986 5.2.4)."""
    kept, segments = [], path.split("/")[1:]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment.lower() in _DOT_DOT:
            if kept:
                kept.pop()
        elif segment.lower() not in _DOT:
            kept.append(segment)
            continue
        if last:
            kept.append("")  # "/a/.." and "/a/." end in a slash
    return "/" + "/".join(kept)


def check_destination(url, rules=None, **who):
    """Refuse (DestinationRefused, recorded in the audit log) a normalised destination that the
    blocklist or the reputation service blocks; return None when it may be stored.

    rules: the blocklist as already read (an import reads it once per chunk of rows); who: the audit
    record's actor and via, for a caller outside a request (an import running in the background).
    """
    try:
        rule = matching_rule(url, get_store().blocklist.list() if rules is None else rules)
        if rule is not None:
            raise DestinationRefused(f"This destination is blocked by the rule {describe(rule)}.", describe(rule))
        _ask_reputation(url)
    except DestinationRefused as err:
        audit.record("link.blocked", outcome="refused", url=url, rule=err.rule, **who)
        raise


def admit_creation(url, username, token_id=None):
    """Reserve a creation (CreationLimited past a limit), then check the destination (DestinationRefused,
    which gives the reservation back); return the reservation's window, for release_creation.

    The limit first: a user past it must not make the app ask the reputation service (a paid quota,
    or a rate limit at the service) as often as they like; a refused destination still counts nothing.
    """
    start = reserve_creation(username, token_id)
    try:
        check_destination(url)
    except DestinationRefused:
        release_creation(username, token_id, start)
        raise
    return start


def reserve_creation(username, token_id=None):
    """Count one link creation for the user (and the API token); raise CreationLimited past a limit.

    Called after the input checks (admit_creation: before the destination checks, which give it back):
    refused input does not use up the limit.
    Return the reservation's window, for release_creation.
    """
    config, counters = current_app.config, get_store().link_creations
    window = config["LINK_CREATE_WINDOW_SECONDS"]
    start = counters.window_start(window)
    reserved = []
    for subject, limit, whose in _subjects(username, token_id):
        if not counters.reserve(subject, limit, window, start):
            for done in reserved:  # the user's count is given back when the token's limit refuses
                counters.release(done, window, start)
            retry_after = counters.retry_after(window)
            audit.record("link.limited", outcome="refused", limit=whose, retry_after=retry_after)
            minutes = -(-retry_after // 60)
            raise CreationLimited(
                f"{_WHO[whose]} reached the limit of {limit} new links per {_period(window)}. "
                f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
                retry_after,
            )
        reserved.append(subject)
    return start


def release_creation(username, token_id=None, start=None):
    """Give back a reservation whose create wrote nothing (a taken slug), to the window reserve_creation returned."""
    counters, window = get_store().link_creations, current_app.config["LINK_CREATE_WINDOW_SECONDS"]
    for subject, _limit, _whose in _subjects(username, token_id):
        counters.release(subject, window, start)


_WHO = {"user": "You have", "token": "This API token has"}


def _subjects(username, token_id):
    """(counter subject, limit, whose) of each limit a creation counts against."""
    config = current_app.config
    subjects = [(f"user#{username}", config["LINK_CREATE_LIMIT"], "user")]
    if token_id:
        subjects.append((f"token#{token_id}", config["LINK_CREATE_TOKEN_LIMIT"], "token"))
    return subjects


def _period(seconds):
    """A window's length in words: "hour", "15 minutes"."""
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"


def _ask_reputation(url):
    """POST {"url": url} to the reputation service, when one is set; raise DestinationRefused on "block".

    The service answers {"verdict": "allow"|"block", "reason": "..."}. A failure (no answer within the
    timeout, an HTTP error, a redirect, an answer that is not such an object) is logged, and then
    allows or refuses as SHORTENER_REPUTATION_ON_FAILURE says.
    """
    config = current_app.config
    endpoint = config["REPUTATION_URL"]
    if not endpoint:
        return
    request = urllib.request.Request(
        endpoint,
        data=json.dumps({"url": url}).encode("utf-8"),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    try:
        raw = _post(request, config["REPUTATION_TIMEOUT_SECONDS"])
        answer = json.loads(raw) if len(raw) <= _REPLY_MAX else None
        verdict = answer.get("verdict") if isinstance(answer, dict) else None
        if verdict not in (ALLOW, "block"):
            raise ValueError("the answer has no verdict of allow or block")
    # URLError, HTTPError and timeouts are OSErrors; HTTPException a broken response; ValueError bad JSON.
    except (OSError, HTTPException, ValueError) as err:
        current_app.logger.warning("reputation service failed (%s): %s", config["REPUTATION_ON_FAILURE"],
                                   json.dumps({"error": type(err).__name__, "detail": str(err)[:200], "url": url}))
        if config["REPUTATION_ON_FAILURE"] == REFUSE:
            raise DestinationRefused("The destination could not be checked right now. Try again in a minute.",
                                     "reputation service unavailable", status=503) from None
        return
    if verdict == "block":
        reason = answer.get("reason")
        reason = url_guard.UNSAFE_CHARS_RE.sub(" ", reason)[:_REASON_MAX].strip() if isinstance(reason, str) else ""
        raise DestinationRefused(
            "This destination was refused by the reputation service" + (f": {reason}" if reason else "."),
            f"reputation service: {reason or 'block'}",
        )


def _post(request, timeout):
    """The service's answer (at most _REPLY_MAX + 1 bytes), within timeout seconds in all; raise OSError.

    A socket's timeout bounds each read only: a service that sends its answer a byte at a time would
    hold the create (and the Lambda) as long as it liked. So the call runs in a thread of its own,
    waited for at most timeout; a thread given up on ends at its socket's next timeout or the end of the answer.
    """
    outcome = {}

    def call():
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                outcome["raw"] = response.read(_REPLY_MAX + 1)
        except (OSError, HTTPException, ValueError) as err:  # handed to the caller, as if raised there
            outcome["error"] = err

    worker = threading.Thread(target=call, name="reputation", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"no whole answer within {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["raw"]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect from the reputation service is a failure, never a second POST somewhere else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def init_app(app):
    """Refuse to start with abuse settings that cannot work (a limit of 0, a plain-http reputation service)."""
    config = app.config
    for name in ("LINK_CREATE_LIMIT", "LINK_CREATE_TOKEN_LIMIT", "LINK_CREATE_WINDOW_SECONDS"):
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RuntimeError(f"SHORTENER_{name} must be a whole number of at least 1, not {value!r}.")
    timeout = config["REPUTATION_TIMEOUT_SECONDS"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 30:
        raise RuntimeError(f"SHORTENER_REPUTATION_TIMEOUT_SECONDS must be a number of seconds from 0 to 30, not {timeout!r}.")
    if config["REPUTATION_ON_FAILURE"] not in (ALLOW, REFUSE):
        raise RuntimeError(f"SHORTENER_REPUTATION_ON_FAILURE must be {ALLOW} or {REFUSE}.")
    endpoint = config["REPUTATION_URL"]
    if endpoint:
        parts = urlsplit(endpoint)
        # Plain http only to this machine: a local stand-in for the service (the tests, `make run`).
        if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)):
            raise RuntimeError("SHORTENER_REPUTATION_URL must be an https:// URL (http:// only on 127.0.0.1).")
