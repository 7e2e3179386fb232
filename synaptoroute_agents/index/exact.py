"""Exact float32 top-k scans: one shared onnxruntime session for every index, NumPy where it
cannot run.

A NumPy matrix product runs in the BLAS thread pool, whose idle threads keep spinning for the CPU
after the call; on a small machine they slow whatever runs next (the encoder's next batch) far
more than the scan itself costs. The onnxruntime sessions here do not spin. They serve the
delta buffer, flat bases too small (or on a CPU too slow) for a first stage, and the fitted
heads' float32 products. A lone query over a few thousand rows is scanned on the calling thread
instead (:func:`one_query_top_k`): waking the session's second thread cost it more than the scan.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import numpy as np

from .onnxproto import FLOAT, INT64, attr_int, model, node, value_info

__all__ = [
    "FloatScan",
    "ONE_QUERY_ROWS",
    "exact_top_k",
    "float_scan_model",
    "matmul_model",
    "one_query_top_k",
    "session_options",
]

log = logging.getLogger(__name__)


def session_options() -> Any:
    """Options of every session here: up to 4 threads that do not spin for the CPU after a run."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, min(4, os.cpu_count() or 1))
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


def float_scan_model() -> bytes:
    """The ONNX model (bytes) of an exact float32 top-k scan.

    Inputs: ``Q`` ``(b, d)`` queries, ``B`` ``(n, d)`` rows, ``M`` ``(n,)`` added to every score
    (0, or -inf for a row that must never win), ``K`` ``(1,)`` int64 with ``K <= n``. Outputs
    ``V`` ``(b, K)`` the best scores, best first, and ``I`` ``(b, K)`` their rows (ties: the lower
    row first).
    """
    nodes = [
        node("Gemm", ["Q", "B"], ["S"], attr_int("transB", 1)),
        node("Add", ["S", "M"], ["SM"]),
        node("TopK", ["SM", "K"], ["V", "I"], attr_int("axis", 1)),
    ]
    inputs = [
        value_info("Q", FLOAT, ["b", "d"]),
        value_info("B", FLOAT, ["n", "d"]),
        value_info("M", FLOAT, ["n"]),
        value_info("K", INT64, [1]),
    ]
    outputs = [value_info("V", FLOAT, ["b", "k"]), value_info("I", INT64, ["b", "k"])]
    return model("float_scan", nodes, inputs, outputs)


def matmul_model() -> bytes:
    """The ONNX model (bytes) of ``Y = A @ B``: ``A`` ``(m, d)``, ``B`` ``(d, n)``, float32."""
    inputs = [value_info("A", FLOAT, ["m", "d"]), value_info("B", FLOAT, ["d", "n"])]
    return model("matmul", [node("MatMul", ["A", "B"], ["Y"])], inputs, [value_info("Y", FLOAT, ["m", "n"])])


class FloatScan:
    """Exact float32 top-k over any rows (and plain float32 products), in shared onnxruntime sessions.

    The rows are passed per call (read in place, not copied), so one session serves every index.
    """

    _shared: FloatScan | None = None
    _failed = False
    _lock = threading.Lock()

    def __init__(self) -> None:
        import onnxruntime as ort

        so = session_options()
        self._session = ort.InferenceSession(float_scan_model(), so, providers=["CPUExecutionProvider"])
        self._matmul = ort.InferenceSession(matmul_model(), so, providers=["CPUExecutionProvider"])

    @classmethod
    def shared(cls) -> FloatScan | None:
        """The process's scan, or None where onnxruntime cannot run it (NumPy serves then)."""
        if cls._shared is None and not cls._failed:
            with cls._lock:
                if cls._shared is None and not cls._failed:
                    try:
                        cls._shared = cls()
                    except Exception as exc:  # no onnxruntime, or one without these operators
                        cls._failed = True
                        log.warning("the float32 scan session is unavailable (%s); using NumPy", exc)
        return cls._shared

    def top_k(
        self, q: np.ndarray, vecs: np.ndarray, mask: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, rows)`` ``(b, min(k, n))``, best first, of ``q @ vecs.T + mask``."""
        feed = {
            "Q": np.ascontiguousarray(q, dtype=np.float32),
            "B": np.ascontiguousarray(vecs, dtype=np.float32),
            "M": mask,
            "K": np.array([min(k, len(vecs))], dtype=np.int64),
        }
        v, i = self._session.run(None, feed)
        return v, i

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a @ b`` in float32 (``a`` ``(m, d)``, ``b`` ``(d, n)``)."""
        feed = {
            "A": np.ascontiguousarray(a, dtype=np.float32),
            "B": np.ascontiguousarray(b, dtype=np.float32),
        }
        out: np.ndarray = self._matmul.run(None, feed)[0]
        return out


