"""One rule for each field, wherever it comes from (API or form): slug types, date-only expiries,
invisible characters in titles, and the password hash's cost."""
import ast
import unicodedata
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from tests.conftest import TABLE_NAME
from webapp import link_rules
from webapp.exceptions import InvalidTitle


@pytest.fixture
def headers(api_token):
    return {"Authorization": f"Bearer {api_token}"}


@pytest.mark.parametrize("slug", [False, True, 0, 1, 0.0, [], {}, ["launch"], {"slug": "launch"}], ids=repr)
def test_a_slug_that_is_not_text_is_422_not_a_random_id(client, headers, store, slug):
    response = client.post("/api/links", json={"url": "https://example.com/", "slug": slug}, headers=headers)
    assert response.status_code == 422
    assert response.json == {"error": "The custom slug must be text.", "field": "slug"}
    assert store.links.list(10)[0] == []  # nothing was created


@pytest.mark.parametrize("slug", [None, ""], ids=repr)
def test_a_null_or_empty_slug_means_a_random_id(client, headers, slug):
    response = client.post("/api/links", json={"url": "https://example.com/", "slug": slug}, headers=headers)
    assert response.status_code == 201 and len(response.json["short_id"]) == 7


# Every spelling of 1 January 2030 that ISO 8601 (and date.fromisoformat) allows without a time.
DATE_ONLY_SPELLINGS = ["2030-01-01", "20300101", "2030-W01-2", "2030W012", " 2030-01-01 "]
END_OF_DAY = "2030-01-01T23:59:59Z"


@pytest.mark.parametrize("value", DATE_ONLY_SPELLINGS)
def test_every_date_only_expiry_spelling_is_the_end_of_that_utc_day(client, headers, value):
    assert link_rules.parse_expiry(value) == END_OF_DAY
    response = client.post("/api/links", json={"url": "https://example.com/", "expires_at": value}, headers=headers)
    assert response.status_code == 201 and response.json["expires_at"] == END_OF_DAY


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2030-01-01T00:00:00Z", "2030-01-01T00:00:00Z"),
        ("20300101T000000Z", "2030-01-01T00:00:00Z"),
        ("2030-01-01T12:00", "2030-01-01T12:00:00Z"),
        ("2030-01-01T12:00:00+02:00", "2030-01-01T10:00:00Z"),
    ],
)
def test_an_expiry_with_a_time_is_that_instant(value, expected):
    assert link_rules.parse_expiry(value) == expected


@pytest.mark.parametrize("value", ["2030-01-01", "20300101"])
def test_the_form_reads_a_date_like_the_api(client, auth, store, value):
    auth.login()
    response = client.post("/links/new", data={"url": "https://example.com/", "slug": "dated", "expiry": "date",
                                                "expiry_date": value})
    assert response.status_code == 303
    assert store.links.get("dated")["expires_at"] == END_OF_DAY


def test_the_form_refuses_a_date_it_cannot_read(client, auth, store):
    auth.login()
    response = client.post("/links/new", data={"url": "https://example.com/", "slug": "dated", "expiry": "date",
                                                "expiry_date": "01/02/2030"})
    assert response.status_code == 422 and "Not a valid date value." in response.get_data(as_text=True)


# Invisible characters that change how a title reads: bidi isolates, the Arabic letter mark, the
# soft hyphen, plus the other bidi controls, zero-width characters and controls refused already.
INVISIBLE = ["\u2066", "\u2067", "\u2068", "\u2069", "\u061c", "\u00ad", "\u202e", "\u200b", "\u200d", "\u2060",
             "\ufeff", "\u180e", "\U000e0001", "\x00", "\x7f", "\x85", "\t", "\n", "\u2028", "\u00a0"]


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_titles_refuse_bidi_isolates_and_other_invisible_characters(client, headers, store, char):
    with pytest.raises(InvalidTitle, match="control characters"):
        link_rules.check_title(f"Pay{char}ment")
    response = client.post("/api/links", json={"url": "https://example.com/", "title": f"Pay{char}ment"},
                           headers=headers)
    assert response.status_code == 422 and response.json["field"] == "title"
    assert "bidi controls" in response.json["error"]


def test_titles_refuse_every_format_and_control_character():
    refused = [chr(c) for c in range(0x110000)
               if unicodedata.category(chr(c)) in ("Cc", "Cf")]
    assert len(refused) > 200
    for char in refused:
        with pytest.raises(InvalidTitle):
            link_rules.check_title(f"a{char}b")


@pytest.mark.parametrize("title", ["Launch post", "Café · 2030", "שלום עולם", "مرحبا", "😀 emoji", "日本語"])
def test_titles_keep_ordinary_text_in_any_script(title):
    assert link_rules.check_title(title) == title


def test_the_form_refuses_an_invisible_title_character(client, auth, store):
    auth.login()
    response = client.post("/links/new", data={"url": "https://example.com/", "slug": "bidi", "expiry": "never",
                                                "title": "evil\u2067txt.exe\u2069"})
    assert response.status_code == 422 and "bidi controls" in response.get_data(as_text=True)
    assert store.links.list(10)[0] == []


def _module_password_hash_method():
    """PASSWORD_HASH_METHOD as written in webapp/store/users.py (the suite patches the live value)."""
    from webapp.store import users

    tree = ast.parse(Path(users.__file__).read_text(encoding="utf-8"))
    (value,) = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
                and any(getattr(target, "id", None) == "PASSWORD_HASH_METHOD" for target in node.targets)]
    return value


def test_the_password_hash_method_is_owasps_scrypt_recommendation():
    assert _module_password_hash_method() == "scrypt:131072:8:1"  # N=2^17, r=8, p=1


def test_passwords_are_stored_at_that_cost_and_verify(store, ddb, monkeypatch):
    from webapp.store import users

    monkeypatch.setattr(users, "PASSWORD_HASH_METHOD", _module_password_hash_method())
    store.users.create("bob", "a-long-password")
    item = ddb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": "user#bob"}, "sk": {"S": "user"}})["Item"]
    assert item["password_hash"]["S"].startswith("scrypt:131072:8:1$")
    assert store.users.verify_password("bob", "a-long-password")
    assert not store.users.verify_password("bob", "a-wrong-password")


@pytest.mark.parametrize("method", ["scrypt:32768:8:1", "scrypt", "pbkdf2:sha256:600000"])
def test_hashes_made_before_the_new_cost_still_sign_in(client, ddb, store, method):
    ddb.put_item(TableName=TABLE_NAME, Item={
        "pk": {"S": "user#old"}, "sk": {"S": "user"}, "list_pk": {"S": "users"}, "list_sk": {"S": "old"},
        "username": {"S": "old"}, "role": {"S": "editor"},
        "password_hash": {"S": generate_password_hash("old-password", method=method)}})
    assert store.users.verify_password("old", "old-password")
    assert client.post("/login", data={"username": "old", "password": "old-password"}).status_code == 303
