"""`make soak`: steady mixed traffic on the local stack for SOAK_SECONDS, then three verdicts.

The stack is started exactly as `make run` starts it (`python -m local_stack`, through
tests/stack_process.py, on free loopback ports, DynamoDB Local when Java 11+ is here). Then, for
SOAK_SECONDS (60), paced threads send on 127.0.0.1 only:

- creates through the JSON API with the token;
- list views: `GET /api/links` pages and the signed-in HTML list `/`;
- redirects from several threads: GETs with a browser User-Agent (clicks), a few with curl's
  (bots), HEADs (no click) and unknown ids (404);
- link views: the HTML detail page, `GET /api/links/<id>` and `/stats`;
- disables and enables (API PATCH and the HTML forms), each checked with HEAD: 410, then 302.

Edits and search views are not part of it yet: they come with link management (a later issue).

Verdicts: zero errors (every response has its expected status; no traceback or ERROR line in the
stack's output); memory flat (RSS growth after the warm-up below a bound for the stack process and
the DynamoDB Local java process that scales with the requests answered after the warm-up, see
memory_bound_mb, so a short soak has a tight bound); every click counted (once the load stops, each link's
`click_count` equals the browser GETs answered 302 for it, and `bot_count` the curl GETs).
Prints a short report and exits 1 with the reasons on any failure.

Settings (environment): SOAK_SECONDS (60), SOAK_RATE (total requests a second, 60),
SOAK_REDIRECT_THREADS (4), SOAK_RSS_GROWTH_MB (unset: the scaled bound; set: one fixed bound in MB
for every process), SOAK_SETTLE_SECONDS (60: how long the
aggregator may take after the load), LOCAL_DYNAMODB (auto: DynamoDB Local when Java 11+ is here,
else moto), REQUIRE_DYNAMODB_LOCAL (set: fail instead of falling back to moto).
"""
import http.client
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from figures import DOCUMENTS, figure, render, write as write_figures
from local_stack.dynamodb import java_major_version

# Share of SOAK_RATE per kind of traffic; redirects are most of what a shortener serves.
MIX = {"redirect": 0.70, "create": 0.06, "api_list": 0.06, "html_list": 0.04, "views": 0.06, "toggle": 0.04,
       "edit": 0.02, "search": 0.02}
CURL = "curl/8.5.0"
FULL_SECONDS = 60  # `make soak`, as CI runs it; only a soak this long writes results/soak.json
SEED_LINKS = 40
TOGGLE_LINKS = 4
MAX_ERRORS_SHOWN = 10
# The memory bound of each process: a fixed allowance for what settles after the warm-up (caches,
# the allocator, the JVM's heap and JIT, which grow for a while whatever the load), plus an
# allowance per request answered after the warm-up, so a leak that keeps something of every
# request fails a 5-second soak as surely as a 60-second one. The stack grows well under 1 KB a
# request (results/soak.json); 2 KB lets a leak of a few KB a request fail a 60-second soak. DynamoDB
# Local's heap is fixed and touched at start (local_stack/dynamodb.py), so its growth is native memory
# (the in-memory database, which keeps every item written, and JIT code): a larger allowance.
# Keys are prefixes of the process names used in main().
MEMORY_ALLOWANCE = {"stack": (8.0, 2.0), "DynamoDB Local": (40.0, 4.0)}  # (MB, KB per request)


def settings(environ=os.environ):
    """The soak's settings from the environment, with their defaults."""
    return {
        "seconds": float(environ.get("SOAK_SECONDS", str(FULL_SECONDS))),
        "rate": float(environ.get("SOAK_RATE", "60")),
        "redirect_threads": int(environ.get("SOAK_REDIRECT_THREADS", "4")),
        "rss_growth_mb": float(environ["SOAK_RSS_GROWTH_MB"]) if environ.get("SOAK_RSS_GROWTH_MB") else None,
        "settle_seconds": float(environ.get("SOAK_SETTLE_SECONDS", "60")),
        "engine": environ.get("LOCAL_DYNAMODB", "auto"),
        "require_dynamodb_local": bool(environ.get("REQUIRE_DYNAMODB_LOCAL")),
    }


def warmup_seconds(seconds):
    """Memory is measured from here: a fifth of the run, at least 1 s and at most 10 s."""
    return min(10.0, max(1.0, seconds / 5))


