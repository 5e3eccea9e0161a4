"""Benchmarks (`make bench`): performance targets live here, never in timed tests."""
