"""Benchmarks: each prints a table and writes it into docs/performance.md."""
