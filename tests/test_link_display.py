"""How the list and a link's page show links: compact short links, one-line destinations, Unicode
host names where safe, and counts for people. (Display only: the stored URL never changes.)"""
import re

import pytest

from tests.conftest import ADMIN_USERNAME, put_counter
from webapp.link_pages import filters

IDN_URL = "https://xn--bcher-kva.example/stra%C3%9Fe"


def _create(store, slug, url="https://example.com/", **kwargs):
    return store.links.create(url, slug=slug, created_by=ADMIN_USERNAME, **kwargs)


def _row(html, slug):
    """The list's table row of one link."""
    match = re.search(rf'<tr class="status-\w+">(?:(?!</tr>).)*?data-copy="https://sho\.rt/{slug}".*?</tr>', html, re.S)
    assert match, f"no row for {slug}"
    return match.group(0)


@pytest.mark.parametrize("path", ["/", "/links/abc1234"])
def test_the_short_link_shows_as_host_and_slug_and_copies_the_full_url(client, auth, store, path):
    _create(store, "abc1234")
    auth.login()
    html = client.get(path).get_data(as_text=True)
    assert re.search(r'<a href="https://sho\.rt/abc1234" class="short"[^>]*>sho\.rt/abc1234</a>', html)
    assert 'data-copy="https://sho.rt/abc1234"' in html
    assert ">https://sho.rt/abc1234<" not in html


def test_a_long_destination_is_one_line_with_the_full_url_on_hover_and_on_its_page(client, auth, store):
    url = "https://example.com/" + "/".join(["a-rather-long-path-segment"] * 7)  # ~200 characters
    _create(store, "long", url=url)
    auth.login()
    row = _row(client.get("/").get_data(as_text=True), "long")
    assert f'class="url" title="{url}">{url}</a>' in row
    assert ".destination .url { display: block; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;" in (
        client.get("/static/app.css").get_data(as_text=True)
    )
    assert f">{url}</a>" in client.get("/links/long").get_data(as_text=True)


def test_an_international_host_shows_in_unicode_while_links_keep_punycode(client, auth, store):
    _create(store, "idn", url=IDN_URL)
    auth.login()
    row = _row(client.get("/").get_data(as_text=True), "idn")
    assert f'<a href="{IDN_URL}"' in row
    assert f'title="{IDN_URL}">https://bücher.example/stra%C3%9Fe</a>' in row
    detail = client.get("/links/idn").get_data(as_text=True)
    assert f'<a href="{IDN_URL}" rel="noopener noreferrer" target="_blank" class="url">https://bücher.example/stra%C3%9Fe</a>' in detail
    assert f"Stored and redirected as <code>{IDN_URL}</code>" in detail
    assert store.links.get("idn")["url"] == IDN_URL


def test_an_international_short_domain_shows_in_unicode_and_copies_punycode(ddb):
    from tests.conftest import make_app

    app = make_app(SHORT_BASE_URL="https://xn--sh-rt-kua.example")
    app.extensions["store"].users.create(ADMIN_USERNAME, "a-long-test-password")
    _create(app.extensions["store"], "abc1234")
    client = app.test_client()
    client.post("/login", data={"username": ADMIN_USERNAME, "password": "a-long-test-password"})
    html = client.get("/").get_data(as_text=True)
    assert '<a href="https://xn--sh-rt-kua.example/abc1234" class="short"' in html
    assert ">shö-rt.example/abc1234</a>" in html
    assert 'data-copy="https://xn--sh-rt-kua.example/abc1234"' in html


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (IDN_URL, "https://bücher.example/stra%C3%9Fe"),
        ("https://www.xn--mnchen-3ya.de:8443/?q=1#x", "https://www.münchen.de:8443/?q=1#x"),
        ("https://xn--r8jz45g.xn--zckzah/", "https://例え.テスト/"),  # Han, Hiragana and Katakana: Japanese
        ("https://xn--bj0bj06e.xn--3e0b707e/", "https://한글.한국/"),
        ("https://xn--80ak6aa92e.xn--p1ai/", "https://аррӏе.рф/"),  # one script only
        ("https://example.com/xn--bcher-kva", "https://example.com/xn--bcher-kva"),  # a path, not a host
        ("https://[::1]:8080/", "https://[::1]:8080/"),
        ("not a url", "not a url"),
    ],
)
def test_display_url(url, shown):
    assert filters.display_url(url) == shown


