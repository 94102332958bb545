"""Flask CLI commands: users (create, role, disable, enable, password), API tokens, and editing a link."""
import getpass

import click
from flask.cli import with_appcontext

from webapp import abuse, access, audit, link_edits
from webapp.exceptions import InvalidLink, LinkNotFound, UserExists, UserNotFound
from webapp.store import get_store

MIN_PASSWORD_LENGTH = access.MIN_PASSWORD_LENGTH
_ROLE = click.Choice(access.ROLES)


def init_app(app):
    """Register the commands on the app's CLI."""
    for command in (create_user_command, set_role_command, disable_user_command, enable_user_command,
                    set_password_command, reset_two_factor_command, create_token_command, edit_link_command,
                    reindex_links_command):
        app.cli.add_command(command)


def _username(username):
    try:
        return access.check_username(username)
    except ValueError:
        raise click.BadParameter("use 1-64 letters, digits, '.', '_', '@' or '-'", param_hint="USERNAME") from None


def _password(password):
    try:
        return access.check_password(password)
    except ValueError as err:
        raise click.BadParameter(str(err).lower().rstrip("."), param_hint="--password") from None


def _record(action, **kwargs):
    """Audit a command's change: through the CLI, by the operating-system user who ran it."""
    audit.record(action, via=audit.CLI, actor=_operator(), **kwargs)


def _operator():
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name and no passwd entry (e.g. in a Lambda container)
        return "cli"


def _existing(change, username, *args):
    try:
        return change(username, *args)
    except UserNotFound:
        raise click.ClickException(f"User {username!r} does not exist.") from None


@click.command("create-user")
@click.argument("username")
@click.password_option("--password", help="Prompted for (hidden, twice) when omitted.")
@click.option("--role", type=_ROLE, default=access.ADMIN, show_default=True,
              help="admin manages users; editor creates and edits links; viewer only reads.")
@with_appcontext
def create_user_command(username, password, role):
    """Create a local user who can sign in to the admin app."""
    _username(username)
    _password(password)
    try:
        get_store().users.create(username, password, role=role)
    except UserExists:
        raise click.ClickException(f"User {username!r} already exists.") from None
    _record("user.create", target=username, role=role)
    click.echo(f"Created user {username}. Role: {role}.")


@click.command("set-role")
@click.argument("username")
@click.argument("role", type=_ROLE)
@with_appcontext
def set_role_command(username, role):
    """Change a user's role; their sessions end."""
    _existing(get_store().users.set_role, username, role)
    _record("user.role", target=username, role=role)
    click.echo(f"{username} is now {role}; their sessions ended.")


@click.command("disable-user")
@click.argument("username")
@with_appcontext
def disable_user_command(username):
    """Disable a user: sessions end, tokens stop working, links stay."""
    _existing(get_store().users.set_disabled, username, True)
    _record("user.disable", target=username)
    click.echo(f"Disabled {username}.")


@click.command("enable-user")
@click.argument("username")
@with_appcontext
def enable_user_command(username):
    """Re-enable a disabled user."""
    _existing(get_store().users.set_disabled, username, False)
    _record("user.enable", target=username)
    click.echo(f"Enabled {username}.")


@click.command("set-password")
@click.argument("username")
@click.password_option("--password", help="Prompted for (hidden, twice) when omitted.")
@with_appcontext
def set_password_command(username, password):
    """Set a local user's password (break-glass reset); their sessions end."""
    _password(password)
    _existing(get_store().users.set_password, username, password)
    _record("user.password", target=username)
    click.echo(f"Password of {username} set; their sessions ended.")


@click.command("reset-two-factor")
@click.argument("username")
@with_appcontext
def reset_two_factor_command(username):
    """Turn off a user's second factor (a lost phone and lost recovery codes); their sessions end."""
    if get_store().users.get(username) is None:
        raise click.ClickException(f"User {username!r} does not exist.")
    if not get_store().two_factor.disable(username):
        raise click.ClickException(f"{username} has no second factor; nothing changed.")
    # Whoever held the phone may hold a session too: it ends with the factor.
    get_store().sessions.end_all(username)
    _record("mfa.disable", target=username)
    click.echo(f"Two-factor sign-in of {username} is off and their sessions ended; they can set it up again after signing in.")


