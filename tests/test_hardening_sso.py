"""Single sign-on, hardened (issue 15): leavers lose their access, only verified emails, accounts bound to
issuer + subject, no forged log lines, and an audit record for each outcome."""
import json
import logging
import urllib.parse

import pytest

from tests.test_oidc import (  # noqa: F401 - provider, sso_app and sso_client are fixtures
    _signed_in_as,
    _visit_provider,
    provider,
    sso_app,
    sso_client,
    sso_sign_in,
)
from webapp.exceptions import IdentityMismatch

EMAIL = "leaver@example.org"


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def _sign_in_with_claims(client, provider, claims):
    """The whole flow with exactly these claims (sso_sign_in always adds email_verified)."""
    provider.next_claims = claims
    start = client.get("/login/sso")
    back = urllib.parse.urlsplit(_visit_provider(start.headers["Location"]))
    return client.get(f"{back.path}?{back.query}", headers={"Accept": "text/html"})


def _audit_events(caplog):
    """The audit records logged so far, as dicts."""
    events = [json.loads(r.getMessage().removeprefix("audit ")) for r in caplog.records if r.getMessage().startswith("audit ")]
    return [{**event, **event.pop("details", {})} for event in events]  # details flattened beside the fields


# Defect 3: removing someone from every group ends their access.


def test_a_leaver_loses_their_session_and_tokens_at_their_next_sso_attempt(sso_app, provider):
    store = sso_app.extensions["store"]
    browser, later = sso_app.test_client(), sso_app.test_client()
    assert sso_sign_in(browser, provider, email=EMAIL, groups=["shortener-editors"]).status_code == 303
    token, _ = store.tokens.create(EMAIL, "laptop")
    assert browser.get("/links/new").status_code == 200
    assert browser.get("/api/links", headers=_bearer(token)).status_code == 200

    refused = sso_sign_in(later, provider, email=EMAIL, groups=["everyone"])  # removed from every mapped group

    assert refused.status_code == 403 and "no role in this app" in refused.get_data(as_text=True)
    assert _signed_in_as(browser) is None
    assert browser.get("/api/links", headers=_bearer(token)).status_code == 401
    assert store.users.get(EMAIL)["disabled"] is True
    assert store.tokens.list(EMAIL) == []
    # Back in a group: SSO enables the account it disabled, but the old session and token stay dead.
    assert sso_sign_in(later, provider, email=EMAIL, groups=["shortener-viewers"]).status_code == 303
    assert store.users.get(EMAIL) | {"created_at": None} == {
        "username": EMAIL, "role": "viewer", "disabled": False, "created_at": None}
    assert _signed_in_as(later) == EMAIL
    assert _signed_in_as(browser) is None
    assert browser.get("/api/links", headers=_bearer(token)).status_code == 401


def test_sso_never_enables_an_account_an_admin_disabled(sso_app, provider):
    store = sso_app.extensions["store"]
    client = sso_app.test_client()
    sso_sign_in(client, provider, email=EMAIL, groups=["shortener-editors"])
    store.users.set_disabled(EMAIL, True)
    response = sso_sign_in(client, provider, email=EMAIL, groups=["shortener-editors"])
    assert response.status_code == 403 and "disabled" in response.get_data(as_text=True)
    assert store.users.get(EMAIL)["disabled"] is True


def test_an_admins_disable_after_an_sso_disable_is_the_admins(sso_app, provider):
    store = sso_app.extensions["store"]
    client = sso_app.test_client()
    sso_sign_in(client, provider, email=EMAIL, groups=["shortener-editors"])
    sso_sign_in(client, provider, email=EMAIL, groups=[])  # SSO disables
    store.users.set_disabled(EMAIL, False)  # an admin enables,
    store.users.set_disabled(EMAIL, True)  # then disables for their own reasons
    response = sso_sign_in(client, provider, email=EMAIL, groups=["shortener-editors"])
    assert response.status_code == 403
    assert store.users.get(EMAIL)["disabled"] is True


def test_a_refusal_with_no_role_leaves_a_local_account_alone(sso_app, provider):
    store = sso_app.extensions["store"]
    store.users.create("boss@example.org", "boss-password", role="admin")
    token, _ = store.tokens.create("boss@example.org", "laptop")
    response = sso_sign_in(sso_app.test_client(), provider, email="boss@example.org", groups=[])
    assert response.status_code == 403
    assert store.users.get("boss@example.org")["disabled"] is False
    assert sso_app.test_client().get("/api/links", headers=_bearer(token)).status_code == 200


def test_someone_else_with_the_same_email_cannot_disable_an_account(sso_app, provider):
    store = sso_app.extensions["store"]
    owner, other = sso_app.test_client(), sso_app.test_client()
    sso_sign_in(owner, provider, email=EMAIL, groups=["shortener-editors"], sub="owner-sub")
    response = sso_sign_in(other, provider, email=EMAIL, groups=[], sub="other-sub")
    assert response.status_code == 403
    assert store.users.get(EMAIL)["disabled"] is False
    assert _signed_in_as(owner) == EMAIL


# Defect 4: only a verified email (JSON true) names an account.


@pytest.mark.parametrize("verified", ["absent", None, 0, 1, False, "false", "true", "yes", [True], {}])
def test_an_email_not_verified_as_json_true_is_refused(sso_app, provider, verified):
    claims = {"email": "new@example.org", "groups": ["shortener-admins"]}
    if verified != "absent":
        claims["email_verified"] = verified
    client = sso_app.test_client()
    response = _sign_in_with_claims(client, provider, claims)
    assert response.status_code == 403
    assert "Your email address is not verified with the identity provider" in response.get_data(as_text=True)
    assert _signed_in_as(client) is None
    assert sso_app.extensions["store"].users.get("new@example.org") is None


