"""DynamoDB Local for tests that need real conditional writes under concurrency (moto's are not atomic
across threads): the emulator, and the admin app on a fresh table of it."""
import os
import uuid

from local_stack.dynamodb import java_major_version
from local_stack.template import create_table

# A skip marker for modules that need Java 11+; with REQUIRE_DYNAMODB_LOCAL set it never skips, so a
# missing Java fails the test instead.
NO_JAVA = (java_major_version() or 0) < 11 and not os.environ.get("REQUIRE_DYNAMODB_LOCAL")


def start_engine():
    """DynamoDB Local in memory on a free loopback port; call .stop() when done."""
    from local_stack import dynamodb

    return dynamodb.start("dynamodb-local", in_memory=True)


def app_on_fresh_table(engine, monkeypatch, make_app, **config):
    """The admin app on a new table of `engine`, with the credentials of the emulator's one database."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    table = f"links-{uuid.uuid4().hex[:8]}"
    create_table(engine.client(), table)
    # The store makes its own client on the endpoint, with the env's credentials (above).
    return make_app(TABLE_NAME=table, DYNAMODB_ENDPOINT_URL=engine.endpoint, **config)
