"""Learning from labelled examples: a calibrated softmax head blended with a neighbour vote.

Method (every setting chosen inside :func:`fit_policy` on held-out data, nothing by hand):

* **Head**: multinomial logistic regression on the embeddings, L2-regularized (strength chosen
  on held-out data along a warm-started path), temperature-calibrated (NLL on held-out data).
  Examples labelled out-of-scope form an extra *reject* class when there are enough of them.
* **Neighbour vote**: the query's nearest stored utterances vote for their routes with weights
  ``exp(cosine / tau)``; the head and the vote are mixed ``(1 - a) * head + a * vote``.
* **Abstaining**: the reject class winning gives ``out_of_scope``; a top probability below the
  fitted threshold gives ``below_threshold``. With out-of-scope examples the threshold maximizes
  ``in-scope accuracy + out-of-scope recall`` on held-out data within a budget of in-scope
  refusals; without them it refuses the least confident ``abstain_quantile`` of held-out queries.
* **Held-out data**: the ``validation`` set when given; otherwise a stratified 20% split for
  large sets and stratified k-fold cross-validation for small ones.

Routes added after a fit take part at once: the head does not know them, so they are scored by
the neighbour vote alone (and a stale head never outvotes a route whose neighbours all agree).
Routes deleted after a fit are never returned. A route's own threshold (a cosine) still applies:
its nearest utterance must reach it.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InvalidInputError, NotFittedError
from .routes import Reason

__all__ = ["FittedPolicy", "fit_policy", "load_policy"]

log = logging.getLogger(__name__)

_FORMAT = "synaptoroute-policy"
_VERSION = 1
_REJECT = "\x00out_of_scope"


# ---------------------------------------------------------------------- numerics
def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _fit_softmax(
    X: np.ndarray, y: np.ndarray, k: int, lam: float, init: np.ndarray | None = None, maxiter: int = 300
) -> np.ndarray:
    """L2-regularized multinomial logistic regression; returns ``(d + 1, k)`` (last row: bias)."""
    from scipy.optimize import minimize

    n, d = X.shape
    Xb = np.hstack([X, np.ones((n, 1), np.float32)]).astype(np.float32)
    Y = np.zeros((n, k), np.float32)
    Y[np.arange(n), y] = 1.0
    reg = np.ones((d + 1, 1), np.float32)
    reg[-1] = 0.0  # no penalty on the bias

    def fg(w: np.ndarray) -> tuple[float, np.ndarray]:
        W = w.reshape(d + 1, k).astype(np.float32)
        Z = Xb @ W
        Z -= Z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(Z).sum(axis=1))
        loss = float((lse - (Z * Y).sum(axis=1)).mean()) + 0.5 * lam * float((reg * W * W).sum())
        P = np.exp(Z - lse[:, None])
        G = Xb.T @ (P - Y) / n + lam * reg * W
        return loss, G.astype(np.float64).ravel()

    w0 = np.zeros((d + 1) * k) if init is None else init.astype(np.float64).ravel()
    res = minimize(fg, w0, jac=True, method="L-BFGS-B", options={"maxiter": maxiter, "gtol": 1e-6})
    return np.asarray(res.x, dtype=np.float32).reshape(d + 1, k)


def _vote(idx: np.ndarray, sims: np.ndarray, valid: np.ndarray, k: int, tau: float) -> np.ndarray:
    """Neighbour vote: rows of ``idx``/``sims`` (class index, cosine) -> ``(n, k)`` probabilities."""
    n = idx.shape[0]
    w = np.where(valid, np.exp((sims - np.where(valid, sims, -np.inf).max(axis=1, keepdims=True)) / tau), 0.0)
    P = np.zeros((n, k), np.float64)
    rows = np.repeat(np.arange(n), idx.shape[1])
    np.add.at(P, (rows, np.where(valid, idx, 0).ravel()), w.ravel())
    s = P.sum(axis=1, keepdims=True)
    return P / np.where(s > 0, s, 1.0)


def _neighbours(
    Xq: np.ndarray, Xs: np.ndarray, ys: np.ndarray, m: int, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``m`` neighbours of each query row among ``Xs`` (exact): (class idx, cosine)."""
    out_i = np.empty((len(Xq), m), np.int64)
    out_s = np.empty((len(Xq), m), np.float32)
    for start in range(0, len(Xq), 1024):
        S = Xq[start : start + 1024] @ Xs.T
        if exclude_self:
            rng = np.arange(start, min(start + 1024, len(Xq)))
            S[np.arange(len(rng)), rng] = -np.inf
        mm = min(m, S.shape[1])
        top = np.argpartition(-S, mm - 1, axis=1)[:, :mm]
        sc = np.take_along_axis(S, top, axis=1)
        order = np.argsort(-sc, axis=1)
        top = np.take_along_axis(top, order, axis=1)
        sc = np.take_along_axis(sc, order, axis=1)
        if mm < m:
            top = np.pad(top, ((0, 0), (0, m - mm)))
            sc = np.pad(sc, ((0, 0), (0, m - mm)), constant_values=-np.inf)
        out_i[start : start + len(S)] = ys[top]
        out_s[start : start + len(S)] = sc
    return out_i, out_s


