"""The sub-commands of ``synaptoroute``: each translates arguments into router calls and prints the result."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from ..errors import StoreNotFoundError
from ..router import SemanticRouter
from ..routes import Route
from ..store import RouteStore
from .eval import cmd_eval
from .output import MATCH_HEADERS, ExitCode, ExportRefusedError, emit, format_table, match_rows
from .parser import CREATING_COMMANDS, DEFAULT_DB

__all__ = ["COMMANDS", "DEMO_QUERIES", "IMPORT_CHUNK", "Handler"]

Handler = Callable[[argparse.Namespace], int]

DEMO_QUERIES = [
    "the vpn won't connect from home",
    "my laptop can't resolve any hostnames",
    "wifi drops every few minutes in meeting room 3",
    "hook our Jira up to Slack notifications",
    "rotate the API keys for the S3 bucket",
    "pull all the prices off this online shop",
    "turn the HTML table on that page into a CSV",
    "I forgot my password again",
    "my account got locked after three tries",
    "what's the capital of France?",
    "tell me a joke about cats",
    "can you book a table for two tonight",
]

#: ``import`` hands the router this many routes per ``add_many`` call (one encoder pass and one
#: transaction each), so a large file shows progress; a smaller file is one all-or-nothing batch.
IMPORT_CHUNK = 256


def _db(args: argparse.Namespace) -> str:
    return str(args.db or os.environ.get("SYNAPTOROUTE_DB") or DEFAULT_DB)


def _open_store(args: argparse.Namespace) -> RouteStore:
    """The store at ``--db``; only :data:`CREATING_COMMANDS` may create it when it is missing."""
    db = _db(args)
    try:
        return RouteStore(db, create=args.command in CREATING_COMMANDS)
    except StoreNotFoundError as exc:
        hint = f"; create one with 'synaptoroute init --db {db}', or check the path"
        raise StoreNotFoundError(f"{exc}{hint}") from None


@contextmanager
def _open(args: argparse.Namespace) -> Iterator[SemanticRouter]:
    """A router on the store at ``--db`` (opened first: a wrong path fails before the model loads)."""
    store = _open_store(args)
    try:
        with SemanticRouter(encoder=args.encoder, store=store) as router:
            yield router
    finally:
        store.close()


def cmd_demo(args: argparse.Namespace) -> int:
    from ..routefile import read_routes

    path = resources.files("synaptoroute_agents") / "assets" / "demo_routes.yaml"
    with SemanticRouter(encoder=args.encoder) as router:
        router.add_many(read_routes(str(path)))
        matches = router.route_batch(DEMO_QUERIES)
        if args.json:
            emit(True, [m.to_dict() for m in matches], "")
            return ExitCode.OK
        print(f"{len(router)} routes from the bundled help-desk example; threshold {router.threshold}\n")
        print(format_table(MATCH_HEADERS, match_rows(DEMO_QUERIES, matches)))
        abstained = sum(1 for m in matches if m.name is None)
        print(f"\n{len(matches) - abstained} routed, {abstained} abstained (-> fallback branch)")
    return ExitCode.OK


def cmd_init(args: argparse.Namespace) -> int:
    store = _open_store(args)
    try:
        routes, utterances = store.counts()
    finally:
        store.close()
    emit(
        args.json,
        {"store": _db(args), "routes": routes, "utterances": utterances},
        f"store ready at {_db(args)}: {routes} routes, {utterances} utterances",
    )
    return ExitCode.OK


def cmd_add(args: argparse.Namespace) -> int:
    route = Route(args.name, args.utterances, description=args.description, threshold=args.threshold)
    with _open(args) as router:
        router.add(route)
    n = len(route.utterances)
    emit(args.json, {"added": route.name, "utterances": n}, f"added route {route.name!r} with {n} utterances")
    return ExitCode.OK


def cmd_teach(args: argparse.Namespace) -> int:
    with _open(args) as router:
        n = router.add_utterances(args.name, args.utterances)
    emit(args.json, {"taught": args.name, "new_utterances": n}, f"taught {args.name!r} {n} new utterance(s)")
    return ExitCode.OK


def cmd_route(args: argparse.Namespace) -> int:
    with _open(args) as router:
        matches = router.route_batch(args.queries, top_k=args.top_k)
    if args.json:
        out = [m.to_dict() for m in matches]
        emit(True, out[0] if len(out) == 1 else out, "")
    else:
        print(format_table(MATCH_HEADERS, match_rows(args.queries, matches)))
    return ExitCode.OK if any(m.name is not None for m in matches) else ExitCode.NO_MATCH


def cmd_list(args: argparse.Namespace) -> int:
    with _open(args) as router:
        routes = router.routes()
    rows = [
        [r.name, len(r.utterances), "" if r.threshold is None else r.threshold, r.description or ""]
        for r in routes
    ]
    emit(
        args.json,
        [r.to_dict() for r in routes],
        format_table(("route", "utterances", "threshold", "description"), rows),
    )
    return ExitCode.OK


def cmd_delete(args: argparse.Namespace) -> int:
    with _open(args) as router:
        router.delete(args.name)
    emit(args.json, {"deleted": args.name}, f"deleted route {args.name!r}")
    return ExitCode.OK


def cmd_import(args: argparse.Namespace) -> int:
    from ..errors import DuplicateRouteError
    from ..routefile import read_routes

    routes = read_routes(args.file)
    with _open(args) as router:
        existing = [r.name for r in routes if r.name in router]
        if existing and not args.upsert:
            shown = ", ".join(repr(n) for n in existing[:5]) + (", ..." if len(existing) > 5 else "")
            exc = DuplicateRouteError(existing[0])
            exc.args = (  # the command's own wording: it names every clash and the option
                f"{len(existing)} route(s) of {args.file} already exist ({shown}); nothing was imported "
                "(use --upsert to replace them)",
            )
            raise exc
        _add_in_chunks(router, routes, upsert=args.upsert, quiet=args.json)
    updated = len(existing)
    added = len(routes) - updated
    emit(
        args.json,
        {"imported": args.file, "added": added, "updated": updated},
        f"imported {args.file}: {added} added, {updated} updated",
    )
    return ExitCode.OK


def _add_in_chunks(router: SemanticRouter, routes: Sequence[Route], *, upsert: bool, quiet: bool) -> None:
    """``add_many`` over chunks of :data:`IMPORT_CHUNK` routes, with a progress bar on a terminal."""
    from tqdm import tqdm

    show = not quiet and len(routes) > IMPORT_CHUNK and sys.stderr.isatty()
    with tqdm(total=len(routes), unit="route", desc="import", disable=not show, file=sys.stderr) as bar:
        for start in range(0, len(routes), IMPORT_CHUNK):
            chunk = routes[start : start + IMPORT_CHUNK]
            router.add_many(chunk, replace=upsert)
            bar.update(len(chunk))


def cmd_export(args: argparse.Namespace) -> int:
    """Read every route, then write them to a temporary file beside ``file`` and rename it.

    Nothing is written when the store cannot be read, and a non-empty ``file`` is not replaced
    by an export of no routes without ``--force`` (an empty export is most often a wrong ``--db``).
    """
    from ..errors import RouteFileError
    from ..routefile import write_routes

    target = Path(args.file)
    if not target.parent.is_dir():  # before the store and the model are opened
        raise RouteFileError(f"cannot write {target}: the folder {target.parent} does not exist")
    with _open(args) as router:
        routes = router.routes()
    if not routes and not args.force and target.is_file() and target.stat().st_size > 0:
        raise ExportRefusedError(
            f"{_db(args)} holds 0 routes; not replacing {target} ({target.stat().st_size} bytes) with "
            "an empty export (use --force to write it anyway)"
        )
    write_routes(target, routes)
    emit(
        args.json,
        {"exported": args.file, "routes": len(routes)},
        f"exported {len(routes)} routes to {args.file}",
    )
    return ExitCode.OK


def cmd_serve(args: argparse.Namespace) -> int:
    from ..deps import require

    require("uvicorn", "synaptoroute-agents[server]")
    require("fastapi", "synaptoroute-agents[server]")
    from ..encoders.registry import check_encoder_name
    from ..server import serve

    if args.encoder is not None:
        check_encoder_name(args.encoder)  # a typo fails here, not later as a 503 from /readyz
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serve(
        db=_db(args),
        redis_url=args.redis or os.environ.get("SYNAPTOROUTE_REDIS") or None,
        host=args.host,
        port=args.port,
        api_key=args.api_key,  # None: the environment's; an empty one is refused
        protect_routing=args.protect_routing,
        max_body_bytes=args.max_body_bytes,
        max_inflight=args.max_inflight,
        poll_interval=args.poll_interval,
        channel=args.channel,
        log_level=args.log_level,
        encoder=args.encoder,
        allow_anonymous_writes=args.allow_anonymous_writes,
        max_query_chars=args.max_query_chars,
        graceful_timeout=args.graceful_timeout,
        body_timeout=args.body_timeout,
        header_timeout=args.header_timeout,
    )
    return ExitCode.OK


#: Every sub-command by name; the parser (:mod:`.parser`) declares their arguments.
COMMANDS: dict[str, Handler] = {
    "demo": cmd_demo,
    "init": cmd_init,
    "add": cmd_add,
    "teach": cmd_teach,
    "route": cmd_route,
    "list": cmd_list,
    "delete": cmd_delete,
    "import": cmd_import,
    "export": cmd_export,
    "eval": cmd_eval,
    "serve": cmd_serve,
}
