"""The hot path: GET /{short_id} -> 302, served from an in-container cache and one GetItem.

The visitor's query string is merged into the destination's (as Shlink does), unless the link
turns that off with forward_query.

Only the standard library and botocore are imported (a bare client, not boto3's
session or resource layer): everything here is paid again on every cold start. Nothing is
ever written to DynamoDB; each click prints one short JSON line, which a log subscription
puts on the click stream for the aggregator.

Unique visitors without an identifier: a click line carries "v", a keyed hash of the visitor's
address and user agent with the salt of the UTC day (aggregator/salts.py makes and deletes the
salts; this function only reads them, once per container and day). The address and the user agent
are hashed in memory and never printed; once the day's salt is deleted the hash cannot be
recomputed, and different days' hashes cannot be linked.
"""
import hashlib
import hmac
import ipaddress
import json
import os
import re
import sys
import time
from urllib.parse import quote, unquote_plus, urlencode, urlsplit

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

TABLE_NAME = os.environ["TABLE_NAME"]
LINK_CACHE_SECONDS = float(os.environ.get("LINK_CACHE_SECONDS", "10"))
# A missing id is cached briefly: long enough to absorb a burst of typos or scanners,
# short enough that a just-created slug is not hidden for long.
MISSING_CACHE_SECONDS = min(2.0, LINK_CACHE_SECONDS)
CACHE_MAX_ENTRIES = 10_000
# Where a visitor to the bare short domain ("/") is sent: the admin app. Unset: 404.
ROOT_REDIRECT_URL = os.environ.get("ROOT_REDIRECT_URL")
USER_AGENT_MAX = 256
# The link item's sort key and the attributes read from it (webapp/store/links.py writes them).
LINK_SK = "link"
LINK_ATTRIBUTES = ("url", "is_active", "expires_at", "forward_query")
# The visitor's query string is forwarded up to this size (UTF-8 bytes), and the merged Location up
# to this length: beyond either, 414. Browsers and servers commonly accept about 8 KB of URL.
QUERY_MAX_BYTES = 2048
LOCATION_MAX_BYTES = 8192
# A raw control character (CR, LF, NUL, DEL, C1) in a query is refused with a 400: nothing a real
# browser sends, and never to be copied into a header. Escaped ones (%0D%0A) pass on still escaped.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# What a forwarded query keeps as is: RFC 3986's query characters, and "%" so that the visitor's
# escapes reach the destination untouched. Anything else (space, quotes, "#", "<", non-ASCII...) is
# percent-encoded as UTF-8, so the Location is always printable ASCII.
_QUERY_SAFE = "!$&'()*+,;=:@/?%"
# A "%" that starts no valid escape (%zz, a trailing %) is sent on as %25, a literal "%": the same
# bytes reach the destination, in a valid URL (webapp/url_guard.py treats destinations alike).
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
HOST_MAX = 253  # the longest DNS name
# Set only when a CloudFront front adds the header x-shortener-front with this value; then, and
# only then, its CloudFront-Viewer-Country and CloudFront-Viewer-Address headers are believed.
TRUSTED_FRONT_SECRET = os.environ.get("TRUSTED_FRONT_SECRET") or None
_COUNTRY = re.compile(r"[A-Z]{2}")
# /.well-known/security.txt (RFC 9116) on the short domain: comma-separated Contact URIs (mailto: or
# https:, checked by the template's AllowedPattern) and an optional Policy URL. No contact: 404.
SECURITY_TXT_PATH = "/.well-known/security.txt"
SECURITY_CONTACT = [c.strip() for c in os.environ.get("SECURITY_CONTACT", "").split(",") if c.strip()]
SECURITY_POLICY = os.environ.get("SECURITY_POLICY") or None
SECURITY_TXT_EXPIRES_SECONDS = 30 * 86400  # RFC 9116 asks for less than a year; as webapp/well_known.py

