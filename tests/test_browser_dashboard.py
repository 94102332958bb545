"""Browser: the home dashboard and the stats retention page, in Chromium, on the local stack.

The days' rollups are written into the stack's table as the aggregator writes them (pk "rollup#<day>",
sk "<region>#<mark>"), so every figure on the page is known exactly. One test follows clicks through the
local redirect instead, on a stack of its own, so that the real aggregator writes the rollups it reads.
"""
import os
import re
from datetime import datetime, timedelta, timezone

import pytest

from local_stack import dynamodb
from tests.stack_process import BROWSER, PASSWORD, Stack, wait_for
from tests.test_accessibility import AXE, axe_problems
from tests.test_browser import browser, sign_in  # noqa: F401 - the shared Chromium fixture
from tests.test_dashboard import rollup_item

pytestmark = pytest.mark.browser
TABLE = "links-local"  # local_stack's default table
# The mark of a shard this test invents: the stack's own aggregator never writes under it.
MARK = "m#dashtst0"


def _day(offset):
    return (datetime.now(timezone.utc).date() - timedelta(days=offset)).isoformat()


def _rollup(day, clicks, links=None, visitors=(), **dimensions):
    region = os.environ.get("AWS_REGION") or dynamodb.REGION  # the stack's admin sums this region
    return rollup_item(day, region, MARK, clicks, 0, links, visitors, **dimensions)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack("moto", tmp_path_factory.mktemp("dashboard-stack"))
    try:
        assert stack.api("POST", "/api/links", {"url": "https://example.com/spring", "slug": "spring",
                                                "title": "Spring newsletter"})[0] == 201
        assert stack.api("POST", "/api/links", {"url": "https://example.com/autumn", "slug": "autumn"})[0] == 201
        client = dynamodb.client_for(f"http://127.0.0.1:{stack.dynamodb_port}")
        for item in [
            _rollup(_day(0), 12, {"spring": 9, "autumn": 3}, visitors=range(1, 8),
                    referrers={"news.example": 10}, browsers={"Firefox": 12}, oses={"Linux": 12},
                    devices={"Desktop": 12}),
            _rollup(_day(1), 8, {"spring": 8}),
            _rollup(_day(10), 20, {"autumn": 20}),
        ]:
            client.put_item(TableName=TABLE, Item=item)
        yield stack
    finally:
        assert stack.stop() == 0


@pytest.fixture
def page(browser, stack):  # noqa: F811 - browser is the imported fixture
    context = browser.new_context(base_url=f"http://127.0.0.1:{stack.admin_port}", user_agent=BROWSER)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def test_the_dashboard_shows_the_days_figures(page):
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None)
    sign_in(page)
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url(re.compile(r"/dashboard$"))
    today = page.locator(".total[data-days='1']")
    assert today.locator(".clicks").inner_text() == "12"
    assert "8 yesterday" in today.inner_text() and "up 50%" in today.inner_text()
    week = page.locator(".total[data-days='7']")
    assert week.locator(".clicks").inner_text() == "20"
    month = page.locator(".total[data-days='30']")
    assert month.locator(".clicks").inner_text() == "40"
    assert "Days are UTC" in page.content()

    # The chart is an image with a name; its numbers are a table, one click away, without JavaScript.
    assert page.get_by_role("img", name=re.compile("Clicks per day")).is_visible()
    page.get_by_text("Clicks and visitors per day, as a table").click()
    row = page.locator("table.daily tr", has_text=_day(0))
    assert [cell.strip() for cell in row.locator("td").all_inner_texts()] == [_day(0), "12", "0", "7"]
    assert "not known" in page.locator("table.daily tr", has_text=_day(1)).inner_text()

    # Top links: spring leads the week, autumn the month; each leads to its page.
    week_links = page.locator("ol[aria-labelledby='top-links-7'] li").all_inner_texts()
    assert [re.sub(r"\s+", " ", text) for text in week_links] == ["Spring newsletter 17", "autumn 3"]
    month_links = page.locator("ol[aria-labelledby='top-links-30'] li").all_inner_texts()
    assert [re.sub(r"\s+", " ", text) for text in month_links] == ["autumn 23", "Spring newsletter 17"]
    assert page.get_by_text("None: no trusted front sets countries.").is_visible()
    assert "Firefox" in page.locator("ol[aria-labelledby='top-browsers']").inner_text()
    page.get_by_role("link", name="Spring newsletter").first.click()
    page.wait_for_url(re.compile(r"/links/spring$"))
    assert refused == []


