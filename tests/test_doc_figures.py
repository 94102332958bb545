"""No figure typed by hand: README.md and RELIABILITY.md quote figures only from results/, and agree with them."""
import re
from pathlib import Path

import pytest

import figures
from figures import template

ROOT = Path(__file__).resolve().parent.parent


def test_every_document_agrees_with_its_results():
    """The figures plugin renders and re-checks after a complete `make test`; this is the check."""
    problems = [problem for document in figures.DOCUMENTS for problem in figures.check(document)]
    assert not problems, (
        "run the command that writes the results (then `python -m figures`); a complete `make test` renders "
        "its own figures when it ends, so after tests were added, check `git diff` and run it again:\n"
        + "\n".join(problems)
    )


def test_the_template_figures_are_current():
    """results/template.json says what cloudformation.yaml says today (`python -m figures` rewrites it)."""
    written = figures.load("template")["figures"]
    assert written == template.derive(), "cloudformation.yaml changed: run `python -m figures`"


def test_every_results_file_has_the_agreed_shape():
    for path in sorted(figures.RESULTS_DIR.glob("*.json")):
        record = figures.load(path.stem)
        assert record["source"] == path.stem and record["command"] and record["written_at"], path.name
        for key, entry in record["figures"].items():
            assert set(entry) == {"text", "value", "basis"} and entry["basis"] in figures.BASES, (path.name, key)


# Untagged figures: in the parts of the documents that quote measurements, every number must sit
# between markers, apart from these, which are settings, limits or names rather than measurements.
# HTTP status codes are names of answers, not measurements.
STATUS_CODES = {"200", "201", "204", "302", "400", "401", "403", "404", "409", "410", "413", "415", "422", "429", "500", "503"}
ALLOWED = {
    "README.md": STATUS_CODES | {
        "3.13",  # the Lambda runtime the aggregator is built for
        "2014",  # manylinux2014, a platform tag
        "0.63.0",  # Zappa's pinned version
        "3.3.30",  # checkov's pinned version (requirements-scan.txt)
    },
    "RELIABILITY.md": STATUS_CODES,
}


def measured_parts(document, text):
    """The paragraphs that quote measurements: README's artifact table and scan summary, RELIABILITY's figures."""
    if document == "README.md":
        start = text.index("\n", text.index("### 1. Build the artifacts"))
        yield text[start:text.index("**Never deploy", start)]
        start = text.index("### Security scan")
        yield text[start:text.index("The decisions behind the skips", start)]
        start = text.index("- **Admin policy, role and log group**")
        yield text[start:text.index("`AdminRole` is that", start)]
    else:
        start = text.index("No figure here is typed by hand")
        yield text[start:text.index("\n## ", start)]
        for match in re.finditer(r"^- \*\*Figures[^*]*\*\*.*?(?=^- \*\*|^## |\Z)", text, re.M | re.S):
            yield match[0]


def untagged_numbers(document, text):
    """Numbers outside markers and code spans in the measured parts, minus the allowlist."""
    found = []
    for part in measured_parts(document, text):
        bare = figures.MARKER.sub(" ", part)
        bare = re.sub(r"`[^`]*`", " ", bare)
        bare = re.sub(r"\[[^\]]*\]\([^)]*\)", " ", bare)  # links: file names such as BENCHMARKS.md
        found += [n for n in re.findall(r"(?<![\w.])\d[\d,.]*(?<![.,])(?!\w)", bare) if n not in ALLOWED[document]]
    return found


@pytest.mark.parametrize("document", ["README.md", "RELIABILITY.md"])
def test_no_untagged_figure_in_the_measured_parts(document):
    text = (ROOT / document).read_text()
    assert not untagged_numbers(document, text), (
        f"{document}: quote these from a results file between <!--fig source:key--> markers "
        f"(or allow them in this test if they are settings, not measurements): {untagged_numbers(document, text)}"
    )


def test_a_typed_figure_in_a_measured_part_is_caught():
    text = (ROOT / "RELIABILITY.md").read_text().replace("- **Figures:** ", "- **Figures:** 58,296 redirects; ", 1)
    assert "58,296" in untagged_numbers("RELIABILITY.md", text)


# The checker itself, on a document and results of its own.


@pytest.fixture
def results(tmp_path):
    figures.write("demo", "make demo", {"runs.count": figures.figure(52523, basis="counted"),
                                        "zip.size": figures.figure(4130, "4 KiB")}, tmp_path)
    return tmp_path


