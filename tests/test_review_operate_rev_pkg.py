"""Outside review of issue 17, findings #1, #15 and #22: hostile input to the admin package's check
(deploy/package.py) and to `make smoke` (deploy/smoke.py, the Makefile). Servers on 127.0.0.1 only."""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from deploy import package, smoke
from tests.test_deploy_packages import X86, elf, make_zip, wheel_file
from tests.test_deploy_smoke import SHORT_ID, STAND_IN_TOKEN, StandIn, args, run_smoke, stand_in  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


# --- smoke: the token is never printed, and a token file cannot hang or flood the run ---------------------

@pytest.mark.parametrize("token", [f"{STAND_IN_TOKEN}\nsecond-line", f"{STAND_IN_TOKEN}\r\nX-Evil: 1",
                                   f"{STAND_IN_TOKEN} trailing-word"])
def test_a_token_with_a_line_break_is_refused_without_being_printed(stand_in, capsys, monkeypatch, token):
    # http.client refuses a header value with CR/LF with ValueError("Invalid header value b'Bearer <token>'"):
    # uncaught, its traceback printed the whole token.
    monkeypatch.setenv("SMOKE_TOKEN", token)
    with pytest.raises(SystemExit) as exit_:
        smoke.main(args(stand_in))
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert STAND_IN_TOKEN not in out + err and "token" in err
    assert stand_in.requests == []


def test_a_token_file_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "token"
    os.mkfifo(fifo, 0o600)
    outcome = []

    def read():
        try:
            outcome.append(smoke.read_token(str(fifo)))
        except smoke.SettingError as err:
            outcome.append(err)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive():  # unblock the reader before failing, so the session does not hang
        with open(fifo, "w") as writer:
            writer.write("x")
        reader.join(5)
        pytest.fail("reading a FIFO as the token file blocked")
    assert isinstance(outcome[0], smoke.SettingError) and "not a regular file" in str(outcome[0])


def test_a_huge_token_file_is_refused(tmp_path):
    path = tmp_path / "token"
    path.write_bytes(b"a" * (2 * 1024 * 1024))
    path.chmod(0o600)
    with pytest.raises(smoke.SettingError, match="too large"):
        smoke.read_token(str(path))


def test_a_token_file_readable_by_others_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "token"
    path.write_text(STAND_IN_TOKEN)
    path.chmod(0o644)
    monkeypatch.setattr(Path, "read_text", lambda *a, **k: pytest.fail("read before its mode was checked"))
    monkeypatch.setattr(Path, "read_bytes", lambda *a, **k: pytest.fail("read before its mode was checked"))
    with pytest.raises(smoke.SettingError, match="readable by every user"):
        smoke.read_token(str(path))


