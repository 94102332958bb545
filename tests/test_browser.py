"""Browser: a staff member signs in, creates a link, copies it, follows it, sees the click and disables it, in Chromium."""
import os
import re
import shutil

import pytest

from tests.stack_process import BROWSER, PASSWORD, Stack, wait_for

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium's own background services try the network, which this machine does not have.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("REQUIRE_BROWSER is set but Chromium is not installed (apt-get install chromium)")
        pytest.skip("Chromium is not installed; .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack("moto", tmp_path_factory.mktemp("browser-stack"))
    yield stack
    assert stack.stop() == 0


@pytest.fixture
def page(browser, stack, request, tmp_path):
    admin = f"http://127.0.0.1:{stack.admin_port}"
    # Headless Chromium says "HeadlessChrome", which the aggregator rightly counts as a bot.
    context = browser.new_context(base_url=admin, user_agent=BROWSER)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=admin)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        # What the browser showed when the test failed, for the person reading the failure.
        path = f"{os.environ.get('SCREENSHOT_DIR', str(tmp_path))}/{request.node.name}-failed.png"
        page.screenshot(path=path, full_page=True)
        print(f"screenshot of the failure: {path}")
    context.close()


def sign_in(page):
    page.goto("/")
    assert "/login" in page.url  # every page but sign-in needs a signed-in user
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def test_create_copy_follow_count_and_disable(page, stack, tmp_path):
    sign_in(page)
    page.get_by_role("link", name="New link").first.click()
    destination = f"http://127.0.0.1:{stack.admin_port}/health"
    page.get_by_label("Destination URL").fill(destination)
    page.get_by_label("Custom slug").fill("browser-test")
    page.get_by_label("Title").fill("Spring <b>campaign</b>")
    page.get_by_role("button", name=re.compile("Create|Shorten")).click()

    # The new short link is shown compactly, ready to copy, and the copy button puts the full URL on the clipboard.
    short_url = f"http://127.0.0.1:{stack.redirect_port}/browser-test"
    assert page.get_by_role("link", name=f"127.0.0.1:{stack.redirect_port}/browser-test", exact=True).get_attribute("href") == short_url
    page.get_by_role("button", name=re.compile("Copy")).first.click()
    assert page.evaluate("navigator.clipboard.readText()") == short_url
    assert page.locator("b", has_text="campaign").count() == 0  # the title was escaped, not rendered

    # A visitor follows it: the redirect lands on the destination.
    visitor = page.context.new_page()
    visitor.goto(short_url)
    assert visitor.url == destination
    assert '"status"' in visitor.content()
    visitor.close()

    # The click shows up in the list once the aggregator has run.
    def clicks_in_list():
        page.goto("/")
        row = page.locator("tr", has_text="browser-test")
        return row.locator("td[data-label='Clicks']").inner_text().strip() == "1"

    assert wait_for(clicks_in_list, timeout=10), "the click did not show in the list"
    page.screenshot(path=os.environ.get("SCREENSHOT_DIR", str(tmp_path)) + "/list.png", full_page=True)

    # Disable from the list: the row says so, and the short link answers 410 within the cache window.
    row = page.locator("tr", has_text="browser-test")
    row.get_by_role("button", name="Disable").click()
    page.get_by_role("button", name="Yes, disable browser-test").click()  # disabling asks first
    row = page.locator("tr", has_text="browser-test")
    assert row.locator(".badge").inner_text().strip().lower() == "disabled"

    def gone():
        response = visitor_page.goto(short_url)
        return response.status == 410

    visitor_page = page.context.new_page()
    assert wait_for(gone, timeout=5)
    assert "no longer available" in visitor_page.content()

    # And back on.
    page.locator("tr", has_text="browser-test").get_by_role("button", name="Enable").click()
    assert page.locator("tr", has_text="browser-test").locator(".badge").inner_text().strip().lower() == "active"


def test_bad_input_shows_the_error_and_creates_nothing(page, stack):
    sign_in(page)
    page.goto("/links/new")
    page.get_by_label("Destination URL").fill("javascript:alert(1)")
    page.get_by_label("Custom slug").fill("bad-one")
    page.get_by_role("button", name=re.compile("Create|Shorten")).click()
    assert page.locator(".error").first.is_visible()
    assert re.search(r"http", page.locator(".error").first.inner_text())
    status, _ = stack.api("GET", "/api/links/bad-one")
    assert status == 404


def test_a_link_can_be_created_by_keyboard_alone(page, stack):
    """Sign in, reach the form and create a link with the keyboard only: Tab, typing and Enter."""
    page.goto("/login")
    page.keyboard.type("admin")  # the user name field has the focus when the page opens
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/dashboard$"))
    for _ in range(40):  # Tab to the "New link" link, as a keyboard user would
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "New link":
            break
    else:
        pytest.fail("Tab never reached the New link link")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/links/new$"))
    page.keyboard.type(f"http://127.0.0.1:{stack.admin_port}/health")  # the destination has the focus
    page.keyboard.press("Tab")
    page.keyboard.type("by-keyboard")
    page.keyboard.press("Tab")
    page.keyboard.type("Made without a mouse")
    page.keyboard.press("Enter")  # Enter in a text field submits the form
    page.wait_for_url(re.compile(r"/links/by-keyboard$"))
    assert page.get_by_text(f"127.0.0.1:{stack.redirect_port}/by-keyboard", exact=True).first.is_visible()
    status, link = stack.api("GET", "/api/links/by-keyboard")
    assert status == 200 and link["title"] == "Made without a mouse"


def test_a_stored_xss_title_is_shown_inert(page, stack):
    payload = '<img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script>'
    status, _ = stack.api("POST", "/api/links", {"url": "https://example.com/xss", "slug": "xss-title", "title": payload})
    assert status == 201
    sign_in(page)
    for path in ("/", "/links/xss-title"):
        page.goto(path)
        assert page.get_by_text(payload).first.is_visible(), f"the title is shown as text on {path}"
        assert page.evaluate("window.__xss") is None, f"the payload ran on {path}"
        assert page.locator("img[src='x']").count() == 0
