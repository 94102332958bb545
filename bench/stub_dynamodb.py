"""A zero-latency DynamoDB stand-in: the JSON protocol over loopback HTTP, an in-memory dict behind it.

DynamoDB Local spends about 5 ms per request in its own Java, which hides what the
handlers themselves cost. This stub answers in well under a millisecond, so the
client-side cost (import, signing, serialising, parsing) is what the numbers show.

It runs in its own process (`python -m bench.stub_dynamodb`), so the CPU it burns is
never charged to the handler being measured. It speaks just enough of the protocol
for the two handlers and the aggregator: CreateTable, GetItem, PutItem, BatchWriteItem
store and read items; UpdateItem and TransactWriteItems are counted and acknowledged
but not applied, because no benchmark reads their results back. Every request is
counted by operation; `Stub.Stats` and `Stub.Reset` (an X-Amz-Target of our own) read
and clear the counts.
"""

import argparse
import json
import socket
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_DEFAULT_KEYS = ("pk", "sk")


class _State:
    """Tables (key schema + items) and request counts, shared by all connection threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.keys = {}  # table -> key attribute names
        self.items = {}  # (table, key json) -> item
        self.counts = Counter()

    def key_of(self, table, item_or_key):
        names = self.keys.get(table) or [n for n in _DEFAULT_KEYS if n in item_or_key] or list(item_or_key)[:1]
        return json.dumps({n: item_or_key[n] for n in names}, sort_keys=True)


def _answer(state, target, body):
    """The JSON answer to one request: (status, dict)."""
    op = target.rpartition(".")[2]
    if target.startswith("Stub."):
        with state.lock:
            counts = dict(state.counts)
            if op == "Reset":
                state.counts.clear()
        return 200, {"counts": counts}
    with state.lock:
        state.counts[op] += 1
        if op == "CreateTable":
            state.keys[body["TableName"]] = [k["AttributeName"] for k in body["KeySchema"]]
            return 200, {"TableDescription": {"TableName": body["TableName"], "TableStatus": "ACTIVE"}}
        if op == "DescribeTable":
            if body["TableName"] not in state.keys:
                return 400, {
                    "__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
                    "message": "no table",
                }
            return 200, {"Table": {"TableName": body["TableName"], "TableStatus": "ACTIVE"}}
        if op == "GetItem":
            item = state.items.get((body["TableName"], state.key_of(body["TableName"], body["Key"])))
            return 200, ({"Item": item} if item is not None else {})
        if op == "PutItem":
            state.items[(body["TableName"], state.key_of(body["TableName"], body["Item"]))] = body["Item"]
            return 200, {}
        if op == "BatchWriteItem":
            for table, requests in body["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        state.items[(table, state.key_of(table, item))] = item
            return 200, {"UnprocessedItems": {}}
        if op in ("UpdateItem", "TransactWriteItems", "DeleteItem", "UpdateTimeToLive"):
            return 200, {}
        if op == "ListTables":
            return 200, {"TableNames": sorted(state.keys)}
    return 400, {"__type": "com.amazon.coral.service#UnknownOperationException", "message": op}


def make_server(port=0, host="127.0.0.1"):
    """A stub server on loopback (not started)."""
    state = _State()

    class _Handler(BaseHTTPRequestHandler):
        # Keep-alive: botocore reuses its connection, as it does against the real endpoint.
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            status, answer = _answer(state, self.headers.get("X-Amz-Target", ""), body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", "stub")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):  # noqa: A002 - the base class's signature
            pass

    class _Server(ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self):
            conn, addr = super().get_request()
            # Headers and body go out in two writes; without NODELAY, Nagle holds the
            # second until the client's delayed ACK, which adds ~40 ms per request.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return conn, addr

    server = _Server((host, port), _Handler)
    server.state = state
    return server


class StubProcess:
    """The stub running in a child process, and how to query and stop it."""

    def __init__(self):
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.stub_dynamodb", "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        port = int(self._process.stdout.readline())
        self.endpoint = f"http://127.0.0.1:{port}"

    def counts(self, reset=False):
        """Requests served so far, by operation; `reset` clears them."""
        request = urllib.request.Request(
            self.endpoint + "/",
            data=b"{}",
            headers={"X-Amz-Target": "Stub.Reset" if reset else "Stub.Stats"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())["counts"]

    def stop(self):
        """Stop the child process."""
        self._process.terminate()
        self._process.wait(timeout=10)
        self._process.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def main():
    """Serve until killed; print the port first so the parent can connect."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = make_server(args.port)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
