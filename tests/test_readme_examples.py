"""The README's examples run as written: every `console` block of README.md, in order, against the local stack.

Each `$ ` line (with its `\\` continuations) runs in bash with `TOKEN` set, and what it prints must
match the lines shown under it. `<time>`, `<date>`, `<token>` and `<other id>` stand for what changes
from run to run; `<id>` is the id the first answer that shows one gave, and later commands and
answers use that same value. Every other character, counts included, must be the same. The stack is
`python -m local_stack`, started as `make run` starts it, on free ports that replace :5000 and :8080.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.stack_process import TOKEN, Stack

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDERS = {
    "<time>": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
    "<date>": r"\d{4}-\d\d-\d\d",
    "<token>": r"shk_[A-Za-z0-9_-]+",
    "<other id>": r"[A-Za-z0-9_-]+",
}
CAPTURED = {"<id>": r"(?P<id>[A-Za-z0-9_-]+)"}  # the first match is kept and reused
COMMAND_SECONDS = 60  # the tour's own waits are a few seconds; this bounds a wait that never ends


def tour(readme_text):
    """[(command, [expected lines])] from every console block of the README, in order."""
    steps = []
    for indent, block in re.findall(r"^( *)```console\n(.*?)^ *```", readme_text, re.S | re.M):
        lines = [line.removeprefix(indent) for line in block.splitlines()]
        while lines:
            line = lines.pop(0)
            assert line.startswith("$ "), f"console block lines start with '$ ' or follow a command: {line!r}"
            command = line[2:]
            while command.endswith("\\"):
                command = command[:-1] + lines.pop(0).strip()
            expected = []
            while lines and not lines[0].startswith("$ "):
                expected.append(lines.pop(0))
            steps.append((command, expected))
    return steps


def matches(expected, actual, captured=None):
    """True when the printed lines are the shown ones, placeholders standing for their patterns.

    `captured` holds the values of <id> seen so far: a known one must appear again as it was, and a
    new one is added."""
    captured = {} if captured is None else captured
    pattern = re.escape("\n".join(expected))
    for placeholder, regex in PLACEHOLDERS.items():
        pattern = pattern.replace(re.escape(placeholder), regex)
    for placeholder, regex in CAPTURED.items():
        known = captured.get(placeholder)
        first, *rest = pattern.split(re.escape(placeholder))
        later = re.escape(known) if known else f"(?P={placeholder[1:-1]})"  # the same value again
        pattern = first + "".join((re.escape(known) if known else regex if i == 0 else later) + part
                                  for i, part in enumerate(rest))
    found = re.fullmatch(pattern, "\n".join(actual.splitlines()))
    if found:
        captured.update({f"<{name}>": value for name, value in found.groupdict().items() if value})
    return found is not None


def on_ports(text, stack):
    return text.replace("127.0.0.1:5000", f"127.0.0.1:{stack.admin_port}").replace(
        "127.0.0.1:8080", f"127.0.0.1:{stack.redirect_port}")


STEPS = tour((ROOT / "README.md").read_text())


def test_a_captured_id_must_come_back_unchanged():
    captured = {}
    assert matches(['{"id":"<id>"}'], '{"id":"Ab1"}', captured) and captured == {"<id>": "Ab1"}
    assert not matches(['[{"id":"<id>"}]'], '[{"id":"Zz9"}]', captured)
    assert matches(['[{"id":"<id>"}]'], '[{"id":"Ab1"}]', captured)


def test_the_tour_is_found_and_shows_what_the_issue_asked_for():
    commands = " ".join(command for command, _ in STEPS)
    assert len(STEPS) >= 11 and "/api/tokens" in commands
    assert "-A 'Mozilla/5.0" in commands and " -I " in commands  # a browser GET, and a HEAD
    assert any('"click_count":1' in line and '"bot_count":1' in line for _, expected in STEPS for line in expected)


@pytest.mark.parametrize("expected, actual, agree", [
    (['{"click_count":1,"at":"<time>"}'], '{"click_count":1,"at":"2026-12-02T13:58:00Z"}\n', True),
    (['{"click_count":1,"at":"<time>"}'], '{"click_count":0,"at":"2026-12-02T13:58:00Z"}\n', False),
    (['{"click_count":1,"at":"<time>"}'], '{"click_count":1,"at":"soon"}\n', False),
    (["302"], "302\n", True),
    (['{"id":"<id>","also":"<id>"}'], '{"id":"abc","also":"abc"}', True),
    (['{"id":"<id>","also":"<id>"}'], '{"id":"abc","also":"abd"}', False),
    (['{"token":"<token>"}'], '{"token":"anything"}', False),
    (["302"], "302\n410\n", False),
    ([], "", True),
    ([], "surprise\n", False),
])
def test_the_output_matcher_can_fail(expected, actual, agree):
    assert matches(expected, actual) is agree


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not shutil.which("curl"):
        pytest.fail("the README's tour needs curl on PATH")
    stack = Stack("auto", tmp_path_factory.mktemp("readme-tour"))  # LOCAL_DYNAMODB=auto, as `make run`
    yield stack
    stack.stop()


@pytest.mark.integration
def test_the_readme_tour_runs_as_written(stack):
    env = {**os.environ, "TOKEN": TOKEN}
    captured = {}
    for command, expected in STEPS:
        runnable = on_ports(command, stack)
        for placeholder, value in captured.items():
            runnable = runnable.replace(placeholder, value)  # what a reader copies from an earlier answer
        assert "<" not in runnable.replace("<<", ""), f"no earlier answer gave a value for: {command}"
        result = subprocess.run(["bash", "-c", runnable], capture_output=True, text=True,
                                env=env, timeout=COMMAND_SECONDS)
        shown = [on_ports(line, stack) for line in expected]
        assert result.returncode == 0, f"{command}\nexit {result.returncode}: {result.stderr}"
        assert matches(shown, result.stdout, captured), (
            f"{command}\nREADME shows:\n" + "\n".join(shown) + f"\nit printed:\n{result.stdout}")
