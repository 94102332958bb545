"""Browser: a link's QR code, downloaded from its page in Chromium, decodes (with ZXing) to its short link."""
import pytest

from tests.test_browser import browser, page, sign_in, stack  # noqa: F401  (fixtures shared with the main flow)
from tests.test_qr import png_text

pytestmark = pytest.mark.browser


def test_the_png_download_decodes_to_the_short_link(page, stack):  # noqa: F811
    status, link = stack.api("POST", "/api/links", {"url": "https://example.com/qr", "slug": "qr-download"})
    assert status == 201
    sign_in(page)
    page.goto("/links/qr-download")
    assert page.locator("section.qr-code svg").is_visible()  # shown inline on the page, as well as downloadable
    with page.expect_download() as download:
        page.get_by_role("link", name="Download PNG").click()
    assert download.value.suggested_filename.endswith(".png")
    data = open(download.value.path(), "rb").read()
    assert png_text(data) == link["short_url"]
