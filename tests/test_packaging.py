"""What ships: the wheel holds the engine, its assets and test doubles; never benchmarks or tests."""

from __future__ import annotations

import ast
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "synaptoroute_agents"


@pytest.mark.slow
def test_the_wheel_holds_no_benchmark_or_test_code(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")
    proc = subprocess.run(
        [uv, "build", "--wheel", "--quiet", "--out-dir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("synaptoroute_agents-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"synaptoroute_agents"}
    assert not [n for n in names if n.startswith(("benchmarks/", "tests/"))]
    assert not [n for n in names if "/bench/" in n or n.endswith(("fake.py", "conftest.py"))]
    assert not [n for n in names if Path(n).name.startswith("test_")]
    for needed in (
        "synaptoroute_agents/testing.py",
        "synaptoroute_agents/py.typed",
        "synaptoroute_agents/cli/__init__.py",
        "synaptoroute_agents/cli/__main__.py",
        "synaptoroute_agents/assets/tokenizer.json",
        "synaptoroute_agents/assets/demo_routes.yaml",
        "synaptoroute_agents/assets/NOTICE",
        "synaptoroute_agents/assets/static_minilm.npz",
    ):
        assert needed in names, needed
    # the static tier's table stays small (int8, 128 dimensions)
    info = zipfile.ZipFile(wheel).getinfo("synaptoroute_agents/assets/static_minilm.npz")
    assert info.file_size < 4_000_000
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "synaptoroute = synaptoroute_agents.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_engine_never_imports_benchmarks_or_tests() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {m}"
                for m in modules
                if m.split(".")[0] in {"benchmarks", "tests"}
            ]
    assert offenders == []
