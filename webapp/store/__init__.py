"""The only package that talks to AWS: one module per kind of item in the one DynamoDB table.

Views import get_store() and call the one Store, which is composed of a mixin per item kind over
the shared table helper (client, marshalling, error mapping).
"""
from flask import current_app

from webapp.store.links import (  # noqa: F401 - re-exported
    COUNTER_SK_PREFIX,
    DAY_SK_PREFIX,
    LINK_SK,
    LIST_PK_PREFIX,
    LIST_SHARDS,
    STATS_PK_PREFIX,
    LinksMixin,
    decode_cursor,
    default_regions,
    encode_cursor,
    list_shard,
)
from webapp.store.sessions import SessionsMixin
from webapp.store.signin import SignInLimitsMixin
from webapp.store.table import LIST_INDEX, Table, read_secure_parameter  # noqa: F401 - re-exported
from webapp.store.tokens import TokensMixin, hash_token  # noqa: F401 - re-exported
from webapp.store.users import UsersMixin


class Store(LinksMixin, UsersMixin, SessionsMixin, TokensMixin, SignInLimitsMixin, Table):
    """Reads and writes every item kind; maps DynamoDB error codes to domain errors."""


def init_app(app):
    """Create the store (and its one DynamoDB client) for this app."""
    app.extensions["store"] = Store(
        app.config["TABLE_NAME"],
        endpoint_url=app.config.get("DYNAMODB_ENDPOINT_URL"),
        regions=app.config.get("CLICK_REGIONS") or None,
    )


def get_store():
    """The store of the current app."""
    return current_app.extensions["store"]