def test_make_smoke_refuses_smoke_token_on_its_command_line():
    # `make smoke SMOKE_TOKEN=...` is the same leak as TOKEN=: make exports it, and the run used it.
    result = subprocess.run(["make", "-n", "smoke", "SMOKE_TOKEN=s3cret-on-the-command-line",
                             "ADMIN_URL=http://127.0.0.1:9/prod", "SHORT_URL=http://127.0.0.1:9"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "SMOKE_TOKEN" in result.stderr and "s3cret-on-the-command-line" not in result.stdout + result.stderr


def test_the_token_is_never_sent_over_plain_http_to_another_host(stand_in, capsys, monkeypatch):
    sent = []
    monkeypatch.setattr(smoke, "_request", lambda method, url, headers, body=None: sent.append((url, headers))
                        or pytest.fail("a request was made"))
    argv = ["--admin-url", "http://admin.example.com/prod", "--short-url", stand_in.url("short"),
            "--cache-seconds", "1"]
    with pytest.raises(BaseException):
        smoke.main(argv)
    assert not any("Authorization" in headers for _, headers in sent)
    assert "https" in capsys.readouterr().err


# --- smoke: numbers and answers from the command line and from a hostile server ----------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_count_within_must_be_a_finite_number_of_seconds(stand_in, capsys, value):
    # nan made _poll's deadline never pass: a run that waited for ever for its click.
    with pytest.raises(SystemExit) as exit_:
        smoke.main(args(stand_in, "--count-within", value))
    assert exit_.value.code == 2
    assert "--count-within" in capsys.readouterr().err
    assert stand_in.requests == []


class _StringCountStandIn(StandIn):
    def _admin(self, method, path, headers, body):
        status, extra, answer = super()._admin(method, path, headers, body)
        if method == "GET" and "click_count" in answer:
            answer = {**answer, "click_count": None}
        return status, extra, answer


def test_a_click_count_that_is_not_a_number_fails_the_step_and_disables_the_link(monkeypatch, capsys):
    monkeypatch.setattr(smoke, "POLL_SECONDS", 0.05)
    monkeypatch.setenv("SMOKE_TOKEN", STAND_IN_TOKEN)
    stand_in = _StringCountStandIn()
    try:
        assert run_smoke(args(stand_in)) == 1
    finally:
        stand_in.stop()
    assert "click_count" in capsys.readouterr().err
    assert stand_in.links[SHORT_ID]["active"] is False


def _request_against(handler, within):
    """smoke._request against a one-connection server on 127.0.0.1 that answers with handler(connection, stop);
    returns (still reading after `within` seconds, seconds taken, [what _request returned or raised])."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            try:
                handler(connection, stop)
            except OSError:
                pass  # the client hung up, as it should

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_catch(smoke._request, "GET", url + "/x", {})),
                              daemon=True)
    started = time.monotonic()
    try:
        worker.start()
        worker.join(within)
        return worker.is_alive(), time.monotonic() - started, outcome
    finally:
        stop.set()
        listener.close()


def _catch(function, *a):
    try:
        return function(*a)
    except smoke.SmokeFailed as err:
        return err


def test_an_endless_body_is_not_read_whole():
    def flood(connection, stop):
        connection.sendall(b"HTTP/1.0 410 Gone\r\nContent-Type: text/plain\r\n\r\n")
        chunk = b"x" * 65536
        while not stop.is_set():
            connection.sendall(chunk)

    still_reading, _, outcome = _request_against(flood, 10)
    assert not still_reading, "the smoke test kept reading an endless body"
    status, _, body = outcome[0]
    assert status == 410 and len(body) <= smoke.MAX_BODY_BYTES


def test_a_slow_loris_server_cannot_hold_a_request_past_its_timeout(monkeypatch):
    monkeypatch.setattr(smoke, "REQUEST_TIMEOUT_SECONDS", 0.5)

    def trickle(connection, stop):
        for byte in b"HTTP/1.0 200 OK\r\nX-Slow: " + b"a" * 100:
            if stop.is_set():
                return
            connection.sendall(bytes([byte]))
            time.sleep(0.3)

    still_reading, seconds, _ = _request_against(trickle, 4)
    assert not still_reading and seconds < 2


# --- package: the check refuses what it cannot read, and what Lambda would not unpack ----------------------

@pytest.mark.parametrize("tag", ["garbage", "cp313-manylinux_2_17_x86_64", "a-b-c-d", ""])
def test_a_malformed_wheel_tag_does_not_fit_and_does_not_crash(tag):
    assert package.wheel_tag_fits(tag, X86) is False


def test_the_check_refuses_a_wheel_file_with_a_malformed_tag(tmp_path):
    path = make_zip(tmp_path / "admin.zip", {"odd-1.0.dist-info/WHEEL": wheel_file("not-a-tag-at-all")})
    with pytest.raises(SystemExit, match="odd-1.0.dist-info/WHEEL: wheel tags not-a-tag-at-all"):
        package.verify_lambda_zip(path, X86)


@pytest.mark.parametrize("tag", ["py3-none-manylinux_2_17_x86_64", "py3-none-manylinux2014_x86_64",
                                 "cp313-none-manylinux_2_17_x86_64"])
def test_a_wheel_with_no_python_abi_for_lambdas_platform_fits(tag):
    # Wheels that bundle an executable or a ctypes library (no CPython ABI) are platform-tagged with abi "none".
    assert package.wheel_tag_fits(tag, X86) is True
    assert package.wheel_tag_fits(tag.replace("x86_64", "aarch64"), X86) is False


@pytest.mark.parametrize("name", ["../outside.py", "/etc/absolute.py", "pkg/../../escape.py", "pkg\\..\\win.py"])
def test_the_check_refuses_an_entry_outside_the_package_root(tmp_path, name):
    path = make_zip(tmp_path / "admin.zip", {"webapp/__init__.py": b"", name: b"print('hi')\n"})
    with pytest.raises(SystemExit) as refused:
        package.verify_lambda_zip(path, X86)
    assert f"{name}: " in str(refused.value) and "outside" in str(refused.value)


def test_a_symlink_named_like_a_binary_is_refused(tmp_path):
    path = tmp_path / "admin.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ok.cpython-313-x86_64-linux-gnu.so", elf())
        link = zipfile.ZipInfo("pkg/_native.so")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/usr/lib/x86_64-linux-gnu/libfoo.so")
    with pytest.raises(SystemExit, match="pkg/_native.so: not an ELF shared object"):
        package.verify_lambda_zip(path, X86)


@pytest.mark.parametrize("data", [b"\x7fELF", b"\x7fELF\x02\x01", b"\x7fELF\x02\x01\x01" + bytes(11) + b"\x3e",
                                  b"\x7fELF\x02\x01" + b"\xff" * 58])
def test_a_truncated_or_hostile_elf_is_refused_not_crashed_on(tmp_path, data):
    path = make_zip(tmp_path / "admin.zip", {"pkg/_native.cpython-313-x86_64-linux-gnu.so": data})
    with pytest.raises(SystemExit, match="pkg/_native"):
        package.verify_lambda_zip(path, X86)


def test_a_settings_file_whose_stages_extend_each_other_is_refused(tmp_path):
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({"a": {"extends": "b", "runtime": "python3.13"}, "b": {"extends": "a"}}))
    code = f"from deploy import package; package.lambda_target({str(settings)!r}, 'a')"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert result.returncode == 1 and "extends" in result.stderr and "Traceback" not in result.stderr


def test_a_stage_extending_a_missing_stage_is_refused_with_its_name(tmp_path):
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({"a": {"extends": "nope", "runtime": "python3.13"}}))
    with pytest.raises(SystemExit, match="'nope'"):
        package.lambda_target(settings, "a")


# --- mutations of deploy/package.py the project's fast tests let survive ----------------------------------

@pytest.mark.parametrize("tag, target, fits", [
    ("cp313-abi3-manylinux_2_17_x86_64", X86, True),  # the stable ABI of the runtime's own Python
    ("cp313-cp313-any", X86, False),  # "any" only with no ABI
    ("cp313-cp313-manylinux2014_x86_64", package.LambdaTarget("3.13", "x86_64", (2, 17)), True),  # glibc equal
    ("cp313-cp313-manylinux_2_34_x86_64", X86, True),
    ("cp312-cp313-manylinux_2_17_x86_64", X86, False),
])
def test_wheel_tags_at_the_boundaries(tag, target, fits):
    assert package.wheel_tag_fits(tag, target) is fits


def test_pip_is_offered_every_glibc_down_to_manylinux_2_5():
    platforms = X86.pip_platforms()
    assert platforms[0] == "manylinux_2_34_x86_64" and "manylinux_2_5_x86_64" in platforms
    assert "manylinux_2_4_x86_64" not in platforms and "manylinux1_x86_64" in platforms


def test_a_stage_without_an_architecture_is_x86_64_as_zappa_defaults(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"prod": {"runtime": "python3.13"}}))
    assert package.lambda_target(tmp_path / "s.json", "prod").machine == "x86_64"


def test_a_big_endian_64_bit_elf_is_refused(tmp_path):
    path = make_zip(tmp_path / "admin.zip", {"pkg/_n.cpython-313-x86_64-linux-gnu.so": b"\x7fELF\x02\x02" + bytes(58)})
    with pytest.raises(SystemExit, match="not 64-bit little-endian"):
        package.verify_lambda_zip(path, X86)


def test_download_asks_pip_for_a_binary_of_the_target_only(tmp_path, monkeypatch):
    seen = []

    def fake_run(command, **kwargs):
        seen.append(command)
        dest = Path(command[command.index("--dest") + 1])
        (dest / "thing-1.0-cp312-cp312-manylinux_2_17_aarch64.whl").write_bytes(b"")
        (dest / "other-1.0-py3-none-any.whl").write_bytes(b"") if "two" in str(dest) else None
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(package.subprocess, "run", fake_run)
    target = package.LambdaTarget("3.12", "aarch64", (2, 34))
    (tmp_path / "one").mkdir()
    assert package.download_wheel("thing", "1.0", target, tmp_path / "one", venv=tmp_path).name.startswith("thing-1.0")
    command = seen[0]
    assert "--only-binary=:all:" in command and "--no-deps" in command and command[-1] == "thing==1.0"
    assert command[command.index("--python-version") + 1] == "3.12"
    assert [command[i + 1] for i, a in enumerate(command) if a == "--platform"] == target.pip_platforms()
    (tmp_path / "two").mkdir()
    with pytest.raises(SystemExit, match="thing==1.0 has no wheel for Lambda"):
        package.download_wheel("thing", "1.0", target, tmp_path / "two", venv=tmp_path)  # two wheels: which?


def _swap(tmp_path, zip_files, wheel_files):
    site = tmp_path / "site-packages"
    dist = {"thing/__init__.py": b"", "thing/_c.cpython-313-darwin.so": b"\xcf\xfa\xed\xfe" + bytes(60)}
    from tests.test_deploy_packages import fake_site
    installed = fake_site(site, "thing", "1.0", ["cp313-cp313-macosx_11_0_arm64"], dist)
    zappa_zip = make_zip(tmp_path / "zappa.zip", {**installed, **zip_files})
    wheel = make_zip(tmp_path / "thing-1.0-cp313-cp313-manylinux_2_17_x86_64.whl", {
        "thing/__init__.py": b"", "thing/_c.cpython-313-x86_64-linux-gnu.so": elf(),
        "thing-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: thing\nVersion: 1.0\n",
        "thing-1.0.dist-info/WHEEL": wheel_file("cp313-cp313-manylinux_2_17_x86_64"), **wheel_files})
    out = tmp_path / "admin.zip"
    package.swap_foreign_distributions(zappa_zip, site, X86, out, download=lambda *a: wheel)
    return zipfile.ZipFile(out)


def test_a_swapped_wheel_installs_platlib_and_skips_scripts_and_folders(tmp_path):
    zf = _swap(tmp_path, {}, {"thing-1.0.data/platlib/thing/_p.cpython-313-x86_64-linux-gnu.so": elf(),
                              "thing-1.0.data/scripts/thing-tool": b"#!python\n", "thing/sub/": b""})
    names = zf.namelist()
    assert "thing/_p.cpython-313-x86_64-linux-gnu.so" in names
    assert "thing-tool" not in names and "thing/sub/" not in names


def test_a_file_in_zappas_zip_that_the_wheel_also_brings_is_written_once(tmp_path):
    # Not in the laptop's RECORD (a file Zappa or a post-install step added), but the Lambda wheel ships it.
    zf = _swap(tmp_path, {"thing/extra.py": b"old"}, {"thing/extra.py": b"new"})
    names = zf.namelist()
    assert len(names) == len(set(names)), "duplicate zip entries"
    assert zf.read("thing/extra.py") == b"new"


def test_swapped_files_are_readable_by_lambdas_user(tmp_path):
    # Lambda runs the code as another user than the zip's owner: files must be world-readable.
    zf = _swap(tmp_path, {}, {})
    mode = zf.getinfo("thing/_c.cpython-313-x86_64-linux-gnu.so").external_attr >> 16
    assert mode & 0o004


def test_a_refused_build_leaves_no_zip_behind(tmp_path, monkeypatch):
    (tmp_path / "s.json").write_text(json.dumps({"prod": {"runtime": "python3.13"}}))
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(package, "ensure_package_venv", lambda venv, version: tmp_path)
    monkeypatch.setattr(package, "site_packages", lambda venv, python: site)
    monkeypatch.setattr(package, "zappa_package", lambda output, *a: make_zip(output, {
        "stray/_c.cpython-313-darwin.so": b"\xcf\xfa\xed\xfe" + bytes(60)}))
    out = tmp_path / "out" / "admin.zip"
    with pytest.raises(SystemExit, match="a macOS"):
        package.build_admin(out, venv=tmp_path, stage="prod", settings_file=tmp_path / "s.json")
    assert not out.exists()


def test_compiled_distributions_are_named_from_their_platform_tags(tmp_path):
    path = make_zip(tmp_path / "admin.zip", {
        "cffi-2.0.0.dist-info/WHEEL": wheel_file("cp313-cp313-manylinux_2_17_x86_64"),
        "cffi-2.0.0.dist-info/METADATA": b"Name: cffi\nVersion: 2.0.0\n",
        "flask-3.1.3.dist-info/WHEEL": wheel_file("py3-none-any"),
        "flask-3.1.3.dist-info/METADATA": b"Name: Flask\nVersion: 3.1.3\n",
    })
    assert package.compiled_distributions(path) == ["cffi"]


# --- mutations of deploy/smoke.py the project's fast tests let survive ------------------------------------

class _OddStandIn(StandIn):
    """The stand-in, with one answer changed: (role, method, kind) -> (status, headers, payload) or a function."""

    def __init__(self, change):
        self.change = change
        super().__init__()

    def _admin(self, method, path, headers, body):
        answer = super()._admin(method, path, headers, body)
        return self.change.get(("admin", method), lambda a: a)(answer)

    def _short(self, path, headers):
        answer = super()._short(path, headers)
        return self.change.get(("short", path), lambda a: a)(answer)


@pytest.mark.parametrize("change, message", [
    ({("short", f"/{SHORT_ID}"): lambda a: (301, *a[1:]) if a[0] == 302 else a}, "FAIL follow"),
    ({("admin", "GET"): lambda a: (200, {}, {**a[2], "click_count": 0})}, "FAIL counted"),
    ({("admin", "PATCH"): lambda a: (200, {}, {**a[2], "is_active": True})}, "FAIL disable"),
    ({("short", f"/{SHORT_ID}"): lambda a: (404, {}, "Not Found") if a[0] == 410 else a}, "FAIL 410"),
    ({("admin", "POST"): lambda a: (201, {}, {k: v for k, v in a[2].items() if k != "short_id"})}, "FAIL create"),
])
def test_a_stack_that_answers_almost_right_fails_the_step(monkeypatch, capsys, change, message):
    monkeypatch.setattr(smoke, "POLL_SECONDS", 0.05)
    monkeypatch.setenv("SMOKE_TOKEN", STAND_IN_TOKEN)
    stand_in = _OddStandIn(change)
    try:
        assert run_smoke(args(stand_in, "--count-within", "0.3")) == 1
    finally:
        stand_in.stop()
    assert message in capsys.readouterr().out


def test_ctrl_c_at_the_token_prompt_exits_130_having_done_nothing(stand_in, monkeypatch, capsys):
    monkeypatch.delenv("SMOKE_TOKEN")

    class Tty:
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Tty())
    monkeypatch.setattr(smoke.getpass, "getpass", lambda prompt: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert run_smoke(args(stand_in)) == 130
    assert "interrupted (Ctrl-C)" in capsys.readouterr().err and stand_in.requests == []


def test_a_second_ctrl_c_during_cleanup_says_what_is_left_to_do(capsys):
    check = smoke.Smoke("http://127.0.0.1:9", "http://127.0.0.1:9", STAND_IN_TOKEN, "https://e")
    check.short_id = "abc"
    check.api = lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        check.cleanup()
    assert "cleanup interrupted: abc may still be active" in capsys.readouterr().out


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "http:///nohost"])
def test_a_url_that_is_not_http_is_refused_without_a_request(url):
    with pytest.raises(smoke.SmokeFailed, match="not an http"):
        smoke._request("GET", url, {})


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/x", "http://127.0.0.1:port/x"])
def test_a_url_with_a_bad_port_fails_the_step_instead_of_crashing(url):
    with pytest.raises(smoke.SmokeFailed, match="not an http"):
        smoke._request("GET", url, {})


def test_a_servers_escape_sequences_never_reach_the_terminal():
    shown = smoke._snippet(b"Gone\x1b]0;owned\x07\x1b[2J\r\nrest")
    assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown
    assert "Gone" in shown and "rest" in shown and "\\x1b" in shown
