"""A small OpenID Connect provider on 127.0.0.1, standing in for Cognito, Okta or Entra ID.

Used by the tests (which script who signs in and how tokens are tampered with) and, with
LOCAL_FAKE_OIDC=1, by `make run`, where its sign-in page asks for an email and groups.
It serves discovery, a key set, an authorization endpoint and a token endpoint that checks the
client secret, the redirect URI and the PKCE verifier, and issues RS256-signed ID tokens.
"""
import base64
import hashlib
import html
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

ID_TOKEN_SECONDS = 300
# Ways the tests ask for a bad ID token.
TAMPERINGS = {"payload", "foreign-key", "audience", "nonce", "expired", "issuer"}


class FakeOidcProvider:
    """The provider's state: its key, its one registered client, pending codes, and who signs in next."""

    def __init__(self, client_id, client_secret, redirect_uris, interactive=False):
        self.client_id, self.client_secret = client_id, client_secret
        self.redirect_uris = set(redirect_uris)
        self.interactive = interactive
        self.key = RSAKey.generate_key(2048, parameters={"kid": "fake-1"}, private=True)
        self.next_claims = {"email": "someone@example.org", "email_verified": True, "groups": []}
        self.tamper = None
        self.token_requests = []
        self._codes = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self):
        """Serve on a daemon thread; return self."""
        threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-oidc").start()
        return self

    def stop(self):
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def metadata(self):
        """The discovery document."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        }

    def authorize(self, params, claims):
        """A code for this authorization request, or an error message when the request is not acceptable."""
        if params.get("client_id") != self.client_id or params.get("redirect_uri") not in self.redirect_uris:
            return None, "unknown client or redirect_uri"
        if params.get("response_type") != "code" or params.get("code_challenge_method") != "S256":
            return None, "only the code flow with PKCE S256"
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {"params": params, "claims": claims, "issued": time.time()}
        return code, None

    def exchange(self, form, authorization):
        """(status, JSON body) for a token request."""
        self.token_requests.append(form)
        if authorization != "Basic " + base64.b64encode(
            f"{urllib.parse.quote(self.client_id, safe='')}:{urllib.parse.quote(self.client_secret, safe='')}".encode()
        ).decode():
            return 401, {"error": "invalid_client"}
        with self._lock:
            pending = self._codes.pop(form.get("code", ""), None)  # a code works once
        if pending is None or time.time() - pending["issued"] > 60:
            return 400, {"error": "invalid_grant"}
        params = pending["params"]
        challenge = base64.urlsafe_b64encode(hashlib.sha256(form.get("code_verifier", "").encode()).digest())
        if form.get("redirect_uri") != params["redirect_uri"] or challenge.rstrip(b"=").decode() != params["code_challenge"]:
            return 400, {"error": "invalid_grant"}
        return 200, {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": ID_TOKEN_SECONDS,
            "id_token": self._id_token(pending["claims"], params.get("nonce")),
        }

    def _id_token(self, claims, nonce):
        # sub defaults to the email, so one person keeps one subject; claims may name another.
        now = int(time.time())
        payload = {"iss": self.issuer, "sub": claims.get("email", "anon"), "aud": self.client_id,
                   "iat": now, "exp": now + ID_TOKEN_SECONDS, "nonce": nonce, **claims}
        key = self.key
        if self.tamper == "audience":
            payload["aud"] = "another-client"
        elif self.tamper == "nonce":
            payload["nonce"] = "replayed"
        elif self.tamper == "expired":
            payload["iat"], payload["exp"] = now - 3600, now - 1800
        elif self.tamper == "issuer":
            payload["iss"] = "http://127.0.0.1:1/evil"
        elif self.tamper == "foreign-key":
            key = RSAKey.generate_key(2048, parameters={"kid": "fake-1"}, private=True)
        token = jwt.encode({"alg": "RS256", "kid": "fake-1"}, payload, key)
        if self.tamper == "payload":
            # Swap in a payload with wider groups, keeping the original signature.
            header, _, signature = token.split(".")
            forged = {**payload, "groups": ["shortener-admins"]}
            body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
            token = f"{header}.{body}.{signature}"
        return token


def _handler_for(provider):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test and local-stack output readable
            pass

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            params = dict(urllib.parse.parse_qsl(url.query))
            if url.path == "/.well-known/openid-configuration":
                return self._json(200, provider.metadata())
            if url.path == "/jwks":
                return self._json(200, KeySet([provider.key]).as_dict(private=False))
            if url.path == "/authorize":
                if provider.interactive:
                    return self._sign_in_page(params)
                return self._redirect_with_code(params, dict(provider.next_claims))
            return self._json(404, {"error": "not_found"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(min(length, 65536)).decode()))
            path = urllib.parse.urlsplit(self.path).path
            if path == "/token":
                status, body = provider.exchange(form, self.headers.get("Authorization", ""))
                return self._json(status, body)
            if path == "/authorize" and provider.interactive:
                groups = [g.strip() for g in form.pop("groups", "").split(",") if g.strip()]
                claims = {"email": form.pop("email", ""), "email_verified": True, "groups": groups}
                subject = form.pop("sub", "").strip()
                if subject:  # another subject with the same email: the app must refuse it (issuer + sub binding)
                    claims["sub"] = subject
                return self._redirect_with_code(form, claims)
            return self._json(404, {"error": "not_found"})

        def _redirect_with_code(self, params, claims):
            code, error = provider.authorize(params, claims)
            if error:
                return self._json(400, {"error": "invalid_request", "error_description": error})
            query = urllib.parse.urlencode({"code": code, "state": params.get("state", "")})
            self.send_response(302)
            self.send_header("Location", f"{params['redirect_uri']}?{query}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _sign_in_page(self, params):
            hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in params.items())
            page = (
                "<!doctype html><title>Fake identity provider</title><h1>Fake identity provider (local only)</h1>"
                f'<form method="post" action="/authorize">{hidden}'
                '<p><label>Email <input name="email" value="editor@example.org"></label></p>'
                '<p><label>Groups (comma-separated) <input name="groups" value="shortener-editors"></label></p>'
                '<p><label>Subject (sub), empty for the default <input name="sub" value=""></label></p>'
                '<p><button type="submit">Sign in</button></p></form>'
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def _json(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
