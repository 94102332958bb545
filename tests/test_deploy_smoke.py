"""`make smoke`, run against the local stack as CI's proof that it works against a deployed one."""
import re
import subprocess
import sys

import pytest

from tests.stack_process import ROOT, TOKEN, Stack

pytestmark = pytest.mark.integration

STEPS = ["create", "follow", "counted", "disable", "410"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The local stack (moto engine: the smoke test checks the HTTP contract, not the database)."""
    stack = Stack("moto", tmp_path_factory.mktemp("smoke-stack"))
    yield stack
    assert stack.stop() == 0, "\n".join(stack.lines[-30:])


def make_smoke(stack, token=TOKEN, short_url=None):
    """`make smoke` with the local stack's URLs and its 1 s cache window."""
    return subprocess.run(
        ["make", "--no-print-directory", "smoke", f"PYTHON={sys.executable}",
         f"ADMIN_URL=http://127.0.0.1:{stack.admin_port}",
         f"SHORT_URL={short_url or f'http://127.0.0.1:{stack.redirect_port}'}",
         f"TOKEN={token}", "CACHE_SECONDS=1", "COUNT_WITHIN=20"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def smoke_links(stack):
    status, page = stack.api("GET", "/api/links?limit=100")
    assert status == 200
    return [link for link in page["links"] if link["title"].startswith("smoke test ")]


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


def test_make_smoke_stops_at_the_first_failure_with_a_clear_message(stack):
    result = make_smoke(stack, token="not-a-real-token")
    assert result.returncode != 0
    assert "FAIL create: POST /api/links answered 401, not 201" in result.stdout
    assert "smoke test FAILED" in result.stderr
    assert not [line for line in result.stdout.splitlines() if "ok   follow" in line], "nothing after the failure"


def test_a_failure_after_create_still_leaves_the_link_disabled(stack):
    """The admin hands out short links on another base URL than SHORT_URL: stop, and disable what was made."""
    before = {link["short_id"] for link in smoke_links(stack)}
    result = make_smoke(stack, short_url="http://127.0.0.1:9/elsewhere")
    assert result.returncode != 0
    assert "SHORTENER_SHORT_BASE_URL and SHORT_URL disagree" in result.stdout
    (new,) = [link for link in smoke_links(stack) if link["short_id"] not in before]
    assert new["is_active"] is False
