"""One list of settings: the README's Settings table names every variable the code and the Makefile read,
and `make user`/`make token` reach the database of a `make run` started with the same values."""
import ast
import os
import re
import subprocess
from pathlib import Path

import pytest

from local_stack import dynamodb

ROOT = Path(__file__).resolve().parent.parent
# Read by the code, but not settings of ours: set by the local stack for its handlers, or the shell's PATH.
NOT_SETTINGS = {"AWS_ENDPOINT_URL_KINESIS", "PATH"}
LOCAL_STACK_VARIABLES = ("ADMIN_PORT", "REDIRECT_PORT", "DYNAMODB_PORT", "TABLE_NAME")


def settings_section():
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Settings\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def documented():
    """Every `NAME` in the first column of the Settings tables."""
    names = set()
    for line in settings_section().splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def read_by_code():
    """Environment variables read with os.environ / os.getenv in the code, the scripts and the test helpers."""
    pattern = re.compile(r"""(?:environ\.get|environ\[|getenv)\(?\s*["']([A-Z][A-Z0-9_]+)["']""")
    names = set()
    for folder in ("webapp", "redirect_fn", "aggregator", "local_stack", "deploy", "bench", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(pattern.findall(path.read_text()))
    return names - NOT_SETTINGS


def admin_settings():
    """SHORTENER_<key> for every default that create_app sets before reading the prefixed environment."""
    tree = ast.parse((ROOT / "webapp" / "__init__.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "from_mapping" and node.keywords:
            return {f"SHORTENER_{keyword.arg}" for keyword in node.keywords}
    raise AssertionError("create_app's from_mapping defaults not found")


def makefile_variables():
    """Variables the Makefile's targets take from the command line or the environment."""
    text = (ROOT / "Makefile").read_text()
    assigned = set(re.findall(r"^([A-Z_]+) *:?=", text, re.M))
    defaulted = set(re.findall(r"^([A-Z_]+) *\?=", text, re.M))
    used = set(re.findall(r"\$\(([A-Z_]+)\)", text)) | set(re.findall(r"\$\(or \$\(([A-Z_]+)\)", text))
    return (used - assigned) | defaulted | {"PYTHON"}


def test_the_settings_table_names_every_variable_the_code_reads():
    missing = read_by_code() - documented()
    assert not missing, f"add these to the README's Settings section: {sorted(missing)}"


def test_the_settings_table_names_every_admin_setting():
    missing = admin_settings() - documented()
    assert not missing, f"add these to the README's Settings section: {sorted(missing)}"


def test_the_settings_table_names_every_makefile_variable():
    missing = makefile_variables() - documented()
    assert not missing, f"add these to the README's Settings section: {sorted(missing)}"


def test_the_table_check_can_fail():
    """The scan above finds a variable that is read but not listed."""
    assert "SOAK_SECONDS" in read_by_code() and "SHORTENER_PAGE_SIZE" in admin_settings()
    assert "NOT_A_SETTING_ANYWHERE" not in documented()


def make_n(*args, env=None):
    """The commands `make` would run, without running them; none of the local stack's variables inherited."""
    clean = {k: v for k, v in os.environ.items() if k not in LOCAL_STACK_VARIABLES and not k.startswith("MAKE")}
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", *args], cwd=ROOT, env={**clean, **(env or {})},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def local_stack_defaults(monkeypatch):
    from local_stack.__main__ import _settings

    for name in (*LOCAL_STACK_VARIABLES, "LOCAL_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return _settings()


def account_command_env(output, command):
    """NAME=value pairs on the line of `make -n` output that runs the flask command."""
    (line,) = [line for line in output.replace("\\\n", " ").splitlines() if f"flask --app webapp.wsgi {command}" in line]
    return dict(re.findall(r"\b([A-Z_]+)=(\S+)", line))


@pytest.mark.parametrize(("target", "command"), [("user", "create-user"), ("token", "create-token")])
def test_account_commands_use_the_defaults_of_make_run(monkeypatch, target, command):
    defaults = local_stack_defaults(monkeypatch)
    env = account_command_env(make_n(target, "NAME=x"), command)
    assert env["SHORTENER_TABLE_NAME"] == defaults["table_name"] == "links-local"
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == f"http://127.0.0.1:{defaults['dynamodb_port']}"
    assert env["SHORTENER_SHORT_BASE_URL"] == f"http://127.0.0.1:{defaults['redirect_port']}"
    # DynamoDB Local keeps one database per access key and region: both must be the stack's own.
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == dynamodb.REGION
    assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == dynamodb.LOCAL_ACCESS_KEY


@pytest.mark.parametrize("how", ["command line", "environment"])
@pytest.mark.parametrize(("target", "command"), [("user", "create-user"), ("token", "create-token")])
def test_account_commands_and_make_run_take_the_same_overrides(how, target, command):
    overrides = {"DYNAMODB_PORT": "8123", "TABLE_NAME": "t-soak", "REDIRECT_PORT": "8181", "ADMIN_PORT": "5151"}
    as_args = [f"{k}={v}" for k, v in overrides.items()] if how == "command line" else []
    as_env = overrides if how == "environment" else None
    env = account_command_env(make_n(target, "NAME=x", *as_args, env=as_env), command)
    assert env["SHORTENER_TABLE_NAME"] == "t-soak"
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == "http://127.0.0.1:8123"
    assert env["SHORTENER_SHORT_BASE_URL"] == "http://127.0.0.1:8181"

    (run,) = [line for line in make_n("run", *as_args, env=as_env).replace("\\\n", " ").splitlines() if "-m local_stack" in line]
    for name, value in overrides.items():
        assert f"{name}={value}" in run.split()


def test_make_run_passes_the_local_stacks_own_defaults(monkeypatch):
    defaults = local_stack_defaults(monkeypatch)
    (run,) = [line for line in make_n("run").replace("\\\n", " ").splitlines() if "-m local_stack" in line]
    words = run.split()
    assert f"ADMIN_PORT={defaults['admin_port']}" in words
    assert f"REDIRECT_PORT={defaults['redirect_port']}" in words
    assert f"DYNAMODB_PORT={defaults['dynamodb_port']}" in words
    assert f"TABLE_NAME={defaults['table_name']}" in words