# The salts of the visitor hash (aggregator/salts.py writes them): item pk "salt#", sk the UTC day, in
# their own table (cloudformation.yaml SaltsTable). Unset (an older stack, a test that does not care
# about visitors): no salt is read and click lines carry no "v"; everything else works as before.
SALT_TABLE_NAME = os.environ.get("SALT_TABLE_NAME") or None
SALT_PK = "salt#"
# A missing salt, or a failed read, is tried again after this long (no "v" until then).
SALT_RETRY_SECONDS = 60
VISITOR_HASH_BYTES = 8  # 16 hex characters in the click line
ADDRESS_MAX = 45  # the longest textual IPv6 address (with an embedded IPv4 one)
SALT_MIN_BYTES, SALT_MAX_BYTES = 16, 64  # 64: blake2b's longest key

# Random ids are 7 base62 characters, custom slugs 3-64 of [A-Za-z0-9_-]. Anything else
# cannot exist, so it is answered without a DynamoDB call.
_VALID_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# A failed read prints one error line (_log_store_error). These DynamoDB codes, any HTTP 5xx, and connection
# failures and timeouts, pass with a retry or a moment (retryable); any other (AccessDenied,
# ResourceNotFound, ValidationException, UnrecognizedClient...) needs someone to fix something.
RETRYABLE_CODES = frozenset({
    "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable",
})
_RETRYABLE_EXCEPTIONS = (BotoConnectionError, HTTPClientError)
ERROR_CODE_MAX = 64
# The metric filters' dimension: the stack's dev and prod redirects count apart. Lambda sets it.
FUNCTION_NAME = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")

# Short timeouts and one retry: a stuck request should fall back to the stale cache or a
# 503 quickly rather than hold the visitor for botocore's default 60 seconds.
_client = botocore.session.get_session().create_client(
    "dynamodb",
    config=Config(
        connect_timeout=1,
        read_timeout=1,
        retries={"mode": "standard", "total_max_attempts": 2},  # the first attempt and one retry
    ),
)

# short_id -> (fresh_until, link or None). Entries stay past fresh_until so that a
# DynamoDB failure can still be answered from them (stale-if-error).
_cache = {}


class _Salt:
    """The day's salt, held in memory for the rest of its UTC day: one GetItem per container and day."""

    day = None  # the UTC day of `key`
    key = None  # bytes, or None: none found (yet) for `day`
    retry_at = 0.0  # no read before this time (after a miss, a failure, or a failed link read)


_salt = _Salt()


def lambda_handler(event, context):
    """Answer one HTTP API request (payload 2.0, or 1.0 as in the recipe's integration)."""
    method, path, headers, query = _parse_event(event)
    if path == "/" and ROOT_REDIRECT_URL:
        return {"statusCode": 302, "headers": {"Location": ROOT_REDIRECT_URL, "Cache-Control": "no-store"}, "body": ""}
    if path == SECURITY_TXT_PATH:
        return _security_txt(method, headers)
    short_id = path[1:] if path.startswith("/") else path
    now = time.time()
    status, location = resolve(short_id, now, query)
    # Only a followed, live link is a click: HEAD, 400, 404, 410, 414 and 503 print nothing.
    if status == 302 and method == "GET":
        _log_click(short_id, headers, _visitor_hash(event, headers, now))
    return _response(status, location, method, headers)


def resolve(short_id, now, query=""):
    """Return (status, location) for a short id and the visitor's query: 302, 400, 404, 410, 414 or 503.

    The query is looked at only for a live link that forwards it; None is one that cannot be read.
    """
    if not _VALID_ID.fullmatch(short_id):
        return 404, None
    try:
        link = _lookup(short_id, now)
    except _Unavailable:
        return 503, None
    if link is None:
        return 404, None
    if not link["active"]:
        return 410, None
    expires_at = link["expires_at"]
    # Timestamps are stored as fixed-width UTC strings, so string order is time order.
    if expires_at is not None and expires_at <= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)):
        return 410, None
    if query != "" and link["forward_query"]:
        return _forwarded(link["url"], query)
    return 302, link["url"]


