"""CSV import: decode and parse an uploaded file, check each row by the link rules, and write the results.

Pure functions, no I/O: the runner (webapp/import_runner.py) stores what these give.

The file: a header row naming some of COLUMNS (url is required, order free, no other names), then one
link per row, UTF-8 with or without a byte-order mark. Tags are comma-separated in one cell
("launch, q3"), as the create form takes them. expires_at is an ISO 8601 date or date-time, empty for
the default expiry, or "never". Rows are numbered from 1, the first row after the header.
"""
import csv
import hashlib
import hmac
import io
from dataclasses import dataclass, field

from webapp import link_rules, url_guard
from webapp.csv_export import escape_cell
from webapp.exceptions import InvalidExpiry, InvalidLink

COLUMNS = ("url", "slug", "title", "tags", "expires_at")
REQUIRED = ("url",)
NEVER = "never"
RESULT_COLUMNS = ("row", "url", "slug", "title", "status", "short_id", "short_url", "error")
CREATED, FAILED = "created", "error"
# Derived ids tried in turn for a row without a slug; each is fixed by the job and the row, so a
# resumed job finds the one it wrote before instead of making a second link.
DERIVED_ID_ATTEMPTS = 5
_BOMS_OF_OTHER_ENCODINGS = {b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16", b"\xff\xfe\x00\x00": "UTF-32",
                            b"\x00\x00\xfe\xff": "UTF-32"}
_UTF8_BOM = b"\xef\xbb\xbf"


class ImportRefused(ValueError):
    """The whole file is refused (too large, not UTF-8, malformed, a bad header); message is for people."""

    @property
    def message(self):
        """The reason, safe to show."""
        return self.args[0]


@dataclass
class Row:
    """One data row: its number (1 = first after the header), its cells by column, and what is wrong with
    its shape (a row with more cells than the header), if anything."""

    number: int
    cells: dict
    problem: str = None


@dataclass
class Checked:
    """A row that passed the link rules: what the store is given."""

    url: str
    slug: str = None
    title: str = None
    tags: list = field(default_factory=list)
    expires_at: str = None


def decode(data, max_bytes):
    """The file's text, or ImportRefused: over max_bytes, another encoding, or bytes that are not UTF-8."""
    if len(data) > max_bytes:
        raise ImportRefused(f"The file is {len(data):,} bytes; the limit is {max_bytes:,} bytes. Split it into smaller files.")
    for bom, name in sorted(_BOMS_OF_OTHER_ENCODINGS.items(), key=lambda kv: -len(kv[0])):
        if data.startswith(bom):
            raise ImportRefused(f"The file is in {name}. Save it as CSV in UTF-8 and upload it again.")
    data = data.removeprefix(_UTF8_BOM)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise ImportRefused(f"The file is not UTF-8 (line {line}). Save it as CSV in UTF-8 and upload it again.") from None
    if "\x00" in text:
        # UTF-16 without a byte-order mark decodes as UTF-8 full of NULs.
        raise ImportRefused("The file holds NUL characters: it is not a UTF-8 text file (UTF-16?). Save it as CSV in UTF-8.")
    return text


