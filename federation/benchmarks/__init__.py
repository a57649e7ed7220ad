"""Benchmarks of the protocol engine (pure code; run with ``python -m``)."""
