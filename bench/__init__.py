"""Benchmarks: each prints its figures; run them as ``python -m bench.<name>``."""
