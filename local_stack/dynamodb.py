"""An embedded DynamoDB for the local stack: Amazon's DynamoDB Local when Java is here, moto otherwise."""
import os
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local_stack import moto_server
from local_stack.template import TABLE_RESOURCE, create_table

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / ".cache" / "dynamodb-local"
# The npm package that ships Amazon's DynamoDB Local jar; pinned so every machine runs the same emulator.
NPM_PACKAGE = "amplify-dynamodb-simulator@2.9.30"
LOOPBACK_LAUNCHER = Path(__file__).with_name("LoopbackLauncher.java")
# DynamoDB Local's Java heap, in MB (see _start_dynamodb_local).
HEAP_MB = 384
REGION = "us-east-1"
LOCAL_ACCESS_KEY = "local"


class Engine:
    """A running DynamoDB endpoint and how to stop it."""

    def __init__(self, name, endpoint, data_location, stop):
        self.name = name
        self.endpoint = endpoint
        self.data_location = data_location
        self._stop = stop

    def client(self, max_pool_connections=10):
        """A low-level client on this engine."""
        return client_for(self.endpoint, max_pool_connections)

    def stop(self):
        """Stop the engine; data on disk (DynamoDB Local) stays."""
        self._stop()


def client_for(endpoint, max_pool_connections=10):
    """A low-level client on a local endpoint.

    The credentials are fixed because DynamoDB Local keeps one database per access key:
    every client of the local stack (and the handlers, through the environment) uses "local".
    """
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=LOCAL_ACCESS_KEY,
        aws_secret_access_key=LOCAL_ACCESS_KEY,
        config=Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=max_pool_connections),
    )


def free_port():
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def java_major_version():
    """The installed Java's major version, or None when there is no usable Java."""
    java = shutil.which("java")
    if not java:
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=20).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 else major  # "1.8" means Java 8


def dynamodb_local_jar():
    """Path to DynamoDBLocal.jar, fetched once with `npm pack` into a git-ignored cache."""
    jar = CACHE_DIR / "DynamoDBLocal.jar"
    if jar.exists():
        return jar
    npm = shutil.which("npm")
    if not npm:
        return None
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # `npm pack` downloads only the package tarball, not its JavaScript dependencies.
        result = subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--silent"], cwd=tmp, capture_output=True, text=True, timeout=300
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if result.returncode != 0 or not tarballs:
            return None
        with tarfile.open(tarballs[0]) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith("package/emulator/")]
            for member in members:
                member.name = member.name[len("package/emulator/"):]
            tar.extractall(CACHE_DIR, members=[m for m in members if m.name], filter="data")
    return jar if jar.exists() else None


def start(engine="auto", data_dir=None, port=None, in_memory=False):
    """Start an engine: "dynamodb-local", "moto", or "auto" (DynamoDB Local when Java 11+ is here).

    DynamoDB Local keeps its data under data_dir, unless in_memory is set (the benchmarks:
    on disk it spends ~10 ms more per write, which AWS does not).
    """
    port = port or free_port()
    if engine in ("auto", "dynamodb-local"):
        jar = dynamodb_local_jar() if (java_major_version() or 0) >= 11 else None
        if jar:
            return _start_dynamodb_local(jar, None if in_memory else Path(data_dir or ROOT / ".local" / "dynamodb"), port)
        if engine == "dynamodb-local":
            raise RuntimeError("DynamoDB Local needs Java 11+ and npm (to fetch its jar); neither path worked.")
    return _start_moto(port)


def _start_dynamodb_local(jar, data_dir, port):
    """DynamoDB Local with its data in data_dir, or in memory when data_dir is None."""
    if data_dir is None:
        storage, workdir = ["-inMemory"], tempfile.mkdtemp(prefix="dynamodb-local-")
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        storage, workdir = ["-dbPath", str(data_dir)], data_dir
    lib = jar.parent / "DynamoDBLocal_lib"
    # A fixed heap, touched at start: the JVM's default grows its heap lazily up to a quarter of the
    # machine's memory, so its RSS rose by tens of MB under any load and said nothing about leaks. With
    # the heap committed up front, RSS growth after start is native memory (the in-memory database,
    # JIT code), and a heap leak shows as OutOfMemoryError, i.e. failed requests.
    java = ["java", f"-Xms{HEAP_MB}m", f"-Xmx{HEAP_MB}m", "-XX:+AlwaysPreTouch", f"-Djava.library.path={lib}"]
    options = ["-port", str(port), *storage, "-disableTelemetry"]
    location = str(data_dir) if data_dir else "memory only: gone when it stops"
    # DynamoDB Local has no bind-address option and listens on every interface. The launcher,
    # run from source (Java 11+), binds it to 127.0.0.1; a Java that cannot compile it falls
    # back to the plain jar, and the banner says so.
    launches = [
        ("DynamoDB Local", [*java, "-cp", f"{jar}{os.pathsep}{lib}/*", str(LOOPBACK_LAUNCHER), *options]),
        ("DynamoDB Local (on ALL interfaces: this Java cannot run the loopback launcher)", [*java, "-jar", str(jar), *options]),
    ]
    for attempt, (name, command) in enumerate(launches, start=1):
        # Its output goes to a file: an unread pipe would fill up and stall Java in a long session.
        log_path = Path(workdir) / "dynamodb-local.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command,
                cwd=workdir,  # it writes a metadata file into its working directory
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us, and we stop Java ourselves, in order.
            )
        scratch = None if data_dir else workdir
        engine = Engine(name, f"http://127.0.0.1:{port}", location, _stopper(process, scratch))
        try:
            _wait_until_ready(engine, lambda: process.poll() is None, log_path)
            return engine
        except RuntimeError:
            if attempt == len(launches):
                engine.stop()
                raise
            _stopper(process, None)()  # keep the scratch folder for the next attempt


def _stopper(process, scratch_dir):
    """A function that stops the Java process and removes its scratch folder, if any."""

    def stop():
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if scratch_dir is not None:
            shutil.rmtree(scratch_dir, ignore_errors=True)

    return stop


def _start_moto(port):
    endpoint, stop = moto_server.serve(port, serialised=True)
    engine = Engine("moto server (in memory)", endpoint, "memory only: gone when the stack stops", stop)
    try:
        _wait_until_ready(engine, lambda: True)
    except RuntimeError:
        engine.stop()
        raise
    return engine


def _wait_until_ready(engine, is_running, log_path=None, timeout=60):
    """Return once the engine answers; raise RuntimeError if it exits or stays silent. The caller stops it."""
    client = engine.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running():
            output = log_path.read_text(errors="replace")[-2000:] if log_path else ""
            raise RuntimeError(f"{engine.name} exited at start-up: {output}")
        try:
            client.list_tables(Limit=1)
            return
        except (BotoCoreError, ClientError):  # not listening yet
            time.sleep(0.2)
    raise RuntimeError(f"{engine.name} did not answer within {timeout} s")


def ensure_table(client, table_name, resource=TABLE_RESOURCE):
    """Create the table (cloudformation.yaml's `resource`) unless it already exists (data survives restarts)."""
    try:
        client.describe_table(TableName=table_name)
        return False
    except client.exceptions.ResourceNotFoundException:
        create_table(client, table_name, resource=resource)
        return True
