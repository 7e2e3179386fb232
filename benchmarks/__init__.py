"""Reproducible benchmarks: each writes a JSON manifest and rewrites its own section of docs/BENCHMARKS.md.

This package lives beside the engine in the repository and is not part of any wheel. Run a benchmark
from the repository root with its dependency group, for example::

    uv run --group bench python -m benchmarks.scale --quick

Nothing in ``synaptoroute_agents`` imports this package.
"""
