"""The admin web app of the link shortener."""
import logging
import secrets
import sys
from pathlib import Path

from flask import Flask

# Templates live at the top level of the repo, not next to this package.
TEMPLATE_FOLDER = Path(__file__).resolve().parent.parent / "templates"
# The session cookie's name wherever it is Secure (outside local mode); local mode keeps Flask's "session".
HOST_SESSION_COOKIE = "__Host-session"


def create_app(test_config=None):
    """Create and configure the app: defaults, then SHORTENER_* env vars, then test_config."""
    app = Flask(__name__, template_folder=str(TEMPLATE_FOLDER))
    app.config.from_mapping(
        TABLE_NAME=None,
        SHORT_BASE_URL=None,
        LOCAL_MODE=False,
        CORS_ORIGINS=[],
        # Other host names that reach the short links (on AWS, the HTTP API's execute-api host when
        # no custom domain is set); links to them are refused because they would redirect in a loop.
        EXTRA_LOOP_HOSTS=[],
        SECRET_KEY_PARAMETER=None,
        DYNAMODB_ENDPOINT_URL=None,
        DEFAULT_EXPIRY_DAYS=30,
        ID_LENGTH=7,
        PAGE_SIZE=20,
        # Regions whose click counters are summed (a global table has one per replica); empty: this region.
        CLICK_REGIONS=[],
        STATS_DAYS=30,
        # The redirect's link cache (its LINK_CACHE_SECONDS, the stack's LinkCacheSeconds): how long an
        # edit may take to reach every redirect; the edit page says so.
        LINK_CACHE_SECONDS=10,
        MAX_CONTENT_LENGTH=64 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=True,
        PERMANENT_SESSION_LIFETIME=12 * 60 * 60,  # a session's absolute lifetime, enforced by its item
        SESSION_IDLE_SECONDS=60 * 60,  # a session unused this long ends
        SIGNIN_ACCOUNT_LIMIT=5,  # failed sign-ins per account per window
        SIGNIN_CLIENT_LIMIT=20,  # failed sign-ins per client address per window
        SIGNIN_WINDOW_SECONDS=15 * 60,
        LINK_CREATE_LIMIT=600,  # links each user may create per window (pages and API together)
        LINK_CREATE_TOKEN_LIMIT=300,  # links each API token may create per window
        LINK_CREATE_WINDOW_SECONDS=60 * 60,
        REPUTATION_URL=None,  # an https:// service asked about each new destination; off when unset
        REPUTATION_TIMEOUT_SECONDS=2,
        REPUTATION_ON_FAILURE="allow",  # or "refuse": what a failed or silent reputation service does
        TOKENS_PER_USER=20,  # unexpired API tokens one user may have
        SSO_TOKEN_MAX_DAYS=30,  # the longest life of a single sign-on user's token
        OIDC_ISSUER=None,  # single sign-on is on when this is set
        OIDC_CLIENT_ID=None,
        OIDC_CLIENT_SECRET=None,
        OIDC_CLIENT_SECRET_PARAMETER=None,  # or the secret from an SSM SecureString
        OIDC_SCOPES="openid email profile",
        OIDC_USERNAME_CLAIM="email",
        OIDC_ROLE_CLAIM="groups",
        OIDC_ROLE_MAP={},  # claim value -> role, as JSON or "group=role,group=role"
        OIDC_PROVIDER_NAME="single sign-on",
        OIDC_HTTP_TIMEOUT=5,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        AUDIT_RETENTION_DAYS=365,  # audit records are purged (TTL) this many days after; 0 keeps them
        SECURITY_CONTACT=None,  # /.well-known/security.txt's Contact URIs (webapp/well_known.py); unset: 404
        SECURITY_POLICY=None,
    )
    app.config.from_prefixed_env("SHORTENER")
    if test_config is not None:
        app.config.from_mapping(test_config)
    _finish_config(app)
    _configure_logging(app)

    from webapp import abuse, cli, headers, store, well_known
    from webapp.auth import oidc

    store.init_app(app)
    abuse.init_app(app)
    from webapp import import_runner

    import_runner.init_app(app)  # before CSRFProtect: its hook must see the import routes' larger body limit
    oidc.init_app(app)
    cli.init_app(app)
    headers.init_app(app)
    well_known.init_app(app)

    from flask_wtf.csrf import CSRFProtect

    csrf = CSRFProtect(app)

    from webapp.errors import bp as errors_bp

    app.register_blueprint(errors_bp)

    from webapp.auth import bp as auth_bp

    app.register_blueprint(auth_bp)

    from webapp.link_pages import bp as link_pages_bp

    app.register_blueprint(link_pages_bp)

    from webapp.user_pages import bp as user_pages_bp

    app.register_blueprint(user_pages_bp)

    from webapp.token_pages import bp as token_pages_bp

    app.register_blueprint(token_pages_bp)

    from webapp.audit_pages import bp as audit_bp

    app.register_blueprint(audit_bp)

    from webapp.blocklist_pages import bp as blocklist_pages_bp

    app.register_blueprint(blocklist_pages_bp)

    from webapp.dashboard import bp as dashboard_bp

    app.register_blueprint(dashboard_bp)

    from webapp.api import bp as api_bp

    # The API authenticates with bearer tokens, never cookies, so CSRF cannot apply.
    csrf.exempt(api_bp)
    app.register_blueprint(api_bp)

    @app.get("/health")
    def health():
        """Liveness check for load balancers and the local stack; no auth, no table access."""
        return {"status": "ok"}

    return app


