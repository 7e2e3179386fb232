"""Generic negatives as out-of-scope examples in the agent setting (``benchmarks.oos --negatives``).

    uv run --group bench python -m benchmarks.oos --negatives --data ../shared/data

The agent setting of :mod:`benchmarks.oos` (10 examples per route, no out-of-scope examples;
CLINC150's test out-of-scope queries, or the test queries of a quarter of HWU64's / Banking77's
routes held out). The generic negatives of :mod:`benchmarks.negatives` are first filtered per fit:
a negative as close to a route's centroid as the lower quartile of that route's own examples
(leave-one-out) is dropped (:func:`benchmarks.negatives.far_from_routes`). Then ``fit`` uses the
rest in one of these ways (test data only evaluates):

- ``off``: today's fit (no negatives);
- ``score choice``: the negatives join the route-holdout simulation's out-of-scope rows (scored
  against every route, the head of the ``off`` fit), so they take part in choosing the refusal
  score; thresholds stay quantiles of the in-scope rows (the promise is unchanged);
- ``reject class``: the negatives are out-of-scope examples, through the existing reject-class
  path (``refusal_budget`` = the promised 2%);
- ``reject class within the promise``: the same head, but the refusal score's thresholds are
  lowered so that the reject class and the score *together* refuse the promised share of the
  correctly routed held-out rows; when the reject class alone refuses more than that, the
  negatives are not used (the ``off`` fit is kept).

Each variant is reported at the default point (in-scope accuracy / out-of-scope recall / share of
correctly routed test queries refused) and as the out-of-scope recall it gains over ``off`` at
the same in-scope accuracy (``off``'s own points 0.5-10% interpolated): moving along the frontier
is what a different operating point already gives, only a gain at equal accuracy is new.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from synaptoroute_agents.evaluation import sample_shots
from synaptoroute_agents.fitting import train as fit_train
from synaptoroute_agents.fitting.numerics import neighbours, vote
from synaptoroute_agents.fitting.oos import OPERATING_POINTS, Refusal, centroids, neighbour_scores
from synaptoroute_agents.fitting.train import fit_policy
from synaptoroute_agents.routes import clean_text

from .negatives import GENERIC_NEGATIVES, far_from_routes

__all__ = ["VARIANTS", "markdown", "run"]

VARIANTS = ("off", "score choice", "reject class", "reject class within the promise")
_POINTS: tuple[str | float, ...] = ("permissive", 0.01, "balanced", 0.03, "cautious", 0.075, 0.10)
_NEG = "\x00generic_negative"

Embedded = tuple[list[str], list[str], np.ndarray, np.ndarray]


def negatives_embedded(cache: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The negatives' cleaned texts, embeddings and head features (bundled encoder), cached."""
    texts = [clean_text(t) for t in GENERIC_NEGATIVES]
    path = cache / f"oos-negatives-{hashlib.sha1(chr(10).join(texts).encode()).hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path) as z:
            return texts, z["X"], z["H"]
    from synaptoroute_agents.encoders.bundled import BundledEncoder

    X, H = BundledEncoder().embed_with_features(texts)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, X=X.astype(np.float32), H=H.astype(np.float32))
    return texts, X.astype(np.float32), H.astype(np.float32)


def _within_promise(used: dict[str, Any]) -> Callable[..., tuple[float, Refusal | None]]:
    """A stand-in for ``train._with_reject_class``: the refusal score's thresholds lowered so
    that the reject class and the score together refuse each point's share of the correctly
    routed held-out rows (``used["used"]`` False when the reject class alone refuses more than
    the chosen point promises)."""

    def choose(
        held: Any,
        Ph: np.ndarray,
        prob: Any,
        alpha: float,
        tau: float,
        data: Any,
        threshold: float,
        refusal: Refusal,
    ) -> tuple[float, Refusal | None]:
        yh, n = held.y, prob.n_routes
        V = vote(held.nb_idx, held.nb_sim, np.isfinite(held.nb_sim), prob.k, tau)
        B = (1 - alpha) * Ph[:, :n] + alpha * V[:, :n]
        top = B.max(axis=1)
        right = (B.argmax(axis=1) == yh) & (yh < n)
        rejected = ((1 - alpha) * Ph[:, n] > top)[right]
        base = neighbour_scores(held.nb_sim)
        base["centroid"], base["head"] = held.centroid, top
        free = refusal.combine(base)[right][~rejected]
        used["reject_share"] = float(rejected.mean())
        thresholds: dict[str, float] = {}
        for name in refusal.thresholds:
            share = OPERATING_POINTS[name] if name in OPERATING_POINTS else float(name)
            left = share * int(right.sum()) - int(rejected.sum())
            if name == refusal.point and left < 0:
                used["used"] = False
            thresholds[name] = float(np.quantile(free, min(1.0, left / len(free)))) if left > 0 else -1e9
        return 0.0, replace(refusal, thresholds=thresholds)

    return choose


