"""Screenshots of the admin for the README's tour: `make screenshots` writes docs/screenshots/*.png.

It starts its own local stack (as `make run` does, on moto, in a temporary folder, on free ports), so the
pictures never show anyone's real links and come out the same each time; fills it with a few example
links and clicks; and photographs the main pages in Chromium at a fixed size.

The clicks go through the local redirect from a few kinds of browser (desktop, iPhone, Android) and one link
preview bot, so the dashboard and a link's stats show devices, browsers and systems. They are all today's:
the redirect stamps clicks with the real clock, and the pictures do not fake another one.
"""
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from local_stack.__main__ import port_is_free  # noqa: E402 - after the path is set, as a script
from local_stack.dynamodb import free_port  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}
# Chromium with no network services of its own (as in tests/test_browser.py).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
# The visitors' browsers, in turn: the admin's own desktop one, an iPhone's Safari, an Android phone's Chrome,
# and Firefox on Windows.
VISITORS = [
    USER_AGENT,
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
]
BOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"  # a link preview: counted apart, as a bot
START_SECONDS = 180

EXAMPLE_LINKS = [
    {"url": "https://www.example.com/blog/2026/spring-launch?utm_campaign=spring", "slug": "launch",
     "title": "Spring launch announcement", "tags": ["campaign", "spring"]},
    {"url": "https://shop.example.net/collections/garden/outdoor-furniture/teak-benches-and-tables-for-small-patios",
     "slug": "garden-sale", "title": "Garden sale", "tags": ["campaign", "shop"]},
    {"url": "https://bücher.example/neuerscheinungen", "slug": "buecher",
     "title": "New books (an international domain)"},
    {"url": "https://docs.example.org/guides/getting-started", "slug": "docs", "title": "Getting started guide",
     "expires_at": None},
    {"url": "https://events.example.com/webinar/2025-autumn", "slug": "webinar", "title": "Autumn webinar recording"},
]
# An import with one row of each outcome, for the results page.
IMPORT_CSV = (b"url,slug,title,tags\nhttps://www.example.com/autumn,autumn,Autumn campaign,campaign\n"
              b"https://www.example.com/winter,,Winter campaign,campaign\nnot a link,,Typo,\n"
              b"https://www.example.com/again,launch,Taken slug,\n")
# Clicks per link, from a few kinds of visitor, so the counts and the stats breakdowns show something.
CLICKS = {"launch": 23, "garden-sale": 9, "buecher": 4, "docs": 2}
REFERRERS = ["https://news.example.com/", "https://mail.example.org/", None]


