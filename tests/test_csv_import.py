"""The CSV import's parsing and row rules (webapp/csv_import.py): pure, no store."""
import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp import csv_import
from webapp.csv_import import ImportRefused
from webapp.exceptions import InvalidLink

BASE = "https://sho.rt"


def _file(*lines, bom=False):
    data = ("\r\n".join(lines) + "\r\n").encode("utf-8")
    return (b"\xef\xbb\xbf" + data) if bom else data


def _check(row):
    return csv_import.check_row(row, short_base_url=BASE)


@pytest.mark.parametrize("bom", [False, True])
def test_utf8_with_or_without_a_bom_is_read(bom):
    text = csv_import.decode(_file("url,slug", "https://bücher.example/ä,één"[:-3] + "abc", bom=bom), 10_000)
    columns, rows = csv_import.parse(text, 10)
    assert columns == ["url", "slug"]
    assert rows[0].cells["url"] == "https://bücher.example/ä"
    assert _check(rows[0]).url == "https://xn--bcher-kva.example/%C3%A4"


@pytest.mark.parametrize("data, says", [
    ("url\nhttps://example.com/é\n".encode("latin-1"), "not UTF-8 (line 2)"),
    ("url\nhttps://example.com/\n".encode("utf-16"), "UTF-16"),
    ("url\nhttps://example.com/\n".encode("utf-16-le"), "NUL"),
    ("url\nhttps://example.com/\n".encode("utf-32"), "UTF-32"),
])
def test_other_encodings_are_refused_with_a_clear_message(data, says):
    with pytest.raises(ImportRefused) as err:
        csv_import.decode(data, 10_000)
    assert says in err.value.message
    assert "UTF-8" in err.value.message


def test_an_oversized_file_is_refused_before_it_is_read():
    with pytest.raises(ImportRefused, match="limit is 100 bytes"):
        csv_import.decode(b"url\n" + b"x" * 200, 100)


def test_too_many_rows_are_refused():
    text = "url\n" + "".join(f"https://example.com/{n}\n" for n in range(11))
    assert len(csv_import.parse(text, 11)[1]) == 11
    with pytest.raises(ImportRefused, match="more than 10 rows"):
        csv_import.parse(text, 10)


@pytest.mark.parametrize("text, says", [
    ("", "empty"),
    ("https://example.com/,abc\n", "no url column"),  # no header: the first link is taken for one
    ("slug,title\nabc,x\n", "no url column"),
    ("url,colour\nhttps://example.com/,red\n", "Unknown column(s) in the header: 'colour'"),
    ("url,slug,URL\nhttps://example.com/,a,b\n", "names url more than once"),
    ("url\n", "no rows"),
    ('url,title\nhttps://example.com/,"unterminated\n', "not valid CSV"),
])
def test_a_bad_header_or_malformed_file_is_refused(text, says):
    with pytest.raises(ImportRefused) as err:
        csv_import.parse(text, 100)
    assert says in err.value.message


def test_columns_in_any_order_and_case_and_blank_lines_skipped():
    columns, rows = csv_import.parse("Title , URL\nHello,https://example.com/\n\n,\nBye,https://example.org/\n", 10)
    assert columns == ["title", "url"]
    assert [(r.number, r.cells["title"], r.cells["url"]) for r in rows] == [
        (1, "Hello", "https://example.com/"), (2, "Bye", "https://example.org/")]


def test_a_row_with_more_cells_than_the_header_is_a_row_error_not_a_file_error():
    _, rows = csv_import.parse("url,slug\nhttps://example.com/,abc,extra\nhttps://example.org/\n", 10)
    with pytest.raises(InvalidLink, match="3 cells; the header has 2"):
        _check(rows[0])
    assert _check(rows[1]).slug is None  # a short row: the missing cells are empty


@pytest.mark.parametrize("cells, field", [
    ({"url": "javascript:alert(1)"}, "url"),
    ({"url": ""}, "url"),
    ({"url": "https://sho.rt/loop"}, "url"),
    ({"url": "https://example.com/", "slug": "a b"}, "slug"),
    ({"url": "https://example.com/", "slug": "links"}, "slug"),
    ({"url": "https://example.com/", "title": "bad\u202etitle"}, "title"),
    ({"url": "https://example.com/", "tags": "x" * 40}, "tags"),
    ({"url": "https://example.com/", "expires_at": "2001-01-01"}, "expires_at"),
    ({"url": "https://example.com/", "expires_at": "tomorrow"}, "expires_at"),
])
def test_each_rule_names_its_field(cells, field):
    row = csv_import.Row(1, {name: cells.get(name, "") for name in csv_import.COLUMNS})
    with pytest.raises(InvalidLink) as err:
        _check(row)
    assert err.value.field == field


