"""The recipe's original handler, loaded at run time from outside the repository (never copied in).

It lives at ../shared/seed/lambda_function.py next to the repository, or wherever
BASELINE_HANDLER points. It builds `boto3.resource('dynamodb').Table(TABLE_NAME)` at
import, expects API Gateway payload 1.0 (`httpMethod`, `path`), keys its table on
`short_id`, and on every redirect does GetItem then UpdateItem (`click_count + :inc`).
"""

import os
from datetime import datetime, timedelta
from pathlib import Path

from bench.handlers import backend_env, load_module

ROOT = Path(__file__).resolve().parent.parent
KEY_SCHEMA = [{"AttributeName": "short_id", "KeyType": "HASH"}]
ATTRIBUTES = [{"AttributeName": "short_id", "AttributeType": "S"}]


class BaselineMissing(Exception):
    """The recipe's handler file is not where we look for it."""


def baseline_path():
    """Where the recipe's handler is expected: BASELINE_HANDLER, else ../shared/seed/lambda_function.py."""
    configured = os.environ.get("BASELINE_HANDLER")
    return Path(configured) if configured else ROOT.parent / "shared" / "seed" / "lambda_function.py"


def available():
    """True when the recipe's handler file exists."""
    return baseline_path().is_file()


def load(endpoint, table_name):
    """A fresh copy of the recipe's module on this backend; raise BaselineMissing without the file."""
    path = baseline_path()
    if not path.is_file():
        raise BaselineMissing(f"recipe handler not found at {path}")
    # No bytecode: the seed folder is not ours to write a __pycache__ into.
    return load_module(path, backend_env(endpoint, table_name), prefix="bench_recipe", write_bytecode=False)


def client_of(module):
    """The botocore client under the recipe's Table resource, whose events we can hook."""
    return module.table.meta.client


def create_table(client, table_name):
    """The recipe's table: one string hash key, `short_id`, billed per request."""
    client.create_table(
        TableName=table_name,
        KeySchema=KEY_SCHEMA,
        AttributeDefinitions=ATTRIBUTES,
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})


def item(short_id, url):
    """A link in the recipe's own item format (expires_at is required: the recipe parses it)."""
    now = datetime.utcnow()
    return {
        "short_id": {"S": short_id},
        "original_url": {"S": url},
        "created_at": {"S": now.isoformat()},
        "expires_at": {"S": (now + timedelta(days=3650)).isoformat()},
        "click_count": {"N": "0"},
        "is_active": {"BOOL": True},
    }


def to_v1(event):
    """Turn an HTTP API payload 2.0 event into the 1.0 fields the recipe reads, as its integration sends."""
    http = event["requestContext"]["http"]
    return {
        "version": "1.0",
        "resource": "/{proxy+}",
        "httpMethod": http["method"],
        "path": event["rawPath"],
        "headers": dict(event.get("headers") or {}),
        "queryStringParameters": None,
        "requestContext": {"httpMethod": http["method"], "path": event["rawPath"], "stage": "$default"},
        "body": event.get("body"),
        "isBase64Encoded": event.get("isBase64Encoded", False),
    }


def v1_adapter(handler):
    """Wrap the recipe's handler so that a payload 2.0 server can call it."""

    def adapted(event, context):
        return handler(to_v1(event), context)

    return adapted
