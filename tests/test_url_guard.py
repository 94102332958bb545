"""The destination rule in webapp/url_guard.py: URLs normalised to ASCII, bad ones refused with the reason.

The loop guard's every spelling of a loopback or short-domain host is in tests/test_loop_guard.py.
"""
import pytest

from webapp import url_guard
from webapp.exceptions import InvalidUrl

SHORT = "https://sho.rt"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com", "https://example.com"),
        ("http://example.com/a/b?c=d#e", "http://example.com/a/b?c=d#e"),
        ("  https://example.com/  ", "https://example.com/"),
        ("HTTPS://Example.COM/Path", "https://example.com/Path"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
        ("https://münchen.de/straße?q=grüße#über", "https://xn--mnchen-3ya.de/stra%C3%9Fe?q=gr%C3%BC%C3%9Fe#%C3%BCber"),
        ("https://例え.テスト/パス", "https://xn--r8jz45g.xn--zckzah/%E3%83%91%E3%82%B9"),
        ("https://example.com/already%20encoded", "https://example.com/already%20encoded"),
        ("https://example.com/100%", "https://example.com/100%25"),
        ("https://example.com/a\"b<c>", "https://example.com/a%22b%3Cc%3E"),
        ("https://[2001:db8::1]:8080/x", "https://[2001:db8::1]:8080/x"),
        ("https://example.com/?a=1&b=2;c", "https://example.com/?a=1&b=2;c"),
    ],
)
def test_valid_urls_are_normalised_to_ascii(url, expected):
    result = url_guard.normalise_url(url, SHORT)
    assert result == expected
    assert result.isascii()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "Enter the destination URL"),
        ("   ", "Enter the destination URL"),
        (None, "Enter the destination URL"),
        ("ftp://example.com/file", "Only http and https"),
        ("javascript:alert(1)", "Only http and https"),
        ("data:text/html,<script>alert(1)</script>", "Only http and https"),
        ("mailto:a@example.com", "Only http and https"),
        ("example.com/path", "Only http and https"),
        ("//example.com/path", "Only http and https"),
        ("https://", "needs a host name"),
        ("https:///path", "needs a host name"),
        ("https://exa mple.com/", "spaces or control characters"),
        ("https://example.com/a b", "spaces or control characters"),
        ("https://example.com/\tx", "spaces or control characters"),
        ("https://example.com/\nx", "spaces or control characters"),
        ("https://example.com/\x00", "spaces or control characters"),
        ("https://example.com/\x7f", "spaces or control characters"),
        ("https://example.com/a\u2028b", "spaces or control characters"),
        ("https://example.com/a\u202eb", "spaces or control characters"),
        ("https://example.com/" + "a" * 2030, "at most 2048 characters"),
        ("https://example.com/" + "é" * 1000, "once encoded"),
        ("https://user:pw@example.com/", "user name or password"),
        ("https://trusted.example@evil.example/", "user name or password"),
        ("https://example.com:99999/", "malformed"),
        ("https://example.com:port/", "malformed"),
        ("https://exa<mple.com/", "invalid host name"),
        ("https://a..b/", "invalid host name"),
        ("https://sho.rt/abc", "loop"),
        ("http://sho.rt/abc", "loop"),
        ("https://SHO.RT./abc", "loop"),
        ("https://sho.rt:443/abc", "loop"),
    ],
)
def test_invalid_urls(url, message):
    with pytest.raises(InvalidUrl, match=message):
        url_guard.normalise_url(url, SHORT)


def test_url_length_limit_is_2048():
    base = "https://example.com/"
    assert url_guard.normalise_url(base + "a" * (2048 - len(base)), SHORT)
    with pytest.raises(InvalidUrl, match="at most 2048"):
        url_guard.normalise_url(base + "a" * (2049 - len(base)), SHORT)


def test_loop_check_respects_ports():
    """A local short domain on one port does not block other local services."""
    base = "http://127.0.0.1:8080"
    assert url_guard.normalise_url("http://127.0.0.1:5000/x", base) == "http://127.0.0.1:5000/x"
    with pytest.raises(InvalidUrl, match="loop"):
        url_guard.normalise_url("http://127.0.0.1:8080/x", base)


def test_idn_short_domain_loop_is_detected():
    with pytest.raises(InvalidUrl, match="loop"):
        url_guard.normalise_url("https://xn--bcher-kva.example/x", "https://bücher.example")
