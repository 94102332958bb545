"""The deploy artifacts, built and run as Lambda would run them: zip contents only, plus the runtime's boto3.

Each artifact is unzipped and its handler is called in a clean interpreter of the Lambda
runtime's Python version (-I -S: no site-packages, no PYTHONPATH, no user site). The only
other thing on sys.path is a folder holding boto3 and its dependencies, standing in for the
copy the Lambda runtime provides. AWS calls go to a moto server on loopback.
"""
import fnmatch
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path
from urllib.parse import urlencode

import boto3
import pytest
from moto.server import ThreadedMotoServer

from deploy import package
from deploy.stage import resolved_zappa_stage
from local_stack.event_source import kinesis_event
from local_stack.log_subscription import encode_payload, matches_click_filter
from local_stack.template import create_table

pytestmark = pytest.mark.package

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = json.loads((ROOT / "zappa_settings.json").read_text())
REGION = "us-east-1"
MARK = "@@lambda-result@@"
# What the Lambda Python runtime ships besides the standard library (boto3 and its dependencies).
RUNTIME_PACKAGES = ["boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3"]
# Never in an artifact: tests, dev and build tools, the other functions' code.
NOT_SHIPPED = {
    "tests", "pytest", "_pytest", "pluggy", "moto", "cfnlint", "playwright", "responses", "werkzeug_debugger",
    "redirect_fn", "aggregator", "bench", "local_stack", "deploy", "boto3", "botocore", "pip", "setuptools",
    "wheel", "troposphere", "cfn_flip", "cfn_tools", "placebo", "yaml", "requests", ".venv", ".git", "node_modules",
}

_RUNNER = textwrap.dedent(
    """
    import importlib, json, sys, sysconfig
    code, runtime, handler = sys.argv[1:4]
    sys.path[:0] = [code, runtime]

    class Context:
        function_name = "smoke"
        aws_request_id = "00000000-0000-0000-0000-000000000000"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:smoke"
        memory_limit_in_mb = 256
        def get_remaining_time_in_millis(self):
            return 30000

    module, _, name = handler.rpartition(".")
    function = getattr(importlib.import_module(module), name)
    events = json.loads(sys.stdin.read())
    results = [function(event, Context()) for event in events]
    # Where every loaded module came from: the zip, the runtime stand-in, or the standard library.
    stdlib = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
    strays = sorted(
        f"{m}: {f}" for m, f in ((m, getattr(mod, "__file__", None)) for m, mod in list(sys.modules.items()))
        if f and not f.startswith((code, runtime) + stdlib)
    )
    sys.stdout.flush()
    sys.__stdout__.write("\\n" + MARK + json.dumps({"results": results, "strays": strays}, default=str) + "\\n")
    """
).replace("MARK", repr(MARK))


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def runtime_python():
    """An interpreter of the Lambda runtime's Python version (the admin stage's `runtime`)."""
    return package.find_python(package.runtime_python_version())


@pytest.fixture(scope="module")
def package_venv():
    """The build venv of `make package` (created once; reused while requirements.txt is unchanged)."""
    return package.ensure_package_venv()


@pytest.fixture(scope="module")
def runtime_site(tmp_path_factory, package_venv, runtime_python):
    """A folder with only boto3 and its dependencies: the Lambda runtime's copy, stood in for."""
    version = package.runtime_python_version()
    site = package_venv / "lib" / f"python{version}" / "site-packages"
    folder = tmp_path_factory.mktemp("runtime")
    for name in RUNTIME_PACKAGES:
        (folder / name).symlink_to(site / name)
    return folder


