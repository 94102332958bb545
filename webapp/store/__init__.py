"""The only package that talks to AWS: one module per kind of item in the one DynamoDB table.

Views import get_store() and call the one Store, which is composed of a mixin per item kind over
the shared table helper (client, marshalling, error mapping).
"""
from flask import current_app

from webapp.store.links import LinksMixin, decode_cursor, encode_cursor  # noqa: F401 - re-exported
from webapp.store.sessions import SessionsMixin
from webapp.store.signin import SignInLimitsMixin
from webapp.store.table import Table, read_secure_parameter  # noqa: F401 - re-exported
from webapp.store.tokens import TokensMixin, hash_token  # noqa: F401 - re-exported
from webapp.store.users import UsersMixin


class Store(LinksMixin, UsersMixin, SessionsMixin, TokensMixin, SignInLimitsMixin, Table):
    """Reads and writes every item kind; maps DynamoDB error codes to domain errors."""


def init_app(app):
    """Create the store (and its one DynamoDB client) for this app."""
    app.extensions["store"] = Store(app.config["TABLE_NAME"], endpoint_url=app.config.get("DYNAMODB_ENDPOINT_URL"))


def get_store():
    """The store of the current app."""
    return current_app.extensions["store"]
