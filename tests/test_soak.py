"""`make soak`: a 5-second version on the local stack, and each of its verdicts made to fail."""
import os
import re
import subprocess
import sys

import pytest

from tests import soak
from tests.stack_process import ROOT

# Loaded by every Python process started with this folder on PYTHONPATH (site imports sitecustomize):
# the stack's HTTP servers (the admin's werkzeug and the redirect's http.server) keep LEAK_KB of
# every request they parse, as a cache that is never emptied would.
LEAK_KB = 128
LEAK = f"""
import http.server

_kept = []
_parse = http.server.BaseHTTPRequestHandler.parse_request


def _parse_and_keep(self):
    _kept.append(self.raw_requestline + b"x" * {LEAK_KB} * 1024)
    return _parse(self)


http.server.BaseHTTPRequestHandler.parse_request = _parse_and_keep
"""


def _short_soak(**env):
    """`python -m tests.soak` for 5 s at 40 requests a second; the finished process."""
    env = {**os.environ, "SOAK_SECONDS": "5", "SOAK_RATE": "40", "SOAK_SETTLE_SECONDS": "30", **env}
    env.pop("SOAK_RSS_GROWTH_MB", None)  # the scaled bound, whatever the caller's shell says
    return subprocess.run(
        [sys.executable, "-m", "tests.soak"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.integration
@pytest.mark.soak
def test_a_five_second_soak_passes_with_every_click_counted():
    result = _short_soak()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "soak passed: zero errors, memory flat, every click counted"
    assert "errors: 0" in lines
    assert any(line.startswith("RSS stack (python -m local_stack): ") for line in lines)
    if "dynamodb-local" in lines[0]:
        assert any(line.startswith("RSS DynamoDB Local (java): ") for line in lines)
    (clicks,) = [line for line in lines if line.startswith("clicks: ")]
    served, counted = map(int, re.match(r"clicks: (\d+) browser GETs answered 302, (\d+) counted;", clicks).groups())
    assert served == counted and served > 0


@pytest.mark.integration
@pytest.mark.soak
def test_a_leak_in_the_stack_fails_the_five_second_soak(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(LEAK)
    result = _short_soak(PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL memory: stack (python -m local_stack) grew" in result.stderr, result.stdout + result.stderr
    assert "memory: DynamoDB Local" not in result.stderr  # the leak is in our process, and only there


def test_the_memory_bound_scales_with_the_requests_after_the_warm_up():
    stack = "stack (python -m local_stack)"
    assert soak.memory_bound_mb(stack, 0) == 8
    assert soak.memory_bound_mb(stack, 512) == 9  # 2 KB a request
    assert soak.memory_bound_mb(stack, 3000) < 15  # a 60 s soak at 50 requests a second: a leak of 6 KB a request fails it
    assert soak.memory_bound_mb("DynamoDB Local (java)", 256) == 41
    assert soak.memory_bound_mb(stack, 3000, fixed_mb=50) == 50  # SOAK_RSS_GROWTH_MB


def test_memory_that_grows_past_the_bound_fails():
    assert soak.memory_verdict("stack", 100 * 1024, 140 * 1024, 50) is None
    assert "grew 60.0 MB" in soak.memory_verdict("stack", 100 * 1024, 160 * 1024, 50)
    assert "no RSS figure" in soak.memory_verdict("java", None, 1, 50)


def test_a_click_lost_or_counted_twice_fails():
    served, bots = {"a": 3, "b": 1}, {"a": 1}
    assert soak.click_verdict(served, bots, {"a": (3, 1), "b": (1, 0), "c": (0, 0)}) == []
    assert soak.click_verdict(served, bots, {"a": (2, 1), "b": (1, 0)}) == ["clicks: a counted 2 clicks + 1 bots, served 3 + 1"]
    assert soak.click_verdict(served, bots, {"a": (3, 1), "b": (1, 0), "c": (1, 0)}) == ["clicks: c counted 1 clicks + 0 bots, served 0 + 0"]
    assert "not listed" in soak.click_verdict(served, bots, {"a": (3, 1)})[0]


def test_a_traceback_in_the_stacks_output_fails():
    assert soak.log_verdict(["Ready.", "INFO webapp fine"]) == []
    assert soak.log_verdict(["Traceback (most recent call last):", "ERROR webapp boom"])[0].startswith("stack log: 2 error")


def test_settings_come_from_the_environment_with_defaults():
    assert soak.settings({})["seconds"] == 60 and soak.settings({})["rss_growth_mb"] is None
    assert soak.settings({"SOAK_RSS_GROWTH_MB": "50"})["rss_growth_mb"] == 50
    assert soak.settings({"SOAK_SECONDS": "5", "SOAK_RATE": "10"})["seconds"] == 5
    assert soak.warmup_seconds(60) == 10 and soak.warmup_seconds(5) == 1
