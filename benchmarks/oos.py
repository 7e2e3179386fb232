"""Out-of-scope scores for the refusal decision, in the agent setting (few shots, no oos examples).

    uv run --group bench python -m benchmarks.oos --data ../shared/data [--seeds 0 1 2]

Settings (test data only evaluates; every score is fitted on the training rows alone):
- CLINC150, 10 examples per in-scope intent, no out-of-scope rows in training; test = full test
  (1,000 out-of-scope queries).
- HWU64 and Banking77, a random quarter of the intents held out (their test rows become
  out-of-scope), 10 examples per remaining intent (``--holdout-routes 0.25 --shots 10``).

Scores compared (higher = more in scope): the fitted head's blended top probability (what the
router thresholds today), nearest-utterance cosine, nearest-centroid cosine, kNN density (mean of
the top-k cosines), a Mahalanobis score (shared shrunk covariance, class means), the energy of the
head's logits, and z-scored blends. For each: AUROC (in-scope vs out-of-scope) and the frontier of
in-scope accuracy (refusals counted as errors) against out-of-scope recall. The last block is the
router's own choice (``fit``'s route-holdout simulation, see docs/fitting.md) at each operating point.

``--negatives``: generic negatives (benchmarks/negatives.py) as out-of-scope examples, four
ways, against today's fit (:mod:`benchmarks.oos_negatives`).

``--candidates``: candidate refusal scores for unseen routes (route-normalized similarity, gaps,
purity, local density, ...) measured on ``fit``'s own simulation and on test, and ``fit``'s choice
replayed with them (:mod:`benchmarks.oos_candidates`).

Embeddings are cached in .bench-cache/oos-<data>-<split>.npz.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synaptoroute_agents.evaluation import read_labelled, sample_shots
from synaptoroute_agents.fitting.numerics import design_logits, neighbours, vote
from synaptoroute_agents.fitting.oos import DEFAULT_POINT, OPERATING_POINTS, refusal_scores
from synaptoroute_agents.fitting.train import fit_policy
from synaptoroute_agents.routes import clean_text

from .report import DEFAULT_DOC, MANIFESTS, REPO_ROOT, update_section, write_manifest

__all__ = ["auroc", "main"]

CACHE = Path(os.environ.get("SYNAPTOROUTE_BENCH_CACHE", ".bench-cache"))


def _embedded(data: Path, name: str, split: str) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    texts, labels = read_labelled(data / name / f"{split}.jsonl")
    texts = [clean_text(t) for t in texts]
    path = CACHE / f"oos-{name}-{split}.npz"
    if path.exists():
        with np.load(path) as z:
            if int(z["n"]) == len(texts):
                return texts, labels, z["X"], z["H"]
    from synaptoroute_agents.encoders.bundled import BundledEncoder

    enc = BundledEncoder()
    Xs, Hs = [], []
    for i in range(0, len(texts), 512):
        x, h = enc.embed_with_features(texts[i : i + 512])
        Xs.append(x)
        Hs.append(h)
    X, H = np.vstack(Xs).astype(np.float32), np.vstack(Hs).astype(np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, X=X, H=H, n=len(texts))
    return texts, labels, X, H


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of an in-scope query > score of an out-of-scope one), ties counted half."""
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sv = allv[order]
    # average ranks for ties
    _, first, counts = np.unique(sv, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0
    ranks[order] = np.repeat(avg, counts) + 1
    r_pos = ranks[: len(pos)].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def frontier(score: np.ndarray, right: np.ndarray, is_oos: np.ndarray) -> list[tuple[float, float, float]]:
    """(in-scope refused share, in-scope accuracy, oos recall) at in-scope refusal 0..30%."""
    ins = ~is_oos
    out = []
    for q in (0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.10, 0.15, 0.20, 0.30):
        t = np.quantile(score[ins], q) if q > 0 else -np.inf
        keep = score >= t
        out.append((q, float((right & keep)[ins].mean()), float((~keep)[is_oos].mean())))
    return out


def _z(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return (a - ref.mean()) / (ref.std() + 1e-9)


def one_run(
    train: tuple[list[str], list[str], np.ndarray, np.ndarray],
    test: tuple[list[str], list[str], np.ndarray, np.ndarray],
    *,
    oos_label: str | None,
    holdout: float,
    shots: int,
    seed: int,
) -> dict[str, Any]:
    texts, labels, X, H = train
    t_texts, t_labels, Xt, Ht = test
    rng = np.random.default_rng(seed)
    known = sorted({lab for lab in labels if lab != oos_label})
    if holdout:
        held = set(rng.choice(known, int(round(holdout * len(known))), replace=False).tolist())
        known = [lab for lab in known if lab not in held]
    keep_set = set(known)
    idx = [i for i, lab in enumerate(labels) if lab in keep_set]
    s_texts, s_labels = sample_shots([str(i) for i in idx], [labels[i] for i in idx], shots, seed)
    rows = np.array([int(s) for s in s_texts])
    Xa, Ha, ya_lab = X[rows], H[rows], [labels[i] for i in rows]
    ta = [texts[i] for i in rows]
    is_oos = np.array([lab not in keep_set for lab in t_labels])
    from synaptoroute_agents.encoders.bundled import HEAD_FEATURES

    pol = fit_policy(Xa, ya_lab, seed=seed, texts=ta, H=Ha, features=HEAD_FEATURES)
    col = {r: i for i, r in enumerate(pol.routes)}
    ya = np.array([col[lab] for lab in ya_lab])
    P = pol.head_probs(Xt, t_texts, Ht)
    ni, ns = neighbours(Xt, Xa, ya, 32)
    V = vote(ni, ns, np.isfinite(ns), len(pol.routes), pol.tau)
    B = (1 - pol.alpha) * P[:, : len(pol.routes)] + pol.alpha * V
    pred = B.argmax(axis=1)
    yt = np.array([col.get(lab, -1) for lab in t_labels])
    right = pred == yt
    F = None if pol.lexicon is None else pol.lexicon.transform(t_texts)
    Z = design_logits(Ht if pol.features else Xt, F, pol.weights, pol.scale) / pol.temperature
    scores = refusal_scores(Xt, Xa, ya, len(pol.routes), ns)
    scores["head probability"] = B.max(axis=1)
    zmax = Z.max(axis=1)
    scores["head energy"] = zmax + np.log(np.exp(Z - zmax[:, None]).sum(axis=1))
    ins = ~is_oos
    ref = {k: v[ins] for k, v in scores.items()}
    for a, b in (
        ("centroid", "knn density"),
        ("centroid", "head probability"),
        ("knn density", "head probability"),
    ):
        scores[f"{a} + {b}"] = _z(scores[a], ref[a]) + _z(scores[b], ref[b])
    out: dict[str, Any] = {"top1": float(right[ins].mean()), "n_oos": int(is_oos.sum()), "methods": {}}
    for name, s in scores.items():
        out["methods"][name] = {
            "auroc": auroc(s[ins], s[is_oos]),
            "frontier": frontier(s, right, is_oos),
        }
    # the router's own choice: the policy's refusal as fitted, at each operating point
    chosen: dict[str, Any] = {}
    for point in OPERATING_POINTS:
        pp = pol.with_operating_point(point)
        assert pp.refusal is not None
        refused = (pp.refusal.values(Xt, ns, B.max(axis=1)) < pp.refusal.threshold) | (
            B.max(axis=1) < pol.threshold
        )
        chosen[point] = {
            "in_scope_accuracy": float((right & ~refused)[ins].mean()),
            "in_scope_refused": float(refused[ins].mean()),
            "oos_recall": float(refused[is_oos].mean()),
            "score": pp.refusal.score,
            "threshold": pp.refusal.threshold,
            "candidates": pp.refusal.candidates,
        }
    out["router"] = chosen
    out["frontier_in_fit"] = pol.refusal.frontier if pol.refusal is not None else []
    return out


_SHARES = (0.005, 0.01, 0.02, 0.03, 0.05, 0.10)


def closed_run(
    train: tuple[list[str], list[str], np.ndarray, np.ndarray],
    test: tuple[list[str], list[str], np.ndarray, np.ndarray],
    seed: int = 0,
    shots: int = 0,
) -> dict[str, Any]:
    """Closed-set data (every test query has a route): what each operating point, and each
    share of correctly routed queries refused, costs against the ranking (top-1)."""
    from synaptoroute_agents.encoders.bundled import HEAD_FEATURES

    texts, labels, X, H = train
    if shots:
        s_texts, _ = sample_shots([str(i) for i in range(len(labels))], labels, shots, seed)
        rows = np.array([int(t) for t in s_texts])
        texts, labels, X, H = [texts[i] for i in rows], [labels[i] for i in rows], X[rows], H[rows]
    t_texts, t_labels, Xt, Ht = test
    pol = fit_policy(X, labels, seed=seed, texts=texts, H=H, features=HEAD_FEATURES)
    col = {r: i for i, r in enumerate(pol.routes)}
    ya = np.array([col[lab] for lab in labels])
    P = pol.head_probs(Xt, t_texts, Ht)
    ni, ns = neighbours(Xt, X, ya, 32)
    V = vote(ni, ns, np.isfinite(ns), len(pol.routes), pol.tau)
    B = (1 - pol.alpha) * P[:, : len(pol.routes)] + pol.alpha * V
    right = B.argmax(axis=1) == np.array([col.get(lab, -1) for lab in t_labels])
    out: dict[str, Any] = {"top1": float(right.mean()), "router": {}, "shares": {}}
    points: list[str | float] = [*OPERATING_POINTS, *_SHARES]
    for point in points:
        pp = pol.with_operating_point(point)
        assert pp.refusal is not None
        refused = pp.refusal.values(Xt, ns, B.max(axis=1)) < pp.refusal.threshold
        figures = {
            "accuracy": float((right & ~refused).mean()),
            "refused": float(refused.mean()),
            "right_refused": float(refused[right].mean()),
        }
        out["router" if isinstance(point, str) else "shares"][str(point)] = figures
    return out


def open_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Open-intent detection figures as TEXTOIR reports them: ``pred``/``truth`` are route
    indices with -1 for the open class (refused / an unseen route). Accuracy over every test
    query (an open query is right when refused); the open class's precision, recall and F1
    (from the confusion matrix, as one more class); macro F1 over the known classes."""
    is_open, said_open = truth < 0, pred < 0
    tp = float((is_open & said_open).sum())
    prec = tp / said_open.sum() if said_open.any() else 0.0
    rec = tp / is_open.sum() if is_open.any() else 0.0
    f_open = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    f_known = []
    for c in np.unique(truth[~is_open]):
        t = float(((pred == c) & (truth == c)).sum())
        p_c = t / max(1, (pred == c).sum())
        r_c = t / max(1, (truth == c).sum())
        f_known.append(2 * p_c * r_c / (p_c + r_c) if p_c + r_c else 0.0)
    return {
        "accuracy": float((pred == truth).mean()),
        "oos_precision": prec,
        "oos_recall": rec,
        "f1_open": f_open,
        "f1_known": float(np.mean(f_known)) if f_known else 0.0,
    }


def open_run(
    train: tuple[list[str], list[str], np.ndarray, np.ndarray],
    test: tuple[list[str], list[str], np.ndarray, np.ndarray],
    *,
    seed: int,
    holdout: float = 0.25,
) -> dict[str, Any]:
    """The published open-intent setting: full training data of the known routes (a random
    ``holdout`` share of the labels removed, as ``eval --holdout-routes`` does), test queries of
    the removed labels are the open class; rows labelled ``oos`` are dropped everywhere (CLINC150
    in-scope intents only, as TEXTOIR does)."""
    from synaptoroute_agents.encoders.bundled import HEAD_FEATURES

    texts, labels, X, H = train
    t_texts, t_labels, Xt, Ht = test
    keep_t = [i for i, lab in enumerate(t_labels) if lab != "oos"]
    t_texts, t_labels, Xt, Ht = (
        [t_texts[i] for i in keep_t],
        [t_labels[i] for i in keep_t],
        Xt[keep_t],
        Ht[keep_t],
    )
    rng = np.random.default_rng(seed)
    known = sorted({lab for lab in labels if lab != "oos"})
    held = set(rng.choice(known, int(round(holdout * len(known))), replace=False).tolist())
    rows = np.array([i for i, lab in enumerate(labels) if lab != "oos" and lab not in held])
    la = [labels[i] for i in rows]
    pol = fit_policy(
        X[rows], la, seed=seed, texts=[texts[i] for i in rows], H=H[rows], features=HEAD_FEATURES
    )
    col = {r: i for i, r in enumerate(pol.routes)}
    ya = np.array([col[lab] for lab in la])
    P = pol.head_probs(Xt, t_texts, Ht)
    ni, ns = neighbours(Xt, X[rows], ya, 32)
    V = vote(ni, ns, np.isfinite(ns), len(pol.routes), pol.tau)
    B = (1 - pol.alpha) * P[:, : len(pol.routes)] + pol.alpha * V
    top = B.argmax(axis=1)
    truth = np.array([col.get(lab, -1) for lab in t_labels])
    out: dict[str, Any] = {
        "top1": float((top == truth)[truth >= 0].mean()),
        "n_open": int((truth < 0).sum()),
        "n_test": len(truth),
        "score": None if pol.refusal is None else pol.refusal.score,
        "points": {"off": open_metrics(top, truth)},
    }
    for point in OPERATING_POINTS:
        pp = pol.with_operating_point(point)
        assert pp.refusal is not None
        refused = pp.refusal.values(Xt, ns, B.max(axis=1)) < pp.refusal.threshold
        out["points"][point] = open_metrics(np.where(refused, -1, top), truth)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--sets", nargs="+", default=["clinc150", "hwu64", "banking77"])
    ap.add_argument("--out", default=".bench-cache/oos.json")
    ap.add_argument(
        "--doc", default=str(DEFAULT_DOC), help="rewrite this doc's agent-setting section ('' to skip)"
    )
    ap.add_argument("--manifest", default=str(MANIFESTS / "oos.json"))
    ap.add_argument("--closed", action="store_true", help="closed-set full data instead (HWU64, Banking77)")
    ap.add_argument(
        "--open",
        action="store_true",
        help="the published open-intent setting: full training data, a quarter of the labels unseen",
    )
    ap.add_argument(
        "--candidates",
        action="store_true",
        help="candidate refusal scores for unseen routes, on fit's simulation and on test (benchmarks.oos_candidates)",
    )
    ap.add_argument(
        "--negatives",
        action="store_true",
        help="generic negatives as out-of-scope examples, four ways, against today's fit (benchmarks.oos_negatives)",
    )
    ap.add_argument(
        "--negatives-quantile",
        type=float,
        default=0.25,
        help="with --negatives: drop a negative as close to a route as this quantile of the route's own examples",
    )
    args = ap.parse_args(argv)
    data = Path(args.data)
    if args.negatives:
        return _negatives_main(args, data)
    if args.candidates:
        return _candidates_main(args, data)
    if args.open:
        return _open_main(args, data)
    if args.closed:
        return _closed_main(args, data)
    results: dict[str, Any] = {}
    for name in args.sets:
        train, test = _embedded(data, name, "train"), _embedded(data, name, "test")
        for seed in args.seeds:
            if name == "clinc150":
                r = one_run(train, test, oos_label="oos", holdout=0.0, shots=10, seed=seed)
            else:
                r = one_run(train, test, oos_label=None, holdout=0.25, shots=10, seed=seed)
            results[f"{name}/seed{seed}"] = r
            print(f"\n== {name} seed {seed}: top-1 (refusal off) {100 * r['top1']:.2f}, {r['n_oos']} oos")
            for m, v in r["methods"].items():
                fr = " ".join(
                    f"{100 * q:.0f}%:{100 * a:.1f}/{100 * rc:.1f}" for q, a, rc in v["frontier"][1:8]
                )
                print(f"  {m:32s} AUROC {v['auroc']:.3f}  refused:in-acc/oos-recall {fr}")
            for p, v in r["router"].items():
                print(
                    f"  router {p:10s} {v['score']:>14s} in-scope {100 * v['in_scope_accuracy']:.2f} "
                    f"refused {100 * v['in_scope_refused']:.2f} oos-recall {100 * v['oos_recall']:.2f}"
                )
    _summary(results, args.seeds, args.sets)
    Path(args.out).parent.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    if args.doc:
        write_manifest(args.manifest, "oos", results)
        update_section("agent-setting", _markdown(results, args.seeds, args.sets, args.manifest), args.doc)
    return 0


def _save(
    args: argparse.Namespace,
    stem: str,
    section: str,
    results: dict[str, Any],
    render: Callable[[str], str],
    **extra: Any,
) -> int:
    """Write a mode's results to ``<stem>.json`` beside ``--out`` and, with ``--doc``, its manifest
    beside ``--manifest`` and the doc's ``section``, rendered with the manifest's path as shown
    (relative to the repository when it is inside it)."""
    out = Path(args.out).with_name(f"{stem}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    if args.doc:
        manifest = Path(args.manifest).with_name(f"{stem}.json")
        write_manifest(manifest, stem, results, **extra)
        full = manifest.resolve()
        shown = str(full.relative_to(REPO_ROOT)) if full.is_relative_to(REPO_ROOT) else str(manifest)
        update_section(section, render(shown), args.doc)
    return 0


def _negatives_main(args: argparse.Namespace, data: Path) -> int:
    from . import oos_negatives

    # the negatives' own embeddings go to .bench-cache (CACHE may be a shared, read-only cache)
    q = args.negatives_quantile
    results = oos_negatives.run(data, args.sets, args.seeds, _embedded, Path(".bench-cache"), q)
    name = oos_negatives.section(q)
    return _save(
        args,
        f"oos-{name.removeprefix('generic-')}",
        name,
        results,
        lambda manifest: oos_negatives.markdown(results, args.seeds, args.sets, manifest, q),
        quantile=q,
    )


def _candidates_main(args: argparse.Namespace, data: Path) -> int:
    from . import oos_candidates

    results = oos_candidates.run(data, args.sets, args.seeds, _embedded)
    return _save(
        args,
        "oos-candidates",
        "unseen-route-candidates",
        results,
        lambda manifest: oos_candidates.markdown(results, args.seeds, args.sets, manifest),
    )


def _closed_main(args: argparse.Namespace, data: Path) -> int:
    sets = [s for s in args.sets if s != "clinc150"]
    results: dict[str, Any] = {}
    for name in sets:
        train, test = _embedded(data, name, "train"), _embedded(data, name, "test")
        for key, shots, seeds in ((f"{name}/full", 0, [0]), (f"{name}/10-shot", 10, args.seeds)):
            for seed in seeds:
                r = closed_run(train, test, seed=seed, shots=shots)
                results[f"{key}/seed{seed}"] = r
                pts = " ".join(
                    f"{p}: acc {100 * v['accuracy']:.2f} refused {100 * v['refused']:.2f}"
                    for p, v in r["router"].items()
                )
                print(f"{key} seed {seed}: top-1 {100 * r['top1']:.2f}; {pts}", flush=True)
    return _save(
        args,
        "oos-closed",
        "closed-set-cost",
        results,
        lambda manifest: _closed_markdown(results, args.seeds, sets, manifest),
    )


def _closed_markdown(results: dict[str, Any], seeds: list[int], sets: list[str], manifest: str) -> str:
    rows = []
    for name in sets:
        for key, ss in ((f"{name}/full", [0]), (f"{name}/10-shot", seeds)):
            rs = [results[f"{key}/seed{s}"] for s in ss]
            top1 = statistics.fmean(r["top1"] for r in rs)
            cells = []
            for group, k in [("router", p) for p in OPERATING_POINTS] + [("shares", str(x)) for x in _SHARES]:
                acc = statistics.fmean(r[group][k]["accuracy"] for r in rs)
                cells.append(f"{100 * acc:.2f} ({100 * (top1 - acc):.2f})")
            rows.append(f"| {key} | {len(ss)} | {100 * top1:.2f} | " + " | ".join(cells) + " |")
    head = " | ".join(
        [f"{p} ({100 * v:g}%)" for p, v in OPERATING_POINTS.items()] + [f"{100 * x:g}%" for x in _SHARES]
    )
    return f"""## What refusing costs on closed-set data

Command: `uv run --group bench python -m benchmarks.oos --closed --data ../shared/data --sets {" ".join(sets)}`
(full training data, no validation, seed 0; 10-shot: seeds {", ".join(map(str, seeds))}, mean). Every test query has
a route, so every refusal is an error: **accuracy with refusals as errors (cost against top-1, points)**
at each operating point and at each share of correctly routed queries refused (`refusal=` a
number). Issue 19's target is a cost of at most 0.5 points at the default. Manifest: `{manifest}`.

| data | seeds | top-1 | {head} |
| --- | --- | --- | {" | ".join("---" for _ in range(len(OPERATING_POINTS) + len(_SHARES)))} |
{chr(10).join(rows)}
"""


_PUBLISHED = {  # TEXTOIR's fine-tuned BERT marks at 75% known intents (DA-ADB / ADB)
    "banking77": "81.4 / F1-open 67-69",
    "clinc150": "87.4 / F1-open 86",
}


def _open_main(args: argparse.Namespace, data: Path) -> int:
    sets = [s for s in args.sets if s in ("banking77", "clinc150", "hwu64")]
    results: dict[str, Any] = {}
    for name in sets:
        train, test = _embedded(data, name, "train"), _embedded(data, name, "test")
        for seed in args.seeds:
            r = open_run(train, test, seed=seed)
            results[f"{name}/seed{seed}"] = r
            for p, m in r["points"].items():
                print(
                    f"{name} seed {seed} {p:10s} acc {100 * m['accuracy']:.2f} oos P/R {100 * m['oos_precision']:.1f}"
                    f"/{100 * m['oos_recall']:.1f} F1-open {100 * m['f1_open']:.1f} F1-known {100 * m['f1_known']:.1f}",
                    flush=True,
                )
    return _save(
        args,
        "oos-open",
        "open-intent",
        results,
        lambda manifest: _open_markdown(results, args.seeds, sets, manifest),
    )


def _open_markdown(results: dict[str, Any], seeds: list[int], sets: list[str], manifest: str) -> str:
    points = ["off", *OPERATING_POINTS]
    rows = []
    for name in sets:
        rs = [results[f"{name}/seed{s}"] for s in seeds]
        for p in points:

            def m(key: str, p: str = p, rs: list[dict[str, Any]] = rs) -> str:
                return f"{100 * statistics.fmean(r['points'][p][key] for r in rs):.1f}"

            label = "refusal off" if p == "off" else p + (" (default)" if p == "balanced" else "")
            rows.append(
                f"| {name} | {label} | {m('accuracy')} | {m('oos_precision')} | {m('oos_recall')} | "
                f"{m('f1_open')} | {m('f1_known')} | {_PUBLISHED.get(name, '') if p == 'balanced' else ''} |"
            )
    per_seed = "; ".join(
        f"{name} seed {s}: {100 * results[f'{name}/seed{s}']['points']['balanced']['accuracy']:.1f} / "
        f"F1-open {100 * results[f'{name}/seed{s}']['points']['balanced']['f1_open']:.1f}"
        for name in sets
        for s in seeds
    )
    return f"""## Open-intent setting: full training data, a quarter of the routes unseen

Command: `uv run --group bench python -m benchmarks.oos --open --data ../shared/data --sets {" ".join(sets)}`
(seeds {", ".join(map(str, seeds))}; each is also `synaptoroute eval --train train.jsonl --test test.jsonl
--holdout-routes 0.25 --seed S`, for CLINC150 on files without their `oos` rows). The published protocol (TEXTOIR, 75% known intents): all training
rows of the known routes, no validation set, no out-of-scope rows (CLINC150: its `oos` rows are
dropped from train and test); the test queries of the removed routes are the open class. Bundled
encoder, frozen; test only evaluates. Accuracy is over every test query (an open one is right when
refused); the open class's precision / recall / F1 and the known classes' macro F1 as TEXTOIR
computes them. Mean of seeds. Manifest: `{manifest}`.

| data | operating point | accuracy | open precision | open recall | F1-open | F1-known | published (fine-tuned BERT) |
| --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

Per seed (balanced: accuracy / F1-open): {per_seed}.
"""


_SETTING = {
    "clinc150": "CLINC150, 10-shot, no oos rows in training (1,000 oos test queries)",
    "hwu64": "HWU64, `--holdout-routes 0.25 --shots 10`",
    "banking77": "Banking77, `--holdout-routes 0.25 --shots 10`",
}


def _markdown(results: dict[str, Any], seeds: list[int], sets: list[str], manifest: str) -> str:
    def pct(x: float) -> str:
        return f"{100 * x:.1f}"

    if Path(manifest).resolve().is_relative_to(REPO_ROOT):
        manifest = str(Path(manifest).resolve().relative_to(REPO_ROOT))

    rows = []
    for name in sets:
        for s in seeds:
            r = results[f"{name}/seed{s}"]
            cells = " | ".join(
                f"{pct(v['in_scope_accuracy'])} / {pct(v['oos_recall'])} / {pct(v['in_scope_refused'])}"
                for v in r["router"].values()
            )
            rows.append(f"| {name} | {s} | {pct(r['top1'])} | {r['router']['balanced']['score']} | {cells} |")
    means = []
    for name in sets:
        rs = [results[f"{name}/seed{s}"] for s in seeds]
        cells = " | ".join(
            f"**{pct(statistics.fmean(r['router'][p]['in_scope_accuracy'] for r in rs))} / "
            f"{pct(statistics.fmean(r['router'][p]['oos_recall'] for r in rs))} / "
            f"{pct(statistics.fmean(r['router'][p]['in_scope_refused'] for r in rs))}**"
            for p in OPERATING_POINTS
        )
        means.append(f"| {name} | mean | {pct(statistics.fmean(r['top1'] for r in rs))} | | {cells} |")
    frontier_rows = []
    for name in sets:
        rs = [results[f"{name}/seed{s}"] for s in seeds]
        for m in rs[0]["methods"]:
            au = statistics.fmean(r["methods"][m]["auroc"] for r in rs)
            pts = []
            for i in (1, 2, 3, 4, 6, 8):
                q = rs[0]["methods"][m]["frontier"][i][0]
                a = statistics.fmean(r["methods"][m]["frontier"][i][1] for r in rs)
                rc = statistics.fmean(r["methods"][m]["frontier"][i][2] for r in rs)
                pts.append(f"{pct(a)} / {pct(rc)}")
                del q
            frontier_rows.append(f"| {name} | {m} | {au:.3f} | " + " | ".join(pts) + " |")
    point_heads = " | ".join(
        f"{p} ({100 * v:g}%{', default' if p == DEFAULT_POINT else ''})" for p, v in OPERATING_POINTS.items()
    )
    return f"""## Agent setting: refusing without out-of-scope examples

Command: `uv run --group bench python -m benchmarks.oos --data ../shared/data` (seeds {", ".join(map(str, seeds))};
each row is also `synaptoroute eval --train ... --test ... --shots 10 --seed S [--oos-label oos | --holdout-routes 0.25] --refusal POINT --json`).
{"; ".join(f"{k}: {v}" for k, v in _SETTING.items() if k in sets)}. Bundled encoder, fit on the
training rows only (no validation set, no out-of-scope rows); test only evaluates. Manifest: `{manifest}`.

The router at each operating point (`refusal=`: the share of correctly routed queries it may refuse),
**in-scope accuracy (refusals as errors) / out-of-scope recall / share of in-scope test queries
refused** (misrouted ones included); top-1 is the head's ranking with refusal off. The score is the
refusal score `fit` chose by simulating unseen routes (seed's balanced fit).

| data | seed | top-1 | chosen score | {point_heads} |
| --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}
{chr(10).join(means)}

Targets (issue 19): CLINC150 in-scope >= 90 with recall >= 75; HWU64 and Banking77 in-scope >= 80
with recall >= 60. Reached: see the mean rows. No operating point meets both CLINC150 targets at
once, and the unseen routes of the same domain (HWU64, Banking77) stay far below the recall target
at every point (the best score's test AUROC is about 0.76 and 0.87 there); docs/fitting.md says
how the default was chosen.

Every score measured on test (oracle thresholds: the quantile of the in-scope *test* scores, shown
only to compare how well each score separates; the router never sees these), mean over seeds:
AUROC, then **in-scope accuracy / out-of-scope recall** when refusing 1, 2, 3, 5, 10 and 20% of
in-scope test queries. "head energy" is the log-sum-exp of the head's logits; blends are sums of
scores standardized on in-scope rows; Mahalanobis uses one shared covariance shrunk halfway.

| data | score | AUROC | 1% | 2% | 3% | 5% | 10% | 20% |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(frontier_rows)}
"""


def _summary(results: dict[str, Any], seeds: list[int], sets: list[str]) -> None:
    mean: Callable[[Sequence[float]], float] = statistics.fmean
    print("\n== mean over seeds", seeds)
    for name in sets:
        rs = [results[f"{name}/seed{s}"] for s in seeds]
        print(f"{name}: top-1 {100 * mean([r['top1'] for r in rs]):.2f}")
        for m in rs[0]["methods"]:
            print(f"  {m:32s} AUROC {mean([r['methods'][m]['auroc'] for r in rs]):.3f}")
        for p in rs[0]["router"]:
            print(
                f"  router {p:10s} in-scope {100 * mean([r['router'][p]['in_scope_accuracy'] for r in rs]):.2f}"
                f" oos-recall {100 * mean([r['router'][p]['oos_recall'] for r in rs]):.2f}"
                f" refused {100 * mean([r['router'][p]['in_scope_refused'] for r in rs]):.2f}"
            )


if __name__ == "__main__":
    raise SystemExit(main())