# ---------------------------------------------------------------------- the policy
@dataclass
class FittedPolicy:
    """A learned scoring policy (see the module docstring). Safe to share between threads."""

    routes: list[str]
    weights: np.ndarray  # (d + 1, k) with the reject class last when `reject`
    temperature: float
    alpha: float
    tau: float
    threshold: float
    reject: bool
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._col = {r: i for i, r in enumerate(self.routes)}

    # -- scoring
    def head_probs(self, Q: np.ndarray) -> np.ndarray:
        """Calibrated head probabilities ``(b, k)`` (reject class last when present)."""
        W = self.weights
        Z = (Q @ W[:-1] + W[-1]) / self.temperature
        return _softmax(Z.astype(np.float64))

    def decide(
        self,
        Q: np.ndarray,
        neighbors: Sequence[Sequence[tuple[str, float]]],
        live_routes: Mapping[str, float | None],
        top_k: int = 1,
    ) -> list[tuple[list[tuple[str, float]], str | None, str]]:
        """Rank live routes by blended probability and decide (see :class:`ScoringPolicy`)."""
        P = self.head_probs(np.asarray(Q, dtype=np.float32))
        n_routes = len(self.routes)
        out: list[tuple[list[tuple[str, float]], str | None, str]] = []
        for qi, pairs in enumerate(neighbors):
            vote: dict[str, float] = {}
            nearest: dict[str, float] = {}
            live_pairs = [(n, s) for n, s in pairs if n in live_routes]
            if live_pairs:
                top = max(s for _, s in live_pairs)
                for name, s in live_pairs:
                    vote[name] = vote.get(name, 0.0) + float(np.exp((s - top) / self.tau))
                    if name not in nearest:
                        nearest[name] = s
                total = sum(vote.values())
                for name in vote:
                    vote[name] /= total
            head = P[qi]
            cand = set(vote)
            if n_routes:
                kk = min(n_routes, max(top_k, 5))
                for c in np.argpartition(-head[:n_routes], kk - 1)[:kk].tolist():
                    if self.routes[c] in live_routes:
                        cand.add(self.routes[c])
            scores: dict[str, float] = {}
            for name in cand:
                col = self._col.get(name)
                v = vote.get(name, 0.0)
                # a route the head has never seen (added after the fit) is scored by its vote alone
                scores[name] = v if col is None else (1 - self.alpha) * float(head[col]) + self.alpha * v
            ranked = sorted(scores.items(), key=lambda kv: -kv[1])
            if not ranked:
                out.append(([], None, str(Reason.BELOW_THRESHOLD)))
                continue
            name, score = ranked[0]
            p_reject = float(head[n_routes]) if self.reject else 0.0
            own = live_routes.get(name)
            if self.reject and (1 - self.alpha) * p_reject > score:
                out.append((ranked, None, str(Reason.OUT_OF_SCOPE)))
            elif score < self.threshold or (own is not None and nearest.get(name, -1.0) < own):
                out.append((ranked, None, str(Reason.BELOW_THRESHOLD)))
            else:
                out.append((ranked, name, str(Reason.MATCHED)))
        return out

    def passes(self, name: str, score: float, live_routes: Mapping[str, float | None]) -> bool:
        """True when a candidate's blended probability reaches the fitted threshold."""
        return name in live_routes and score >= self.threshold

    # -- persistence (no pickle)
    def to_bytes(self) -> bytes:
        header = {
            "format": _FORMAT,
            "version": _VERSION,
            "routes": self.routes,
            "temperature": self.temperature,
            "alpha": self.alpha,
            "tau": self.tau,
            "threshold": self.threshold,
            "reject": self.reject,
            "settings": self.settings,
        }
        buf = io.BytesIO()
        np.savez(buf, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), weights=self.weights)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> FittedPolicy:
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                header = json.loads(bytes(z["header"]).decode())
                weights = np.array(z["weights"], dtype=np.float32)
        except Exception as exc:
            raise NotFittedError(f"the stored fitted state cannot be read: {exc}") from exc
        if header.get("format") != _FORMAT or header.get("version") != _VERSION:
            raise NotFittedError("the stored fitted state has an unknown format; fit again")
        return cls(
            routes=list(header["routes"]),
            weights=weights,
            temperature=float(header["temperature"]),
            alpha=float(header["alpha"]),
            tau=float(header["tau"]),
            threshold=float(header["threshold"]),
            reject=bool(header["reject"]),
            settings=dict(header.get("settings", {})),
        )


