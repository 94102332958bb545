"""Browser: edit a link, archive it after confirming, see it leave the list and its history on its page, in Chromium;
markup in a title, a note and a tag is shown as text."""
import re

import pytest

from tests.test_browser import browser, page, sign_in, stack  # noqa: F401  (fixtures shared with the main flow)

pytestmark = pytest.mark.browser
XSS = "<img src=x onerror=alert(1)>"


def test_edit_archive_and_history(page, stack):  # noqa: F811
    destination = f"http://127.0.0.1:{stack.admin_port}/health"
    status, _ = stack.api("POST", "/api/links", {"url": destination, "slug": "edit-me", "title": "Before"})
    assert status == 201
    sign_in(page)
    page.goto("/links/edit-me")
    page.get_by_role("link", name="Edit", exact=True).click()
    page.wait_for_url(re.compile(r"/links/edit-me/edit$"))
    assert page.get_by_text(re.compile(r"may keep serving the old destination for up to \d+ seconds")).is_visible()
    page.get_by_label("Title").fill("After")
    page.get_by_label("Tags").fill("Alpha, beta")
    page.get_by_label("Note").fill("Asked for by marketing")
    page.get_by_label("Forward the short link's query string").uncheck()
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(r"/links/edit-me$"))
    assert page.get_by_text("Saved edit-me.").is_visible()
    facts = page.locator("dl.facts")
    assert "After" in facts.inner_text() and "alpha" in facts.inner_text() and "Asked for by marketing" in facts.inner_text()
    status, link = stack.api("GET", "/api/links/edit-me")
    assert (link["title"], link["tags"], link["forward_query"], link["version"]) == ("After", ["alpha", "beta"], False, 2)

    # Archive asks first; confirmed, the link leaves the list but still redirects.
    page.get_by_role("link", name="Archive", exact=True).click()
    page.wait_for_url(re.compile(r"/links/edit-me/archive$"))
    assert stack.api("GET", "/api/links/edit-me")[1]["archived"] is False  # nothing happened yet
    page.get_by_role("button", name="Yes, archive edit-me").click()
    page.wait_for_url(re.compile(r"/(\?.*)?$"))
    assert page.get_by_text(re.compile("Archived edit-me")).is_visible()
    assert page.locator("tr", has_text="edit-me").count() == 0
    assert stack.short("GET", "edit-me") == (302, destination)

    # Its page shows the history, newest first, with the old and new values.
    page.goto("/links/edit-me")
    rows = page.locator("tr.trail-row")
    assert rows.count() == 3
    actions = [rows.nth(n).locator("td[data-label='Action']").inner_text().strip() for n in range(3)]
    assert actions == ["link.archive", "link.edit", "link.create"]
    edit_row = rows.nth(1).inner_text()
    assert "Before" in edit_row and "After" in edit_row and "admin" in edit_row

    # Unarchive brings it back.
    page.get_by_role("button", name="Unarchive").click()
    page.goto("/")
    assert page.locator("tr", has_text="edit-me").count() == 1


def test_a_stale_edit_form_says_who_changed_the_link(page, stack):  # noqa: F811
    assert stack.api("POST", "/api/links", {"url": "https://example.com/stale", "slug": "stale-form"})[0] == 201
    sign_in(page)
    page.goto("/links/stale-form/edit")
    assert stack.api("PATCH", "/api/links/stale-form", {"title": "Theirs"})[0] == 200  # someone else, meanwhile
    page.get_by_label("Title").fill("Mine")
    page.get_by_role("button", name="Save changes").click()
    alert = page.get_by_role("alert")
    assert "since you opened it" in alert.inner_text() and "Theirs" in alert.inner_text()
    assert stack.api("GET", "/api/links/stale-form")[1]["title"] == "Theirs"


def test_markup_in_a_title_note_and_tag_is_shown_as_text(page, stack):  # noqa: F811
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    status, _ = stack.api("POST", "/api/links", {"url": "https://example.com/xss", "slug": "xss-edit", "title": XSS, "note": XSS})
    assert status == 201
    # A tag cannot hold markup at all: the rule refuses it, by the API...
    status, body = stack.api("PATCH", "/api/links/xss-edit", {"tags": [XSS]})
    assert status == 422 and body["field"] == "tags"
    sign_in(page)
    for path in ("/", "/links/xss-edit", "/links/xss-edit/edit", "/links/xss-edit/archive"):
        page.goto(path)
        assert page.get_by_text(XSS).first.is_visible(), f"the markup is shown as text on {path}"
        assert page.locator("img[src='x']").count() == 0, f"the markup became an element on {path}"
    # ...and by the form, whose error repeats the tag as text.
    page.goto("/links/xss-edit/edit")
    page.get_by_label("Tags").fill(XSS)
    page.get_by_label("Title").fill(XSS + " edited")
    page.get_by_role("button", name="Save changes").click()
    assert page.locator(".error", has_text=XSS).first.is_visible()
    assert page.locator("img[src='x']").count() == 0
    # The history shows the old and new titles as text too.
    status, _ = stack.api("PATCH", "/api/links/xss-edit", {"title": XSS + " v2"})
    page.goto("/links/xss-edit")
    assert page.locator("tr.trail-row", has_text=XSS + " v2").count() == 1
    assert page.locator("img[src='x']").count() == 0
    assert dialogs == []
