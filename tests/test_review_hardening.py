"""An outside review of the access hardening (issue 15): each test is an attack that got through."""
import json

import pytest

from tests.conftest import ADMIN_USERNAME
from webapp import abuse, url_guard
from webapp.store import audit as store_audit


def _rules(*pairs):
    return [{"kind": kind, "value": abuse.check_rule(kind, value)} for kind, value in pairs]


def _normalised(url):
    return url_guard.normalise_url(url, "https://sho.rt")


# ------------------------------------------------------------------ the blocklist's patterns


@pytest.mark.parametrize(("pattern", "url"), [
    # No path at all: the browser asks for "/", so "https://evil.example/*" must match it.
    ("https://evil.example/*", "https://evil.example"),
    ("https://evil.example/*", "https://evil.example?session=1"),
    ("https://evil.example/*", "https://evil.example#top"),
    # The scheme's default port written out is the same site.
    ("https://evil.example/*", "https://evil.example:443/login"),
    ("http://evil.example/*", "http://evil.example:80/login"),
    # Dot segments: the browser resolves them before it asks, so they reach the blocked path.
    ("https://example.net/phish/*", "https://example.net/x/../phish/login"),
    ("https://example.net/phish/*", "https://example.net/./phish/login"),
    ("https://example.net/phish/*", "https://example.net/x/%2e%2E/phish/login"),
    ("https://example.net/phish/*", "https://example.net/x/.%2e/phish/login"),
])
def test_a_pattern_rule_is_not_dodged_by_another_spelling_of_the_same_url(pattern, url):
    rules = _rules(("pattern", pattern))
    assert abuse.matching_rule(_normalised(url), rules) == rules[0]


@pytest.mark.parametrize("url", [
    "https://evil.example:8443/login",  # another port is another site
    "https://example.net/phish",
    "https://example.net/fish/../fish/login",
])
def test_a_pattern_rule_still_blocks_nothing_else(url):
    rules = _rules(("pattern", "https://evil.example/*"), ("pattern", "https://example.net/phish/*"))
    assert abuse.matching_rule(_normalised(url), rules) is None
