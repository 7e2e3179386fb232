"""The argument parser of the ``synaptoroute`` command and every sub-command."""

from __future__ import annotations

import argparse
import math
import os
from typing import NoReturn, TypeAlias

from .. import __version__
from ..router import MAX_TOP_K
from .output import EXIT_CODES_HELP, UsageError

__all__ = ["CREATING_COMMANDS", "DEFAULT_DB", "ENCODER_ENV", "OPTION_BOUNDS", "build_parser", "check_options"]

DEFAULT_DB = "synaptoroute.db"
ENCODER_ENV = "SYNAPTOROUTE_ENCODER"

BENCHMARKS_HELP = (
    "the benchmarks are not part of the installed package; from a source checkout run them with "
    "'uv run --group bench python -m benchmarks.scale --quick' (see docs/BENCHMARKS.md)"
)


#: The commands that may create a store at ``--db`` when there is none (they write routes into
#: it). Every other command opens an existing store only: a mistyped path is an error (exit 2),
#: never a new empty store. ``serve`` creates one too (a new service starts empty and is given
#: routes over HTTP).
CREATING_COMMANDS = frozenset({"init", "add", "import", "serve"})

#: Numeric options and the values they accept: option dest -> (flag, smallest, largest, integer).
#: Checked after parsing, for every command that has the option (see :func:`check_options`).
OPTION_BOUNDS: dict[str, tuple[str, float, float, bool]] = {
    "top_k": ("--top-k", 1, MAX_TOP_K, True),
    "port": ("--port", 1, 65535, True),
    "poll_interval": ("--poll-interval", 0.0, math.inf, False),
    "max_inflight": ("--max-inflight", 1, math.inf, True),
    "max_body_bytes": ("--max-body-bytes", 1, math.inf, True),
    "shots": ("--shots", 0, math.inf, True),
}


def check_options(args: argparse.Namespace) -> None:
    """Raise :class:`UsageError` (exit 2, one line) for a numeric option out of its bounds.

    argparse checks the type (``--port abc``); this checks the range, so ``--port 99999`` or
    ``--poll-interval -1`` is a usage error before anything starts, not a traceback later (or a
    silently disabled feature).
    """
    for dest, (flag, low, high, integer) in OPTION_BOUNDS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if not math.isfinite(value) or not low <= value <= high:
            kind = "an integer" if integer else "a number"
            span = f">= {low:g}" if math.isinf(high) else f"from {low:g} to {high:g}"
            raise UsageError(f"{flag} must be {kind} {span}, got {value!r}")