# The verdicts: plain functions of the figures, so the tests can make each one fail.


def memory_bound_mb(name, requests, fixed_mb=None):
    """The RSS growth allowed to a process after the warm-up: its allowance for `requests` answered, or fixed_mb."""
    if fixed_mb is not None:
        return fixed_mb
    (base_mb, kb_per_request), = [v for prefix, v in MEMORY_ALLOWANCE.items() if name.startswith(prefix)]
    return base_mb + kb_per_request * requests / 1024


def memory_verdict(name, start_kb, end_kb, bound_mb):
    """A failure message when RSS grew by `bound_mb` or more from the end of the warm-up, else None."""
    if start_kb is None or end_kb is None:
        return f"memory: no RSS figure for {name}"
    growth_mb = (end_kb - start_kb) / 1024
    if growth_mb >= bound_mb:
        return f"memory: {name} grew {growth_mb:.1f} MB after the warm-up ({start_kb / 1024:.0f} -> {end_kb / 1024:.0f} MB), bound {bound_mb:.1f} MB"
    return None


def click_verdict(expected_clicks, expected_bots, counted):
    """Failure messages for every link whose counts differ from the redirects served for it.

    `expected_*` map a short id to the number of 302 GETs served to browsers / to curl; `counted`
    maps every link to its (click_count, bot_count) from the API.
    """
    problems = []
    for short_id in sorted(set(expected_clicks) | set(expected_bots) | set(counted)):
        want = (expected_clicks.get(short_id, 0), expected_bots.get(short_id, 0))
        got = counted.get(short_id)
        if got is None:
            problems.append(f"clicks: {short_id} was redirected {want[0]} + {want[1]} bot times but is not listed")
        elif tuple(got) != want:
            problems.append(f"clicks: {short_id} counted {got[0]} clicks + {got[1]} bots, served {want[0]} + {want[1]}")
    return problems


def log_verdict(lines):
    """Failure messages for tracebacks and ERROR lines in the stack's output."""
    bad = [line for line in lines if "Traceback" in line or line.startswith("ERROR")]
    return [f"stack log: {len(bad)} error line(s), first: {bad[0][:200]}"] if bad else []


# Measuring.


def rss_kb(pid):
    """Resident set size of a process in KiB (Linux /proc), or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def java_child(pid):
    """The pid of the java process started by `pid` (DynamoDB Local), or None."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and cmdline and Path(cmdline[0].decode(errors="replace")).name == "java":
            return int(entry.name)
    return None


@dataclass
class Tally:
    """What the load did and what went wrong, shared by the threads."""

    requests: Counter = field(default_factory=Counter)  # kind -> responses
    clicks: Counter = field(default_factory=Counter)  # short id -> browser GETs answered 302
    bots: Counter = field(default_factory=Counter)  # short id -> curl GETs answered 302
    errors: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, message):
        with self.lock:
            self.errors.append(message)

    def total(self):
        """Responses so far, of every kind."""
        with self.lock:
            return sum(self.requests.values())


