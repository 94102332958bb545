"""Views of the user pages (admins only)."""
from flask import abort, flash, g, redirect, render_template, url_for

from webapp import access, audit
from webapp.auth import permission_required, reauth
from webapp.exceptions import CallerNotAdmin, ChangeConflict, UserExists, UserNotFound
from webapp.store import get_store
from webapp.store.users import OIDC
from webapp.user_pages import bp
from webapp.user_pages.forms import NewUserForm, RoleForm

# The answers to a change refused because the admin asking lost their rights, or met another change.
NOT_ADMIN_ANYMORE = "You are no longer an enabled admin, so this change was not made."
CHANGED_MEANWHILE = "Another admin changed these users at the same moment, so this change was not made. Reload and try again."
NEEDS_CONFIRMATION = "Making an admin needs your password, or a current code from your app: that is neither."
TOO_MANY_GUESSES = "Too many wrong passwords for this account. Try again later."


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
        refused = _reauthenticated(form.confirm.data, form.role.data, form.username.data)
        if refused:
            form.confirm.errors.append(refused[0])
            return _render_index(form), refused[1]
        try:
            get_store().users.create(form.username.data, form.password.data, role=form.role.data, by=g.user)
        except UserExists:
            form.username.errors.append("A user with this name already exists.")
        except (CallerNotAdmin, ChangeConflict) as err:
            audit.record("user.create", target=form.username.data, outcome="refused", reason=type(err).__name__,
                         role=form.role.data)
            abort(409, NOT_ADMIN_ANYMORE if isinstance(err, CallerNotAdmin) else CHANGED_MEANWHILE)
        else:
            audit.record("user.create", target=form.username.data, role=form.role.data)
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
    refused = _reauthenticated(form.confirm.data, form.role.data, username)
    if refused:
        abort(refused[1], refused[0])
    _change(username, role=form.role.data)
    flash(f"{username} is now {form.role.data}, and was signed out.", "success")
    return redirect(url_for("users.index"), 303)


@bp.post("/users/<username>/disable")
@permission_required(access.MANAGE_USERS)
def disable(username):
    """Disable a user: sessions end and tokens stop working; their links stay."""
    _not_self(username)
    _change(username, disabled=True)
    flash(f"Disabled {username}. Their links stay; their sessions and tokens stopped working.", "success")
    return redirect(url_for("users.index"), 303)


@bp.post("/users/<username>/enable")
@permission_required(access.MANAGE_USERS)
def enable(username):
    """Re-enable a disabled user."""
    _not_self(username)
    _change(username, disabled=False)
    flash(f"Enabled {username}.", "success")
    return redirect(url_for("users.index"), 303)


@bp.post("/users/<username>/sessions/end")
@permission_required(access.MANAGE_USERS)
def end_sessions(username):
    """End every session of a user (one write); they sign in again, their tokens are untouched."""
    try:
        get_store().sessions.end_all(username)
    except UserNotFound:
        abort(404, "There is no user with that name.")
    audit.record("session.end_all", target=username)
    flash(f"Ended every session of {username}.", "success")
    return redirect(url_for("users.index"), 303)


def _reauthenticated(secret, role, target):
    """None when no admin is being made, or the signed-in admin proved it is them again; else (message, status).

    The password or a current code, counted like a sign-in. Single sign-on admins have no password
    here and are not asked, as for write tokens.
    """
    if role != access.ADMIN or (get_store().tokens.owner(g.user) or {}).get("source") == OIDC:
        return None
    refused = reauth.attempt(g.user, secret)
    if refused:
        audit.record("user.reauth", target=target, outcome="locked" if refused == reauth.LOCKED else "failed", role=role)
        return (TOO_MANY_GUESSES, 429) if refused == reauth.LOCKED else (NEEDS_CONFIRMATION, 422)
    return None


def _render_index(form):
    return render_template("users/index.html", users=get_store().users.list(), form=form, role_form=RoleForm())


def _not_self(username):
    """Admins cannot demote or disable themselves, so the last admin cannot lock everyone out."""
    if username == g.user:
        abort(409, "You cannot change your own role or disable yourself. Ask another admin.")


def _change(username, **change):
    """Apply the change only while the signed-in admin still is one (in the same write); record it either way."""
    try:
        get_store().users.change(username, by=g.user, **change)
    except UserNotFound:
        abort(404, "There is no user with that name.")
    except (CallerNotAdmin, ChangeConflict) as err:
        audit.record("user.change", target=username, outcome="refused", reason=type(err).__name__, **change)
        abort(409, NOT_ADMIN_ANYMORE if isinstance(err, CallerNotAdmin) else CHANGED_MEANWHILE)
    audit.record("user.change", target=username, **change)
