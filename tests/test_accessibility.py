"""Accessibility, measured: axe-core finds no serious or critical violation on any page, in light and dark,
wide and narrow, and the keyboard reaches the main actions with a visible focus. In Chromium.

axe-core comes from npm (package.json, installed by `npm ci` in the Makefile's install step).
"""
import os
import re
import secrets

import pyotp
import pytest

from tests.conftest import ADMIN_USERNAME, make_app
from tests.stack_process import BROWSER, PASSWORD, ROOT, Stack, wait_for
from tests.test_browser import browser  # noqa: F401 - the shared Chromium fixture

pytestmark = pytest.mark.browser
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
# Two looks cover the stylesheet's two colour schemes and its two layouts (the list's cards below 48rem).
LOOKS = {
    "light-wide": {"color_scheme": "light", "viewport": {"width": 1280, "height": 800}},
    "dark-narrow": {"color_scheme": "dark", "viewport": {"width": 390, "height": 844}},
}
VIEWER, VIEWER_PASSWORD = "vera", "veras-long-password"


@pytest.fixture(scope="module")
def axe_path():
    if not AXE.exists():
        message = "axe-core is not installed: run `npm ci` (the Makefile's install step does)"
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return str(AXE)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack("moto", tmp_path_factory.mktemp("a11y-stack"))
    for body in EXAMPLE_LINKS:
        status, reply = stack.api("POST", "/api/links", body)
        assert status == 201, reply
    assert stack.api("PATCH", "/api/links/old-promo", {"is_active": False})[0] == 200
    for _ in range(3):
        assert stack.short("GET", "spring-news")[0] == 302
    assert wait_for(lambda: stack.api("GET", "/api/links/spring-news")[1]["click_count"] == 3, timeout=10)
    user = {"username": VIEWER, "password": VIEWER_PASSWORD, "role": "viewer"}
    assert stack.api("POST", "/api/users", user)[0] == 201
    assert stack.api("POST", "/api/blocklist", {"kind": "domain", "value": "phish.example"})[0] == 201
    yield stack
    assert stack.stop() == 0


EXAMPLE_LINKS = [
    {"url": "https://www.example.com/spring/2026/newsletter?utm_source=mail", "slug": "spring-news",
     "title": "Spring newsletter"},
    {"url": "https://docs.example.org/guides/getting-started/installation/linux/debian/" + "x" * 120,
     "slug": "install-guide", "title": "Installation guide (a very long destination)"},
    {"url": "https://bücher.example/neu", "slug": "buecher"},
    {"url": "https://shop.example.net/sale", "slug": "old-promo", "title": "Last year's sale"},
]


def signed_in_state(browser, stack, username, password):  # noqa: F811 - browser is the imported fixture
    """The cookies of a signed-in browser, for new contexts to start from."""
    context = browser.new_context(base_url=f"http://127.0.0.1:{stack.admin_port}", user_agent=BROWSER)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(re.compile(r"/dashboard$"))
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture(scope="module")
def admin_state(browser, stack):  # noqa: F811
    return signed_in_state(browser, stack, "admin", PASSWORD)


@pytest.fixture(scope="module")
def viewer_state(browser, stack):  # noqa: F811
    return signed_in_state(browser, stack, VIEWER, VIEWER_PASSWORD)


@pytest.fixture(params=sorted(LOOKS))
def open_page(request, browser, stack):  # noqa: F811
    """A page factory: open_page(state) gives a page in this test's look, signed in with state (None: signed out).
    CSP is bypassed so that axe can be injected; test_headers.py checks the policy itself."""
    contexts = []

    def make(state=None):
        context = browser.new_context(base_url=f"http://127.0.0.1:{stack.admin_port}", user_agent=BROWSER,
                                      bypass_csp=True, storage_state=state, **LOOKS[request.param])
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield make
    for context in contexts:
        context.close()