@pytest.fixture(scope="module")
def moto_endpoint():
    """A moto server on loopback, for the interpreters that run the artifacts."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    """A boto3 factory for the moto server (the autouse fixture has set fake credentials)."""
    return lambda service: boto3.client(service, region_name=REGION, endpoint_url=moto_endpoint)


@pytest.fixture(scope="module")
def admin_zip(tmp_path_factory, package_venv):
    """build/admin.zip as `make package` builds it, into a temporary folder."""
    started = time.perf_counter()
    path = package.build_admin(tmp_path_factory.mktemp("admin") / "admin.zip")
    print(f"\nzappa package: {path.stat().st_size / 1024:,.0f} KiB in {time.perf_counter() - started:.1f} s")
    return path


@pytest.fixture(scope="module")
def lambda_zips(tmp_path_factory):
    out = tmp_path_factory.mktemp("lambdas")
    return {"redirect": package.build_redirect(out), "aggregator": package.build_aggregator(out)}


def unzip(path, tmp_path_factory):
    folder = tmp_path_factory.mktemp(path.stem + "-unzipped")
    with zipfile.ZipFile(path) as zf:
        zf.extractall(folder)
    return folder


def invoke(python, code_dir, runtime_dir, handler, events, env, endpoint):
    """Call handler(event, context) for each event in a clean interpreter; returns (results, printed lines)."""
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        **env,
    }
    result = subprocess.run(
        [python, "-I", "-S", "-c", _RUNNER, str(code_dir), str(runtime_dir), handler],
        input=json.dumps(events), env=full_env, cwd=code_dir, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    printed, _, tail = result.stdout.rpartition("\n" + MARK)
    report = json.loads(tail)
    assert report["strays"] == [], "modules loaded from outside the zip and the runtime's boto3"
    return report["results"], printed.splitlines()


def http_event(path, method="GET", stage="$default", headers=None, query="", body=None, cookies=None):
    """An HTTP API payload 2.0 event, as API Gateway sends it."""
    event = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": "abc123.execute-api.us-east-1.amazonaws.com", "user-agent": "Mozilla/5.0 (smoke)",
                    "accept": "text/html", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1",
                     "userAgent": "Mozilla/5.0 (smoke)"},
            "requestId": "smoke", "routeKey": f"{method} {path}", "stage": stage,
            "time": "27/Nov/2026:06:00:00 +0000", "timeEpoch": 1795759200000,
        },
        "isBase64Encoded": False,
    }
    if body is not None:
        event["body"] = body
    if cookies:
        event["cookies"] = cookies
    return event


def prepare_prod_backend(aws):
    """The prod stage's table and secret key in the module's moto server (once); returns the stage's environment."""
    env = stage_settings("prod")["environment_variables"]
    ddb = aws("dynamodb")
    if env["SHORTENER_TABLE_NAME"] not in ddb.list_tables()["TableNames"]:
        create_table(ddb, env["SHORTENER_TABLE_NAME"])
    aws("ssm").put_parameter(Name=env["SHORTENER_SECRET_KEY_PARAMETER"], Value="smoke-test-secret-key",
                             Type="SecureString", Overwrite=True)
    return env


def stage_settings(stage):
    return resolved_zappa_stage(SETTINGS, stage)


# ------------------------------------------------------------------ zappa_settings.json


def test_zappa_stages_share_one_definition():
    assert set(SETTINGS) == {"dev", "prod"}
    assert SETTINGS["prod"]["extends"] == "dev"
    for stage in SETTINGS:
        config = stage_settings(stage)
        assert config["app_function"] == "webapp.wsgi.app"
        assert config["apigateway_version"] == "v2", "an HTTP API, as Zappa 0.63 supports"
        assert config["aws_region"] and config["s3_bucket"]
        assert config["manage_roles"] is False and config["role_arn"], "the stack's AdminRole, not Zappa's default"
        assert config["binary_support"] is True
        assert config["use_precompiled_packages"] is False, "deploy/package.py swaps wheels itself, and checks them"
        assert config["debug"] is False, "Zappa's debug puts tracebacks in 500 bodies and logs raw events"
        assert isinstance(config["keep_warm"], bool)
        assert set(config["environment_variables"]) == {
            "SHORTENER_TABLE_NAME", "SHORTENER_SHORT_BASE_URL", "SHORTENER_SECRET_KEY_PARAMETER"
        }


# What a stage must set itself: Zappa's `extends` copies the parent's keys, so a stage that leaves
# one out silently runs with (and uploads to, and keeps warm with) the parent stack's resources.
STAGE_OWN_KEYS = ("role_arn", "s3_bucket", "environment_variables")


@pytest.mark.parametrize("key", STAGE_OWN_KEYS)
def test_each_zappa_stage_names_its_own_stack_resources(key):
    values = {}
    for stage, raw in SETTINGS.items():
        assert key in raw, f"{stage} inherits {key} from {raw.get('extends')}"
        values[stage] = json.dumps(raw[key], sort_keys=True)
    assert len(set(values.values())) == len(values), f"two stages share one {key}: {values}"


def test_zappa_keep_warm_names_the_stage_role_on_its_rule(package_venv):
    """Zappa 0.63 calls events:PutRule with RoleArn=role_arn, so that role must trust EventBridge (the template test)."""
    version = package.runtime_python_version()
    core = (package_venv / "lib" / f"python{version}" / "site-packages" / "zappa" / "core.py").read_text()
    put_rule = core[core.index("self.events_client.put_rule("):][:400]
    assert "RoleArn=self.credentials_arn" in put_rule
    assert any(stage_settings(stage)["keep_warm"] for stage in SETTINGS)


