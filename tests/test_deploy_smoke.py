"""`make smoke` (deploy/smoke.py): against a stand-in admin and redirect on 127.0.0.1 (fast: interrupts, the
token, the cache window, the root redirect), and against the local stack as CI's proof that it works
against a deployed one."""
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from deploy import smoke
from local_stack.template import load_template
from tests.stack_process import ROOT, TOKEN, Stack

STEPS = ["create", "follow", "root", "counted", "disable", "410"]
STAND_IN_TOKEN = "stand-in-token-0123456789abcdef"
SHORT_ID = "smoke01"


# --- a stand-in for the deployed stack, as the smoke test sees it ------------------------------------------

class StandIn:
    """The admin's JSON API (webapp/api) and the redirect (redirect_fn/handler.py), reduced to what the smoke
    test calls, on two loopback ports. `block(...)` holds the first matching request until the test ends."""

    def __init__(self):
        self.links = {}
        self.requests = []  # (role, method, path, headers)
        self.root = None  # (status, Location) of GET <short>/; None: 302 to the admin URL
        self.block_when = None
        self.block_after_answering = False
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.servers = {role: self._serve(role) for role in ("admin", "short")}

    def _serve(self, role):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _StandInHandler)
        server.daemon_threads = True
        server.stand_in, server.role = self, role
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()  # quick shutdown
        return server

    def url(self, role):
        return f"http://127.0.0.1:{self.servers[role].server_address[1]}"

    def stop(self):
        self.release.set()
        for server in self.servers.values():
            server.shutdown()
            server.server_close()

    def block(self, when, after_answering=False):
        """Hold the first request for which when(role, method, path, stand_in) is true (before or after its effect)."""
        self.block_when, self.block_after_answering = when, after_answering

    def handle(self, role, method, path, headers, body):
        self.requests.append((role, method, path, headers))
        blocked = self.block_when is not None and self.block_when(role, method, path, self)
        if blocked:
            self.block_when = None
            if not self.block_after_answering:
                self._hold()
        answer = self._admin(method, path, headers, body) if role == "admin" else self._short(path, headers)
        if blocked and self.block_after_answering:
            self._hold()
        return answer

    def _hold(self):
        self.arrived.set()
        self.release.wait(30)

    def _admin(self, method, path, headers, body):
        if headers.get("Authorization") != f"Bearer {STAND_IN_TOKEN}":
            return 401, {}, {"error": "a valid API token is needed"}
        if method == "POST" and path == "/api/links":
            payload = json.loads(body)
            self.links[SHORT_ID] = {"url": payload["url"], "title": payload["title"], "active": True, "clicks": 0}
            return 201, {}, {"short_id": SHORT_ID, "short_url": f"{self.url('short')}/{SHORT_ID}",
                             "original_url": payload["url"]}
        link = self.links.get(path.rsplit("/", 1)[-1])
        if link is None:
            return 404, {}, {"error": "no such link"}
        if method == "PATCH":
            link["active"] = json.loads(body)["is_active"]
            return 200, {}, {"short_id": SHORT_ID, "is_active": link["active"]}
        return 200, {}, {"short_id": SHORT_ID, "click_count": link["clicks"]}

    def _short(self, path, headers):
        if path == "/":
            status, location = self.root or (302, f"{self.url('admin')}/")
            return status, {"Location": location}, ""
        link = self.links.get(path[1:])
        if link is None:
            return 404, {}, "Not Found"
        if not link["active"]:
            return 410, {}, "Gone"
        if "Mozilla" in headers.get("User-Agent", ""):  # the redirect counts browsers only
            link["clicks"] += 1
        return 302, {"Location": link["url"]}, ""


class _StandInHandler(BaseHTTPRequestHandler):
    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.server.stand_in.handle(
            self.server.role, self.command, urlsplit(self.path).path, dict(self.headers), body)
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the smoke test was interrupted and hung up while this request was held

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setattr(smoke, "POLL_SECONDS", 0.05)
    monkeypatch.setenv("SMOKE_TOKEN", STAND_IN_TOKEN)
    stand_in = StandIn()
    yield stand_in
    stand_in.stop()


