"""Whether any route fits: a refusal score chosen by simulating unseen routes inside ``fit``.

The head answers *which route*; a softmax head is confident about queries it has never seen, so
*whether any route* is asked separately, of the embeddings. Candidate scores (higher = more in
scope), all computed from the training rows alone:

- ``nearest``: cosine to the nearest stored utterance;
- ``knn3`` / ``knn5`` / ``knn10``: kNN density, the mean cosine of the k nearest utterances;
- ``centroid``: cosine to the nearest route centroid (the normalized mean of its examples);
- ``head``: the head's blended top probability (what ranks the routes);

- blends: the sum of two of them, each standardized on in-scope rows.

Without out-of-scope examples, out-of-scope queries are *simulated*: the routes are split into k
folds; a fold's examples play queries for which no route exists, scored against the other routes
only, while the other routes' examples play in-scope queries, each scored leave-one-out (its own
row removed, as a real query is never one of the stored examples). Out-of-scope examples given
to ``fit`` (too few for a reject class) join the simulated ones. The score with the best
simulated AUROC is kept, and its thresholds are quantiles of the simulated scores of the in-scope
rows the ranking routes correctly: an operating point promises the share of queries that would
have been routed correctly and are refused (see :data:`OPERATING_POINTS`); queries the ranking
would misroute may be refused on top of it, which costs an agent nothing. On the public intent
sets the promise held on test within about a point (docs/fitting.md).

With ten or more out-of-scope examples (a reject class), the score is chosen the same way (the
real examples join the simulated ones) and refuses too when a threshold chosen on the held-out
rows does better than the reject class alone (:data:`WITH_OOS_EXAMPLES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidInputError

__all__ = [
    "DEFAULT_POINT",
    "WITH_OOS_EXAMPLES",
    "OPERATING_POINTS",
    "Refusal",
    "RefusalModel",
    "centroids",
    "check_refusal",
    "choose_refusal",
    "neighbour_scores",
    "refusal_scores",
]

#: Named operating points: the share of the in-scope queries the ranking would route correctly
#: that the refusal may turn away (what refusing costs the user; see docs/fitting.md).
OPERATING_POINTS: dict[str, float] = {"permissive": 0.005, "balanced": 0.02, "cautious": 0.05}
#: The default operating point (chosen on the route-holdout measurements in docs/fitting.md).
DEFAULT_POINT = "balanced"
#: The point of a refusal whose threshold was chosen on real out-of-scope examples (with a
#: reject class), not read off a promised in-scope share.
WITH_OOS_EXAMPLES = "out-of-scope examples"

_KNN = (3, 5, 10)
_GRID = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.10, 0.15, 0.20, 0.30)


def check_refusal(refusal: Any) -> float:
    """The in-scope refusal share of an operating point (a name or a share in [0, 0.5]).

    Raises:
        InvalidInputError: an unknown name or a share out of range.
    """
    if isinstance(refusal, str):
        if refusal not in OPERATING_POINTS:
            raise InvalidInputError(
                f"refusal must be one of {sorted(OPERATING_POINTS)} or a share in [0, 0.5], not {refusal!r}"
            )
        return OPERATING_POINTS[refusal]
    if isinstance(refusal, bool) or not isinstance(refusal, int | float) or not 0.0 <= refusal <= 0.5:
        raise InvalidInputError(f"refusal must be one of {sorted(OPERATING_POINTS)} or a share in [0, 0.5]")
    return float(refusal)


@dataclass
class RefusalModel:
    """What the distance scores need beside the query's nearest utterances: route centroids."""

    centroids: np.ndarray  # (r, d) unit centroids

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, n_routes: int) -> RefusalModel:
        return cls(centroids(X, y, n_routes))

    def scores(
        self, Q: np.ndarray, top_sims: np.ndarray, live: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Distance scores of query rows ``Q`` whose nearest stored cosines (best first,
        ``-inf`` padded) are ``top_sims``; ``live`` masks the routes that may be counted."""
        C = self.centroids if live is None else self.centroids[live]
        out = neighbour_scores(top_sims)
        out["centroid"] = (Q @ C.T).max(axis=1).astype(np.float64) if len(C) else np.full(len(Q), -1.0)
        return out


def centroids(X: np.ndarray, y: np.ndarray, n_routes: int) -> np.ndarray:
    """The unit mean of each route's rows (zero for a route without rows)."""
    sums = np.zeros((n_routes, X.shape[1]))
    np.add.at(sums, y, np.asarray(X, dtype=np.float64))
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.where(norms > 0, norms, 1)).astype(np.float32)


