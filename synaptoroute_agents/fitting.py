"""Learning from labelled examples: a calibrated softmax head blended with a neighbour vote.

Method (every setting chosen inside :func:`fit_policy` on held-out data, nothing by hand):

* **Head**: multinomial logistic regression on the embeddings (or on the encoder's head
  features when it has them, and on the words of the text when given), L2-regularized (strength
  chosen on held-out data along a warm-started path), temperature-calibrated (NLL on held-out
  data).
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
from .lexicon import Lexicon
from .routes import Reason
from .screen import FloatScan

__all__ = ["FittedPolicy", "fit_policy", "load_policy"]

log = logging.getLogger(__name__)

_FORMAT = "synaptoroute-policy"
_VERSION = 3
_READABLE = (1, 2, 3)  # version 1: embeddings only, no lexicon; version 2: no head features
_REJECT = "\x00out_of_scope"


# ---------------------------------------------------------------------- numerics
def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _design_logits(X: np.ndarray, F: Any, W: np.ndarray, scale: float, matmul: Any = None) -> np.ndarray:
    """Logits of the head for dense embeddings ``X`` (times ``scale``) and sparse lexical rows ``F``.

    ``matmul(a, b)``, when given, computes the dense product in place of NumPy's ``a @ b``.
    """
    d = X.shape[1]
    Z = (X @ W[:d] if matmul is None else matmul(X, W[:d])) * scale + W[-1]
    if F is not None:
        Z += F @ W[d:-1]
    return Z


def _fit_softmax(
    X: np.ndarray,
    y: np.ndarray,
    k: int,
    lam: float,
    init: np.ndarray | None = None,
    maxiter: int = 300,
    F: Any = None,
    scale: float = 1.0,
) -> np.ndarray:
    """L2-regularized multinomial logistic regression on ``[scale * X, F]``.

    Returns ``(d + d_lex + 1, k)`` weights (last row: the bias, not penalized).
    """
    n, d = X.shape
    dl = 0 if F is None else F.shape[1]
    rows = d + dl + 1
    Y = np.zeros((n, k), np.float32)
    rows_n = np.arange(n)
    Y[rows_n, y] = 1.0
    Ft = None if F is None else F.T.tocsr()

    def fg(w: np.ndarray) -> tuple[float, np.ndarray]:
        W = w.reshape(rows, k)  # float32 throughout (see _lbfgs)
        Z = _design_logits(X, F, W, scale)
        Z -= Z.max(axis=1, keepdims=True)
        true_z = Z[rows_n, y]
        np.exp(Z, out=Z)  # Z now holds exp(logits - max): one exponential serves loss and gradient
        total = Z.sum(axis=1)
        body = W[:-1]
        loss = float((np.log(total) - true_z).mean()) + 0.5 * lam * float((body * body).sum())
        Z /= total[:, None]
        Z -= Y
        R = Z / n
        G = np.empty_like(W)
        G[:d] = (X.T @ R) * scale
        if Ft is not None:
            G[d:-1] = Ft @ R
        G[:-1] += lam * body
        G[-1] = R.sum(axis=0)
        return loss, G.ravel()

    w0 = np.zeros(rows * k, np.float32) if init is None else init.astype(np.float32).ravel()
    return _lbfgs(fg, w0, maxiter).reshape(rows, k)


def _lbfgs(fg: Any, w: np.ndarray, maxiter: int, memory: int = 10, gtol: float = 1e-6) -> np.ndarray:
    """Minimize a smooth convex function with limited-memory BFGS (two-loop recursion).

    Backtracking (Armijo) line search; a curvature pair is kept only when ``s.y > 0``. Costs
    O(memory x n) per step besides ``fg``: with hundreds of thousands of weights this is
    several times cheaper than a bound-constrained L-BFGS-B, which the head does not need.
    """
    f, g = fg(w)
    g = g.astype(np.float32)
    hist: list[tuple[np.ndarray, np.ndarray, float]] = []
    for _ in range(maxiter):
        if float(np.abs(g).max()) < gtol:
            break
        q = g.copy()
        coefs = []
        for s, y, rho in reversed(hist):
            a = rho * float(s @ q)
            q -= a * y
            coefs.append(a)
        if hist:
            s, y, _rho = hist[-1]
            q *= float(s @ y) / float(y @ y)
        else:
            q *= 1.0 / max(1.0, float(np.linalg.norm(g)))
        for (s, y, rho), a in zip(hist, reversed(coefs), strict=True):
            q += s * (a - rho * float(y @ q))
        d = -q
        slope = float(g @ d)
        if slope >= 0:  # not a descent direction: restart from the gradient
            hist.clear()
            d = -g / max(1.0, float(np.linalg.norm(g)))
            slope = float(g @ d)
        step = 1.0
        while True:
            w_new = w + step * d
            f_new, g_new = fg(w_new)
            if f_new <= f + 1e-4 * step * slope or step < 1e-8:
                break
            step *= 0.5
        if step < 1e-8 and f_new > f:
            break
        g_new = g_new.astype(np.float32)
        s, y = w_new - w, g_new - g
        sy = float(s @ y)
        if sy > 1e-12:
            hist.append((s, y, 1.0 / sy))
            if len(hist) > memory:
                hist.pop(0)
        done = f - f_new < 1e-10 * max(1.0, abs(f))
        w, f, g = w_new, f_new, g_new
        if done:
            break
    return w


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
    lexicon: Lexicon | None = None  # lexical features of the query text (None: embeddings only)
    scale: float = 1.0  # weight of the embedding block against the unit-norm lexical block
    features: str | None = None  # the encoder's head features the head reads (None: the embeddings)

    #: the router passes the query texts to :meth:`decide` (the lexical features need them)
    uses_texts = True

    def __post_init__(self) -> None:
        self._col = {r: i for i, r in enumerate(self.routes)}

    # -- scoring
    def head_probs(
        self, Q: np.ndarray, texts: Sequence[str] | None = None, features: np.ndarray | None = None
    ) -> np.ndarray:
        """Calibrated head probabilities ``(b, k)`` (reject class last when present).

        ``features`` are the encoder's head features of the queries (when the head was fitted on
        them); without them the head reads the embeddings ``Q`` in their place, and without
        ``texts`` a lexical head leaves the words out (both less accurate).
        """
        if self.features is not None and features is not None and len(features) == len(Q):
            Q = np.asarray(features, dtype=np.float32)
        F = None
        if self.lexicon is not None:
            if texts is not None and len(texts) == len(Q):
                F = self.lexicon.transform(texts)
            else:
                log.debug("no query texts: the lexical features are left out")
        # At query time the product runs in onnxruntime, whose threads do not spin afterwards
        # for the CPU the encoder's next batch needs (NumPy's BLAS threads do; see FloatScan).
        scan = FloatScan.shared()
        try:
            Z = _design_logits(Q, F, self.weights, self.scale, None if scan is None else scan.matmul)
        except Exception as exc:  # onnxruntime failing on this input: NumPy answers
            log.warning("the head's product failed in onnxruntime (%s); using NumPy", exc)
            Z = _design_logits(Q, F, self.weights, self.scale)
        return _softmax(np.asarray(Z, dtype=np.float64) / self.temperature)

    def decide(
        self,
        Q: np.ndarray,
        neighbors: Sequence[Sequence[tuple[str, float]]],
        live_routes: Mapping[str, float | None],
        top_k: int = 1,
        texts: Sequence[str] | None = None,
        features: np.ndarray | None = None,
    ) -> list[tuple[list[tuple[str, float]], str | None, str]]:
        """Rank live routes by blended probability and decide (see :class:`ScoringPolicy`).

        ``texts`` are the cleaned query texts, one per row of ``Q`` (for the lexical features);
        ``features`` the encoder's head features of the queries (see :meth:`head_probs`).
        """
        P = self.head_probs(np.asarray(Q, dtype=np.float32), texts, features)
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
            "scale": self.scale,
            "features": self.features,
        }
        arrays: dict[str, np.ndarray] = {"weights": self.weights}
        if self.lexicon is not None:
            lex_header, lex_arrays = self.lexicon.to_state()
            header["lexicon"] = lex_header
            arrays.update(lex_arrays)
        buf = io.BytesIO()
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> FittedPolicy:
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                header = json.loads(bytes(z["header"]).decode())
                weights = np.array(z["weights"], dtype=np.float32)
                lexicon = (
                    Lexicon.from_state(header["lexicon"], {n: np.array(z[n]) for n in z.files})
                    if "lexicon" in header
                    else None
                )
        except Exception as exc:
            raise NotFittedError(f"the stored fitted state cannot be read: {exc}") from exc
        if header.get("format") != _FORMAT or header.get("version") not in _READABLE:
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
            lexicon=lexicon,
            scale=float(header.get("scale", 1.0)),
            features=header.get("features"),
        )


def load_policy(blob: bytes) -> FittedPolicy:
    """Read a policy written by :meth:`FittedPolicy.to_bytes`."""
    return FittedPolicy.from_bytes(blob)


# ---------------------------------------------------------------------- fitting
_LAMBDAS = (1e-4, 3e-5, 1e-5, 3e-6)  # strong to weak: a warm-started path
_ALPHAS = (0.0, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8)
_TAUS = (0.02, 0.05, 0.1)
_TEMPS = tuple(float(t) for t in np.geomspace(0.25, 4.0, 25))
_NEIGHBOURS = 32
_EMB_SCALE = 2.0  # embedding block weight next to the unit-norm lexical block
_LEX_PARAMS = 3_000_000  # at most about this many lexical weights (terms x classes)


def _splits(y: np.ndarray, seed: int, n_routes: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified held-out splits: one 80/20 split for large sets, k-fold for small ones.

    The number of folds follows the rarest route (out-of-scope rows, label ``n_routes``, are
    spread over the folds but do not limit them).
    """
    rng = np.random.default_rng(seed)
    n = len(y)
    counts = np.bincount(y)
    if n >= 3000:
        folds = 5
        use = 1
    else:
        routes_counts = counts[:n_routes]
        folds = int(min(5, max(2, routes_counts[routes_counts > 0].min())))
        use = folds
    fold_of = np.empty(n, np.int64)
    for c in np.flatnonzero(counts):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        fold_of[idx] = (np.arange(len(idx)) + rng.integers(folds)) % folds
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(use)]


