"""Training and model selection: every setting of the fitted head chosen on held-out data.

:func:`fit` runs the steps in order: encode the labels (:class:`_Problem`), build the lexical
features and the held-out folds (:func:`_folds`), fit the head along a warm-started
regularization path on each fold (:func:`_held_out_path`), pick the head and its strength,
then the temperature (:func:`_choose_head`), the blend with the neighbour vote
(:func:`_choose_blend`) and the threshold (:func:`_choose_threshold`), and refit on everything
(:func:`_refit`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .data import FitData, LabelledSet
from .head import REJECT, FittedPolicy
from .lexicon import Lexicon
from .numerics import design_logits, fit_softmax, neighbours, softmax, vote
from .oos import (
    DEFAULT_POINT,
    WITH_OOS_EXAMPLES,
    Refusal,
    RefusalModel,
    centroids,
    check_refusal,
    choose_refusal,
    neighbour_scores,
)

__all__ = ["fit", "fit_policy"]

log = logging.getLogger(__name__)

_LAMBDAS = (1e-4, 3e-5, 1e-5, 3e-6)  # strong to weak: a warm-started path
_ALPHAS = (0.0, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8)
_TAUS = (0.02, 0.05, 0.1)
_TEMPS = tuple(float(t) for t in np.geomspace(0.25, 4.0, 25))
_NEIGHBOURS = 32
_EMB_SCALE = 2.0  # embedding block weight next to the unit-norm lexical block
_LEX_PARAMS = 3_000_000  # at most about this many lexical weights (terms x classes)


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
    refusal: str | float = DEFAULT_POINT,
) -> FittedPolicy:
    """Fit a :class:`FittedPolicy` on unit embeddings ``X`` labelled with route names.

    The same as :func:`fit` on a :class:`FitData` built from these arrays.

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
            the head also reads lexical features (:class:`~synaptoroute_agents.fitting.lexicon.Lexicon`).
        lexical: set False to fit on the embeddings alone even when texts are given.
        H, H_val: the encoder's head features of the same rows (see
            :meth:`~synaptoroute_agents.encoders.bundled.BundledEncoder.embed_with_features`):
            the head reads them instead of ``X``; the neighbour vote always uses ``X``.
        features: the id of those features, kept with the policy.
        refusal: the operating point of the refusal (see :mod:`.oos`).
    """
    if H_val is not None and H is None:
        raise InvalidInputError("head features need H (and H_val with X_val) and their id")
    validation = None
    if X_val is not None and labels_val is not None:
        if texts_val is not None and len(texts_val) != len(labels_val):
            raise InvalidInputError("texts_val must have one entry per validation row")
        if H is not None and (H_val is None or len(H_val) != len(X_val)):
            raise InvalidInputError("H_val must have one row per row of X_val")
        validation = LabelledSet(
            X_val, list(labels_val), None if texts_val is None else list(texts_val), H_val
        )
    data = FitData(
        train=LabelledSet(X, list(labels), None if texts is None else list(texts), H),
        validation=validation,
        oos_label=oos_label,
        features=features,
        seed=seed,
        refusal_budget=refusal_budget,
        abstain_quantile=abstain_quantile,
        lexical=lexical,
        refusal=refusal,
    )
    return fit(data)


def fit(data: FitData) -> FittedPolicy:
    """Fit the built-in head (the ``"fitted"`` policy kind) on prepared examples."""
    # Many small BLAS calls between optimizer steps: one BLAS thread is as fast on an idle
    # machine and up to ten times faster on a busy one (idle BLAS threads spin for the CPU).
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(data)


@dataclass
class _Problem:
    """The classes of a fit: routes (sorted), then the reject class when there is one."""

    routes: list[str]
    reject: bool
    oos_label: str | None

    def __post_init__(self) -> None:
        classes = self.routes + ([REJECT] if self.reject else [])
        self.col = {r: i for i, r in enumerate(classes)}
        self.k = len(classes)
        self.n_routes = len(self.routes)

    def encode(self, labs: Sequence[str]) -> np.ndarray:
        """Class indices; out-of-scope rows are ``n_routes`` (the reject class when there is
        one, else rows the head never trains on that still show the threshold what to refuse);
        -1 for labels of no class."""
        n, oos, col = self.n_routes, self.oos_label, self.col
        return np.array([n if lab == oos else col.get(lab, -1) for lab in labs], np.int64)


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


@dataclass
class _Rows:
    """The training rows the head may learn from, with their lexical features."""

    X: np.ndarray  # what the neighbour vote reads (the index's embeddings)
    Xh: np.ndarray  # what the head reads (X or the encoder's head features)
    y: np.ndarray
    lexicon: Lexicon | None
    F: Any
    Fv: Any
    scale: float


@dataclass
class _Held:
    """Held-out predictions over every fold, concatenated."""

    logits: dict[tuple[bool, float], np.ndarray]
    nb_idx: np.ndarray
    nb_sim: np.ndarray
    y: np.ndarray
    path: dict[tuple[bool, float], np.ndarray]  # the last fold's weights, per (lexical, l2)
    centroid: np.ndarray  # cosine to the nearest centroid of the fold's training routes


def _fit(data: FitData) -> FittedPolicy:
    train, val = data.train, data.validation
    routes = sorted({lab for lab in train.labels if lab != data.oos_label})
    if not routes:
        raise InvalidInputError("fit needs examples of at least one route")
    all_labels = train.labels + (val.labels if val is not None else [])
    n_oos = sum(1 for lab in all_labels if data.oos_label is not None and lab == data.oos_label)
    if val is None:
        counts: dict[str, int] = {}
        for lab in train.labels:
            counts[lab] = counts.get(lab, 0) + 1
        if all(counts[r] < 2 for r in routes):
            raise InvalidInputError(
                "fit chooses its settings on held-out examples and needs two examples of at least "
                f"one route (or a validation set); every label has one: {routes[:10]}"
            )
    prob = _Problem(routes, n_oos >= 10, data.oos_label)
    rows = _rows(data, prob)
    folds = _folds(data, prob, rows)
    variants = [False, True] if rows.lexicon is not None else [False]
    held = _held_out_path(folds, variants, prob, rows.scale)
    use_lex, lam, lam_scores, temp = _choose_head(held, prob)
    if not use_lex:
        rows.lexicon, rows.F, rows.Fv, rows.scale = None, None, None, 1.0
    Ph = softmax(held.logits[(use_lex, lam)] / temp)
    acc, alpha, tau = _choose_blend(held, Ph, prob)
    refusal = _fit_refusal(data, prob, rows, held, Ph, (use_lex, lam, temp, alpha, tau))
    threshold = _choose_threshold(held, Ph, prob, alpha, tau, data, refusal is not None and not prob.reject)
    if prob.reject and refusal is not None:
        if check_refusal(data.refusal) == 0:  # refusal=0: no refusal score, the reject class alone
            refusal = None
        else:
            threshold, refusal = _with_reject_class(held, Ph, prob, alpha, tau, data, threshold, refusal)
    W = _refit(rows, folds, val is not None, prob, lam, held.path[(use_lex, lam)])
    settings = {
        "l2": lam,
        "temperature": round(temp, 4),
        "vote_weight": alpha,
        "vote_tau": tau,
        "threshold": round(threshold, 4),
        "reject_class": prob.reject,
        "held_out": "validation" if val is not None else f"{len(folds)} stratified split(s)",
        "held_out_accuracy": round(acc, 4),
        "lexical_terms": 0 if rows.lexicon is None else rows.lexicon.dim,
        "head_features": data.features or "embeddings",
        "held_out_head_accuracy": {
            ("lexical" if v else "embedding"): round(max(lam_scores[(v, lm)] for lm in _LAMBDAS), 4)
            for v in variants
        },
    }
    if refusal is not None:
        settings["refusal"] = {
            "score": refusal.score,
            "point": refusal.point,
            "threshold": round(refusal.threshold, 4),
            "simulated_auroc": refusal.auroc,
            "frontier": [list(p) for p in refusal.frontier],
            "candidates": refusal.candidates,
        }
    log.info("fitted policy: %s", settings)
    return FittedPolicy(
        routes,
        W,
        temp,
        alpha,
        tau,
        threshold,
        prob.reject,
        settings,
        rows.lexicon,
        rows.scale,
        data.features,
        refusal,
    )


def _fit_refusal(
    data: FitData,
    prob: _Problem,
    rows: _Rows,
    held: _Held,
    Ph: np.ndarray,
    chosen: tuple[bool, float, float, float, float],
) -> Refusal | None:
    """The refusal score and thresholds (see :mod:`.oos`).

    In-scope queries are the held-out rows (scored by heads and neighbours that never saw
    them); out-of-scope queries are simulated: the routes are split into folds, and a fold's
    examples are scored by a head fitted without its routes and against the other routes'
    examples only. Out-of-scope examples (too few for a reject class) join them.
    """
    point = data.refusal if isinstance(data.refusal, str) else f"{check_refusal(data.refusal):g}"
    check_refusal(data.refusal)
    use_lex, lam, temp, alpha, tau = chosen
    n_routes, yh = prob.n_routes, held.y
    route_rows = rows.y < n_routes
    counts = np.bincount(rows.y[route_rows], minlength=n_routes)
    usable = np.flatnonzero(counts >= 1)
    ins = yh < n_routes
    if len(usable) < 3 or not ins.any():
        # with two routes a held-out route is scored against one route alone: nothing to learn
        return None
    V = vote(held.nb_idx, held.nb_sim, np.isfinite(held.nb_sim), prob.k, tau)
    B = (1 - alpha) * Ph[:, :n_routes] + alpha * V[:, :n_routes]
    pos = neighbour_scores(held.nb_sim[ins])
    pos["centroid"] = held.centroid[ins]
    pos["head"] = B[ins].max(axis=1)
    right = B[ins].argmax(axis=1) == yh[ins]
    neg_parts: list[dict[str, np.ndarray]] = []
    rng = np.random.default_rng(data.seed)
    k = int(min(5, len(usable)))
    fold_of = np.full(n_routes + 1, -1)
    fold_of[rng.permutation(usable)] = np.arange(len(usable)) % k
    fold_of[n_routes] = 0  # out-of-scope rows (no reject class) are unseen queries in one fold
    F = rows.F if use_lex else None
    scale = rows.scale if use_lex else 1.0
    for f in range(k):
        kept = route_rows & (fold_of[rows.y] != f)
        unseen = fold_of[rows.y] == f
        kept_routes = np.unique(rows.y[kept])
        remap = np.full(prob.k, -1)
        remap[kept_routes] = np.arange(len(kept_routes))
        yk = remap[rows.y[kept]]
        W = fit_softmax(
            rows.Xh[kept],
            yk,
            len(kept_routes),
            lam,
            maxiter=150,
            F=None if F is None else F[kept],
            scale=scale,
        )
        Zu = design_logits(rows.Xh[unseen], None if F is None else F[unseen], W, scale) / temp
        P = softmax(Zu.copy())
        ni, ns = neighbours(rows.X[unseen], rows.X[kept], yk, _NEIGHBOURS)
        Vu = vote(ni, ns, np.isfinite(ns), len(kept_routes), tau)
        part = neighbour_scores(ns)
        Bu = (1 - alpha) * P + alpha * Vu
        part["head"] = Bu.max(axis=1)
        C = centroids(rows.X[kept], yk, len(kept_routes))
        part["centroid"] = (rows.X[unseen] @ C.T).max(axis=1).astype(np.float64)
        neg_parts.append(part)
    neg = {name: np.concatenate([p[name] for p in neg_parts]) for name in pos}
    model = RefusalModel(centroids(rows.X[route_rows], rows.y[route_rows], n_routes))
    return choose_refusal(pos, neg, model, point, right=right)


def _with_reject_class(
    held: _Held,
    Ph: np.ndarray,
    prob: _Problem,
    alpha: float,
    tau: float,
    data: FitData,
    threshold: float,
    refusal: Refusal,
) -> tuple[float, Refusal | None]:
    """With a reject class (ten or more out-of-scope examples): the probability threshold and
    the refusal score's threshold chosen together on the held-out rows.

    The score was chosen on the simulated unseen routes and the real out-of-scope rows together.
    Both thresholds run over the quantiles 0-10% of the held-out in-scope rows (and "off"); the
    pair kept maximizes in-scope accuracy + out-of-scope recall with the in-scope queries lost
    beyond the reject class's own within ``refusal_budget`` (one budget for both). Returns the
    probability threshold and the refusal (None when the pair kept switches it off).
    """
    yh, n_routes = held.y, prob.n_routes
    in_scope, is_oos = yh < n_routes, yh >= n_routes
    n_in = int(in_scope.sum())
    if n_in < 10 or not is_oos.any():
        return threshold, None
    V = vote(held.nb_idx, held.nb_sim, np.isfinite(held.nb_sim), prob.k, tau)
    B = (1 - alpha) * Ph[:, :n_routes] + alpha * V[:, :n_routes]
    top = B.max(axis=1)
    rejected = (1 - alpha) * Ph[:, n_routes] > top
    right = (B.argmax(axis=1) == yh) & in_scope & ~rejected
    base = neighbour_scores(held.nb_sim)
    base["centroid"] = held.centroid
    base["head"] = top
    score = refusal.combine(base)
    base_right = right.sum() / n_in
    allowed = max(data.refusal_budget, 1.0 / n_in) if data.refusal_budget > 0 else 0.0
    qs = np.linspace(0.0, 0.1, 41)[1:]
    probs = [threshold, 0.0, *np.quantile(top[in_scope], qs).tolist()]
    cuts = [-np.inf, *np.quantile(score[in_scope], qs).tolist()]
    best = (-np.inf, threshold, -np.inf)
    for p in probs:
        kept = ~(top < p)
        for t in cuts:
            keep = kept & (score >= t)
            ok_in = (right & keep).sum() / n_in
            if base_right - ok_in > allowed:
                continue
            j = float(ok_in + (rejected | ~keep)[is_oos].mean())
            if j > best[0] + 1e-12:
                best = (j, float(p), float(t))
    _, p_best, t_best = best
    if not np.isfinite(t_best):
        return p_best, None
    thresholds = {**refusal.thresholds, WITH_OOS_EXAMPLES: t_best}
    return p_best, replace(refusal, thresholds=thresholds, point=WITH_OOS_EXAMPLES)


def _rows(data: FitData, prob: _Problem) -> _Rows:
    """The training rows of a known class, and the lexicon (one vocabulary for every split, so
    the final fit warm-starts from the held-out path)."""
    train, val = data.train, data.validation
    X = np.ascontiguousarray(train.embeddings, dtype=np.float32)
    Xh = X if train.features is None else np.ascontiguousarray(train.features, dtype=np.float32)
    y = prob.encode(train.labels)
    keep = y >= 0
    X, Xh, y = X[keep], Xh[keep], y[keep]
    try_lex = data.lexical and train.texts is not None and (val is None or val.texts is not None)
    if not try_lex:
        return _Rows(X, Xh, y, None, None, None, 1.0)
    assert train.texts is not None
    kept_texts = [t for t, kk in zip(train.texts, keep, strict=True) if kk]
    val_texts: list[str] = []
    if val is not None:
        assert val.texts is not None
        val_texts = [t for t, c in zip(val.texts, prob.encode(val.labels), strict=True) if c >= 0]
    lexicon = Lexicon.fit(kept_texts + val_texts, max_terms=max(1000, _LEX_PARAMS // (2 * prob.k)))
    F = lexicon.transform(kept_texts)
    Fv = lexicon.transform(val_texts) if val is not None else None
    return _Rows(X, Xh, y, lexicon, F, Fv, _EMB_SCALE)


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
        several = routes_counts[routes_counts > 1]
        folds = int(min(5, max(2, several.min()))) if len(several) else 2
        use = folds
    fold_of = np.empty(n, np.int64)
    for c in np.flatnonzero(counts):
        idx = np.flatnonzero(y == c)
        if len(idx) == 1 and c < n_routes:
            fold_of[idx] = -1  # a route's only example always trains (it cannot be held out)
            continue
        rng.shuffle(idx)
        fold_of[idx] = (np.arange(len(idx)) + rng.integers(folds)) % folds
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(use)]


def _folds(data: FitData, prob: _Problem, rows: _Rows) -> list[_Fold]:
    """The validation set as one fold, or stratified splits of the training rows."""
    X, Xh, y, F = rows.X, rows.Xh, rows.y, rows.F
    val = data.validation
    if val is None:
        return [
            _Fold(
                X[a], Xh[a], y[a], X[b], Xh[b], y[b], None if F is None else F[a], None if F is None else F[b]
            )
            for a, b in _splits(y, data.seed, prob.n_routes)
        ]
    yv = prob.encode(val.labels)
    kv = yv >= 0
    Xv = np.ascontiguousarray(val.embeddings, dtype=np.float32)
    Xhv = Xv if val.features is None else np.ascontiguousarray(val.features, dtype=np.float32)
    return [_Fold(X, Xh, y, Xv[kv], Xhv[kv], yv[kv], F, rows.Fv)]


def _held_out_path(folds: list[_Fold], variants: list[bool], prob: _Problem, scale: float) -> _Held:
    """Held-out logits along the regularization path, and held-out neighbours.

    Two candidate heads: embeddings alone, and embeddings with lexical features (when the texts
    are known). The held-out accuracy later picks the head and its regularization together.
    """
    k = prob.k
    logits: dict[tuple[bool, float], list[np.ndarray]] = {(v, lam): [] for v in variants for lam in _LAMBDAS}
    nb_idx: list[np.ndarray] = []
    nb_sim: list[np.ndarray] = []
    cent: list[np.ndarray] = []
    ys: list[np.ndarray] = []
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
                W = fit_softmax(Ha, ya, k, lam, init=W, maxiter=150, F=Fa if v else None, scale=sc)
                path[(v, lam)] = W
                logits[(v, lam)].append(design_logits(fold.Hb, fold.Fb if v else None, W, sc))
        route_rows = fold.ya < prob.n_routes  # the index holds route utterances only
        ni, ns = neighbours(fold.Xb, fold.Xa[route_rows], fold.ya[route_rows], _NEIGHBOURS)
        nb_idx.append(ni)
        nb_sim.append(ns)
        C = centroids(fold.Xa[route_rows], fold.ya[route_rows], prob.n_routes)
        cent.append((fold.Xb @ C.T).max(axis=1).astype(np.float64))
        ys.append(fold.yb)
    return _Held(
        {key: np.concatenate(ls) for key, ls in logits.items()},
        np.concatenate(nb_idx),
        np.concatenate(nb_sim),
        np.concatenate(ys),
        path,
        np.concatenate(cent),
    )


def _choose_head(held: _Held, prob: _Problem) -> tuple[bool, float, dict[tuple[bool, float], float], float]:
    """Regularization (and lexical or not) by held-out accuracy, then temperature by NLL.

    Returns (lexical, l2, every candidate's held-out accuracy, temperature).
    """
    yh, n_routes = held.y, prob.n_routes
    in_scope = yh < n_routes

    def acc_of(L: np.ndarray) -> float:
        return (
            float((L[in_scope, :n_routes].argmax(axis=1) == yh[in_scope]).mean()) if in_scope.any() else 0.0
        )

    lam_scores = {key: acc_of(L) for key, L in held.logits.items()}
    # Ties go to the lexical head (words rarely hurt a regularized head; on the public intent
    # sets they helped by about a point) and to the stronger regularization.
    use_lex, lam = max(lam_scores, key=lambda key: (lam_scores[key], key[0], -key[1]))
    L = held.logits[(use_lex, lam)].astype(np.float64)
    held.logits[(use_lex, lam)] = L
    known = yh < prob.k  # rows of a class the head has (not out-of-scope rows without a reject class)

    def nll(t: float) -> float:
        P = softmax(L[known] / t)
        return float(-np.log(P[np.arange(len(P)), yh[known]] + 1e-12).mean())

    return use_lex, lam, lam_scores, min(_TEMPS, key=nll)


def _choose_blend(held: _Held, Ph: np.ndarray, prob: _Problem) -> tuple[float, float, float]:
    """The weight and temperature of the neighbour vote by held-out accuracy, then log-loss.

    Returns (held-out accuracy, alpha, tau).
    """
    yh, n_routes = held.y, prob.n_routes
    in_scope = yh < n_routes
    valid = np.isfinite(held.nb_sim)
    best: tuple[float, float, float, float] | None = None
    for tau in _TAUS:
        V = vote(held.nb_idx, held.nb_sim, valid, prob.k, tau)
        for a in _ALPHAS:
            B = (1 - a) * Ph[:, :n_routes] + a * V[:, :n_routes]
            acc = float((B[in_scope].argmax(axis=1) == yh[in_scope]).mean()) if in_scope.any() else 0.0
            ll = float(-np.log(B[in_scope, yh[in_scope]] + 1e-12).mean()) if in_scope.any() else 0.0
            if best is None or (acc, -ll) > (best[0], -best[1]):
                best = (acc, ll, a, tau)
    assert best is not None
    return best[0], best[2], best[3]


def _choose_threshold(
    held: _Held, Ph: np.ndarray, prob: _Problem, alpha: float, tau: float, data: FitData, refusing: bool
) -> float:
    """The threshold on the blended top probability.

    With out-of-scope rows it maximizes in-scope accuracy + out-of-scope recall within the
    refusal budget; without them it refuses the least confident ``abstain_quantile``.
    """
    yh, n_routes = held.y, prob.n_routes
    in_scope = yh < n_routes
    V = vote(held.nb_idx, held.nb_sim, np.isfinite(held.nb_sim), prob.k, tau)
    B = (1 - alpha) * Ph[:, :n_routes] + alpha * V[:, :n_routes]
    top = B.max(axis=1)
    pred = B.argmax(axis=1)
    rejected = (1 - alpha) * Ph[:, n_routes] > top if prob.reject else np.zeros(len(yh), bool)
    is_oos = ~in_scope
    if refusing:  # the refusal score (which may read the head's probability) decides alone
        return 0.0
    if in_scope.sum() < 10:
        # a threshold read off fewer than ten held-out queries (their top probabilities are often
        # all within 1e-4 of 1) refused every new query alike: refuse nothing by probability
        return 0.0
    if not is_oos.any():
        return float(np.quantile(top[in_scope], data.abstain_quantile)) if in_scope.any() else 0.0
    right = (pred == yh) & in_scope & ~rejected
    base_right = right.sum() / max(1, in_scope.sum())
    cands = np.unique(np.concatenate([[0.0], top]))
    best_t, best_j = 0.0, -np.inf
    # a budget cannot be finer than one held-out query: with fewer than 1/budget of them,
    # one refusal is allowed (else a few out-of-scope examples would switch refusing off)
    budget = data.refusal_budget
    # (from ten held-out in-scope queries up: below that one refusal would be a tenth or more of
    # them, and a threshold chosen on so few refused everything alike)
    n_in = int(in_scope.sum())
    allowed = max(budget, 1.0 / n_in) if budget > 0 and n_in >= 10 else budget
    for t in cands:
        ok_in = (right & (top >= t)).sum() / max(1, in_scope.sum())
        if base_right - ok_in > allowed:
            break
        rec = ((top[is_oos] < t) | rejected[is_oos]).mean()
        j = ok_in + rec
        if j > best_j:
            best_t, best_j = float(t), float(j)
    return best_t


def _refit(
    rows: _Rows, folds: list[_Fold], has_val: bool, prob: _Problem, lam: float, init: np.ndarray
) -> np.ndarray:
    """Refit the head on everything (validation included) at the chosen strength, warm-started
    from the held-out fit: a few iterations suffice."""
    F_all = rows.F
    if has_val:
        X_all, y_all = np.vstack([rows.Xh, folds[0].Hb]), np.concatenate([rows.y, folds[0].yb])
        if rows.F is not None:
            from scipy.sparse import vstack as sparse_vstack

            F_all = sparse_vstack([rows.F, rows.Fv]).tocsr()
    else:
        X_all, y_all = rows.Xh, rows.y
    trainable = y_all < prob.k
    if not trainable.all():
        X_all, y_all = X_all[trainable], y_all[trainable]
        F_all = None if F_all is None else F_all[trainable]
    return fit_softmax(X_all, y_all, prob.k, lam, init=init, maxiter=100, F=F_all, scale=rows.scale)
