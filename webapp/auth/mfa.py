"""Two-factor sign-in for local accounts: setting it up, the second sign-in step, recovery codes, and the
admins' switch that requires it of everyone. (WebAuthn is not built yet: TOTP and recovery codes only.)

After the right password, login() hands over to begin(): the signed session then holds only a pending
marker (the user's name and an expiry), never a session id, so it grants nothing until the second step.
"""
import segno
from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import BooleanField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from webapp import access, audit, clock
from webapp.auth import bp, reauth
from webapp.auth.session import landing, login_required, permission_required, sign_in
from webapp.store import get_store
from webapp.store.mfa import is_totp_code, provisioning_uri

PENDING_KEY = "mfa_pending"
PENDING_SECONDS = 5 * 60  # time to type a code after the password, before signing in again
VERIFY, ENROL = "verify", "enrol"  # what the pending marker waits for: a code, or setting one up
REQUIRE_TWO_FACTOR = "require_two_factor"  # the setting's name in the table


class CodeForm(FlaskForm):
    """A code from the authenticator app, or a recovery code."""

    code = StringField("Code", validators=[DataRequired(), Length(max=64)])
    submit = SubmitField("Continue")


class ConfirmForm(FlaskForm):
    """Prove it is you before changing your second factor: a current code, or your password."""

    secret = PasswordField("Code from your app, or your password", validators=[DataRequired(), Length(max=1024)])
    submit = SubmitField("Confirm")


class SecurityForm(FlaskForm):
    """The admins' security settings."""

    require_two_factor = BooleanField("Require two-factor sign-in for every local account")
    submit = SubmitField("Save")


# The hook in login() and its pending marker.


def needs_second_step(user):
    """True when a local user whose password was right must pass, or first set up, a second factor."""
    # Kept for begin(), which follows in the same request: one read, and one answer for both.
    g.second_step = _second_step(user["username"])
    return g.second_step is not None


def begin(username, target):
    """Leave a pending marker in the signed session (no session yet) and ask for the second factor."""
    purpose = g.get("second_step") or _second_step(username) or ENROL
    session.clear()  # whatever the browser held before, it is not signed in now
    expires = int(clock.utcnow().timestamp()) + PENDING_SECONDS
    # The session generation: a revocation before the second step (a password change, an end of all
    # sessions, a disable) voids the marker too, so it cannot finish a sign-in or enrol a factor.
    generation = get_store().users.generation(username)
    session[PENDING_KEY] = {"username": username, "purpose": purpose, "expires": expires, "next": target, "gen": generation}
    return redirect(url_for("auth.second_step" if purpose == VERIFY else "auth.two_factor_setup"), 303)


def _second_step(username):
    """VERIFY for a user with two-factor, ENROL when admins require it of a user without, else None."""
    state = get_store().two_factor.state(username)
    if state.enabled:
        return VERIFY
    if state.local and two_factor_required():
        return ENROL
    return None


def two_factor_required():
    """True when admins require two-factor sign-in of every local account."""
    return bool(get_store().settings.get(REQUIRE_TWO_FACTOR, False))


def _pending(purpose):
    """The pending marker if it waits for this purpose, has not expired and was not revoked; else it is dropped."""
    marker = session.get(PENDING_KEY)
    if not isinstance(marker, dict) or marker.get("purpose") != purpose:
        return None
    expired = marker.get("expires", 0) <= clock.utcnow().timestamp()
    if expired or marker.get("gen") != get_store().users.generation(marker.get("username")):  # revoked meanwhile
        session.pop(PENDING_KEY, None)
        return None
    return marker


def _back_to_sign_in():
    """The sign-in page, for a second step whose marker is missing or expired."""
    flash("Sign in with your password first. A sign-in waits 5 minutes for its second step.", "info")
    return redirect(url_for("auth.login"), 303)


def _reserve_code_attempt(username):
    """Count one code attempt; False when the account is locked out.

    Codes count against the account's sign-in limit, and also under their own subject, which only a
    right code clears: a right password clears the account's counter, and must not reset the guessing.
    """
    config, sign_ins = current_app.config, get_store().sign_ins
    limit, window = config["SIGNIN_ACCOUNT_LIMIT"], config["SIGNIN_WINDOW_SECONDS"]
    return sign_ins.reserve(f"account#{username}", limit, window) and sign_ins.reserve(f"code#{username}", limit, window)


def _forget_code_attempts(username):
    """A right code: clear both of the account's counters."""
    sign_ins, window = get_store().sign_ins, current_app.config["SIGNIN_WINDOW_SECONDS"]
    sign_ins.clear(f"account#{username}", window)
    sign_ins.clear(f"code#{username}", window)