def _evaluate(pol: Any, Xa: np.ndarray, ya: np.ndarray, test: Embedded, yt: np.ndarray) -> dict[str, Any]:
    tt, _, Xt, Ht = test
    nr = len(pol.routes)
    P = pol.head_probs(Xt, tt, Ht)
    ni, ns = neighbours(Xt, Xa, ya, 32)
    V = vote(ni, ns, np.isfinite(ns), nr, pol.tau)
    B = (1 - pol.alpha) * P[:, :nr] + pol.alpha * V
    top = B.max(axis=1)
    right = B.argmax(axis=1) == yt
    ins, oos = yt >= 0, yt < 0
    rejected = (1 - pol.alpha) * P[:, nr] > top if pol.reject else np.zeros(len(top), bool)
    out: dict[str, Any] = {}
    for point in ("as fitted", *_POINTS):
        pp = pol if point == "as fitted" else pol.with_operating_point(point)
        refused = (top < pp.threshold) | rejected
        if pp.refusal is not None:
            refused |= pp.refusal.values(Xt, ns, top) < pp.refusal.threshold
        out[str(point)] = (
            float((right & ~refused)[ins].mean()),
            float(refused[oos].mean()),
            float(refused[ins & right].mean()),
        )
    return out


def one_seed(
    train: Embedded,
    test: Embedded,
    negs: tuple[list[str], np.ndarray, np.ndarray],
    *,
    holdout: float,
    seed: int,
    quantile: float = 0.25,
) -> dict[str, Any]:
    from synaptoroute_agents.encoders.bundled import HEAD_FEATURES

    texts, labels, X, H = train
    rng = np.random.default_rng(seed)
    known = sorted({lab for lab in labels if lab != "oos"})
    if holdout:
        held = set(rng.choice(known, int(round(holdout * len(known))), replace=False).tolist())
        known = [lab for lab in known if lab not in held]
    keep_set = set(known)
    idx = [i for i, lab in enumerate(labels) if lab in keep_set]
    s_texts, _ = sample_shots([str(i) for i in idx], [labels[i] for i in idx], 10, seed)
    rows = np.array([int(s) for s in s_texts])
    Xa, Ha, la, ta = X[rows], H[rows], [labels[i] for i in rows], [texts[i] for i in rows]
    col = {r: i for i, r in enumerate(known)}
    ya = np.array([col[lab] for lab in la])
    yt = np.array([col.get(lab, -1) for lab in test[1]])
    nt, NX, NH = negs
    keep = far_from_routes(NX, Xa, ya, len(known), quantile)
    kt = [t for t, k in zip(nt, keep, strict=True) if k]
    common: dict[str, Any] = {"seed": seed, "texts": ta, "features": HEAD_FEATURES}
    out: dict[str, Any] = {"kept": int(keep.sum()), "offered": len(nt), "variants": {}}
    off = fit_policy(Xa, la, H=Ha, **common)
    out["variants"]["off"] = _evaluate(off, Xa, ya, test, yt)
    # score choice: the negatives' scores (every route, the off fit's head) join the simulation
    Pn = off.head_probs(NX[keep], kt, NH[keep])
    ni, ns = neighbours(NX[keep], Xa, ya, 32)
    Vn = vote(ni, ns, np.isfinite(ns), len(known), off.tau)
    extra = neighbour_scores(ns)
    extra["centroid"] = (NX[keep] @ centroids(Xa, ya, len(known)).T).max(axis=1).astype(np.float64)
    extra["head"] = ((1 - off.alpha) * Pn[:, : len(known)] + off.alpha * Vn).max(axis=1)
    original = fit_train.choose_refusal

    def with_negatives(pos: Any, neg: Any, model: Any, point: Any, *, right: Any = None) -> Refusal:
        return original(
            pos, {k: np.concatenate([v, extra[k]]) for k, v in neg.items()}, model, point, right=right
        )

    with mock.patch.object(fit_train, "choose_refusal", with_negatives):
        pol = fit_policy(Xa, la, H=Ha, **common)
    out["variants"]["score choice"] = _evaluate(pol, Xa, ya, test, yt)
    Xr, Hr, lr = np.vstack([Xa, NX[keep]]), np.vstack([Ha, NH[keep]]), la + [_NEG] * int(keep.sum())
    rej: dict[str, Any] = {**common, "texts": ta + kt}
    pol = fit_policy(Xr, lr, H=Hr, oos_label=_NEG, refusal_budget=OPERATING_POINTS["balanced"], **rej)
    out["variants"]["reject class"] = _evaluate(pol, Xa, ya, test, yt)
    used: dict[str, Any] = {"used": True}
    with mock.patch.object(fit_train, "_with_reject_class", _within_promise(used)):
        pol = fit_policy(Xr, lr, H=Hr, oos_label=_NEG, **rej)
    out["variants"]["reject class within the promise"] = (
        _evaluate(pol, Xa, ya, test, yt) if used["used"] else out["variants"]["off"]
    )
    out["within_promise_used"] = used["used"]
    out["reject_share"] = used.get("reject_share")
    return out


