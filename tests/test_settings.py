"""One list of settings: the README's Settings table names every variable the code and the Makefile read,
and `make user`/`make token` reach the database of a `make run` started with the same values."""
import ast
import os
import re
import subprocess
from pathlib import Path

import pytest

from local_stack import dynamodb
from tests.static_names import Unresolved, resolve

ROOT = Path(__file__).resolve().parent.parent
# Read by the code, but not settings of ours: set by the local stack for its handlers, or the shell's PATH
# and PYTHONPATH (passed on to the processes a test starts).
NOT_SETTINGS = {"AWS_ENDPOINT_URL_KINESIS", "PATH", "PYTHONPATH"}
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


# Where the code reads the environment: every Python file of these folders.
CODE_FOLDERS = ("webapp", "redirect_fn", "aggregator", "local_stack", "deploy", "bench", "tests")
# Reads whose name is not known until run time, each with why it reads no setting of ours
# (path, the name expression as written). Any other read whose name cannot be resolved fails.
DYNAMIC_READS = {
    ("bench/handlers.py", "name"): "saves the variables it is about to set for a backend, to restore them",
}
# Keys of app.config that the admin app reads but that are not its settings: Flask's own, or set by
# create_app itself from its other settings.
NOT_ADMIN_SETTINGS = {"TESTING", "SESSION_COOKIE_SECURE", "PERMANENT_SESSION_LIFETIME"}


def _python_files(folders=CODE_FOLDERS):
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def _is_environ(node, aliases):
    """os.environ, a bare `environ` (imported, or a parameter defaulting to it), or a name bound to it."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and (node.id == "environ" or node.id in aliases))


def environment_reads(tree):
    """The name expressions of every read of the environment in a module.

    The ways: os.environ.get(N), os.environ.setdefault(N, ...), os.environ[N], N in os.environ
    (and not in), os.getenv(N) (or key=N); on os.environ, `environ`, any name bound to os.environ,
    and `from os import environ as E` / `getenv as G`.
    """
    aliases = {target.id for node in ast.walk(tree) if isinstance(node, ast.Assign) and _is_environ(node.value, set())
               for target in node.targets if isinstance(target, ast.Name)}
    # from os import environ as env / getenv as read_env
    imported = {alias.name: alias.asname for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == "os"
                for alias in node.names if alias.asname}
    if "environ" in imported:
        aliases.add(imported["environ"])
    getenvs = {"getenv", imported.get("getenv", "getenv")}
    reads = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (node.args or any(k.arg == "key" for k in node.keywords)):
            func = node.func
            name = node.args[0] if node.args else next(k.value for k in node.keywords if k.arg == "key")
            if isinstance(func, ast.Attribute) and func.attr in ("get", "setdefault") and _is_environ(func.value, aliases):
                reads.append(name)
            elif (isinstance(func, ast.Name) and func.id in getenvs) or (isinstance(func, ast.Attribute) and func.attr == "getenv"):
                reads.append(name)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value, aliases):
            reads.append(node.slice)
        elif isinstance(node, ast.Compare) and _is_environ(node.comparators[0], aliases) and isinstance(node.ops[0], (ast.In, ast.NotIn)):
            reads.append(node.left)
    return reads


def names_read(source, relative):
    """The variables a module's source reads (environment_reads, resolved), and the reads that name theirs at run time."""
    tree = ast.parse(source, relative)
    names, unresolved = set(), []
    for node in environment_reads(tree):
        try:
            names |= resolve(node, tree)
        except Unresolved:
            if (relative, ast.unparse(node)) not in DYNAMIC_READS:
                unresolved.append(f"{relative}:{node.lineno}: {ast.unparse(node)}")
    return names, unresolved


def read_by_code(folders=CODE_FOLDERS):
    """Environment variables the code, the scripts and the test helpers read, every way (environment_reads).

    A read whose name cannot be resolved statically fails, unless DYNAMIC_READS says why it is no setting.
    """
    names, unresolved = set(), []
    for path in _python_files(folders):
        found, dynamic = names_read(path.read_text(), path.relative_to(ROOT).as_posix())
        names |= found
        unresolved += dynamic
    assert not unresolved, (
        "these reads of the environment name their variable at run time; name it with a string or a "
        f"constant, or add it to DYNAMIC_READS with the reason it is no setting: {unresolved}")
    return names - NOT_SETTINGS


