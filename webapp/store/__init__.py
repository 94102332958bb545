"""The only package that talks to AWS: one module per kind of item in the one DynamoDB table.

Views import get_store() and call a part of the one Store: store.links, store.users, store.sessions,
store.tokens, store.sign_ins or store.rollups. Each part is a plain object over the one shared Table (client, name,
call() with its error mapping); a part that needs another is handed it when the store is built
(users end sessions through store.sessions, tokens check their owner through store.users).
"""
from flask import current_app

from webapp.store.audit import Audit
from webapp.store.links import (  # noqa: F401 - re-exported
    COUNTER_SK_PREFIX,
    DAY_SK_PREFIX,
    LINK_SK,
    LIST_PK_PREFIX,
    LIST_SHARDS,
    STATS_PK_PREFIX,
    Links,
    decode_cursor,
    default_regions,
    encode_cursor,
    list_shard,
)
from webapp.store.blocklist import Blocklist
from webapp.store.import_jobs import ImportJobs
from webapp.store.link_search import LinkSearch
from webapp.store.mfa import TwoFactor
from webapp.store.rollups import Rollups
from webapp.store.sessions import Sessions
from webapp.store.settings import Settings
from webapp.store.signin import LinkCreations, SignIns
from webapp.store.table import LIST_INDEX, Table, read_secure_parameter  # noqa: F401 - re-exported
from webapp.store.tokens import Tokens, hash_token  # noqa: F401 - re-exported
from webapp.store.users import Users


class Store:
    """Every item kind's part over one table; DynamoDB error codes become domain errors in table.call."""

    def __init__(self, table_name, client=None, endpoint_url=None, regions=None):
        self.table = Table(table_name, client=client, endpoint_url=endpoint_url)
        self.links = Links(self.table, regions=regions)
        self.link_search = LinkSearch(self.links)
        self.sessions = Sessions(self.table)
        self.users = Users(self.table, self.sessions)
        self.tokens = Tokens(self.table, self.users)
        self.sign_ins = SignIns(self.table)
        self.audit = Audit(self.table)
        self.two_factor = TwoFactor(self.table)
        self.settings = Settings(self.table)
        self.link_creations = LinkCreations(self.table)
        self.blocklist = Blocklist(self.table)
        self.import_jobs = ImportJobs(self.table)
        self.rollups = Rollups(self.table, self.links)


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
