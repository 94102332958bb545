"""A flood of distinct hostile user agents against the function's timeout (found by the outside review
"revcount": tests/test_review_analytics_revcount.py on h-revcount), and the cheap classification past
the invocation's budget of full ones."""
import json
from collections import OrderedDict

import pytest

from aggregator import bots, clicks
from tests.test_aggregator import (  # noqa: F401 - kinesis and aggregator are fixtures
    event_for, kinesis, put, stats,
)


class _Context:
    """A Lambda context whose clock is advanced by the test (the aggregator's Timeout: 120 s)."""

    def __init__(self, timeout_ms=120_000):
        self.timeout_ms, self.spent_ms = timeout_ms, 0

    def get_remaining_time_in_millis(self):
        return self.timeout_ms - self.spent_ms


def _costly(context, ms, monkeypatch):
    """Make each distinct agent classified in full cost `ms` on the context's clock."""
    classify, seen = bots.agent.__wrapped__, set()

    def costly_agent(user_agent):
        if user_agent not in seen:
            seen.add(user_agent)
            context.spent_ms += ms
        return classify(user_agent)

    monkeypatch.setattr(clicks, "agent", costly_agent)


def test_a_flood_of_distinct_hostile_agents_cannot_outlast_the_functions_timeout(aggregator, kinesis, monkeypatch):
    context = _Context()
    _costly(context, 14, monkeypatch)  # what one distinct forged agent measured here (14 ms at 128+ characters)
    agents = [f"SAMSUNG-{n:06d}" for n in range(10_000)]  # short here; the cost is charged above
    lines = [f'{{"type":"click","id":"flood","ua":"{ua}"}}' for ua in agents]
    sequences = [put(kinesis, lines)]
    result = aggregator.lambda_handler(event_for(kinesis, sequences), context)
    assert context.spent_ms < context.timeout_ms, f"{context.spent_ms / 1000:.0f} s spent before returning"
    # The record is applied whole, every click counted once; the operator sees the flood.
    assert result["batchItemFailures"] == [] and result["clicks"] == 10_000
    assert 0 < result["agents_unclassified"] < 10_000


def test_past_the_budget_clicks_are_counted_once_remembered_agents_in_full_and_the_metric_printed(
        aggregator, kinesis, ddb, monkeypatch, capsys):
    phone = ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
             "Mobile Safari/537.36")
    monkeypatch.setattr(bots, "_remembered", OrderedDict())  # a fresh container: what other tests classified is not
    bots.agent(phone)  # remembered by this container: answered in full even past the budget
    context = _Context(timeout_ms=40_000)
    _costly(context, 5_000, monkeypatch)  # a budget of 10 s: two new agents in full, then cheap ones
    agents = [phone, "forged-1", "forged-2", "forged-3", "curl/8.0", "", "Slackbot-LinkExpanding 1.0", phone]
    lines = [json.dumps({"type": "click", "id": "budget1", "ua": ua}) for ua in agents]
    result = aggregator.lambda_handler(event_for(kinesis, [put(kinesis, lines)]), context)
    assert result["clicks"] == len(agents) and result["agents_unclassified"] == 4
    item = stats(ddb, "budget1")
    # Cheap: curl, the empty agent and Slack's preview are bots; forged-3 a person on "Other".
    assert (item["clicks"], item["bots"]) == (5, 3)
    assert item["dev#Samsung SM-S918B"] == 2 and item["dev#Other"] == 3
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["AgentsUnclassified"] for m in metrics] == [4]


def test_without_a_context_every_agent_is_classified_in_full(aggregator, kinesis, ddb, capsys):
    lines = [json.dumps({"type": "click", "id": "nobudget", "ua": f"forged-{n}"}) for n in range(3)]
    result = aggregator.lambda_handler(event_for(kinesis, [put(kinesis, lines)]), None)
    assert result["agents_unclassified"] == 0 and '"_aws"' not in capsys.readouterr().out


@pytest.mark.parametrize("user_agent", [
    "", "   ", "curl/8.4.0", "python-requests/2.31", "Googlebot/2.1", "facebookexternalhit/1.1",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0)", "WhatsApp/2.23", "Go-http-client/2.0",
])
def test_the_cheap_classification_tells_plain_bots(user_agent):
    assert bots.cheap_agent(user_agent) == bots.Agent(bots.BOT, bots.UNKNOWN, bots.UNKNOWN)
    assert bots.agent(user_agent).device == bots.BOT  # as the full one does


def test_the_cheap_classification_counts_anything_else_as_a_person_on_other():
    for user_agent in ["SAMSUNG-" + "A" * 248, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)", "x" * 256]:
        assert bots.cheap_agent(user_agent) == bots.Agent(bots.UNKNOWN, bots.UNKNOWN, bots.UNKNOWN)


@pytest.mark.parametrize(("user_agent", "browser"), [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
     "Instagram 311.0.2.16.111 (iPhone15,2; iOS 17_1_2; en_US; en; scale=3.00; 1179x2556; 540384540)", "Instagram"),
    ("Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Version/4.0 Chrome/119.0.6045.163 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/442.0.0.33.113;]", "Facebook"),
])
def test_in_app_browsers_name_themselves_past_128_characters_so_the_cut_stays_at_256(user_agent, browser):
    # Why classification keeps clicks.USER_AGENT_MAX (256) rather than a lower cut: the in-app browser's
    # token comes late. A cut at 128 would only make a forged agent ~2.5 times cheaper; the budget bounds it.
    assert bots.agent(user_agent[:clicks.USER_AGENT_MAX]).browser == browser
    assert bots.agent.__wrapped__(user_agent[:128]).browser != browser