def _locked_message():
    """Minutes until the window ends, and the message that says so."""
    minutes = -(-get_store().sign_ins.retry_after(current_app.config["SIGNIN_WINDOW_SECONDS"]) // 60)
    return minutes, f"Too many wrong codes for this account. Try again in {minutes} minute{'s' if minutes != 1 else ''}."


@bp.route("/login/two-factor", methods=["GET", "POST"])
def second_step():
    """Ask for the second factor after the right password; sign in only on a fresh code or an unused recovery code."""
    if g.user is not None:
        return redirect(landing(), 303)
    pending = _pending(VERIFY)
    if pending is None:
        return _back_to_sign_in()
    username, form = pending["username"], CodeForm()
    if form.validate_on_submit():
        factor = "totp" if is_totp_code(form.code.data) else "recovery"
        if not _reserve_code_attempt(username):
            audit.record("signin.second_factor", target=username, actor=username, outcome="locked", factor=factor)
            minutes, message = _locked_message()
            form.code.errors.append(message)
            return render_template("auth/two_factor_login.html", form=form), 429, {"Retry-After": str(minutes * 60)}
        store = get_store()
        if factor == "totp":
            right = store.two_factor.verify_totp(username, form.code.data)
        else:
            right = store.two_factor.use_recovery_code(username, form.code.data)
        if right:
            _forget_code_attempts(username)
            user = store.users.get(username)
            if user is None or user["disabled"]:  # disabled since the password step
                session.pop(PENDING_KEY, None)
                return _back_to_sign_in()
            sign_in(username)  # a fresh session; it clears the pending marker
            audit.record("signin.second_factor", target=username, actor=username, factor=factor)
            if factor == "recovery":
                left = store.two_factor.state(username).recovery_codes_left
                flash(f"You used a recovery code; {left} left. Make new ones on the Two-factor page if you run low.", "info")
            return redirect(landing(pending.get("next")), 303)
        audit.record("signin.second_factor", target=username, actor=username, outcome="failed", factor=factor)
        form.code.errors.append("That code is wrong, or it was already used. Wait for the next code and try again.")
    return render_template("auth/two_factor_login.html", form=form), 422 if form.errors else 200


# Setting it up: by a signed-in user, or by one whose sign-in waits for it because admins require it.


def _enrolling_user():
    """Who is setting up a second factor: the signed-in user, or the one whose pending sign-in requires it."""
    if g.user is not None:
        return g.user
    pending = _pending(ENROL)
    return pending["username"] if pending else None


def _to_sign_in_then_here():
    """Like login_required: the sign-in page, coming back here afterwards."""
    return redirect(url_for("auth.login", next=request.script_root + request.path), 303)


@bp.get("/account/two-factor")
@login_required
def two_factor():
    """Show whether two-factor sign-in is on, with the ways to set it up, renew recovery codes or turn it off."""
    state = get_store().two_factor.state(g.user)
    return render_template("auth/two_factor.html", state=state, form=ConfirmForm(), required=two_factor_required())


@bp.get("/account/two-factor/setup")
def two_factor_setup():
    """Show the QR code and secret of a pending setup, or the button that starts one."""
    username = _enrolling_user()
    if username is None:
        return _to_sign_in_then_here()
    state = get_store().two_factor.state(username)
    if state.enabled or not state.local:
        return redirect(url_for("auth.two_factor"), 303)
    return _setup_page(username, state, CodeForm())


def _setup_page(username, state, form, status=200):
    """The setup page: with a pending secret, its QR code (inline SVG: no request leaves the page) and text."""
    qr = secret = None
    if state.pending_secret:
        secret = state.pending_secret
        uri = provisioning_uri(secret, username)
        # Markup: segno draws only paths from the URI's bits; no text of the URI reaches the SVG.
        qr = Markup(segno.make(uri, error="m").svg_inline(scale=4, border=4, light="#fff", title="QR code for your authenticator app"))
    page = render_template(
        "auth/two_factor_setup.html", qr=qr, secret=secret, form=form, signing_in=g.user is None, username=username
    )
    return page, status, {"Cache-Control": "no-store"}  # the secret must not be kept in any cache


@bp.post("/account/two-factor/setup")
def two_factor_start():
    """Start a setup: a new secret, kept pending on the user item until a code confirms it."""
    username = _enrolling_user()
    if username is None:
        return _to_sign_in_then_here()
    if get_store().two_factor.start(username) is None:
        flash("Two-factor sign-in is already on, or this account signs in with single sign-on.", "info")
        return redirect(url_for("auth.two_factor"), 303)
    return redirect(url_for("auth.two_factor_setup"), 303)


@bp.post("/account/two-factor/enable")
def two_factor_enable():
    """Finish a setup with a current code; show the recovery codes once. A pending sign-in then signs in."""
    username = _enrolling_user()
    if username is None:
        return _to_sign_in_then_here()
    form, store = CodeForm(), get_store()
    codes = None
    if form.validate_on_submit():
        codes = store.two_factor.enable(username, form.code.data)
        if codes is None:
            form.code.errors.append("That code is wrong. Type the code your app shows now (check your phone's clock).")
    if codes is None:
        state = store.two_factor.state(username)
        if state.enabled or not state.local:
            return redirect(url_for("auth.two_factor"), 303)
        return _setup_page(username, state, form, 422)
    audit.record("mfa.enable", target=username, actor=username)
    next_page = url_for("auth.two_factor")
    if g.user is None:  # the sign-in that waited for this
        next_page = landing(session[PENDING_KEY].get("next"))
        sign_in(username)
        audit.record("signin.second_factor", target=username, actor=username, factor="totp", enrolled=True)
    return _codes_page(codes, next_page)


def _codes_page(codes, next_page):
    """Recovery codes, shown this once (only their hashes are kept), never cached."""
    return render_template("auth/two_factor_codes.html", codes=codes, next_page=next_page), 200, {"Cache-Control": "no-store"}


def _confirmed(form, action):
    """True when the form holds a current code or the password of the signed-in user (counted like sign-ins)."""
    if not form.validate_on_submit():
        return False
    if not _reserve_code_attempt(g.user):
        form.secret.errors.append(_locked_message()[1])
        audit.record(action, target=g.user, outcome="locked")
        return False
    if reauth.confirm(g.user, form.secret.data):
        _forget_code_attempts(g.user)
        return True
    audit.record(action, target=g.user, outcome="failed")
    form.secret.errors.append("That is neither a current code nor your password.")
    return False


@bp.post("/account/two-factor/recovery-codes")
@login_required
def two_factor_recovery_codes():
    """Replace the recovery codes (after a current code or the password); the old ones stop working."""
    store, form = get_store(), ConfirmForm()
    state = store.two_factor.state(g.user)
    if not state.enabled:
        flash("Two-factor sign-in is off, so there are no recovery codes.", "info")
        return redirect(url_for("auth.two_factor"), 303)
    if not _confirmed(form, "mfa.recovery_regenerate"):
        return render_template("auth/two_factor.html", state=state, form=form, required=two_factor_required()), 422
    codes = store.two_factor.replace_recovery_codes(g.user)
    if codes is None:  # turned off by another request meanwhile
        return redirect(url_for("auth.two_factor"), 303)
    audit.record("mfa.recovery_regenerate", target=g.user)
    return _codes_page(codes, url_for("auth.two_factor"))


@bp.post("/account/two-factor/disable")
@login_required
def two_factor_disable():
    """Turn two-factor sign-in off (after a current code or the password)."""
    store, form = get_store(), ConfirmForm()
    state = store.two_factor.state(g.user)
    if not state.enabled:
        flash("Two-factor sign-in is already off.", "info")
        return redirect(url_for("auth.two_factor"), 303)
    if not _confirmed(form, "mfa.disable"):
        return render_template("auth/two_factor.html", state=state, form=form, required=two_factor_required()), 422
    if store.two_factor.disable(g.user):
        audit.record("mfa.disable", target=g.user)
    message = "Two-factor sign-in is off."
    if two_factor_required():
        message += " Admins require it, so you will set it up again at your next sign-in."
    flash(message, "success")
    return redirect(url_for("auth.two_factor"), 303)


# The admins' switch. Managing users is the admin's permission; this setting is about every user.


@bp.route("/settings/security", methods=["GET", "POST"])
@permission_required(access.MANAGE_USERS)
def security_settings():
    """Show and change the security settings: whether every local account must use two-factor sign-in."""
    store = get_store()
    current = two_factor_required()
    form = SecurityForm(data={"require_two_factor": current} if request.method == "GET" else None)
    if form.validate_on_submit():
        wanted = bool(form.require_two_factor.data)
        if wanted != current:
            store.settings.set(REQUIRE_TWO_FACTOR, wanted, changed_by=g.user)
            audit.record("settings.change", target=REQUIRE_TWO_FACTOR, value=wanted)
        flash(f"Two-factor sign-in is {'required' if wanted else 'optional'} for local accounts.", "success")
        return redirect(url_for("auth.security_settings"), 303)
    return render_template("settings/security.html", form=form), 422 if form.errors else 200
