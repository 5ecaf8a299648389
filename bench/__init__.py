"""Benchmarks: Ticker's fan-out against Nchan on one machine (``python -m bench.run``)."""
