"""Numerics of the fitted head: softmax, the head's logits, L2-regularized multinomial logistic
regression fitted by limited-memory BFGS, and the neighbour vote (exact nearest neighbours).

Plain NumPy (sparse lexical rows are SciPy CSR matrices, typed ``Any`` here so SciPy is never
imported by this module).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["design_logits", "fit_softmax", "lbfgs", "logsumexp", "neighbours", "softmax", "vote"]

#: ``matmul(a, b)``: a dense product computed elsewhere (e.g. in onnxruntime).
MatMul = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: ``fg(w) -> (loss, gradient)`` of a smooth function of a flat weight vector.
LossAndGradient = Callable[[np.ndarray], tuple[float, np.ndarray]]


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def logsumexp(z: np.ndarray) -> np.ndarray:
    """``log(sum(exp(z)))`` of each row (the head's *energy* when ``z`` are its logits)."""
    m = z.max(axis=1)
    return np.asarray(m + np.log(np.exp(z - m[:, None]).sum(axis=1)), dtype=np.float64)


def design_logits(
    X: np.ndarray, F: Any, W: np.ndarray, scale: float, matmul: MatMul | None = None
) -> np.ndarray:
    """Logits of the head for dense embeddings ``X`` (times ``scale``) and sparse lexical rows ``F``.

    ``matmul(a, b)``, when given, computes the dense product in place of NumPy's ``a @ b``.
    """
    d = X.shape[1]
    Z: np.ndarray = (X @ W[:d] if matmul is None else matmul(X, W[:d])) * scale + W[-1]
    if F is not None:
        Z += F @ W[d:-1]
    return Z


def fit_softmax(
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
        W = w.reshape(rows, k)  # float32 throughout (see lbfgs)
        Z = design_logits(X, F, W, scale)
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
    return lbfgs(fg, w0, maxiter).reshape(rows, k)


def lbfgs(
    fg: LossAndGradient, w: np.ndarray, maxiter: int, memory: int = 10, gtol: float = 1e-6
) -> np.ndarray:
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


def vote(idx: np.ndarray, sims: np.ndarray, valid: np.ndarray, k: int, tau: float) -> np.ndarray:
    """Neighbour vote: rows of ``idx``/``sims`` (class index, cosine) -> ``(n, k)`` probabilities."""
    n = idx.shape[0]
    w = np.where(valid, np.exp((sims - np.where(valid, sims, -np.inf).max(axis=1, keepdims=True)) / tau), 0.0)
    P = np.zeros((n, k), np.float64)
    rows = np.repeat(np.arange(n), idx.shape[1])
    np.add.at(P, (rows, np.where(valid, idx, 0).ravel()), w.ravel())
    s = P.sum(axis=1, keepdims=True)
    return P / np.where(s > 0, s, 1.0)


def neighbours(
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
