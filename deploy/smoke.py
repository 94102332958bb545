"""Smoke-test a deployed stack end to end: `make smoke ADMIN_URL=... SHORT_URL=... STAGE=...`.

Standard library only, so it runs from any Python 3.11+ without `.venv`. The API token comes from
$SMOKE_TOKEN, from --token-file, or from a prompt; never from the command line, where the process
list and the shell history would keep it. Against the admin's JSON API (bearer token) and the
short-link API it:
1. creates a link titled "smoke test ..." (POST /api/links), pointing at --target-url;
2. follows it (GET <SHORT_URL>/<id>, browser User-Agent, redirects not followed): 302 to the target;
3. checks the bare domain (GET <SHORT_URL>/): 302 or 301 to --root-url (the stack's AdminUrl);
4. waits until the click is counted (GET /api/links/<id>, click_count >= 1), within --count-within;
5. disables it (PATCH {"is_active": false});
6. waits for 410 on the short link, within the link cache (--cache-seconds, else the stage file's
   LinkCacheSeconds, else the template's Default) plus a margin.
Each step is printed with its timing. The first failure stops the run with a message and exit
code 1; Ctrl-C stops it with exit code 130, SIGTERM with 143. Whatever stops it, a link that was
created is disabled first, so every run leaves its link disabled.
"""
import argparse
import contextlib
import getpass
import http.client
import json
import math
import os
import re
import signal
import socket
import stat
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "cloudformation.yaml"
STAGES_DIR = ROOT / "deploy" / "stages"
CACHE_PARAMETER = "LinkCacheSeconds"
TOKEN_VARIABLE = "SMOKE_TOKEN"

# curl and python-urllib User-Agents are counted as bots; the smoke click must count as a person's.
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)
DEFAULT_TARGET_URL = "https://example.com/linkshortener-smoke-test"
# CloudWatch Logs delivers subscription batches within seconds, but allow for a slow minute.
DEFAULT_COUNT_WITHIN_SECONDS = 120
DISABLE_MARGIN_SECONDS = 5
POLL_SECONDS = 1.0
REQUEST_TIMEOUT_SECONDS = 15
# The admin's answers are small JSON objects and the redirect's are empty: never read more than this.
MAX_BODY_BYTES = 1024 * 1024
MAX_TOKEN_FILE_BYTES = 4096
# An API token is printable ASCII with no space (webapp/store/tokens.py); anything else could split the
# Authorization header, and http.client's refusal would print the token.
TOKEN_CHARACTERS = re.compile(r"[\x21-\x7e]+")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
ROOT_REDIRECT_STATUSES = (301, 302)
STAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # a file name under STAGES_DIR, never a path
SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class SmokeFailed(Exception):
    """A step did not get what a healthy stack answers."""