def args(stand_in, *extra):
    return ["--admin-url", stand_in.url("admin"), "--short-url", stand_in.url("short"),
            "--count-within", "5", "--cache-seconds", "1", *extra]


def run_smoke(argv):
    """smoke.main in this process; a KeyboardInterrupt that escapes it fails the test instead of the session."""
    try:
        return smoke.main(argv)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped smoke.main")


def step_lines(out):
    return [line for line in out.splitlines() if re.match(r"\[\s*[\d.]+ s\] (ok  |FAIL|STOP) ", line)]


# --- fast: the stand-in -------------------------------------------------------------------------------------

def test_every_step_passes_against_a_healthy_stand_in(stand_in, capsys):
    assert run_smoke(args(stand_in)) == 0
    out, err = capsys.readouterr()
    names = [re.match(r"\[\s*[\d.]+ s\] ok   (\w+)", line).group(1) for line in step_lines(out)]
    assert names == STEPS, out
    assert f"ok   root: 302 Location {stand_in.url('admin')}/" in out
    assert stand_in.links[SHORT_ID]["active"] is False
    assert STAND_IN_TOKEN not in out + err


@pytest.mark.parametrize("root, root_url", [
    ((301, "ADMIN/"), None),
    ((302, "https://admin.example.com/prod"), "https://admin.example.com/prod/"),
])
def test_the_bare_short_domain_may_redirect_with_301_or_302_to_the_root_url(stand_in, capsys, root, root_url):
    stand_in.root = (root[0], root[1].replace("ADMIN", stand_in.url("admin")))
    extra = ["--root-url", root_url] if root_url else []
    assert run_smoke(args(stand_in, *extra)) == 0, capsys.readouterr().out
    assert f"ok   root: {root[0]} Location" in capsys.readouterr().out


@pytest.mark.parametrize("root, expected", [
    ((404, ""), "answered 404 Location '', not 302 to"),
    ((302, "https://elsewhere.example/"), "answered 302 Location 'https://elsewhere.example/', not 302 to"),
    ((307, "ADMIN/"), "answered 307"),
])
def test_a_bare_short_domain_that_does_not_redirect_to_the_admin_fails_and_disables_the_link(
        stand_in, capsys, root, expected):
    stand_in.root = (root[0], root[1].replace("ADMIN", stand_in.url("admin")))
    assert run_smoke(args(stand_in)) == 1
    out, err = capsys.readouterr()
    assert f"FAIL root: GET {stand_in.url('short')}/ {expected}" in out
    assert "AdminUrl" in out and "smoke test FAILED" in err
    assert f"cleanup: disabling {SHORT_ID} answered 200" in out
    assert stand_in.links[SHORT_ID]["active"] is False
    assert not [line for line in step_lines(out) if "counted" in line], "nothing after the failure"


# Where to hold the stand-in's answer, for each step: while it is held, the smoke test is interrupted.
HOLD_DURING = {
    "create": lambda role, method, path, s: method == "POST",
    "follow": lambda role, method, path, s: role == "short" and path == f"/{SHORT_ID}",
    "root": lambda role, method, path, s: role == "short" and path == "/",
    "counted": lambda role, method, path, s: role == "admin" and method == "GET",
    "disable": lambda role, method, path, s: method == "PATCH",
    "410": lambda role, method, path, s: role == "short" and path != "/" and not s.links[SHORT_ID]["active"],
}