def test_an_email_verified_as_json_true_signs_in(sso_app, provider):
    claims = {"email": "new@example.org", "email_verified": True, "groups": ["shortener-viewers"]}
    assert _sign_in_with_claims(sso_app.test_client(), provider, claims).status_code == 303


# Defect 5: an account belongs to one issuer + subject, not to an email.


def test_a_second_subject_with_the_same_email_gets_neither_the_account_nor_its_tokens(sso_app, provider):
    store = sso_app.extensions["store"]
    first, second = sso_app.test_client(), sso_app.test_client()
    assert sso_sign_in(first, provider, email=EMAIL, groups=["shortener-admins"], sub="first-sub").status_code == 303
    token, _ = store.tokens.create(EMAIL, "first's token")

    response = sso_sign_in(second, provider, email=EMAIL, groups=["shortener-admins"], sub="second-sub")

    assert response.status_code == 403
    assert "belongs to another identity" in response.get_data(as_text=True)
    assert _signed_in_as(second) is None
    assert second.get("/tokens", headers={"Accept": "text/html"}).status_code == 303  # to the sign-in page
    assert second.get("/api/tokens").status_code == 401
    assert [t["name"] for t in store.tokens.list(EMAIL)] == ["first's token"]
    assert _signed_in_as(first) == EMAIL  # the owner keeps the account, sessions and tokens
    assert first.get("/api/links", headers=_bearer(token)).status_code == 200
    assert sso_sign_in(first, provider, email=EMAIL, groups=["shortener-admins"], sub="first-sub").status_code == 303


def test_an_account_made_before_binding_is_bound_at_its_next_sign_in(sso_app, provider):
    store = sso_app.extensions["store"]
    store.users.create(EMAIL, role="editor", source="oidc")  # as sign-ins made it before issuer + sub were stored
    assert sso_sign_in(sso_app.test_client(), provider, email=EMAIL, sub="the-sub").status_code == 303
    assert sso_sign_in(sso_app.test_client(), provider, email=EMAIL, sub="another-sub").status_code == 403
    assert sso_sign_in(sso_app.test_client(), provider, email=EMAIL, sub="the-sub").status_code == 303


def test_the_binding_is_issuer_and_subject(store):
    store.users.upsert_sso(EMAIL, "editor", "https://idp.example.org", "same-sub")
    assert store.users.upsert_sso(EMAIL, "editor", "https://idp.example.org", "same-sub")["role"] == "editor"
    with pytest.raises(IdentityMismatch):
        store.users.upsert_sso(EMAIL, "editor", "https://other-idp.example.org", "same-sub")
    with pytest.raises(IdentityMismatch):
        store.users.disable_sso(EMAIL, "https://other-idp.example.org", "same-sub")
    assert store.users.get(EMAIL)["disabled"] is False


# Defect 8: nothing in the request can forge a log line.


@pytest.mark.parametrize("error", ["access_denied\nuser signed in: admin", "x\r\nuser signed in: admin", "\u2028user signed in: admin"])
def test_log_injection_through_the_provider_error(sso_client, caplog, error):
    start = sso_client.get("/login/sso")
    state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(start.headers["Location"]).query))["state"]
    with caplog.at_level(logging.DEBUG, logger="webapp"):
        response = sso_client.get("/login/sso/callback", query_string={"state": state, "error": error},
                                  headers={"Accept": "text/html"})
    assert response.status_code == 401
    assert not [line for line in caplog.text.splitlines() if line.startswith("user signed in")]
    assert all("\n" not in r.getMessage() and "\r" not in r.getMessage() for r in caplog.records)
    events = _audit_events(caplog)
    assert [(e["action"], e["outcome"], e["via"], e["error"]) for e in events] == [("signin.failed", "refused", "sso", error)]


# Every SSO outcome leaves an audit record.


def test_every_sso_outcome_is_audited(sso_app, provider, caplog):
    with caplog.at_level(logging.INFO, logger="webapp"):
        sso_sign_in(sso_app.test_client(), provider, email=EMAIL, groups=["shortener-editors"], sub="owner-sub")
        sso_sign_in(sso_app.test_client(), provider, email=EMAIL, groups=["shortener-editors"], sub="other-sub")
        sso_sign_in(sso_app.test_client(), provider, email=EMAIL, groups=[], sub="owner-sub")
        sso_sign_in(sso_app.test_client(), provider, email=EMAIL, groups=["shortener-editors"], email_verified="true")
    events = _audit_events(caplog)
    assert [(e["action"], e["outcome"], e.get("reason"), e["target"], e["via"]) for e in events[:4]] == [
        ("signin.ok", "ok", None, EMAIL, "sso"),
        ("signin.failed", "refused", "identity mismatch", EMAIL, "sso"),
        ("user.disable", "ok", "no mapped role", EMAIL, "sso"),
        ("signin.failed", "refused", "no mapped role", EMAIL, "sso"),
    ]
    assert events[1]["subject"] == "other-sub" and events[2]["tokens_revoked"] == 0
    unverified = events[4]
    assert (unverified["action"], unverified["outcome"], unverified["via"]) == ("signin.failed", "refused", "sso")
    assert "not verified" in unverified["reason"] and len(events) == 5
