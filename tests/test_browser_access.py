"""Browser: an admin adds an editor and a viewer, the editor signs in and creates a link, the viewer cannot edit;
single sign-on through the local stack's fake provider. In Chromium."""
import re

import pytest

from tests.stack_process import BROWSER, PASSWORD, Stack
from tests.test_browser import browser  # noqa: F401 - the shared Chromium fixture

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOCAL_FAKE_OIDC", "1")
        stack = Stack("moto", tmp_path_factory.mktemp("access-stack"))
    yield stack
    assert stack.stop() == 0


@pytest.fixture
def new_page(browser, stack):  # noqa: F811 - browser is the imported fixture
    contexts = []

    def make():
        context = browser.new_context(base_url=f"http://127.0.0.1:{stack.admin_port}", user_agent=BROWSER)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield make
    for context in contexts:
        context.close()


def sign_in(page, username, password):
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(re.compile(r"/dashboard$"))


def add_user(page, username, password, role):
    page.goto("/users")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Role").last.select_option(role)
    page.get_by_role("button", name="Add user").click()
    assert page.get_by_text(f"Added {username} as {role}.").is_visible()


def test_admin_adds_an_editor_who_creates_a_link_and_a_viewer_who_cannot_edit(new_page, stack):
    admin = new_page()
    sign_in(admin, "admin", PASSWORD)
    admin.get_by_role("link", name="Users").click()
    add_user(admin, "eddie", "eddies-password", "editor")
    add_user(admin, "vera", "veras-password", "viewer")
    assert admin.locator("tr[data-username='eddie'] select").input_value() == "editor"

    editor = new_page()
    sign_in(editor, "eddie", "eddies-password")
    assert editor.get_by_text("editor", exact=True).first.is_visible()
    assert editor.get_by_role("link", name="Users").count() == 0
    editor.get_by_role("link", name="New link").first.click()
    editor.get_by_label("Destination URL").fill("https://example.com/from-eddie")
    editor.get_by_label("Custom slug").fill("from-eddie")
    editor.get_by_role("button", name=re.compile("Create")).click()
    assert editor.get_by_text(f"127.0.0.1:{stack.redirect_port}/from-eddie", exact=True).first.is_visible()

    viewer = new_page()
    sign_in(viewer, "vera", "veras-password")
    viewer.get_by_role("link", name="Links", exact=True).click()  # sign-in lands on the dashboard
    row = viewer.locator("tr", has_text="from-eddie")
    assert row.is_visible()
    assert viewer.get_by_role("link", name="New link").count() == 0
    assert row.get_by_role("button", name="Disable").count() == 0
    response = viewer.goto("/links/new")
    assert response.status == 403
    assert "role does not allow" in viewer.content()
    status, link = stack.api("GET", "/api/links/from-eddie")
    assert status == 200 and link["is_active"] is True and link["created_by"] == "eddie"

    # The admin disables the editor: the editor's open session ends at once, the link stays.
    admin.goto("/users")
    admin.locator("tr[data-username='eddie']").get_by_role("button", name="Disable").click()
    editor.goto("/")
    assert "/login" in editor.url
    status, link = stack.api("GET", "/api/links/from-eddie")
    assert status == 200 and link["created_by"] == "eddie"


def test_single_sign_on_through_the_fake_provider(new_page):
    page = new_page()
    page.goto("/login")
    page.get_by_role("link", name=re.compile("Sign in with the fake local SSO")).click()
    page.get_by_label("Email").fill("sso-editor@example.org")
    page.get_by_label("Groups").fill("shortener-editors")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/dashboard$"))
    assert page.get_by_text("sso-editor@example.org").is_visible()
    assert page.get_by_role("link", name="New link").count() == 1

    refused = new_page()
    refused.goto("/login")
    refused.get_by_role("link", name=re.compile("Sign in with the fake local SSO")).click()
    refused.get_by_label("Email").fill("outsider@example.org")
    refused.get_by_label("Groups").fill("marketing")
    refused.get_by_role("button", name="Sign in").click()
    assert refused.get_by_text("no role in this app").is_visible()
