"""Single sign-on against a fake OpenID Connect provider on 127.0.0.1: sign-in, role mapping, refusals, tampering."""
import http.client
import urllib.parse

import boto3
import pytest

from local_stack.fake_oidc import TAMPERINGS, FakeOidcProvider
from tests.conftest import make_app

CLIENT_ID, CLIENT_SECRET = "shortener-admin", "fake-client-secret"
CALLBACK = "http://localhost/login/sso/callback"  # what url_for(..., _external=True) gives under the test client
ROLE_MAP = {"shortener-admins": "admin", "shortener-editors": "editor", "shortener-viewers": "viewer"}


@pytest.fixture(scope="module")
def provider():
    provider = FakeOidcProvider(CLIENT_ID, CLIENT_SECRET, [CALLBACK]).start()
    yield provider
    provider.stop()


@pytest.fixture
def sso_app(ddb, provider):
    provider.tamper = None
    return make_app(OIDC_ISSUER=provider.issuer, OIDC_CLIENT_ID=CLIENT_ID, OIDC_CLIENT_SECRET=CLIENT_SECRET,
                    OIDC_ROLE_MAP=ROLE_MAP, OIDC_PROVIDER_NAME="Example SSO")


@pytest.fixture
def sso_client(sso_app):
    return sso_app.test_client()


def _visit_provider(url):
    """The browser's trip to the provider: it answers with a redirect back to the app."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("GET", f"{parts.path}?{parts.query}")
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status == 302, response.status
    return response.getheader("Location")


def sso_sign_in(client, provider, email="ed@example.org", groups=("shortener-editors",), next_path="/tokens", **extra):
    """Walk the whole flow: app -> provider -> app callback. Return the callback's response."""
    provider.next_claims = {"email": email, "email_verified": True, "groups": list(groups), **extra}
    start = client.get("/login/sso", query_string={"next": next_path})
    assert start.status_code == 303
    back = urllib.parse.urlsplit(_visit_provider(start.headers["Location"]))
    return client.get(f"{back.path}?{back.query}", headers={"Accept": "text/html"})


def _signed_in_as(client):
    page = client.get("/", headers={"Accept": "text/html"})
    if page.status_code != 200:
        return None
    return page.get_data(as_text=True).split('<strong class="user">')[1].split("<")[0]


def test_the_sign_in_page_offers_sso(sso_client):
    page = sso_client.get("/login").get_data(as_text=True)
    assert "Sign in with Example SSO" in page
    assert "User name" in page  # local accounts stay, for break-glass access