def axe_problems(page, axe_path):
    """Every serious or critical axe-core violation on the page, one line each: rule, impact, element, help."""
    page.add_script_tag(path=axe_path)
    violations = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ["violations"]});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                            targets: v.nodes.map(n => n.target.join(" "))}));
    }""")
    return [f"{v['id']} ({v['impact']}) {target}: {v['help']}"
            for v in violations if v["impact"] in BLOCKING for target in v["targets"]]


def assert_accessible(page, axe_path):
    problems = axe_problems(page, axe_path)
    assert problems == [], f"axe-core on {page.url}:\n" + "\n".join(problems)


# What a person does on a page before it is checked, for the states that only an action shows.
def _bad_link(page):
    page.get_by_label("Destination URL").fill("javascript:alert(1)")
    page.get_by_label("Custom slug").fill("no")
    page.get_by_role("button", name=re.compile("Create")).click()
    assert page.locator(".error").first.is_visible()


def _created_link(page):
    page.get_by_label("Destination URL").fill("https://www.example.com/made-in-the-a11y-test")
    page.get_by_role("button", name=re.compile("Create")).click()
    page.wait_for_url(re.compile(r"/links/[\w-]+$"))
    assert page.locator(".flash").first.is_visible()


def _new_token(page):
    page.get_by_label("Name").fill("a11y check")
    page.get_by_role("button", name=re.compile("Create")).click()
    assert page.locator(".new-token").is_visible()


def _two_factor_setup(page):
    page.goto("/account/two-factor/setup")
    if page.locator(".totp-secret").count() == 0:  # no key pending yet: make one
        page.get_by_role("button", name="Set up two-factor sign-in").click()
    assert page.locator(".totp-secret").is_visible()


def _bad_sign_in(page):
    page.get_by_label("User name").fill("nobody")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    assert page.locator(".error, .flash.error").first.is_visible()


def _bad_edit(page):
    page.get_by_label("Destination URL").fill("javascript:alert(1)")
    page.get_by_role("button", name=re.compile("Save")).click()
    assert page.locator(".error").first.is_visible()


def _imported(page):
    page.get_by_label("CSV file").set_input_files(files=[{
        "name": "links.csv", "mimeType": "text/csv",
        "buffer": b"url,slug,title\nhttps://example.com/a11y-import,,Imported\nnot a url,,Refused\n"}])
    page.get_by_role("button", name=re.compile("Import")).click()
    page.wait_for_url(re.compile(r"/links/import/[\w-]+$"))
    assert page.locator("table").first.is_visible()


ADMIN_PAGES = {
    "links": ("/", None),
    "links searched and filtered": ("/?q=spring&status=active&sort=clicks", None),
    "archived links": ("/?status=archived", None),
    "bad filter": ("/?status=nonsense", None),
    "edit link": ("/links/spring-news/edit", None),
    "edit link with errors": ("/links/spring-news/edit", _bad_edit),
    "confirm disable": ("/links/spring-news/disable", None),
    "confirm archive": ("/links/spring-news/archive", None),
    "import": ("/links/import", None),
    "import results": ("/links/import", _imported),
    "link detail": ("/links/spring-news", None),
    "new link": ("/links/new", None),
    "new link with errors": ("/links/new", _bad_link),
    "link created": ("/links/new", _created_link),
    "tokens": ("/tokens", None),
    "new token": ("/tokens", _new_token),
    "users": ("/users", None),
    "audit log": ("/audit", None),
    "sessions": ("/account/sessions", None),
    "password": ("/account/password", None),
    "two-factor": ("/account/two-factor", None),
    "two-factor setup": ("/account/two-factor", _two_factor_setup),
    "security settings": ("/settings/security", None),
    "blocklist": ("/settings/blocklist", None),
    "404": ("/no/such/page", None),
    "404 link": ("/links/no-such-link", None),
}


@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_signed_in_pages_have_no_serious_violation(name, open_page, admin_state, axe_path):
    path, action = ADMIN_PAGES[name]
    page = open_page(admin_state)
    response = page.goto(path)
    assert response.status == (404 if name.startswith("404") else 422 if name == "bad filter" else 200)
    assert "/login" not in page.url
    if action:
        action(page)
    assert_accessible(page, axe_path)


@pytest.mark.parametrize("action", [None, _bad_sign_in], ids=["plain", "with errors"])
def test_the_sign_in_page_has_no_serious_violation(action, open_page, axe_path):
    page = open_page()
    page.goto("/login")
    if action:
        action(page)
    assert_accessible(page, axe_path)


def test_the_two_factor_pages_have_no_serious_violation(open_page, stack, axe_path):
    """Set up two-factor sign-in (recovery codes), sign in again (the code step, then with a wrong code)."""
    username, password = f"tess{secrets.token_hex(3)}", "tess-long-password-1"
    assert stack.api("POST", "/api/users", {"username": username, "password": password, "role": "editor"})[0] == 201
    page = open_page()
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(re.compile(r"/dashboard$"))
    page.goto("/account/two-factor/setup")
    page.get_by_role("button", name="Set up two-factor sign-in").click()
    secret = page.locator(".totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Continue").click()
    assert page.locator(".recovery-codes li").count() == 10
    assert_accessible(page, axe_path)

    page.get_by_role("button", name="Sign out").click()
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(re.compile(r"/login/two-factor"))
    assert_accessible(page, axe_path)
    page.get_by_label("Code").fill("not-a-code")
    page.get_by_role("button", name="Continue").click()
    assert page.locator(".error, .flash.error").first.is_visible()
    assert_accessible(page, axe_path)


def test_the_403_page_has_no_serious_violation(open_page, viewer_state, axe_path):
    page = open_page(viewer_state)
    response = page.goto("/links/new")
    assert response.status == 403
    assert page.locator("link[rel=stylesheet]").count() == 1  # the app's own page, in its style
    assert_accessible(page, axe_path)


def test_a_500_is_the_styled_page_for_people_and_json_for_scripts(ddb, open_page, stack, axe_path, monkeypatch):
    """A view that raises: people get the app's error page (checked with axe in the browser), scripts get JSON."""
    app = make_app(PROPAGATE_EXCEPTIONS=False)
    store = app.extensions["store"]
    store.users.create(ADMIN_USERNAME, "a-password-for-the-500-test")

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(store.links, "list", broken)
    client = app.test_client()
    with client.session_transaction() as session:
        session["username"] = ADMIN_USERNAME
        session["sid"] = store.sessions.create(ADMIN_USERNAME, 3600)
    api = client.get("/", headers={"Accept": "application/json"})
    assert api.status_code == 500 and api.json == {"error": "Something went wrong on our side. Please try again."}
    html = client.get("/", headers={"Accept": "text/html"})
    assert html.status_code == 500 and html.mimetype == "text/html"
    body = html.get_data(as_text=True)
    assert "secret internals" not in body and 'rel="stylesheet"' in body

    # The page the app rendered, served from the stack's origin so that its stylesheet loads as usual.
    page = open_page()
    page.route(f"http://127.0.0.1:{stack.admin_port}/server-error",
               lambda route: route.fulfill(status=500, content_type="text/html; charset=utf-8", body=body))
    assert page.goto("/server-error").status == 500
    assert page.get_by_role("heading", name="Something went wrong").is_visible()
    assert page.get_by_text("Error 500").is_visible()
    assert_accessible(page, axe_path)