class SettingError(Exception):
    """A setting of the run (token, stage file, template) is missing or unusable; nothing was done."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM, raised where the run is, so it unwinds (and cleans up) as Ctrl-C does."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class Smoke:
    """One run against one stack; prints each step as it goes."""

    def __init__(self, admin_url, short_url, token, target_url, out=None, root_url=None):
        self.admin_url = admin_url.rstrip("/")
        self.short_url = short_url.rstrip("/")
        self.token = token
        self.target_url = target_url
        # sys.stdout looked up now, not at import, so a stdout redirected since (a test's) is honoured.
        self.out = out if out is not None else sys.stdout
        # Where the bare short domain sends visitors: the stack's AdminUrl, normally the admin itself.
        self.root_url = (root_url or admin_url).rstrip("/")
        self.started = time.monotonic()
        self.short_id = None
        self.title = None
        self._creating = False  # a POST whose answer was not read: a link may exist that we cannot name
        self._cleaned_up = False

    def run(self, count_within, cache_seconds):
        """All the steps; raises SmokeFailed at the first that fails, after disabling the link it made.

        Ctrl-C (KeyboardInterrupt) and SIGTERM (Interrupted, under `sigterm_as_interrupt`) clean up too.
        """
        try:
            self.step("create", self.create)
            self.step("follow", self.follow)
            self.step("root", self.root)
            self.step(f"counted (within {count_within:g} s)", lambda: self.wait_for_count(count_within))
            self.step("disable", self.disable)
            limit = cache_seconds + DISABLE_MARGIN_SECONDS
            self.step(f"410 (within {limit:g} s: cache {cache_seconds:g} s + {DISABLE_MARGIN_SECONDS} s)",
                      lambda: self.wait_for_gone(limit))
        except BaseException:
            # Whatever stops the run (a failed step, Ctrl-C, SIGTERM, a bug) leaves no live link behind.
            self.cleanup()
            raise

    def step(self, name, action):
        """Run one step, print its outcome and timing, and return its result."""
        began = time.monotonic()
        try:
            result, detail = action()
        except SmokeFailed as err:
            self._print(f"FAIL {name}: {err}", began)
            raise
        except KeyboardInterrupt as err:
            self._print(f"STOP {name}: interrupted ({_signal_name(err)})", began)
            raise
        self._print(f"ok   {name}: {detail}", began)
        return result

    def create(self):
        self.title = f"smoke test {datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ} (make smoke; left disabled)"
        self._creating = True
        status, _, body = self.api("POST", "/api/links", {"url": self.target_url, "title": self.title})
        if status != 201:
            self._creating = False  # nothing was made
            raise SmokeFailed(f"POST /api/links answered {status}, not 201: {_snippet(body)}")
        link = _json(body, "POST /api/links")
        if not link.get("short_id"):
            raise SmokeFailed(f"POST /api/links answered no short_id: {_snippet(body)}")
        self.short_id = link["short_id"]  # from here on, a failure still disables it
        self._creating = False
        expected = f"{self.short_url}/{link['short_id']}"
        if link.get("short_url") != expected:
            raise SmokeFailed(f"the admin hands out {link.get('short_url')}, not {expected}: its "
                              f"SHORTENER_SHORT_BASE_URL and SHORT_URL disagree")
        return link, f"{link['short_id']} -> {link.get('original_url')}"

    def follow(self):
        status, headers, body = self.short()
        if status != 302 or headers.get("location") != self.target_url:
            raise SmokeFailed(f"GET {self.short_url}/{self.short_id} answered {status} "
                              f"Location {headers.get('location')!r}, not 302 to {self.target_url}: {_snippet(body)}")
        return None, f"302 Location {headers['location']}"

    def root(self):
        status, headers, body = _request("GET", f"{self.short_url}/", _browser_headers())
        location = headers.get("location")
        # "https://admin/prod" and "https://admin/prod/" are the same admin; no other difference is.
        if status not in ROOT_REDIRECT_STATUSES or (location or "").rstrip("/") != self.root_url:
            raise SmokeFailed(f"GET {self.short_url}/ answered {status} Location {location!r}, not 302 to "
                              f"{self.root_url} (the stack's AdminUrl parameter; --root-url): {_snippet(body)}")
        return None, f"{status} Location {location}"

    def wait_for_count(self, within):
        def counted():
            status, _, body = self.api("GET", f"/api/links/{self.short_id}")
            if status != 200:
                raise SmokeFailed(f"GET /api/links/{self.short_id} answered {status}: {_snippet(body)}")
            count = _json(body, "GET /api/links/<id>").get("click_count", 0)
            if isinstance(count, bool) or not isinstance(count, int):
                raise SmokeFailed(f"GET /api/links/{self.short_id} answered click_count {count!r}, not a number")
            return count >= 1

        if not _poll(counted, within):
            raise SmokeFailed(f"click_count still 0 after {within:g} s: is the click pipeline (the redirect's "
                              f"log subscription and the aggregator) delivering? See the dashboard and alarms")
        return None, "click_count >= 1"

    def disable(self):
        status, _, body = self.api("PATCH", f"/api/links/{self.short_id}", {"is_active": False})
        if status != 200 or _json(body, "PATCH /api/links/<id>").get("is_active") is not False:
            raise SmokeFailed(f"PATCH /api/links/{self.short_id} answered {status}: {_snippet(body)}")
        return None, "is_active false"

    def wait_for_gone(self, within):
        last = []

        def gone():
            status, _, _ = self.short()
            last[:] = [status]
            return status == 410

        if not _poll(gone, within):
            raise SmokeFailed(f"the short link still answers {last[0]} after {within:g} s, not 410: is the "
                              f"stack's LinkCacheSeconds longer than the --cache-seconds given?")
        return None, "410 Gone"

    def cleanup(self):
        """After a failure or an interrupt: leave the smoke link disabled, as a passing run does (once)."""
        if self._cleaned_up:
            return
        self._cleaned_up = True
        if self.short_id is None:
            if self._creating:
                self._print(f"cleanup: stopped before the admin answered the create; a link titled "
                            f"{self.title!r} may exist: disable it in the admin", time.monotonic())
            return
        began = time.monotonic()
        try:
            status, _, _ = self.api("PATCH", f"/api/links/{self.short_id}", {"is_active": False})
        except SmokeFailed as err:
            status = err
        except KeyboardInterrupt:
            # A second Ctrl-C (or SIGTERM) stops the clean-up itself: say what is left to do by hand.
            self._print(f"cleanup interrupted: {self.short_id} may still be active: disable it in the admin",
                        began)
            raise
        self._print(f"cleanup: disabling {self.short_id} answered {status}", began)

    def api(self, method, path, payload=None):
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        body = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(payload).encode()
        return _request(method, self.admin_url + path, headers, body)

    def short(self):
        return _request("GET", f"{self.short_url}/{self.short_id}", _browser_headers())

    def _print(self, text, began):
        now = time.monotonic()
        print(f"[{now - self.started:7.2f} s] {text} ({now - began:.2f} s)", file=self.out, flush=True)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within it, SIGTERM raises Interrupted where the run is, so the clean-up runs as on Ctrl-C.

    Python only lets the main thread set signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _signal_name(err):
    return SIGNAL_NAMES.get(getattr(err, "signum", signal.SIGINT), "a signal")


def _browser_headers():
    return {"User-Agent": BROWSER_USER_AGENT, "Accept": "text/html"}


def _request(method, url, headers, body=None):
    """One request, redirects not followed; returns (status, lowercase headers, body)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise SmokeFailed(f"not an http(s) URL: {url}")
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, port, timeout=REQUEST_TIMEOUT_SECONDS)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # The socket timeout bounds each read, not the request: a server trickling a byte at a time would hold
    # the run for ever. A watchdog shuts the socket down when the whole request has taken too long.
    expired = threading.Event()
    watchdog = threading.Timer(REQUEST_TIMEOUT_SECONDS, _expire, (connection, expired))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        answer = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read(MAX_BODY_BYTES)
    except (OSError, http.client.HTTPException) as err:
        if expired.is_set():
            raise SmokeFailed(f"{method} {url} took longer than {REQUEST_TIMEOUT_SECONDS:g} s") from err
        # Connection refused, DNS, TLS, timeouts: say which URL, so the operator knows which side.
        raise SmokeFailed(f"{method} {url} failed: {err.__class__.__name__}: {err}") from err
    finally:
        watchdog.cancel()
        connection.close()
    if expired.is_set():  # the shut-down socket ended a read early: what came is not the answer
        raise SmokeFailed(f"{method} {url} took longer than {REQUEST_TIMEOUT_SECONDS:g} s")
    return answer


