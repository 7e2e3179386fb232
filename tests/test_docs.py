"""Every Python block in README.md, docs/*.md and the integrations' READMEs runs, as written.

The blocks are found and run by pytest-examples (pydantic's plugin for testing documentation):
a ``#> ...`` comment under a ``print(...)`` is the output that call must print, so the results a
page shows are checked. The blocks of one file run in order in one namespace, the way a reader
pastes them one after the other, in a fresh temporary working directory (they create files such as
``routes.db``), with the bundled model and the network blocked (pytest-socket, as everywhere).

After changing a block, ``uv run pytest tests/test_docs.py --update-examples`` rewrites its
``#>`` comments from what the code prints; review the diff.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_examples import CodeExample, EvalExample, find_examples

from synaptoroute_agents import SemanticRouter

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "integrations").glob("*/README.md")),
]
# The guides whose Python blocks are the point of this test: finding none means the lookup broke.
MUST_HAVE_BLOCKS = {
    "README.md",
    "docs/fitting.md",
    "docs/langchain.md",
    "docs/langgraph.md",
    "docs/llamaindex.md",
    "docs/migrating-from-semantic-router.md",
}


def _blocks(page: Path) -> list[CodeExample]:
    return list(find_examples(page))


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


PAGES_WITH_BLOCKS = [page for page in PAGES if _blocks(page)]


def test_the_guides_have_python_blocks() -> None:
    missing = MUST_HAVE_BLOCKS - {_name(page) for page in PAGES_WITH_BLOCKS}
    assert not missing


@pytest.fixture
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def _close_routers(namespace: dict[str, Any]) -> None:
    for value in namespace.values():
        if isinstance(value, SemanticRouter):
            value.close()


def _frames(exc: BaseException) -> str:
    """Where an exception went, one line per frame (pytest's own traceback rendering trips over
    the modules pytest-examples writes, so a failing block is reported this way instead)."""
    lines = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        lines.append(f"  {code.co_filename}:{tb.tb_lineno} in {code.co_name}")
        tb = tb.tb_next
    return "\n".join(lines)


def _run(eval_example: EvalExample, block: CodeExample, namespace: dict[str, Any]) -> dict[str, Any]:
    try:
        if eval_example.update_examples:
            return eval_example.run_print_update(block, module_globals=namespace)
        return eval_example.run_print_check(block, module_globals=namespace)
    except Exception as exc:
        failure = f"{block} raised {type(exc).__name__}: {exc}\n{_frames(exc)}"
    pytest.fail(failure, pytrace=False)  # outside the except: no chained traceback to render


@pytest.mark.parametrize("page", PAGES_WITH_BLOCKS, ids=_name)
def test_python_blocks_run(page: Path, eval_example: EvalExample, in_tmp_dir: Path) -> None:
    eval_example.set_config(line_length=110)  # the project's line length, for long printed output
    namespace: dict[str, Any] = {}
    try:
        for block in _blocks(page):
            module = _run(eval_example, block, namespace)
            # The next block sees this one's names, not its module identity.
            namespace = {k: v for k, v in module.items() if not k.startswith("__")}
    finally:
        _close_routers(namespace)


def test_readme_quick_start_runs_again_on_the_same_store(eval_example: EvalExample, in_tmp_dir: Path) -> None:
    """Set-up code is idempotent: the quick start's add(..., replace=True) lines run twice on routes.db."""
    first = _blocks(ROOT / "README.md")[0]
    assert 'store="routes.db"' in first.source and "replace=True" in first.source
    for _ in range(2):
        module = eval_example.run(first)
        router = module["router"]
        assert [r.name for r in router.routes()] == ["billing", "greeting", "weather"]
        router.close()
