"""Smoke-test a deployed stack end to end: `make smoke ADMIN_URL=... SHORT_URL=... TOKEN=...`.

Standard library only. Against the admin's JSON API (bearer token) and the short-link API it:
1. creates a link titled "smoke test ..." (POST /api/links), pointing at --target-url;
2. follows it (GET <SHORT_URL>/<id>, browser User-Agent, redirects not followed): 302 to the target;
3. waits until the click is counted (GET /api/links/<id>, click_count >= 1), within --count-within;
4. disables it (PATCH {"is_active": false});
5. waits for 410 on the short link, within the cache window (--cache-seconds) plus a margin.
Each step is printed with its timing. The first failure stops the run with a message and exit
code 1; a link that was created is disabled even then, so every run leaves its link disabled.
"""
import argparse
import http.client
import json
import os
import sys
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

# curl and python-urllib User-Agents are counted as bots; the smoke click must count as a person's.
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)
DEFAULT_TARGET_URL = "https://example.com/linkshortener-smoke-test"
# CloudWatch Logs delivers subscription batches within seconds, but allow for a slow minute.
DEFAULT_COUNT_WITHIN_SECONDS = 120
DEFAULT_CACHE_SECONDS = 10  # the stack's LinkCacheSeconds default
DISABLE_MARGIN_SECONDS = 5
POLL_SECONDS = 1.0
REQUEST_TIMEOUT_SECONDS = 15


class SmokeFailed(Exception):
    """A step did not get what a healthy stack answers."""


class Smoke:
    """One run against one stack; prints each step as it goes."""

    def __init__(self, admin_url, short_url, token, target_url, out=sys.stdout):
        self.admin_url = admin_url.rstrip("/")
        self.short_url = short_url.rstrip("/")
        self.token = token
        self.target_url = target_url
        self.out = out
        self.started = time.monotonic()
        self.short_id = None

    def run(self, count_within, cache_seconds):
        """All the steps; raises SmokeFailed at the first that fails."""
        self.step("create", self.create)
        self.step("follow", self.follow)
        self.step(f"counted (within {count_within:g} s)", lambda: self.wait_for_count(count_within))
        self.step("disable", self.disable)
        limit = cache_seconds + DISABLE_MARGIN_SECONDS
        self.step(f"410 (within {limit:g} s: cache {cache_seconds:g} s + {DISABLE_MARGIN_SECONDS} s)",
                  lambda: self.wait_for_gone(limit))

    def step(self, name, action):
        """Run one step, print its outcome and timing, and return its result."""
        began = time.monotonic()
        try:
            result, detail = action()
        except SmokeFailed as err:
            self._print(f"FAIL {name}: {err}", began)
            raise
        self._print(f"ok   {name}: {detail}", began)
        return result

    def create(self):
        title = f"smoke test {datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ} (make smoke; left disabled)"
        status, _, body = self.api("POST", "/api/links", {"url": self.target_url, "title": title})
        if status != 201:
            raise SmokeFailed(f"POST /api/links answered {status}, not 201: {_snippet(body)}")
        link = _json(body, "POST /api/links")
        if not link.get("short_id"):
            raise SmokeFailed(f"POST /api/links answered no short_id: {_snippet(body)}")
        self.short_id = link["short_id"]  # from here on, a failure still disables it
        expected = f"{self.short_url}/{link['short_id']}"
        if link.get("short_url") != expected:
            raise SmokeFailed(f"the admin hands out {link.get('short_url')}, not {expected}: its "
                              f"SHORTENER_SHORT_BASE_URL and SHORT_URL disagree")
        return link, f"{link['short_id']} -> {link['original_url']}"

    def follow(self):
        status, headers, body = self.short()
        if status != 302 or headers.get("location") != self.target_url:
            raise SmokeFailed(f"GET {self.short_url}/{self.short_id} answered {status} "
                              f"Location {headers.get('location')!r}, not 302 to {self.target_url}: {_snippet(body)}")
        return None, f"302 Location {headers['location']}"

    def wait_for_count(self, within):
        def counted():
            status, _, body = self.api("GET", f"/api/links/{self.short_id}")
            if status != 200:
                raise SmokeFailed(f"GET /api/links/{self.short_id} answered {status}: {_snippet(body)}")
            return _json(body, "GET /api/links/<id>").get("click_count", 0) >= 1

        if not _poll(counted, within):
            raise SmokeFailed(f"click_count still 0 after {within:g} s: is the click pipeline (the redirect's "
                              f"log subscription and the aggregator) delivering? See the dashboard and alarms")
        return None, "click_count >= 1"

    def disable(self):
        status, _, body = self.api("PATCH", f"/api/links/{self.short_id}", {"is_active": False})
        if status != 200 or _json(body, "PATCH /api/links/<id>").get("is_active") is not False:
            raise SmokeFailed(f"PATCH /api/links/{self.short_id} answered {status}: {_snippet(body)}")
        return None, "is_active false"

    def wait_for_gone(self, within):
        last = []

        def gone():
            status, _, _ = self.short()
            last[:] = [status]
            return status == 410

        if not _poll(gone, within):
            raise SmokeFailed(f"the short link still answers {last[0]} after {within:g} s, not 410")
        return None, "410 Gone"

    def cleanup(self):
        """After a failure: leave the smoke link disabled, as a passing run does."""
        if self.short_id is None:
            return
        try:
            status, _, _ = self.api("PATCH", f"/api/links/{self.short_id}", {"is_active": False})
        except SmokeFailed as err:
            status = err
        self._print(f"cleanup: disabling {self.short_id} answered {status}", time.monotonic())

    def api(self, method, path, payload=None):
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        body = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(payload).encode()
        return _request(method, self.admin_url + path, headers, body)

    def short(self):
        headers = {"User-Agent": BROWSER_USER_AGENT, "Accept": "text/html"}
        return _request("GET", f"{self.short_url}/{self.short_id}", headers)

    def _print(self, text, began):
        now = time.monotonic()
        print(f"[{now - self.started:7.2f} s] {text} ({now - began:.2f} s)", file=self.out, flush=True)


