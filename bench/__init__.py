"""Benchmarks of the redirect hot path, the admin list and the cost, against the recipe's handler.

`make bench` runs `python -m bench`, which writes BENCHMARKS.md. Nothing here asserts on
timings: a slow machine gives slower numbers, never a failure.
"""