class _Parser(argparse.ArgumentParser):
    """Raises :class:`UsageError` instead of printing usage and exiting, so ``--json`` can report it."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} -h')")


_Sub: TypeAlias = "argparse._SubParsersAction[_Parser]"


def _parents() -> tuple[_Parser, _Parser, _Parser]:
    out = _Parser(add_help=False)
    out.add_argument("--json", action="store_true", help="write the result (and any error) as JSON")
    db = _Parser(add_help=False)
    db.add_argument("--db", help=f"store path or SQLAlchemy URL (default: $SYNAPTOROUTE_DB or {DEFAULT_DB})")
    enc = _Parser(add_help=False)
    enc.add_argument(
        "--encoder",
        default=os.environ.get(ENCODER_ENV) or None,
        help="encoder name: bundled (default), bundled-int8, fastembed:<model>, remote:<model>@<url> "
        f"(default: ${ENCODER_ENV} or bundled)",
    )
    return out, db, enc


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    out, db, enc = _parents()
    router = [out, db, enc]  # commands that open a router on a store
    parser = _Parser(
        prog="synaptoroute",
        description="A local semantic router for LLM agents.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"synaptoroute {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("demo", parents=[out, enc], help="route sample queries through the bundled example routes")
    sub.add_parser("init", parents=[out, db], help="create an empty store")
    p = sub.add_parser("add", parents=router, help="add a route")
    p.add_argument("name")
    p.add_argument("utterances", nargs="+", help="example utterances")
    p.add_argument("--description")
    p.add_argument("--threshold", type=float)
    p = sub.add_parser("teach", parents=router, help="add example utterances to a route")
    p.add_argument("name")
    p.add_argument("utterances", nargs="+")
    p = sub.add_parser("route", parents=router, help="route one or more queries (exit 1 if none matched)")
    p.add_argument("queries", nargs="+")
    p.add_argument("--top-k", type=int, default=1, help=f"routes each query may select, 1 to {MAX_TOP_K}")
    sub.add_parser("list", parents=router, help="list routes")
    p = sub.add_parser("delete", parents=router, help="delete a route")
    p.add_argument("name")
    p = sub.add_parser("import", parents=router, help="import routes from a YAML or JSON file")
    p.add_argument("file")
    p.add_argument(
        "--upsert",
        "--replace",
        dest="upsert",
        action="store_true",
        help="replace routes that already exist (without it an existing name is an error and "
        "nothing is imported)",
    )
    p = sub.add_parser("export", parents=router, help="export routes to a YAML or JSON file")
    p.add_argument("file")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a non-empty file even when the store holds no routes (refused without it)",
    )
    _add_eval(sub, [out, enc])
    _add_serve(sub, router)
    sub.add_parser("bench", help=BENCHMARKS_HELP, add_help=False)
    return parser


def _add_eval(sub: _Sub, parents: list[_Parser]) -> None:
    p = sub.add_parser("eval", parents=parents, help="fit a fresh router on labelled data and evaluate it")
    p.add_argument("--train", required=True, help="JSON lines {text, label}: one route per label")
    p.add_argument("--val", help="held-out JSON lines used inside fit to choose settings")
    p.add_argument("--test", required=True)
    p.add_argument("--oos-label", help="label of out-of-scope examples (the router must refuse them)")
    p.add_argument("--shots", type=int, default=0, help="keep N training examples per label")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-fit", action="store_true", help="plain nearest-utterance cosine, no learning")
    p.add_argument("--plots", help="folder for the threshold sweep and reliability plots (needs matplotlib)")
    p.add_argument(
        "--refusal-budget",
        type=float,
        default=0.01,
        help="share of in-scope held-out queries the fitted threshold may refuse (default 0.01)",
    )
    p.add_argument(
        "--refusal",
        default="balanced",
        help="operating point of the refusal without out-of-scope examples: the share of correctly "
        "routed queries it may refuse: permissive (about 0.5%%), balanced (2%%, default), cautious "
        "(5%%) or a share",
    )
    p.add_argument(
        "--holdout-routes",
        type=float,
        default=0.0,
        help="remove this share of the labels (chosen by --seed) from training; their test rows "
        "become out-of-scope queries",
    )


def _add_serve(sub: _Sub, parents: list[_Parser]) -> None:
    p = sub.add_parser("serve", parents=parents, help="serve the HTTP API (needs the 'server' extra)")
    p.add_argument("--redis", help="Redis URL for replica change notifications ($SYNAPTOROUTE_REDIS)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--api-key",
        help="require this key for mutations ($SYNAPTOROUTE_API_KEY, or a file in $SYNAPTOROUTE_API_KEY_FILE)",
    )
    p.add_argument("--protect-routing", action="store_true", help="require the key for routing too")
    p.add_argument(
        "--allow-anonymous-writes",
        action="store_true",
        help="serve on a non-loopback --host without a key (anyone who can reach it may change routes)",
    )
    p.add_argument(
        "--max-query-chars",
        type=int,
        default=16_384,
        help="most characters of query text in one POST /route (the work budget; 422 beyond)",
    )
    p.add_argument(
        "--graceful-timeout",
        type=float,
        default=15.0,
        help="seconds from SIGTERM to exit; requests in flight get all but 2 of them (default 15)",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=10.0,
        help="seconds to send a whole body before 408 (default 10)",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        help="seconds to send a request's headers before the connection is closed (default 10)",
    )
    p.add_argument("--max-inflight", type=int, default=256, help="requests served at once before 429")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20, help="larger bodies get 413")
    p.add_argument("--poll-interval", type=float, default=1.0, help="seconds between store version checks")
    p.add_argument("--channel", default="synaptoroute:changes", help="Redis pub/sub channel of the replicas")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