def _forwarded(url, query):
    """(302, url with the query merged in), or (400 or 414, None) for a query that cannot go on."""
    if query is None:
        return 400, None
    try:
        size = len(query.encode())
    except UnicodeEncodeError:  # a lone surrogate: not text any browser sends
        return 400, None
    if size > QUERY_MAX_BYTES:
        return 414, None
    if _CONTROL.search(query):
        return 400, None
    location = merge_query(url, quote(_STRAY_PERCENT.sub("%25", query), safe=_QUERY_SAFE))
    # ASCII by now (the admin stores destinations encoded), so characters are bytes.
    if len(location) > LOCATION_MAX_BYTES:
        return 414, None
    return 302, location


def merge_query(url, query):
    """url with an encoded query merged into its own, as Shlink does: a name in both takes the query's values.

    The destination's other parameters keep their order, the query's follow, and the fragment
    stays last. Names are compared decoded (utm%5Fsource is utm_source); values pass as they are.
    """
    forwarded = [pair for pair in query.split("&") if pair]
    if not forwarded:
        return url
    rest, hash_mark, fragment = url.partition("#")
    base, _, own = rest.partition("?")
    names = {_name(pair) for pair in forwarded}
    kept = [pair for pair in own.split("&") if pair and _name(pair) not in names]
    return f"{base}?{'&'.join(kept + forwarded)}{hash_mark}{fragment}"


def _name(pair):
    return unquote_plus(pair.partition("=")[0])


class _Unavailable(Exception):
    """DynamoDB failed and no cached answer exists."""


def _lookup(short_id, now):
    cached = _cache.get(short_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    try:
        link = _get_link(short_id)
    except (ClientError, BotoCoreError) as error:
        _log_store_error(error)
        # The table is failing: this request does not also wait on a salt read (no "v" for a minute).
        _salt.retry_at = max(_salt.retry_at, now + SALT_RETRY_SECONDS)
        # Throttling, a timeout, an outage: an old answer beats no answer.
        if cached is not None:
            return cached[1]
        raise _Unavailable() from None
    ttl = LINK_CACHE_SECONDS if link is not None else MISSING_CACHE_SECONDS
    if len(_cache) >= CACHE_MAX_ENTRIES and short_id not in _cache:
        # Dicts keep insertion order: drop the oldest entry to bound memory.
        del _cache[next(iter(_cache))]
    _cache[short_id] = (now + ttl, link)
    return link


def _log_store_error(error):
    """Print one JSON line for a failed read: its code (or exception class) and whether a retry may help.

    Nothing from the request goes in it. The template's metric filters count these lines per
    retryable and not (RedirectStoreErrorsAlarm); the click subscription passes only type "click".
    """
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code") or "ClientError")[:ERROR_CODE_MAX]
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        # A 5xx is transient, as botocore's retries treat it, even with no DynamoDB code: a hop before
        # DynamoDB answering an HTML 503 reaches here as Code "503" (botocore's parser uses the status).
        retryable = code in RETRYABLE_CODES or status >= 500
    else:
        code = type(error).__name__
        retryable = isinstance(error, _RETRYABLE_EXCEPTIONS)
    line = {"type": "error", "error": code, "retryable": retryable, "function": FUNCTION_NAME}
    sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")


def _get_link(short_id):
    item = _client.get_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": short_id}, "sk": {"S": LINK_SK}},
        # "url" is a DynamoDB reserved word, so every attribute goes through a placeholder.
        ProjectionExpression=", ".join(f"#a{i}" for i in range(len(LINK_ATTRIBUTES))),
        ExpressionAttributeNames={f"#a{i}": name for i, name in enumerate(LINK_ATTRIBUTES)},
    ).get("Item")
    if item is None:
        return None
    return {
        "url": item["url"]["S"],
        "active": item.get("is_active", {"BOOL": True})["BOOL"],
        "expires_at": item.get("expires_at", {}).get("S"),
        "forward_query": item.get("forward_query", {}).get("BOOL", True),  # absent: forward
    }


def _parse_event(event):
    if event.get("version") == "2.0":
        method = event["requestContext"]["http"]["method"]
        path = event.get("rawPath") or "/"
        # As the visitor sent it; queryStringParameters is decoded and joins repeated names with commas.
        query = event.get("rawQueryString") or ""
    else:
        method = event.get("httpMethod", "GET")
        path = event.get("path") or "/"
        query = _v1_query(event)
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    return method.upper(), path, headers, query