@pytest.mark.parametrize("signum, code, name", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
@pytest.mark.parametrize("step", STEPS)
def test_an_interrupt_during_any_step_disables_the_link_then_exits_128_plus_the_signal(
        stand_in, capsys, step, signum, code, name):
    # The create is held after the link is made (its answer is what never arrives); the others before
    # their effect, so only the clean-up can have disabled the link.
    stand_in.block(HOLD_DURING[step], after_answering=step == "create")
    main_thread = threading.main_thread().ident

    def interrupt():
        if stand_in.arrived.wait(10):
            signal.pthread_kill(main_thread, signum)  # to the main thread, so its blocked read is interrupted

    threading.Thread(target=interrupt, daemon=True).start()
    with unhandled_sigterm_fails() as outer_handler:
        assert run_smoke(args(stand_in, "--cache-seconds", "3")) == code
        assert signal.getsignal(signal.SIGTERM) is outer_handler, "the SIGTERM handler is put back"
    out, err = capsys.readouterr()
    assert f"smoke test interrupted ({name})" in err
    assert [line.split("] ", 1)[1].split(":")[0].split(" (")[0] for line in step_lines(out)][-1] == f"STOP {step}", out
    link = stand_in.links[SHORT_ID]
    if step == "create":
        assert f"a link titled {link['title']!r} may exist: disable it in the admin" in out
        assert not [r for r in stand_in.requests if r[1] == "PATCH"]
    else:
        assert f"cleanup: disabling {SHORT_ID} answered 200" in out
        assert link["active"] is False


@contextlib.contextmanager
def unhandled_sigterm_fails():
    """SIGTERM that smoke.main leaves to the outer handler fails the test (by default it would end pytest)."""
    def outer_handler(signum, frame):
        raise AssertionError("smoke.main did not handle SIGTERM")

    previous = signal.signal(signal.SIGTERM, outer_handler)
    try:
        yield outer_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_failure_and_the_deploy_commands_own_cleanup_disable_the_link_once(stand_in):
    """deploy/deploy.py runs Smoke in-process; run() cleans up itself, so a second cleanup() is a no-op."""
    out = _Lines()
    run = smoke.Smoke(stand_in.url("admin"), "http://127.0.0.1:9", STAND_IN_TOKEN, smoke.DEFAULT_TARGET_URL, out=out)
    with pytest.raises(smoke.SmokeFailed, match="SHORTENER_SHORT_BASE_URL and SHORT_URL disagree"):
        run.run(5, 1)
    run.cleanup()
    assert [r[1] for r in stand_in.requests] == ["POST", "PATCH"]
    assert stand_in.links[SHORT_ID]["active"] is False
    assert sum("cleanup: disabling" in line for line in out.lines) == 1


class _Lines:
    def __init__(self):
        self.lines = []

    def write(self, text):
        self.lines.extend(text.splitlines())

    def flush(self):
        pass


# --- the token: never on the command line -----------------------------------------------------------------

def test_a_token_on_the_command_line_is_refused_without_being_echoed(stand_in, capsys):
    with pytest.raises(SystemExit) as exit_:
        smoke.main(args(stand_in, "--token", "s3cret-on-the-command-line"))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--token is refused: the process list and the shell history would keep it" in err
    assert "SMOKE_TOKEN" in err and "--token-file" in err
    assert "s3cret-on-the-command-line" not in err
    assert stand_in.requests == []


def test_the_token_is_read_from_smoke_token(stand_in, monkeypatch):
    monkeypatch.setenv("SMOKE_TOKEN", f"  {STAND_IN_TOKEN}\n")
    assert run_smoke(args(stand_in)) == 0
    assert {r[3]["Authorization"] for r in stand_in.requests if r[0] == "admin"} == {f"Bearer {STAND_IN_TOKEN}"}


def test_the_token_file_wins_over_smoke_token(stand_in, monkeypatch, tmp_path):
    monkeypatch.setenv("SMOKE_TOKEN", "not-this-one")
    path = tmp_path / "token"
    path.write_text(f"{STAND_IN_TOKEN}\n")
    path.chmod(0o600)
    assert run_smoke(args(stand_in, "--token-file", str(path))) == 0
    assert stand_in.links[SHORT_ID]["active"] is False


def test_a_token_file_under_home_is_found_when_the_shell_left_the_tilde(stand_in, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SMOKE_TOKEN")
    (tmp_path / ".smoke-token").write_text(STAND_IN_TOKEN)
    (tmp_path / ".smoke-token").chmod(0o600)
    assert run_smoke(args(stand_in, "--token-file", "~/.smoke-token")) == 0


@pytest.mark.parametrize("content, mode, message", [
    (STAND_IN_TOKEN, 0o644, "is readable by every user of this machine: chmod 600"),
    ("  \n", 0o600, "is empty"),
    (None, None, "cannot read the token file"),
])
def test_a_token_file_that_is_unsafe_empty_or_missing_is_refused(stand_in, capsys, tmp_path, content, mode, message):
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
        path.chmod(mode)
    with pytest.raises(SystemExit) as exit_:
        smoke.main(args(stand_in, "--token-file", str(path)))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and STAND_IN_TOKEN not in err
    assert stand_in.requests == []


def test_without_a_token_or_a_terminal_it_says_how_to_give_one(stand_in, capsys, monkeypatch):
    monkeypatch.delenv("SMOKE_TOKEN")
    monkeypatch.setattr(sys, "stdin", _Stdin(tty=False))
    with pytest.raises(SystemExit):
        smoke.main(args(stand_in))
    err = capsys.readouterr().err
    assert "an API token is needed: set SMOKE_TOKEN in the environment, pass --token-file PATH" in err
    assert stand_in.requests == []


def test_in_a_terminal_it_asks_for_the_token_without_echo(stand_in, capsys, monkeypatch):
    monkeypatch.delenv("SMOKE_TOKEN")
    monkeypatch.setattr(sys, "stdin", _Stdin(tty=True))
    prompts = []
    monkeypatch.setattr(smoke.getpass, "getpass", lambda prompt: prompts.append(prompt) or STAND_IN_TOKEN)
    assert run_smoke(args(stand_in)) == 0
    assert prompts == ["API token (not echoed): "]
    assert STAND_IN_TOKEN not in "".join(capsys.readouterr())


class _Stdin:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        return self.tty


# --- the link cache: from the stage file, else the template -------------------------------------------------

TEMPLATE_CACHE_DEFAULT = float(load_template()["Parameters"]["LinkCacheSeconds"]["Default"])


def write_stage(tmp_path, content):
    (tmp_path / "prod.json").write_text(content if isinstance(content, str) else json.dumps(content))
    return tmp_path


@pytest.mark.parametrize("value, seconds", [("30", 30), (0, 0), (2.5, 2.5)])
def test_the_cache_window_is_the_stage_files_link_cache_seconds(tmp_path, value, seconds):
    stages = write_stage(tmp_path, {"region": "us-east-1", "parameters": {"LinkCacheSeconds": value}})
    assert smoke.cache_seconds_setting(stage="prod", stages_dir=stages) == (
        seconds, f"{stages / 'prod.json'} parameters.LinkCacheSeconds")


@pytest.mark.parametrize("content", [{"region": "us-east-1", "parameters": {"AdminUrl": "https://a/prod"}},
                                     {"region": "us-east-1"}])
def test_a_stage_file_without_link_cache_seconds_means_the_templates_default(tmp_path, content):
    seconds, source = smoke.cache_seconds_setting(stage="prod", stages_dir=write_stage(tmp_path, content))
    assert seconds == TEMPLATE_CACHE_DEFAULT
    assert source == "cloudformation.yaml LinkCacheSeconds Default (the stage file leaves it out)"


def test_without_a_stage_the_cache_window_is_the_templates_default():
    assert smoke.cache_seconds_setting() == (TEMPLATE_CACHE_DEFAULT, "cloudformation.yaml LinkCacheSeconds Default")


def test_cache_seconds_overrides_the_stage_file(tmp_path):
    stages = write_stage(tmp_path, {"parameters": {"LinkCacheSeconds": "30"}})
    assert smoke.cache_seconds_setting("2", stage="prod", stages_dir=stages) == (2, "--cache-seconds")


@pytest.mark.parametrize("stage, content, message", [
    ("staging", {"parameters": {}}, "no stage file"),
    ("../prod", {"parameters": {}}, "a stage is a name"),
    ("prod", "{not json", "is not JSON"),
    ("prod", ["a list"], 'expected an object with a "parameters" object in it'),
    ("prod", {"parameters": ["LinkCacheSeconds"]}, 'expected an object with a "parameters" object in it'),
    ("prod", {"parameters": {"LinkCacheSeconds": "ten"}}, "'ten' is not a number of seconds"),
    ("prod", {"parameters": {"LinkCacheSeconds": -1}}, "-1 is not a number of seconds"),
    ("prod", {"parameters": {"LinkCacheSeconds": True}}, "True is not a number of seconds"),
    ("prod", {"parameters": {"LinkCacheSeconds": None}}, "None is not a number of seconds"),
])
def test_a_bad_stage_is_refused_with_what_is_wrong(tmp_path, stage, content, message):
    with pytest.raises(smoke.SettingError, match=re.escape(message)):
        smoke.cache_seconds_setting(stage=stage, stages_dir=write_stage(tmp_path, content))


def test_a_bad_stage_changes_nothing_and_exits_2(stand_in, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(smoke, "STAGES_DIR", write_stage(tmp_path, {"parameters": {"LinkCacheSeconds": "soon"}}))
    argv = [a for a in args(stand_in) if a not in ("--cache-seconds", "1")] + ["--stage", "prod"]
    with pytest.raises(SystemExit) as exit_:
        smoke.main(argv)
    assert exit_.value.code == 2
    assert "parameters.LinkCacheSeconds: 'soon' is not a number of seconds" in capsys.readouterr().err
    assert stand_in.requests == []


def test_the_410_step_waits_for_the_stage_files_cache_window(stand_in, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(smoke, "STAGES_DIR", write_stage(tmp_path, {"parameters": {"LinkCacheSeconds": "3"}}))
    argv = [a for a in args(stand_in) if a not in ("--cache-seconds", "1")] + ["--stage", "prod"]
    assert run_smoke(argv) == 0
    out = capsys.readouterr().out
    assert f"link cache: 3 s, from {tmp_path / 'prod.json'} parameters.LinkCacheSeconds" in out
    assert "ok   410 (within 8 s: cache 3 s + 5 s)" in out


NUMBER_PARAMETERS = {name: str(p["Default"]) for name, p in load_template()["Parameters"].items()
                     if p["Type"] == "Number" and "Default" in p}


@pytest.mark.parametrize("name", sorted(NUMBER_PARAMETERS))
def test_the_templates_defaults_read_without_yaml_match_the_yaml_parse(name):
    assert smoke.template_default(name, smoke.TEMPLATE_PATH.read_text()) == NUMBER_PARAMETERS[name]


def test_a_parameter_named_only_outside_parameters_has_no_default():
    text = ("Parameters:\n  Other:\n    Type: Number\n    Default: 1\n"
            "Outputs:\n  LinkCacheSeconds:\n    Value: !Ref LinkCacheSeconds\n    Default: 99\n")
    with pytest.raises(smoke.SettingError, match="no Default for the parameter LinkCacheSeconds"):
        smoke.template_default("LinkCacheSeconds", text)


# --- slow: real signals to a real process, and the Makefile ------------------------------------------------

@pytest.mark.slow
def test_ctrl_c_to_the_smoke_process_disables_its_link_and_exits_130(stand_in):
    stand_in.block(HOLD_DURING["counted"])
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.smoke", *args(stand_in)], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "SMOKE_TOKEN": STAND_IN_TOKEN})
    try:
        assert stand_in.arrived.wait(20), "the smoke process never reached the counted step"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 130, out + err
    assert "STOP counted" in out and f"cleanup: disabling {SHORT_ID} answered 200" in out
    assert "smoke test interrupted (Ctrl-C)" in err and "Traceback" not in err
    assert stand_in.links[SHORT_ID]["active"] is False


@pytest.mark.slow
def test_ctrl_c_in_the_terminal_of_make_smoke_disables_the_link(stand_in):
    """Ctrl-C signals the terminal's whole process group: make waits for the smoke test's clean-up."""
    stand_in.block(HOLD_DURING["counted"])
    process = subprocess.Popen(
        ["make", "--no-print-directory", "smoke", f"PYTHON={sys.executable}", f"ADMIN_URL={stand_in.url('admin')}",
         f"SHORT_URL={stand_in.url('short')}", "CACHE_SECONDS=1"], cwd=ROOT, text=True, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "SMOKE_TOKEN": STAND_IN_TOKEN})
    try:
        assert stand_in.arrived.wait(20), "make smoke never reached the counted step"
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode != 0
    assert f"cleanup: disabling {SHORT_ID} answered 200" in out and "smoke test interrupted (Ctrl-C)" in err
    assert stand_in.links[SHORT_ID]["active"] is False


def make_smoke_with(*variables, env=None):
    return subprocess.run(["make", "--no-print-directory", "smoke", f"PYTHON={sys.executable}", *variables],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_make_smoke_refuses_a_token_on_its_command_line(stand_in):
    result = make_smoke_with(f"ADMIN_URL={stand_in.url('admin')}", f"SHORT_URL={stand_in.url('short')}",
                             "TOKEN=s3cret-on-the-command-line")
    assert result.returncode == 2
    assert "make smoke takes no TOKEN=: the process list and the shell history would keep it" in result.stderr
    assert "SMOKE_TOKEN" in result.stderr and "TOKEN_FILE=path" in result.stderr
    assert "s3cret-on-the-command-line" not in result.stdout + result.stderr
    assert stand_in.requests == []


@pytest.mark.slow
def test_make_smoke_passes_token_file_root_url_and_cache_seconds_on(stand_in, tmp_path):
    path = tmp_path / "token"
    path.write_text(STAND_IN_TOKEN)
    path.chmod(0o600)
    stand_in.root = (302, "https://admin.example.com/prod")
    result = make_smoke_with(f"ADMIN_URL={stand_in.url('admin')}", f"SHORT_URL={stand_in.url('short')}",
                             f"TOKEN_FILE={path}", "ROOT_URL=https://admin.example.com/prod",
                             "CACHE_SECONDS=2", "COUNT_WITHIN=5", env={"SMOKE_TOKEN": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "link cache: 2 s, from --cache-seconds" in result.stdout
    assert "ok   root: 302 Location https://admin.example.com/prod" in result.stdout


# --- integration: the local stack --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The local stack (moto engine: the smoke test checks the HTTP contract, not the database)."""
    stack = Stack("moto", tmp_path_factory.mktemp("smoke-stack"))
    yield stack
    assert stack.stop() == 0, "\n".join(stack.lines[-30:])


def make_smoke(stack, token=TOKEN, short_url=None, token_file=None):
    """`make smoke` with the local stack's URLs and its 1 s cache window; the token in SMOKE_TOKEN or a file."""
    return make_smoke_with(
        f"ADMIN_URL=http://127.0.0.1:{stack.admin_port}",
        f"SHORT_URL={short_url or f'http://127.0.0.1:{stack.redirect_port}'}",
        "CACHE_SECONDS=1", "COUNT_WITHIN=20", *([f"TOKEN_FILE={token_file}"] if token_file else []),
        env={"SMOKE_TOKEN": "" if token_file else token},
    )


def smoke_links(stack):
    status, page = stack.api("GET", "/api/links?limit=100")
    assert status == 200
    return [link for link in page["links"] if link["title"].startswith("smoke test ")]


@pytest.mark.integration
def test_make_smoke_passes_and_leaves_its_link_disabled(stack):
    result = make_smoke(stack)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for step in STEPS:
        assert any(re.match(rf"\[\s*[\d.]+ s\] ok   {step}\b.*\(\d+\.\d\d s\)$", line) for line in lines), (step, lines)
    assert "smoke test passed" in lines[-1]
    (link,) = smoke_links(stack)
    assert link["is_active"] is False and link["status"] == "disabled"
    assert link["click_count"] >= 1, "the browser-like follow counted as a person's click"
    assert stack.short("GET", link["short_id"])[0] == 410


@pytest.mark.integration
def test_make_smoke_stops_at_the_first_failure_with_a_clear_message(stack):
    result = make_smoke(stack, token="not-a-real-token")
    assert result.returncode != 0
    assert "FAIL create: POST /api/links answered 401, not 201" in result.stdout
    assert "smoke test FAILED" in result.stderr
    assert not [line for line in result.stdout.splitlines() if "ok   follow" in line], "nothing after the failure"


@pytest.mark.integration
def test_a_failure_after_create_still_leaves_the_link_disabled(stack, tmp_path):
    """The admin hands out short links on another base URL than SHORT_URL: stop, and disable what was made."""
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    before = {link["short_id"] for link in smoke_links(stack)}
    result = make_smoke(stack, short_url="http://127.0.0.1:9/elsewhere", token_file=path)
    assert result.returncode != 0
    assert "SHORTENER_SHORT_BASE_URL and SHORT_URL disagree" in result.stdout
    (new,) = [link for link in smoke_links(stack) if link["short_id"] not in before]
    assert new["is_active"] is False