def test_tags_are_comma_separated_and_expiry_can_be_never_or_default():
    _, rows = csv_import.parse(
        'url,tags,expires_at\nhttps://example.com/,"Launch, Q3 ,launch",never\nhttps://example.org/,,\n', 10)
    first, second = _check(rows[0]), _check(rows[1])
    assert first.tags == ["launch", "q3"]
    assert first.expires_at is None
    assert second.tags == [] and second.expires_at is not None  # the default expiry


def test_duplicates_within_the_file_keep_the_first():
    _, rows = csv_import.parse(
        "url,slug\nhttps://example.com/a,same\nhttps://example.com/b,same\nhttps://example.com/c,\n"
        "https://example.com/c,\nhttps://example.com/d,other\n", 10)
    checked = {row.number: _check(row) for row in rows}
    found = csv_import.duplicates(rows, checked)
    assert found == {2: "The slug same is already used by row 1 of this file.", 4: "This row repeats row 3 of this file."}


def test_derived_ids_are_deterministic_keyed_and_of_the_id_length():
    first = csv_import.derived_id("secret", "job1", 7, 0, 7)
    assert first == csv_import.derived_id("secret", "job1", 7, 0, 7)
    assert len(first) == 7 and first.isalnum()
    others = {csv_import.derived_id("other", "job1", 7, 0, 7), csv_import.derived_id("secret", "job2", 7, 0, 7),
              csv_import.derived_id("secret", "job1", 8, 0, 7), csv_import.derived_id("secret", "job1", 7, 1, 7)}
    assert first not in others and len(others) == 4


def test_results_csv_escapes_formula_injection():
    _, rows = csv_import.parse('url,title,slug\nhttps://example.com/,"=HYPERLINK(""http://evil"")",+cmd\n', 10)
    text = csv_import.results_csv(rows, [csv_import.failed(1, "=1+1 is not a slug", "slug")], BASE)
    record = list(csv.DictReader(io.StringIO(text)))[0]
    assert record["title"] == "'=HYPERLINK(\"http://evil\")"
    assert record["slug"] == "'+cmd"
    assert record["error"] == "'=1+1 is not a slug"
    assert record["status"] == "error"


def test_results_csv_gives_each_created_row_its_short_link():
    _, rows = csv_import.parse("url\nhttps://example.com/\n", 10)
    record = list(csv.DictReader(io.StringIO(csv_import.results_csv(rows, [csv_import.created(1, "abc1234")], BASE))))[0]
    assert (record["row"], record["status"], record["short_url"]) == ("1", "created", "https://sho.rt/abc1234")


# Any file made of valid and invalid rows parses into exactly the rows it has, each checked once.
_cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
_url = st.one_of(st.builds(lambda path: f"https://example.com/{path}", st.text("abcxyz/é -", max_size=15)), _cell)
_row = st.fixed_dictionaries({"url": _url, "slug": st.one_of(st.just(""), st.text("abcdefXYZ019_-", max_size=8), _cell),
                              "title": _cell, "tags": _cell, "expires_at": st.sampled_from(["", "never", "2099-01-01", "x"])})


@settings(max_examples=200, deadline=None)
@given(st.lists(_row, min_size=1, max_size=30))
def test_every_generated_row_is_read_back_and_gets_exactly_one_outcome(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(csv_import.COLUMNS)
    for row in rows:
        writer.writerow([row[name] for name in csv_import.COLUMNS])
    kept = [row for row in rows if any(value.strip() for value in row.values())]  # blank rows are skipped
    text = csv_import.decode(buffer.getvalue().encode("utf-8"), 10**6)
    if not kept:
        with pytest.raises(ImportRefused, match="no rows"):
            csv_import.parse(text, 100)
        return
    _, parsed = csv_import.parse(text, 100)
    assert [row.cells for row in parsed] == kept
    outcomes = {}
    for row in parsed:
        try:
            outcomes[row.number] = _check(row)
        except InvalidLink as err:
            assert err.message and err.field in csv_import.COLUMNS + (None,)
    assert set(csv_import.duplicates(parsed, outcomes)) <= set(outcomes)