def _v1_query(event):
    """Payload 1.0 has only decoded parameters: encode them again, every value of a repeated name kept.

    None when they cannot be encoded (a lone surrogate), which a forwarding link answers with 400.
    """
    params = event.get("multiValueQueryStringParameters")
    if params:
        pairs = [(name, value) for name, values in params.items() for value in values]
    else:
        pairs = list((event.get("queryStringParameters") or {}).items())
    try:
        return urlencode(pairs, quote_via=quote)
    except UnicodeEncodeError:
        return None


def _log_click(short_id, headers, visitor=None):
    """Print one followed click as a JSON line, the only thing the aggregator reads.

    Kept small, because every byte is paid as CloudWatch Logs ingestion on every redirect:
    no time (the log event has it), no metric (API Gateway counts requests by status), and
    never the client IP: only its salted hash, "v". Each value from the request is bounded here
    and validated again by the aggregator.
    """
    record = {"type": "click", "id": short_id, "ua": _user_agent(headers)}
    referrer = headers.get("referer")
    host = _host_of(referrer) if referrer else None
    if host:
        record["ref"] = host[:HOST_MAX]
    country = _trusted_country(headers)
    if country:
        record["cc"] = country
    if visitor:
        record["v"] = visitor
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")


def _user_agent(headers):
    return (headers.get("user-agent") or "")[:USER_AGENT_MAX]


def _from_trusted_front(headers):
    """Whether the request came through a front that proved itself with the shared secret."""
    if not TRUSTED_FRONT_SECRET:
        return False  # a regional HTTP API has no CloudFront in front: any such header is forged
    return hmac.compare_digest(headers.get("x-shortener-front", "").encode(), TRUSTED_FRONT_SECRET.encode())


def _trusted_country(headers):
    """The viewer's country, only from a front that proved itself with the shared secret."""
    if not _from_trusted_front(headers):
        return None
    country = headers.get("cloudfront-viewer-country", "")
    return country if _COUNTRY.fullmatch(country) else None


def visitor_hash(address, user_agent, salt):
    """16 hex characters: blake2b(address + "\n" + user agent), keyed with the day's salt."""
    data = f"{address}\n{user_agent}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, key=salt, digest_size=VISITOR_HASH_BYTES).hexdigest()


def _visitor_hash(event, headers, now):
    """The click's "v", or None: no valid address, or no salt for today (yet)."""
    address = _visitor_address(event, headers)
    if address is None:
        return None
    salt = _day_salt(now)
    if salt is None:
        return None
    return visitor_hash(address, _user_agent(headers), salt)


def _visitor_address(event, headers):
    """The address the connection came from, canonical, or None; never X-Forwarded-For, which anyone writes.

    API Gateway's sourceIp (payload 2.0 or 1.0). Behind a trusted front that is CloudFront's own
    address, so there the viewer's comes from CloudFront-Viewer-Address ("<ip>:<port>"), or none.
    """
    if _from_trusted_front(headers):
        viewer = headers.get("cloudfront-viewer-address")
        return _ip(viewer.rpartition(":")[0]) if isinstance(viewer, str) else None
    context = event.get("requestContext")
    if not isinstance(context, dict):
        return None
    section = context.get("http") if event.get("version") == "2.0" else context.get("identity")
    return _ip(section.get("sourceIp")) if isinstance(section, dict) else None


