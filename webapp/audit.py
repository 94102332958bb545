"""The audit log: one record per security-relevant action (who, what, to whom, from where, through what).

Every view that signs someone in, changes a user, a token, a setting or a link calls record(). This is
the one audit mechanism of the app; the per-link trail reads the same records.
"""
import json

from flask import current_app, g, has_request_context

# Through what an action came: the web pages, the JSON API, single sign-on, or the operator's CLI.
WEB, API, SSO, CLI = "web", "api", "sso", "cli"


def record(action, *, target=None, outcome="ok", actor=None, via=None, **details):
    """Record one action, e.g. record("user.role", target="bob", role="editor").

    actor defaults to the signed-in user (g.user) or the API caller (g.api_user); via to api or web
    by blueprint. details are small JSON values; anything request-borne is stored as given and only
    ever rendered escaped or logged as JSON, never spliced into a log line.
    """
    if has_request_context():
        actor = actor or g.get("api_user") or g.get("user")
        via = via or (API if g.get("api_user") else WEB)
    event = {"action": action, "actor": actor, "target": target, "outcome": outcome, "via": via, **details}
    # JSON on one line: a newline in any value is escaped, so no value can forge a log line.
    current_app.logger.info("audit %s", json.dumps(event, sort_keys=True, default=str))
    return event
