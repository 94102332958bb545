"""Template helpers for showing links."""
import unicodedata
from urllib.parse import urlsplit

from flask import current_app

from webapp import clock, link_rules
from webapp.link_pages import bp

# Scripts that may share one label, after UTS #39's "highly restrictive" level: one script, or Latin
# with the scripts a Japanese, Chinese or Korean name mixes. Anything else mixing scripts (Latin "a"
# beside Cyrillic "р") is how a look-alike host hides, so that host is shown in punycode. A name
# wholly in one look-alike script ("аррӏе" in Cyrillic) needs Unicode's confusables data, which the
# stdlib lacks: for that case the list's hover and the link's page also show the stored punycode.
_SCRIPT_SETS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
# Character names start with their script (the stdlib has no Script property); these few do not.
_NAME_SCRIPTS = {"CJK": "HAN", "IDEOGRAPHIC": "HAN", "KATAKANA-HIRAGANA": "KATAKANA"}


@bp.app_template_global()
def short_url(short_id):
    """The public short link for an id."""
    return link_rules.short_url(current_app.config["SHORT_BASE_URL"], short_id)


@bp.app_template_filter()
def compact_url(url):
    """A URL as people read it, without its scheme: 'sho.rt/abc1234' (the host as display_url shows it)."""
    shown = display_url(url)
    scheme, separator, rest = shown.partition("://")
    return rest if separator else shown


@bp.app_template_filter()
def display_url(url):
    """The URL with an internationalised host in Unicode ('bücher.example'), for showing only.

    Links, copy buttons and redirects keep the stored punycode URL. A host that does not decode, or
    whose decoded name could pass for another (mixed scripts, symbols), is shown as stored.
    """
    if not isinstance(url, str):
        return url or ""
    try:
        host = urlsplit(url).hostname
    except ValueError:  # a malformed URL written around the app's checks: show it as it is
        return url
    if not host or "xn--" not in host:
        return url
    start = url.lower().find(host, url.find("//") + 2)
    if start < 0:  # hostname lowercased a host that is not stored in lowercase: leave it alone
        return url
    return url[:start] + display_host(host) + url[start + len(host):]


def display_host(host):
    """A punycode host name in Unicode when every label decodes safely, else the host unchanged."""
    labels = []
    for label in host.split("."):
        if not label.startswith("xn--"):
            labels.append(label)
            continue
        try:
            # The stdlib codec (IDNA 2003) refuses bad punycode and labels that do not round-trip.
            decoded = label.encode("ascii").decode("idna")
        except UnicodeError:
            return host
        if not _is_plain_name(decoded):
            return host
        labels.append(decoded)
    return ".".join(labels)


def _is_plain_name(label):
    """True when the label is letters (with their marks), digits and hyphens of scripts that may mix."""
    scripts = set()
    for char in label:
        category = unicodedata.category(char)
        if char == "-" or "0" <= char <= "9" or category.startswith("M"):
            continue  # shared by every script; a combining mark belongs to the letter before it
        if not category.startswith("L"):
            return False  # punctuation, symbols, emoji, other digits: not part of a plain name
        first_word = unicodedata.name(char, "").split(" ", 1)[0]
        if not first_word:
            return False  # an unassigned code point: nothing to tell its script by
        scripts.add(_NAME_SCRIPTS.get(first_word, first_word))
    return len(scripts) <= 1 or any(scripts <= allowed for allowed in _SCRIPT_SETS)


@bp.app_template_filter()
def thousands(value):
    """A count for people: 12345 as '12,345' (anything that is not a number as it is)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):  # absent, or not a count: show what there is
        return "" if value is None else value


@bp.app_template_filter()
def link_status(link):
    """'active', 'disabled' or 'expired', computed against the current time."""
    return link_rules.link_status(link)


@bp.app_template_filter()
def timestamp(value):
    """A stored UTC timestamp as '27 Nov 2026, 05:35 UTC' (the raw value if it is not one)."""
    try:
        return clock.parse_timestamp(value).strftime("%d %b %Y, %H:%M UTC")
    except (TypeError, ValueError):  # absent or written by hand in an odd format
        return value or ""
