"""What the ``synaptoroute`` command writes: tables, JSON, one-line errors and exit codes."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from enum import IntEnum
from typing import Any

from ..errors import (
    EncoderError,
    InvalidInputError,
    NotARouterStoreError,
    RouterClosedError,
    RouterOverloadedError,
    StoreError,
    SynaptoRouteError,
)
from ..routes import RouteMatch

__all__ = [
    "ExitCode",
    "ExportRefusedError",
    "EXIT_CODES_HELP",
    "UsageError",
    "emit",
    "error_code",
    "exit_code_of",
    "format_table",
    "match_rows",
    "report_error",
    "MATCH_HEADERS",
]


class ExitCode(IntEnum):
    """The exit status of every ``synaptoroute`` command."""

    OK = 0
    #: ``route``: none of the queries matched a route (every one abstained), as grep's 1.
    NO_MATCH = 1
    #: a usage or input error: bad arguments or an option out of its bounds, an unreadable or
    #: invalid file, a ``--db`` that is not a store or (for a command that only reads) does not
    #: exist, an export that would replace a route file with nothing, an unknown or duplicate
    #: route, an unknown encoder name.
    INPUT = 2
    #: the environment failed: the store or the encoder cannot be used, or an optional
    #: dependency is not installed.
    ENVIRONMENT = 3
    INTERRUPTED = 130


EXIT_CODES_HELP = """exit codes:
  0    success
  1    route: no query matched a route (all abstained)
  2    usage or input error (bad arguments or an option out of bounds, a bad file or a missing
       folder, a --db that is not a store, or that does not exist for a command other than
       init/add/import/serve, an export of 0 routes over a non-empty file without --force,
       unknown or duplicate route, unknown encoder name)
  3    the store or the encoder failed, or an optional dependency is missing
  130  interrupted
With --json, an error is one JSON object on stderr: {"error": "<code>", "detail": "<message>"}."""

MATCH_HEADERS = ("query", "route", "score", "margin", "decision")


class UsageError(Exception):
    """The command line itself is wrong (raised by the parser instead of exiting)."""


class ExportRefusedError(InvalidInputError):
    """``export`` would replace a non-empty file with an export of no routes (``--force`` allows it)."""


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with aligned columns.

    Args:
        headers: the column titles.
        rows: the cells, one sequence per row (``None`` is printed empty).
    """
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def match_rows(queries: Sequence[str], matches: Sequence[RouteMatch]) -> list[list[Any]]:
    """One table row per query: the query (shortened), route, score, margin and decision."""
    return [
        [
            q if len(q) <= 50 else q[:47] + "...",
            m.name or "-",
            f"{m.score:.3f}",
            f"{m.margin:.3f}",
            str(m.reason),
        ]
        for q, m in zip(queries, matches, strict=True)
    ]


def emit(as_json: bool, data: Any, text: str) -> None:
    """Write a command's result on stdout: ``data`` as JSON with ``--json``, else ``text``."""
    print(json.dumps(data, indent=2) if as_json else text)


def error_code(exc: BaseException) -> str:
    """A stable, snake_case code for an error: ``DuplicateRouteError`` -> ``"duplicate_route"``."""
    if isinstance(exc, UsageError):
        return "usage"
    if isinstance(exc, ImportError):
        return "missing_dependency"
    if isinstance(exc, SynaptoRouteError):
        name = type(exc).__name__.removesuffix("Error") or "synaptoroute"
        return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    if isinstance(exc, OSError):
        return "file_error"
    return "error"


def exit_code_of(exc: BaseException) -> ExitCode:
    """The exit status for an error (see :class:`ExitCode`)."""
    if isinstance(exc, NotARouterStoreError):  # --db names a file that is not a store: the user's input
        return ExitCode.INPUT
    environment = (StoreError, EncoderError, RouterClosedError, RouterOverloadedError, ImportError)
    return ExitCode.ENVIRONMENT if isinstance(exc, environment) else ExitCode.INPUT


def report_error(exc: BaseException, as_json: bool) -> int:
    """Write ``exc`` on stderr (one line, or one JSON object) and return the exit status."""
    detail = str(exc) or type(exc).__name__
    if as_json:
        print(json.dumps({"error": error_code(exc), "detail": detail}), file=sys.stderr)
    else:
        print(f"error: {detail}", file=sys.stderr)
    return int(exit_code_of(exc))