def _expire(connection, expired):
    expired.set()
    if connection.sock is not None:
        with contextlib.suppress(OSError):
            connection.sock.shutdown(socket.SHUT_RDWR)


def _poll(predicate, within):
    deadline = time.monotonic() + within
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


def _json(body, what):
    try:
        value = json.loads(body)
    except ValueError:
        raise SmokeFailed(f"{what} did not answer JSON: {_snippet(body)}") from None
    if not isinstance(value, dict):
        raise SmokeFailed(f"{what} did not answer a JSON object: {_snippet(body)}")
    return value


def _snippet(body):
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    # A server's text reaches the operator's terminal: escape sequences are shown, never obeyed.
    return "".join(c if c.isprintable() else ("" if c in "\r\n" else repr(c)[1:-1]) for c in text[:200].replace("\n", " "))


def template_default(name, text):
    """A parameter's Default in cloudformation.yaml's text.

    Read with a pattern, not a YAML parser, so `make smoke` keeps needing only the standard library;
    tests/test_deploy_smoke.py checks it against local_stack.template's parse of the same file.
    """
    match = re.search(rf"^Parameters:[ \t]*\n(?:(?:[ \t#].*)?\n)*?  {re.escape(name)}:[ \t]*\n((?:(?:    .*)?\n)*)",
                      text, re.M)
    default = match and re.search(r"^    Default:[ \t]*['\"]?([^'\"\s#]+)['\"]?[ \t]*(?:#.*)?$", match.group(1), re.M)
    if not default:
        raise SettingError(f"no Default for the parameter {name} found in {TEMPLATE_PATH.name}: "
                           f"give --cache-seconds (CACHE_SECONDS=) instead")
    return default.group(1)


