"""The ``synaptoroute`` command: a thin shell over :class:`SemanticRouter`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from .errors import SynaptoRouteError

DEFAULT_DB = "synaptoroute.db"

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

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    """Register a sub-command handler (other modules add theirs: eval, bench, serve)."""

    def wrap(fn: Handler) -> Handler:
        _COMMANDS[name] = fn
        return fn

    return wrap


def _db(args: argparse.Namespace) -> str:
    return str(args.db or os.environ.get("SYNAPTOROUTE_DB") or DEFAULT_DB)


def _open(args: argparse.Namespace) -> Any:
    from .router import SemanticRouter

    return SemanticRouter(store=_db(args))


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with aligned columns."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _match_rows(queries: Sequence[str], matches: Sequence[Any]) -> list[list[Any]]:
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


MATCH_HEADERS = ("query", "route", "score", "margin", "decision")


@command("demo")
def cmd_demo(args: argparse.Namespace) -> int:
    from .routefile import read_routes
    from .router import SemanticRouter

    path = resources.files("synaptoroute_agents") / "assets" / "demo_routes.yaml"
    with SemanticRouter() as router:
        for route in read_routes(str(path)):
            router.add(route)
        matches = router.route_batch(DEMO_QUERIES)
        if args.json:
            print(json.dumps([m.to_dict() for m in matches], indent=2))
        else:
            print(f"{len(router)} routes from the bundled help-desk example; threshold {router.threshold}\n")
            print(format_table(MATCH_HEADERS, _match_rows(DEMO_QUERIES, matches)))
            abstained = sum(1 for m in matches if m.name is None)
            print(f"\n{len(matches) - abstained} routed, {abstained} abstained (-> fallback branch)")
    return 0


@command("init")
def cmd_init(args: argparse.Namespace) -> int:
    from .store import RouteStore

    store = RouteStore(_db(args))
    routes, utterances = store.counts()
    store.close()
    print(f"store ready at {_db(args)}: {routes} routes, {utterances} utterances")
    return 0


@command("add")
def cmd_add(args: argparse.Namespace) -> int:
    from .routes import Route

    route = Route(args.name, args.utterances, description=args.description, threshold=args.threshold)
    with _open(args) as router:
        router.add(route)
    print(f"added route {route.name!r} with {len(route.utterances)} utterances")
    return 0


@command("teach")
def cmd_teach(args: argparse.Namespace) -> int:
    with _open(args) as router:
        n = router.add_utterances(args.name, args.utterances)
    print(f"taught {args.name!r} {n} new utterance(s)")
    return 0


@command("route")
def cmd_route(args: argparse.Namespace) -> int:
    with _open(args) as router:
        matches = router.route_batch(args.queries, top_k=args.top_k)
    if args.json:
        out = [m.to_dict() for m in matches]
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2))
    else:
        print(format_table(MATCH_HEADERS, _match_rows(args.queries, matches)))
    return 0


@command("list")
def cmd_list(args: argparse.Namespace) -> int:
    with _open(args) as router:
        routes = router.routes()
    if args.json:
        print(json.dumps([r.to_dict() for r in routes], indent=2))
    else:
        rows = [
            [r.name, len(r.utterances), "" if r.threshold is None else r.threshold, r.description or ""]
            for r in routes
        ]
        print(format_table(("route", "utterances", "threshold", "description"), rows))
    return 0


@command("delete")
def cmd_delete(args: argparse.Namespace) -> int:
    with _open(args) as router:
        router.delete(args.name)
    print(f"deleted route {args.name!r}")
    return 0


@command("import")
def cmd_import(args: argparse.Namespace) -> int:
    from .routefile import read_routes

    routes = read_routes(args.file)
    added = updated = 0
    with _open(args) as router:
        for route in routes:
            if route.name in router:
                if not args.replace:
                    print(f"skipped existing route {route.name!r} (use --replace)", file=sys.stderr)
                    continue
                router.update(route)
                updated += 1
            else:
                router.add(route)
                added += 1
    print(f"imported {args.file}: {added} added, {updated} updated")
    return 0


@command("export")
def cmd_export(args: argparse.Namespace) -> int:
    from .routefile import write_routes

    with _open(args) as router:
        routes = router.routes()
    write_routes(args.file, routes)
    print(f"exported {len(routes)} routes to {args.file}")
    return 0


@command("eval")
def cmd_eval(args: argparse.Namespace) -> int:
    from .bench.accuracy import run_eval
    from .evaluation import read_labelled

    res = run_eval(
        read_labelled(args.train),
        read_labelled(args.test),
        val=read_labelled(args.val) if args.val else None,
        oos_label=args.oos_label,
        shots=args.shots,
        seed=args.seed,
        fit=not args.no_fit,
        plots=args.plots,
        refusal_budget=args.refusal_budget,
    )
    report = res.pop("report")
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(report.summary())
        print(
            f"fit {res['fit_seconds']:.1f} s (+ embedding {res['embed_seconds']:.1f} s) "
            f"on {res['n_train']} examples, {res['n_routes']} routes"
        )
    return 0


@command("serve")
def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .server import serve
    except ImportError as exc:  # the server extra is not installed
        print(f"error: {exc}; install synaptoroute-agents[server]", file=sys.stderr)
        return 2
    import logging

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serve(
        db=_db(args),
        redis_url=args.redis or os.environ.get("SYNAPTOROUTE_REDIS") or None,
        host=args.host,
        port=args.port,
        api_key=args.api_key or os.environ.get("SYNAPTOROUTE_API_KEY") or None,
        protect_routing=args.protect_routing,
        max_body_bytes=args.max_body_bytes,
        max_inflight=args.max_inflight,
        poll_interval=args.poll_interval,
        channel=args.channel,
        log_level=args.log_level,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", help=f"store path or SQLAlchemy URL (default: $SYNAPTOROUTE_DB or {DEFAULT_DB})")
    parser = argparse.ArgumentParser(
        prog="synaptoroute", description="A local semantic router for LLM agents."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="route sample queries through the bundled example routes")
    p.add_argument("--json", action="store_true")
    sub.add_parser("init", parents=[db], help="create an empty store")
    p = sub.add_parser("add", parents=[db], help="add a route")
    p.add_argument("name")
    p.add_argument("utterances", nargs="+", help="example utterances")
    p.add_argument("--description")
    p.add_argument("--threshold", type=float)
    p = sub.add_parser("teach", parents=[db], help="add example utterances to a route")
    p.add_argument("name")
    p.add_argument("utterances", nargs="+")
    p = sub.add_parser("route", parents=[db], help="route one or more queries")
    p.add_argument("queries", nargs="+")
    p.add_argument("--top-k", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("list", parents=[db], help="list routes")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("delete", parents=[db], help="delete a route")
    p.add_argument("name")
    p = sub.add_parser("import", parents=[db], help="import routes from a YAML or JSON file")
    p.add_argument("file")
    p.add_argument("--replace", action="store_true", help="update routes that already exist")
    p = sub.add_parser("export", parents=[db], help="export routes to a YAML or JSON file")
    p.add_argument("file")
    p = sub.add_parser("eval", help="fit a fresh router on labelled data and evaluate it")
    p.add_argument("--train", required=True, help="JSON lines {text, label}: one route per label")
    p.add_argument("--val", help="held-out JSON lines used inside fit to choose settings")
    p.add_argument("--test", required=True)
    p.add_argument("--oos-label", help="label of out-of-scope examples (the router must refuse them)")
    p.add_argument("--shots", type=int, default=0, help="keep N training examples per label")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-fit", action="store_true", help="plain nearest-utterance cosine, no learning")
    p.add_argument("--plots", help="folder for the threshold sweep and reliability plots")
    p.add_argument(
        "--refusal-budget",
        type=float,
        default=0.01,
        help="share of in-scope held-out queries the fitted threshold may refuse (default 0.01)",
    )
    sub.add_parser(
        "bench",
        help="benchmarks: 'bench [--quick] ...' (scale: latency, throughput, cold boot, memory, peers) "
        "or 'bench chaos --seconds 60 --db FILE' (concurrent writers and readers); '-h' after either for options",
        add_help=False,
    )
    p = sub.add_parser("serve", parents=[db], help="serve the HTTP API (needs the 'server' extra)")
    p.add_argument("--redis", help="Redis URL for replica change notifications ($SYNAPTOROUTE_REDIS)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", help="require this key for mutations ($SYNAPTOROUTE_API_KEY)")
    p.add_argument("--protect-routing", action="store_true", help="require the key for routing too")
    p.add_argument("--max-inflight", type=int, default=256, help="requests served at once before 429")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20, help="larger bodies get 413")
    p.add_argument("--poll-interval", type=float, default=1.0, help="seconds between store version checks")
    p.add_argument("--channel", default="synaptoroute:changes", help="Redis pub/sub channel of the replicas")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    for extend in _EXTENSIONS:
        extend(sub, db)
    return parser


def _bench(argv: list[str]) -> int:
    """``synaptoroute bench ...``: the options go to the benchmark module as they are."""
    if argv[:1] == ["chaos"]:
        from .bench.chaos import main as chaos_main

        return chaos_main(argv[1:])
    from .bench.scale import main as scale_main

    return scale_main(argv[1:] if argv[:1] == ["scale"] else argv)


#: Functions that add sub-commands defined in other modules: (subparsers, db_parent) -> None.
_EXTENSIONS: list[Callable[[Any, argparse.ArgumentParser], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``synaptoroute`` command."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["bench"]:
        return _bench(args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    try:
        return _COMMANDS[args.command](args)
    except SynaptoRouteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
