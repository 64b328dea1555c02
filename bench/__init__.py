"""Benchmarks: programs that print a table; results go to docs/benchmarks.md."""