def _ip(value):
    """An IP address literal in its canonical form, or None."""
    if not isinstance(value, str) or not value or len(value) > ADDRESS_MAX or "%" in value:
        return None  # "%": an IPv6 zone, which no remote address carries
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _day_salt(now):
    """Today's salt (UTC), from memory, else from one GetItem; None when there is none, the read failed,
    or SALT_TABLE_NAME is unset.

    Either way the answer stands: a salt for the rest of its day, a miss or a failure for
    SALT_RETRY_SECONDS. A failed read prints the same error line as a failed link read.
    """
    if SALT_TABLE_NAME is None:
        return None
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    if _salt.day == day and _salt.key is not None:
        return _salt.key
    if _salt.day != day:
        _salt.day, _salt.key = day, None  # yesterday's is forgotten now, even while reads wait
    if now < _salt.retry_at:
        return None
    _salt.day, _salt.key, _salt.retry_at = day, None, now + SALT_RETRY_SECONDS
    try:
        item = _client.get_item(
            TableName=SALT_TABLE_NAME, Key={"pk": {"S": SALT_PK}, "sk": {"S": day}},
            ProjectionExpression="#s", ExpressionAttributeNames={"#s": "salt"},
        ).get("Item")
    except (ClientError, BotoCoreError) as error:
        _log_store_error(error)
        return None
    salt = (item or {}).get("salt", {}).get("B")
    if isinstance(salt, bytes) and SALT_MIN_BYTES <= len(salt) <= SALT_MAX_BYTES:
        _salt.key = salt
    return _salt.key


def _host_of(url):
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def security_txt(contacts, policy, now):
    """The text of security.txt: Contact lines, Expires, then Policy if any (as the admin renders it)."""
    lines = [f"Contact: {contact}" for contact in contacts]
    lines.append(f"Expires: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now + SECURITY_TXT_EXPIRES_SECONDS))}")
    if policy:
        lines.append(f"Policy: {policy}")
    return "\n".join(lines) + "\n"


def _security_txt(method, headers):
    if not SECURITY_CONTACT:
        return _response(404, None, method, headers)
    headers = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "max-age=3600",
               "X-Content-Type-Options": "nosniff"}
    body = security_txt(SECURITY_CONTACT, SECURITY_POLICY, int(time.time()))
    return {"statusCode": 200, "headers": headers, "body": "" if method == "HEAD" else body}


def _error_bodies(title, message):
    page = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{title}</title>"
        "<body style='font-family:system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#222'>"
        f"<main><h1>{title}</h1><p>{message}</p></main></body></html>"
    )
    return page, json.dumps({"error": message})


# Built once per container. Browsers (Accept: text/html) get a page, scripts get JSON.
_ERROR_BODIES = {
    400: _error_bodies("Link cannot be followed", "The query string on this short link holds characters that cannot "
                                                  "be forwarded. Remove it and try again."),
    404: _error_bodies("Link not found", "This short link does not exist. Check it for typos."),
    410: _error_bodies("Link no longer available", "This short link has expired or was disabled by its owner."),
    414: _error_bodies("Link too long", f"The query string on this short link is too long to forward (over "
                                        f"{QUERY_MAX_BYTES:,} bytes, or over {LOCATION_MAX_BYTES:,} with the "
                                        "destination). Shorten or remove it and try again."),
    503: _error_bodies("Try again shortly", "The link service is briefly unavailable. Please retry in a moment."),
}
# The error pages have no script, image or form, only inline style attributes: a page that can do
# nothing else and cannot be framed, whatever a future edit or a hostile path tries to put in it.
ERROR_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
_CACHE_CONTROL = {
    # private: shared caches never hold an answer; max-age: a browser reuses it no longer
    # than this container would, so a disable takes effect within one cache window.
    302: f"private, max-age={int(LINK_CACHE_SECONDS)}",
    404: f"private, max-age={int(MISSING_CACHE_SECONDS)}",
    410: f"private, max-age={int(LINK_CACHE_SECONDS)}",
    # Answers about one visitor's query: not worth keeping.
    400: "no-store",
    414: "no-store",
    503: "no-store",
}


def _response(status, location, method, headers):
    if status == 302:
        return {"statusCode": 302, "headers": {"Location": location, "Cache-Control": _CACHE_CONTROL[302]}, "body": ""}
    out_headers = {"Cache-Control": _CACHE_CONTROL[status], **ERROR_PAGE_HEADERS}
    if status == 503:
        out_headers["Retry-After"] = "1"
    page, json_body = _ERROR_BODIES[status]
    if "text/html" in headers.get("accept", ""):
        out_headers["Content-Type"] = "text/html; charset=utf-8"
        body = page
    else:
        out_headers["Content-Type"] = "application/json"
        body = json_body
    return {"statusCode": status, "headers": out_headers, "body": "" if method == "HEAD" else body}
