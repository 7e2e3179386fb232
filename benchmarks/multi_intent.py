"""Multi-intent benchmark: messages that join two requests, routed whole vs by clauses.

Routes: the ten intents of the shipped CLINC150 sample (``tests/fixtures/clinc10``, train split)
and the help-desk example's three routes (as in ``benchmarks.conversations``). Messages:
``benchmarks/data/two_intents.jsonl`` (written for this project, CC0), each joining two requests
("what's my credit limit and when is my water bill due"). *Whole*: the routes the router selects
among its top 2 for the whole message. *Clauses*: ``SemanticRouter.route_multi`` (the whole message
and each clause). Recall: share of messages with both intents found; intents found: share of all
intents.

Run: ``uv run --group bench python -m benchmarks.multi_intent``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from synaptoroute_agents import BundledEncoder, SemanticRouter

from .conversations import routes
from .report import DEFAULT_DOC, MANIFESTS, update_section, write_manifest

DATA = Path(__file__).parent / "data" / "two_intents.jsonl"


def load(path: Path = DATA) -> list[tuple[str, list[str]]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(row["text"], list(row["routes"])) for row in rows]


def run() -> dict[str, Any]:
    router = SemanticRouter(BundledEncoder())
    router.add_many(routes())
    messages = load()
    out: dict[str, Any] = {"messages": len(messages)}
    for label in ("whole", "clauses"):
        both = found = extra = 0
        for text, want in messages:
            if label == "whole":
                m = router.route(text, top_k=2)
                got = set(m.selected if m.name is not None else ())
            else:
                got = {c.name for c in router.route_multi(text, top_k=2)}
            both += set(want) <= got
            found += len(set(want) & got)
            extra += len(got - set(want))
        out[label] = {"both": both, "found": found, "wrong": extra}
    router.close()
    return out


def markdown(out: dict[str, Any]) -> str:
    n = out["messages"]
    lines = [
        "## Multi-intent: two requests in one message",
        "",
        f"{n} messages joining two requests (`benchmarks/data/two_intents.jsonl`, CC0) over the 13 routes "
        "of the conversation benchmark (CLINC150 sample + help-desk example). Bundled model, default "
        "threshold, `top_k=2`. *Whole*: the routes selected for the whole message. *Clauses*: "
        "`router.route_multi` (the whole message and each clause, split at punctuation and joining words).",
        "",
        "| method | both intents found | intents found | wrong routes returned |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label in ("whole", "clauses"):
        r = out[label]
        lines.append(f"| {label} | {r['both'] / n:.1%} | {r['found'] / (2 * n):.1%} | {r['wrong']} |")
    lines += ["", "Command: `uv run --group bench python -m benchmarks.multi_intent`"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--manifest", default=str(MANIFESTS / "multi_intent.json"))
    parser.add_argument("--doc", default=str(DEFAULT_DOC))
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    out = run()
    print(markdown(out))
    write_manifest(args.manifest, "multi-intent", out)
    if not args.no_doc:
        update_section("multi-intent", markdown(out), doc=args.doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
