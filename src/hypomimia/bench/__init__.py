"""Benchmarks (`make bench`): performance targets live here, never in timed tests."""


def row(name: str, metric: str, value, unit: str, note: str = "") -> dict:
    """One result of `make bench`: a row of bench/results.json and of the markdown table."""
    return {"name": name, "metric": metric, "value": value, "unit": unit, "note": note}