def cache_seconds_setting(override=None, stage=None, stages_dir=None, template_path=None):
    """(seconds, where they came from): the override, else the stage file's LinkCacheSeconds, else the template's."""
    if override is not None:
        return _seconds(override, "--cache-seconds"), "--cache-seconds"
    if stage is not None:
        path = Path(stages_dir or STAGES_DIR) / f"{stage}.json"
        parameters = _stage_parameters(stage, path)
        if CACHE_PARAMETER in parameters:
            where = f"{_shown(path)} parameters.{CACHE_PARAMETER}"
            return _seconds(parameters[CACHE_PARAMETER], where), where
    template_path = Path(template_path or TEMPLATE_PATH)
    try:
        text = template_path.read_text(encoding="utf-8")
    except OSError as err:
        raise SettingError(f"cannot read {template_path}: {err.strerror}: give --cache-seconds instead") from None
    where = f"{_shown(template_path)} {CACHE_PARAMETER} Default" + (" (the stage file leaves it out)" if stage else "")
    return _seconds(template_default(CACHE_PARAMETER, text), where), where


def _shown(path):
    """A path as the operator would type it: relative to the repository when it is inside it."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _stage_parameters(stage, path):
    """The stage file's "parameters" object, or a SettingError saying what is wrong with the file."""
    if not STAGE_NAME.fullmatch(stage):
        raise SettingError(f"--stage {stage!r}: a stage is a name (letters, digits, - and _), "
                           f"the file deploy/stages/<stage>.json")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = sorted(p.stem for p in path.parent.glob("*.json")) if path.parent.is_dir() else []
        raise SettingError(f"no stage file {path} (stages: {', '.join(known) or 'none yet'})") from None
    except OSError as err:
        raise SettingError(f"cannot read {path}: {err.strerror}") from None
    try:
        settings = json.loads(text)
    except ValueError as err:
        raise SettingError(f"{path} is not JSON: {err}") from None
    parameters = settings.get("parameters", {}) if isinstance(settings, dict) else None
    if not isinstance(parameters, dict):
        raise SettingError(f"{path}: expected an object with a \"parameters\" object in it")
    return parameters


def _seconds(value, where):
    """A number of seconds >= 0 from a setting (CloudFormation parameter values are often strings)."""
    try:
        seconds = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise SettingError(f"{where}: {value!r} is not a number of seconds (0 or more)")
    return seconds


def read_token(token_file=None, environ=os.environ, stdin=None):
    """The API token: from --token-file, else $SMOKE_TOKEN, else a prompt when stdin is a terminal."""
    stdin = stdin or sys.stdin
    if token_file is not None:
        # expanduser: zsh and sh leave the ~ of `make smoke TOKEN_FILE=~/...` to us (bash expands it).
        token = _read_token_file(Path(token_file).expanduser())
    elif environ.get(TOKEN_VARIABLE):
        token = environ[TOKEN_VARIABLE].strip()
    elif stdin is not None and stdin.isatty():
        token = getpass.getpass("API token (not echoed): ").strip()
    else:
        raise SettingError(f"an API token is needed: set {TOKEN_VARIABLE} in the environment, pass "
                           f"--token-file PATH (make smoke TOKEN_FILE=PATH), or run it in a terminal to be asked")
    if not token:
        raise SettingError("the API token is empty")
    if not TOKEN_CHARACTERS.fullmatch(token):
        raise SettingError("the API token holds a space, a line break or a character no token has: "
                           "give the token alone, on one line")
    return token