class Client:
    """One keep-alive connection to one server, reopened after any failure."""

    def __init__(self, port, token=None, cookie=None):
        self.port, self.token, self.cookie = port, token, cookie
        self._connection = None

    def request(self, method, path, body=None, user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0", form=None):
        headers = {"User-Agent": user_agent, "Accept": "application/json" if self.token else "text/html"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.cookie:
            headers["Cookie"] = self.cookie
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        elif form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            from urllib.parse import urlencode

            body = urlencode(form)
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
            try:
                self._connection.request(method, path, body=body, headers=headers)
                response = self._connection.getresponse()
                data = response.read()
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                # The server closed a kept-alive connection between requests: reopen once. A failure
                # on the fresh connection is an error.
                self._connection.close()
                self._connection = None
                if attempt == 2:
                    raise
                continue
            if self.cookie:  # a browser keeps the cookie the server sets (flashes live in it)
                self.cookie = _cookie(response) or self.cookie
            if response.getheader("Connection", "").lower() == "close":
                self._connection.close()
                self._connection = None
            return response.status, response, data
        raise AssertionError("unreachable")


def sign_in(admin_port, password):
    """A signed-in session cookie for `admin`, through the real form (with its CSRF token)."""
    client = Client(admin_port)
    status, response, data = client.request("GET", "/login")
    cookie = _cookie(response)
    client.cookie = cookie
    token = csrf_token(data)
    status, response, _ = client.request(
        "POST", "/login", form={"csrf_token": token, "username": "admin", "password": password}
    )
    if status != 303:
        raise RuntimeError(f"sign-in answered {status}, not 303")
    return _cookie(response) or cookie


def _cookie(response):
    header = response.getheader("Set-Cookie") or ""
    match = re.match(r"\s*(session=[^;]*)", header)
    return match.group(1) if match else None


def csrf_token(html):
    match = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', html)
    if not match:
        raise RuntimeError("no CSRF token in the page")
    return match.group(1).decode()


class Soak:
    """The load: one paced thread per kind of traffic (several for redirects), all bounded."""

    def __init__(self, stack, config, password, token):
        self.stack, self.config, self.password, self.token = stack, config, password, token
        self.tally = Tally()
        self.live = []  # links that stay enabled: the redirect threads follow these
        self.toggled = []  # links that are disabled and enabled; only HEAD ever follows them
        self.live_lock = threading.Lock()
        self.deadline = None
        self.created = 0

    def api(self):
        return Client(self.stack.admin_port, token=self.token)

    def expect(self, kind, what, status, expected):
        with self.tally.lock:
            self.tally.requests[kind] += 1
        if status not in expected:
            self.tally.error(f"{kind}: {what} answered {status}, expected {'/'.join(map(str, expected))}")
            return False
        return True

    def create(self, client, n, pool, kind="create"):
        url = f"https://example.com/soak/{n}?utm_source=soak"
        status, _, data = client.request("POST", "/api/links", {"url": url, "title": f"soak {n}"})
        if self.expect(kind, "POST /api/links", status, {201}):
            link = json.loads(data)
            with self.live_lock:
                pool.append((link["short_id"], url))

    def seed(self):
        client = self.api()
        for n in range(SEED_LINKS):
            self.create(client, f"seed-{n}", self.live, kind="seed")
        for n in range(TOGGLE_LINKS):
            self.create(client, f"toggle-{n}", self.toggled, kind="seed")
        if len(self.live) != SEED_LINKS or len(self.toggled) != TOGGLE_LINKS:
            raise RuntimeError("could not create the seed links: " + "; ".join(self.tally.errors[:3]))

    # One step of each kind of traffic.

    def step_create(self, state):
        self.created += 1
        self.create(state.setdefault("client", self.api()), f"run-{self.created}", self.live)

    def step_api_list(self, state):
        client = state.setdefault("client", self.api())
        path, pages = "/api/links?limit=20", 0
        while path and pages < 3:
            status, _, data = client.request("GET", path)
            if not self.expect("api_list", "GET /api/links", status, {200}):
                return
            cursor = json.loads(data)["next_cursor"]
            path = f"/api/links?limit=20&cursor={cursor}" if cursor else None
            pages += 1

    def step_html_list(self, state):
        client = state.setdefault("client", Client(self.stack.admin_port, cookie=state["cookie"]))
        status, _, data = client.request("GET", "/")
        if self.expect("html_list", "GET / (signed in)", status, {200}):
            match = re.search(rb'href="/\?cursor=([^"]+)"', data)
            if match:
                from html import unescape

                status, _, _ = client.request("GET", "/?cursor=" + unescape(match.group(1).decode()))
                self.expect("html_list", "GET /?cursor= (signed in)", status, {200})

    def step_views(self, state):
        api = state.setdefault("client", self.api())
        html = state.setdefault("html", Client(self.stack.admin_port, cookie=state["cookie"]))
        with self.live_lock:
            short_id, _ = random.choice(self.live)
        status, _, _ = html.request("GET", f"/links/{short_id}")
        self.expect("views", "GET /links/<id> (signed in)", status, {200})
        status, _, _ = api.request("GET", f"/api/links/{short_id}")
        self.expect("views", "GET /api/links/<id>", status, {200})
        status, _, _ = api.request("GET", f"/api/links/{short_id}/stats?days=7")
        self.expect("views", "GET /api/links/<id>/stats", status, {200})

    def step_edit(self, state):
        """Edit a live link's title and tags (never its destination, which the redirect threads check)."""
        api = state.setdefault("client", self.api())
        state["n"] = state.get("n", 0) + 1
        with self.live_lock:
            short_id, _ = random.choice(self.live)
        title, tags = f"soak edit {state['n']}", [f"edit-{state['n'] % 5}", "soak"]  # as stored: sorted
        status, _, data = api.request("PATCH", f"/api/links/{short_id}", {"title": title, "tags": tags})
        if self.expect("edit", "PATCH /api/links/<id> (title, tags)", status, {200}):
            link = json.loads(data)
            if (link["title"], link["tags"]) != (title, tags):
                self.tally.error(f"edit: /api/links/{short_id} kept {link['title']!r} {link['tags']!r}")

    def step_search(self, state):
        """Search by word prefix and filter by tag: every answer is 200 and matches what was asked."""
        api = state.setdefault("client", self.api())
        state["n"] = state.get("n", 0) + 1
        path = "/api/links?q=soa&limit=20" if state["n"] % 2 else "/api/links?tag=soak&limit=20"
        status, _, data = api.request("GET", path)
        if self.expect("search", f"GET {path}", status, {200}):
            links = json.loads(data)["links"]
            wrong = [link["short_id"] for link in links if "soak" not in (link["title"] or "") + " ".join(link["tags"])]
            if wrong:
                self.tally.error(f"search: {path} gave links that do not match: {wrong[:3]}")

    def step_redirect(self, state):
        client = state.setdefault("client", Client(self.stack.redirect_port))
        roll = random.random()
        with self.live_lock:
            short_id, url = random.choice(self.live)
        if roll < 0.05:
            status, _, _ = client.request("GET", f"/nope{random.randrange(10**6)}x")
            self.expect("redirect", "GET /<unknown id>", status, {404})
            return
        method = "HEAD" if roll < 0.15 else "GET"
        agent = CURL if roll > 0.95 else "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
        status, response, _ = client.request(method, f"/{short_id}", user_agent=agent)
        if self.expect("redirect", f"{method} /<id>", status, {302}):
            if response.getheader("Location") != url:
                self.tally.error(f"redirect: /{short_id} went to {response.getheader('Location')}, not {url}")
            elif method == "GET":
                with self.tally.lock:
                    (self.tally.bots if agent == CURL else self.tally.clicks)[short_id] += 1

    def step_toggle(self, state):
        api = state.setdefault("client", self.api())
        html = state.setdefault("html", Client(self.stack.admin_port, cookie=state["cookie"]))
        short = state.setdefault("short", Client(self.stack.redirect_port))
        state["n"] = state.get("n", 0) + 1
        short_id, _ = self.toggled[state["n"] % len(self.toggled)]
        for active, answer in ((False, 410), (True, 302)):
            if state["n"] % 2:  # the JSON API
                status, _, _ = api.request("PATCH", f"/api/links/{short_id}", {"is_active": active})
                self.expect("toggle", "PATCH /api/links/<id>", status, {200})
            else:  # the HTML form on the link's page
                status, _, page = html.request("GET", f"/links/{short_id}")
                if not self.expect("toggle", "GET /links/<id> (signed in)", status, {200}):
                    return
                action = "enable" if active else "disable"
                status, _, _ = html.request("POST", f"/links/{short_id}/{action}", form={"csrf_token": csrf_token(page)})
                self.expect("toggle", f"POST /links/<id>/{action}", status, {303})
            # The redirect's cache keeps the old answer for up to LINK_CACHE_SECONDS (1 s here).
            until = time.monotonic() + 5
            while True:
                status, _, _ = short.request("HEAD", f"/{short_id}")
                if status == answer:
                    break
                if status not in (302, 410) or time.monotonic() > until:
                    self.expect("toggle", f"HEAD /<id> after {'enable' if active else 'disable'}", status, {answer})
                    return
                time.sleep(0.2)
            with self.tally.lock:
                self.tally.requests["toggle"] += 1

    def paced(self, kind, rate, state):
        """Run one kind of step at `rate` a second until the deadline, at most rate x seconds steps."""
        interval = 1.0 / rate
        budget = max(1, int(rate * self.config["seconds"]))
        next_at = time.monotonic()
        for _ in range(budget):
            if time.monotonic() >= self.deadline:
                break
            try:
                getattr(self, f"step_{kind}")(state)
            except (OSError, http.client.HTTPException, ValueError, KeyError, RuntimeError) as err:
                # A refused connection, a timeout or a body that is not what the API promises.
                self.tally.error(f"{kind}: {type(err).__name__}: {err}")
                state.pop("client", None)
            next_at = max(next_at + interval, time.monotonic() - interval)  # no burst to catch up
            time.sleep(max(0.0, min(next_at - time.monotonic(), self.deadline - time.monotonic())))

    def run(self, cookie):
        rate = self.config["rate"]
        threads = []
        for kind, share in MIX.items():
            count = self.config["redirect_threads"] if kind == "redirect" else 1
            for _ in range(count):
                state = {"cookie": cookie}
                threads.append(threading.Thread(target=self.paced, args=(kind, rate * share / count, state), daemon=True))
        self.deadline = time.monotonic() + self.config["seconds"]
        for thread in threads:
            thread.start()
        return threads


def counted_links(client):
    """Every link's (click_count, bot_count), read page by page through the API."""
    counted, path = {}, "/api/links?limit=100"
    for _ in range(1000):  # bounded: 100,000 links
        status, _, data = client.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}")
        page = json.loads(data)
        counted.update({link["short_id"]: (link["click_count"], link["bot_count"]) for link in page["links"]})
        if not page["next_cursor"]:
            return counted
        path = f"/api/links?limit=100&cursor={page['next_cursor']}"
    raise RuntimeError("more than 1,000 pages of links")


def main():
    config = settings()
    has_java = (java_major_version() or 0) >= 11
    engine = config["engine"]
    if engine == "auto":
        engine = "dynamodb-local" if has_java else "moto"
    if config["require_dynamodb_local"] and engine != "dynamodb-local":
        sys.exit("soak FAILED: REQUIRE_DYNAMODB_LOCAL is set but there is no Java 11+ for DynamoDB Local")

    import pytest

    from tests.stack_process import PASSWORD, TOKEN, Stack

    print(f"soak: {config['seconds']:g} s at {config['rate']:g} requests/s on 127.0.0.1, {engine}", flush=True)
    failures = []
    with tempfile.TemporaryDirectory(prefix="soak-") as data_dir:
        try:
            stack = Stack(engine, Path(data_dir))
        except pytest.fail.Exception as err:
            sys.exit(f"soak FAILED: {err}")
        java = java_child(stack.process.pid) if engine == "dynamodb-local" else None
        processes = {"stack (python -m local_stack)": stack.process.pid}
        if java:
            processes["DynamoDB Local (java)"] = java
        elif engine == "dynamodb-local":
            failures.append("memory: the DynamoDB Local java process was not found")
        rss = {name: {"first": rss_kb(pid)} for name, pid in processes.items()}
        soak = Soak(stack, config, PASSWORD, TOKEN)
        elapsed, counted, settled, measured_requests = 0.0, {}, 0.0, 0
        try:
            soak.seed()
            cookie = sign_in(stack.admin_port, PASSWORD)
            started = time.monotonic()
            threads = soak.run(cookie)
            time.sleep(warmup_seconds(config["seconds"]))
            for name, pid in processes.items():
                rss[name]["warm"] = rss_kb(pid)
            warm_requests = soak.tally.total()
            for thread in threads:
                thread.join(timeout=max(0.0, soak.deadline - time.monotonic()) + 30)
            stuck = sum(thread.is_alive() for thread in threads)
            if stuck:
                failures.append(f"load: {stuck} thread(s) still running 30 s after the deadline")
            elapsed = time.monotonic() - started
            for name, pid in processes.items():
                rss[name]["end"] = rss_kb(pid)
            measured_requests = soak.tally.total() - warm_requests

            # Every click counted: wait for the log subscription and the aggregator, then compare per link.
            api = soak.api()
            settle_start = time.monotonic()
            while True:
                counted = counted_links(api)
                problems = click_verdict(soak.tally.clicks, soak.tally.bots, counted)
                if not problems or time.monotonic() - settle_start > config["settle_seconds"]:
                    break
                time.sleep(0.5)
            settled = time.monotonic() - settle_start
            failures += problems
        except RuntimeError as err:  # the seed links or the sign-in failed: nothing to measure
            failures.append(f"setup: {err}")
        finally:
            code = stack.stop()
        if code != 0 or not stack.lines or stack.lines[-1] != "Stopped.":
            failures.append(f"stop: the stack exited {code} on Ctrl-C; its last lines:\n" + "\n".join(stack.lines[-60:]))
        failures += log_verdict(stack.lines)

    tally = soak.tally
    if tally.errors:
        failures.insert(0, f"errors: {len(tally.errors)} unexpected answer(s); first: " + " | ".join(tally.errors[:MAX_ERRORS_SHOWN]))
    bounds = {name: memory_bound_mb(name, measured_requests, config["rss_growth_mb"]) for name in rss}
    for name, figures in rss.items():
        verdict = memory_verdict(name, figures.get("warm"), figures.get("end"), bounds[name])
        if verdict:
            failures.append(verdict)

    total = sum(tally.requests.values())
    served_clicks, served_bots = sum(tally.clicks.values()), sum(tally.bots.values())
    print(f"requests: {total} in {elapsed:.1f} s ({total / max(elapsed, 0.001):.0f}/s): " + ", ".join(f"{k} {v}" for k, v in sorted(tally.requests.items())))
    print(f"links: {len(counted)} ({SEED_LINKS + TOGGLE_LINKS} seeded, {len(counted) - SEED_LINKS - TOGGLE_LINKS} created under load)")
    print(f"errors: {len(tally.errors)}")
    for name, figures in rss.items():
        first, warm, end = (figures.get(k) for k in ("first", "warm", "end"))
        mb = lambda kb: f"{kb / 1024:.0f} MB" if kb else "?"  # noqa: E731
        growth = f"{(end - warm) / 1024:+.1f} MB" if warm and end else "?"
        print(f"RSS {name}: {mb(first)} at start, {mb(warm)} after the {warmup_seconds(config['seconds']):g} s warm-up, {mb(end)} at the end ({growth}; bound {bounds[name]:.1f} MB for {measured_requests} requests after the warm-up)")
    print(
        f"clicks: {served_clicks} browser GETs answered 302, {sum(c for c, _ in counted.values())} counted; "
        f"{served_bots} curl GETs, {sum(b for _, b in counted.values())} counted as bots; settled {settled:.1f} s after the load"
    )
    if failures:
        for failure in failures:
            print(f"FAIL {failure}", file=sys.stderr)
        sys.exit(f"soak FAILED: {len(failures)} check(s) failed")
    print("soak passed: zero errors, memory flat, every click counted")
    if config["seconds"] == FULL_SECONDS:  # the shorter soaks in `make test` never replace `make soak`'s figures
        write_soak_figures(config, elapsed, total, tally, counted, rss, bounds, measured_requests, settled)


def write_soak_figures(config, elapsed, total, tally, counted, rss, bounds, measured_requests, settled):
    """results/soak.json: what a passing `make soak` measured, for RELIABILITY.md to quote."""
    found = {
        "seconds": figure(round(elapsed), f"{elapsed:.0f} s"),
        "requests": figure(total, basis="counted"),
        "errors": figure(len(tally.errors), basis="counted"),
        "links": figure(len(counted), basis="counted"),
        "clicks.served": figure(sum(tally.clicks.values()), basis="counted"),
        "clicks.counted": figure(sum(c for c, _ in counted.values()), basis="counted"),
        "bots.served": figure(sum(tally.bots.values()), basis="counted"),
        "bots.counted": figure(sum(b for _, b in counted.values()), basis="counted"),
        "settled_seconds": figure(round(settled, 1), f"{settled:.1f} s"),
        "measured_requests": figure(measured_requests, basis="counted"),
    }
    for name, key in (("stack (python -m local_stack)", "stack"), ("DynamoDB Local (java)", "java")):
        if name in rss and rss[name].get("warm") and rss[name].get("end"):
            growth = (rss[name]["end"] - rss[name]["warm"]) / 1024
            found[f"rss.{key}.growth_mb"] = figure(round(growth, 1), f"{growth:+.1f} MB")
            found[f"rss.{key}.bound_mb"] = figure(round(bounds[name], 1), f"{bounds[name]:.1f} MB", basis="modelled")
    write_figures("soak", "make soak", found)
    for document in DOCUMENTS:  # the documents quote the new figures at once, as after `make test`
        render(document)


if __name__ == "__main__":
    main()