def test_the_redirects_404_page_has_no_serious_violation_and_a_main_landmark(open_page, stack, axe_path):
    page = open_page()
    response = page.goto(f"http://127.0.0.1:{stack.redirect_port}/no-such-link")
    assert response.status == 404
    assert_accessible(page, axe_path)
    assert page.locator("main").count() == 1, "the page has no main landmark"


# What has the focus, and whether it shows the app's ring (2px or more: Chromium's own is a faint 1px "auto").
FOCUS_STYLE = """() => {
    const e = document.activeElement, s = getComputedStyle(e);
    const label = e.labels && e.labels.length ? e.labels[0].innerText : "";
    return {tag: e.tagName, name: (label || e.innerText || e.value || e.getAttribute("aria-label") || "").trim(),
            outline: s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2, shadow: s.boxShadow !== "none"};
}"""


def tab_through(page, limit=80):
    """Each stop of the focus, from where the page put it until Tab leaves the page: its name and whether it shows."""
    stops = []
    stop = page.evaluate(FOCUS_STYLE)  # a field with autofocus has it already
    for _ in range(limit):
        if stop["tag"] != "BODY":
            stops.append(stop)
        page.keyboard.press("Tab")
        stop = page.evaluate(FOCUS_STYLE)
        if stop["tag"] == "BODY" and stops:
            break  # past the last control, focus goes to the browser's own interface
    return stops


@pytest.mark.parametrize("path, actions", [
    ("/", ["Skip to content", "New link", "API tokens", "Sign out", "Export CSV", "Details", "Disable"]),
    ("/links/new", ["Destination URL", "Custom slug", "Title", "Expiry date", "Create"]),
    ("/tokens", ["Name", "Scope", "Expires after", "Your password", "Create token"]),
])
def test_the_keyboard_reaches_the_main_actions_with_a_visible_focus(path, actions, open_page, admin_state):
    page = open_page(admin_state)
    page.goto(path)
    stops = tab_through(page)
    names = [stop["name"] for stop in stops]
    for action in actions:
        assert any(action.lower() in name.lower() for name in names), f"Tab never reached {action!r}: {names}"
    unseen = [stop["name"] for stop in stops if not (stop["outline"] or stop["shadow"])]
    assert unseen == [], f"no visible focus on {unseen}"