def test_the_dashboard_works_without_javascript(browser, stack):  # noqa: F811
    context = browser.new_context(base_url=f"http://127.0.0.1:{stack.admin_port}", user_agent=BROWSER,
                                  java_script_enabled=False)
    page = context.new_page()
    sign_in(page)
    page.goto("/dashboard")
    assert page.locator(".total[data-days='1'] .clicks").inner_text() == "12"
    page.get_by_text("Clicks and visitors per day, as a table").click()
    assert page.locator("table.daily").is_visible()
    context.close()


def test_an_admin_sets_the_stats_retention(page):
    sign_in(page)
    page.goto("/dashboard")
    page.get_by_role("link", name="How long per-day stats are kept").click()
    field = page.get_by_label("Days of per-day stats to keep")
    field.fill("5")
    page.get_by_role("button", name="Save").click()
    assert "from 7 to 3650" in page.locator(".error").inner_text()
    assert page.get_by_label("Days of per-day stats to keep").get_attribute("aria-invalid") == "true"
    page.get_by_label("Days of per-day stats to keep").fill("400")
    page.get_by_role("button", name="Save").click()
    assert "kept for 400 days" in page.locator(".flash").inner_text()
    assert page.get_by_label("Days of per-day stats to keep").input_value() == "400"
    assert page.locator("#retention-now").inner_text() == "Now: per-day stats are kept for 400 days."
    page.get_by_label("Days of per-day stats to keep").fill("")
    page.get_by_role("button", name="Save").click()
    assert "kept forever" in page.locator(".flash").inner_text()
    assert page.locator("#retention-now").inner_text() == "Now: per-day stats are kept forever."


@pytest.mark.parametrize("path", ["/dashboard", "/settings/stats"])
def test_the_pages_have_no_serious_accessibility_violation(browser, stack, path):  # noqa: F811
    if not AXE.exists():
        pytest.fail("axe-core is not installed: run `npm ci`")
    context = browser.new_context(base_url=f"http://127.0.0.1:{stack.admin_port}", user_agent=BROWSER, bypass_csp=True)
    page = context.new_page()
    sign_in(page)
    page.goto(path)
    if path == "/dashboard":
        page.locator("details").first.evaluate("element => element.open = true")  # check the table too
    problems = axe_problems(page, str(AXE))
    context.close()
    assert problems == [], "\n".join(problems)


@pytest.fixture(scope="module")
def dash(tmp_path_factory):
    """A stack of its own whose link "e2e" was followed 3 times through the local redirect: its rollups
    are the aggregator's, nobody else's."""
    stack = Stack("moto", tmp_path_factory.mktemp("dashboard-e2e-stack"))
    try:
        assert stack.api("POST", "/api/links", {"url": "https://example.com/e2e", "slug": "e2e",
                                                "title": "End to end"})[0] == 201
        for _ in range(3):
            assert stack.short("GET", "e2e")[0] == 302
        yield stack
    finally:
        assert stack.stop() == 0


def test_clicks_through_the_redirect_reach_the_dashboard(browser, dash):  # noqa: F811
    context = browser.new_context(base_url=f"http://127.0.0.1:{dash.admin_port}", user_agent=BROWSER)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto("/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/dashboard$"))  # the signed-in home

    def counted():
        page.goto("/dashboard")
        return page.locator(".total[data-days='1'] .clicks").inner_text() == "3"

    assert wait_for(counted, timeout=30), page.locator(".total[data-days='1']").inner_text()
    assert page.locator(".total[data-days='7'] .clicks").inner_text() == "3"
    for days in (7, 30):
        rows = page.locator(f"ol[aria-labelledby='top-links-{days}'] li").all_inner_texts()
        assert [re.sub(r"\s+", " ", text) for text in rows] == ["End to end 3"]
    # One browser on one address: one visitor, from the day's salted hash; its browser and system, parsed.
    page.get_by_text("Clicks and visitors per day, as a table").click()
    row = page.locator("table.daily tr", has_text=_day(0))
    assert [cell.strip() for cell in row.locator("td").all_inner_texts()] == [_day(0), "3", "0", "1"]
    assert "Chrome" in page.locator("ol[aria-labelledby='top-browsers']").inner_text()
    assert "Linux" in page.locator("ol[aria-labelledby='top-oses']").inner_text()
    chart = page.get_by_role("img", name="Clicks per day, last 30 days (UTC)")
    assert chart.locator("rect.chart-people").count() == 1
    assert "3 by people" in chart.locator(".chart-bars > g").last.locator("title").text_content()
    page.get_by_role("link", name="End to end").first.click()
    page.wait_for_url(re.compile(r"/links/e2e$"))
    context.close()