def gain_at_equal_accuracy(off: dict[str, Any], point: tuple[float, float, float]) -> float:
    """Out-of-scope recall of ``point`` minus ``off``'s at the same in-scope accuracy
    (interpolated between ``off``'s points; clipped at its ends)."""
    pts = sorted((v[0], v[1]) for k, v in off.items() if k != "as fitted")
    acc = [a for a, _ in pts]
    rec = [r for _, r in pts]
    return float(point[1] - np.interp(point[0], acc, rec))


def run(
    data: Path,
    sets: list[str],
    seeds: list[int],
    embedded: Callable[[Path, str, str], Embedded],
    cache: Path,
    quantile: float = 0.25,
) -> dict[str, Any]:
    negs = negatives_embedded(cache)
    results: dict[str, Any] = {}
    for name in sets:
        tr, te = embedded(data, name, "train"), embedded(data, name, "test")
        for seed in seeds:
            r = one_seed(
                tr, te, negs, holdout=0.0 if name == "clinc150" else 0.25, seed=seed, quantile=quantile
            )
            results[f"{name}/seed{seed}"] = r
            off = r["variants"]["off"]
            line = "; ".join(
                f"{v}: {100 * f['balanced'][0]:.1f}/{100 * f['balanced'][1]:.1f}/{100 * f['balanced'][2]:.1f}"
                f" (fitted {100 * f['as fitted'][0]:.1f}/{100 * f['as fitted'][1]:.1f}/{100 * f['as fitted'][2]:.1f},"
                f" gain {100 * gain_at_equal_accuracy(off, f['as fitted']):+.1f})"
                for v, f in r["variants"].items()
            )
            print(f"{name} seed {seed} kept {r['kept']}/{r['offered']}: {line}", flush=True)
    return results


def section(quantile: float) -> str:
    """The docs/BENCHMARKS.md section of a run with this filter quantile."""
    return "generic-negatives" if quantile == 0.25 else f"generic-negatives-q{quantile:g}"


def markdown(
    results: dict[str, Any], seeds: list[int], sets: list[str], manifest: str, quantile: float = 0.25
) -> str:
    mean = statistics.fmean
    rows = []
    for name in sets:
        rs = [results[f"{name}/seed{s}"] for s in seeds]
        kept = ", ".join(str(r["kept"]) for r in rs)
        for v in VARIANTS:
            fs = [r["variants"][v] for r in rs]
            bal = [mean(f["balanced"][i] for f in fs) for i in range(3)]
            fit = [mean(f["as fitted"][i] for f in fs) for i in range(3)]
            gain = mean(
                gain_at_equal_accuracy(r["variants"]["off"], r["variants"][v]["as fitted"]) for r in rs
            )
            note = ""
            if v == "reject class within the promise":
                note = f" (used in {sum(r['within_promise_used'] for r in rs)} of {len(rs)} fits)"
            rows.append(
                f"| {name} | {v}{note} | {kept} | "
                + " / ".join(f"{100 * x:.1f}" for x in fit)
                + " | "
                + " / ".join(f"{100 * x:.1f}" for x in bal)
                + f" | {100 * gain:+.1f} |"
            )
    which = {0.25: "the lower quartile", 0.0: "the lowest"}.get(quantile, f"the {quantile:g} quantile")
    flag = "" if quantile == 0.25 else f" --negatives-quantile {quantile:g}"
    return f"""## Generic negatives as out-of-scope examples (filter quantile {quantile:g}; measured, not used by fit)

Command: `uv run --group bench python -m benchmarks.oos --negatives{flag} --data ../shared/data` (seeds
{", ".join(map(str, seeds))}, mean; the agent setting of the table above). {len(GENERIC_NEGATIVES)} generic
messages written for the project (benchmarks/negatives.py, CC0; chit-chat, trivia, opinions,
definitions, arithmetic, coding help, jokes, everyday requests), filtered per fit: a negative as
close to a route's centroid as {which} of that route's own examples' cosines (leave-one-out) is
dropped. "kept" is per seed. Cells are in-scope accuracy / out-of-scope recall / share of the
correctly routed test queries refused; "as fitted" is the policy's own point (the reject class's
when it has one), "balanced" the default point's thresholds; the last column is the recall
gained over `off` **at the same in-scope accuracy** (off's points 0.5-10% interpolated), the
only gain a different operating point does not already give. Variants: see
benchmarks/oos_negatives.py. Manifest: `{manifest}`.

| data | variant | kept | as fitted | balanced | recall gain at equal accuracy |
| --- | --- | --- | --- | --- | --- |
""" + "\n".join(rows)
