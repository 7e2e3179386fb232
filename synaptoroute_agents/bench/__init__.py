"""Reproducible benchmarks. Each writes a JSON manifest and rewrites its own section of docs/BENCHMARKS.md."""