def _finish_config(app):
    """Coerce env-provided values and refuse to start without the settings that matter."""
    config = app.config
    for name in ("CORS_ORIGINS", "CLICK_REGIONS", "EXTRA_LOOP_HOSTS"):
        value = config[name]
        if isinstance(value, str):  # these SHORTENER_* settings may be comma-separated lists
            config[name] = [v.strip() for v in value.split(",") if v.strip()]
    from webapp import url_guard
    from webapp.exceptions import InvalidUrl

    try:
        config["EXTRA_LOOP_HOSTS"] = sorted(url_guard.loop_hosts(config["EXTRA_LOOP_HOSTS"]))
    except InvalidUrl as err:
        raise RuntimeError(f"SHORTENER_EXTRA_LOOP_HOSTS: {err.message}") from None
    _check_idle_seconds(config)
    _check_stats_days(config)
    if config["LOCAL_MODE"]:
        config["SESSION_COOKIE_SECURE"] = False  # the local stack serves plain http
    if config["SESSION_COOKIE_SECURE"]:
        _use_host_cookie(app)
    elif not config["LOCAL_MODE"] and not config["TESTING"]:
        # The admin is served over https only: an insecure cookie there is a mistake, not a choice.
        raise RuntimeError("SHORTENER_SESSION_COOKIE_SECURE=false is for local mode only (SHORTENER_LOCAL_MODE=true)")
    if not config.get("SECRET_KEY") and config["SECRET_KEY_PARAMETER"]:
        from webapp.store import read_secure_parameter

        config["SECRET_KEY"] = read_secure_parameter(config["SECRET_KEY_PARAMETER"])
    if config.get("SECRET_KEY") is not None:
        config["SECRET_KEY"] = str(config["SECRET_KEY"])  # from_prefixed_env parses "123" as an int
    required = ["TABLE_NAME", "SHORT_BASE_URL"]
    if not config["LOCAL_MODE"]:
        required.append("SECRET_KEY")
    missing = [name for name in required if not config.get(name)]
    if missing and not config["TESTING"]:
        names = ", ".join(f"SHORTENER_{name}" for name in missing)
        raise RuntimeError(f"Missing settings: {names} (the secret key may come from SHORTENER_SECRET_KEY_PARAMETER)")
    if not config.get("SECRET_KEY") and config["LOCAL_MODE"]:
        # Random per process: local sessions end on restart, and there is no guessable default.
        config["SECRET_KEY"] = secrets.token_hex(32)


def _use_host_cookie(app):
    """Name the session cookie __Host-session: browsers keep such a cookie only if it is Secure, has
    Path=/ and no Domain, so no sibling subdomain or other path can set or shadow it. (Flask's cookie
    path is APPLICATION_ROOT, "/", even under Zappa's "/prod" stage, which lives in SCRIPT_NAME.)"""
    interface = app.session_interface
    if interface.get_cookie_domain(app) or interface.get_cookie_path(app) != "/":
        raise RuntimeError(
            "The session cookie is a __Host- cookie: leave SHORTENER_SESSION_COOKIE_DOMAIN unset and "
            "SHORTENER_SESSION_COOKIE_PATH (or SHORTENER_APPLICATION_ROOT) at /"
        )
    app.config["SESSION_COOKIE_NAME"] = HOST_SESSION_COOKIE


def _check_stats_days(config):
    """Refuse a default stats window the API's ?days= would refuse: "abc" would make every link page a
    500, and 0 would chart days under "Last 0 days"."""
    from webapp.api.routes import MAX_STATS_DAYS

    days = config["STATS_DAYS"]
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_STATS_DAYS:
        raise RuntimeError(f"SHORTENER_STATS_DAYS must be a whole number of days from 1 to {MAX_STATS_DAYS}.")


def _check_idle_seconds(config):
    """Refuse an idle timeout so short that it ends sessions between a reader's clicks."""
    from webapp.store.sessions import MIN_IDLE_SECONDS

    idle = config["SESSION_IDLE_SECONDS"]
    if isinstance(idle, bool) or not isinstance(idle, int) or idle < MIN_IDLE_SECONDS:
        raise RuntimeError(f"SHORTENER_SESSION_IDLE_SECONDS must be a whole number of seconds, at least {MIN_IDLE_SECONDS}.")


def _configure_logging(app):
    """Send the app's logs to stdout, which Lambda forwards to CloudWatch."""
    if not any(getattr(h, "_shortener_stdout", False) for h in app.logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        handler._shortener_stdout = True
        app.logger.addHandler(handler)
    from flask.logging import default_handler

    app.logger.removeHandler(default_handler)
    app.logger.setLevel(logging.DEBUG if app.debug else logging.INFO)
