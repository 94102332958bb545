"""View of the JSON API for a link's QR code."""
from flask import request

from webapp import access, qr
from webapp.api import bp
from webapp.api.auth import requires
from webapp.api.responses import json_error
from webapp.store import get_store


@bp.get("/api/links/<short_id>/qr")
@requires(access.READ_LINKS)
def link_qr(short_id):
    """The QR code of a link's short URL, as an SVG (the default) or PNG file: ?format=svg|png."""
    kind = request.args.get("format", "svg")
    if kind not in qr.MEDIA_TYPES:
        return json_error(422, f"format must be one of: {', '.join(qr.MEDIA_TYPES)}.", field="format")
    return qr.download(get_store().links.get(short_id)["id"], kind)  # get(): 404 for no such link
