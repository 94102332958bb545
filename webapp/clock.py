"""The app's clock and its one timestamp format, shared by links, sessions, tokens and sign-in limits."""
from datetime import datetime, timezone

# The redirect compares expires_at with "now" as strings, so every timestamp
# must have exactly this fixed-width shape.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utcnow():
    """The current time in UTC, truncated to whole seconds."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def format_timestamp(moment):
    """A UTC timestamp string in the fixed-width format the redirect relies on."""
    return moment.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(value):
    """The aware datetime for a stored timestamp string."""
    return datetime.strptime(value, TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)
