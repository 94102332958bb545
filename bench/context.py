"""What the benchmarks share in one run: sizes, the backends, the click stream, and earlier results.

Backends start once per run: the zero-latency stub (its own process), DynamoDB Local in
memory (the local stack's engine), and, when first asked for, the local stack's Kinesis
and SQS stand-ins (moto on loopback, local_stack.click_stream). Each benchmark makes its
own tables and its own stream on them, so none sees another's data.
"""

import itertools
import threading
import time

from bench import baseline
from bench.backends import client_for, start_dynamodb_local
from bench.fixtures import create_our_table, our_item, short_id
from bench.stub_dynamodb import StubProcess
from local_stack import click_stream

OUR_TABLE, RECIPE_TABLE = "bench-ours", "bench-recipe"
LINK = "abc1234"  # the link of the cold-start and warm benchmarks
E2E_LINKS = 100
_streams = itertools.count()


class Skip(Exception):
    """A benchmark cannot run here (a backend is missing); its section says why."""


class Context:
    """Sizes, backends and earlier benchmarks' results for one run."""

    def __init__(self, sizes, quick=False, dynamodb_local=True):
        self.sizes = sizes
        self.quick = quick
        self.results = {}  # benchmark key -> its Section
        self.stub = StubProcess()
        self.engine, self.engine_error = None, "DynamoDB Local not started for this run"
        # The JVM takes several seconds to start: it starts in the background while the stub-only
        # benchmarks run, and the first benchmark that needs it waits for it.
        self._engine_thread = threading.Thread(target=self._start_engine, daemon=True, name="dynamodb-local")
        if dynamodb_local:
            self._engine_thread.start()
        self._stream = None
        self._seeded = set()
        self.logs_quiet()

    @staticmethod
    def logs_quiet():
        """moto's server logs every request it serves; the report is where the numbers go."""
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)

    def links(self):
        """The links seeded on every backend: LINK and the end-to-end set."""
        return [LINK] + [short_id(n) for n in range(E2E_LINKS)]

    def seeded(self, endpoint):
        """`endpoint`, with both sides' main tables seeded with self.links() (once per run)."""
        if endpoint not in self._seeded:
            seed(endpoint, self.links())
            self._seeded.add(endpoint)
        return endpoint

    # --- backends --------------------------------------------------------------------------
    def _start_engine(self):
        try:
            self.engine = start_dynamodb_local()
        except RuntimeError as exc:
            self.engine_error = f"DynamoDB Local could not start ({exc})"

    def dynamodb_local(self):
        """The running DynamoDB Local (once it has started), or Skip."""
        if self._engine_thread.is_alive() or self._engine_thread.ident is not None:
            self._engine_thread.join()
        if self.engine is None:
            raise Skip(self.engine_error)
        return self.engine

    def click_stream(self):
        """The local stack's Kinesis and SQS stand-ins, started on first use."""
        if self._stream is None:
            self._stream = click_stream.start()
        return self._stream

    def new_stream(self):
        """A fresh stream (the template's shard count) on the click stream's server; returns its name."""
        stream = self.click_stream()
        name = f"bench-clicks-{next(_streams)}-{time.time_ns() // 1_000_000}"
        stream.kinesis.create_stream(StreamName=name, ShardCount=click_stream.shard_count())
        stream.kinesis.get_waiter("stream_exists").wait(
            StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
        )
        return name

    def new_stream_arn(self):
        """A fresh stream, as new_stream; returns its name and ARN."""
        name = self.new_stream()
        summary = self.click_stream().kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        return name, summary["StreamARN"]

    def close(self):
        """Stop every backend this run started."""
        if self._stream is not None:
            self._stream.stop()
        if self._engine_thread.ident is not None:
            self._engine_thread.join()
        if self.engine is not None:
            self.engine.stop()
        self.stub.stop()


def seed(endpoint, links, our_table=OUR_TABLE, recipe_table=RECIPE_TABLE):
    """Both sides' tables on one backend with the given links, each in its own item format."""
    client = client_for(endpoint)
    create_our_table(client, our_table)
    put_all(client, our_table, [our_item(link, f"https://example.com/landing/{link}") for link in links])
    if baseline.available():
        baseline.create_table(client, recipe_table)
        put_all(client, recipe_table, [baseline.item(link, f"https://example.com/landing/{link}") for link in links])
    return client


def put_all(client, table, items):
    """BatchWriteItem the items, 25 a call, until none is left unprocessed."""
    for first in range(0, len(items), 25):  # BatchWriteItem takes at most 25 items
        pending = {table: [{"PutRequest": {"Item": item}} for item in items[first : first + 25]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None


