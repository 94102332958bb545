"""QR codes of links (webapp/qr.py): on the link's page, as SVG and PNG downloads, and in the API.

Each check reads the module grid back out of the served file (the PNG's pixels, the SVG's path) and
compares it with the grid segno makes, in the test, from the expected short URL; and a PNG is decoded
back to text by ZXing (zxing-cpp), a decoder that shares no code with segno, as a phone would read it.
"""
import json
import re
import struct
import zlib

import pytest
import segno

from tests.conftest import ADMIN_USERNAME, SHORT_BASE_URL, sign_in_as, token_for
from tests.test_bad_input import OVERSIZED_IDS

SHORT_URL = f"{SHORT_BASE_URL}/launch"


@pytest.fixture
def link(store):
    return store.links.create("https://example.com/a/long/path?q=1", created_by=ADMIN_USERNAME, slug="launch")


@pytest.fixture
def headers(store):
    return {"Authorization": f"Bearer {token_for(store, 'viewer')}"}  # a read-scope token


def _grid_of(text):
    """The dark modules of the QR code segno makes of this text, as the app is set to make them."""
    return [[bool(bit) for bit in row] for row in segno.make(text, error="m", micro=False).matrix]


def png_text(data):
    """The text ZXing reads from a 1-bit greyscale PNG (segno's kind), or None when it finds no QR code."""
    import zxingcpp

    width, height, rows = _png_rows(data)
    pixels = b"".join(bytes(255 if row[x // 8] >> (7 - x % 8) & 1 else 0 for x in range(width)) for row in rows)
    found = zxingcpp.read_barcodes(zxingcpp.ImageView(pixels, width, height, zxingcpp.ImageFormat.Lum),
                                   formats=zxingcpp.BarcodeFormat.QRCode)
    return found[0].text if found else None


def _png_rows(data):
    """(width, height, rows of packed bits) of a 1-bit greyscale PNG; bit 1 is white."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    chunks, pos = {}, 8
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        chunks[kind] = chunks.get(kind, b"") + data[pos + 8:pos + 8 + length]
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (1, 0)
    raw, stride = zlib.decompress(chunks[b"IDAT"]), 1 + (width + 7) // 8
    rows, above = [], bytes(stride - 1)
    for start in range(0, len(raw), stride):
        method, line = raw[start], raw[start + 1:start + stride]
        assert method in (0, 2)  # segno writes a row as is (0) or as its difference from the row above (2, "Up")
        above = line if method == 0 else bytes((a + b) & 0xFF for a, b in zip(line, above))
        rows.append(above)
    return width, height, rows


def _png_grid(data, size):
    """The size x size module grid of a 1-bit greyscale PNG (segno's kind) at qr.SCALE with a qr.BORDER quiet zone."""
    from webapp import qr

    width, height, rows = _png_rows(data)
    assert (width, height) == ((size + 2 * qr.BORDER) * qr.SCALE,) * 2

    def dark(x, y):  # bit 1 is white
        return not rows[y][x // 8] >> (7 - x % 8) & 1

    centre = qr.SCALE // 2
    return [[dark((qr.BORDER + c) * qr.SCALE + centre, (qr.BORDER + r) * qr.SCALE + centre) for c in range(size)]
            for r in range(size)]


def _svg_grid(svg, size):
    """The size x size module grid drawn by segno's SVG path: one horizontal stroke per run of dark modules."""
    from webapp import qr

    path = re.search(r'<path[^>]*class="qrline"[^>]*\sd="([^"]+)"', svg).group(1)
    grid = [[False] * size for _ in range(size)]
    x = y = 0.0
    for command, first, second in re.findall(r"([MmHh])(-?[\d.]+)(?:\s(-?[\d.]+))?", path):
        if command == "M":
            x, y = float(first), float(second)
        elif command == "m":
            x, y = x + float(first), y + float(second)
        else:  # h: a stroke of this many modules from here, half a module below the row's top
            for column in range(int(x), int(x + float(first))):
                grid[int(y) - qr.BORDER][column - qr.BORDER] = True
            x += float(first)
    return grid


def _check_encodes(kind, body, text=SHORT_URL):
    expected = _grid_of(text)
    assert expected != _grid_of(text + "x")  # the grid tells texts apart, so the comparison means something
    if kind == "png":
        assert body.startswith(b"\x89PNG")
        assert _png_grid(body, len(expected)) == expected
        assert png_text(body) == text
    else:
        assert body.startswith(b"<?xml") and b"<svg" in body
        assert _svg_grid(body.decode(), len(expected)) == expected


@pytest.mark.parametrize(("kind", "media_type"), [("svg", "image/svg+xml"), ("png", "image/png")])
def test_a_page_download_is_a_file_of_the_short_url(client, store, link, kind, media_type):
    sign_in_as(client, store, "viewer")
    response = client.get(f"/links/launch/qr.{kind}")
    assert response.status_code == 200
    assert response.mimetype == media_type
    assert response.headers["Content-Disposition"] == f"attachment; filename=launch.{kind}"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    _check_encodes(kind, response.data)


@pytest.mark.parametrize(
    ("query", "kind", "media_type"),
    [({}, "svg", "image/svg+xml"), ({"format": "svg"}, "svg", "image/svg+xml"), ({"format": "png"}, "png", "image/png")],
)
def test_the_api_gives_the_qr_code_as_svg_by_default_or_png(client, link, headers, query, kind, media_type):
    response = client.get("/api/links/launch/qr", query_string=query, headers=headers)
    assert response.status_code == 200
    assert response.mimetype == media_type
    assert response.headers["Content-Disposition"] == f"attachment; filename=launch.{kind}"
    _check_encodes(kind, response.data)


def test_the_links_page_shows_the_qr_code_inline_with_its_downloads(client, store, link):
    sign_in_as(client, store, "viewer")
    page = client.get("/links/launch").get_data(as_text=True)
    svg = re.search(r'<svg viewBox="[^"]*" class="qr">.*?</svg>', page, re.S).group(0)
    assert f"<title>QR code of {SHORT_URL}</title>" in svg
    assert "<script" not in svg and "style=" not in svg  # plain shapes: nothing the page's CSP forbids
    assert _svg_grid(svg, len(_grid_of(SHORT_URL))) == _grid_of(SHORT_URL)
    assert 'href="/links/launch/qr.svg"' in page
    assert 'href="/links/launch/qr.png"' in page


def test_the_qr_code_follows_the_configured_short_base_url(ddb):
    from tests.conftest import make_app
    from webapp import qr

    app = make_app(SHORT_BASE_URL="https://go.example.org/")
    with app.test_request_context():
        _check_encodes("png", qr.download("launch", "png").data, text="https://go.example.org/launch")


def test_a_short_url_never_becomes_a_micro_qr_code_that_phones_cannot_read():
    from webapp import qr

    assert not qr.encode("https://a.b/c").is_micro


def test_render_refuses_an_unknown_kind():
    from webapp import qr

    with pytest.raises(ValueError, match="kind must be one of: svg, png"):
        qr.render(SHORT_URL, "jpg")


@pytest.mark.parametrize("path", ["/links/launch/qr.svg", "/links/launch/qr.png"])
def test_anonymous_visitors_of_a_download_are_sent_to_sign_in(client, link, path):
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("auth_header", [None, "Bearer not-a-token", "Basic YWxpY2U6eA=="])
def test_the_api_refuses_a_call_without_a_valid_token(client, link, auth_header):
    response = client.get("/api/links/launch/qr", headers={"Authorization": auth_header} if auth_header else {})
    assert response.status_code == 401
    assert "API token is required" in response.json["error"]
    assert not response.mimetype.startswith("image/")


@pytest.mark.parametrize("value", ["jpg", "SVG", "png ", "", "svg,png", "../png"])
def test_an_unknown_format_is_a_422_naming_the_field(client, link, headers, value):
    response = client.get("/api/links/launch/qr", query_string={"format": value}, headers=headers)
    assert response.status_code == 422
    assert response.json == {"error": "format must be one of: svg, png.", "field": "format"}


@pytest.mark.parametrize("path", ["/links/nosuch/qr.svg", "/links/nosuch/qr.png"])
def test_a_page_download_of_an_unknown_link_is_404(client, store, path):
    sign_in_as(client, store, "viewer")
    response = client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "There is no short link with that id." in response.get_data(as_text=True)


@pytest.mark.parametrize("query", [{}, {"format": "png"}])
def test_the_api_qr_code_of_an_unknown_link_is_a_404(client, headers, query):
    response = client.get("/api/links/nosuch/qr", query_string=query, headers=headers)
    assert response.status_code == 404
    assert response.json == {"error": "There is no short link with that id."}


@pytest.mark.parametrize("short_id", OVERSIZED_IDS, ids=["3000-chars", "2100-bytes", "65-chars"])
@pytest.mark.parametrize("path", ["/links/{}/qr.svg", "/links/{}/qr.png", "/api/links/{}/qr", "/api/links/{}/qr?format=png"])
def test_an_oversized_id_is_404_without_asking_dynamodb(client, store, headers, table_requests, path, short_id):
    sign_in_as(client, store, "viewer")
    table_requests.clear()  # the sign-in's own requests
    response = client.get(path.format(short_id), headers={**headers, "Accept": "text/html"})
    assert response.status_code == 404
    assert "There is no short link with that id." in response.get_data(as_text=True)
    assert [name for name, params in table_requests if short_id in json.dumps(params)] == []
