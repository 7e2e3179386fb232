"""The ``synaptoroute`` command: a thin face over :class:`~synaptoroute_agents.SemanticRouter`.

- :mod:`.parser`: the arguments of every sub-command, ``--version``, the exit codes in ``--help``;
- :mod:`.commands`: one handler per sub-command, registered in ``COMMANDS``;
- :mod:`.eval`: ``synaptoroute eval`` and :func:`run_eval`, the evaluation it runs;
- :mod:`.output`: tables, ``--json`` output, one-line (or one JSON object) errors, exit codes.

A new sub-command is a handler in :mod:`.commands` (or its own module) added to ``COMMANDS`` and
its arguments in :func:`build_parser`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..errors import SynaptoRouteError
from .commands import COMMANDS, DEMO_QUERIES
from .eval import route_names_for, run_eval
from .output import ExitCode, UsageError, format_table, report_error
from .parser import BENCHMARKS_HELP, DEFAULT_DB, build_parser, check_options

__all__ = [
    "COMMANDS",
    "DEFAULT_DB",
    "DEMO_QUERIES",
    "ExitCode",
    "build_parser",
    "format_table",
    "main",
    "route_names_for",
    "run_eval",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``synaptoroute`` command; returns the exit status.

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args_list
    try:
        if args_list[:1] == ["bench"]:
            raise UsageError(BENCHMARKS_HELP)
        args = build_parser().parse_args(args_list)
        check_options(args)
        return int(COMMANDS[args.command](args))
    except (SynaptoRouteError, UsageError, ImportError, OSError) as exc:
        return report_error(exc, as_json)
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
