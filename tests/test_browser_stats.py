"""Browser: a link's chart at 7, 30 and 90 days and for 48 hours, and its live part, in Chromium on the local stack.

Clicks go through the local redirect (the real handler) and the aggregator, as in tests/test_browser.py.
"""
import re
import time

import pytest
from playwright.sync_api import expect

from tests.stack_process import BROWSER, wait_for
from tests.test_accessibility import AXE, axe_problems
from tests.test_browser import browser, page, sign_in, stack  # noqa: F401  (fixtures shared with the main flow)

pytestmark = pytest.mark.browser


def make_link(stack, slug, clicks=0):  # noqa: F811
    """A link with `clicks` followed through the local redirect and counted."""
    status, reply = stack.api("POST", "/api/links", {"url": "https://example.com/stats", "slug": slug})
    assert status == 201, reply
    follow(stack, slug, clicks)


def follow(stack, slug, clicks):  # noqa: F811
    """Follow the short link `clicks` times as a person would, and wait until the aggregator counted them."""
    before = stack.api("GET", f"/api/links/{slug}")[1]["click_count"]
    for _ in range(clicks):
        assert stack.short("GET", slug)[0] == 302
    assert wait_for(lambda: stack.api("GET", f"/api/links/{slug}")[1]["click_count"] == before + clicks, timeout=15)


def csp_violations(page):  # noqa: F811
    """The console's CSP refusals, collected from now on."""
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None)
    return refused


@pytest.mark.parametrize(("link_name", "query", "bars", "name"), [
    ("7 days", "?days=7", 7, "Clicks per day, last 7 days (UTC)"),
    ("30 days", "?days=30", 30, "Clicks per day, last 30 days (UTC)"),
    ("90 days", "?days=90", 90, "Clicks per day, last 90 days (UTC)"),
    ("48 hours", "?hours=48", 48, "Clicks per hour, last 48 hours (UTC)"),
])
def test_the_chart_of_each_period(page, stack, link_name, query, bars, name):  # noqa: F811
    slug = f"chart-{bars}"
    make_link(stack, slug, clicks=3)
    refused = csp_violations(page)
    sign_in(page)
    page.goto(f"/links/{slug}")
    page.get_by_role("link", name=link_name, exact=True).click()  # the period is a plain link
    page.wait_for_url(re.compile(re.escape(query) + "$"))
    chart = page.get_by_role("img", name=name)
    assert chart.is_visible()
    assert chart.locator(".chart-bars > g").count() == bars
    this_hour = chart.locator(".chart-bars > g").last.locator("title").text_content()
    # All three clicks are today's and this hour's: the aggregator counts hours too (h#HH), so the
    # 48-hour chart has this hour's bar of people like the days' charts.
    assert chart.locator("rect.chart-people").count() == 1
    assert "3 by people" in this_hour
    box = chart.bounding_box()
    assert box["width"] > 300 and box["height"] > 100  # drawn at a readable size, styled by app.css
    # The chart is coloured by the stylesheet (the CSP allows no style attribute): not SVG's default black.
    for part in ("rect.chart-people, rect.chart-unknown", "text.chart-tick"):
        colour = chart.locator(part).first.evaluate("shape => getComputedStyle(shape).fill + ' ' + getComputedStyle(shape).stroke")
        assert colour not in ("rgb(0, 0, 0) none", "none none"), (part, colour)
    assert page.get_by_role("link", name=link_name, exact=True).get_attribute("aria-current") == "page"
    # The numbers, as a table, one click away.
    page.get_by_text(f"{name}: the numbers").click()
    table = page.get_by_role("table", name=name)
    assert table.is_visible() and table.locator("tbody tr").count() == bars
    assert refused == []