@dataclass
class _Held:
    logits: dict[tuple[bool, float], list[np.ndarray]]
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
    refusal_budget: float = 0.01,
    texts: Sequence[str] | None = None,
    texts_val: Sequence[str] | None = None,
    lexical: bool = True,
    H: np.ndarray | None = None,
    H_val: np.ndarray | None = None,
    features: str | None = None,
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
        texts, texts_val: the example texts (one per row of ``X`` / ``X_val``); with them
            the head also reads lexical features (:class:`~synaptoroute_agents.lexicon.Lexicon`).
        lexical: set False to fit on the embeddings alone even when texts are given.
        H, H_val: the encoder's head features of the same rows (see
            :meth:`~synaptoroute_agents.encoders.bundled.BundledEncoder.embed_with_features`):
            the head reads them instead of ``X``; the neighbour vote always uses ``X``.
        features: the id of those features, kept with the policy.
    """
    # Many small BLAS calls between optimizer steps: one BLAS thread is as fast on an idle
    # machine and up to ten times faster on a busy one (idle BLAS threads spin for the CPU).
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_policy(
            X,
            labels,
            oos_label=oos_label,
            X_val=X_val,
            labels_val=labels_val,
            seed=seed,
            abstain_quantile=abstain_quantile,
            refusal_budget=refusal_budget,
            texts=texts,
            texts_val=texts_val,
            lexical=lexical,
            H=H,
            H_val=H_val,
            features=features,
        )


@dataclass
class _Fold:
    """One train/held-out split: embeddings (X), head features (H), labels, lexical rows (F)."""

    Xa: np.ndarray
    Ha: np.ndarray
    ya: np.ndarray
    Xb: np.ndarray
    Hb: np.ndarray
    yb: np.ndarray
    Fa: Any
    Fb: Any


def _fit_policy(
    X: np.ndarray,
    labels: Sequence[str],
    *,
    oos_label: str | None,
    X_val: np.ndarray | None,
    labels_val: Sequence[str] | None,
    seed: int,
    abstain_quantile: float,
    refusal_budget: float,
    texts: Sequence[str] | None,
    texts_val: Sequence[str] | None,
    lexical: bool,
    H: np.ndarray | None,
    H_val: np.ndarray | None,
    features: str | None,
) -> FittedPolicy:
    X = np.ascontiguousarray(X, dtype=np.float32)
    labels = list(labels)
    if X.ndim != 2 or len(X) != len(labels):
        raise InvalidInputError("X must be (n, d) with one label per row")
    if (H is None) != (features is None) or (H_val is not None and H is None):
        raise InvalidInputError("head features need H (and H_val with X_val) and their id")
    # Xh: what the head reads; X: what the neighbour vote reads (the index's embeddings)
    Xh = X if H is None else np.ascontiguousarray(H, dtype=np.float32)
    if Xh.shape[0] != X.shape[0]:
        raise InvalidInputError("H must have one row per row of X")
    routes = sorted({lab for lab in labels if lab != oos_label})
    if not routes:
        raise InvalidInputError("fit needs examples of at least one route")
    has_val = X_val is not None and labels_val is not None
    all_labels = labels + (list(labels_val) if labels_val is not None and has_val else [])
    n_oos = sum(1 for lab in all_labels if oos_label is not None and lab == oos_label)
    reject = n_oos >= 10
    classes = routes + ([_REJECT] if reject else [])
    col = {r: i for i, r in enumerate(classes)}

    n_routes = len(routes)

    # Out-of-scope examples are n_routes: the reject class when there is one; otherwise rows the
    # head never trains on but that still show the threshold what to refuse.
    def encode(labs: Sequence[str]) -> np.ndarray:
        return np.array([n_routes if lab == oos_label else col.get(lab, -1) for lab in labs], np.int64)

    try_lex = lexical and texts is not None and (not has_val or texts_val is not None)
    if texts is not None and len(texts) != len(labels):
        raise InvalidInputError("texts must have one entry per row of X")
    y = encode(labels)
    keep = y >= 0
    X, Xh, y = X[keep], Xh[keep], y[keep]
    k = len(classes)
    lexicon: Lexicon | None = None
    F: Any = None
    Fv: Any = None
    scale = 1.0
    if try_lex:
        assert texts is not None
        kept_texts = [t for t, kk in zip(texts, keep, strict=True) if kk]
        val_texts: list[str] = []
        if has_val:
            assert texts_val is not None and labels_val is not None
            if len(texts_val) != len(labels_val):
                raise InvalidInputError("texts_val must have one entry per validation row")
            val_texts = [t for t, lab in zip(texts_val, labels_val, strict=True) if encode([lab])[0] >= 0]
        # One vocabulary for every split, so the final fit warm-starts from the held-out path.
        lexicon = Lexicon.fit(kept_texts + val_texts, max_terms=max(1000, _LEX_PARAMS // (2 * k)))
        F = lexicon.transform(kept_texts)
        Fv = lexicon.transform(val_texts) if has_val else None
        scale = _EMB_SCALE
    if has_val:
        assert X_val is not None and labels_val is not None
        yv = encode(labels_val)
        kv = yv >= 0
        Xv = np.ascontiguousarray(X_val, dtype=np.float32)
        Xhv = Xv if H is None else np.ascontiguousarray(H_val, dtype=np.float32)
        if H is not None and Xhv.shape[0] != Xv.shape[0]:
            raise InvalidInputError("H_val must have one row per row of X_val")
        Xv, Xhv, yv = Xv[kv], Xhv[kv], yv[kv]
        folds = [_Fold(X, Xh, y, Xv, Xhv, yv, F, Fv)]
    else:
        folds = [
            _Fold(
                X[a], Xh[a], y[a], X[b], Xh[b], y[b], None if F is None else F[a], None if F is None else F[b]
            )
            for a, b in _splits(y, seed, n_routes)
        ]

    # Held-out logits along the regularization path, and held-out neighbours.
    # Two candidate heads: embeddings alone, and embeddings with lexical features (when the
    # texts are known). The held-out accuracy picks the head and its regularization together.
    variants = [False, True] if lexicon is not None else [False]
    held = _Held({(v, lam): [] for v in variants for lam in _LAMBDAS}, [], [], [])
    path: dict[tuple[bool, float], np.ndarray] = {}
    for fold in folds:
        ya, Ha, Fa = fold.ya, fold.Ha, fold.Fa
        trainable = ya < k
        if not trainable.all():
            Ha, ya = Ha[trainable], ya[trainable]
            Fa = None if Fa is None else Fa[trainable]
        for v in variants:
            W = None
            sc = scale if v else 1.0
            for lam in _LAMBDAS:
                W = _fit_softmax(Ha, ya, k, lam, init=W, maxiter=150, F=Fa if v else None, scale=sc)
                path[(v, lam)] = W
                held.logits[(v, lam)].append(_design_logits(fold.Hb, fold.Fb if v else None, W, sc))
        route_rows = fold.ya < len(routes)  # the index holds route utterances only
        ni, ns = _neighbours(fold.Xb, fold.Xa[route_rows], fold.ya[route_rows], _NEIGHBOURS)
        held.nb_idx.append(ni)
        held.nb_sim.append(ns)
        held.y.append(fold.yb)
    yh = np.concatenate(held.y)
    ni = np.concatenate(held.nb_idx)
    ns = np.concatenate(held.nb_sim)
    valid = np.isfinite(ns)
    in_scope = yh < n_routes

    # Regularization by held-out accuracy (in-scope, top-1 among routes), then temperature by NLL.
    def acc_of(L: np.ndarray) -> float:
        return (
            float((L[in_scope, :n_routes].argmax(axis=1) == yh[in_scope]).mean()) if in_scope.any() else 0.0
        )

    lam_scores = {key: acc_of(np.concatenate(ls)) for key, ls in held.logits.items()}
    # Ties go to the lexical head (words rarely hurt a regularized head; on the public intent
    # sets they helped by about a point) and to the stronger regularization.
    use_lex, lam = max(lam_scores, key=lambda key: (lam_scores[key], key[0], -key[1]))
    if not use_lex:
        lexicon, F, Fv, scale = None, None, None, 1.0
    L = np.concatenate(held.logits[(use_lex, lam)]).astype(np.float64)

    known = yh < k  # rows of a class the head has (not out-of-scope rows without a reject class)

    def nll(t: float) -> float:
        P = _softmax(L[known] / t)
        return float(-np.log(P[np.arange(len(P)), yh[known]] + 1e-12).mean())

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
        # a budget cannot be finer than one held-out query: with fewer than 1/budget of them,
        # one refusal is allowed (else a few out-of-scope examples would switch refusing off)
        allowed = max(refusal_budget, 1.0 / max(1, in_scope.sum())) if refusal_budget > 0 else 0.0
        for t in cands:
            ok_in = (right & (top >= t)).sum() / max(1, in_scope.sum())
            if base_right - ok_in > allowed:
                break
            rec = ((top[is_oos] < t) | rejected[is_oos]).mean()
            j = ok_in + rec
            if j > best_j:
                best_t, best_j = float(t), float(j)
        threshold = best_t
    else:
        threshold = float(np.quantile(top[in_scope], abstain_quantile)) if in_scope.any() else 0.0

    # Refit the head on everything with the chosen strength.
    F_all = F
    if has_val:
        X_all, y_all = np.vstack([Xh, folds[0].Hb]), np.concatenate([y, folds[0].yb])
        if F is not None:
            from scipy.sparse import vstack as sparse_vstack

            F_all = sparse_vstack([F, Fv]).tocsr()
    else:
        X_all, y_all = Xh, y
    trainable = y_all < k
    if not trainable.all():
        X_all, y_all = X_all[trainable], y_all[trainable]
        F_all = None if F_all is None else F_all[trainable]
    # warm start from the held-out fit at the chosen strength: a few iterations suffice
    W = _fit_softmax(X_all, y_all, k, lam, init=path[(use_lex, lam)], maxiter=100, F=F_all, scale=scale)
    settings = {
        "l2": lam,
        "temperature": round(temp, 4),
        "vote_weight": alpha,
        "vote_tau": tau,
        "threshold": round(threshold, 4),
        "reject_class": reject,
        "held_out": "validation" if has_val else f"{len(folds)} stratified split(s)",
        "held_out_accuracy": round(best[0], 4),
        "lexical_terms": 0 if lexicon is None else lexicon.dim,
        "head_features": features or "embeddings",
        "held_out_head_accuracy": {
            ("lexical" if v else "embedding"): round(max(lam_scores[(v, lm)] for lm in _LAMBDAS), 4)
            for v in variants
        },
    }
    log.info("fitted policy: %s", settings)
    return FittedPolicy(routes, W, temp, alpha, tau, threshold, reject, settings, lexicon, scale, features)
