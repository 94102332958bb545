"""Views of the user pages (admins only)."""
from flask import abort, current_app, flash, g, redirect, render_template, url_for

from webapp import access
from webapp.auth import permission_required
from webapp.exceptions import UserExists, UserNotFound
from webapp.store import get_store
from webapp.user_pages import bp
from webapp.user_pages.forms import NewUserForm, RoleForm


@bp.get("/users")
@permission_required(access.MANAGE_USERS)
def index():
    """List every user with their role and state, and the form to add one."""
    return _render_index(NewUserForm())


@bp.post("/users")
@permission_required(access.MANAGE_USERS)
def create():
    """Add a local account."""
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            get_store().users.create(form.username.data, form.password.data, role=form.role.data)
        except UserExists:
            form.username.errors.append("A user with this name already exists.")
        else:
            current_app.logger.info("user created by %s: %s (%s)", g.user, form.username.data, form.role.data)
            flash(f"Added {form.username.data} as {form.role.data}.", "success")
            return redirect(url_for("users.index"), 303)
    return _render_index(form), 422


@bp.post("/users/<username>/role")
@permission_required(access.MANAGE_USERS)
def change_role(username):
    """Change a user's role; their sessions end, so the new role applies at their next sign-in."""
    _not_self(username)
    form = RoleForm()
    if not form.validate_on_submit():
        abort(422, "Choose one of the roles.")
    _or_404(get_store().users.set_role, username, form.role.data)
    current_app.logger.info("role changed by %s: %s -> %s", g.user, username, form.role.data)
    flash(f"{username} is now {form.role.data}, and was signed out.", "success")
    return redirect(url_for("users.index"), 303)


@bp.post("/users/<username>/disable")
@permission_required(access.MANAGE_USERS)
def disable(username):
    """Disable a user: sessions end and tokens stop working; their links stay."""
    _not_self(username)
    _or_404(get_store().users.set_disabled, username, True)
    current_app.logger.info("user disabled by %s: %s", g.user, username)
    flash(f"Disabled {username}. Their links stay; their sessions and tokens stopped working.", "success")
    return redirect(url_for("users.index"), 303)


@bp.post("/users/<username>/enable")
@permission_required(access.MANAGE_USERS)
def enable(username):
    """Re-enable a disabled user."""
    _or_404(get_store().users.set_disabled, username, False)
    current_app.logger.info("user enabled by %s: %s", g.user, username)
    flash(f"Enabled {username}.", "success")
    return redirect(url_for("users.index"), 303)


def _render_index(form):
    return render_template("users/index.html", users=get_store().users.list(), form=form, role_form=RoleForm())


def _not_self(username):
    """Admins cannot demote or disable themselves, so the last admin cannot lock everyone out."""
    if username == g.user:
        abort(409, "You cannot change your own role or disable yourself. Ask another admin.")


def _or_404(change, username, value):
    try:
        return change(username, value)
    except UserNotFound:
        abort(404, "There is no user with that name.")