def test_the_page_works_without_javascript(browser, stack):  # noqa: F811
    make_link(stack, "no-script", clicks=2)
    context = browser.new_context(base_url=f"http://127.0.0.1:{stack.admin_port}", user_agent=BROWSER, java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page)
        page.goto("/links/no-script?days=90")
        assert page.get_by_role("img", name="Clicks per day, last 90 days (UTC)").is_visible()
        assert page.locator("[data-today-clicks]").inner_text() == "2"
        assert page.locator("[data-live-note]").is_hidden()  # no promise of live updates without the script
        with page.expect_download() as download:
            page.get_by_role("link", name="Download CSV").click()
        assert download.value.suggested_filename.startswith("no-script-stats-")
        lines = open(download.value.path()).read().splitlines()
        assert lines[0] == "day,clicks,bots,visitors" and len(lines) == 91 and lines[-1].split(",")[1] == "2"
    finally:
        context.close()


def test_todays_count_and_the_chart_update_without_a_reload(page, stack):  # noqa: F811
    make_link(stack, "live-count", clicks=1)
    refused = csp_violations(page)
    sign_in(page)
    page.goto("/links/live-count?days=7")
    assert page.locator("[data-live-note]").is_visible()
    page.evaluate("window.stillThisPage = true")  # gone if the page reloads
    page.get_by_text("the numbers").click()  # the table is open and stays open across updates
    assert page.locator("[data-today-clicks]").inner_text() == "1"

    follow(stack, "live-count", 4)
    expect(page.locator("[data-today-clicks]")).to_have_text("5", timeout=15_000)  # polls the DOM, no reload
    assert page.evaluate("window.stillThisPage") is True
    assert page.locator("details#stats-numbers").get_attribute("open") is not None
    chart = page.get_by_role("img", name="Clicks per day, last 7 days (UTC)")
    assert "5 by people" in chart.locator(".chart-bars > g").last.locator("title").text_content()
    assert refused == []


def test_polling_pauses_while_the_tab_is_hidden(page, stack):  # noqa: F811
    make_link(stack, "hidden-tab")
    sign_in(page)
    asked = []
    # Playwright's sync API hands over events while it waits (page.wait_for_timeout), not during time.sleep.
    page.on("request", lambda request: asked.append(time.monotonic()) if "/stats/live" in request.url else None)
    page.goto("/links/hidden-tab")
    page.wait_for_timeout(6_000)
    assert len(asked) >= 1, "the live part was never polled"
    page.evaluate("""() => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    hidden_at = time.monotonic()
    page.wait_for_timeout(12_000)  # more than two polling intervals
    assert [moment for moment in asked if moment > hidden_at + 0.5] == []
    shown_at = time.monotonic()
    page.evaluate("""() => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => false});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    page.wait_for_timeout(1_500)  # less than one interval: the refresh is the return's, not the next tick's
    assert any(moment > shown_at for moment in asked), "no refresh on coming back to the tab"


@pytest.mark.parametrize("query", ["?days=90", "?hours=48"])
def test_the_stats_have_no_serious_accessibility_violation(browser, stack, query):  # noqa: F811
    if not AXE.exists():
        pytest.fail("axe-core is not installed: run `npm ci`")
    make_link(stack, f"a11y-stats-{query[1]}", clicks=2)
    # axe is injected, so this context bypasses the CSP (the other tests keep it and check it).
    context = browser.new_context(base_url=f"http://127.0.0.1:{stack.admin_port}", user_agent=BROWSER, bypass_csp=True)
    page = context.new_page()
    try:
        sign_in(page)
        page.goto(f"/links/a11y-stats-{query[1]}{query}")
        page.get_by_text("the numbers").click()
        problems = axe_problems(page, str(AXE))
        assert problems == [], "\n".join(problems)
    finally:
        context.close()


def test_a_signed_out_page_keeps_its_numbers_and_stops_polling(page, stack):  # noqa: F811
    """Signed out meanwhile, a poll gets the sign-in page after a redirect: it is not swapped into the link's page."""
    make_link(stack, "signed-out", clicks=1)
    sign_in(page)
    page.goto("/links/signed-out")
    page.context.clear_cookies()
    expect(page.locator("[data-live-note]")).to_contain_text("signed out", timeout=12_000)
    assert page.locator("[data-today-clicks]").inner_text() == "1"
    assert page.get_by_label("Password").count() == 0  # no sign-in form inside the page
