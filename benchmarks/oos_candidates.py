"""Candidate refusal scores for unseen routes of the same domain, measured before adding any to ``fit``.

    uv run --group bench python -m benchmarks.oos --candidates --data ../shared/data

For each setting of the agent benchmark (:mod:`benchmarks.oos`: CLINC150 10-shot without
out-of-scope rows; HWU64 and Banking77 with a quarter of the intents unseen, 10 shots) and each
seed, the policy is fitted as usual; its route-holdout simulation (the in-scope and simulated
out-of-scope rows ``fit`` scores, in ``fit``'s order) is read off the call to
:func:`~synaptoroute_agents.fitting.oos.choose_refusal`, and every candidate score below is
computed on the same rows, then on test. Candidates (higher = more in scope):

- ``route z (centroid)``: the cosine to the best route's centroid, standardized by that route's own
  leave-one-out figures (each of its rows against the centroid of the route's other rows), the
  route's mean and variance shrunk toward the global ones with a prior of the median route size
  (the per-class radius of ADB, with frozen features);
- ``route z (nearest)``: the same for the nearest utterance, against each row's nearest other row of
  its route;
- ``gap (nearest)`` / ``gap (centroid)``: best route minus the best other route (nearest
  utterance; centroid);
- ``purity``: the share of the 10 nearest utterances that belong to the nearest one's route;
- ``local density``: the nearest cosine minus that neighbour's own cosine to its nearest other row
  (LOF-like);
- ``centered nearest`` / ``centered centroid``: cosines after removing the mean of the training
  rows (the shared domain direction);
- ``relative centroid``: the centroid cosine minus the cosine to the mean of all rows (the cosine
  analogue of the relative Mahalanobis distance);
- ``layers 4-6 nearest`` / ``layers 4-6 centroid``: cosines in the encoder's head features;
- ``word coverage``: the idf-weighted share of the query's words that the best route's examples
  contain (an unseen route's queries bring words no example has);
- ``placeholder (mixup)``: minus the probability of a dummy class of an embedding softmax whose
  dummy examples mix each row with one of its 10 nearest rows of other routes (PROSER's
  placeholders for open-set recognition, on frozen features).

Then the choice ``fit`` would make (the best simulated AUROC among single scores and sums of two,
each standardized on the simulated in-scope rows) is replayed per seed with the current
candidate set and with the new scores added. Each is reported with its thresholds as ``fit``
sets them (quantiles of the simulated correctly routed rows) and at equal test refusal (the
threshold at the test quantile of correctly routed queries; shown only to compare the scores'
separation, never used to choose).
"""

from __future__ import annotations

import itertools
import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from synaptoroute_agents.encoders.bundled import HEAD_FEATURES
from synaptoroute_agents.evaluation import sample_shots
from synaptoroute_agents.fitting import train as fit_train
from synaptoroute_agents.fitting.numerics import design_logits, fit_softmax, neighbours, softmax, vote
from synaptoroute_agents.fitting.oos import OPERATING_POINTS, centroids, choose_refusal
from synaptoroute_agents.fitting.train import fit_policy

__all__ = ["CURRENT", "candidate_scores", "fit_choice", "route_folds", "run"]

Embedded = tuple[list[str], list[str], np.ndarray, np.ndarray]

#: The base scores ``fit`` chooses from today.
CURRENT = ("nearest", "knn3", "knn5", "knn10", "centroid", "head")
#: Candidate sets replayed through fit's choice: the current one, then with new scores added.
SETS: dict[str, tuple[str, ...]] = {
    "current": CURRENT,
    "+ route z (centroid)": (*CURRENT, "route z (centroid)"),
    "+ route z (nearest)": (*CURRENT, "route z (nearest)"),
    "+ both route z": (*CURRENT, "route z (centroid)", "route z (nearest)"),
    "+ route z + gap": (*CURRENT, "route z (centroid)", "route z (nearest)", "gap (nearest)"),
    "+ layers 4-6": (*CURRENT, "layers 4-6 nearest", "layers 4-6 centroid"),
    "+ every new score": (
        *CURRENT,
        "route z (centroid)",
        "route z (nearest)",
        "gap (nearest)",
        "gap (centroid)",
        "purity",
        "local density",
        "centered nearest",
        "centered centroid",
        "relative centroid",
        "layers 4-6 nearest",
        "layers 4-6 centroid",
        "word coverage",
        "placeholder (mixup)",
    ),
}
_SHARES = (0.005, 0.02, 0.05)
_FRONTIER = (0.005, 0.01, 0.02, 0.05, 0.10)
_WORD = re.compile(r"\w+")


