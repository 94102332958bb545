"""Browser: search the list, pick a filter, and export what is shown, in Chromium against the local stack."""
import csv
import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.test_browser import browser, page, sign_in, stack  # noqa: F401 - the same Chromium and stack fixtures

pytestmark = pytest.mark.browser


def create(page, slug, title):
    """Create a link through the New link form."""
    page.get_by_role("link", name="New link").first.click()
    page.get_by_label("Destination URL").fill(f"https://example.com/{slug}")
    page.get_by_label("Custom slug").fill(slug)
    page.get_by_label("Title").fill(title)
    page.get_by_role("button", name=re.compile("Create|Shorten")).click()
    page.wait_for_url(re.compile(f"/links/{slug}$"))


def test_search_filter_and_export_what_is_shown(page):
    sign_in(page)
    create(page, "zebra-walk", "Zebra crossing")
    create(page, "plain-page", "Quarterly report")

    # Type in the search box and press Enter: only the match is listed, and the URL carries the search.
    page.goto("/")
    page.get_by_label("Search").fill("zebr")
    page.get_by_label("Search").press("Enter")
    page.wait_for_url(re.compile(r"q=zebr"))
    rows = page.locator("table.links tbody tr")
    assert rows.filter(has_text="zebra-walk").count() == 1
    assert rows.filter(has_text="plain-page").count() == 0
    assert page.get_by_label("Search").input_value() == "zebr"

    # Disable the other link, then pick the Disabled filter: only it is listed.
    page.goto("/")
    page.locator("tr", has_text="plain-page").get_by_role("button", name="Disable").click()
    page.get_by_role("button", name="Yes, disable plain-page").click()  # disabling asks first
    page.wait_for_url(re.compile(r"/(\?.*)?$"))
    page.get_by_label("Status").select_option("disabled")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"status=disabled"))
    assert rows.filter(has_text="plain-page").count() == 1
    assert rows.filter(has_text="zebra-walk").count() == 0

    # The export link keeps the filter, and the file holds only what the list shows.
    href = page.get_by_role("link", name="Export CSV").get_attribute("href")
    assert parse_qs(urlsplit(href).query) == {"status": ["disabled"]}
    response = page.request.get(href)
    assert response.ok
    exported = [row[0] for row in list(csv.reader(io.StringIO(response.text())))[1:]]
    assert exported == ["plain-page"]
