"""Integration: start the local stack as `make run` does, on free ports, and run the recipe's own validation over HTTP."""
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from local_stack.dynamodb import client_for, free_port, java_major_version
from tests.stack_process import ROOT, Stack, wait_for

pytestmark = pytest.mark.integration


def _engines():
    """DynamoDB Local whenever Java 11+ is here (CI installs it), and always the moto fallback."""
    has_java = (java_major_version() or 0) >= 11
    if os.environ.get("REQUIRE_DYNAMODB_LOCAL") and not has_java:
        pytest.fail("REQUIRE_DYNAMODB_LOCAL is set but there is no Java 11+ for DynamoDB Local")
    return (["dynamodb-local"] if has_java else []) + ["moto"]


@pytest.mark.parametrize("engine", _engines())
def test_recipe_validation_over_http(engine, tmp_path):
    stack = Stack(engine, tmp_path)
    try:
        banner = "\n".join(stack.lines)
        expected_engine = "DynamoDB Local at" if engine == "dynamodb-local" else "moto"
        assert f"DynamoDB: {expected_engine}" in banner
        # DynamoDB Local itself would listen on every interface; the launcher keeps it on loopback.
        assert _listening_addresses(stack.dynamodb_port) == {"127.0.0.1"}
        # The salt schedule ran before the first click: today's salt of the visitor hash exists.
        [salts] = [json.loads(line) for line in stack.lines if line.startswith('{"type":"salts"')]
        today = time.strftime("%Y-%m-%d", time.gmtime())
        assert today in salts["created"] + salts["kept"]
        # In the salts' own table beside the links table (the template's SaltsTable), never in the links table.
        assert "salts in 'links-local-salts'" in banner
        ddb = client_for(f"http://127.0.0.1:{stack.dynamodb_port}")
        salt_key = {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "salt#"}}}
        assert today in [item["sk"]["S"] for item in ddb.query(TableName="links-local-salts", **salt_key)["Items"]]
        assert ddb.query(TableName="links-local", **salt_key)["Items"] == []
        assert ddb.describe_time_to_live(TableName="links-local-salts")["TimeToLiveDescription"]["AttributeName"] == "purge_at"

        # Create through the API, as the recipe's `curl -X POST .../shorten` does.
        status, created = stack.api("POST", "/shorten", {"url": "https://docs.aws.amazon.com/lambda/latest/dg/welcome.html"})
        assert status == 201, created
        short_id = created["short_id"]
        assert created["short_url"] == f"http://127.0.0.1:{stack.redirect_port}/{short_id}"
        assert created["original_url"] == "https://docs.aws.amazon.com/lambda/latest/dg/welcome.html"

        # HEAD, then GET: 302 with the right Location. Only the GET is a click.
        assert stack.short("HEAD", short_id) == (302, created["original_url"])
        assert stack.short("GET", short_id) == (302, created["original_url"])
        assert stack.short("GET", short_id, user_agent="curl/8.5.0") == (302, created["original_url"])

        # The clicks reach the counters through the log subscription and the aggregator.
        def counts():
            link = stack.api("GET", f"/api/links/{short_id}")[1]
            return link["click_count"], link["bot_count"]

        assert wait_for(lambda: counts() == (1, 1), timeout=10), f"not aggregated within 10 s: {counts()}"
        time.sleep(1.2)  # another flush: the HEAD must still not have counted
        assert counts() == (1, 1)

        # Disabled: 410 once the 1 s cache window has passed.
        status, patched = stack.api("PATCH", f"/api/links/{short_id}", {"is_active": False})
        assert status == 200 and patched["is_active"] is False
        assert wait_for(lambda: stack.short("GET", short_id)[0] == 410, timeout=5)

        # Unknown: 404.
        assert stack.short("GET", "doesNotExist")[0] == 404
        # The bare short domain sends people to the admin.
        assert stack.short("GET", "") == (302, f"http://127.0.0.1:{stack.admin_port}/")
    finally:
        code = stack.stop()
    assert code == 0, "\n".join(stack.lines[-30:])
    assert stack.lines[-1] == "Stopped."

    if engine == "dynamodb-local":
        # Links survive a restart: the data lives under LOCAL_DATA_DIR.
        again = Stack(engine, tmp_path)
        try:
            status, link = again.api("GET", f"/api/links/{short_id}")
            assert status == 200 and link["click_count"] == 1 and link["is_active"] is False
            assert any("found, data kept" in line for line in again.lines)
        finally:
            assert again.stop() == 0


def _listening_addresses(port):
    """The addresses listening on a TCP port, from /proc/net/tcp and tcp6 (Linux); IPv4-mapped shown as IPv4."""
    addresses = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            host_hex, port_hex = fields[1].split(":")
            if fields[3] != "0A" or int(port_hex, 16) != port:  # 0A = LISTEN
                continue
            # The kernel prints each 32-bit word of the address in host (little-endian) order.
            raw = b"".join(bytes.fromhex(host_hex[i : i + 8])[::-1] for i in range(0, len(host_hex), 8))
            address = ipaddress.ip_address(raw)
            mapped = getattr(address, "ipv4_mapped", None)
            addresses.add(str(mapped or address))
    return addresses


def test_everything_listens_on_loopback_only_and_set_credentials_are_used(tmp_path):
    stack = Stack("moto", tmp_path)
    try:
        for port in (stack.admin_port, stack.redirect_port):
            assert _listening_addresses(port) == {"127.0.0.1"}
        assert not any("(generated)" in line for line in stack.lines)
        assert stack.api("GET", "/api/links/nothing1")[0] == 404  # the set token authenticates
    finally:
        assert stack.stop() == 0


def test_a_taken_port_is_refused_with_a_clear_message(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "ADMIN_PORT": str(port), "LOCAL_DYNAMODB": "moto", "LOCAL_DATA_DIR": str(tmp_path)}
        result = subprocess.run(
            [sys.executable, "-m", "local_stack"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is in use" in result.stderr
    assert "ADMIN_PORT=<port>" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif((java_major_version() or 0) < 11 and not os.environ.get("REQUIRE_DYNAMODB_LOCAL"), reason="DynamoDB Local needs Java 11+; moto runs in-process")
def test_a_failed_start_leaves_no_database_running(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "LOCAL_DYNAMODB": "dynamodb-local",
        "LOCAL_DATA_DIR": str(tmp_path),
        "DYNAMODB_PORT": str(port),
        "ADMIN_PORT": str(free_port()),
        "REDIRECT_PORT": str(free_port()),
        "TABLE_NAME": "x",  # too short for DynamoDB: the stack fails after the database started
    }
    result = subprocess.run(
        [sys.executable, "-m", "local_stack"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "ValidationException" in result.stderr
    assert _listening_addresses(port) == set(), "the database outlived the failed start"


@pytest.mark.skipif((java_major_version() or 0) < 11 and not os.environ.get("REQUIRE_DYNAMODB_LOCAL"), reason="DynamoDB Local needs Java 11+")
def test_a_java_that_cannot_run_the_launcher_falls_back_to_the_plain_jar_and_says_so(tmp_path, monkeypatch):
    from local_stack import dynamodb

    broken = tmp_path / "Broken.java"
    broken.write_text("this is not Java")
    monkeypatch.setattr(dynamodb, "LOOPBACK_LAUNCHER", broken)
    engine = dynamodb.start("dynamodb-local", in_memory=True)
    try:
        assert "ALL interfaces" in engine.name
        assert engine.client().list_tables()["TableNames"] == []
    finally:
        engine.stop()
