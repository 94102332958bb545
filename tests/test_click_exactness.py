"""Click exactness end to end: the local stack (`python -m local_stack` on DynamoDB Local), over real HTTP.

What this proves (issue 9, "Click exactness, end to end"):
- N human clicks on a link give a count of exactly N, with bots (Twitterbot, curl, python-requests)
  counted apart as bots and HEAD requests not counted at all, and the count stays N afterwards;
- a flood of junk referrers (9,000-character hosts, hundreds of random hosts, markup) and forged
  country headers on one link leaves every other link's count exact, and the flooded link's too.
Redelivery, a crash half-way through a batch, out-of-order retries and a replay are proven at the
handler level, with failures injected at every step, in tests/test_click_pipeline.py; not repeated here.
"""
import os
import http.client
import random
import time

import pytest

from local_stack.dynamodb import java_major_version
from tests.stack_process import BROWSER, Stack, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif((java_major_version() or 0) < 11 and not os.environ.get("REQUIRE_DYNAMODB_LOCAL"), reason="DynamoDB Local needs Java 11+"),
]
BOTS = ["Twitterbot/1.0", "curl/8.4.0", "python-requests/2.31.0"]
COUNT_WITHIN = 30  # seconds for the last click to be counted (flushes every 0.5 s)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack("dynamodb-local", tmp_path_factory.mktemp("exactness"))
    yield stack
    stack.stop()


def visit(stack, method, short_id, headers):
    """One request to the short-link port with these headers; the status."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.redirect_port, timeout=10)
    connection.request(method, f"/{short_id}", headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


def create(stack, slug):
    status, body = stack.api("POST", "/api/links", {"url": f"https://example.com/{slug}", "slug": slug, "expires_at": None})
    assert status == 201, body


def counts(stack, short_id):
    status, body = stack.api("GET", f"/api/links/{short_id}")
    assert status == 200
    return body["click_count"], body["bot_count"]


def settled(stack, expected):
    """Wait until every link shows its expected (clicks, bots), then check once more a moment later."""
    reached = wait_for(lambda: all(counts(stack, s) == c for s, c in expected.items()), timeout=COUNT_WITHIN)
    got = {s: counts(stack, s) for s in expected}
    assert reached, f"counts never reached {expected}: {got}"
    time.sleep(2)  # four more flushes: nothing may be counted twice
    assert {s: counts(stack, s) for s in expected} == expected


def test_n_human_clicks_count_exactly_n_with_bots_and_head_excluded(stack, record_figure):
    create(stack, "humans")
    humans, bots, heads = 60, 3 * len(BOTS), 15
    for i in range(humans):
        assert visit(stack, "GET", "humans", {"User-Agent": BROWSER}) == 302
        if i % 4 == 0 and i // 4 < heads:
            assert visit(stack, "HEAD", "humans", {"User-Agent": BROWSER}) == 302
        if i % 5 == 0 and i // 5 < bots:
            assert visit(stack, "GET", "humans", {"User-Agent": BOTS[i // 5 % len(BOTS)]}) == 302
    settled(stack, {"humans": (humans, bots)})
    status, stats = stack.api("GET", "/api/links/humans/stats?days=2")
    assert status == 200
    assert sum(day["clicks"] for day in stats["days"]) == humans
    assert sum(day["bots"] for day in stats["days"]) == bots
    # RELIABILITY.md quotes these from results/tests.json.
    record_figure("exactness.human_clicks", humans, basis="counted")
    record_figure("exactness.bot_clicks", bots, basis="counted")
    record_figure("exactness.head_requests", heads, basis="counted")


def test_a_flood_of_junk_on_one_link_leaves_every_count_exact(stack, record_figure):
    rng = random.Random(9)
    for slug in ("flood", "calm1", "calm2"):
        create(stack, slug)
    junk = ["x" * 9000 + ".example", "<script>alert(1)</script>.example", "bücher.example", ".".join(["a" * 63] * 140)]
    flood = calm = 0
    for i in range(300):
        host = junk[i % len(junk)] if i % 3 == 0 else "".join(rng.choice("abcdefghij") for _ in range(12)) + ".example"
        headers = {
            "User-Agent": BROWSER,
            "Referer": f"https://{host}/path?q={i}",
            "CloudFront-Viewer-Country": rng.choice(["DE", "ZZ", "<b>", "FR" * 200]),
            "X-Shortener-Front": "forged",
        }
        assert visit(stack, "GET", "flood", headers) == 302
        flood += 1
        if i % 10 == 0:
            for slug in ("calm1", "calm2"):
                assert visit(stack, "GET", slug, {"User-Agent": BROWSER, "Referer": "https://news.example.com/"}) == 302
            calm += 1
    settled(stack, {"flood": (flood, 0), "calm1": (calm, 0), "calm2": (calm, 0)})
    status, stats = stack.api("GET", "/api/links/flood/stats?days=2")
    assert status == 200
    assert sum(day["clicks"] for day in stats["days"]) == flood
    record_figure("exactness.flood_clicks", flood, basis="counted")
    referrers = {}
    for day in stats["days"]:
        for host, n in day["referrers"].items():
            referrers[host] = referrers.get(host, 0) + n
        assert not day["countries"]  # forged: no trusted front locally, so no country at all
    assert len(referrers) <= 51 and all(len(host) <= 253 for host in referrers)
    assert sum(referrers.values()) <= flood
    _, calm_stats = stack.api("GET", "/api/links/calm1/stats?days=2")
    assert sum(n for day in calm_stats["days"] for n in day["referrers"].values()) == calm
