"""Views of the auth blueprint."""
import hmac

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for

from webapp import audit
from webapp.auth import bp, mfa, oidc
from webapp.auth.forms import LoginForm, PasswordForm
from webapp.auth.session import landing, login_required, sign_in, sign_out
from webapp.client_address import client_address
from webapp.exceptions import AccountConflict, IdentityMismatch
from webapp.store import get_store
from webapp.store.sessions import session_digest as session_digest_of
from webapp.store.signin import client_digest

# The one answer to a wrong user name, a wrong password, and a disabled account.
WRONG_PASSWORD = "Wrong user name or password."


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the sign-in form and sign the user in, within the failed-attempt limits."""
    target = landing(request.args.get("next"))
    if g.user is not None:
        return redirect(target, 303)
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form), 422 if form.errors else 200
    username = form.username.data
    client = _client_subject()
    locked = _reserve_attempt(username, client)
    if locked:
        audit.record("signin.locked", target=username, outcome="refused", limit=locked)
        minutes = -(-get_store().sign_ins.retry_after(current_app.config["SIGNIN_WINDOW_SECONDS"]) // 60)
        form.password.errors.append(
            f"Too many failed sign-in attempts {locked}. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
        )
        return render_template("auth/login.html", form=form), 429, {"Retry-After": str(minutes * 60)}
    user = get_store().users.authenticate(username, form.password.data)
    if user is None or user["disabled"]:
        # A disabled account answers exactly like a wrong password, and its attempt counts as a failure,
        # so neither the answer nor the lockout tells whether the password was right.
        action = "signin.disabled" if user else "signin.failed"
        audit.record(action, target=username, outcome="refused" if user else "failed")
        form.password.errors.append(WRONG_PASSWORD)
        return render_template("auth/login.html", form=form), 422
    # Here the password is right and the account enabled.
    _forget_attempts(username, client)
    if mfa.needs_second_step(user):
        return mfa.begin(username, target)  # no session until the second factor (webapp/auth/mfa.py)
    sign_in(username)
    audit.record("signin.ok", target=username, actor=username)
    return redirect(target, 303)


def _client_subject():
    """The client's counter subject: a keyed hash of its address, never the address itself."""
    return client_digest(client_address(request.environ), current_app.config["SECRET_KEY"])


def _reserve_attempt(username, client):
    """Count this attempt; say which limit locks it out ("for this account" / "from your network"), or None."""
    config, store = current_app.config, get_store()
    window = config["SIGNIN_WINDOW_SECONDS"]
    if not store.sign_ins.reserve(f"client#{client}", config["SIGNIN_CLIENT_LIMIT"], window):
        return "from your network"
    if not store.sign_ins.reserve(f"account#{username}", config["SIGNIN_ACCOUNT_LIMIT"], window):
        return "for this account"
    return None


def _forget_attempts(username, client):
    """A right password: clear the account's failures and give back the client's reserved attempt."""
    store, window = get_store(), current_app.config["SIGNIN_WINDOW_SECONDS"]
    store.sign_ins.clear(f"account#{username}", window)
    store.sign_ins.release(f"client#{client}", window)


# The provider's error parameter is recorded up to this length: enough for any OAuth error code.
MAX_RECORDED_ERROR = 200
NO_ROLE_MESSAGE = "Your account has no role in this app. Ask an admin to add you to one of its groups."
IDENTITY_MISMATCH_MESSAGE = (
    "This account belongs to another identity at the identity provider, so single sign-on cannot use it. Ask an admin."
)


@bp.get("/login/sso")
def sso_start():
    """Send the browser to the identity provider, remembering state, nonce, PKCE verifier and next."""
    provider = current_app.extensions["oidc"]
    if provider is None:
        abort(404)
    pending = oidc.new_request_state()
    pending["next"] = landing(request.args.get("next"))
    session["oidc"] = pending
    try:
        url = provider.authorization_url(url_for("auth.sso_callback", _external=True), pending)
    except oidc.OidcError as err:
        current_app.logger.error("sso unavailable: %r", err.args[0], exc_info=err.__cause__)
        abort(503, "Single sign-on is unavailable right now. Try again, or sign in with a local account.")
    return redirect(url, 303)


