"""Fresh copies of the handlers, each pointed at one backend, and a counter of their DynamoDB requests.

The handlers read TABLE_NAME and build their client at import time, as in Lambda. A
benchmark that needs a handler on a given backend therefore imports a fresh copy of
the module with that backend's settings in the environment, under a name of its own,
so copies never share a client or a cache.
"""

import importlib.util
import itertools
import json
import os
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from local_stack.dynamodb import LOCAL_ACCESS_KEY

ROOT = Path(__file__).resolve().parent.parent
REDIRECT_PATH = ROOT / "redirect_fn" / "handler.py"
AGGREGATOR_PATH = ROOT / "aggregator" / "handler.py"
REGION = "us-east-1"

READ_OPS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_names = itertools.count()


def backend_env(endpoint, table_name):
    """Environment for a handler that talks to `endpoint` with fake credentials."""
    return {
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": LOCAL_ACCESS_KEY,
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "TABLE_NAME": table_name,
    }


@contextmanager
def patched_env(values):
    """Set (or, for None, remove) environment variables, and restore them afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_module(path, env, prefix="bench_module", write_bytecode=True):
    """Import the file at `path` as a new module, with `env` set during the import."""
    name = f"{prefix}_{next(_names)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered before running: dataclasses (used by the aggregator) look their module up here.
    sys.modules[name] = module
    saved_flag = sys.dont_write_bytecode
    sys.dont_write_bytecode = saved_flag or not write_bytecode
    try:
        with patched_env(env):
            spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        sys.dont_write_bytecode = saved_flag
    return module


def load_ours(endpoint, table_name, salt_table_name=None):
    """A fresh copy of redirect_fn/handler.py on this backend; with salt_table_name, it reads the day's salt
    there (bench.fixtures.seed_salts), else it reads none and its click lines have no visitor hash."""
    env = {**backend_env(endpoint, table_name), "SALT_TABLE_NAME": salt_table_name}
    return load_module(REDIRECT_PATH, env, prefix="bench_redirect")


def load_aggregator(endpoint, table_name, kinesis_endpoint, stream_name):
    """A fresh copy of aggregator/handler.py on this DynamoDB backend and this Kinesis stream.

    It builds a DynamoDB and a Kinesis client at import, as in Lambda; the Kinesis one asks the
    stream's life (DescribeStreamSummary, once per copy and minute), never for records on the batch path.
    """
    env = backend_env(endpoint, table_name)
    env.update({"AWS_ENDPOINT_URL_KINESIS": kinesis_endpoint, "CLICK_STREAM_NAME": stream_name})
    return load_module(AGGREGATOR_PATH, env, prefix="bench_aggregator")


class RequestCounter:
    """Counts the DynamoDB requests a botocore client makes, through its own event hooks.

    `before-call` fires once per API call (before any retry), which is what DynamoDB
    bills and throttles. Read units are counted as DynamoDB charges them for items up to
    4 KB: an eventually consistent GetItem is half a unit, a strongly consistent one a
    whole unit. Write units come from DynamoDB itself, where it matters (bench/capacity.py).
    """

    def __init__(self, client):
        self._events = client.meta.events
        self.ops = Counter()
        self.read_units = 0.0
        self._events.register("before-call.dynamodb", self._record)

    def close(self):
        """Stop counting."""
        self._events.unregister("before-call.dynamodb", self._record)

    def reset(self):
        """Forget what was counted so far."""
        self.ops.clear()
        self.read_units = 0.0

    @property
    def reads(self):
        """Read requests counted."""
        return sum(n for op, n in self.ops.items() if op in READ_OPS)

    @property
    def writes(self):
        """Write requests counted."""
        return sum(n for op, n in self.ops.items() if op in WRITE_OPS)

    def _record(self, model, params, **_):
        op = model.name
        self.ops[op] += 1
        if op == "GetItem":
            self.read_units += 1.0 if _body(params).get("ConsistentRead") else 0.5


def _body(params):
    """The JSON body botocore is about to send (already serialised at before-call)."""
    body = params.get("body") or b"{}"
    return json.loads(body)
