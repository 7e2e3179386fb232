"""Exact top-k inner-product search through an INT8 screen and a float re-rank.

A flat scan of a large base reads every float32 row for every query. :class:`Int8Screen` keeps an
INT8 copy of the rows (one scale per row) inside an onnxruntime session, whose integer matrix
product (VNNI on recent x86) scores a whole batch against all rows at a fraction of the float
cost. The session also reduces the scores: rows are taken in groups of ``group`` consecutive rows;
the k-th best group (by its best approximate score) sets a cut, and only the groups above the cut
minus the error window come back, with the approximate scores of their rows. A group holding a
removed row (or padding) never sets the cut, since its best score may not be a live row's; so rows
removed since the last compaction widen nothing (counting such groups and moving the cut down by
as many, as an earlier version did, made a search with 1% of 250k rows removed 3.7 times slower).

The screen never decides on its own. For a query ``q`` and a row ``x`` the approximate score
``a = s_q s_x (q_i . x_i)`` is within ``|q'| |x - x'| + |q - q'| |x| + rounding`` of the float
score (Cauchy-Schwarz on ``q.x - q'.x' = q'.(x - x') + (q - q').x``, where ``q'`` and ``x'`` are the
de-quantized vectors). With that bound ``w`` per query
(taken with the largest ``|x - x'|`` and ``|x|`` of all rows): the k-th best float score is at
least ``a_(k) - w``; a row can only reach the top-k if ``a + w >= a_(k) - w``. The session returns
every group holding such a row. Among the returned rows, each row's own bound (its own ``|x - x'|``
and ``|x|``) narrows the window further: the k-th best lower end is a floor for the k-th best
float score, and only rows whose upper end reaches it are re-scored in float32. The result is the
exact float top-k.

Smaller bases (and the index's delta buffer) are scanned exactly in float32 by
:class:`~synaptoroute_agents.index.exact.FloatScan`.

The ONNX graph is written as protobuf bytes (:mod:`.onnxproto`), so the ``onnx`` package is not
needed at run time. Why a hand-built graph rather than Faiss's ``IndexScalarQuantizer`` (8 bit)
with ``IndexRefineFlat``: that pair is approximate (its re-rank sees only ``k_factor * k``
candidates), this screen is exact; ``benchmarks/hand_written.py`` measures both.
"""

from __future__ import annotations

import logging
import os
import struct
import tempfile
import time
from typing import Any

import numpy as np

from .exact import float_top_k, session_options
from .onnxproto import (
    FLOAT,
    INT8,
    INT64,
    UINT8,
    ExternalData,
    attr_int,
    attr_ints,
    model,
    node,
    tensor,
    value_info,
)
from .stages import faster_than_float

__all__ = ["Int8Screen", "build_screen", "screen_model"]

log = logging.getLogger(__name__)

_U = 2.0**-24  # unit round-off of float32