def _word_coverage(
    queries: list[str], texts: list[str], y: np.ndarray, best: np.ndarray, n_routes: int
) -> np.ndarray:
    df: Counter[str] = Counter()
    vocab: list[set[str]] = [set() for _ in range(n_routes)]
    for t, r in zip(texts, y, strict=True):
        words = set(_WORD.findall(t.lower()))
        df.update(words)
        vocab[r] |= words
    out = np.empty(len(queries))
    for i, q in enumerate(queries):
        qw = _WORD.findall(q.lower()) or [""]
        w = np.array([math.log((len(texts) + 1) / (df[x] + 1)) + 1 for x in qw])
        out[i] = float((w * np.array([x in vocab[best[i]] for x in qw])).sum() / w.sum())
    return out


def _placeholder(Q: np.ndarray, X: np.ndarray, y: np.ndarray, n_routes: int, seed: int) -> np.ndarray:
    S = (X @ X.T).astype(np.float64)
    S[y[:, None] == y[None, :]] = -np.inf
    near = np.argsort(-S, axis=1)[:, :10]
    rng = np.random.default_rng(seed)
    rows = np.arange(len(X))
    parts = []
    for _ in range(2):
        j = near[rows, rng.integers(0, near.shape[1], len(X))]
        lam = rng.uniform(0.3, 0.7, len(X))[:, None]
        parts.append(_unit(lam * X + (1 - lam) * X[j]))
    Z = np.vstack(parts).astype(np.float32)
    W = fit_softmax(np.vstack([X, Z]), np.concatenate([y, np.full(len(Z), n_routes)]), n_routes + 1, 1e-4)
    return -softmax(np.asarray(design_logits(Q, None, W, 1.0), dtype=np.float64))[:, n_routes]


def _unit(A: np.ndarray) -> np.ndarray:
    A = np.asarray(A, dtype=np.float64)
    return A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)


