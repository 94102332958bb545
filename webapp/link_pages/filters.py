"""Template helpers for showing links."""
from flask import current_app

from webapp import clock, link_rules
from webapp.link_pages import bp


@bp.app_template_global()
def short_url(short_id):
    """The public short link for an id."""
    return link_rules.short_url(current_app.config["SHORT_BASE_URL"], short_id)


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