def test_the_authorization_request_uses_pkce_state_and_nonce(sso_client):
    location = sso_client.get("/login/sso").headers["Location"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == CALLBACK and query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32 and query["code_challenge"]
    assert "openid" in query["scope"].split()


def test_sso_signs_in_with_the_mapped_role(sso_client, sso_app, provider):
    response = sso_sign_in(sso_client, provider, email="ed@example.org", groups=["shortener-editors", "unrelated"])
    assert response.status_code == 303 and response.headers["Location"] == "/tokens"
    assert _signed_in_as(sso_client) == "ed@example.org"
    assert sso_client.get("/links/new").status_code == 200


def test_sso_without_a_next_lands_on_the_dashboard(sso_client, sso_app, provider):
    response = sso_sign_in(sso_client, provider, next_path=None)
    assert response.status_code == 303 and response.headers["Location"] == "/dashboard"
    assert sso_client.get("/users").status_code == 403
    user = sso_app.extensions["store"].users.get("ed@example.org")
    assert user["role"] == "editor"
    assert provider.token_requests[-1]["code_verifier"]  # PKCE: the verifier went to the token endpoint


def test_the_widest_mapped_role_wins(sso_client, sso_app, provider):
    sso_sign_in(sso_client, provider, email="mixed@example.org", groups=["shortener-viewers", "shortener-admins"])
    assert sso_app.extensions["store"].users.get("mixed@example.org")["role"] == "admin"
    assert sso_client.get("/users").status_code == 200


def test_an_account_with_no_mapped_role_is_refused(sso_client, sso_app, provider):
    response = sso_sign_in(sso_client, provider, email="stranger@example.org", groups=["everyone"])
    assert response.status_code == 403
    assert "no role in this app" in response.get_data(as_text=True)
    assert _signed_in_as(sso_client) is None
    assert sso_app.extensions["store"].users.get("stranger@example.org") is None


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_a_tampered_id_token_is_refused(sso_client, sso_app, provider, tampering):
    provider.tamper = tampering
    response = sso_sign_in(sso_client, provider, email="mallory@example.org", groups=["shortener-viewers"])
    assert response.status_code == 401
    assert "Single sign-on failed" in response.get_data(as_text=True)
    assert _signed_in_as(sso_client) is None
    assert sso_app.extensions["store"].users.get("mallory@example.org") is None


def test_a_callback_with_another_state_is_refused(sso_client, provider):
    start = sso_client.get("/login/sso")
    back = urllib.parse.urlsplit(_visit_provider(start.headers["Location"]))
    query = dict(urllib.parse.parse_qsl(back.query), state="forged-state")
    response = sso_client.get(back.path, query_string=query, headers={"Accept": "text/html"})
    assert response.status_code == 400
    assert _signed_in_as(sso_client) is None


def test_a_callback_cannot_be_replayed(sso_client, sso_app, provider):
    provider.next_claims = {"email": "ed@example.org", "email_verified": True, "groups": ["shortener-editors"]}
    start = sso_client.get("/login/sso")
    back = urllib.parse.urlsplit(_visit_provider(start.headers["Location"]))
    assert sso_client.get(f"{back.path}?{back.query}").status_code == 303
    other = sso_app.test_client()
    assert other.get(f"{back.path}?{back.query}", headers={"Accept": "text/html"}).status_code == 400
    assert _signed_in_as(other) is None


def test_an_unverified_email_is_refused(sso_client, provider):
    provider.next_claims = {}
    response = sso_sign_in(sso_client, provider, email="unverified@example.org", email_verified=False)
    assert response.status_code == 403
    assert "not verified" in response.get_data(as_text=True)


def test_sso_cannot_take_over_a_local_account(sso_client, sso_app, provider):
    sso_app.extensions["store"].users.create("boss@example.org", "boss-password", role="viewer")
    response = sso_sign_in(sso_client, provider, email="boss@example.org", groups=["shortener-admins"])
    assert response.status_code == 403
    assert "local account already has this name" in response.get_data(as_text=True)
    assert sso_app.extensions["store"].users.get("boss@example.org")["role"] == "viewer"


def test_the_role_follows_the_provider_and_old_sessions_end(sso_app, provider):
    first, second = sso_app.test_client(), sso_app.test_client()
    sso_sign_in(first, provider, email="mover@example.org", groups=["shortener-editors"])
    assert _signed_in_as(first) == "mover@example.org"
    sso_sign_in(second, provider, email="mover@example.org", groups=["shortener-viewers"])
    assert sso_app.extensions["store"].users.get("mover@example.org")["role"] == "viewer"
    assert _signed_in_as(first) is None  # the role changed: the old session ended
    assert second.get("/links/new").status_code == 403


def test_a_disabled_sso_user_is_refused(sso_client, sso_app, provider):
    store = sso_app.extensions["store"]
    store.users.create("gone@example.org", role="editor", source="oidc")
    store.users.set_disabled("gone@example.org", True)
    response = sso_sign_in(sso_client, provider, email="gone@example.org", groups=["shortener-editors"])
    assert response.status_code == 403
    assert "disabled" in response.get_data(as_text=True)


def test_local_accounts_still_sign_in_when_sso_is_on(sso_client, sso_app):
    sso_app.extensions["store"].users.create("breakglass", "breakglass-password", role="admin")
    response = sso_client.post("/login", data={"username": "breakglass", "password": "breakglass-password"})
    assert response.status_code == 303


def test_the_client_secret_can_come_from_ssm(ddb, provider):
    boto3.client("ssm").put_parameter(Name="/shortener/oidc-secret", Value=CLIENT_SECRET, Type="SecureString")
    app = make_app(OIDC_ISSUER=provider.issuer, OIDC_CLIENT_ID=CLIENT_ID,
                   OIDC_CLIENT_SECRET_PARAMETER="/shortener/oidc-secret", OIDC_ROLE_MAP="shortener-editors=editor")
    provider.tamper = None
    client = app.test_client()
    assert sso_sign_in(client, provider, email="ssm@example.org").status_code == 303


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"OIDC_CLIENT_SECRET": "x", "OIDC_ROLE_MAP": {"g": "admin"}}, "SHORTENER_OIDC_CLIENT_ID"),
        ({"OIDC_CLIENT_ID": "x", "OIDC_ROLE_MAP": {"g": "admin"}}, "SHORTENER_OIDC_CLIENT_SECRET"),
        ({"OIDC_CLIENT_ID": "x", "OIDC_CLIENT_SECRET": "y"}, "SHORTENER_OIDC_ROLE_MAP"),
        ({"OIDC_CLIENT_ID": "x", "OIDC_CLIENT_SECRET": "y", "OIDC_ROLE_MAP": "g=owner"}, "not one of"),
    ],
)
def test_half_configured_sso_stops_start_up(ddb, settings, message):
    with pytest.raises(RuntimeError, match=message):
        make_app(OIDC_ISSUER="https://idp.example.org", **settings)


def test_an_unreachable_provider_is_a_503_not_a_crash(ddb):
    from local_stack.dynamodb import free_port

    app = make_app(OIDC_ISSUER=f"http://127.0.0.1:{free_port()}", OIDC_CLIENT_ID="x", OIDC_CLIENT_SECRET="y",
                   OIDC_ROLE_MAP={"g": "admin"}, OIDC_HTTP_TIMEOUT=2)
    response = app.test_client().get("/login/sso", headers={"Accept": "text/html"})
    assert response.status_code == 503
    assert "local account" in response.get_data(as_text=True)


@pytest.mark.parametrize("state", ["ünïcödé", "", "x" * 5000])
def test_callback_with_an_odd_state_is_a_400_not_a_crash(sso_client, state):
    sso_client.get("/login/sso")
    response = sso_client.get("/login/sso/callback", query_string={"state": state, "code": "c"},
                              headers={"Accept": "text/html"})
    assert response.status_code == 400
