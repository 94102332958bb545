"""Flask CLI commands: create users and API tokens."""
import re

import click
from flask.cli import with_appcontext

from webapp.exceptions import UserExists, UserNotFound
from webapp.store import get_store

_USERNAME_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MIN_PASSWORD_LENGTH = 8


def init_app(app):
    """Register the commands on the app's CLI."""
    app.cli.add_command(create_user_command)
    app.cli.add_command(create_token_command)


@click.command("create-user")
@click.argument("username")
@click.password_option("--password", help="Prompted for (hidden, twice) when omitted.")
@with_appcontext
def create_user_command(username, password):
    """Create a local user who can sign in to the admin app."""
    if not _USERNAME_RE.fullmatch(username):
        raise click.BadParameter("use 1-64 letters, digits, '.', '_', '@' or '-'", param_hint="USERNAME")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.BadParameter(f"must be at least {MIN_PASSWORD_LENGTH} characters", param_hint="--password")
    try:
        get_store().create_user(username, password)
    except UserExists:
        raise click.ClickException(f"User {username!r} already exists.") from None
    click.echo(f"Created user {username}.")


@click.command("create-token")
@click.argument("username")
@click.option("--name", required=True, help="A label saying what the token is for.")
@with_appcontext
def create_token_command(username, name):
    """Create an API token for a user and print it once."""
    try:
        plaintext, token_id = get_store().create_token(username, name)
    except UserNotFound:
        raise click.ClickException(f"User {username!r} does not exist; create it first.") from None
    click.echo(f"Token {token_id} ({name}) for {username}. It is shown only this once:")
    click.echo(plaintext)