def _flask_config_reads(tree):
    """Keys of app.config (or a `config` name) read in a module: config["X"] and config.get("X")."""
    def is_config(node):
        return (isinstance(node, ast.Attribute) and node.attr == "config") or (isinstance(node, ast.Name) and node.id == "config")

    keys = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and is_config(node.value):
            key = node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and is_config(node.func.value) and node.args:
            key = node.args[0]
        else:
            continue
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            keys.add(key.value)
    return keys


def admin_settings():
    """<prefix>_<key> for the admin app's settings: from_prefixed_env's prefix, and every default
    create_app sets (from_mapping) or key the app reads from its config."""
    tree = ast.parse((ROOT / "webapp" / "__init__.py").read_text())
    defaults, prefixes = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "from_mapping" and node.keywords:
                defaults |= {keyword.arg for keyword in node.keywords}
            elif node.func.attr == "from_prefixed_env":
                prefixes.append(node.args[0].value if node.args else "FLASK")  # Flask's default prefix
    assert defaults, "create_app's from_mapping defaults not found"
    (prefix,) = prefixes
    read = set().union(*(_flask_config_reads(ast.parse(path.read_text())) for path in _python_files(("webapp",))))
    return {f"{prefix}_{key}" for key in (defaults | read) - NOT_ADMIN_SETTINGS}


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


EVERY_WAY = """
import os
from os import environ, getenv
from webapp.store.users import USER_PK_PREFIX as IMPORTED

NAME: str = "VIA_CONSTANT"
os.environ.get("VIA_GET")
os.environ.setdefault("VIA_SETDEFAULT", "x")
os.environ["VIA_SUBSCRIPT"]
"VIA_IN" in os.environ
"VIA_NOT_IN" not in environ
os.getenv("VIA_GETENV")
getenv("VIA_BARE_GETENV", "x")
environ.get(NAME)
env = os.environ
env.get("VIA_ALIAS")
for _key, variable in (("a", "VIA_LOOP"), ("b", "VIA_LOOP_TOO")):
    os.environ.get(variable)
[os.environ[n] for n in ("VIA_COMPREHENSION",)]
os.environ.get(IMPORTED)
os.environ["NOT_A_READ"] = "written, not read"
os.environ.pop("NOT_A_READ_EITHER", None)
from os import environ as ENV, getenv as read_env
ENV.get("VIA_IMPORTED_ALIAS")
read_env("VIA_GETENV_ALIAS")
os.getenv(key="VIA_GETENV_KEYWORD")
"""


def test_every_way_of_reading_a_variable_is_found():
    names, unresolved = names_read(EVERY_WAY, "sample.py")
    assert names == {"VIA_CONSTANT", "VIA_GET", "VIA_SETDEFAULT", "VIA_SUBSCRIPT", "VIA_IN", "VIA_NOT_IN",
                     "VIA_GETENV", "VIA_BARE_GETENV", "VIA_ALIAS", "VIA_LOOP", "VIA_LOOP_TOO",
                     "VIA_COMPREHENSION", "user#", "VIA_IMPORTED_ALIAS", "VIA_GETENV_ALIAS", "VIA_GETENV_KEYWORD"}
    assert unresolved == []


@pytest.mark.parametrize("read", ["os.environ.get(f'SHORTENER_{name}')", "os.getenv(name)", "os.environ[prefix + 'X']",
                                  "os.environ.setdefault(names[0], 'x')"])
def test_a_variable_named_at_run_time_fails_with_its_place(read):
    names, unresolved = names_read(f"import os\ndef f(name, prefix, names):\n    {read}\n", "webapp/sample.py")
    assert unresolved == [f"webapp/sample.py:3: {ast.unparse(ast.parse(read).body[0].value.args[0] if 'environ[' not in read else ast.parse(read).body[0].value.slice)}"]


def test_every_config_key_the_admin_app_reads_is_a_setting():
    """Not only create_app's defaults: a key read with config.get("X") and no default is a setting too."""
    keys = _flask_config_reads(ast.parse("app.config.get('NEW_KEY')\nconfig['OTHER']\nconfig['SET'] = 1"))
    assert keys == {"NEW_KEY", "OTHER"}
    assert "SHORTENER_DYNAMODB_ENDPOINT_URL" in admin_settings()


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