#: A lone query over at most this many rows is scanned on the calling thread by
#: :func:`one_query_top_k` instead of the onnxruntime session: right after an encoder call it took
#: 0.09 / 0.15 / 0.22 / 0.36 / 0.65 ms at 100 / 500 / 1,000 / 2,000 / 4,000 rows against the
#: session's 0.19 / 0.29 / 0.36 / 0.46 / 0.69 (paired medians, load 4.7). Larger flat bases get the
#: product-quantized first stage from the same size (``VectorIndex(screen_min=4096)``).
ONE_QUERY_ROWS = 4096


def one_query_top_k(
    q: np.ndarray, vecs: np.ndarray, ids: np.ndarray, dead: np.ndarray | None, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`exact_top_k` of one query ``(1, d)`` on the calling thread, as the session answers it.

    The session's second thread sleeps between calls; right after an encoder call, waking it cost
    one query more than the whole scan of a small base (or delta buffer) does on this thread. The
    products run in NumPy's own loops (``einsum``), not BLAS, whose threads would be woken too and
    keep spinning afterwards. Best first, ties by the lower row, removed rows ``-inf``: the
    session's order.
    """
    s = np.einsum("nd,d->n", vecs, q[0])
    if dead is not None:
        s[dead] = -np.inf
    top = np.argsort(-s, kind="stable")[: min(k, len(s))]
    return s[top][None, :], ids[top][None, :]


def exact_top_k(
    q: np.ndarray,
    vecs: np.ndarray,
    ids: np.ndarray,
    dead: np.ndarray | None,
    k: int,
    *,
    lone: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` inner products of ``q`` against ``vecs`` as ``(scores, ids)``; dead rows never win.

    The scan runs in onnxruntime (:class:`FloatScan`, whose threads do not spin after the call)
    or, where that cannot run, as a NumPy matrix product; with ``lone``, one query over at most
    :data:`ONE_QUERY_ROWS` rows runs on the calling thread (:func:`one_query_top_k`). Its scores
    equal the session's to float32 rounding only, so a caller that merges them with another
    scan's scores passes ``lone=False`` unless both scans take the same path.
    """
    n = len(ids)
    if lone and len(q) == 1 and 0 < n <= ONE_QUERY_ROWS:
        return one_query_top_k(q, vecs, ids, dead, k)
    scan = FloatScan.shared() if n else None
    if scan is not None:
        mask = (
            np.zeros(n, dtype=np.float32) if dead is None else np.where(dead, -np.inf, 0).astype(np.float32)
        )
        try:
            s, rows = scan.top_k(q, vecs, mask, k)
        except Exception as exc:  # onnxruntime failing on this input: the NumPy scan answers
            log.warning("the float32 scan failed (%s); using NumPy", exc)
        else:
            return s, ids[rows]
    scores = q @ vecs.T
    if dead is not None:
        scores[:, dead] = -np.inf
    kk = min(k, n)
    if kk < n:
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    else:
        top = np.broadcast_to(np.arange(n), (len(q), n))
    return np.take_along_axis(scores, top, axis=1), ids[top]


def float_top_k(
    q: np.ndarray, vecs: np.ndarray, dead: np.ndarray | None, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` ``(scores, rows)`` ``(b, k)`` in NumPy, best first, ties by the lower row;
    missing slots hold ``-inf`` and row ``-1``."""
    scores = q @ vecs.T
    if dead is not None:
        scores[:, dead] = -np.inf
    b, n = scores.shape
    kk = min(k, n)
    top = (
        np.argpartition(-scores, kk - 1, axis=1)[:, :kk] if kk < n else np.broadcast_to(np.arange(n), (b, n))
    )
    qidx = np.repeat(np.arange(b), top.shape[1])
    return _top_k_by_query(b, k, qidx, top.reshape(-1), np.take_along_axis(scores, top, 1).reshape(-1))


def _top_k_by_query(
    b: int, k: int, qidx: np.ndarray, rows: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    out_s = np.full((b, k), -np.inf, dtype=np.float32)
    out_r = np.full((b, k), -1, dtype=np.int64)
    ok = np.isfinite(scores)
    qidx, rows, scores = qidx[ok], rows[ok], scores[ok]
    if not len(qidx):
        return out_s, out_r
    order = np.lexsort((rows, -scores, qidx))
    qidx, rows, scores = qidx[order], rows[order], scores[order]
    starts = np.searchsorted(qidx, qidx, side="left")
    rank = np.arange(len(qidx)) - starts
    sel = rank < k
    out_s[qidx[sel], rank[sel]] = scores[sel]
    out_r[qidx[sel], rank[sel]] = rows[sel]
    return out_s, out_r
