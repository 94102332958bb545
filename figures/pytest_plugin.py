"""The test suite's own figures: a complete `make test` writes results/tests.json and renders the documents.

Loaded by pyproject.toml (`-p figures.pytest_plugin`). It counts the collected tests per file and
per test function, the fast lane and the slow tests, and whatever tests record with the
`record_figure` fixture. It writes only after a complete run (the configured test paths, no `-k`,
no `-m`, no `--lf`, not an xdist run) in which every test passed, apart from the documents' own
figure check: that check fails when the counts moved, and the rendering here is what settles it.
"""
import time
from pathlib import Path

import pytest

import figures

COMMAND = "make test"
SOURCE = "tests"
# Failures here are disagreements that rendering fixes, so they do not stop the write.
FIGURE_CHECKS = "tests/test_doc_figures.py::test_every_document_agrees_with_its_results"


def complete_run(config):
    """True for the whole suite as `make test` runs it, in one process."""
    option = config.option
    return (
        config.args_source == pytest.Config.ArgsSource.TESTPATHS
        and not option.keyword
        and not option.markexpr
        and not getattr(option, "lf", False)
        and not getattr(option, "deselect", None)
        and not getattr(option, "collectonly", False)
        and not getattr(option, "numprocesses", None)
        and not hasattr(config, "workerinput")
    )


class FigureRecorder:
    """Collects the suite's figures during one session."""

    def __init__(self, config):
        self.config = config
        self.started = time.monotonic()
        self.counted = {}
        self.outcomes = {"passed": 0, "failed": 0, "skipped": 0}
        self.other_failures = 0

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session):
        root = Path(str(self.config.rootpath))
        files, functions = {}, {}
        fast = 0
        for item in session.items:
            stem = Path(str(item.path)).relative_to(root).with_suffix("").as_posix().replace("/", ".")
            stem = stem.removeprefix("tests.")
            name = getattr(item, "originalname", None) or item.name
            files[stem] = files.get(stem, 0) + 1
            functions[f"{stem}.{name}"] = functions.get(f"{stem}.{name}", 0) + 1
            fast += item.get_closest_marker("slow") is None
        self.counted = {f"files.{stem}.tests": n for stem, n in files.items()}
        self.counted |= {f"functions.{key}.cases": n for key, n in functions.items()}
        self.counted |= {"lanes.all": len(session.items), "lanes.fast": fast, "lanes.slow": len(session.items) - fast}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            outcome = report.outcome
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if outcome == "failed" and not report.nodeid.startswith(FIGURE_CHECKS):
                self.other_failures += 1

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if not complete_run(self.config) or self.other_failures or not self.counted:
            return
        if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            return  # interrupted or broken: not a complete run
        found = {key: figures.figure(n, basis="counted") for key, n in self.counted.items()}
        found["run.skipped"] = figures.figure(self.outcomes["skipped"], basis="counted")
        seconds = time.monotonic() - self.started
        found["run.seconds"] = figures.figure(round(seconds), figures.duration(seconds))
        found |= _RECORDED
        # The project the run belongs to: this repository, or a test's own small project.
        root = Path(str(self.config.rootpath))
        figures.write(SOURCE, COMMAND, found, root / "results")
        for document in figures.DOCUMENTS:
            if (root / document.name).exists():
                figures.render(root / document.name, root / "results")


# Figures tests recorded in this process. Only a run in one process writes them (see complete_run).
_RECORDED = {}


def record(key, value, text=None, basis="measured"):
    """A figure for results/tests.json, kept if this run turns out complete and passing."""
    _RECORDED[key] = figures.figure(value, text, basis)


def pytest_configure(config):
    _RECORDED.clear()
    config.pluginmanager.register(FigureRecorder(config), "figure-recorder")


@pytest.fixture
def record_figure():
    """record_figure("concurrency.random_ids.created", 1288): see record()."""
    return record
