"""The link rules in webapp/link_rules.py."""
from datetime import date, datetime, timezone

import pytest

from webapp import link_rules
from webapp.exceptions import InvalidExpiry, InvalidSlug, InvalidTitle

NOW = datetime(2026, 11, 27, 5, 35, 59, tzinfo=timezone.utc)


# Ids


def test_new_id_is_base62_of_the_requested_length():
    ids = {link_rules.new_id(7) for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 7 and set(i) <= set(link_rules.ID_ALPHABET) for i in ids)


def test_new_id_skips_reserved_words(monkeypatch):
    picks = iter("shorten" + "abcdefg")
    monkeypatch.setattr(link_rules.secrets, "choice", lambda alphabet: next(picks))
    assert link_rules.new_id(7) == "abcdefg"


# Slugs


@pytest.mark.parametrize("slug", ["abc", "Spring-Sale_2026", "a" * 64, "ABC", "x-y", "API2"])
def test_valid_slugs(slug):
    assert link_rules.check_slug(slug) == slug


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
        link_rules.check_slug(slug)


def test_slugs_are_case_sensitive_but_reserved_words_are_not():
    assert link_rules.check_slug("Hello") != link_rules.check_slug("hello")
    with pytest.raises(InvalidSlug, match="'LogOut' is reserved"):
        link_rules.check_slug("LogOut")


# Titles


@pytest.mark.parametrize(("title", "expected"), [(None, None), ("", None), ("  Spring sale  ", "Spring sale"), ("Grüße", "Grüße")])
def test_titles(title, expected):
    assert link_rules.check_title(title) == expected


@pytest.mark.parametrize(
    ("title", "message"),
    [("x" * 201, "at most 200"), ("a\nb", "line breaks"), ("a\x00b", "control characters"), (5, "must be text")],
)
def test_invalid_titles(title, message):
    with pytest.raises(InvalidTitle, match=message):
        link_rules.check_title(title)


# Expiry


def test_default_expiry_is_30_days_in_the_fixed_format():
    assert link_rules.default_expiry(NOW) == "2026-12-27T05:35:59Z"
    assert link_rules.parse_expiry(link_rules.MISSING, NOW) == "2026-12-27T05:35:59Z"


def test_never_expires():
    assert link_rules.parse_expiry(None, NOW) is None


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
    assert link_rules.parse_expiry(value, NOW) == expected


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
        link_rules.parse_expiry(value, NOW)


def test_expiry_from_date():
    assert link_rules.expiry_from_date(date(2027, 3, 1), NOW) == "2027-03-01T23:59:59Z"
    with pytest.raises(InvalidExpiry, match="in the future"):
        link_rules.expiry_from_date(date(2026, 11, 26), NOW)
    with pytest.raises(InvalidExpiry, match="Choose the expiry date"):
        link_rules.expiry_from_date(None, NOW)


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
    assert link_rules.link_status(link, NOW) == status