@pytest.mark.parametrize(
    "host",
    [
        "xn--pple-43d.com",  # Cyrillic "а" among Latin letters: the classic look-alike of apple.com
        "xn--ic-mlc8b.com",  # Cyrillic and Latin again (ерic)
        "www.xn--pple-43d.com",
        "xn--ls8h.la",  # an emoji: not a letter
        "xn--a-5xp.ru",  # a symbol beside a letter (a★)
    ],
)
def test_a_host_that_could_pass_for_another_stays_punycode(host):
    assert filters.display_host(host) == host
    assert filters.display_url(f"https://{host}/x") == f"https://{host}/x"


def test_a_look_alike_host_stays_punycode_in_the_list_and_on_its_page(client, auth, store):
    url = "https://xn--pple-43d.com/login"  # "аpple.com" with a Cyrillic "а"
    _create(store, "spoof", url=url)
    auth.login()
    assert f'title="{url}">{url}</a>' in _row(client.get("/").get_data(as_text=True), "spoof")
    detail = client.get("/links/spoof").get_data(as_text=True)
    assert f'class="url">{url}</a>' in detail
    assert "аpple" not in detail


@pytest.mark.parametrize(
    "host",
    [
        "xn--",  # empty label
        "xn--zz-.example",  # does not round-trip
        "xn--a.example",  # invalid punycode
        "xn--" + "a" * 70 + ".example",  # label too long
        "ok.xn--bcher-kva.xn--.example",  # one bad label keeps the whole host as stored
    ],
)
def test_a_host_that_fails_to_decode_is_shown_as_stored(host):
    assert filters.display_host(host) == host


def test_a_host_that_fails_to_decode_is_shown_as_stored_in_the_list(client, auth, store):
    url = "https://xn--zz-.example/"
    _create(store, "bad", url=url)
    auth.login()
    row = _row(client.get("/").get_data(as_text=True), "bad")
    assert f'title="{url}">{url}</a>' in row


@pytest.mark.parametrize(
    ("url", "shown"),
    [("https://sho.rt/abc1234", "sho.rt/abc1234"), ("http://127.0.0.1:8080/prod/abc", "127.0.0.1:8080/prod/abc")],
)
def test_compact_url(url, shown):
    assert filters.compact_url(url) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0"), (999, "999"), (12345, "12,345"), (1234567, "1,234,567"), (None, ""), ("n/a", "n/a")],
)
def test_thousands(value, shown):
    assert filters.thousands(value) == shown


def test_counts_are_formatted_for_people(client, auth, store, ddb):
    _create(store, "big")
    put_counter(ddb, "big", 12345, bots=2345)
    auth.login()
    row = _row(client.get("/").get_data(as_text=True), "big")
    assert re.search(r'data-label="Clicks"[^>]*><div>12,345</div>', row)
    detail = client.get("/links/big").get_data(as_text=True)
    assert "<dd>12,345 <span class=\"muted\">(+ 2,345 from bots)</span></dd>" in detail


def test_markup_in_a_title_or_url_is_shown_as_text(client, auth, store):
    # Written to the store directly, past the URL check, as a hostile import or old data might be.
    url = 'https://xn--bcher-kva.example/"><script>alert(1)</script>'
    _create(store, "xss", url=url, title="<img src=x onerror=alert(2)>")
    auth.login()
    for path in ("/", "/links/xss"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert(1)" not in html
        assert "<img src=x" not in html
        assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&lt;img src=x onerror=alert(2)&gt;" in html
