"""OpenID Connect sign-in (authorization code flow with PKCE): Authlib's pieces, no views.

Authlib builds the PKCE challenge and validates the ID token's claims; joserfc (Authlib's JOSE
library) checks its signature against the provider's published keys. The three HTTP calls
(discovery, keys, token) use urllib: the admin's Lambda package leaves out `requests`, which
Authlib's Flask client needs.
"""
import base64
import dataclasses
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from webapp import access

# Discovery and keys are re-read after this long, so a provider's key rotation is picked up.
METADATA_SECONDS = 3600
# Clock skew allowed when checking exp, iat and nbf.
LEEWAY_SECONDS = 60
# Asymmetric algorithms only: a symmetric one would let anyone holding the client secret mint tokens.
ALLOWED_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]
MAX_RESPONSE_BYTES = 256 * 1024
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# OpenID Connect Core 2: a subject identifier is at most 255 ASCII characters.
MAX_SUBJECT_LENGTH = 255


class OidcError(Exception):
    """The sign-in could not be completed; the message is safe to show."""


class OidcRefused(OidcError):
    """The provider's answer is valid, but not enough to let the person in (an unverified email, an unusable name)."""


@dataclasses.dataclass(frozen=True)
class Identity:
    """Whom a valid ID token names: the account name, the role the claims map to, and issuer + subject.

    role is None when no claim value maps to a role: the caller refuses the sign-in, and still knows
    which account (bound to this issuer + subject) the provider no longer lets in.
    """

    username: str
    role: str | None
    issuer: str
    subject: str


def init_app(app):
    """Create the provider client when SHORTENER_OIDC_ISSUER is set; refuse a half-configured one."""
    config = app.config
    app.extensions["oidc"] = None
    if not config.get("OIDC_ISSUER"):
        return
    secret = config.get("OIDC_CLIENT_SECRET")
    if not secret and config.get("OIDC_CLIENT_SECRET_PARAMETER"):
        from webapp.store import read_secure_parameter

        secret = read_secure_parameter(config["OIDC_CLIENT_SECRET_PARAMETER"])
    role_map = parse_role_map(config.get("OIDC_ROLE_MAP"))
    missing = [name for name, value in (("OIDC_CLIENT_ID", config.get("OIDC_CLIENT_ID")),
                                        ("OIDC_CLIENT_SECRET (or _PARAMETER)", secret),
                                        ("OIDC_ROLE_MAP", role_map)) if not value]
    if missing:
        raise RuntimeError("Single sign-on needs " + ", ".join(f"SHORTENER_{name}" for name in missing))
    app.extensions["oidc"] = Provider(
        issuer=str(config["OIDC_ISSUER"]),
        client_id=str(config["OIDC_CLIENT_ID"]),
        client_secret=str(secret),
        scopes=config["OIDC_SCOPES"],
        username_claim=config["OIDC_USERNAME_CLAIM"],
        role_claim=config["OIDC_ROLE_CLAIM"],
        role_map=role_map,
        timeout=float(config["OIDC_HTTP_TIMEOUT"]),
    )