class LocalStack:
    """`python -m local_stack` on moto, in a temporary folder, on free ports."""

    def __init__(self, data_dir):
        # `make run`'s ports when they are free, so the short links look as they do there.
        self.admin_port, self.redirect_port = (port if port_is_free(port) else free_port() for port in (5000, 8080))
        self.password, self.token = secrets.token_urlsafe(12), secrets.token_urlsafe(32)
        env = {**os.environ, "ADMIN_PORT": str(self.admin_port), "REDIRECT_PORT": str(self.redirect_port),
               "DYNAMODB_PORT": str(free_port()), "LOCAL_DYNAMODB": "moto", "LOCAL_DATA_DIR": str(data_dir),
               "LOCAL_ADMIN_PASSWORD": self.password, "LOCAL_API_TOKEN": self.token,
               "CLICK_FLUSH_SECONDS": "0.5", "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "local_stack"], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        ready = threading.Event()

        def read():
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))
                if line.startswith("Ready."):
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(START_SECONDS) or self.process.poll() is not None:
            self.stop()
            sys.exit("the local stack did not start:\n" + "\n".join(self.lines[-30:]))

    def stop(self):
        """Ctrl-C, and wait for it to finish."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def request(self, port, method, path, body=None, headers=None):
        """One HTTP request to the stack; (status, parsed JSON or None)."""
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return response.status, (json.loads(data) if is_json and data else None)

    def api(self, method, path, body=None):
        """The admin's JSON API, as the local admin's token."""
        return self.request(self.admin_port, method, path, body,
                            {"Authorization": f"Bearer {self.token}", "Accept": "application/json"})


def fill(stack):
    """The example links, a disabled one, a second user, a token, and clicks counted by the aggregator."""
    for body in EXAMPLE_LINKS:
        status, reply = stack.api("POST", "/api/links", body)
        assert status == 201, reply
    assert stack.api("PATCH", "/api/links/webinar", {"is_active": False})[0] == 200
    # An edit, so the link's page shows a trail with old and new values.
    assert stack.api("PATCH", "/api/links/launch", {"note": "Shared in the March newsletter."})[0] == 200
    assert stack.api("POST", "/api/users", {"username": "maria", "password": secrets.token_urlsafe(16),
                                            "role": "editor"})[0] == 201
    for short_id in CLICKS:  # previews first: counted by the time the people's clicks are
        assert stack.request(stack.redirect_port, "GET", f"/{short_id}", headers={"User-Agent": BOT})[0] == 302
    for short_id, count in CLICKS.items():
        for n in range(count):
            referrer = REFERRERS[n % len(REFERRERS)]
            headers = {"User-Agent": VISITORS[n % len(VISITORS)], **({"Referer": referrer} if referrer else {})}
            assert stack.request(stack.redirect_port, "GET", f"/{short_id}", headers=headers)[0] == 302
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        counted = {short_id: stack.api("GET", f"/api/links/{short_id}")[1]["click_count"] for short_id in CLICKS}
        if counted == CLICKS:
            return
        time.sleep(0.5)
    sys.exit(f"the clicks were not all counted within 30 s: {counted}")


def photograph(stack):
    """Sign in as a person would, then save each page at the fixed viewport."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("Chromium is not installed (apt-get install chromium)")
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=f"http://127.0.0.1:{stack.admin_port}", user_agent=USER_AGENT,
                                      viewport=VIEWPORT, color_scheme="light")
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("User name").fill("admin")
        page.get_by_label("Password").fill(stack.password)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(f"http://127.0.0.1:{stack.admin_port}/dashboard")  # the signed-in home
        _wait_for_rollups(page)
        shot(page, "dashboard")
        page.evaluate("document.getElementById('top-links-title').scrollIntoView({block: 'start'})")
        shot(page, "dashboard-top")
        page.goto("/")
        shot(page, "links")
        page.goto("/links/launch")
        shot(page, "link")
        page.evaluate("document.getElementById('stats-title').scrollIntoView({block: 'start'})")
        shot(page, "link-stats")
        page.goto("/links/new")
        page.get_by_label("Destination URL").fill("https://www.example.com/summer")
        page.get_by_label("Custom slug").fill("no")  # too short: the error shows beside the field
        page.get_by_role("button", name="Create").click()
        shot(page, "new-link")
        page.goto("/?q=camp&tag=campaign")
        shot(page, "search")
        page.goto("/links/launch/edit")
        shot(page, "edit-link")
        page.goto("/links/import")
        page.get_by_label("CSV file").set_input_files(files=[{"name": "links.csv", "mimeType": "text/csv", "buffer": IMPORT_CSV}])
        page.get_by_role("button", name="Import").click()
        page.wait_for_url(re.compile(r"/links/import/[\w-]+$"))
        shot(page, "import")
        page.goto("/tokens")
        page.get_by_label("Name").fill("Nightly report")
        page.get_by_role("button", name="Create token").click()
        shot(page, "tokens")
        page.goto("/users")
        shot(page, "users")
        browser.close()


def _wait_for_rollups(page):
    """Reload the dashboard until today's total has every click: the aggregator writes the day's rollups
    in the same batch as the links' counters, but the page must not be photographed half-way."""
    deadline, wanted = time.monotonic() + 30, f"{sum(CLICKS.values()):,}"
    while page.locator(".total[data-days='1'] .clicks").inner_text() != wanted:
        if time.monotonic() > deadline:
            sys.exit("the dashboard did not show every click within 30 s")
        time.sleep(0.5)
        page.reload()


def shot(page, name):
    """One PNG of what a 1280x800 window shows, its focus ring and caret hidden."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    path = OUT / f"{name}.png"
    page.screenshot(path=path, animations="disabled", caret="hide")
    print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KB")


def main():
    """Start a stack, fill it, photograph it, stop it."""
    with tempfile.TemporaryDirectory(prefix="screenshots-") as data_dir:
        stack = LocalStack(Path(data_dir))
        try:
            fill(stack)
            photograph(stack)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