def test_a_marker_that_agrees_passes(results, tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("counted <!--fig demo:runs.count-->52,523<!--/fig--> of them, <!--fig demo:zip.size-->4 KiB<!--/fig-->\n")
    assert figures.check(doc, results) == []


def test_a_marker_that_disagrees_fails(results, tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("intro\ncounted <!--fig demo:runs.count-->58,296<!--/fig--> of them\n")
    (problem,) = figures.check(doc, results)
    assert "doc.md:2" in problem and "'58,296'" in problem and "'52,523'" in problem


@pytest.mark.parametrize("marker", ["<!--fig demo:runs.missing-->1<!--/fig-->", "<!--fig nosuch:runs.count-->1<!--/fig-->"])
def test_an_unknown_key_or_source_fails(results, tmp_path, marker):
    doc = tmp_path / "doc.md"
    doc.write_text(f"x {marker}\n")
    assert len(figures.check(doc, results)) == 1


def test_render_then_check_is_clean(results, tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("a <!--fig demo:runs.count-->?<!--/fig--> b <!--fig demo:zip.size-->2.4 MiB<!--/fig--> c\n")
    assert figures.render(doc, results) == []
    assert doc.read_text() == "a <!--fig demo:runs.count-->52,523<!--/fig--> b <!--fig demo:zip.size-->4 KiB<!--/fig--> c\n"
    assert figures.check(doc, results) == []


def test_render_leaves_an_unknown_key_for_check_to_report(results, tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("a <!--fig demo:gone-->7<!--/fig-->\n")
    assert len(figures.render(doc, results)) == 1 and "-->7<!--" in doc.read_text()


def test_a_figure_says_how_it_was_found():
    assert figures.figure(1288) == {"text": "1,288", "value": 1288, "basis": "measured"}
    with pytest.raises(ValueError):
        figures.figure(1, basis="guessed")


def test_the_cli_check_exits_non_zero_on_a_disagreement(monkeypatch, results, tmp_path):
    from figures.__main__ import main

    doc = tmp_path / "doc.md"
    doc.write_text("<!--fig demo:runs.count-->1<!--/fig-->\n")
    monkeypatch.setattr(figures, "DOCUMENTS", (doc,))
    monkeypatch.setattr(figures, "RESULTS_DIR", results)
    assert main(["--check"]) == 1
    doc.write_text("<!--fig demo:runs.count-->52,523<!--/fig-->\n")
    assert main(["--check"]) == 0


def test_the_template_figures_follow_the_policy():
    """A new grant in AdminPolicy shows in the derived list the README quotes."""
    tpl = __import__("local_stack.template", fromlist=["load_template"]).load_template()
    statements = tpl["Resources"]["AdminPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert "`DescribeTable`" not in template.derive(tpl)["admin_policy.table"]["text"]
    statements[0]["Action"] = list(statements[0]["Action"]) + ["dynamodb:DescribeTable"]
    assert "`DescribeTable`" in template.derive(tpl)["admin_policy.table"]["text"]


# The suite's plugin, run on a small project of its own in a subprocess.

SMALL_SUITE = '''
import pytest

@pytest.mark.parametrize("n", [1, 2, 3])
def test_cases(n, record_figure):
    record_figure("demo.square", n * n, basis="counted")

def test_one():
    assert FAIL is False
'''


def run_small_suite(project, *args, fail=False):
    import subprocess
    import sys

    (project / "tests").mkdir(exist_ok=True)
    (project / "tests" / "test_small.py").write_text(SMALL_SUITE.replace("FAIL", str(fail)))
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    env = {key: value for key, value in __import__("os").environ.items() if key != "PYTEST_ADDOPTS"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "figures.pytest_plugin", "-p", "no:randomly",
                           "-p", "no:cacheprovider", *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_complete_passing_run_writes_its_figures_and_renders_the_documents(tmp_path):
    (tmp_path / "README.md").write_text("<!--fig tests:lanes.all-->?<!--/fig--> tests, last square "
                                        "<!--fig tests:demo.square-->?<!--/fig-->\n")
    assert run_small_suite(tmp_path).returncode == 0
    written = figures.load("tests", tmp_path / "results")["figures"]
    assert written["lanes.all"]["value"] == 4 and written["files.test_small.tests"]["value"] == 4
    assert written["functions.test_small.test_cases.cases"]["value"] == 3
    assert written["run.skipped"]["value"] == 0 and written["demo.square"]["text"] == "9"
    assert (tmp_path / "README.md").read_text() == ("<!--fig tests:lanes.all-->4<!--/fig--> tests, last square "
                                                    "<!--fig tests:demo.square-->9<!--/fig-->\n")


@pytest.mark.parametrize("args, fail", [(("-k", "test_one"), False), ((), True)])
def test_a_partial_or_failing_run_writes_nothing(tmp_path, args, fail):
    run_small_suite(tmp_path, *args, fail=fail)
    assert not (tmp_path / "results" / "tests.json").exists()


# The commands' own results writers, on artifacts and reports made here.


def test_make_package_records_each_zip_packed_and_unpacked(tmp_path):
    import zipfile

    from deploy import package

    built = {}
    for name, size in (("redirect", 5000), ("aggregator", 40000), ("admin", 3 * 1024 * 1024)):
        built[name] = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(built[name], "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("data", bytes(size))
    package.write_results(built, 27.4, tmp_path)
    written = figures.load("package", tmp_path)["figures"]
    assert written["admin_zip.unpacked"] == {"text": "3.0 MiB", "value": 3 * 1024 * 1024, "basis": "measured"}
    assert written["redirect_zip.size"]["value"] == built["redirect"].stat().st_size
    assert written["aggregator_zip.unpacked"]["text"] == "39 KiB" and written["build.seconds"]["text"] == "27 s"


def test_make_scan_records_checkovs_counts(tmp_path):
    from deploy import scan

    scan.write_results({"summary": {"passed": 61, "failed": 0, "skipped": 16}}, tmp_path)
    written = figures.load("scan", tmp_path)
    assert written["command"] == "make scan"
    assert {key: entry["text"] for key, entry in written["figures"].items()} == {
        "checkov.passed": "61", "checkov.failed": "0", "checkov.skipped": "16"}