def _request(method, url, headers, body=None):
    """One request, redirects not followed; returns (status, lowercase headers, body)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SmokeFailed(f"not an http(s) URL: {url}")
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=REQUEST_TIMEOUT_SECONDS)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    except (OSError, http.client.HTTPException) as err:
        # Connection refused, DNS, TLS, timeouts: say which URL, so the operator knows which side.
        raise SmokeFailed(f"{method} {url} failed: {err.__class__.__name__}: {err}") from err
    finally:
        connection.close()


def _poll(predicate, within):
    deadline = time.monotonic() + within
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


def _json(body, what):
    try:
        value = json.loads(body)
    except ValueError:
        raise SmokeFailed(f"{what} did not answer JSON: {_snippet(body)}") from None
    if not isinstance(value, dict):
        raise SmokeFailed(f"{what} did not answer a JSON object: {_snippet(body)}")
    return value


def _snippet(body):
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    return text[:200].replace("\n", " ")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", required=True, help="the admin app's URL, stage included (…/prod)")
    parser.add_argument("--short-url", required=True, help="the stack's ShortBaseUrl output")
    parser.add_argument("--token", default=os.environ.get("SMOKE_TOKEN"),
                        help="an API token (default: $SMOKE_TOKEN, which keeps it out of the process list)")
    parser.add_argument("--target-url", default=DEFAULT_TARGET_URL, help="where the smoke link points")
    parser.add_argument("--count-within", type=float, default=DEFAULT_COUNT_WITHIN_SECONDS,
                        help="seconds the click may take to be counted (default: %(default)s)")
    parser.add_argument("--cache-seconds", type=float, default=DEFAULT_CACHE_SECONDS,
                        help="the stack's LinkCacheSeconds (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("an API token is needed: --token or SMOKE_TOKEN")
    smoke = Smoke(args.admin_url, args.short_url, args.token, args.target_url)
    try:
        smoke.run(args.count_within, args.cache_seconds)
    except SmokeFailed as err:
        smoke.cleanup()
        print(f"smoke test FAILED: {err}", file=sys.stderr)
        return 1
    print(f"smoke test passed in {time.monotonic() - smoke.started:.1f} s; {smoke.short_id} is left disabled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
