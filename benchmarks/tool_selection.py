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
import math
import os
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

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
    load_avg = os.getloadavg()[0]
    machine = (
        f"{info['cores']} cores ({info['cpu']}), 1-minute load average {load_avg:.1f} at the end of the run"
    )
    return {"tools": len(tool_names), "requests": len(pairs), "variants": results, "machine": machine}


# ---------------------------------------------------------------------- lexical scoring beside the embedding
LEXICAL_WEIGHTS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3)
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "what",
        "with",
        "you",
        "your",
    ]
)


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", split_identifier(text).lower()) if w not in _STOP]


def bm25(docs: list[str], queries: list[str], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """Okapi BM25 of each query against each document, ``(queries, docs)``."""
    toks = [_words(d) for d in docs]
    avg = float(np.mean([len(t) for t in toks])) or 1.0
    df = Counter(w for t in toks for w in set(t))
    tfs = [Counter(t) for t in toks]
    n = len(docs)
    out = np.zeros((len(queries), n))
    for i, q in enumerate(queries):
        for w in set(_words(q)):
            if w not in df:
                continue
            idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
            for j, tf in enumerate(tfs):
                f = tf.get(w, 0)
                if f:
                    out[i, j] += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(toks[j]) / avg))
    return out


def _accuracy(scores: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    ranked = np.argsort(-scores, axis=1)
    top1 = float(np.mean(ranked[:, 0] == want))
    top5 = float(np.mean([want[i] in ranked[i, :5] for i in range(len(want))]))
    return top1, top5


def lexical(encoder: Any = None) -> dict[str, Any]:
    """BM25 over each seeded tool's name and utterances, alone and added to the embedding score
    (``cosine + w * bm25 / max bm25 of the query``) for each ``w`` of :data:`LEXICAL_WEIGHTS`.
    Every weight is reported: the best one is chosen here on the test requests, an upper bound of
    what a weight chosen without them could give."""
    tool_names, pairs = load()
    if encoder is None:
        from synaptoroute_agents.encoders.bundled import BundledEncoder

        encoder = BundledEncoder()
    routes = [seed_route(resolve(name), name=name) for name in tool_names]
    router = SemanticRouter(encoder, threshold=-1.0, neighbors=1024)
    for r in routes:
        router.add(r)
    index = {name: i for i, name in enumerate(tool_names)}
    queries = [q for q, _ in pairs]
    emb = np.full((len(pairs), len(tool_names)), -1.0)
    for i, m in enumerate(router.route_batch(queries, top_k=len(tool_names))):
        for c in m.candidates:
            emb[i, index[c.name]] = c.score
    router.close()
    want = np.array([index[t] for _, t in pairs])
    lex = bm25([" ".join([n, *r.utterances]) for n, r in zip(tool_names, routes, strict=True)], queries)
    lex_norm = lex / np.maximum(lex.max(axis=1, keepdims=True), 1e-9)
    rows = {"bm25 alone": _accuracy(lex, want)}
    for w in LEXICAL_WEIGHTS:
        rows[f"cosine + {w} x bm25"] = _accuracy(emb + w * lex_norm, want)
    # a weight chosen from data, not from the requests it is scored on: 5-fold cross-validation
    folds = np.arange(len(pairs)) % 5
    hits1 = hits5 = 0.0
    chosen: list[float] = []
    right_cv = np.zeros(len(pairs), dtype=bool)
    for fold in range(5):
        train, test = folds != fold, folds == fold
        best = max(LEXICAL_WEIGHTS, key=lambda w: _accuracy((emb + w * lex_norm)[train], want[train]))
        chosen.append(best)
        right_cv[test] = np.argmax((emb + best * lex_norm)[test], axis=1) == want[test]
        top1, top5 = _accuracy((emb + best * lex_norm)[test], want[test])
        hits1 += top1 * int(test.sum())
        hits5 += top5 * int(test.sum())
    rows[f"cosine + w x bm25, w by 5-fold cross-validation (chose {chosen})"] = (
        hits1 / len(pairs),
        hits5 / len(pairs),
    )
    right = np.argmax(emb, axis=1) == want
    wins, losses = int(np.sum(right_cv & ~right)), int(np.sum(right & ~right_cv))
    # exact two-sided sign test (McNemar) on the requests the two disagree on at top-1
    n = wins + losses
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n if n else 1.0
    return {
        "tools": len(tool_names),
        "requests": len(pairs),
        "rows": rows,
        "top1_wins": wins,
        "top1_losses": losses,
        "sign_test_p": min(1.0, 2 * tail),
    }


def lexical_markdown(out: dict[str, Any]) -> str:
    lines = [
        "## Tool selection: lexical scoring beside the embedding",
        "",
        f"The tool-selection set above ({out['tools']} tools, {out['requests']} requests), `seed_route` seeds. "
        "BM25 (k1 1.2, b 0.75, identifier words, a short stop-word list) over each tool's name and seeded "
        "utterances, alone and added to the embedding's score after dividing by the query's best BM25 score. "
        "The weight is swept on the test requests themselves, so the best row is an upper bound.",
        "",
        "| scoring | top-1 | top-5 |",
        "| --- | ---: | ---: |",
    ]
    for label, (top1, top5) in out["rows"].items():
        lines.append(f"| {label} | {top1:.1%} | {top5:.1%} |")
    base = out["rows"]["cosine + 0.0 x bm25"]
    blends = [
        v
        for k, v in out["rows"].items()
        if k.startswith("cosine + ") and "x bm25" in k and k != "cosine + 0.0 x bm25" and "fold" not in k
    ]
    cv = next(v for k, v in out["rows"].items() if "fold" in k)
    gain1 = max(v[0] for v in blends) - base[0]
    gain5 = max(v[1] for v in blends) - base[1]
    lines += [
        "",
        f"The best weight gains {gain1:+.1%} top-1 and {gain5:+.1%} top-5 "
        f"({round(gain1 * out['requests'])} and {round(gain5 * out['requests'])} of {out['requests']} requests) "
        "over the embedding alone (weight 0), chosen on these very requests; a weight chosen by "
        f"cross-validation scores {cv[0] - base[0]:+.1%} top-1 and {cv[1] - base[1]:+.1%} top-5: at top-1 it "
        f"gets {out['top1_wins']} requests right that the embedding alone misses and misses "
        f"{out['top1_losses']} it got right (two-sided sign test p = {out['sign_test_p']:.2f}). "
        + (
            "The gain is significant at 5%."
            if out["sign_test_p"] < 0.05 and cv[0] > base[0]
            else "The gain cannot be told from noise on this set, so the engine does not score lexically."
        ),
        "",
        "Command: `uv run --group bench python -m benchmarks.tool_selection --lexical`",
    ]
    return "\n".join(lines)


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
    parser.add_argument(
        "--lexical", action="store_true", help="measure BM25 beside the embedding (its own section)"
    )
    args = parser.parse_args(argv)
    if args.lexical:
        lex = lexical()
        print(lexical_markdown(lex))
        if not args.no_doc:
            update_section("tool-selection-lexical", lexical_markdown(lex), doc=args.doc)
        return 0
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