@click.command("create-token")
@click.argument("username")
@click.option("--name", required=True, help="A label saying what the token is for.")
@click.option("--scope", type=click.Choice(access.SCOPES), default=access.WRITE, show_default=True,
              help="read lists and reads; write also creates and changes links (never beyond the user's role).")
@click.option("--days", type=click.IntRange(1, access.TOKEN_MAX_DAYS), default=access.TOKEN_DEFAULT_DAYS,
              show_default=True, help="Days until the token expires.")
@with_appcontext
def create_token_command(username, name, scope, days):
    """Create an API token for a user and print it once."""
    try:
        plaintext, token_id = get_store().tokens.create(username, name, scope=scope, days=days)
    except UserNotFound:
        raise click.ClickException(f"User {username!r} does not exist; create it first.") from None
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--scope") from None
    _record("token.create", target=username, token_id=token_id, name=name, scope=scope, days=days)
    click.echo(f"Token {token_id} ({name}, {scope}, expires in {days} days) for {username}. It is shown only this once:")
    click.echo(plaintext)


@click.command("edit-link")
@click.argument("short_id")
@click.option("--url", help="A new destination.")
@click.option("--title", help='A new title ("" removes it).')
@click.option("--tags", help='Comma-separated tags, replacing the link\'s ("" removes them).')
@click.option("--note", help='A new note ("" removes it).')
@click.option("--expires", help="never, a date (2030-01-31), an ISO 8601 date-time, or Nd for N days from now (30d).")
@click.option("--archive/--unarchive", default=None, help="Hide the link from the list (it still redirects), or bring it back.")
@click.option("--disable/--enable", default=None, help="Make the link answer 410, or redirect again.")
@with_appcontext
def edit_link_command(short_id, url, title, tags, note, expires, archive, disable):
    """Change a link's fields; the change is audited through the CLI, with old and new values."""
    raw = {name: value for name, value in (("url", url), ("title", title), ("tags", tags), ("note", note)) if value is not None}
    if archive is not None:
        raw["archived"] = archive
    if disable is not None:
        raw["is_active"] = not disable
    try:
        if expires is not None:
            raw["expires_at"] = _expiry(expires)
        changes = link_edits.check_changes(raw)
        link, diff = link_edits.edit(short_id, changes, by=_operator(), via=audit.CLI)
    except LinkNotFound:
        raise click.ClickException(f"Link {short_id!r} does not exist.") from None
    except InvalidLink as err:
        raise click.BadParameter(err.message, param_hint=f"--{_OPTION.get(err.field, err.field or 'options')}") from None
    except abuse.DestinationRefused as err:
        raise click.BadParameter(err.message, param_hint="--url") from None
    if not diff:
        click.echo(f"Nothing changed in {short_id}.")
    for name, change in diff.items():
        click.echo(f"{name}: {change['old']!r} -> {change['new']!r}")
    click.echo(f"{short_id} is at version {link['version']}.")


_OPTION = {"expires_at": "expires", "archived": "archive", "is_active": "disable"}


def _expiry(value):
    """--expires as the API's expires_at: never is null, Nd the moment N days from now, else the text
    (a date or an ISO 8601 date-time, checked with the API's rule)."""
    value = value.strip()
    if value.lower() == "never":
        return None
    if value[-1:].lower() == "d" and value[:-1].isascii() and value[:-1].isdigit():
        return link_edits.expiry_in_days(int(value[:-1]))
    return value


@click.command("reindex-links")
@with_appcontext
def reindex_links_command():
    """Write the search and filter entries of every link (once, for links made before search existed)."""
    from webapp.store.link_reindex import reindex

    def progress(links, entries):
        click.echo(f"{links:,} links, {entries:,} entries so far")

    links, entries = reindex(get_store().table, progress=progress)
    _record("links.reindex", links=links, entries=entries)
    click.echo(f"Indexed {links:,} links ({entries:,} entries).")
