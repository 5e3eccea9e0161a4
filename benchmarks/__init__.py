"""Benchmarks (`make bench` = `python -m benchmarks --out bench`): performance targets live here, never
in timed tests.

A top-level package beside ``src/``, like ``tests/``: run from the checkout, never installed with the
package nor copied into an image. It imports ``hypomimia``; ``hypomimia`` never imports it.
"""


def row(name: str, metric: str, value, unit: str, note: str = "") -> dict:
    """One result of `make bench`: a row of bench/results.json and of the markdown table."""
    return {"name": name, "metric": metric, "value": value, "unit": unit, "note": note}