def test_zappa_runtime_matches_the_build_python(package_venv):
    version = package.runtime_python_version()
    assert stage_settings("prod")["runtime"] == f"python{version}"
    probe = subprocess.run([str(package_venv / "bin" / "python"), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == version


def test_zappa_settings_hold_no_secret():
    text = (ROOT / "zappa_settings.json").read_text()
    for stage in SETTINGS:
        env = stage_settings(stage)["environment_variables"]
        assert env["SHORTENER_SECRET_KEY_PARAMETER"].startswith("/"), "a parameter name, not a value"
    assert "SHORTENER_SECRET_KEY\"" not in text and "OIDC" not in text.upper()


@pytest.mark.parametrize("data_file", ["botocore/data/dynamodb/2012-08-10/service-2.json.gz",
                                       "botocore/data/endpoints.json", "botocore/cacert.pem"])
def test_zappa_excludes_never_strip_data_files_by_extension(data_file):
    """boto3.client() needs botocore's data files; exclude whole packages, never file types."""
    for pattern in stage_settings("prod")["exclude"]:
        assert not fnmatch.fnmatch(Path(data_file).name, pattern), pattern


# ------------------------------------------------------------------ the admin package (Zappa)


def test_admin_package_serves_the_sign_in_page(admin_zip, runtime_python, runtime_site, aws, moto_endpoint,
                                               tmp_path_factory):
    """The real start-up path: settings from the zip, SECRET_KEY from an SSM SecureString, the table from moto."""
    prepare_prod_backend(aws)
    code = unzip(admin_zip, tmp_path_factory)
    events = [http_event("/prod/login", stage="prod"), http_event("/prod/health", stage="prod")]
    (login, health), _ = invoke(runtime_python, code, runtime_site, "handler.lambda_handler", events, {}, moto_endpoint)
    assert login["statusCode"] == 200, login
    body = login["body"]
    assert "<form" in body and 'type="password"' in body and "csrf_token" in body
    session_cookies = [c for c in login.get("cookies", []) if c.startswith("__Host-session=")]
    assert session_cookies, f"a session cookie for the CSRF token: {login.get('cookies')}"
    # __Host-: browsers keep it only with Secure, Path=/ and no Domain; the "/prod" stage must not become its path.
    for cookie in session_cookies:
        assert "; Secure" in cookie and "; Path=/;" in cookie + ";" and "Domain=" not in cookie, cookie
    assert health["statusCode"] == 200 and json.loads(health["body"]) == {"status": "ok"}


def test_admin_package_keeps_the_stage_prefix_through_sign_in(admin_zip, runtime_python, runtime_site, aws,
                                                              moto_endpoint, tmp_path_factory):
    """Zappa moves "/prod" into SCRIPT_NAME: the sign-in redirect, its next target and the way back keep it."""
    env = prepare_prod_backend(aws)
    from webapp.store import Store

    Store(env["SHORTENER_TABLE_NAME"], client=aws("dynamodb")).users.create("stage-user", "stage-password-1")
    code = unzip(admin_zip, tmp_path_factory)

    # Anonymous: the list and a link page send people to sign in, and remember where they were going.
    (root, page, login), _ = invoke(runtime_python, code, runtime_site, "handler.lambda_handler", [
        http_event("/prod/", stage="prod"),
        http_event("/prod/links/abc1234", stage="prod", query="tab=stats"),
        http_event("/prod/login", stage="prod", query="next=/prod/links/abc1234"),
    ], {}, moto_endpoint)
    assert (root["statusCode"], root["headers"]["Location"]) == (303, "/prod/login?next=/prod/")
    assert page["headers"]["Location"] == "/prod/login?next=/prod/links/abc1234?tab%3Dstats"
    assert 'action="/prod/login?next=/prod/links/abc1234"' in login["body"]
    assert 'href="/prod/static/app.css' in login["body"]

    # Signing in (a second invocation: a new container, the same SECRET_KEY) goes back under the stage.
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login["body"]).group(1)
    cookies = [c.split(";", 1)[0] for c in login["cookies"]]
    form = urlencode({"csrf_token": csrf, "username": "stage-user", "password": "stage-password-1"})
    (signed_in,), _ = invoke(runtime_python, code, runtime_site, "handler.lambda_handler", [
        http_event("/prod/login", method="POST", stage="prod", query="next=/prod/links/abc1234", body=form,
                   cookies=cookies, headers={
                       "content-type": "application/x-www-form-urlencoded",
                       # As a browser sends it: Flask-WTF checks the referrer of HTTPS form posts.
                       "referer": "https://abc123.execute-api.us-east-1.amazonaws.com/prod/login",
                   }),
    ], {}, moto_endpoint)
    assert signed_in["statusCode"] == 303, re.findall(r"<p[^>]*>([^<]+)</p>", signed_in["body"])
    assert signed_in["headers"]["Location"] == "/prod/links/abc1234"


def test_admin_package_holds_the_app_and_no_dev_tools(admin_zip):
    names = zipfile.ZipFile(admin_zip).namelist()
    top = {n.split("/")[0] for n in names}
    assert {"handler.py", "zappa_settings.py", "webapp", "uniques", "templates", "flask", "zappa"} <= top
    assert not top & NOT_SHIPPED, sorted(top & NOT_SHIPPED)
    assert not [t for t in top if t.startswith(".venv")], "no virtualenv of the repo (.venv-scan, .venv-package)"
    assert not [n for n in names if n.split("/")[0].endswith(".dist-info") and n.split("/")[0].split("-")[0].lower()
                in {"boto3", "botocore", "pytest", "moto", "cfn_lint", "troposphere"}]
    assert "templates/base.html" in names
    settings = zipfile.ZipFile(admin_zip).read("zappa_settings.py").decode()
    assert "DEBUG=False" in settings and "API_STAGE='prod'" in settings


def test_admin_package_extensions_match_the_runtime(admin_zip):
    target = package.lambda_target()
    assert package.verify_lambda_zip(admin_zip, target) == admin_zip
    names = zipfile.ZipFile(admin_zip).namelist()
    # What start-up needs (OIDC -> joserfc -> cryptography -> cffi), as Lambda's x86_64 CPython 3.13 loads it.
    for needed in (f"_cffi_backend.cpython-{target.cp_tag[2:]}-{target.machine}-linux-gnu.so",
                   "cryptography/hazmat/bindings/_rust.abi3.so"):
        assert needed in names, needed
        assert elf_machine(zipfile.ZipFile(admin_zip).read(needed)) == target.machine
    compiled = package.compiled_distributions(admin_zip)
    assert {"cffi", "cryptography", "MarkupSafe"} <= set(compiled), compiled
    for wheel in [n for n in names if n.endswith(".dist-info/WHEEL")]:
        tags = re.findall(r"^Tag: (\S+)$", zipfile.ZipFile(admin_zip).read(wheel).decode(), re.M)
        assert any(tag.endswith("-any") or f"manylinux" in tag and tag.endswith(target.machine) for tag in tags), wheel
    bytecode = [n for n in names if n.endswith(".pyc")]
    assert all(f".cpython-{target.cp_tag[2:]}." in n for n in bytecode), "bytecode of another Python is dead weight"


def test_admin_package_built_on_a_foreign_host_gets_lambda_wheels(package_venv, tmp_path):
    """A laptop whose venv holds macOS builds of cffi and MarkupSafe: Zappa alone packs them (refused), the build swaps them."""
    target = package.lambda_target()
    venv = foreign_venv(package_venv, tmp_path / "venv-darwin", target)
    settings = json.loads((ROOT / "zappa_settings.json").read_text())
    settings["prod"]["environment_variables"]["SHORTENER_TABLE_NAME"] = "table-from-another-settings-file"
    settings_file = tmp_path / "zappa_settings.deploy.json"
    settings_file.write_text(json.dumps(settings))

    raw = package.zappa_package(tmp_path / "zappa-only.zip", venv, "prod", settings_file)
    with pytest.raises(SystemExit) as refused:
        package.verify_lambda_zip(raw, target)
    assert "_cffi_backend.cpython-313-darwin.so: a macOS (Mach-O) binary" in str(refused.value)
    assert "markupsafe/_speedups.cpython-313-darwin.so" in str(refused.value)

    built = package.build_admin(tmp_path / "admin.zip", venv=venv, stage="prod", settings_file=settings_file)
    names = zipfile.ZipFile(built).namelist()
    assert not [n for n in names if "darwin" in n], "a macOS binary was left in the zip"
    for needed in ("_cffi_backend.cpython-313-x86_64-linux-gnu.so", "markupsafe/_speedups.cpython-313-x86_64-linux-gnu.so"):
        assert elf_machine(zipfile.ZipFile(built).read(needed)) == "x86_64", needed
    assert package.verify_lambda_zip(built, target) == built
    assert "table-from-another-settings-file" in zipfile.ZipFile(built).read("zappa_settings.py").decode()


def test_admin_package_for_arm64_is_built_from_an_x86_64_venv(package_venv, tmp_path):
    """Another architecture in the settings: every compiled distribution is swapped for its aarch64 wheel."""
    settings = json.loads((ROOT / "zappa_settings.json").read_text())
    settings["dev"]["architecture"] = "arm64"
    settings_file = tmp_path / "zappa_settings.arm64.json"
    settings_file.write_text(json.dumps(settings))
    target = package.lambda_target(settings_file, "prod")
    assert target.machine == "aarch64"

    built = package.build_admin(tmp_path / "admin.zip", venv=package_venv, stage="prod", settings_file=settings_file)
    names = zipfile.ZipFile(built).namelist()
    assert "_cffi_backend.cpython-313-aarch64-linux-gnu.so" in names
    assert not [n for n in names if "x86_64" in n and not n.endswith(".py")], "an x86_64 binary was left in the zip"
    assert elf_machine(zipfile.ZipFile(built).read("cryptography/hazmat/bindings/_rust.abi3.so")) == "aarch64"
    assert package.verify_lambda_zip(built, target) == built
    with pytest.raises(SystemExit, match="built for aarch64, not x86_64"):
        package.verify_lambda_zip(built, package.lambda_target())


def foreign_venv(source, venv, target):
    """A copy of the build venv (symlinks) whose cffi and MarkupSafe are macOS arm64 builds, as pip installs them there."""
    version = package.runtime_python_version()
    site_from = source / "lib" / f"python{version}" / "site-packages"
    site = venv / "lib" / f"python{version}" / "site-packages"
    site.mkdir(parents=True)
    (venv / "bin").symlink_to(source / "bin")  # the same Zappa; VIRTUAL_ENV picks what it packs
    for name in ("pyvenv.cfg", ".installed-stamp"):
        (venv / name).write_bytes((source / name).read_bytes())
    linux = f".cpython-{target.cp_tag[2:]}-{target.machine}-linux-gnu.so"
    darwin = f".cpython-{target.cp_tag[2:]}-darwin.so"
    foreign_dists = {d.dist_info: d for d in package.installed_distributions(site_from) if d.name in ("cffi", "MarkupSafe")}
    foreign_files = {path for d in foreign_dists.values() for path in d.files if path.endswith(linux)}
    assert len(foreign_dists) == 2 and len(foreign_files) == 2, (foreign_dists, foreign_files)
    for entry in site_from.iterdir():
        if entry.name in foreign_dists or entry.name == "markupsafe":
            shutil.copytree(entry, site / entry.name)
        elif entry.name not in foreign_files:
            (site / entry.name).symlink_to(entry)
    for path in foreign_files:
        (site / path).unlink(missing_ok=True)
        (site / path.replace(linux, darwin)).write_bytes(b"\xcf\xfa\xed\xfe" + bytes(60))  # Mach-O 64-bit
    for dist_info in foreign_dists:
        record = site / dist_info / "RECORD"
        record.write_text(record.read_text().replace(linux, darwin))
        wheel = site / dist_info / "WHEEL"
        wheel.write_text(re.sub(r"^Tag: .*$", "Tag: cp313-cp313-macosx_11_0_arm64", wheel.read_text(), flags=re.M))
    return venv


def elf_machine(data):
    assert data[:4] == b"\x7fELF"
    return {62: "x86_64", 183: "aarch64"}.get(int.from_bytes(data[18:20], "little"))


# ------------------------------------------------------------------ Lambda's platform, and the check of the zip

X86 = package.LambdaTarget("3.13", "x86_64", (2, 34))


def elf(machine=62, bits=2):
    """The first bytes of a little-endian ELF shared object for this e_machine (62 x86_64, 183 aarch64)."""
    return b"\x7fELF" + bytes([bits, 1, 1]) + bytes(9) + (3).to_bytes(2, "little") + machine.to_bytes(2, "little") + bytes(44)


def wheel_file(*tags):
    return ("Wheel-Version: 1.0\nRoot-Is-Purelib: false\n" + "".join(f"Tag: {t}\n" for t in tags)).encode()


def make_zip(path, files):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def test_lambda_target_comes_from_the_stage_settings(tmp_path):
    assert package.lambda_target() == X86
    assert stage_settings("prod")["runtime"] == "python3.13" and stage_settings("prod")["architecture"] == "x86_64"
    other = {"base": {"runtime": "python3.12", "architecture": "arm64"}, "next": {"extends": "base"}}
    (tmp_path / "s.json").write_text(json.dumps(other))
    target = package.lambda_target(tmp_path / "s.json", "next")
    assert target == package.LambdaTarget("3.12", "aarch64", (2, 34))
    assert target.pip_platforms()[0] == "manylinux_2_34_aarch64" and "manylinux2014_aarch64" in target.pip_platforms()


@pytest.mark.parametrize("stage_settings_, message", [
    ({"runtime": "python3.11"}, "runtime 'python3.11'"),  # Amazon Linux 2, glibc 2.26: not a platform this build knows
    ({"runtime": "python3.13", "architecture": "mips"}, "architecture 'mips'"),
    ({}, "runtime ''"),
])
def test_lambda_target_refuses_what_it_does_not_know(tmp_path, stage_settings_, message):
    (tmp_path / "s.json").write_text(json.dumps({"prod": stage_settings_}))
    with pytest.raises(SystemExit, match=re.escape(message)):
        package.lambda_target(tmp_path / "s.json", "prod")
    with pytest.raises(SystemExit, match="no stage 'dev'"):
        package.lambda_target(tmp_path / "s.json", "dev")


@pytest.mark.parametrize("tag, fits", [
    ("py3-none-any", True),
    ("cp313-cp313-manylinux_2_17_x86_64", True),
    ("cp313-cp313-manylinux2014_x86_64", True),
    ("cp313-cp313-manylinux1_x86_64", True),
    ("cp311-abi3-manylinux_2_34_x86_64", True),
    ("cp313-cp313-manylinux_2_35_x86_64", False),  # newer than Amazon Linux 2023's glibc 2.34
    ("cp312-cp312-manylinux_2_17_x86_64", False),
    ("cp314-abi3-manylinux_2_17_x86_64", False),  # stable ABI of a newer Python
    ("cp313-cp313-manylinux_2_17_aarch64", False),
    ("cp313-cp313-macosx_11_0_arm64", False),
    ("cp313-cp313-win_amd64", False),
    ("cp313-cp313-linux_x86_64", False),  # built from source on the laptop: no manylinux promise
    ("cp313-cp313-musllinux_1_2_x86_64", False),
    ("cp313-cp313t-manylinux_2_17_x86_64", False),  # free-threaded build
])
def test_wheel_tags_that_load_on_lambda(tag, fits):
    assert package.wheel_tag_fits(tag, X86) is fits


@pytest.mark.parametrize("name, data, problem", [
    ("markupsafe/_speedups.cpython-313-darwin.so", b"\xcf\xfa\xed\xfe" + bytes(60), "a macOS (Mach-O) binary"),
    ("_cffi_backend.cpython-313-aarch64-linux-gnu.so", elf(183), "built for aarch64, not x86_64"),
    ("_cffi_backend.cpython-313-x86_64-linux-gnu.so", elf(183), "built for aarch64, not x86_64"),
    ("markupsafe/_speedups.cpython-312-x86_64-linux-gnu.so", elf(), "an extension for CPython 312, not 313"),
    ("markupsafe/_speedups.cpython-313t-x86_64-linux-gnu.so", elf(), "313t-x86_64-linux-gnu"),
    ("markupsafe/_speedups.cp313-win_amd64.pyd", b"MZ" + bytes(62), "a Windows binary"),
    ("cffi.libs/libffi.dylib", b"\xcf\xfa\xed\xfe" + bytes(60), "a macOS (Mach-O) binary"),
    ("pkg/_native.so", b"not a binary at all", "not an ELF shared object"),
    ("pkg/_native.so", elf(bits=1), "not 64-bit"),
    ("pkg/helper", b"\xca\xfe\xba\xbe" + bytes(60), "a macOS (Mach-O) binary"),  # universal binary, no suffix
    ("MarkupSafe-3.0.3.dist-info/WHEEL", wheel_file("cp313-cp313-macosx_11_0_arm64"), "cp313-cp313-macosx_11_0_arm64"),
    ("cffi-2.0.0.dist-info/WHEEL", wheel_file("cp312-cp312-manylinux2014_x86_64"), "cp312-cp312-manylinux2014_x86_64"),
])
def test_the_check_refuses_a_binary_lambda_cannot_load(tmp_path, name, data, problem):
    fine = {"webapp/__init__.py": b"", "_cffi_backend.cpython-313-x86_64-linux-gnu.so": elf()}
    path = make_zip(tmp_path / "admin.zip", {**fine, name: data})
    with pytest.raises(SystemExit) as refused:
        package.verify_lambda_zip(path, X86)
    message = str(refused.value)
    assert f"{name}: " in message and problem in message, message
    assert "webapp/__init__.py" not in message and "_cffi_backend.cpython-313-x86_64" not in message.replace(name, "")


def test_the_check_accepts_manylinux_x86_64_for_cpython_313_and_the_stable_abi(tmp_path):
    path = make_zip(tmp_path / "admin.zip", {
        "pkg/colours-darwin.json": b"{}",  # data, not a binary, whatever its name says
        "pkg/Applet.class": b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + bytes(56),  # a Java class shares Mach-O's 0xcafebabe
        "pkg/MZ.txt": b"MZ is a text here",
        "_cffi_backend.cpython-313-x86_64-linux-gnu.so": elf(),
        "cffi-2.0.0.dist-info/WHEEL": wheel_file("cp313-cp313-manylinux_2_17_x86_64", "cp313-cp313-manylinux2014_x86_64"),
        "cryptography/hazmat/bindings/_rust.abi3.so": elf(),
        "cryptography-46.0.0.dist-info/WHEEL": wheel_file("cp311-abi3-manylinux_2_34_x86_64"),
        "somelib.libs/libffi-abcd1234.so.8.1.0": elf(),
        "flask-3.1.3.dist-info/WHEEL": wheel_file("py3-none-any"),
        "webapp/__init__.py": b"import flask\n",
        "webapp/static/logo.png": b"\x89PNG\r\n",
    })
    assert package.verify_lambda_zip(path, X86) == path
    assert package.verify_lambda_zip(path, package.LambdaTarget("3.13", "x86_64", (2, 34))) == path
    with pytest.raises(SystemExit, match="built for x86_64, not aarch64"):
        package.verify_lambda_zip(path, package.LambdaTarget("3.13", "aarch64", (2, 34)))


def test_package_command_builds_only_the_admin_from_another_settings_file(tmp_path, monkeypatch, capsys):
    built = []
    monkeypatch.setattr(package, "build_admin", lambda output, stage, settings_file: built.append(
        (output, stage, settings_file)) or output)
    monkeypatch.setattr(package, "build_all", lambda out: pytest.fail("built everything"))
    settings = tmp_path / "zappa_settings.deploy.json"
    settings.write_text((ROOT / "zappa_settings.json").read_text())
    package.main(["--admin-only", "--settings", str(settings), "--stage", "dev", "--out", str(tmp_path)])
    assert built == [(tmp_path.resolve() / "admin.zip", "dev", settings)]
    with pytest.raises(SystemExit):
        package.main(["--settings", str(settings)])  # a whole build is of zappa_settings.json only
    assert "--settings and --stage go with --admin-only" in capsys.readouterr().err


def fake_site(site, name, version, tags, files):
    """A distribution installed in a site-packages folder: its files, METADATA, WHEEL and RECORD."""
    dist_info = f"{name}-{version}.dist-info"
    files = {**files, f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{dist_info}/WHEEL": wheel_file(*tags)}
    for path, data in files.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_bytes(data)
    (site / dist_info / "RECORD").write_text("".join(f"{p},," + "\n" for p in [*files, f"{dist_info}/RECORD", "../../../bin/tool"]))
    return files


def test_a_distribution_built_for_the_laptop_is_swapped_for_its_lambda_wheel(tmp_path):
    site = tmp_path / "site-packages"
    darwin = fake_site(site, "Fast_Thing", "1.0", ["cp313-cp313-macosx_11_0_arm64"], {
        "fast_thing/__init__.py": b"from ._speed import go\n",
        "fast_thing/_speed.cpython-313-darwin.so": b"\xcf\xfa\xed\xfe" + bytes(60),
        "fast_thing/__pycache__/__init__.cpython-313.pyc": b"pyc",
    })
    pure = fake_site(site, "pure", "2.0", ["py3-none-any"], {"pure/__init__.py": b""})
    fine = fake_site(site, "native", "3.0", ["cp313-cp313-manylinux_2_17_x86_64"], {"native.cpython-313-x86_64-linux-gnu.so": elf()})
    excluded = fake_site(site, "left_out", "4.0", ["cp313-cp313-macosx_11_0_arm64"], {"left_out/__init__.py": b""})
    zappa_zip = make_zip(tmp_path / "zappa.zip", {**darwin, **pure, **fine, "handler.py": b"", "webapp/__init__.py": b""})
    assert "left_out/__init__.py" in excluded  # its files are not in the zip, as Zappa's `exclude` leaves them out

    lambda_wheel = make_zip(tmp_path / "fast_thing-1.0-cp313-cp313-manylinux_2_17_x86_64.whl", {
        "fast_thing/__init__.py": b"from ._speed import go\n",
        "fast_thing/_speed.cpython-313-x86_64-linux-gnu.so": elf(),
        "fast_thing-1.0.data/purelib/fast_thing/extra.py": b"",
        "fast_thing-1.0.data/scripts/fast-tool": b"#!python\n",
        "fast_thing-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: Fast_Thing\nVersion: 1.0\n",
        "fast_thing-1.0.dist-info/WHEEL": wheel_file("cp313-cp313-manylinux_2_17_x86_64"),
        "fast_thing-1.0.dist-info/RECORD": b"",
    })
    asked = []

    def download(name, version, target, dest):
        asked.append((name, version, target))
        return lambda_wheel

    out = tmp_path / "admin.zip"
    assert package.swap_foreign_distributions(zappa_zip, site, X86, out, download=download) == ["Fast_Thing"]
    assert asked == [("Fast_Thing", "1.0", X86)], "only the distribution whose wheel does not fit, once"
    names = set(zipfile.ZipFile(out).namelist())
    assert "fast_thing/_speed.cpython-313-x86_64-linux-gnu.so" in names and "fast_thing/extra.py" in names
    assert not {n for n in names if "darwin" in n or "Fast_Thing-1.0.dist-info" in n or "__pycache__" in n}
    assert not {n for n in names if "scripts" in n or n.startswith(".")}
    assert set(pure) | set(fine) | {"handler.py", "webapp/__init__.py"} <= names
    assert package.verify_lambda_zip(out, X86) == out


def test_a_distribution_with_no_lambda_wheel_stops_the_build(tmp_path):
    site = tmp_path / "site-packages"
    darwin = fake_site(site, "sdist_only", "1.0", ["cp313-cp313-macosx_11_0_arm64"],
                       {"sdist_only/_c.cpython-313-darwin.so": b"\xcf\xfa\xed\xfe" + bytes(60)})
    zappa_zip = make_zip(tmp_path / "zappa.zip", darwin)

    def download(name, version, target, dest):
        raise SystemExit(f"{name}=={version} has no wheel for Lambda")

    with pytest.raises(SystemExit, match="sdist_only==1.0 has no wheel for Lambda"):
        package.swap_foreign_distributions(zappa_zip, site, X86, tmp_path / "admin.zip", download=download)
    assert not (tmp_path / "admin.zip").exists()


# ------------------------------------------------------------------ the redirect and aggregator zips


def test_lambda_zips_hold_only_their_code(lambda_zips):
    redirect = zipfile.ZipFile(lambda_zips["redirect"]).namelist()
    assert redirect and all(n.startswith("redirect_fn/") and n.endswith(".py") for n in redirect)
    aggregator = zipfile.ZipFile(lambda_zips["aggregator"]).namelist()
    assert {n.split("/")[0] for n in aggregator} == {
        "aggregator", "uniques", "crawlerdetect", "crawlerdetect-0.4.2.dist-info",
        "ua_parser", "ua_parser-1.0.2.dist-info", "ua_parser_builtins", "ua_parser_builtins-202610.dist-info",
        "REVISION",  # ua-parser-builtins' own file at the top: the uap-core commit its rules come from
    }
    assert not [n for n in aggregator if n.endswith((".so", ".pyc"))], "pure Python, so one zip fits arm64"


def test_lambda_zips_are_reproducible(lambda_zips, tmp_path):
    again = package.build_redirect(tmp_path)
    assert again.read_bytes() == lambda_zips["redirect"].read_bytes(), "same code, same S3 key"


def test_redirect_and_aggregator_artifacts_against_moto(lambda_zips, runtime_python, runtime_site, aws,
                                                        moto_endpoint, tmp_path_factory):
    """The redirect zip answers 302 and prints click lines; the aggregator zip counts them, once."""
    table = "artifact-smoke"
    ddb = aws("dynamodb")
    create_table(ddb, table)
    ddb.put_item(TableName=table, Item={"pk": {"S": "abc1234"}, "sk": {"S": "link"},
                                        "url": {"S": "https://example.com/landing"}, "is_active": {"BOOL": True},
                                        "click_count": {"N": "0"}})
    redirect_code = unzip(lambda_zips["redirect"], tmp_path_factory)
    events = [http_event("/abc1234"), http_event("/abc1234", headers={"referer": "https://news.example/a"}),
              http_event("/abc1234", method="HEAD"), http_event("/nope404"), http_event("/")]
    env = {"TABLE_NAME": table, "LINK_CACHE_SECONDS": "10", "ROOT_REDIRECT_URL": "https://admin.example.com/"}
    results, printed = invoke(runtime_python, redirect_code, runtime_site, "redirect_fn.handler.lambda_handler",
                              events, env, moto_endpoint)
    assert [r["statusCode"] for r in results] == [302, 302, 302, 404, 302]
    assert results[0]["headers"]["Location"] == "https://example.com/landing"
    assert results[4]["headers"]["Location"] == "https://admin.example.com/"
    clicks = [line for line in printed if matches_click_filter(line)]
    assert len(clicks) == 2, "GETs that redirect are clicks; HEAD, 404 and / are not"
    assert len(printed) == 2, "and nothing else is printed"

    aggregator_code = unzip(lambda_zips["aggregator"], tmp_path_factory)
    kinesis = aws("kinesis")
    kinesis.create_stream(StreamName="links-clicks", ShardCount=1)
    data = encode_payload(clicks)
    sequence = kinesis.put_record(StreamName="links-clicks", Data=data, PartitionKey="clicks")["SequenceNumber"]
    arn = kinesis.describe_stream(StreamName="links-clicks")["StreamDescription"]["StreamARN"]
    batch = kinesis_event([(sequence, data, 1.7e9)], arn, "shardId-000000000000")
    results, _ = invoke(runtime_python, aggregator_code, runtime_site, "aggregator.handler.lambda_handler",
                        [batch, batch], {"TABLE_NAME": table}, moto_endpoint)
    assert results[0]["applied"] == 2 and results[1]["already_applied"] == 2, "a redelivered batch changes nothing"
    counter = ddb.get_item(TableName=table, Key={"pk": {"S": "abc1234"}, "sk": {"S": "clicks#us-east-1"}})["Item"]
    assert counter["clicks"] == {"N": "2"}


def test_admin_package_limits_sign_ins_by_the_events_source_address(admin_zip, runtime_python, runtime_site, aws,
                                                                     moto_endpoint, tmp_path_factory):
    """Through Zappa's own request builder: forged X-Forwarded-For entries neither dodge the per-client
    limit nor lock out another client (issue 15, item 1)."""
    prepare_prod_backend(aws)
    code = unzip(admin_zip, tmp_path_factory)
    run = functools.partial(invoke, runtime_python, code, runtime_site, "handler.lambda_handler")
    (login,), _ = run([http_event("/prod/login", stage="prod")], {}, moto_endpoint)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login["body"]).group(1)
    cookies = [c.split(";", 1)[0] for c in login["cookies"]]

    def attempt(account, source_ip, forwarded=None):
        event = http_event("/prod/login", method="POST", stage="prod", cookies=cookies, body=urlencode(
            {"csrf_token": csrf, "username": account, "password": "wrong-password-1"}), headers={
            "content-type": "application/x-www-form-urlencoded",
            "referer": "https://abc123.execute-api.us-east-1.amazonaws.com/prod/login",
            **({"x-forwarded-for": forwarded} if forwarded else {}),
        })
        event["requestContext"]["http"]["sourceIp"] = source_ip
        return event

    limit = 20  # SIGNIN_CLIENT_LIMIT
    attacker = [attempt(f"user{i}", "198.51.100.7", f"203.0.113.{i}, 198.51.100.7") for i in range(limit + 1)]
    bystander = [attempt("someone", "192.0.2.55")]  # no header at all: Zappa would say 127.0.0.1
    results, _ = run(attacker + bystander, {}, moto_endpoint)
    statuses = [r["statusCode"] for r in results]
    assert statuses[:limit] == [422] * limit, statuses
    assert statuses[limit] == 429, "a forged first X-Forwarded-For entry dodged the per-client limit"
    assert statuses[-1] == 422, "another client was locked out with the attacker"
