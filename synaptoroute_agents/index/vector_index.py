"""VectorIndex: a Faiss inner-product index with removal by id, snapshots and background compaction.

Layout: an immutable *base* Faiss index, an append-only *delta* buffer searched with one matrix
product, and a set of *tombstones* (removed ids). A query reads one snapshot (base, delta length,
tombstones) without taking any lock. Adding vectors writes past the end of the delta buffer (no
copy of the base); removing adds tombstones. When the delta or the tombstones grow large, a new
base is built beside the live one and swapped in.

The Faiss side (building, saving, reading bases) is in :mod:`.faiss_base`, the snapshot in
:mod:`.snapshot`, the first stages of a flat base in :mod:`.pq_screen` (the default) and :mod:`.screen` (INT8),
and the exact float32 scan in :mod:`.exact`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable
from typing import Any, Literal

import faiss
import numpy as np

from ..errors import InvalidInputError
from .exact import exact_top_k
from .faiss_base import (
    EMPTY_IDS,
    FaissSettings,
    IndexKind,
    SavedBase,
    base_contents,
    build_base,
    flat_view,
    graph_base,
    new_flat_storage,
    read_saved_base,
    search_params,
    serialize_base,
)
from .pq_screen import build_pq_screen
from .screen import build_screen
from .snapshot import IndexSnapshot
from .stages import Screen

__all__ = ["VectorIndex", "IndexKind", "SavedBase"]

log = logging.getLogger(__name__)


class VectorIndex:
    """An inner-product index over unit vectors, keyed by int64 ids.

    Args:
        dim: vector dimension.
        kind: ``"flat"`` (exact, the default), ``"hnsw"`` or ``"ivf"`` (approximate, for a million
            vectors and more). Vectors in the delta buffer are always searched exactly.
        delta_limit: delta rows before a compaction folds them into the base.
        tombstone_ratio: removed-but-present rows, as a share of the base, before a compaction.
        background: compact in a background thread (True) or inline in the writer (False).
        hnsw_m, ef_construction, ef_search: HNSW settings.
        nlist, nprobe: IVF settings (nlist None: about 4 * sqrt(n)).
        screen: for a flat base, find candidates with a first stage (``stage``) and re-score them
            in float32. None (the default) screens bases of ``screen_min`` rows and more when the
            screen runs and is faster than float32 on this CPU (checked once per base); False never;
            True screens every non-empty flat base when it runs. The screen is built beside the live
            base (in the background with ``background``); searches scan in float32 meanwhile.
        screen_min: the smallest base that ``screen=None`` screens. 4,096 rows: right after an
            encoder call (how a routed query meets the index) one query through the
            product-quantized stage took 0.25 ms at 4,000 rows against 0.69 ms for the exact
            float32 scan, whose two onnxruntime threads must be woken (0.24 against 0.47 at 2,000
            rows, 0.29 against 2.06 at 16,000; ``benchmarks/scale.py``'s single rows); below
            it a small base keeps the exact scan, and the stage's build (about 0.7 s of one core
            in the background at 4,000-10,000 rows) is not worth it.
        stage: the screen of a flat base. ``"pq"`` (the default): product-quantized codes (4 bits
            per 4 dimensions, :mod:`synaptoroute_agents.index.pq_screen`) give candidates that
            are re-scored in float32; reads 1/8 of the INT8 screen's bytes per query; the exact
            top-1 is among the candidates on every measured query, but that is measured, not
            proved. ``"int8"``: the INT8 screen, exact by construction, reads one byte per
            dimension of every row. Either falls back to the other, then to float32, where it
            cannot run.

    Ids must be unique for the index's lifetime: an id that was removed is never added again.
    """

    def __init__(
        self,
        dim: int,
        *,
        kind: IndexKind = "flat",
        delta_limit: int = 4096,
        tombstone_ratio: float = 0.1,
        background: bool = True,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        nlist: int | None = None,
        nprobe: int = 32,
        screen: bool | None = None,
        screen_min: int = 4096,
        stage: Literal["pq", "int8"] = "pq",
    ) -> None:
        if kind not in ("flat", "hnsw", "ivf"):
            raise InvalidInputError(f"unknown index kind {kind!r}: use 'flat', 'hnsw' or 'ivf'")
        if dim <= 0:
            raise InvalidInputError("dim must be positive")
        self.dim = dim
        self.kind: IndexKind = kind
        self.delta_limit = max(16, int(delta_limit))
        self.tombstone_ratio = tombstone_ratio
        self.background = background
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.nlist = nlist
        self.nprobe = nprobe
        self.screen = screen
        self.screen_min = max(1, int(screen_min))
        if stage not in ("pq", "int8"):
            raise InvalidInputError(f"unknown screen stage {stage!r}: use 'pq' or 'int8'")
        self.stage: Literal["pq", "int8"] = stage
        # (base it screens, its inner index, the screen or None while building / when not worth it):
        # the screen reads the inner index's rows without a copy, so this keeps them alive
        self._screen: tuple[Any, Any, Screen | None] = (None, None, None)
        self._screen_builder: threading.Thread | None = None
        self._lock = threading.Lock()
        self._live_ids: set[int] = set()
        self._compacting = False
        self._compactor: threading.Thread | None = None
        self._generation = 0
        self._snap = self._empty_snapshot()
        # (Faiss flat storage, a writable view of its rows) handed out by reserve(), not yet loaded
        self._reserved: tuple[Any, np.ndarray] | None = None

    # ------------------------------------------------------------------ building
    def _empty_snapshot(self) -> IndexSnapshot:
        return IndexSnapshot.empty(self.dim)

    def reserve(self, n: int, dim: int) -> np.ndarray:
        """A writable ``(n, dim)`` float32 array inside a new Faiss flat storage.

        A :meth:`load` (or :meth:`load_serialized`) given exactly this array adopts that storage
        as its base's rows instead of copying them: a boot reads the store's vectors straight
        into it (one copy of the rows in memory instead of two). Any other load drops it.
        """
        if dim != self.dim:
            raise InvalidInputError(f"vectors must have {self.dim} dimensions, got {dim}")
        if n <= 0:
            self._reserved = None
            return np.empty((0, self.dim), dtype=np.float32)
        self._reserved = new_flat_storage(n, self.dim)
        return self._reserved[1]

    def _take_reserved(self, vecs: np.ndarray) -> Any:
        """The storage :meth:`reserve` made for ``vecs`` (now counted), or None; forgets it."""
        held, self._reserved = self._reserved, None
        if held is None:
            return None
        storage, view = held
        if vecs.shape != view.shape or vecs.ctypes.data != view.ctypes.data:
            return None
        storage.ntotal = len(view)
        return storage

    def _settings(self) -> FaissSettings:
        return FaissSettings(
            self.kind, self.dim, self.hnsw_m, self.ef_construction, self.ef_search, self.nlist, self.nprobe
        )

    def _build_base(self, ids: np.ndarray, vecs: np.ndarray, storage: Any = None) -> tuple[Any, Any]:
        """A new base over ``vecs``; ``storage``: a flat Faiss index already holding ``vecs``."""
        return build_base(self._settings(), ids, vecs, storage)

    def _base_contents(self, snap: IndexSnapshot) -> tuple[np.ndarray, np.ndarray]:
        return base_contents(snap.base, snap.base_inner, snap.base_count, self.dim)

    def _check(
        self, ids: Iterable[int] | np.ndarray, vecs: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        id_arr = np.ascontiguousarray(
            np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        )
        if id_arr.ndim != 1:
            raise InvalidInputError("ids must be one-dimensional")
        if vecs is None:
            return id_arr, None
        v = np.ascontiguousarray(np.asarray(vecs, dtype=np.float32))
        if v.ndim != 2 or v.shape != (len(id_arr), self.dim):
            raise InvalidInputError(f"vectors must have shape ({len(id_arr)}, {self.dim}), got {v.shape}")
        return id_arr, v

    def load(self, ids: Iterable[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Replace the whole content with ``vectors`` keyed by ``ids`` (bulk load, e.g. at boot)."""
        id_arr, vecs = self._check(ids, vectors)
        assert vecs is not None
        storage = self._take_reserved(vecs)  # held until the build is done: it may hold vecs
        ascending = len(id_arr) < 2 or bool(np.all(id_arr[1:] > id_arr[:-1]))
        if not ascending and len(np.unique(id_arr)) != len(id_arr):
            raise InvalidInputError("ids must be unique")
        base, inner = self._build_base(id_arr, vecs, storage)
        snap = self._empty_snapshot()
        snap.base, snap.base_inner, snap.base_count, snap.live = base, inner, len(id_arr), len(id_arr)
        with self._lock:
            self._generation += 1
            self._live_ids = set(id_arr.tolist())
            self._snap = snap
        if self.background:
            self._screen_of(snap)  # start building the screen now, not at the first search

    def cache_key(self) -> str:
        """What a serialized base depends on besides the data (kind and build settings)."""
        if self.kind == "hnsw":
            return f"index:hnsw:d{self.dim}:m{self.hnsw_m}:efc{self.ef_construction}"
        return f"index:{self.kind}:d{self.dim}:nlist{self.nlist}"

    def pending(self) -> bool:
        """True when vectors wait in the delta buffer or removed ones in the base (a compaction would
        change the base)."""
        snap = self._snap
        return bool(snap.delta_n or snap.tomb)

    def serialize(self) -> bytes | None:
        """The built base index as bytes (None when empty). Call :meth:`compact` first to fold
        the delta and tombstones in.

        An HNSW base is saved as its ids and its graph only: the vectors are the ones the caller
        already holds (the store's snapshot), so :meth:`load_serialized` takes them from its
        ``vectors`` argument instead of reading them a second time.
        """
        snap = self._snap
        if snap.base is None:
            return None
        ids = snap.base_id_array() if isinstance(snap.base_inner, faiss.IndexHNSW) else EMPTY_IDS
        return serialize_base(snap.base, snap.base_inner, ids)

    def read_serialized(self, blob: bytes) -> SavedBase | None:
        """Parse a base saved by :meth:`serialize`: the part of :meth:`load_serialized` that needs
        no vectors, so it can run while they are still being read. None (logged) when the blob is
        damaged or does not fit this index (another kind or dimension)."""
        return read_saved_base(blob, self.kind, self.dim)

    def load_serialized(self, blob: bytes | SavedBase, ids: np.ndarray, vectors: np.ndarray) -> bool:
        """Boot from a serialized base (or one :meth:`read_serialized` parsed) instead of building
        one, then bring it up to ``ids``.

        Ids in the blob but not in ``ids`` become tombstones; ``ids`` missing from the blob go
        to the delta buffer (their rows of ``vectors``). Returns False (and changes nothing)
        when the blob does not fit this index (another kind, dimension or a damaged blob).
        """
        id_arr, vecs = self._check(ids, vectors)
        assert vecs is not None
        saved = self.read_serialized(blob) if isinstance(blob, bytes | bytearray) else blob
        if saved is None:
            return False
        base_ids, inner = saved.ids, saved.inner
        base = saved.base if saved.base is not None else self._graph_base(saved, id_arr, vecs)
        gone = np.setdiff1d(base_ids, id_arr, assume_unique=True)
        fresh = ~np.isin(id_arr, base_ids, assume_unique=True)
        n_new = int(fresh.sum())
        cap = max(1024, 2 * n_new)
        dv = np.empty((cap, self.dim), dtype=np.float32)
        di = np.empty(cap, dtype=np.int64)
        dv[:n_new] = vecs[fresh]
        di[:n_new] = id_arr[fresh]
        self._reserved = None  # a reservation the base did not adopt (rows in another order)
        snap = IndexSnapshot(
            base, inner, int(base.ntotal), dv, di, n_new, frozenset(gone.tolist()), len(id_arr)
        )
        with self._lock:
            self._generation += 1
            self._live_ids = set(id_arr.tolist())
            self._snap = snap
        if n_new >= self.delta_limit or len(gone) > max(256, self.tombstone_ratio * max(1, snap.base_count)):
            self._maybe_compact()
        return True

    def _graph_base(self, saved: SavedBase, ids: np.ndarray, vecs: np.ndarray) -> Any:
        """The HNSW base of a saved graph, its rows looked up in ``ids``/``vecs`` by id (see
        :func:`~synaptoroute_agents.index.faiss_base.graph_base`); rows :meth:`reserve` made are
        adopted when they are the graph's own, in its order."""
        same = len(saved.ids) == len(ids) and np.array_equal(saved.ids, ids)
        storage = self._take_reserved(vecs) if same else None
        return graph_base(saved, ids, vecs, self.dim, storage)

    # ------------------------------------------------------------------ mutation
    def add(self, ids: Iterable[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors; they are visible to the next search. Costs O(len(ids)), not O(size)."""
        self.apply(EMPTY_IDS, ids, vectors)

    def remove(self, ids: Iterable[int] | np.ndarray) -> int:
        """Remove vectors by id; unknown ids are ignored. Returns how many were removed."""
        return self.apply(ids, EMPTY_IDS, np.empty((0, self.dim), dtype=np.float32))

    def apply(
        self, remove: Iterable[int] | np.ndarray, ids: Iterable[int] | np.ndarray, vectors: np.ndarray
    ) -> int:
        """Remove ``remove`` and add ``ids``/``vectors`` as ONE new snapshot (an atomic replace).

        A concurrent search sees either the state before or the state after, never a mix.
        Returns how many ids were removed.
        """
        rem, _ = self._check(remove)
        id_arr, vecs = self._check(ids, vectors)
        assert vecs is not None
        n = len(id_arr)
        with self._lock:
            gone = [i for i in rem.tolist() if i in self._live_ids]
            new_ids = id_arr.tolist()
            if n:
                if len(set(new_ids)) != n or not self._live_ids.isdisjoint(new_ids):
                    raise InvalidInputError("ids must be unique and not already in the index")
                if any(i in self._snap.tomb for i in new_ids):
                    raise InvalidInputError("an id that was removed cannot be added again before a rebuild")
            if not gone and not n:
                return 0
            snap = self._snap
            buf_v, buf_i, used = snap.delta_vecs, snap.delta_ids, snap.delta_n
            if n:
                if used + n > len(buf_i):
                    cap = max(2 * len(buf_i), used + n)
                    nv = np.empty((cap, self.dim), dtype=np.float32)
                    ni = np.empty(cap, dtype=np.int64)
                    nv[:used] = buf_v[:used]
                    ni[:used] = buf_i[:used]
                    buf_v, buf_i = nv, ni
                buf_v[used : used + n] = vecs
                buf_i[used : used + n] = id_arr
            tomb = snap.tomb.union(gone) if gone else snap.tomb
            self._live_ids.difference_update(gone)
            self._live_ids.update(new_ids)
            self._snap = IndexSnapshot(
                snap.base,
                snap.base_inner,
                snap.base_count,
                buf_v,
                buf_i,
                used + n,
                tomb,
                snap.live + n - len(gone),
            )
            need = used + n >= self.delta_limit or len(tomb) > max(
                256, self.tombstone_ratio * max(1, snap.base_count)
            )
        if need:
            self._maybe_compact()
        return len(gone)

    def __len__(self) -> int:
        return self._snap.live

    def __contains__(self, item: object) -> bool:
        return item in self._live_ids

    def live_id_array(self) -> np.ndarray:
        """Every live id as physically present in one snapshot (base + delta, minus removed ones).

        An id appears as many times as it is stored, so a duplicate would show up twice (for
        consistency checks).
        """
        snap = self._snap
        b_ids, _ = (
            (faiss.vector_to_array(snap.base.id_map).astype(np.int64), None)
            if snap.base is not None and snap.base_count
            else (EMPTY_IDS, None)
        )
        ids = np.concatenate([b_ids, snap.delta_ids[: snap.delta_n]])
        if snap.tomb:
            ids = ids[~np.isin(ids, snap.tomb_array())]
        return ids

    def ids(self) -> set[int]:
        """A copy of the live ids."""
        with self._lock:
            return set(self._live_ids)

    # ------------------------------------------------------------------ compaction
    def _maybe_compact(self) -> None:
        with self._lock:
            if self._compacting:
                return
            self._compacting = True
        if self.background:
            t = threading.Thread(target=self._compact_guarded, name="synaptoroute-compact", daemon=True)
            self._compactor = t
            t.start()
        else:
            self._compact_guarded()

    def _compact_guarded(self) -> None:
        try:
            self.compact()
        except Exception:  # a failed compaction leaves the live snapshot in place
            log.exception("index compaction failed; the live index is unchanged")
        finally:
            with self._lock:
                self._compacting = False

    def compact(self) -> None:
        """Fold the delta and the tombstones into a new base, built beside the live one."""
        s0 = self._snap
        gen0 = self._generation
        b_ids, b_vecs = self._base_contents(s0)
        d_ids, d_vecs = s0.delta_ids[: s0.delta_n], s0.delta_vecs[: s0.delta_n]
        ids = np.concatenate([b_ids, d_ids])
        vecs = np.concatenate([b_vecs, d_vecs]) if len(d_ids) else np.array(b_vecs, copy=True)
        if s0.tomb:
            keep = ~np.isin(ids, s0.tomb_array())
            ids, vecs = ids[keep], vecs[keep]
        base, inner = self._build_base(np.ascontiguousarray(ids), np.ascontiguousarray(vecs))
        # the new base comes with its screen: no search after the swap scans it in float32
        screened = self._wants_screen(inner, len(ids))
        screen = self._new_screen(flat_view(inner), inner) if screened else None
        with self._lock:
            if self._generation != gen0:
                return  # a bulk load replaced everything meanwhile
            s1 = self._snap
            rest_n = s1.delta_n - s0.delta_n
            cap = max(1024, 2 * rest_n)
            nv = np.empty((cap, self.dim), dtype=np.float32)
            ni = np.empty(cap, dtype=np.int64)
            nv[:rest_n] = s1.delta_vecs[s0.delta_n : s1.delta_n]
            ni[:rest_n] = s1.delta_ids[s0.delta_n : s1.delta_n]
            self._snap = IndexSnapshot(base, inner, len(ids), nv, ni, rest_n, s1.tomb - s0.tomb, s1.live)
            if screened:
                self._screen = (base, inner, screen)

    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait for a running background compaction and screen build (for tests and benchmarks)."""
        for t in (self._compactor, self._screen_builder):
            if t is not None:
                t.join(timeout)

    def prepare(self) -> None:
        """Build what searches of the current base use (its INT8 screen), now, and wait for it."""
        self._screen_of(self._snap)
        t = self._screen_builder
        if t is not None:
            t.join()

    # ------------------------------------------------------------------ search
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner products for each query row.

        Returns ``(scores, ids)`` of shape ``(n_queries, k)``, best first; missing slots hold
        ``-inf`` and id ``-1``. Removed ids never appear.
        """
        q = np.ascontiguousarray(np.asarray(queries, dtype=np.float32))
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise InvalidInputError(f"queries must have shape (n, {self.dim}), got {q.shape}")
        k = int(k)
        if k <= 0:
            raise InvalidInputError("k must be positive")
        snap = self._snap
        nq = len(q)
        parts_s: list[np.ndarray] = []
        parts_i: list[np.ndarray] = []
        screened = False  # the base went through its screen (best first, -inf / -1 in empty slots)
        # the delta's scan may take the lone-query path only when the base took it too (or there is
        # no base): the scores of two paths agree to rounding only, and exact ties between a base
        # row and a delta row must order the same for a query alone as in a batch
        lone_delta = True
        if snap.base is not None and snap.base_count and isinstance(snap.base_inner, faiss.IndexFlat):
            screen = self._screen_of(snap)
            lone_delta = screen is None
            if screen is not None:
                # INT8 screen + float32 re-rank of every row that can still reach the top-k
                s, rows = screen.search(q, k, snap.base_dead())
                if nq == 1 and rows.min() >= 0:  # every slot filled (a lone query): one gather
                    i = snap.base_id_array()[rows]
                else:
                    i = np.where(rows >= 0, snap.base_id_array()[np.maximum(rows, 0)], -1)
                screened = True
            else:
                # Exact base: one matrix product and top-k over Faiss's own rows (no copy) in
                # onnxruntime beat Faiss's flat search on few cores, single queries and batches alike.
                s, i = exact_top_k(q, snap.base_vectors(), snap.base_id_array(), snap.base_dead(), k)
            parts_s.append(s)
            parts_i.append(i)
        elif snap.base is not None and snap.base_count:
            lone_delta = False
            kb = min(k, snap.base_count)
            params = self._params(snap)
            if params is None:
                s, i = snap.base.search(q, kb)
            else:
                s, i = snap.base.search(q, kb, params=params)
            parts_s.append(s)
            parts_i.append(i)
        if snap.delta_n:
            s, i = exact_top_k(
                q,
                snap.delta_vecs[: snap.delta_n],
                snap.delta_ids[: snap.delta_n],
                snap.delta_dead(),
                k,
                lone=lone_delta,
            )
            parts_s.append(s)
            parts_i.append(i)
        if not parts_s:
            return np.full((nq, k), -np.inf, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)
        if screened and len(parts_s) == 1 and parts_s[0].shape[1] == k:
            # the screened base alone (the usual case: an empty delta): already in the final form
            return parts_s[0].astype(np.float32, copy=False), parts_i[0]
        if nq == 1 and len(parts_s) == 2:
            merged = _merge_one(parts_s, parts_i, k)
            if merged is not None:
                return merged
        s = np.concatenate(parts_s, axis=1) if len(parts_s) > 1 else parts_s[0]
        i = np.concatenate(parts_i, axis=1) if len(parts_i) > 1 else parts_i[0]
        i = np.where(i < 0, -1, i)
        s = np.where(i < 0, -np.inf, s).astype(np.float32, copy=False)
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
        s = np.take_along_axis(s, order, axis=1)
        i = np.take_along_axis(i, order, axis=1)
        i = np.where(np.isfinite(s), i, -1)
        if s.shape[1] < k:
            pad = k - s.shape[1]
            s = np.pad(s, ((0, 0), (0, pad)), constant_values=-np.inf)
            i = np.pad(i, ((0, 0), (0, pad)), constant_values=-1)
        return s, i

    def _screen_of(self, snap: IndexSnapshot) -> Screen | None:
        """The INT8 screen of the snapshot's base, or None (not wanted, not worth it, not built yet:
        the first call for a new base starts building it)."""
        base, _, screen = self._screen
        if base is snap.base:
            return screen
        if not self._wants_screen(snap.base_inner, snap.base_count):
            return None
        with self._lock:
            if self._screen[0] is snap.base:
                return self._screen[2]
            if snap.base is not self._snap.base:
                return None  # a search still on a replaced base: never build for it
            self._screen = (snap.base, snap.base_inner, None)  # claimed: one build per base
        if self.background:
            t = threading.Thread(
                target=self._build_screen, args=(snap,), name="synaptoroute-screen", daemon=True
            )
            self._screen_builder = t
            t.start()
            return None
        self._build_screen(snap)
        return self._screen[2] if self._screen[0] is snap.base else None

    def _wants_screen(self, inner: Any, count: int) -> bool:
        """Whether a base of ``count`` rows held by ``inner`` is to be screened."""
        if self.screen is False or not count or not isinstance(inner, faiss.IndexFlat):
            return False
        return self.screen is True or count >= self.screen_min

    def _new_screen(self, vecs: np.ndarray, inner: Any = None) -> Screen | None:
        """The screen of these base rows (None where it cannot run or, unless forced, is slower);
        ``inner``: the Faiss flat index that holds them (re-scoring reads its rows in place)."""
        calibrate = self.screen is None
        if self.stage == "pq":
            pq = build_pq_screen(vecs, calibrate=calibrate, flat=inner)
            if pq is not None:
                return pq
        return build_screen(vecs, calibrate=calibrate)

    def _build_screen(self, snap: IndexSnapshot) -> None:
        screen = self._new_screen(snap.base_vectors(), snap.base_inner)
        with self._lock:
            if self._screen[0] is snap.base:
                self._screen = (snap.base, snap.base_inner, screen)

    def screen_info(self) -> dict[str, Any]:
        """Whether and how the current base is screened (for stats and benchmarks)."""
        base, _, screen = self._screen
        current = base is not None and base is self._snap.base
        return {
            "enabled": bool(current and screen is not None),
            "stage": type(screen).__name__ if current and screen is not None else None,
            "rows": screen.n if current and screen is not None else 0,
            "build_seconds": screen.build_seconds if current and screen is not None else None,
            "candidates": screen.candidates if current and screen is not None else 0,
        }

    def _params(self, snap: IndexSnapshot) -> Any:
        return search_params(snap.base_inner, snap.selector(), self.ef_search, self.nprobe)


def _best_first(scores: list[float], ids: list[int]) -> list[float] | None:
    """``scores`` with ``-inf`` where the id is missing (< 0), or None unless they are then best
    first (non-increasing, no NaN)."""
    out = [sc if i >= 0 else -math.inf for sc, i in zip(scores, ids, strict=True)]
    for a, b in zip(out, out[1:], strict=False):
        if not a >= b:  # also False for NaN
            return None
    return out


def _merge_one(
    parts_s: list[np.ndarray], parts_i: list[np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The base's and the delta's answers to ONE query merged as the general path merges them
    (a stable sort of base-then-delta, best first; missing or removed slots ``-inf`` / ``-1``), in
    plain Python: for one query the NumPy calls of the general path cost more than the merge
    itself right after an encoder call (0.15 ms at 10,000 vectors with a 100-row delta). None
    when a part is not already best first (the general path answers then)."""
    a_i, b_i = parts_i[0][0].tolist(), parts_i[1][0].tolist()
    a_s = _best_first(parts_s[0][0].tolist(), a_i)
    b_s = _best_first(parts_s[1][0].tolist(), b_i)
    if a_s is None or b_s is None:
        return None
    out_s: list[float] = []
    out_i: list[int] = []
    x = y = 0
    while len(out_s) < k and (x < len(a_s) or y < len(b_s)):
        if y >= len(b_s) or (x < len(a_s) and a_s[x] >= b_s[y]):  # ties: the base first
            sc, i = a_s[x], a_i[x]
            x += 1
        else:
            sc, i = b_s[y], b_i[y]
            y += 1
        out_s.append(sc)
        out_i.append(i if math.isfinite(sc) else -1)
    pad = k - len(out_s)
    return (
        np.array([out_s + [-math.inf] * pad], dtype=np.float32),
        np.array([out_i + [-1] * pad], dtype=np.int64),
    )
