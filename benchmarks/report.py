"""Shared pieces of every benchmark: the machine/versions manifest and docs/BENCHMARKS.md sections."""

from __future__ import annotations

import json
import os
import platform
import re
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["machine_info", "write_manifest", "update_section", "DEFAULT_DOC", "MANIFESTS", "REPO_ROOT"]

#: The repository's root (this package lives at ``<root>/benchmarks``): the docs are written there
#: whatever the current directory is.
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DOC = REPO_ROOT / "docs" / "BENCHMARKS.md"
#: Where the JSON manifests behind the figures in docs/BENCHMARKS.md are kept.
MANIFESTS = REPO_ROOT / "docs" / "benchmarks"
_PACKAGES = ("synaptoroute-agents", "numpy", "faiss-cpu", "fastembed", "onnxruntime", "sqlalchemy")


def machine_info() -> dict[str, Any]:
    """CPU, memory, OS and package versions of this run."""
    mem = None
    try:
        with open("/proc/meminfo") as fh:
            mem = int(fh.readline().split()[1]) * 1024
    except OSError:
        pass
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_bytes": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "packages": versions,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_manifest(path: str | os.PathLike[str], name: str, figures: Any, **extra: Any) -> Path:
    """Write ``{"benchmark", "figures", "machine", ...}`` as JSON and return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "figures": figures, "machine": machine_info(), **extra}
    p.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return p


def update_section(name: str, markdown: str, doc: str | os.PathLike[str] = DEFAULT_DOC) -> Path:
    """Replace (or append) the block between ``<!-- BEGIN name -->`` and ``<!-- END name -->``.

    Each benchmark owns one named section, so rerunning one never touches another's figures.
    """
    p = Path(doc)
    p.parent.mkdir(parents=True, exist_ok=True)
    text = (
        p.read_text()
        if p.exists()
        else "# Benchmarks\n\nEvery figure here is written by a script; each section names its command.\n"
        "Run them from the repository root: `uv run --group bench python -m benchmarks.<name>`.\n"
    )
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    )
    p.write_text(text)
    return p
