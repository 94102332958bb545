"""QR codes of short links, as SVG and PNG, made with segno: pure Python, no network, no image library."""
import io

import segno
from flask import current_app
from markupsafe import Markup

from webapp import link_rules

# Download formats and their media types; the API's ?format= takes these names.
MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}
BORDER = 4  # the quiet zone the QR standard asks for, in modules
SCALE = 8  # pixels (SVG: user units) per module of a download: a sharp PNG, an SVG that opens at a readable size
DARK, LIGHT = "#000", "#fff"  # an explicit light background, so the code scans on a dark page too


def encode(short_url):
    """The QR code of a short URL. Never a Micro QR: many phone cameras cannot read those."""
    return segno.make(short_url, error="m", micro=False)


def render(short_url, kind):
    """The QR code of a short URL as the bytes of an SVG or PNG file (kind: a key of MEDIA_TYPES)."""
    if kind not in MEDIA_TYPES:
        raise ValueError(f"kind must be one of: {', '.join(MEDIA_TYPES)}")
    out = io.BytesIO()
    encode(short_url).save(out, kind=kind, scale=SCALE, border=BORDER, dark=DARK, light=LIGHT)
    return out.getvalue()


def inline_svg(short_url):
    """The QR code as an <svg> element to put in a page, sized by CSS.

    Marked safe because segno writes every byte of it from the QR matrix; the one text in it, the
    title, is our own short URL, and segno escapes it.
    """
    svg = encode(short_url).svg_inline(
        border=BORDER, dark=DARK, light=LIGHT, omitsize=True, svgclass="qr", title=f"QR code of {short_url}"
    )
    return Markup(svg)


def download(short_id, kind):
    """A response with the QR code of a link's short URL as an attachment named <id>.<kind>."""
    body = render(link_rules.short_url(current_app.config["SHORT_BASE_URL"], short_id), kind)
    response = current_app.response_class(body, mimetype=MEDIA_TYPES[kind])
    # Headers.set quotes the name, and adds filename* for one outside ASCII.
    response.headers.set("Content-Disposition", "attachment", filename=f"{short_id}.{kind}")
    return response
