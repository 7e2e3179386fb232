# ruff: noqa: T201  (a command-line script: its output is the report)
"""Install size and import time of the core distribution, measured on a fresh virtual environment.

Builds the wheel of the tree given (the current checkout by default), installs it alone into a new
``uv venv`` and reports the size of its site-packages folder and the time of
``python -c "import synaptoroute_agents"`` (median of several runs, plus the top entries of
``python -X importtime``).

Run from the repository root::

    python benchmarks/install_size.py            # this tree
    python benchmarks/install_size.py --tree /tmp/other-checkout --json

Needs ``uv`` on PATH. The installs come from uv's cache when it holds the packages; the network is
used otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)


def build_wheel(tree: Path, out: Path) -> Path:
    """Build the core wheel of ``tree`` into ``out`` and return its path."""
    _run(["uv", "build", "--wheel", "--package", "synaptoroute-agents", "--out-dir", str(out)], cwd=tree)
    wheels = sorted(out.glob("synaptoroute_agents-*.whl"))
    if not wheels:
        raise SystemExit(f"no wheel was built in {out}")
    return wheels[-1]


def folder_bytes(folder: Path) -> int:
    """The summed size of the regular files under ``folder`` (symlinks not followed)."""
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def largest_folders(site: Path, top: int) -> list[tuple[str, float]]:
    """The ``top`` largest entries of site-packages (MB), largest first."""
    sizes = []
    for entry in site.iterdir():
        if entry.name.endswith((".dist-info", ".pth")) or entry.name == "__pycache__":
            continue
        size = folder_bytes(entry) if entry.is_dir() else entry.stat().st_size
        sizes.append((entry.name, round(size / 1e6, 1)))
    return sorted(sizes, key=lambda r: -r[1])[:top]


def import_times(python: Path, runs: int) -> list[float]:
    """Wall seconds of ``python -c 'import synaptoroute_agents'``, one fresh process per run."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        _run([str(python), "-c", "import synaptoroute_agents"])
        times.append(time.perf_counter() - start)
    return times


def importtime_top(python: Path, top: int) -> list[tuple[str, float]]:
    """The ``top`` modules with the largest cumulative import time (ms) under ``-X importtime``."""
    err = _run([str(python), "-X", "importtime", "-c", "import synaptoroute_agents"]).stderr
    rows: list[tuple[str, float]] = []
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        rows.append((parts[2].strip(), int(parts[1]) / 1000.0))
    total = next((ms for name, ms in rows if name == "synaptoroute_agents"), None)
    ranked = sorted((r for r in rows if not r[0].startswith(" ")), key=lambda r: -r[1])
    out = ranked[:top]
    if total is not None and ("synaptoroute_agents", total) not in out:
        out.insert(0, ("synaptoroute_agents", total))
    return out


def measure(tree: Path, runs: int = 5, top: int = 8) -> dict[str, Any]:
    """Build, install into a fresh venv, and measure; returns a dict of figures."""
    with tempfile.TemporaryDirectory(prefix="synaptoroute-install-") as tmp:
        base = Path(tmp)
        wheel = build_wheel(tree, base / "dist")
        venv = base / "venv"
        _run(
            [
                "uv",
                "venv",
                "--quiet",
                "--python",
                f"{sys.version_info.major}.{sys.version_info.minor}",
                str(venv),
            ]
        )
        python = venv / "bin" / "python"
        _run(["uv", "pip", "install", "--quiet", "--python", str(python), str(wheel)])
        site = Path(
            _run(
                [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
            ).stdout.strip()
        )
        dists = sorted(p.name.split("-")[0] for p in site.glob("*.dist-info"))
        _run([str(python), "-c", "import synaptoroute_agents"])  # warm the bytecode caches first
        times = import_times(python, runs)
        return {
            "wheel": wheel.name,
            "wheel_kb": round(wheel.stat().st_size / 1024, 1),
            "site_packages_mb": round(folder_bytes(site) / 1e6, 1),
            "distributions": dists,
            "largest_mb": largest_folders(site, top),
            "import_s_median": round(statistics.median(times), 3),
            "import_s_runs": [round(t, 3) for t in times],
            "importtime_top_ms": [(name, round(ms, 1)) for name, ms in importtime_top(python, top)],
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to build (default: this one)")
    parser.add_argument("--runs", type=int, default=5, help="import timings to take the median of")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    fig = measure(args.tree.resolve(), runs=args.runs)
    if args.json:
        print(json.dumps(fig, indent=2))
        return 0
    print(f"wheel            {fig['wheel']} ({fig['wheel_kb']} kB)")
    print(f"site-packages    {fig['site_packages_mb']} MB, {len(fig['distributions'])} distributions")
    print(f"                 {', '.join(fig['distributions'])}")
    print("largest          " + ", ".join(f"{name} {mb} MB" for name, mb in fig["largest_mb"]))
    print(
        f"import time      {fig['import_s_median']} s median of {len(fig['import_s_runs'])} {fig['import_s_runs']}"
    )
    print("-X importtime    cumulative ms of the slowest top-level imports:")
    for name, ms in fig["importtime_top_ms"]:
        print(f"                 {ms:9.1f}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
