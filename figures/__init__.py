"""Figures that documents quote, kept in results files that commands write, never typed by hand.

A command writes results/<source>.json:
    {"source": "package", "command": "make package", "written_at": "<iso time>",
     "figures": {"<dotted.key>": {"text": "2.4 MiB", "value": 2516582, "basis": "measured"}}}
A document quotes a figure between markers that rendered Markdown does not show:
    <!--fig package:admin_zip.kib-->2,458 KiB<!--/fig-->
`check` lists every marker whose text differs from its results file; `render` rewrites them.
"""
import datetime
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "results"
DOCUMENTS = (ROOT / "README.md", ROOT / "RELIABILITY.md")
BASES = {"measured", "modelled", "counted"}
MARKER = re.compile(r"<!--fig (?P<source>[a-z_]+):(?P<key>[A-Za-z0-9_.\-]+)-->(?P<text>.*?)<!--/fig-->", re.S)


def figure(value, text=None, basis="measured"):
    """One figure: its value, its text as documents quote it (numbers with thousands separators), its basis."""
    if basis not in BASES:
        raise ValueError(f"basis must be one of {sorted(BASES)}, not {basis!r}")
    if text is None:
        text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    return {"text": text, "value": value, "basis": basis}


def duration(seconds):
    """7 min 6 s, or 49 s: how documents quote the time a command took."""
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def write(source, command, figures, results_dir=None):
    """Write results/<source>.json; `figures` maps dotted keys to figure() dicts or plain values."""
    entries = {key: entry if isinstance(entry, dict) else figure(entry) for key, entry in sorted(figures.items())}
    for key, entry in entries.items():
        if set(entry) != {"text", "value", "basis"} or entry["basis"] not in BASES:
            raise ValueError(f"{source}:{key} is not a figure: {entry!r}")
    record = {
        "source": source,
        "command": command,
        "written_at": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "figures": entries,
    }
    path = Path(results_dir or RESULTS_DIR) / f"{source}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return path


def load(source, results_dir=None):
    """The record of results/<source>.json; FileNotFoundError when no command has written it."""
    return json.loads((Path(results_dir or RESULTS_DIR) / f"{source}.json").read_text())


def markers(text):
    """(source, key, text, line number) of every marker in a document's text."""
    return [(m["source"], m["key"], m["text"], text.count("\n", 0, m.start()) + 1) for m in MARKER.finditer(text)]


def _expected(source, key, results_dir, cache):
    """The text results say for source:key, or an error message."""
    if source not in cache:
        try:
            cache[source] = load(source, results_dir)["figures"]
        except FileNotFoundError:
            cache[source] = None
    figures = cache[source]
    if figures is None:
        return None, f"no results file for source {source!r} (results/{source}.json)"
    if key not in figures:
        return None, f"results/{source}.json has no figure {key!r}"
    return figures[key]["text"], None


def check(path, results_dir=None):
    """Every disagreement between a document's markers and the results files, as messages."""
    path = Path(path)
    problems, cache = [], {}
    for source, key, text, line in markers(path.read_text()):
        expected, error = _expected(source, key, results_dir, cache)
        if error:
            problems.append(f"{path.name}:{line}: {source}:{key}: {error}")
        elif text != expected:
            problems.append(f"{path.name}:{line}: {source}:{key} says {text!r}, results say {expected!r}")
    return problems


def render(path, results_dir=None):
    """Rewrite the text of every marker in a document from the results files; returns check()'s leftovers."""
    path = Path(path)
    cache = {}

    def replace(match):
        expected, error = _expected(match["source"], match["key"], results_dir, cache)
        if error:
            return match[0]  # left as it is: check() reports it
        return f"<!--fig {match['source']}:{match['key']}-->{expected}<!--/fig-->"

    original = path.read_text()
    rendered = MARKER.sub(replace, original)
    if rendered != original:
        path.write_text(rendered)
    return check(path, results_dir)