def parse_role_map(value):
    """{"claim value": "role"} from a dict (JSON in the environment) or "a=admin,b=editor"; roles checked."""
    if not value:
        return {}
    if isinstance(value, str):
        pairs = [part.rsplit("=", 1) for part in value.split(",") if part.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise RuntimeError("SHORTENER_OIDC_ROLE_MAP: write it as group=role,group=role or as JSON")
        value = {group.strip(): role.strip() for group, role in pairs}
    for group, role in value.items():
        if role not in access.ROLES:
            raise RuntimeError(f"SHORTENER_OIDC_ROLE_MAP: {group!r} maps to {role!r}, not one of {access.ROLES}")
    return dict(value)


def new_request_state():
    """The per-attempt secrets kept in the signed session: state (CSRF), nonce (replay), PKCE verifier."""
    return {"state": generate_token(32), "nonce": generate_token(32), "verifier": generate_token(64)}


class Provider:
    """One OpenID Connect provider: discovery, keys, the authorization URL, the code exchange, the ID token."""

    def __init__(self, issuer, client_id, client_secret, scopes, username_claim, role_claim, role_map, timeout):
        self.issuer = issuer.rstrip("/")
        self.client_id, self.client_secret = client_id, client_secret
        self.scopes, self.timeout = scopes, timeout
        self.username_claim, self.role_claim, self.role_map = username_claim, role_claim, role_map
        self._lock = threading.Lock()
        self._metadata = self._keys = None
        self._fetched_at = 0.0

    def authorization_url(self, redirect_uri, request_state):
        """Where to send the browser to sign in."""
        return add_params_to_uri(
            self._discovery()["authorization_endpoint"],
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.scopes,
                "state": request_state["state"],
                "nonce": request_state["nonce"],
                "code_challenge": create_s256_code_challenge(request_state["verifier"]),
                "code_challenge_method": "S256",
            },
        )

    def identity(self, code, redirect_uri, request_state):
        """Exchange the code and return the Identity of a valid ID token; raise OidcError or OidcRefused."""
        tokens = self._post_token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": request_state["verifier"],
            }
        )
        if not isinstance(tokens.get("id_token"), str):
            raise OidcError("The identity provider sent no ID token.")
        claims = self.validate_id_token(tokens["id_token"], request_state["nonce"], tokens.get("access_token"))
        subject = claims["sub"]  # validate_id_token checked iss and that sub is present
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH:
            raise OidcError("The identity provider's ID token has no usable subject (sub).")
        return Identity(self._username(claims), self._role(claims), claims["iss"], subject)

    def validate_id_token(self, id_token, nonce, access_token=None):
        """The ID token's claims once its signature, issuer, audience, expiry and nonce all check out."""
        try:
            try:
                token = jwt.decode(id_token, self._key_set(), registry=JWSRegistry(algorithms=ALLOWED_ALGORITHMS))
            except JoseError:
                # Perhaps the provider rotated its keys since we read them: read them again once.
                token = jwt.decode(id_token, self._key_set(refresh=True), registry=JWSRegistry(algorithms=ALLOWED_ALGORITHMS))
            params = {"nonce": nonce, "client_id": self.client_id}
            if access_token:
                params["access_token"] = access_token
            options = {"iss": {"essential": True, "value": self._discovery()["issuer"]},
                       "aud": {"essential": True, "value": self.client_id}}
            claims = CodeIDToken(token.claims, token.header, options, params)
            claims.validate(leeway=LEEWAY_SECONDS)
        except (JoseError, ValueError) as err:
            raise OidcError("The identity provider's ID token did not validate.") from err
        return dict(claims)

    def _username(self, claims):
        """The account name: the configured claim; an email must be verified by the provider."""
        username = claims.get(self.username_claim)
        # Only JSON true counts: an absent, null, 0 or "false" (or even "true") email_verified is not
        # the provider saying it checked the address, and the address names the account.
        if self.username_claim == "email" and claims.get("email_verified") is not True:
            raise OidcRefused(
                "Your email address is not verified with the identity provider, so it cannot sign you in here. "
                "Verify it there, or ask an admin."
            )
        try:
            return access.check_username(username)
        except ValueError:
            raise OidcRefused(f"The identity provider's {self.username_claim!r} claim is not a usable user name.") from None

    def _role(self, claims):
        """The widest role any of the person's claim values maps to, or None when none maps."""
        values = claims.get(self.role_claim) or []
        if isinstance(values, str):
            values = [values]
        roles = {self.role_map[value] for value in values if isinstance(value, str) and value in self.role_map}
        for role in access.ROLES:  # ROLES is ordered from widest to narrowest
            if role in roles:
                return role
        return None

    def _discovery(self):
        with self._lock:
            if self._metadata is None or time.monotonic() - self._fetched_at > METADATA_SECONDS:
                metadata = self._get_json(self.issuer + "/.well-known/openid-configuration")
                # The discovery document must name the issuer we were configured with (OIDC Discovery 4.3).
                if metadata.get("issuer", "").rstrip("/") != self.issuer:
                    raise OidcError("The identity provider's discovery document names another issuer.")
                self._metadata, self._keys, self._fetched_at = metadata, None, time.monotonic()
            return self._metadata

    def _key_set(self, refresh=False):
        metadata = self._discovery()
        with self._lock:
            if self._keys is None or refresh:
                self._keys = KeySet.import_key_set(self._get_json(metadata["jwks_uri"]))
            return self._keys

    def _post_token(self, form):
        credentials = f"{urllib.parse.quote(self.client_id, safe='')}:{urllib.parse.quote(self.client_secret, safe='')}"
        request = urllib.request.Request(
            self._discovery()["token_endpoint"],
            data=urllib.parse.urlencode(form).encode("ascii"),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                # client_secret_basic (RFC 6749 2.3.1): id and secret form-encoded, then base64.
                "Authorization": "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii"),
            },
            method="POST",
        )
        return self._open_json(request)

    def _get_json(self, url):
        return self._open_json(urllib.request.Request(url, headers={"Accept": "application/json"}))

    def _open_json(self, request):
        parts = urllib.parse.urlsplit(request.full_url)
        # Plain http only on this machine (the local stack's and the tests' fake provider).
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS):
            raise OidcError("The identity provider gave a URL that is not https.")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - scheme checked above
                body = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as err:
            raise OidcError(f"The identity provider answered {err.code}.") from err
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            raise OidcError("The identity provider could not be reached.") from err
        if len(body) > MAX_RESPONSE_BYTES:
            raise OidcError("The identity provider's answer is too large.")
        try:
            data = json.loads(body)
        except ValueError as err:
            raise OidcError("The identity provider's answer is not JSON.") from err
        if not isinstance(data, dict):
            raise OidcError("The identity provider's answer is not a JSON object.")
        return data
