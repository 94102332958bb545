"""/.well-known/security.txt (RFC 9116): where to report a vulnerability, from the settings.

The redirect function serves the same text on the short domain (redirect_fn/handler.py renders it
with the standard library only); tests/test_hardening_front.py pins the two renderings together.
"""
import re
from datetime import timedelta

from flask import abort, current_app

from webapp.clock import format_timestamp, utcnow

PATH = "/.well-known/security.txt"
# RFC 9116 requires Expires and recommends less than a year. The text is rendered on every request,
# so a short horizon costs nothing and a changed contact is not believed for long in old copies.
EXPIRES_AFTER = timedelta(days=30)
CACHE_CONTROL = "max-age=3600"
# One URI per Contact line: mailto: an address, or an https: page. No spaces, commas or control
# characters, so a setting can never add a line of its own to the file.
_CONTACT = re.compile(r"(mailto:[^\s,@]+@[^\s,@]+|https://[^\s,/]+(/[^\s,]*)?)", re.ASCII)
_POLICY = re.compile(r"https://[^\s,/]+(/[^\s,]*)?", re.ASCII)


def init_app(app):
    """Check the settings (a bad one stops start-up) and add the route."""
    config = app.config
    config["SECURITY_CONTACT"] = parse_contacts(config["SECURITY_CONTACT"])
    policy = config["SECURITY_POLICY"] or None
    if policy is not None and not _POLICY.fullmatch(str(policy)):
        raise RuntimeError(f"SHORTENER_SECURITY_POLICY: {policy!r} is not an https:// URL")
    config["SECURITY_POLICY"] = policy
    app.add_url_rule(PATH, "security_txt", security_txt)


def parse_contacts(value):
    """The Contact URIs of a setting: a comma-separated string or a list, each mailto: or https:."""
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    contacts = [str(item).strip() for item in items if str(item).strip()]
    bad = [contact for contact in contacts if not _CONTACT.fullmatch(contact)]
    if bad:
        raise RuntimeError(
            f"SHORTENER_SECURITY_CONTACT: {', '.join(map(repr, bad))} is not a mailto: address or an https:// URL "
            "(give one or more, comma-separated)"
        )
    return contacts


def render(contacts, policy, now):
    """The file's text: Contact lines, Expires, then Policy if any (the redirect renders the same)."""
    lines = [f"Contact: {contact}" for contact in contacts]
    lines.append(f"Expires: {format_timestamp(now + EXPIRES_AFTER)}")
    if policy:
        lines.append(f"Policy: {policy}")
    return "\n".join(lines) + "\n"


def security_txt():
    """Where to report a vulnerability; 404 when no contact is set."""
    config = current_app.config
    if not config["SECURITY_CONTACT"]:
        abort(404)
    body = render(config["SECURITY_CONTACT"], config["SECURITY_POLICY"], utcnow())
    return body, 200, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": CACHE_CONTROL}
