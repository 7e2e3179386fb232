"""The engine's layers point down, hold no import circle, and import no agent framework."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "synaptoroute_agents"

#: docs/architecture.md's layers: a module may import its own layer or a lower one at import time.
LAYER = {
    "errors": 0,
    "routes": 0,
    "text": 0,
    "deps": 0,
    "followups": 0,
    "encoders": 1,
    "index": 1,
    "store": 1,
    "scoring": 2,
    "fitting": 2,
    "router": 3,
    "batching": 4,
    "sync": 4,
    "seeding": 4,
    "tools": 4,
    "documents": 4,
    "evaluation": 4,
    "routefile": 4,
    "conversation": 4,
    "clauses": 4,
    "testing": 4,
    "cli": 5,
    "server": 5,
}
FACES = 5


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_time_nodes(tree: ast.Module) -> list[ast.stmt]:
    """Statements that run when the module is imported (not TYPE_CHECKING blocks, not functions)."""
    out: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        out.extend(node.body if isinstance(node, ast.Try) else [node])
    return out


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        edges: set[str] = set()
        for node in _import_time_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    edges.add(sub if sub in paths else target)
            elif isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
        graph[name] = {e for e in edges if e in paths and e != name}
    return graph


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYER[parts[1]] if len(parts) > 1 else FACES + 1


def test_every_engine_module_has_a_layer() -> None:
    assert all(_layer(m) >= 0 for m in _graph())  # a KeyError names a module missing from LAYER


def test_imports_point_down() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in sorted(_graph().items())
        for target in sorted(targets)
        if _layer(target) > _layer(module)
        and not (_layer(module) == FACES and target == "synaptoroute_agents")
    ]
    assert upward == []


def test_no_import_circle() -> None:
    graph = _graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert circles == []


_WITHOUT_FRAMEWORKS = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"langchain", "langchain_core", "langgraph", "llama_index"}:
            raise ImportError(f"{name} is made unimportable for this test")
        return None

sys.meta_path.insert(0, Block())
import synaptoroute_agents as sr
from synaptoroute_agents.testing import HashEncoder

with sr.SemanticRouter(HashEncoder(dim=64)) as router:
    router.add(sr.Route("weather", ["will it rain tomorrow"]))
    router.add(sr.Route("billing", ["I was charged twice"]))
    assert router.route("rain tomorrow").name == "weather"
print("ok")
"""


def test_the_engine_imports_and_routes_with_every_framework_unimportable() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _WITHOUT_FRAMEWORKS], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
