"""The QR code of a link: inline on its page, and as SVG and PNG downloads."""
from flask import current_app

from webapp import access, link_rules, qr
from webapp.auth import permission_required
from webapp.link_pages import bp
from webapp.store import get_store


@bp.app_template_global()
def qr_svg(short_id):
    """The QR code of a link's short URL as an inline <svg>."""
    return qr.inline_svg(link_rules.short_url(current_app.config["SHORT_BASE_URL"], short_id))


@bp.get("/links/<short_id>/qr.svg", defaults={"kind": "svg"})
@bp.get("/links/<short_id>/qr.png", defaults={"kind": "png"})
@permission_required(access.READ_LINKS)
def qr_download(short_id, kind):
    """Download the QR code of a link's short URL as an SVG or PNG file."""
    return qr.download(get_store().links.get(short_id)["id"], kind)  # get(): 404 for no such link
