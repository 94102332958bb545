"""The access rules in webapp/access.py: roles, permissions, scopes, and input checks."""
import pytest

from webapp import access


@pytest.mark.parametrize(
    ("role", "permission", "allowed"),
    [
        ("viewer", access.READ_LINKS, True),
        ("viewer", access.WRITE_LINKS, False),
        ("viewer", access.MANAGE_USERS, False),
        ("editor", access.WRITE_LINKS, True),
        ("editor", access.MANAGE_USERS, False),
        ("editor", access.MANAGE_ANY_TOKEN, False),
        ("admin", access.MANAGE_USERS, True),
        ("admin", access.MANAGE_ANY_TOKEN, True),
        (None, access.READ_LINKS, False),
        ("owner", access.READ_LINKS, False),
    ],
)
def test_role_allows(role, permission, allowed):
    assert access.role_allows(role, permission) is allowed


@pytest.mark.parametrize(
    ("scope", "role", "permission", "allowed"),
    [
        ("read", "admin", access.READ_LINKS, True),
        ("read", "admin", access.WRITE_LINKS, False),
        ("read", "admin", access.MANAGE_USERS, False),
        ("write", "viewer", access.WRITE_LINKS, False),  # a token never exceeds its owner's role
        ("write", "editor", access.WRITE_LINKS, True),
        ("write", "editor", access.MANAGE_USERS, False),
        ("admin", "admin", access.READ_LINKS, False),  # an unknown scope allows nothing
    ],
)
def test_scope_allows(scope, role, permission, allowed):
    assert access.scope_allows(scope, role, permission) is allowed


def test_missing_role_is_admin():
    assert access.role_of({}) == "admin"
    assert access.role_of({"role": "viewer"}) == "viewer"


@pytest.mark.parametrize("username", ["alice", "a.b-c_d@example.org", "x" * 64, "Z9"])
def test_good_usernames(username):
    assert access.check_username(username) == username


@pytest.mark.parametrize("username", ["", "a b", "user#1", "x" * 65, "ünï", None, "a/b"])
def test_bad_usernames(username):
    with pytest.raises(ValueError, match="letters, digits"):
        access.check_username(username)


@pytest.mark.parametrize(("scope", "role", "message"), [("write", "viewer", "only read"), ("all", "admin", "Choose one")])
def test_bad_scopes(scope, role, message):
    with pytest.raises(ValueError, match=message):
        access.check_scope(scope, role)


@pytest.mark.parametrize("days", [0, 367, -1, True, "30", 1.5])
def test_bad_token_days(days):
    with pytest.raises(ValueError, match="whole number"):
        access.check_token_days(days)
