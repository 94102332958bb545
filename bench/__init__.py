"""Benchmarks against the recipe's handler: the redirect hot path, the click pipeline, the admin list, cost.

`make bench` runs `python -m bench`, which writes BENCHMARKS.md. Nothing here asserts on
timings: a slow machine gives slower numbers, never a failure.
"""
