"""Tool-selection benchmark: pick the right tool out of 130 from its docstring alone.

The tools are functions and classes of the Python standard library, seeded only from what they
carry (dotted name, real ``__doc__``, parameters). The requests in
``bench/data/tool_selection.jsonl`` were written as a user would phrase them, without looking at
the docstrings. For each request the router ranks every tool; we report top-1 and top-5 accuracy
and the mean reciprocal rank for several seeding variants, so changes to the method are measured.

Run: ``uv run --group bench python -m benchmarks.tool_selection``
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synaptoroute_agents.router import SemanticRouter
from synaptoroute_agents.routes import Route
from synaptoroute_agents.seeding import parse_docstring, seed_route, split_identifier

from .report import DEFAULT_DOC, MANIFESTS, machine_info, update_section, write_manifest

DATA = Path(__file__).parent / "data" / "tool_selection.jsonl"


def resolve(dotted: str) -> Any:
    """``"os.path.join"`` -> the object (modules are imported; attributes followed)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def load(path: Path = DATA) -> tuple[list[str], list[tuple[str, str]]]:
    """(tool names in file order, [(request, tool)])."""
    tools: dict[str, None] = {}
    pairs: list[tuple[str, str]] = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            tools.setdefault(row["tool"], None)
            pairs.append((row["request"], row["tool"]))
    return list(tools), pairs


def _name_only(name: str, obj: Any) -> Route:
    return Route(name, (split_identifier(name),))


def _summary(name: str, obj: Any) -> Route:
    parsed = parse_docstring(inspect.getdoc(obj) or "")
    utts = [split_identifier(name)] + ([parsed.summary] if parsed.summary else [])
    return Route(name, tuple(utts))


def _full_doc(name: str, obj: Any) -> Route:
    doc = (inspect.getdoc(obj) or "").strip()
    return Route(name, (f"{split_identifier(name)}: {doc}"[:2000],))


def _sentences(name: str, obj: Any) -> Route:
    """The first method: name, summary, one utterance per body sentence and per argument."""
    parsed = parse_docstring(inspect.getdoc(obj) or "")
    words = split_identifier(name)
    utts = [words]
    if parsed.summary:
        utts += [parsed.summary, f"{words}: {parsed.summary}"]
    utts += parsed.body[:6]
    utts += [f"{words} {split_identifier(a)}: {d}" for a, d in parsed.args.items() if d and len(a) > 1]
    return Route(name, tuple(u[:300] for u in utts))


def _seeded(name: str, obj: Any) -> Route:
    return seed_route(obj, name=name)


VARIANTS: dict[str, tuple[str, Callable[[str, Any], Route]]] = {
    "name": ("name words only", _name_only),
    "summary": ("name words + docstring summary", _summary),
    "whole_doc": ("one utterance: name + whole raw docstring", _full_doc),
    "sentences": ("name, summary, one per body sentence and argument", _sentences),
    "seeded": (
        '`seed_route`: examples, name + summary, a "what is ...?" question, whole description, arguments',
        _seeded,
    ),
}


def evaluate(router: SemanticRouter, pairs: list[tuple[str, str]], k: int = 5) -> dict[str, Any]:
    queries = [q for q, _ in pairs]
    t0 = time.perf_counter()
    matches = router.route_batch(queries, top_k=k)
    elapsed = time.perf_counter() - t0
    top1 = top5 = 0
    rr = 0.0
    misses: list[dict[str, Any]] = []
    for (q, want), m in zip(pairs, matches, strict=True):
        ranked = [c.name for c in m.candidates]
        if ranked and ranked[0] == want:
            top1 += 1
        elif len(misses) < 400:
            misses.append({"request": q, "want": want, "got": ranked[:3]})
        if want in ranked[:k]:
            top5 += 1
            rr += 1.0 / (ranked.index(want) + 1)
    n = len(pairs)
    return {
        "top1": top1 / n,
        "top5": top5 / n,
        "mrr@5": rr / n,
        "batch_ms_per_query": 1000 * elapsed / n,
        "misses": misses,
    }