@bp.get("/login/sso/callback")
def sso_callback():
    """Finish single sign-on: check state, exchange the code, validate the ID token, check the binding, map the role, sign in."""
    provider = current_app.extensions["oidc"]
    if provider is None:
        abort(404)
    pending = session.pop("oidc", None)
    state = request.args.get("state", "").encode("utf-8")
    if not pending or not hmac.compare_digest(state, pending["state"].encode("utf-8")):
        abort(400, "This sign-in was not started here, or it was already used. Start again from the sign-in page.")
    if "code" not in request.args:
        # Anyone can write this query string: its error is recorded as a JSON value, never spliced into a log line.
        error = request.args.get("error", "")[:MAX_RECORDED_ERROR]
        return _sso_refused("The identity provider did not sign you in.", 401, reason="provider error", error=error)
    try:
        identity = provider.identity(request.args["code"], url_for("auth.sso_callback", _external=True), pending)
    except oidc.OidcRefused as err:
        return _sso_refused(err.args[0], 403, reason=err.args[0])
    except oidc.OidcError as err:
        current_app.logger.warning("sso sign-in failed: %r", err.args[0], exc_info=err.__cause__)
        return _sso_refused("Single sign-on failed. Try again, or ask an admin.", 401, reason=err.args[0], outcome="failed")
    username = identity.username
    try:
        if identity.role is None:
            _end_sso_access(identity)
            return _sso_refused(NO_ROLE_MESSAGE, 403, username, reason="no mapped role")
        user = get_store().users.upsert_sso(username, identity.role, identity.issuer, identity.subject)
    except AccountConflict:
        return _sso_refused("A local account already has this name, so single sign-on cannot use it. Ask an admin.", 403,
                            username, reason="local account")
    except IdentityMismatch:
        return _sso_refused(IDENTITY_MISMATCH_MESSAGE, 403, username, reason="identity mismatch",
                            issuer=identity.issuer, subject=identity.subject)
    if user["disabled"]:
        return _sso_refused("This account is disabled. Ask an admin to enable it.", 403, username, reason="account disabled")
    sign_in(username)
    audit.record("signin.ok", target=username, actor=username, via=audit.SSO, role=identity.role)
    return redirect(pending["next"], 303)


def _end_sso_access(identity):
    """The provider no longer maps this person to a role: disable their SSO account, which ends its
    sessions, and revoke its tokens. Raise IdentityMismatch when the account is bound to someone else."""
    store = get_store()
    user = store.users.disable_sso(identity.username, identity.issuer, identity.subject)
    if user is None:
        return  # no SSO account has the name: nothing to end
    revoked = store.tokens.revoke_all(identity.username)
    audit.record("user.disable", target=identity.username, actor=identity.username, via=audit.SSO,
                 reason="no mapped role", disabled=user["disabled"], tokens_revoked=revoked)


def _sso_refused(message, status, username=None, outcome="refused", **details):
    """Record why single sign-on did not let the person in, and show it on the sign-in page."""
    audit.record("signin.failed", target=username, actor=username, outcome=outcome, via=audit.SSO, **details)
    return render_template("auth/login.html", form=LoginForm(), sso_error=message), status


@bp.post("/logout")
def logout():
    """Sign out; a POST checked by CSRFProtect, so no other site can sign people out."""
    if g.user is not None:
        audit.record("session.end", target=g.user, reason="signed out")
    sign_out()
    flash("You have been signed out.", "info")
    return redirect(url_for("auth.login"), 303)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change one's own password; every session of the user ends, then this browser signs in afresh."""
    form = PasswordForm()
    store = get_store()
    if form.validate_on_submit():
        # The current password is a password guess too: a stolen session must not test guesses freely.
        config = current_app.config
        if not store.sign_ins.reserve(f"account#{g.user}", config["SIGNIN_ACCOUNT_LIMIT"], config["SIGNIN_WINDOW_SECONDS"]):
            audit.record("password.change", target=g.user, outcome="locked", reason="too many failures")
            form.current.errors.append("Too many wrong passwords for this account. Try again later.")
            return render_template("auth/password.html", form=form), 429
        if store.users.verify_password(g.user, form.current.data):
            store.sign_ins.clear(f"account#{g.user}", config["SIGNIN_WINDOW_SECONDS"])
            store.users.set_password(g.user, form.new.data)  # ends every session of the user in the same write
            sign_in(g.user)
            audit.record("password.change", target=g.user)
            flash("Password changed. You were signed out everywhere else.", "success")
            return redirect(url_for("links.index"), 303)
        audit.record("password.change", target=g.user, outcome="failed", reason="wrong current password")
        form.current.errors.append("That is not your current password.")
    return render_template("auth/password.html", form=form), 422 if form.errors else 200


@bp.get("/account/sessions")
@login_required
def sessions():
    """List one's own live sessions, this one marked, with a way to end each or all the others."""
    listed = get_store().sessions.list(g.user, current_app.config["SESSION_IDLE_SECONDS"], session.get("sid"))
    return render_template("auth/sessions.html", sessions=listed)


@bp.post("/account/sessions/<session_digest>/end")
@login_required
def end_session(session_digest):
    """End one of one's own sessions (this one too: that is signing out)."""
    store = get_store()
    if not store.sessions.end_one(g.user, session_digest):
        abort(404, "There is no such session.")
    audit.record("session.end", target=g.user)
    if session_digest == session_digest_of(session.get("sid")):
        session.clear()
        flash("You have been signed out.", "info")
        return redirect(url_for("auth.login"), 303)
    flash("That session has ended.", "success")
    return redirect(url_for("auth.sessions"), 303)


@bp.post("/account/sessions/end-others")
@login_required
def end_other_sessions():
    """Sign out everywhere else: one write ends every session, then this browser gets a fresh one."""
    get_store().sessions.end_all(g.user)
    sign_in(g.user)
    audit.record("session.end_all", target=g.user, kept="this browser")
    flash("You were signed out everywhere else.", "success")
    return redirect(url_for("auth.sessions"), 303)