def screen_model(
    chunks: list[tuple[np.ndarray, np.ndarray]], group: int, external: ExternalData | None = None
) -> bytes:
    """The ONNX model (bytes) of the screen (its rows and scales in ``external`` when given).

    ``chunks`` holds, per chunk, the INT8 rows transposed ``(dim, c)`` (``c`` a multiple of
    ``group``) and their float32 scales ``(c,)``. Inputs: ``A`` ``(b, dim)`` uint8 queries with zero
    point 128; ``k`` ``(1,)`` int64, how many groups fix the cut; ``W`` ``(b, 1)`` float32, the
    width of the window below the cut (in the graph's units, i.e. divided by the query's scale);
    ``D`` ``(groups,)`` float32, 0 for a group that may fix the cut and ``-inf`` for one that may
    not (it holds a removed or a padding row, whose score is not that of a live row).

    The graph scores every row (``s_x * (A - 128) . x_i``), takes the best score of each group of
    ``group`` consecutive rows, the k-th best score ``T`` per query among the groups ``D`` allows,
    and returns per chunk
    ``N{j}`` ``(2, m)``: the (query, group) pairs whose group score is ``>= T - W``, and ``E{j}``
    ``(m, group)``: the scores of those groups' rows. Output ``T``: ``(b, 1)``.
    """
    dim = int(chunks[0][0].shape[0])
    inits = [
        tensor("azp", UINT8, [], bytes([128])),
        tensor("one", FLOAT, [], struct.pack("<f", 1.0)),
    ]
    nodes: list[bytes] = []
    outputs: list[bytes] = [value_info("T", FLOAT, ["b", 1])]
    maxima: list[str] = []
    for j, (xt, scale) in enumerate(chunks):
        c = int(xt.shape[1])
        inits.append(tensor(f"B{j}", INT8, [dim, c], np.ascontiguousarray(xt, dtype=np.int8), external))
        inits.append(tensor(f"S{j}", FLOAT, [c], np.ascontiguousarray(scale, dtype="<f4"), external))
        inits.append(tensor(f"shape{j}", INT64, [3], struct.pack("<3q", 0, c // group, group)))
        nodes += [
            node(
                "MatMulIntegerToFloat",
                ["A", f"B{j}", "one", f"S{j}", "azp"],
                [f"Y{j}"],
                domain="com.microsoft",
            ),
            node("Reshape", [f"Y{j}", f"shape{j}"], [f"R{j}"]),
            node("ReduceMax", [f"R{j}"], [f"M{j}"], attr_ints("axes", [2]), attr_int("keepdims", 0)),
        ]
        maxima.append(f"M{j}")
    nodes += [
        node("Concat", maxima, ["M"], attr_int("axis", 1)),
        node("Add", ["M", "D"], ["MD"]),
        node("TopK", ["MD", "k"], ["V", "VI"], attr_int("axis", 1)),
        node("ReduceMin", ["V"], ["T"], attr_ints("axes", [1]), attr_int("keepdims", 1)),
        node("Sub", ["T", "W"], ["cut"]),
    ]
    for j in range(len(chunks)):
        nodes += [
            node("GreaterOrEqual", [f"M{j}", "cut"], [f"G{j}"]),
            node("NonZero", [f"G{j}"], [f"N{j}"]),
            node("Transpose", [f"N{j}"], [f"P{j}"], attr_ints("perm", [1, 0])),
            node("GatherND", [f"R{j}", f"P{j}"], [f"E{j}"]),
        ]
        outputs += [
            value_info(f"N{j}", INT64, [2, f"m{j}"]),
            value_info(f"E{j}", FLOAT, [f"m{j}", group]),
        ]
    inputs = [
        value_info("A", UINT8, ["b", dim]),
        value_info("k", INT64, [1]),
        value_info("W", FLOAT, ["b", 1]),
        value_info("D", FLOAT, ["g"]),
    ]
    return model("int8_screen", nodes, inputs, outputs, inits)


def _screen_session(parts: list[tuple[np.ndarray, np.ndarray]], group: int) -> Any:
    """The onnxruntime session of :func:`screen_model`: its rows go through a temporary file
    (see :class:`ExternalData`), or inside the model where no temporary folder can be written."""
    import onnxruntime as ort

    so = session_options()
    try:
        with tempfile.TemporaryDirectory(prefix="synaptoroute-screen-", ignore_cleanup_errors=True) as d:
            with ExternalData(os.path.join(d, "rows.bin")) as external:
                graph = screen_model(parts, group, external)
            path = os.path.join(d, "screen.onnx")
            with open(path, "wb") as f:
                f.write(graph)
            return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    except OSError as exc:
        log.info("the INT8 screen is built in memory (no temporary file: %s)", exc)
    return ort.InferenceSession(screen_model(parts, group), so, providers=["CPUExecutionProvider"])


# --------------------------------------------------------------------------- the screen
class Int8Screen:
    """Exact top-k over fixed float32 rows, screened in INT8 by onnxruntime.

    Build with :func:`build_screen` (which returns None where the screen cannot run or is not
    faster than float32). ``vecs`` is kept by reference, not copied: it must not change.
    """

    def __init__(self, vecs: np.ndarray, *, chunk: int = 65536, group: int = 32) -> None:
        n, dim = vecs.shape
        if n == 0:
            raise ValueError("an empty screen")
        self.vecs = vecs
        self.n, self.dim, self.group = n, dim, group
        t0 = time.perf_counter()
        n_chunks = -(-n // chunk)
        per = -(-n // n_chunks)
        per = -(-per // group) * group
        self.chunk = per
        self.n_chunks = -(-n // per)
        self.n_groups = self.n_chunks * (per // group)
        # groups that may fix the cut: not those holding padding rows (their zeros are not real)
        self._live_groups = np.zeros(self.n_groups, dtype=np.float32)
        self._live_groups[n // group :] = -np.inf
        self._dead_seen: tuple[np.ndarray | None, np.ndarray, int] = (
            None,
            self._live_groups,
            int(np.isfinite(self._live_groups).sum()),
        )
        resid = np.empty(n, dtype=np.float32)
        norm = np.empty(n, dtype=np.float32)
        max_qnorm = 0.0
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        for c in range(self.n_chunks):
            # the chunk's rows transposed (padded rows score exactly 0 and are masked)
            xt = np.zeros((dim, per), dtype=np.int8)
            sc = np.zeros(per, dtype=np.float32)
            # blocks of 1,024 rows: every pass below stays in the CPU's cache (three times faster
            # than blocks of 16,384 on a 2-core machine)
            for lo in range(c * per, min(n, (c + 1) * per), 1024):
                hi = min(n, (c + 1) * per, lo + 1024)
                v = np.asarray(vecs[lo:hi], dtype=np.float32)
                amax = np.abs(v).max(axis=1)
                s_ = np.where(amax > 0, amax / np.float32(127.0), np.float32(1.0)).astype(np.float32)
                q8 = np.clip(np.rint(v / s_[:, None]), -127, 127)
                deq = q8 * s_[:, None]
                # float32 norms: each is within a few units of round-off of the true value, which
                # the relative margins below cover
                resid[lo:hi] = np.linalg.norm(v - deq, axis=1)
                norm[lo:hi] = np.linalg.norm(v, axis=1)
                max_qnorm = max(max_qnorm, float(np.linalg.norm(deq, axis=1).max()))
                sc[lo - c * per : hi - c * per] = s_
                xt[:, lo - c * per : hi - c * per] = q8.T
            parts.append((xt, sc))
        # per row: |x| and |x - x'| rounded up (the graph's window uses their maxima, the re-rank
        # filter each row's own)
        self._norm = norm * np.float32(1 + 1e-5)
        self._resid = resid * np.float32(1 + 1e-5) + np.float32(1e-5) * self._norm
        self.max_norm = float(self._norm.max())
        self.max_qnorm = max_qnorm * (1 + 1e-5)
        self.max_resid = float(self._resid.max())
        self._session = _screen_session(parts, group)
        del parts
        self._outputs = [o.name for o in self._session.get_outputs()]
        self.build_seconds = time.perf_counter() - t0
        # offsets of each member of each returned group, within its chunk
        self._member = np.arange(group, dtype=np.int64)
        self.candidates = 0  # rows re-scored in float32 since the build (for benchmarks)
        # queries per session run: a run holds (queries x rows) float32 scores, 64 MB at 250k rows
        self.max_batch = max(1, (64 << 20) // (4 * self.n_chunks * per))

    def quantize_queries(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(uint8 rows with zero point 128, per-query scale, per-query error bound w)."""
        a, s, qn, en, rnd = self._quantize(q)
        return a, s, self._window(qn, en, rnd)

    def _window(self, qn: np.ndarray, en: np.ndarray, rnd: np.ndarray) -> np.ndarray:
        """Per query, the bound on ``|approximate - float score|`` for any row (the largest
        ``|x - x'|`` and ``|x|``), rounded up."""
        w: np.ndarray = (qn * self.max_resid + en * self.max_norm + rnd) * (1 + 1e-6) + 1e-7
        return w

    def _quantize(self, q: np.ndarray) -> tuple[np.ndarray, ...]:
        """The uint8 queries and their scales, and the terms of the error bound: ``|q'|``,
        ``|q - q'|`` and the rounding allowance (see the module docstring)."""
        q64 = q.astype(np.float64)
        amax = np.abs(q64).max(axis=1)
        s = np.where(amax > 0, amax / 127.0, 1.0)
        qi = np.clip(np.rint(q64 / s[:, None]), -127, 127)
        deq = qi * s[:, None]
        qn = np.linalg.norm(deq, axis=1)
        en = np.linalg.norm(q64 - deq, axis=1)
        full = np.linalg.norm(q64, axis=1)
        # Cauchy-Schwarz on the quantization error (qn |x - x'| + en |x|, per row or with the
        # maxima), plus float32 rounding of the reference dot product (|fl(q.x) - q.x| <=
        # dim*u*|q||x|) and of this screen's own arithmetic.
        rnd = (self.dim + 16) * _U * (full * self.max_norm + qn * self.max_qnorm) * 2
        return (qi + 128).astype(np.uint8), s, qn, en, rnd

    def _groups_of(self, dead: np.ndarray | None) -> tuple[np.ndarray, int]:
        """The groups that may fix the cut (0, else ``-inf``) with ``dead`` rows removed, and how
        many there are. Kept for the last ``dead`` array seen (an index passes the same array
        for every search of a snapshot)."""
        seen, mask, count = self._dead_seen
        if dead is seen:
            return mask, count
        if dead is None:
            mask = self._live_groups
        else:
            mask = self._live_groups.copy()
            mask[np.flatnonzero(dead) // self.group] = -np.inf
        count = int(np.isfinite(mask).sum())
        self._dead_seen = (dead, mask, count)
        return mask, count

    def search(self, q: np.ndarray, k: int, dead: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` rows for each query: ``(scores, rows)`` of shape ``(b, k)``, best first;
        missing slots hold ``-inf`` and row ``-1``.

        ``dead`` masks rows that must never appear. A group holding a dead row never fixes the
        cut (its best score may be a dead row's), but its live rows are returned like any other.
        """
        groups, live = self._groups_of(dead)
        if live < k:  # too few whole groups to fix a cut: a float scan is as cheap
            return float_top_k(q, self.vecs, dead, k)
        if len(q) <= self.max_batch:
            return self._search(q, k, dead, groups)
        # the session holds (queries x rows) scores while it runs: bound that memory
        parts = [
            self._search(q[s : s + self.max_batch], k, dead, groups) for s in range(0, len(q), self.max_batch)
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _search(
        self, q: np.ndarray, k: int, dead: np.ndarray | None, groups: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        b = len(q)
        n, per, g = self.n, self.chunk, self.group
        a, s, qn, en, rnd = self._quantize(q)
        w = self._window(qn, en, rnd)
        feed = {
            "A": a,
            "k": np.array([k], dtype=np.int64),
            "W": (2 * w / s * (1 + 1e-6)).astype(np.float32)[:, None],
            "D": groups,
        }
        outs = self._session.run(self._outputs, feed)
        cut = outs[0][:, 0] - feed["W"][:, 0]
        qs, rs, vs = [], [], []
        for j in range(self.n_chunks):
            nz, vals = outs[1 + 2 * j], outs[2 + 2 * j]
            if not nz.shape[1]:
                continue
            qq = nz[0]
            rows = (nz[1] * g + j * per)[:, None] + self._member
            ok = (vals >= cut[qq][:, None]) & (rows < n)
            if dead is not None:
                ok &= ~dead[np.minimum(rows, n - 1)]
            hit_q, hit_m = np.nonzero(ok)
            qs.append(qq[hit_q])
            rs.append(rows[hit_q, hit_m])
            vs.append(vals[hit_q, hit_m])
        out_s = np.full((b, k), -np.inf, dtype=np.float32)
        out_r = np.full((b, k), -1, dtype=np.int64)
        if not qs:
            return out_s, out_r
        cq, crow = np.concatenate(qs), np.concatenate(rs)
        # Each returned row's own bound [approx - e, approx + e] on its float score. Any k of
        # these live rows put the k-th best float score at or above the k-th best lower end L,
        # so a row whose upper end is below L cannot be in the top k.
        approx = np.concatenate(vs).astype(np.float64) * s[cq]
        e = (qn[cq] * self._resid[crow] + en[cq] * self._norm[crow] + rnd[cq]) * (1 + 1e-6) + 1e-7
        lower, upper = approx - e, approx + e
        order = np.argsort(cq, kind="stable")
        cq, crow, lower, upper = cq[order], crow[order], lower[order], upper[order]
        bounds = np.searchsorted(cq, np.arange(b + 1))
        vecs = self.vecs
        for i in range(b):
            lo, hi = bounds[i], bounds[i + 1]
            if lo == hi:
                continue
            rows = crow[lo:hi]
            if hi - lo > k:
                floor = np.partition(lower[lo:hi], hi - lo - k)[hi - lo - k]  # k-th best lower end
                rows = rows[upper[lo:hi] >= floor]
            self.candidates += len(rows)
            scores = vecs[rows] @ q[i]
            if not np.isfinite(scores).all():
                ok = np.isfinite(scores)
                rows, scores = rows[ok], scores[ok]
            top = np.lexsort((rows, -scores))[:k]  # best first; ties by row, as the float scan
            out_s[i, : len(top)] = scores[top]
            out_r[i, : len(top)] = rows[top]
        return out_s, out_r


def build_screen(vecs: np.ndarray, *, calibrate: bool = True, **options: Any) -> Int8Screen | None:
    """An :class:`Int8Screen` over ``vecs``, or None when onnxruntime cannot run it (missing
    operators, no onnxruntime) or, with ``calibrate``, when it is not faster than a float32 scan
    on this CPU."""
    try:
        screen = Int8Screen(vecs, **options)
        probe = np.ascontiguousarray(vecs[np.linspace(0, len(vecs) - 1, 16).astype(np.int64)])
        screen.search(probe, 8, None)  # warm-up; also proves the graph runs
    except Exception as exc:  # an onnxruntime without the operators, or any build failure
        log.warning("the INT8 screen is unavailable (%s); using float32 search", exc)
        return None
    if calibrate and not faster_than_float(
        "INT8", lambda: screen.search(probe, 8, None), lambda: probe @ vecs.T
    ):
        return None
    return screen
