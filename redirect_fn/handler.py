"""The hot path: GET /{short_id} -> 302, served from an in-container cache and one GetItem.

Only the standard library and botocore are imported (a bare client, not boto3's
session or resource layer): everything here is paid again on every cold start. Nothing is ever written to DynamoDB; each
request prints one JSON line that is both the click event (read by the aggregator
through a log subscription) and a CloudWatch Embedded Metric Format record.
"""
import json
import os
import re
import sys
import time
from urllib.parse import urlsplit

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

TABLE_NAME = os.environ["TABLE_NAME"]
LINK_CACHE_SECONDS = float(os.environ.get("LINK_CACHE_SECONDS", "10"))
# A missing id is cached briefly: long enough to absorb a burst of typos or scanners,
# short enough that a just-created slug is not hidden for long.
MISSING_CACHE_SECONDS = min(2.0, LINK_CACHE_SECONDS)
CACHE_MAX_ENTRIES = 10_000
METRIC_NAMESPACE = os.environ.get("METRIC_NAMESPACE", "LinkShortener")
# Where a visitor to the bare short domain ("/") is sent: the admin app. Unset: 404.
ROOT_REDIRECT_URL = os.environ.get("ROOT_REDIRECT_URL")
USER_AGENT_MAX = 256

# Random ids are 7 base62 characters, custom slugs 3-64 of [A-Za-z0-9_-]. Anything else
# cannot exist, so it is answered without a DynamoDB call.
_VALID_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Short timeouts and one retry: a stuck request should fall back to the stale cache or a
# 503 quickly rather than hold the visitor for botocore's default 60 seconds.
_client = botocore.session.get_session().create_client(
    "dynamodb",
    config=Config(
        connect_timeout=1,
        read_timeout=1,
        retries={"mode": "standard", "max_attempts": 2},
    ),
)

# short_id -> (fresh_until, link or None). Entries stay past fresh_until so that a
# DynamoDB failure can still be answered from them (stale-if-error).
_cache = {}


def lambda_handler(event, context):
    """Answer one HTTP API request (payload 2.0, or 1.0 as in the recipe's integration)."""
    method, path, headers = _parse_event(event)
    if path == "/" and ROOT_REDIRECT_URL:
        return {"statusCode": 302, "headers": {"Location": ROOT_REDIRECT_URL, "Cache-Control": "no-store"}, "body": ""}
    short_id = path[1:] if path.startswith("/") else path
    now = time.time()
    status, location = resolve(short_id, now)
    _log_request(short_id, status, method, headers, now)
    return _response(status, location, method, headers)


def resolve(short_id, now):
    """Return (status, location) for a short id: 302, 404, 410 or 503."""
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
    return 302, link["url"]


class _Unavailable(Exception):
    """DynamoDB failed and no cached answer exists."""


def _lookup(short_id, now):
    cached = _cache.get(short_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    try:
        link = _get_link(short_id)
    except (ClientError, BotoCoreError):
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


def _get_link(short_id):
    item = _client.get_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": short_id}, "sk": {"S": "link"}},
        ProjectionExpression="#u, is_active, expires_at",
        ExpressionAttributeNames={"#u": "url"},
    ).get("Item")
    if item is None:
        return None
    return {
        "url": item["url"]["S"],
        "active": item.get("is_active", {"BOOL": True})["BOOL"],
        "expires_at": item.get("expires_at", {}).get("S"),
    }


def _parse_event(event):
    if event.get("version") == "2.0":
        method = event["requestContext"]["http"]["method"]
        path = event.get("rawPath") or "/"
    else:
        method = event.get("httpMethod", "GET")
        path = event.get("path") or "/"
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    return method.upper(), path, headers


def _log_request(short_id, status, method, headers, now):
    """Print the request as one JSON line: a click event and an EMF metric at once."""
    referrer = headers.get("referer")
    record = {
        "_aws": {
            "Timestamp": int(now * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRIC_NAMESPACE,
                    "Dimensions": [["Status"]],
                    "Metrics": [{"Name": "Redirects", "Unit": "Count"}],
                }
            ],
        },
        "Status": str(status),
        "Redirects": 1,
        # Only a followed, live link is a click; the subscription filter matches on this.
        "type": "click" if status == 302 and method == "GET" else "request",
        "id": short_id[:64],
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        # Privacy: the referrer is reduced to its host, and the client IP is never logged.
        "ref": _host_of(referrer) if referrer else None,
        "ua": (headers.get("user-agent") or "")[:USER_AGENT_MAX],
        "cc": headers.get("cloudfront-viewer-country"),
    }
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")


def _host_of(url):
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _error_bodies(title, message):
    page = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{title}</title>"
        "<body style='font-family:system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#222'>"
        f"<h1>{title}</h1><p>{message}</p></body></html>"
    )
    return page, json.dumps({"error": message})


# Built once per container. Browsers (Accept: text/html) get a page, scripts get JSON.
_ERROR_BODIES = {
    404: _error_bodies("Link not found", "This short link does not exist. Check it for typos."),
    410: _error_bodies("Link no longer available", "This short link has expired or was disabled by its owner."),
    503: _error_bodies("Try again shortly", "The link service is briefly unavailable. Please retry in a moment."),
}
_CACHE_CONTROL = {
    # private: shared caches never hold an answer; max-age: a browser reuses it no longer
    # than this container would, so a disable takes effect within one cache window.
    302: f"private, max-age={int(LINK_CACHE_SECONDS)}",
    404: f"private, max-age={int(MISSING_CACHE_SECONDS)}",
    410: f"private, max-age={int(LINK_CACHE_SECONDS)}",
    503: "no-store",
}


def _response(status, location, method, headers):
    if status == 302:
        return {"statusCode": 302, "headers": {"Location": location, "Cache-Control": _CACHE_CONTROL[302]}, "body": ""}
    out_headers = {"Cache-Control": _CACHE_CONTROL[status], "X-Content-Type-Options": "nosniff"}
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