def run(variants: list[str], encoder: Any = None, limit: int | None = None) -> dict[str, Any]:
    """Evaluate ``variants``; ``limit`` keeps only the first requests (for a quick check)."""
    tool_names, pairs = load()
    pairs = pairs[:limit] if limit is not None else pairs
    objs = {name: resolve(name) for name in tool_names}
    if encoder is None:
        from synaptoroute_agents.encoders.bundled import BundledEncoder

        encoder = BundledEncoder()
    results: dict[str, Any] = {}
    for variant in variants:
        _label, build = VARIANTS[variant]
        t0 = time.perf_counter()
        routes = [build(name, obj) for name, obj in objs.items()]
        seed_s = time.perf_counter() - t0
        router = SemanticRouter(encoder, threshold=-1.0, neighbors=256)
        t1 = time.perf_counter()
        for r in routes:
            router.add(r)
        index_s = time.perf_counter() - t1
        res = evaluate(router, pairs)
        single = []
        for q, _ in pairs[:60]:
            t = time.perf_counter()
            router.route(q, top_k=5)
            single.append(1000 * (time.perf_counter() - t))
        res.update(
            utterances=sum(len(r.utterances) for r in routes),
            seed_seconds=seed_s,
            index_seconds=index_s,
            route_ms_median=statistics.median(single),
        )
        router.close()
        results[variant] = res
    info = machine_info()
    machine = f"{info['cores']} cores ({info['cpu']})"
    return {"tools": len(tool_names), "requests": len(pairs), "variants": results, "machine": machine}


def markdown(out: dict[str, Any]) -> str:
    lines = [
        "## Tool selection from docstrings",
        "",
        f"{out['tools']} Python standard-library functions and classes, seeded only from their dotted name, "
        f"real `__doc__` and parameters (no LLM); {out['requests']} requests written as a user would phrase "
        "them, independently of the docstrings (`benchmarks/data/tool_selection.jsonl`). "
        "Bundled model, exact index, every tool ranked. Route latency is one query at a time on "
        f"{out['machine']}.",
        "",
        "| seeding | utterances | top-1 | top-5 | MRR@5 | route (median, one query) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for variant, res in out["variants"].items():
        lines.append(
            f"| {VARIANTS[variant][0]} | {res['utterances']} | {res['top1']:.1%} | {res['top5']:.1%} | "
            f"{res['mrr@5']:.3f} | {res['route_ms_median']:.1f} ms |"
        )
    lines += ["", "Command: `uv run --group bench python -m benchmarks.tool_selection`"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS)
    )
    parser.add_argument("--manifest", default=str(MANIFESTS / "tool_selection.json"))
    parser.add_argument("--doc", default=str(DEFAULT_DOC))
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/BENCHMARKS.md")
    parser.add_argument(
        "--show-misses", type=int, default=0, help="print this many misses of the last variant"
    )
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s): {unknown}")
    out = run(variants)
    for variant, res in out["variants"].items():
        print(
            f"{variant:10s} utterances={res['utterances']:5d} top1={res['top1']:.3f} top5={res['top5']:.3f} "
            f"mrr={res['mrr@5']:.3f} route={res['route_ms_median']:.1f}ms"
        )
    if args.show_misses:
        last = out["variants"][variants[-1]]
        for miss in last["misses"][: args.show_misses]:
            print("  miss:", miss)
    summary = {v: {k: r[k] for k in r if k != "misses"} for v, r in out["variants"].items()}
    write_manifest(
        args.manifest,
        "tool-selection",
        {"tools": out["tools"], "requests": out["requests"], "variants": summary},
        misses={v: r["misses"] for v, r in out["variants"].items()},
    )
    if not args.no_doc:
        update_section("tool-selection", markdown(out), doc=args.doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