def parse(text, max_rows):
    """The header's columns and the data rows, or ImportRefused for a malformed file or too many rows."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        columns = _columns(header)
        rows = []
        for cells in reader:
            if not cells or all(not cell.strip() for cell in cells):
                continue  # blank lines (and ",,,,") are not rows
            if len(rows) == max_rows:
                raise ImportRefused(f"The file has more than {max_rows:,} rows; the limit is {max_rows:,}. Split it into smaller files.")
            rows.append(_row(len(rows) + 1, columns, cells))
    except csv.Error as err:
        raise ImportRefused(f"The file is not valid CSV (line {reader.line_num}: {err}).") from None
    if not rows:
        raise ImportRefused("The file has a header but no rows.")
    return columns, rows


def _columns(header):
    """The header's column names, or ImportRefused: missing, unknown or repeated names."""
    if not header or all(not cell.strip() for cell in header):
        raise ImportRefused(f"The file is empty. The first row must name the columns: {', '.join(COLUMNS)}.")
    names = [cell.strip().lower() for cell in header]
    unknown = [name for name in names if name not in COLUMNS]
    if "url" not in names:
        raise ImportRefused(f"The first row must be a header naming the columns ({', '.join(COLUMNS)}); it has no url column.")
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise ImportRefused(f"Unknown column(s) in the header: {shown}. The columns are: {', '.join(COLUMNS)}.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ImportRefused(f"The header names {', '.join(repeated)} more than once.")
    return names


def _row(number, columns, cells):
    """A Row from its cells; extra cells make it a row with a problem, missing ones are empty."""
    problem = None
    if len(cells) > len(columns):
        problem = f"The row has {len(cells)} cells; the header has {len(columns)}."
    values = dict(zip(columns, cells))
    return Row(number, {name: values.get(name, "") for name in COLUMNS}, problem)


def check_row(row, *, short_base_url, extra_loop_hosts=(), default_days=30, now=None):
    """The row's link as Checked, or raise InvalidLink (its field and message) by the same rules as a create."""
    if row.problem:
        raise InvalidLink(row.problem)
    cells = row.cells
    url = url_guard.normalise_url(cells["url"], short_base_url, extra_loop_hosts)
    slug = link_rules.optional_slug(cells["slug"].strip())
    title = link_rules.check_title(cells["title"] or None)
    tags = link_rules.check_tags(cells["tags"])
    return Checked(url, slug, title, tags, _expiry(cells["expires_at"], now, default_days))


def _expiry(cell, now, default_days):
    """Empty: the default expiry; "never": none; else an ISO 8601 date or date-time in the future."""
    cell = cell.strip()
    if not cell:
        return link_rules.parse_expiry(link_rules.MISSING, now, default_days)
    if cell.lower() == NEVER:
        return None
    if len(cell) > 64:
        raise InvalidExpiry("expires_at is not a valid ISO 8601 date or date-time.")
    return link_rules.parse_expiry(cell, now, default_days)


def duplicates(rows, checked):
    """{row number: message} for rows that repeat an earlier row's slug, or the whole of an earlier row.

    checked: {row number: Checked} of the rows that passed the rules. The first of each is kept.
    """
    first_slug, first_row, found = {}, {}, {}
    for row in rows:
        link = checked.get(row.number)
        if link is None:
            continue
        if link.slug:
            earlier = first_slug.setdefault(link.slug, row.number)
            if earlier != row.number:
                found[row.number] = f"The slug {link.slug} is already used by row {earlier} of this file."
                continue
        same = (link.url, link.slug, link.title, tuple(link.tags), link.expires_at)
        earlier = first_row.setdefault(same, row.number)
        if earlier != row.number:
            found[row.number] = f"This row repeats row {earlier} of this file."
    return found


def derived_id(secret, job_id, row_number, attempt, length):
    """The id of a row without a slug: an HMAC of the job, the row and the attempt, in base62.

    Deterministic, so that a resumed job tries the same ids in the same order and recognises its own
    links; keyed, so that nobody can predict (and take first) the ids a job will use.
    """
    message = f"{job_id}#{row_number}#{attempt}".encode("utf-8")
    number = int.from_bytes(hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest(), "big")
    alphabet = link_rules.ID_ALPHABET
    chars = []
    for _ in range(length):
        number, digit = divmod(number, len(alphabet))
        chars.append(alphabet[digit])
    candidate = "".join(chars)
    # A reserved word ("links") as an id would shadow a path: such an attempt is skipped by the caller.
    return None if candidate.lower() in link_rules.RESERVED_SLUGS else candidate


def created(row_number, short_id):
    """A created row's result."""
    return {"row": row_number, "status": CREATED, "short_id": short_id}


def failed(row_number, message, field=None):
    """A failed row's result."""
    result = {"row": row_number, "status": FAILED, "error": message}
    if field:
        result["field"] = field
    return result


def results_csv(rows, results, short_base_url):
    """The results as CSV text: each input row (url, slug, title) with its status, short link or error.

    Every cell is escaped against formula injection, as in the export: an input cell like
    "=HYPERLINK(...)" comes back as text.
    """
    by_row = {result["row"]: result for result in results}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(RESULT_COLUMNS)
    for row in rows:
        result = by_row.get(row.number, {"status": "not run"})
        short_id = result.get("short_id")
        values = {
            "row": row.number, "url": row.cells["url"], "slug": row.cells["slug"], "title": row.cells["title"],
            "status": result["status"], "short_id": short_id,
            "short_url": link_rules.short_url(short_base_url, short_id) if short_id else None,
            "error": result.get("error"),
        }
        writer.writerow([escape_cell(values[column]) for column in RESULT_COLUMNS])
    return buffer.getvalue()
