"""The DynamoDB Local every DynamoDB benchmark runs against, beside the zero-latency stub.

It is the local stack's own engine and jar, started with `-inMemory` rather than the
stack's `-dbPath`: on this kind of machine the on-disk mode spends about 10 ms more on
each write (SQLite on disk), which AWS does not, and bulk-loads only ~200 items a second.
That extra write cost would land on the recipe, which writes on every click, and flatter
our numbers.
"""
from local_stack import dynamodb as local_dynamodb
from local_stack.dynamodb import client_for  # noqa: F401 - the one way the benchmarks make clients


def start_dynamodb_local():
    """An in-memory DynamoDB Local; raise RuntimeError when Java 11+ or its jar is missing."""
    return local_dynamodb.start("dynamodb-local", in_memory=True)