def _route_stats(values: np.ndarray, y: np.ndarray, n_routes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-route mean and sd of ``values`` (one per row), shrunk toward the global figures with
    a prior count of the median route size."""
    counts = np.bincount(y, minlength=n_routes)
    ok = np.isfinite(values) & (counts[y] > 1)
    if not ok.any():
        return np.zeros(n_routes), np.ones(n_routes)
    gm, gv = float(values[ok].mean()), float(values[ok].var())
    prior = float(np.median(counts[counts > 0]))
    n = np.bincount(y[ok], minlength=n_routes).astype(np.float64)
    s1 = np.bincount(y[ok], weights=values[ok], minlength=n_routes)
    s2 = np.bincount(y[ok], weights=values[ok] ** 2, minlength=n_routes)
    mean = np.where(n > 0, s1 / np.maximum(n, 1), gm)
    var = np.where(n > 0, s2 / np.maximum(n, 1) - mean**2, gv)
    m = (n * mean + prior * gm) / (n + prior)
    v = (n * np.maximum(var, 0) + prior * gv) / (n + prior)
    return m, np.sqrt(v) + 1e-6


def candidate_scores(
    Q: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    n_routes: int,
    QH: np.ndarray | None = None,
    XH: np.ndarray | None = None,
    q_texts: list[str] | None = None,
    texts: list[str] | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Every base and candidate score of queries ``Q`` against routes of rows ``(X, y)``
    (``QH``/``XH``: the head features, for the layer 4-6 scores; ``q_texts``/``texts``: the
    texts, for word coverage); see the module."""
    X = np.asarray(X, dtype=np.float32)
    Q = np.asarray(Q, dtype=np.float32)
    S = (X @ X.T).astype(np.float64)
    np.fill_diagonal(S, -np.inf)
    same = y[:, None] == y[None, :]
    row_nearest = S.max(axis=1)
    own_nearest = np.where(same, S, -np.inf).max(axis=1)
    sums = np.zeros((n_routes, X.shape[1]))
    np.add.at(sums, y, X.astype(np.float64))
    own_centroid = (X * _unit(sums[y] - X)).sum(axis=1)
    zc_m, zc_s = _route_stats(own_centroid, y, n_routes)
    zn_m, zn_s = _route_stats(own_nearest, y, n_routes)
    ri, rs = neighbours(Q, X, np.arange(len(X)), 32)
    ns = np.where(np.isfinite(rs), rs, -1.0).astype(np.float64)
    ni = y[ri]
    C = centroids(X, y, n_routes)
    CS = (Q @ C.T).astype(np.float64)
    order = np.argsort(-CS, axis=1)
    rows = np.arange(len(Q))
    c1 = order[:, 0]
    best_c = CS[rows, c1]
    second_c = CS[rows, order[:, 1]] if n_routes > 1 else np.full(len(Q), -1.0)
    r1 = ni[:, 0]
    other = np.where(ni != r1[:, None], ns, -np.inf).max(axis=1)
    mean = X.mean(axis=0)
    Xc, Qc = _unit(X - mean).astype(np.float32), _unit(Q - mean).astype(np.float32)
    _, nsc = neighbours(Qc, Xc, y, 1)
    out = {
        "nearest": ns[:, 0],
        "knn3": ns[:, :3].mean(axis=1),
        "knn5": ns[:, :5].mean(axis=1),
        "knn10": ns[:, :10].mean(axis=1),
        "centroid": best_c,
        "route z (centroid)": (best_c - zc_m[c1]) / zc_s[c1],
        "route z (nearest)": (ns[:, 0] - zn_m[r1]) / zn_s[r1],
        "gap (nearest)": ns[:, 0] - np.where(np.isfinite(other), other, -1.0),
        "gap (centroid)": best_c - second_c,
        "purity": (ni[:, :10] == r1[:, None]).mean(axis=1),
        "local density": ns[:, 0] - row_nearest[ri[:, 0]],
        "centered nearest": nsc[:, 0].astype(np.float64),
        "centered centroid": (Qc @ centroids(Xc, y, n_routes).T).max(axis=1).astype(np.float64),
        "relative centroid": best_c - (Q @ _unit(mean[None])[0]).astype(np.float64),
    }
    if QH is not None and XH is not None:
        XH, QH = np.asarray(XH, dtype=np.float32), np.asarray(QH, dtype=np.float32)
        _, nh = neighbours(QH, XH, y, 1)
        out["layers 4-6 nearest"] = nh[:, 0].astype(np.float64)
        out["layers 4-6 centroid"] = (QH @ centroids(XH, y, n_routes).T).max(axis=1).astype(np.float64)
    if q_texts is not None and texts is not None:
        out["word coverage"] = _word_coverage(q_texts, texts, y, c1, n_routes)
    out["placeholder (mixup)"] = _placeholder(Q, X, y, n_routes, seed)
    return out


def route_folds(y: np.ndarray, n_routes: int, seed: int) -> list[np.ndarray]:
    """The simulated unseen-route folds of ``fit`` (:func:`~synaptoroute_agents.fitting.train._fit_refusal`):
    for each fold, a mask of the rows whose route plays an unseen one."""
    usable = np.flatnonzero(np.bincount(y, minlength=n_routes) >= 1)
    rng = np.random.default_rng(seed)
    k = int(min(5, len(usable)))
    fold_of = np.full(n_routes + 1, -1)
    fold_of[rng.permutation(usable)] = np.arange(len(usable)) % k
    return [fold_of[y] == f for f in range(k)]


def _simulated(
    X: np.ndarray, H: np.ndarray, y: np.ndarray, n_routes: int, seed: int, texts: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Candidate scores of fit's simulated in-scope rows (held out of stratified splits) and
    out-of-scope rows (routes held out), in fit's order."""
    pos_parts = [
        candidate_scores(
            X[b], X[a], y[a], n_routes, H[b], H[a], [texts[i] for i in b], [texts[i] for i in a], seed
        )
        for a, b in fit_train._splits(y, seed, n_routes)
    ]
    neg_parts = []
    for unseen in route_folds(y, n_routes, seed):
        kept = ~unseen
        kept_routes = np.unique(y[kept])
        remap = np.full(n_routes, -1)
        remap[kept_routes] = np.arange(len(kept_routes))
        neg_parts.append(
            candidate_scores(
                X[unseen],
                X[kept],
                remap[y[kept]],
                len(kept_routes),
                H[unseen],
                H[kept],
                [texts[i] for i in np.flatnonzero(unseen)],
                [texts[i] for i in np.flatnonzero(kept)],
                seed,
            )
        )
    pos = {k: np.concatenate([p[k] for p in pos_parts]) for k in pos_parts[0]}
    neg = {k: np.concatenate([p[k] for p in neg_parts]) for k in neg_parts[0]}
    return pos, neg


def _auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    from .oos import auroc

    return auroc(pos, neg)


def fit_choice(
    pos: Mapping[str, np.ndarray], neg: Mapping[str, np.ndarray], base: tuple[str, ...]
) -> tuple[tuple[str, ...], float, Callable[[Mapping[str, np.ndarray]], np.ndarray]]:
    """The score ``fit`` would keep among ``base`` and sums of two (best simulated AUROC, a
    single score first on a tie), its AUROC and the function that computes it."""
    norms = {n: (float(pos[n].mean()), float(pos[n].std() + 1e-9)) for n in base}

    def combine(parts: tuple[str, ...]) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
        if len(parts) == 1:
            return lambda d: np.asarray(d[parts[0]], dtype=np.float64)
        return lambda d: sum((d[p] - norms[p][0]) / norms[p][1] for p in parts)  # type: ignore[return-value]

    cands = [(n,) for n in base] + list(itertools.combinations(base, 2))
    aurocs = {c: _auroc(combine(c)(pos), combine(c)(neg)) for c in cands}
    best = max(cands, key=lambda c: (aurocs[c], -len(c)))
    return best, aurocs[best], combine(best)


def one_seed(train: Embedded, test: Embedded, *, name: str, seed: int) -> dict[str, Any]:
    texts, labels, X, H = train
    t_texts, t_labels, Xt, Ht = test
    oos_label = "oos" if name == "clinc150" else None
    rng = np.random.default_rng(seed)
    known = sorted({lab for lab in labels if lab != oos_label})
    if name != "clinc150":  # as benchmarks.oos.one_run: a quarter of the intents unseen
        held = set(rng.choice(known, int(round(0.25 * len(known))), replace=False).tolist())
        known = [lab for lab in known if lab not in held]
    keep = set(known)
    idx = [i for i, lab in enumerate(labels) if lab in keep]
    s_texts, _ = sample_shots([str(i) for i in idx], [labels[i] for i in idx], 10, seed)
    rows = np.array([int(s) for s in s_texts])
    Xa, Ha, la = X[rows], H[rows], [labels[i] for i in rows]
    with mock.patch.object(fit_train, "choose_refusal", wraps=choose_refusal) as spy:
        pol = fit_policy(Xa, la, seed=seed, texts=[texts[i] for i in rows], H=Ha, features=HEAD_FEATURES)
    sim_pos, sim_neg = spy.call_args.args[0], spy.call_args.args[1]
    right_sim = spy.call_args.kwargs["right"]
    col = {r: i for i, r in enumerate(pol.routes)}
    ya = np.array([col[lab] for lab in la])
    n_routes = len(pol.routes)
    ta = [texts[i] for i in rows]
    pos, neg = _simulated(Xa, Ha, ya, n_routes, seed, ta)
    if not (
        np.allclose(pos["nearest"], sim_pos["nearest"]) and np.allclose(neg["nearest"], sim_neg["nearest"])
    ):
        raise RuntimeError("the replayed simulation does not match fit's rows")
    pos["head"], neg["head"] = np.asarray(sim_pos["head"]), np.asarray(sim_neg["head"])
    P = pol.head_probs(Xt, t_texts, Ht)
    ni, ns = neighbours(Xt, Xa, ya, 32)
    V = vote(ni, ns, np.isfinite(ns), n_routes, pol.tau)
    B = (1 - pol.alpha) * P[:, :n_routes] + pol.alpha * V
    T = candidate_scores(Xt, Xa, ya, n_routes, Ht, Ha, list(t_texts), ta, seed)
    T["head"] = B.max(axis=1)
    yt = np.array([col.get(lab, -1) for lab in t_labels])
    is_oos = yt < 0
    ins = ~is_oos
    right = B.argmax(axis=1) == yt
    below = B.max(axis=1) < pol.threshold
    single: dict[str, Any] = {}
    for n in T:
        frontier = []
        for share in _FRONTIER:
            refused = (T[n] < np.quantile(pos[n][right_sim], share)) | below
            frontier.append(
                [
                    share,
                    float((right & ~refused)[ins].mean()),
                    float(refused[is_oos].mean()),
                    float(refused[ins & right].mean()),
                ]
            )
        single[n] = {
            "sim_auroc": _auroc(pos[n], neg[n]),
            "test_auroc": _auroc(T[n][ins], T[n][is_oos]),
            "frontier": frontier,
        }
    sets: dict[str, Any] = {}
    for set_name, base in SETS.items():
        best, sim_auroc, score = fit_choice(pos, neg, base)
        ps, ts = score(pos), score(T)
        fitted: dict[str, dict[str, float]] = {}
        equal: dict[str, dict[str, float]] = {}
        for share in _SHARES:
            for group, ref in (("fitted", ps[right_sim]), ("equal", ts[ins & right])):
                refused = (ts < np.quantile(ref, share)) | below
                (fitted if group == "fitted" else equal)[f"{share:g}"] = {
                    "in_scope_accuracy": float((right & ~refused)[ins].mean()),
                    "oos_recall": float(refused[is_oos].mean()),
                    "right_refused": float(refused[ins & right].mean()),
                }
        sets[set_name] = {
            "score": "+".join(best),
            "sim_auroc": sim_auroc,
            "test_auroc": _auroc(ts[ins], ts[is_oos]),
            "fitted": fitted,
            "equal": equal,
        }
    return {"top1": float(right[ins].mean()), "single": single, "sets": sets}


def run(
    data: Path, sets: list[str], seeds: list[int], embedded: Callable[[Path, str, str], Embedded]
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in sets:
        train, test = embedded(data, name, "train"), embedded(data, name, "test")
        for seed in seeds:
            r = one_seed(train, test, name=name, seed=seed)
            results[f"{name}/seed{seed}"] = r
            cur = r["sets"]["current"]
            print(
                f"{name} seed {seed}: current {cur['score']} sim {cur['sim_auroc']:.3f} test {cur['test_auroc']:.3f}; "
                + "; ".join(
                    f"{k}: {v['score']} {v['sim_auroc']:.3f}/{v['test_auroc']:.3f}"
                    for k, v in r["sets"].items()
                ),
                flush=True,
            )
    return results


def markdown(results: dict[str, Any], seeds: list[int], sets: list[str], manifest: str) -> str:
    """The docs/BENCHMARKS.md section: every candidate's separation, and fit's choice with each
    candidate set (mean of the seeds)."""
    points = {f"{v:g}": k for k, v in OPERATING_POINTS.items() if v in _SHARES}
    names = list(next(iter(results.values()))["single"])
    head = " | ".join(f"{n} sim / test" for n in sets)
    lines = []
    for cand in names:
        cells = []
        for name in sets:
            rs = [results[f"{name}/seed{s}"] for s in seeds]
            sim = statistics.fmean(r["single"][cand]["sim_auroc"] for r in rs)
            tst = statistics.fmean(r["single"][cand]["test_auroc"] for r in rs)
            cells.append(f"{sim:.3f} / {tst:.3f}")
        lines.append(f"| {cand} | " + " | ".join(cells) + " |")
    fronts = []
    for name in sets:
        rs = [results[f"{name}/seed{s}"] for s in seeds]
        fronts.append(f"\n{name}:\n\n| score | " + " | ".join(f"{100 * x:g}%" for x in _FRONTIER) + " |")
        fronts.append("| --- | " + " | ".join("---" for _ in _FRONTIER) + " |")
        for cand in names:
            cells = []
            for j in range(len(_FRONTIER)):
                acc = statistics.fmean(r["single"][cand]["frontier"][j][1] for r in rs)
                rec = statistics.fmean(r["single"][cand]["frontier"][j][2] for r in rs)
                cells.append(f"{100 * acc:.1f} / {100 * rec:.1f}")
            fronts.append(f"| {cand} | " + " | ".join(cells) + " |")
    choice = []
    for name in sets:
        rs = [results[f"{name}/seed{s}"] for s in seeds]
        for set_name in SETS:
            got = [r["sets"][set_name] for r in rs]
            cells = [
                ", ".join(g["score"] for g in got),
                f"{statistics.fmean(g['sim_auroc'] for g in got):.3f}",
                f"{statistics.fmean(g['test_auroc'] for g in got):.3f}",
            ]
            for share, point in points.items():
                f = [g["fitted"][share] for g in got]
                e = [g["equal"][share] for g in got]
                cells.append(
                    f"{100 * statistics.fmean(x['in_scope_accuracy'] for x in f):.1f} / "
                    f"{100 * statistics.fmean(x['oos_recall'] for x in f):.1f} / "
                    f"{100 * statistics.fmean(x['right_refused'] for x in f):.1f}"
                )
                cells.append(f"{100 * statistics.fmean(x['oos_recall'] for x in e):.1f}")
                del point
            choice.append(f"| {name} | {set_name} | " + " | ".join(cells) + " |")
    pt_head = " | ".join(
        f"{p} ({100 * float(s):g}%): in-scope / oos recall / right refused | equal test refusal: oos recall"
        for s, p in points.items()
    )
    return f"""## Refusal candidates for unseen routes of the same domain

Command: `uv run --group bench python -m benchmarks.oos --candidates --data ../shared/data` (seeds
{", ".join(map(str, seeds))}, mean; settings as the agent-setting table: CLINC150 10-shot without oos rows,
HWU64 and Banking77 a quarter of the intents unseen, 10 shots). Each candidate score is computed on
`fit`'s own route-holdout simulation (the rows it scores, in its order) and on test; see
`benchmarks/oos_candidates.py` for their definitions. Manifest: `{manifest}`.

**Separation (AUROC in-scope vs out-of-scope), simulated / test:**

| score | {head} |
| --- | {" | ".join("---" for _ in sets)} |
{chr(10).join(lines)}

**Frontier of each score alone** with thresholds set as `fit` sets them (the quantile of the
simulated correctly routed rows at each share): test in-scope accuracy / oos recall.
{chr(10).join(fronts)}

**What `fit` would choose** (best simulated AUROC among single scores and standardized sums of
two, per seed) with the current candidate set and with new scores added. With fit's thresholds:
in-scope accuracy / oos recall / share of correctly routed test queries refused; "equal test
refusal" sets the threshold at the test quantile of correctly routed queries instead (a comparison
of the scores' separation at the same cost, never a choice):

| data | candidates | chosen (per seed) | sim AUROC | test AUROC | {pt_head} |
| --- | --- | --- | --- | --- | {" | ".join("---" for _ in range(2 * len(points)))} |
{chr(10).join(choice)}
"""
