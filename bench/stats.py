"""Summaries of timing samples: median and p99 by the nearest-rank method, no interpolation."""

import math
import statistics


def percentile(samples, pct):
    """The nearest-rank percentile of `samples` (pct in 0..100)."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(samples):
    """Count, median, p99 and mean of a list of numbers."""
    return {
        "n": len(samples),
        "median": statistics.median(samples) if samples else float("nan"),
        "p99": percentile(samples, 99),
        "mean": statistics.fmean(samples) if samples else float("nan"),
    }


def ratio(ours, theirs):
    """ours / theirs, or None when either side is missing or zero."""
    if ours is None or theirs in (None, 0) or (isinstance(theirs, float) and math.isnan(theirs)):
        return None
    return ours / theirs