def neighbour_scores(top_sims: np.ndarray) -> dict[str, np.ndarray]:
    """``nearest`` and ``knn{k}`` from the nearest cosines of each row (best first)."""
    S = np.asarray(top_sims, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    out["nearest"] = np.where(np.isfinite(S[:, 0]), S[:, 0], -1.0) if S.shape[1] else np.full(len(S), -1.0)
    for k in _KNN:
        part = S[:, :k]
        out[f"knn{k}"] = np.where(np.isfinite(part), part, -1.0).sum(1) / max(1, part.shape[1])
    return out


def refusal_scores(
    Q: np.ndarray, X: np.ndarray, y: np.ndarray, n_routes: int, top_sims: np.ndarray
) -> dict[str, np.ndarray]:
    """Distance scores of queries ``Q`` against routes of rows ``(X, y)``, with a Mahalanobis
    score (one shared covariance, shrunk halfway to its mean variance) for comparison: the
    benchmarks use it. ``fit`` does not consider Mahalanobis: fitted on a few rows per route the
    covariance fits the training rows themselves, and thresholds set on them do not hold."""
    out = RefusalModel.fit(X, y, n_routes).scores(Q, top_sims)
    d = X.shape[1]
    counts = np.bincount(y, minlength=n_routes).astype(np.float64)
    sums = np.zeros((n_routes, d))
    np.add.at(sums, y, X)
    means = sums / np.maximum(counts, 1)[:, None]
    R = X - means[y]
    S = R.T @ R / max(1, len(X) - n_routes)
    S = 0.5 * S + 0.5 * (np.trace(S) / d) * np.eye(d)
    w, V = np.linalg.eigh(S)
    Wh = V / np.sqrt(np.maximum(w, 1e-9))
    Qw, Mw = Q @ Wh, means @ Wh
    d2 = (Qw * Qw).sum(1)[:, None] + (Mw * Mw).sum(1)[None, :] - 2 * Qw @ Mw.T
    out["mahalanobis"] = -np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    names = {
        "nearest": "nearest utterance",
        "knn5": "knn density",
        "centroid": "centroid",
        "mahalanobis": "mahalanobis",
    }
    return {names[k]: v for k, v in out.items() if k in names}


@dataclass
class Refusal:
    """The fitted refusal: the score, its standardization, its thresholds per operating point."""

    score: str  # a base score, or "a+b"
    norms: dict[str, tuple[float, float]]  # base score -> (mean, sd) on simulated in-scope rows
    thresholds: dict[str, float]  # operating point (name or share as text) -> threshold
    point: str
    model: RefusalModel
    auroc: float
    frontier: list[tuple[float, float]] = field(default_factory=list)  # (in-scope refused, oos recall)
    candidates: dict[str, float] = field(default_factory=dict)  # score -> simulated AUROC

    @property
    def threshold(self) -> float:
        return self.thresholds[self.point]

    def combine(self, base: Mapping[str, np.ndarray]) -> np.ndarray:
        parts = self.score.split("+")
        if len(parts) == 1:
            return np.asarray(base[parts[0]], dtype=np.float64)
        return sum((_std(base[p], self.norms[p]) for p in parts), np.zeros(len(base[parts[0]])))

    def values(
        self,
        Q: np.ndarray,
        top_sims: np.ndarray,
        head: np.ndarray,
        live: np.ndarray | None = None,
        energy: np.ndarray | None = None,
    ) -> np.ndarray:
        """The refusal score of queries ``Q`` (higher: more in scope), from their nearest stored
        cosines ``top_sims``, the head's blended top probability ``head`` and the energy of its
        logits (needed when the score reads it)."""
        base = self.model.scores(Q, top_sims, live)
        base["head"] = np.asarray(head, dtype=np.float64)
        if energy is not None:
            base["energy"] = np.asarray(energy, dtype=np.float64)
        return self.combine(base)

    def interpolate(self, share: float) -> float:
        """A threshold for an in-scope refusal share not computed by ``fit``, interpolated
        between the operating points' thresholds."""
        pts = sorted(
            (check_refusal(float(k)) if k not in OPERATING_POINTS else OPERATING_POINTS[k], t)
            for k, t in self.thresholds.items()
            if k != WITH_OOS_EXAMPLES
        )
        xs, ts = [p for p, _ in pts], [t for _, t in pts]
        return float(np.interp(share, xs, ts))

    def header(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "norms": {k: list(v) for k, v in self.norms.items()},
            "thresholds": self.thresholds,
            "point": self.point,
            "auroc": self.auroc,
            "frontier": [list(p) for p in self.frontier],
            "candidates": self.candidates,
        }

    @classmethod
    def from_header(cls, h: Mapping[str, Any], model: RefusalModel) -> Refusal:
        return cls(
            score=str(h["score"]),
            norms={k: (float(v[0]), float(v[1])) for k, v in h["norms"].items()},
            thresholds={k: float(v) for k, v in h["thresholds"].items()},
            point=str(h["point"]),
            model=model,
            auroc=float(h["auroc"]),
            frontier=[(float(a), float(b)) for a, b in h.get("frontier", [])],
            candidates={k: float(v) for k, v in h.get("candidates", {}).items()},
        )


def _std(v: np.ndarray, norm: tuple[float, float]) -> np.ndarray:
    return (np.asarray(v, dtype=np.float64) - norm[0]) / norm[1]


def _auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    sv = allv[order]
    _, first, counts = np.unique(sv, return_index=True, return_counts=True)
    ranks = np.empty(len(allv))
    ranks[order] = np.repeat(first + (counts - 1) / 2.0, counts) + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def choose_refusal(
    pos: Mapping[str, np.ndarray],
    neg: Mapping[str, np.ndarray],
    model: RefusalModel,
    point: str = DEFAULT_POINT,
    *,
    right: np.ndarray | None = None,
) -> Refusal:
    """Choose the refusal score and its thresholds from simulated in-scope (``pos``) and
    out-of-scope (``neg``) scores, one array per base score (see the module).

    The score with the best AUROC is kept (a single score before a blend on a tie). ``right``
    marks the in-scope rows the ranking routes correctly: each operating point's threshold is the
    quantile of *their* scores at its share, so a point promises the share of queries that would
    have been routed correctly and are refused (refusing a query the ranking would misroute is no
    loss to an agent). Without ``right`` (or with fewer than ten such rows) every in-scope row counts.
    """
    norms = {n: (float(v.mean()), float(v.std() + 1e-9)) for n, v in pos.items()}
    cands: dict[str, tuple[np.ndarray, np.ndarray]] = {n: (pos[n], neg[n]) for n in pos}
    names = list(pos)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            cands[f"{a}+{b}"] = (
                _std(pos[a], norms[a]) + _std(pos[b], norms[b]),
                _std(neg[a], norms[a]) + _std(neg[b], norms[b]),
            )
    aurocs = {n: _auroc(p, q) for n, (p, q) in cands.items()}
    best = max(aurocs, key=lambda n: (aurocs[n], -n.count("+")))
    p, q = cands[best]
    shares = {**OPERATING_POINTS, **{f"{s:g}": s for s in (0.0, *_GRID)}}
    if point not in shares:
        shares[point] = check_refusal(float(point))
    ref = p[right] if right is not None and int(np.count_nonzero(right)) >= 10 else p
    thresholds = {name: float(np.quantile(ref, s)) if s > 0 else -1e9 for name, s in shares.items()}
    frontier = [(s, float((q < np.quantile(ref, s)).mean())) for s in _GRID]
    return Refusal(
        score=best,
        norms={n: norms[n] for n in best.split("+")},
        thresholds=thresholds,
        point=point,
        model=model,
        auroc=round(aurocs[best], 4),
        frontier=[(round(a, 4), round(b, 4)) for a, b in frontier],
        candidates={n: round(v, 4) for n, v in sorted(aurocs.items(), key=lambda kv: -kv[1])[:8]},
    )
