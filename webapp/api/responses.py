"""JSON shapes of the API."""
from flask import current_app, jsonify

from webapp import link_rules


def json_error(status, message, headers=None, field=None):
    """An error response: {"error": message} (plus the field at fault for 422s)."""
    body = {"error": message}
    if field:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    response.headers.extend(headers or {})
    return response


def link_json(link):
    """A link as the API shows it."""
    return {
        "short_id": link["id"],
        "short_url": link_rules.short_url(current_app.config["SHORT_BASE_URL"], link["id"]),
        "original_url": link["url"],
        "title": link["title"],
        "created_at": link["created_at"],
        "created_by": link["created_by"],
        "expires_at": link["expires_at"],
        "is_active": link["is_active"],
        "status": link_rules.link_status(link),
        "click_count": link["click_count"],
        "bot_count": link["bot_count"],
        "last_clicked_at": link["last_clicked_at"],
        "tags": link["tags"],
        "note": link["note"],
        "forward_query": link["forward_query"],
        "archived": link["archived"],
        "version": link["version"],
        "updated_at": link["updated_at"],
        "updated_by": link["updated_by"],
    }
