"""The links as a CSV file, newest first, filtered as the list is, streamed one page at a time."""
import csv
import dataclasses
import io

from flask import Response, current_app, stream_with_context

from webapp import link_rules
from webapp.store import get_store
from webapp.store.link_search import LinkQuery

COLUMNS = (
    "id", "short_url", "url", "title", "created_at", "created_by", "expires_at",
    "is_active", "click_count", "bot_count", "last_clicked_at",
)
PAGE_SIZE = 100
# OWASP's CSV injection advice: a spreadsheet treats a cell starting with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_response(query=None):
    """A streamed attachment of the links a LinkQuery finds (every unarchived link when None), so memory
    stays one page whatever the number of links."""
    # Newest first always: sort=clicks orders one page, which here would be each 100 rows on their own.
    rows = _rows(current_app.config["SHORT_BASE_URL"], dataclasses.replace(query or LinkQuery(), sort="newest"))
    headers = {"Content-Disposition": 'attachment; filename="links.csv"', "Cache-Control": "no-store"}
    return Response(stream_with_context(rows), content_type="text/csv; charset=utf-8", headers=headers)


def _rows(short_base_url, query):
    """The header line, then one CSV line per link, paging through the search until the last page."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    cursor = None
    while True:
        yield _take(buffer)
        page, cursor = get_store().link_search.find(query, PAGE_SIZE, cursor)
        for link in page:
            writer.writerow(_row(link, short_base_url))
        if cursor is None:
            yield _take(buffer)
            return


def _row(link, short_base_url):
    """One link's cells, each escaped against formula injection."""
    values = dict(link, short_url=link_rules.short_url(short_base_url, link["id"]))
    return [escape_cell(values[column]) for column in COLUMNS]


def escape_cell(value):
    """The cell as text; one a spreadsheet would run as a formula gets a leading quote."""
    if value is None:
        return ""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _take(buffer):
    """What the writer has written since the last call, emptying the buffer."""
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
