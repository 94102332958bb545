"""Views of the token pages: one's own tokens; admins see and revoke everyone's."""
from flask import abort, current_app, flash, g, redirect, render_template, url_for

from webapp import access
from webapp.auth import permission_required
from webapp.exceptions import TokenNotFound
from webapp.store import get_store
from webapp.token_pages import bp
from webapp.token_pages.forms import TokenForm


@bp.get("/tokens")
@permission_required(access.READ_LINKS)
def index():
    """List the tokens this user may manage, and the form to create one."""
    return _render_index(TokenForm())


@bp.post("/tokens")
@permission_required(access.READ_LINKS)
def create():
    """Create a token and show its plaintext this once (it is not stored, so it is rendered, not redirected)."""
    form = TokenForm()
    if not form.validate_on_submit():
        return _render_index(form), 422
    plaintext, token_id = get_store().tokens.create(g.user, form.name.data, scope=form.scope.data, days=form.days.data)
    current_app.logger.info("token created: %s by %s (%s)", token_id, g.user, form.scope.data)
    response = current_app.make_response(_render_index(TokenForm(formdata=None), new_token=plaintext))
    response.headers["Cache-Control"] = "no-store"  # the plaintext must not stay in any cache
    return response


@bp.post("/tokens/<token_id>/revoke")
@permission_required(access.READ_LINKS)
def revoke(token_id):
    """Revoke a token: it answers 401 from now on."""
    owner = None if access.role_allows(g.role, access.MANAGE_ANY_TOKEN) else g.user
    try:
        token = get_store().tokens.revoke(token_id, owner=owner)
    except TokenNotFound:
        abort(404, "There is no token with that id that you may revoke.")
    current_app.logger.info("token revoked: %s of %s by %s", token_id, token["username"], g.user)
    flash(f"Revoked the token {token['name']!r}.", "success")
    return redirect(url_for("tokens.index"), 303)


def _render_index(form, new_token=None):
    everyone = access.role_allows(g.role, access.MANAGE_ANY_TOKEN)
    tokens = get_store().tokens.list(None if everyone else g.user)
    return render_template("tokens/index.html", tokens=tokens, form=form, everyone=everyone, new_token=new_token)
