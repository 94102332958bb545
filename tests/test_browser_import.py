"""Browser: import links from a CSV file in Chromium, see every row's result, and download the results."""
import csv
import io
import re

import pytest

from tests.test_browser import browser, page, sign_in, stack  # noqa: F401 - the shared Chromium and stack fixtures

pytestmark = pytest.mark.browser

ROWS = (
    "url,slug,title,tags\n"
    "https://example.com/spring,browser-import,Spring,\"launch, q3\"\n"
    "ftp://example.com/file,,,\n"
    "https://example.com/formula,,=HYPERLINK(\"http://evil.example\"),\n"
)


def test_upload_a_csv_see_the_results_and_download_them(page, tmp_path):  # noqa: F811
    sign_in(page)
    page.get_by_role("link", name="Import", exact=True).click()
    page.wait_for_url(re.compile(r"/links/import$"))
    upload = tmp_path / "links.csv"
    upload.write_text(ROWS, encoding="utf-8")
    page.get_by_label("CSV file").set_input_files(str(upload))
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(re.compile(r"/links/import/[0-9a-f]{16}$"))
    assert page.get_by_text("2 created", exact=True).is_visible()
    table = page.get_by_role("table")
    assert table.get_by_role("link", name="browser-import").is_visible()
    assert table.get_by_text("Only http and https links can be shortened.").is_visible()
    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile("Download the results")).click()
    path = download_info.value.path()
    rows = list(csv.DictReader(io.StringIO(open(path, encoding="utf-8").read())))
    assert [row["status"] for row in rows] == ["created", "error", "created"]
    assert rows[0]["short_url"].endswith("/browser-import")
    assert rows[2]["title"].startswith("'=")  # a formula cell comes back as text
    page.get_by_role("link", name="browser-import").click()
    page.wait_for_url(re.compile(r"/links/browser-import$"))


def test_a_file_that_is_not_utf8_is_refused_with_its_reason(page, tmp_path):  # noqa: F811
    sign_in(page)
    page.goto("/links/import")
    upload = tmp_path / "latin1.csv"
    upload.write_bytes("url\nhttps://example.com/café\n".encode("latin-1"))
    page.get_by_label("CSV file").set_input_files(str(upload))
    page.get_by_role("button", name="Import").click()
    assert page.get_by_text("not UTF-8").is_visible()
