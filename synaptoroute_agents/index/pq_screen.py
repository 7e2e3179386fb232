"""A first stage that reads 4 bits per 4 dimensions: product-quantized codes, exact re-scoring.

The INT8 screen (:mod:`.screen`) is exact by construction but reads one byte per dimension of
every row for every query (19 MB per query at 50,000 rows of 384 dimensions), so a single query
cannot go much below the time the memory takes to stream it. :class:`PqScreen` keeps a product
quantizer's codes instead (Faiss ``IndexPQFastScan``: ``dim / 4`` sub-spaces of 4 dimensions,
16 centroids each, so 48 bytes per 384-dimension row, 2.4 MB at 50,000 rows), scored with
in-register look-up tables. It takes the ``candidates`` rows with the best approximate scores
(plus ``k`` and the removed rows among them) and re-scores those rows in float32 from the base's
own rows: the scores it returns are exact, the rows it returns are those of exact search whenever
the exact top-k is among the candidates. That is measured, not proved: ``benchmarks/scale.py``
reports the share of queries whose top-1 route equals that of exact search (1.000 for 1,000 real
queries against the bundled model's embeddings of 10,000 routes x 5 utterances), and the tests
check it on the bundled model's embeddings of the fixtures. Deeper ranks (the 5th neighbour, say)
can differ from exact search where many rows score within the codes' error of each other. ``VectorIndex(stage="int8")`` keeps the exact INT8 screen.

Training the quantizer (k-means of 16 centroids in each sub-space, on a sample of at most 65,536
rows) and encoding the rows run beside the live base, like the INT8 screen's build; searches scan
in float32 (or through the previous base's screen) meanwhile.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faiss
import numpy as np

from .exact import float_top_k
from .stages import faster_than_float

__all__ = ["PqScreen", "build_pq_screen", "CANDIDATES"]

log = logging.getLogger(__name__)

#: Rows re-scored in float32 per query (besides ``k`` and removed rows). On real embeddings of
#: the bundled model (1,000 queries against 50,000 stored utterances) the exact top-1 was within
#: the first 68 approximate candidates of every query; 256 leaves a margin of almost 4x at a cost
#: of about 0.02 ms per query.
CANDIDATES = 256
_TRAIN_SAMPLE = 65536
_SUBDIM = 4  # dimensions per sub-quantizer


class PqScreen:
    """Top-k over fixed float32 rows: product-quantized candidates, float32 re-scoring.

    ``vecs`` is kept by reference, not copied: it must not change. ``flat``: a Faiss
    ``IndexFlatIP`` that holds exactly these rows (the index's base storage); the candidates are
    re-scored from it in place by Faiss (``IndexRefine``), with no gather of rows in Python (1.5x
    the batched throughput of a NumPy re-score here). Without it the rows are copied into one.
    Build with :func:`build_pq_screen`.
    """

    def __init__(
        self, vecs: np.ndarray, *, candidates: int = CANDIDATES, flat: Any = None, seed: int = 1234
    ) -> None:
        n, dim = vecs.shape
        if n == 0 or dim % _SUBDIM:
            raise ValueError("a product-quantized screen needs rows whose dimension is a multiple of 4")
        t0 = time.perf_counter()
        self.vecs = vecs
        self.n, self.dim = n, dim
        self.want = max(1, int(candidates))
        pq: Any = faiss.IndexPQFastScan(dim, dim // _SUBDIM, 4, faiss.METRIC_INNER_PRODUCT)
        pq.pq.cp.min_points_per_centroid = 1  # a small base trains on what it has, without a warning
        if n > _TRAIN_SAMPLE:
            rows = np.sort(np.random.default_rng(seed).choice(n, _TRAIN_SAMPLE, replace=False))
            pq.train(np.ascontiguousarray(vecs[rows]))
        else:
            pq.train(np.ascontiguousarray(vecs))
        for lo in range(0, n, 65536):  # in blocks: no second full copy of the rows
            pq.add(np.ascontiguousarray(vecs[lo : lo + 65536]))
        usable = (
            isinstance(flat, faiss.IndexFlat)
            and flat.metric_type == faiss.METRIC_INNER_PRODUCT
            and flat.ntotal == n
            and flat.d == dim
        )
        if not usable:
            flat = faiss.IndexFlatIP(dim)
            flat.add(np.ascontiguousarray(vecs, dtype=np.float32))
        refine: Any = faiss.IndexRefine(pq, flat)
        refine.own_fields = False
        self._pq, self._flat, self._refine = pq, flat, refine  # the refine index points at both
        self.build_seconds = time.perf_counter() - t0
        self.candidates = 0  # rows re-scored in float32 since the build (for benchmarks)
        self._dead_seen: tuple[np.ndarray | None, int] = (None, 0)
        self._params: dict[int, Any] = {}  # search parameters by the k asked of Faiss

    def _dead_count(self, dead: np.ndarray | None) -> int:
        seen, count = self._dead_seen
        if dead is seen:
            return count
        count = 0 if dead is None else int(np.count_nonzero(dead))
        self._dead_seen = (dead, count)
        return count

    def search(self, q: np.ndarray, k: int, dead: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ``(scores, rows)`` ``(b, k)``, best first (ties by the lower row); scores are
        exact float32 inner products; missing slots ``-inf`` and ``-1``."""
        n_dead = self._dead_count(dead)
        kk = k + n_dead  # removed rows may take places: ask for as many more
        c = self.want + kk
        if c >= self.n // 2:  # as many candidates as half the rows: the float scan is as cheap
            return float_top_k(q, self.vecs, dead, k)
        params = self._params.get(kk)
        if params is None:
            params = self._params[kk] = faiss.IndexRefineSearchParameters()
            params.k_factor = c / kk
        scores, rows = _search_refine(self._refine, np.ascontiguousarray(q, dtype=np.float32), kk, params)
        self.candidates += len(q) * c
        if not n_dead and _in_final_order(scores, rows):
            return scores, rows  # Faiss's order is already the contract's (the usual single query)
        bad = rows < 0
        if n_dead and dead is not None:
            bad |= dead[np.maximum(rows, 0)]
        if bad.any():
            scores = np.where(bad, -np.inf, scores)
            rows = np.where(bad, -1, rows)
        # best first, ties by the lower row (as the float scan); removed rows last
        order = np.lexsort((np.where(rows < 0, self.n, rows), -scores), axis=1)[:, :k]
        out_s = np.take_along_axis(scores, order, axis=1).astype(np.float32, copy=False)
        out_r = np.take_along_axis(rows, order, axis=1).astype(np.int64, copy=False)
        return out_s, out_r


def _in_final_order(scores: np.ndarray, rows: np.ndarray) -> bool:
    """Whether Faiss's answer is already best first with ties by the lower row and no empty slot.

    ``IndexRefine`` returns its rows sorted by exact score, best first, empty slots (row -1) last,
    in float32 / int64; only the order among equal scores is its own. So when every slot is
    filled and no two neighbouring scores are equal, the lexicographic re-sort would not move
    anything: skipping it saves a query about a tenth of a millisecond of NumPy calls right after
    an encoder call (when their code and data are out of the cache).
    """
    if scores.dtype != np.float32 or rows.dtype != np.int64 or not rows.shape[1]:
        return False
    if rows[:, -1].min() < 0:
        return False
    return not bool((scores[:, 1:] == scores[:, :-1]).any())


def _search_refine(refine: Any, q: np.ndarray, kk: int, params: Any) -> tuple[np.ndarray, np.ndarray]:
    """``refine.search``; a single query runs on this thread alone.

    Faiss opens an OpenMP parallel region even for one query, whose other thread has nothing to
    do but, asleep (``OMP_WAIT_POLICY=PASSIVE``), must be woken first: right after an encoder call
    that cost one query a median 0.15 ms and a p90 of several ms on a loaded 2-core machine
    (``benchmarks.scale``'s single rows). ``omp_set_num_threads`` sets the calling thread's own
    count, so concurrent searches from other threads keep theirs.
    """
    if len(q) != 1:
        return refine.search(q, kk, params=params)  # type: ignore[no-any-return]
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return refine.search(q, kk, params=params)  # type: ignore[no-any-return]
    finally:
        faiss.omp_set_num_threads(before)


def build_pq_screen(vecs: np.ndarray, *, calibrate: bool = True, **options: Any) -> PqScreen | None:
    """A :class:`PqScreen` over ``vecs``, or None when it cannot be built or, with
    ``calibrate``, when a single query through it is not faster than a float32 scan here."""
    try:
        screen = PqScreen(vecs, **options)
        probe = np.ascontiguousarray(vecs[np.linspace(0, len(vecs) - 1, 16).astype(np.int64)])
        screen.search(probe[:1], 8, None)  # warm-up; also proves it runs
    except Exception as exc:  # a Faiss without fast-scan PQ, or any build failure
        log.warning("the product-quantized screen is unavailable (%s)", exc)
        return None
    if calibrate and not faster_than_float(
        "product-quantized",
        lambda: [screen.search(p[None, :], 32, None) for p in probe],
        lambda: [float_top_k(p[None, :], vecs, None, 32) for p in probe],
    ):
        return None
    return screen
