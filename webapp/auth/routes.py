"""Views of the auth blueprint."""
from flask import current_app, flash, g, redirect, render_template, request, url_for

from webapp.auth import bp
from webapp.auth.forms import LoginForm
from webapp.auth.session import safe_next, sign_in, sign_out
from webapp.store import get_store


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the sign-in form and sign the user in."""
    target = safe_next(request.args.get("next"), url_for("links.index"))
    if g.user is not None:
        return redirect(target, 303)
    form = LoginForm()
    if form.validate_on_submit():
        if get_store().verify_password(form.username.data, form.password.data):
            sign_in(form.username.data)
            current_app.logger.info("user signed in: %s", form.username.data)
            return redirect(target, 303)
        form.password.errors.append("Wrong user name or password.")
    return render_template("auth/login.html", form=form), 422 if form.errors else 200


@bp.post("/logout")
def logout():
    """Sign out; a POST checked by CSRFProtect, so no other site can sign people out."""
    sign_out()
    flash("You have been signed out.", "info")
    return redirect(url_for("auth.login"), 303)
