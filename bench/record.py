"""results/bench.json: every benchmark's results record, and the figures documents quote from it.

The file holds, besides the `figures` that README.md quotes between `<!--fig bench:KEY-->`
markers ({"text", "value", "basis"} each), the whole record of each benchmark and the run's
facts (machine, date, total time), so BENCHMARKS.md can be rendered again from it alone.
"""

import json
import math
import time

import figures


def figure(text, value, basis):
    """One quotable figure (figures.figure): its text exactly as documents show it, its value, and its basis."""
    if isinstance(value, float) and not math.isfinite(value):
        value = None  # JSON has no infinity; the text says it
    return figures.figure(value, text, basis)


def plain(record):
    """The record as JSON gives it back (string keys, lists for tuples), so a stored record renders the same."""
    return json.loads(json.dumps(record))


def document(records, figures, run):
    """The results file's content."""
    return {
        "source": "bench",
        "command": "make bench",
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "figures": dict(sorted(figures.items())),
        "run": run,
        "records": records,
    }


def write(path, doc):
    """Write the results file (figures first, for a reader skimming it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def load(path):
    """Read a results file written by `write`."""
    return json.loads(path.read_text(encoding="utf-8"))