def check_admin_url(url):
    """The token goes to the admin: over https, or plain http to this machine only (the local stack)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
        raise SettingError(f"--admin-url {url}: the API token is sent there, so it must be https "
                           f"(plain http only to {', '.join(LOOPBACK_HOSTS)})")


def _read_token_file(path):
    try:
        status = path.stat()
    except OSError as err:
        raise SettingError(f"cannot read the token file {path}: {err.strerror}") from None
    # Checked before reading: a FIFO would block, a device or a huge file would never end.
    if not stat.S_ISREG(status.st_mode):
        raise SettingError(f"the token file {path} is not a regular file")
    if status.st_size > MAX_TOKEN_FILE_BYTES:
        raise SettingError(f"the token file {path} is too large for a token ({status.st_size} bytes)")
    # As ssh does with a private key: a secret every user of the machine can read is refused.
    if os.name == "posix" and status.st_mode & stat.S_IROTH:
        raise SettingError(f"the token file {path} is readable by every user of this machine: chmod 600 {path}")
    try:
        with path.open("rb") as file:
            data = file.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as err:
        raise SettingError(f"cannot read the token file {path}: {err.strerror}") from None
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise SettingError(f"the token file {path} is too large for a token")
    token = data.decode("utf-8", "replace").strip()
    if not token:
        raise SettingError(f"the token file {path} is empty")
    return token


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--admin-url", required=True, help="the admin app's URL, stage included (…/prod)")
    parser.add_argument("--short-url", required=True, help="the stack's ShortBaseUrl output")
    parser.add_argument("--root-url", help="where GET <short-url>/ must redirect: the stack's AdminUrl "
                                           "parameter (default: --admin-url)")
    parser.add_argument("--token-file", metavar="PATH",
                        help=f"a file holding the API token, not readable by others (default: ${TOKEN_VARIABLE}, "
                             f"else a prompt)")
    parser.add_argument("--token", help=argparse.SUPPRESS)  # only to refuse it with a useful message
    parser.add_argument("--target-url", default=DEFAULT_TARGET_URL, help="where the smoke link points")
    parser.add_argument("--count-within", default=DEFAULT_COUNT_WITHIN_SECONDS,
                        help="seconds the click may take to be counted (default: %(default)s)")
    parser.add_argument("--stage", help="read LinkCacheSeconds from deploy/stages/<stage>.json")
    parser.add_argument("--cache-seconds",
                        help="the stack's LinkCacheSeconds (default: the stage file's, else cloudformation.yaml's)")
    args = parser.parse_args(argv)
    if args.token is not None:
        parser.error(f"--token is refused: the process list and the shell history would keep it. "
                     f"Set {TOKEN_VARIABLE} in the environment, or pass --token-file PATH")
    with sigterm_as_interrupt():
        try:
            count_within = _seconds(args.count_within, "--count-within")
            cache_seconds, source = cache_seconds_setting(args.cache_seconds, args.stage)
            check_admin_url(args.admin_url)
            token = read_token(args.token_file)
        except SettingError as err:
            parser.error(str(err))
        except KeyboardInterrupt as err:  # at the prompt: nothing was made yet
            return _interrupted(err)
        print(f"link cache: {cache_seconds:g} s, from {source}", flush=True)
        smoke = Smoke(args.admin_url, args.short_url, token, args.target_url, root_url=args.root_url)
        try:
            smoke.run(count_within, cache_seconds)
        except SmokeFailed as err:
            print(f"smoke test FAILED: {err}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as err:
            return _interrupted(err)
    print(f"smoke test passed in {time.monotonic() - smoke.started:.1f} s; {smoke.short_id} is left disabled")
    return 0


def _interrupted(err):
    """Exit code 128 + the signal's number, as a shell reports a process a signal stopped."""
    print(f"smoke test interrupted ({_signal_name(err)})", file=sys.stderr)
    return 128 + getattr(err, "signum", signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
