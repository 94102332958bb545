"""Tell people from bots and link-preview fetchers by user agent, and name people's device, browser and OS.

Bots and previews: CrawlerDetect, plus the preview fetchers it may miss. Devices, browsers and
operating systems: ua-parser (the maintained uap-core rules), with the families as keys.
"""
import re
from collections import OrderedDict
from functools import wraps
from typing import NamedTuple

import ua_parser
from crawlerdetect import CrawlerDetect

_crawler_detect = CrawlerDetect()
# The pure-Python resolver with no cache of its own: agent() below caches whole answers, and
# one cache is enough. Built at import: compiling uap-core's rules costs a cold start, not a click.
_parser = ua_parser.Parser(ua_parser.BasicResolver(ua_parser.load_builtins()))

# Link-preview fetchers that unfurl a link when it is pasted into a chat or an email.
# CrawlerDetect knows most of them; these cover the ones it misses or may miss.
_PREVIEW_FETCHERS = re.compile(
    r"Slack(bot|-ImgProxy)|SkypeUriPreview|MicrosoftPreview|Teams/|Twitterbot|facebookexternalhit|Facebot"
    r"|LinkedInBot|Microsoft Office|Outlook|Google-PageRenderer|GoogleImageProxy|Googlebot|WhatsApp"
    r"|TelegramBot|Discordbot",
    re.IGNORECASE,
)
# ua-parser names no device for a desktop or laptop ("Other"): on one of these systems, it is one.
_DESKTOP_OS = re.compile(
    r"Windows(?! (Phone|Mobile|CE|RT))|Mac OS X|macOS|Chrome ?OS|Linux|Ubuntu|Kubuntu|Debian|Fedora|Red Hat|SUSE"
    r"|openSUSE|Mint|Arch Linux|Gentoo|Slackware|CentOS|Mageia|FreeBSD|OpenBSD|NetBSD|Solaris"
)
# What the cheap classification (cheap_agent) takes for a bot besides the preview fetchers: the words
# scripts, crawlers and monitors name themselves by. Literals only: linear in the agent's length.
_BOT_WORDS = re.compile(
    r"bot|crawl|spider|slurp|scrap|fetch|preview|archiver|monitor|checker|scanner|headless|phantomjs|http"
    r"|curl|wget|python|java/|okhttp|go-http|libwww|perl|ruby|php|node-fetch|axios|feed|rss",
    re.IGNORECASE,
)
BOT = "bot"  # the device of a bot or preview (a person can forge it too, and only moves their own click)
UNKNOWN = "Other"  # ua-parser's name for a family it cannot tell
KEY_MAX = 64  # characters of a family kept as a counter's key
AGENTS_REMEMBERED = 4096


class Agent(NamedTuple):
    """What a user agent says: a device (BOT for bots and previews), a browser and an OS family."""

    device: str
    browser: str
    os: str


def _classify(user_agent):
    """The Agent of a user agent string, in full: CrawlerDetect then ua-parser (~1 ms for a real agent,
    up to tens of ms for a forged one: see aggregator/clicks.py's AgentBudget)."""
    if not user_agent.strip():
        return Agent(BOT, UNKNOWN, UNKNOWN)  # Browsers always send one; an empty agent is a script.
    if _PREVIEW_FETCHERS.search(user_agent) or _crawler_detect.isCrawler(user_agent):
        return Agent(BOT, UNKNOWN, UNKNOWN)
    device = _family(_parser.parse_device, user_agent)
    if device == "Spider":
        return Agent(BOT, UNKNOWN, UNKNOWN)  # uap-core's name for a crawler CrawlerDetect missed
    system = _family(_parser.parse_os, user_agent)
    if device == UNKNOWN and _DESKTOP_OS.match(system):
        device = "Desktop"
    return Agent(bounded_key(device), bounded_key(_family(_parser.parse_user_agent, user_agent)), bounded_key(system))


# The last AGENTS_REMEMBERED agents classified in full, least recently used first. A cache of our
# own rather than lru_cache: remembered() must look without classifying.
_remembered = OrderedDict()


@wraps(_classify)
def agent(user_agent):
    """The Agent of a user agent string (callers bound its length first: parsing is regular expressions)."""
    found = _remembered.get(user_agent)
    if found is not None:
        _remembered.move_to_end(user_agent)
        return found
    found = _remembered[user_agent] = _classify(user_agent)
    if len(_remembered) > AGENTS_REMEMBERED:
        _remembered.popitem(last=False)
    return found


def remembered(user_agent):
    """The Agent of a user agent already classified in full in this container, or None (never classifies)."""
    return _remembered.get(user_agent)


def cheap_agent(user_agent):
    """A cheap, bounded classification for an agent past the budget of full ones: a bot or preview when
    it plainly says so, else a person on "Other" device, browser and OS.

    A person, not a bot, when in doubt: the clicks that get here are new agents in an invocation that
    has spent its budget, mostly a flood's forged ones but also real visitors' among them. Counted as
    people, real visitors stay in the link's clicks (only their device, browser and OS are "Other");
    counted as bots, a flood could make real clicks vanish from the counts people read. A flooder gains
    nothing: anyone can already be counted as a person by sending a browser's agent.
    Never remembered: the next invocation classifies the agent in full.
    """
    if not user_agent.strip() or _PREVIEW_FETCHERS.search(user_agent) or _BOT_WORDS.search(user_agent):
        return Agent(BOT, UNKNOWN, UNKNOWN)
    return Agent(UNKNOWN, UNKNOWN, UNKNOWN)


def _family(parse, user_agent):
    """One domain's family, UNKNOWN when ua-parser finds none."""
    try:
        found = parse(user_agent)
    except ValueError:
        # ua-parser raises on some forged agents (a rule's captured family is blank: "Android 10;   Build/"):
        # one visitor's header must not fail the batch, which would then be retried for ever.
        return UNKNOWN
    return found.family if found is not None else UNKNOWN


def classify_device(user_agent):
    """The device of a user agent: BOT, or ua-parser's device family ("Desktop" for a desktop OS)."""
    return agent(user_agent).device


def bounded_key(family):
    """A family as a counter's key: printable characters only, at most KEY_MAX, never empty.

    A family can be copied from the user agent itself (uap-core rules capture model names),
    so a visitor chooses it: control characters, lone surrogates (no UTF-8 for DynamoDB) and
    length are cut here.
    """
    key = "".join(char for char in family if char.isprintable())[:KEY_MAX].strip()
    return key or UNKNOWN