def load_policy(blob: bytes) -> FittedPolicy:
    """Read a policy written by :meth:`FittedPolicy.to_bytes`."""
    return FittedPolicy.from_bytes(blob)


# ---------------------------------------------------------------------- fitting
_LAMBDAS = (1e-4, 3e-5, 1e-5, 3e-6)  # strong to weak: a warm-started path
_ALPHAS = (0.0, 0.1, 0.2, 0.35, 0.5)
_TAUS = (0.02, 0.05, 0.1)
_TEMPS = tuple(float(t) for t in np.geomspace(0.25, 4.0, 25))
_NEIGHBOURS = 32


def _splits(y: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified held-out splits: one 80/20 split for large sets, k-fold for small ones."""
    rng = np.random.default_rng(seed)
    n = len(y)
    counts = np.bincount(y)
    if n >= 3000:
        folds = 5
        use = 1
    else:
        folds = int(min(5, max(2, counts[counts > 0].min())))
        use = folds
    fold_of = np.empty(n, np.int64)
    for c in np.flatnonzero(counts):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        fold_of[idx] = (np.arange(len(idx)) + rng.integers(folds)) % folds
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(use)]


@dataclass
class _Held:
    logits: dict[float, list[np.ndarray]]
    nb_idx: list[np.ndarray]
    nb_sim: list[np.ndarray]
    y: list[np.ndarray]


def fit_policy(
    X: np.ndarray,
    labels: Sequence[str],
    *,
    oos_label: str | None = None,
    X_val: np.ndarray | None = None,
    labels_val: Sequence[str] | None = None,
    seed: int = 0,
    abstain_quantile: float = 0.01,
    refusal_budget: float = 0.02,
) -> FittedPolicy:
    """Fit a :class:`FittedPolicy` on unit embeddings ``X`` labelled with route names.

    Args:
        X: ``(n, d)`` unit embeddings of the examples.
        labels: the route of each example, or ``oos_label``.
        oos_label: the label of examples that must be refused.
        X_val, labels_val: held-out examples used to choose settings (else cross-validation).
        seed: seed of the splits.
        abstain_quantile: without out-of-scope examples, the share of held-out in-scope
            queries the threshold may refuse.
        refusal_budget: with out-of-scope examples, the most in-scope held-out queries the
            threshold may refuse beyond those the head already gets wrong.
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    labels = list(labels)
    if X.ndim != 2 or len(X) != len(labels):
        raise InvalidInputError("X must be (n, d) with one label per row")
    routes = sorted({lab for lab in labels if lab != oos_label})
    if not routes:
        raise InvalidInputError("fit needs examples of at least one route")
    has_val = X_val is not None and labels_val is not None
    all_labels = labels + (list(labels_val) if labels_val is not None and has_val else [])
    n_oos = sum(1 for lab in all_labels if oos_label is not None and lab == oos_label)
    reject = n_oos >= 10
    classes = routes + ([_REJECT] if reject else [])
    col = {r: i for i, r in enumerate(classes)}

    def encode(labs: Sequence[str]) -> np.ndarray:
        return np.array([col.get(_REJECT if lab == oos_label else lab, -1) for lab in labs], np.int64)

    y = encode(labels)
    keep = y >= 0
    X, y = X[keep], y[keep]
    k = len(classes)
    if has_val:
        assert X_val is not None and labels_val is not None
        yv = encode(labels_val)
        kv = yv >= 0
        Xv, yv = np.ascontiguousarray(X_val, dtype=np.float32)[kv], yv[kv]
        folds = [(X, y, Xv, yv)]
    else:
        folds = [(X[a], y[a], X[b], y[b]) for a, b in _splits(y, seed)]

    # Held-out logits along the regularization path, and held-out neighbours.
    held = _Held({lam: [] for lam in _LAMBDAS}, [], [], [])
    path: dict[float, np.ndarray] = {}
    for Xa, ya, Xb, yb in folds:
        W = None
        for lam in _LAMBDAS:
            W = _fit_softmax(Xa, ya, k, lam, init=W, maxiter=150)
            path[lam] = W
            held.logits[lam].append(Xb @ W[:-1] + W[-1])
        route_rows = ya < len(routes)  # the index holds route utterances only
        ni, ns = _neighbours(Xb, Xa[route_rows], ya[route_rows], _NEIGHBOURS)
        held.nb_idx.append(ni)
        held.nb_sim.append(ns)
        held.y.append(yb)
    yh = np.concatenate(held.y)
    ni = np.concatenate(held.nb_idx)
    ns = np.concatenate(held.nb_sim)
    valid = np.isfinite(ns)
    n_routes = len(routes)
    in_scope = yh < n_routes

    # Regularization by held-out accuracy (in-scope, top-1 among routes), then temperature by NLL.
    def acc_of(L: np.ndarray) -> float:
        return (
            float((L[in_scope, :n_routes].argmax(axis=1) == yh[in_scope]).mean()) if in_scope.any() else 0.0
        )

    lam_scores = {lam: acc_of(np.concatenate(ls)) for lam, ls in held.logits.items()}
    lam = max(_LAMBDAS, key=lambda v: (lam_scores[v], -v))
    L = np.concatenate(held.logits[lam]).astype(np.float64)

    def nll(t: float) -> float:
        P = _softmax(L / t)
        return float(-np.log(P[np.arange(len(yh)), yh] + 1e-12).mean())

    temp = min(_TEMPS, key=nll)
    Ph = _softmax(L / temp)

    # Blend with the neighbour vote.
    best: tuple[float, float, float, float] | None = None
    for tau in _TAUS:
        V = _vote(ni, ns, valid, k, tau)
        for a in _ALPHAS:
            B = (1 - a) * Ph[:, :n_routes] + a * V[:, :n_routes]
            acc = float((B[in_scope].argmax(axis=1) == yh[in_scope]).mean()) if in_scope.any() else 0.0
            ll = float(-np.log(B[in_scope, yh[in_scope]] + 1e-12).mean()) if in_scope.any() else 0.0
            if best is None or (acc, -ll) > (best[0], -best[1]):
                best = (acc, ll, a, tau)
    assert best is not None
    _acc, _ll, alpha, tau = best
    V = _vote(ni, ns, valid, k, tau)
    B = (1 - alpha) * Ph[:, :n_routes] + alpha * V[:, :n_routes]
    top = B.max(axis=1)
    pred = B.argmax(axis=1)
    rejected = (1 - alpha) * Ph[:, n_routes] > top if reject else np.zeros(len(yh), bool)

    # Threshold.
    is_oos = ~in_scope
    if is_oos.any():
        right = (pred == yh) & in_scope & ~rejected
        base_right = right.sum() / max(1, in_scope.sum())
        cands = np.unique(np.concatenate([[0.0], top]))
        best_t, best_j = 0.0, -np.inf
        for t in cands:
            ok_in = (right & (top >= t)).sum() / max(1, in_scope.sum())
            if base_right - ok_in > refusal_budget:
                break
            rec = ((top[is_oos] < t) | rejected[is_oos]).mean()
            j = ok_in + rec
            if j > best_j:
                best_t, best_j = float(t), float(j)
        threshold = best_t
    else:
        threshold = float(np.quantile(top[in_scope], abstain_quantile)) if in_scope.any() else 0.0

    # Refit the head on everything with the chosen strength.
    if has_val:
        X_all, y_all = np.vstack([X, folds[0][2]]), np.concatenate([y, folds[0][3]])
    else:
        X_all, y_all = X, y
    # warm start from the held-out fit at the chosen strength: a few iterations suffice
    W = _fit_softmax(X_all, y_all, k, lam, init=path[lam], maxiter=100)
    settings = {
        "l2": lam,
        "temperature": round(temp, 4),
        "vote_weight": alpha,
        "vote_tau": tau,
        "threshold": round(threshold, 4),
        "reject_class": reject,
        "held_out": "validation" if has_val else f"{len(folds)} stratified split(s)",
        "held_out_accuracy": round(best[0], 4),
    }
    log.info("fitted policy: %s", settings)
    return FittedPolicy(routes, W, temp, alpha, tau, threshold, reject, settings)
