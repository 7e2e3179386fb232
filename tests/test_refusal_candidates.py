"""The measurement of candidate refusal scores (benchmarks/oos_candidates.py): it must score the very
rows fit's route-holdout simulation scores, and its route-normalized score must read each route's
own spread."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np

from benchmarks import oos_candidates
from synaptoroute_agents.encoders.bundled import HEAD_FEATURES
from synaptoroute_agents.evaluation import read_labelled
from synaptoroute_agents.fitting import train as fit_train
from synaptoroute_agents.fitting.oos import choose_refusal
from synaptoroute_agents.fitting.train import fit_policy

DATA = Path(__file__).parent / "fixtures" / "clinc10"


def test_the_candidate_benchmark_scores_the_rows_fit_simulates(encoder) -> None:
    texts, labels = read_labelled(DATA / "train.jsonl")
    rows = [(t, lab) for t, lab in zip(texts, labels, strict=True) if lab != "oos"]
    texts, labels = [t for t, _ in rows], [lab for _, lab in rows]
    X, H = encoder.embed_with_features(texts)
    with mock.patch.object(fit_train, "choose_refusal", wraps=choose_refusal) as spy:
        pol = fit_policy(X, labels, seed=3, texts=texts, H=H, features=HEAD_FEATURES)
    fit_pos, fit_neg = spy.call_args.args[0], spy.call_args.args[1]
    col = {r: i for i, r in enumerate(pol.routes)}
    y = np.array([col[lab] for lab in labels])
    pos, neg = oos_candidates._simulated(X, H, y, len(pol.routes), 3, texts)
    # every distance score fit chooses from, row for row, in-scope and simulated unseen routes
    for name in ("nearest", "knn3", "knn5", "knn10", "centroid"):
        np.testing.assert_allclose(pos[name], fit_pos[name], atol=1e-5)
        np.testing.assert_allclose(neg[name], fit_neg[name], atol=1e-5)
    # and fit's choice replayed on fit's own scores is fit's choice
    fit_pos = {k: np.asarray(v) for k, v in fit_pos.items()}
    fit_neg = {k: np.asarray(v) for k, v in fit_neg.items()}
    best, _, _ = oos_candidates.fit_choice(fit_pos, fit_neg, oos_candidates.CURRENT)
    assert pol.refusal is not None and "+".join(best) == pol.refusal.score


def _ring(center: np.ndarray, spread: float, n: int, rng: np.random.Generator) -> np.ndarray:
    rows = center + spread * rng.standard_normal((n, len(center)))
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_route_z_reads_each_routes_own_spread() -> None:
    rng = np.random.default_rng(0)
    d = 16
    a, b = np.eye(d)[0], np.eye(d)[1]
    X = np.vstack([_ring(a, 0.05, 10, rng), _ring(b, 0.6, 10, rng)]).astype(np.float32)
    y = np.repeat([0, 1], 10)
    # one query per route at the same cosine (0.8) to that route's centroid
    C = oos_candidates.centroids(X, y, 2)
    Q = []
    for r in (0, 1):
        side = np.eye(d)[5] - (np.eye(d)[5] @ C[r]) * C[r]
        Q.append(0.8 * C[r] + 0.6 * side / np.linalg.norm(side))
    Q = np.array(Q, dtype=np.float32)
    s = oos_candidates.candidate_scores(Q, X, y, 2)
    np.testing.assert_allclose(s["centroid"], [0.8, 0.8], atol=1e-3)
    # far from the tight route is unusual for it, not for the loose one
    assert s["route z (centroid)"][0] < s["route z (centroid)"][1] - 1.0
    assert s["route z (nearest)"][0] < s["route z (nearest)"][1]
