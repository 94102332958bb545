"""The link rules in webapp/links.py."""
from datetime import date, datetime, timedelta, timezone

import pytest

from webapp import links
from webapp.exceptions import InvalidExpiry, InvalidSlug, InvalidTitle, InvalidUrl

NOW = datetime(2026, 11, 27, 5, 35, 59, tzinfo=timezone.utc)
SHORT = "https://sho.rt"


# Ids


def test_new_id_is_base62_of_the_requested_length():
    ids = {links.new_id(7) for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 7 and set(i) <= set(links.ID_ALPHABET) for i in ids)


def test_new_id_skips_reserved_words(monkeypatch):
    picks = iter("shorten" + "abcdefg")
    monkeypatch.setattr(links.secrets, "choice", lambda alphabet: next(picks))
    assert links.new_id(7) == "abcdefg"


# Slugs


@pytest.mark.parametrize("slug", ["abc", "Spring-Sale_2026", "a" * 64, "ABC", "x-y", "API2"])
def test_valid_slugs(slug):
    assert links.check_slug(slug) == slug


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("ab", "3 to 64 characters"),
        ("", "3 to 64 characters"),
        ("a" * 65, "3 to 64 characters"),
        ("has space", "may only use letters"),
        ("a/b", "may only use letters"),
        ("a.b", "may only use letters"),
        ("a#b", "may only use letters"),
        ("a?b", "may only use letters"),
        ("café", "may only use letters"),
        ("日本語", "may only use letters"),
        ("ab\u0663", "may only use letters"),  # Arabic-Indic digit: \d would accept it
        ("abc\n", "may only use letters"),
        ("api", "reserved"),
        ("Admin", "reserved"),
        ("LOGIN", "reserved"),
        ("static", "reserved"),
        ("shorten", "reserved"),
        ("health", "reserved"),
        ("links", "reserved"),
        (None, "must be text"),
        (123, "must be text"),
    ],
)
def test_invalid_slugs(slug, message):
    with pytest.raises(InvalidSlug, match=message):
        links.check_slug(slug)


def test_slugs_are_case_sensitive_but_reserved_words_are_not():
    assert links.check_slug("Hello") != links.check_slug("hello")
    with pytest.raises(InvalidSlug, match="'LogOut' is reserved"):
        links.check_slug("LogOut")


# Destinations


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
    result = links.normalise_url(url, SHORT)
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
        links.normalise_url(url, SHORT)


def test_url_length_limit_is_2048():
    base = "https://example.com/"
    assert links.normalise_url(base + "a" * (2048 - len(base)), SHORT)
    with pytest.raises(InvalidUrl, match="at most 2048"):
        links.normalise_url(base + "a" * (2049 - len(base)), SHORT)


def test_loop_check_respects_ports():
    """A local short domain on one port does not block other local services."""
    base = "http://127.0.0.1:8080"
    assert links.normalise_url("http://127.0.0.1:5000/x", base) == "http://127.0.0.1:5000/x"
    with pytest.raises(InvalidUrl, match="loop"):
        links.normalise_url("http://127.0.0.1:8080/x", base)


def test_idn_short_domain_loop_is_detected():
    with pytest.raises(InvalidUrl, match="loop"):
        links.normalise_url("https://xn--bcher-kva.example/x", "https://bücher.example")


# Titles


@pytest.mark.parametrize(("title", "expected"), [(None, None), ("", None), ("  Spring sale  ", "Spring sale"), ("Grüße", "Grüße")])
def test_titles(title, expected):
    assert links.check_title(title) == expected


@pytest.mark.parametrize(
    ("title", "message"),
    [("x" * 201, "at most 200"), ("a\nb", "line breaks"), ("a\x00b", "control characters"), (5, "must be text")],
)
def test_invalid_titles(title, message):
    with pytest.raises(InvalidTitle, match=message):
        links.check_title(title)


# Expiry


def test_default_expiry_is_30_days_in_the_fixed_format():
    assert links.default_expiry(NOW) == "2026-12-27T05:35:59Z"
    assert links.parse_expiry(links.MISSING, NOW) == "2026-12-27T05:35:59Z"


def test_never_expires():
    assert links.parse_expiry(None, NOW) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2027-01-02T03:04:05Z", "2027-01-02T03:04:05Z"),
        ("2027-01-02T03:04:05.999+00:00", "2027-01-02T03:04:05Z"),
        ("2027-01-02T05:04:05+02:00", "2027-01-02T03:04:05Z"),
        ("2027-01-02T03:04:05", "2027-01-02T03:04:05Z"),  # naive means UTC
        ("2027-01-02", "2027-01-02T23:59:59Z"),  # a date means the end of that day
        ("2026-11-27", "2026-11-27T23:59:59Z"),  # today still works until midnight
    ],
)
def test_expiry_strings(value, expected):
    assert links.parse_expiry(value, NOW) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-11-27T05:35:59Z", "in the future"),
        ("2020-01-01T00:00:00Z", "in the future"),
        ("2026-11-26", "in the future"),
        ("tomorrow", "not a valid ISO 8601"),
        ("2027-13-01T00:00:00Z", "not a valid ISO 8601"),
        ("", "not a valid ISO 8601"),
        (1893456000, "ISO 8601 date or date-time string"),
        (True, "ISO 8601 date or date-time string"),
    ],
)
def test_invalid_expiry(value, message):
    with pytest.raises(InvalidExpiry, match=message):
        links.parse_expiry(value, NOW)


def test_expiry_from_date():
    assert links.expiry_from_date(date(2027, 3, 1), NOW) == "2027-03-01T23:59:59Z"
    with pytest.raises(InvalidExpiry, match="in the future"):
        links.expiry_from_date(date(2026, 11, 26), NOW)
    with pytest.raises(InvalidExpiry, match="Choose the expiry date"):
        links.expiry_from_date(None, NOW)


def test_timestamps_are_fixed_width_utc():
    moment = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=timezone(timedelta(hours=-5)))
    assert links.format_timestamp(moment) == "2026-01-02T08:04:05Z"
    assert links.parse_timestamp("2026-01-02T08:04:05Z") == moment.replace(microsecond=0)


@pytest.mark.parametrize(
    ("link", "status"),
    [
        ({"is_active": True, "expires_at": None}, "active"),
        ({"is_active": True, "expires_at": "2026-11-27T05:36:00Z"}, "active"),
        ({"is_active": True, "expires_at": "2026-11-27T05:35:59Z"}, "expired"),
        ({"is_active": False, "expires_at": None}, "disabled"),
        ({"is_active": False, "expires_at": "2020-01-01T00:00:00Z"}, "disabled"),
    ],
)
def test_link_status(link, status):
    assert links.link_status(link, NOW) == status
