"""Faiss bases: building one (flat, HNSW or IVF), saving it as bytes and reading it back, and
handing Faiss's own storage to NumPy without a copy.

A *base* is a ``faiss.IndexIDMap2`` around an inner index that holds the rows. It is immutable
once built: :class:`~synaptoroute_agents.index.VectorIndex` adds to a delta buffer and removes
by tombstones, and builds a new base beside the live one to fold them in.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Literal

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must precede faiss's OpenMP start-up

import faiss  # noqa: E402
import numpy as np  # noqa: E402

__all__ = [
    "IndexKind",
    "SavedBase",
    "FaissSettings",
    "build_base",
    "base_contents",
    "serialize_base",
    "read_saved_base",
    "graph_base",
    "search_params",
    "new_flat_storage",
    "with_ids",
    "flat_view",
]

log = logging.getLogger(__name__)

IndexKind = Literal["flat", "hnsw", "ivf"]
EMPTY_IDS = np.empty(0, dtype=np.int64)
#: The start of a saved HNSW base that holds its ids and graph but not its vectors.
GRAPH_MAGIC = b"SRHNSWG1"


@dataclass(frozen=True, slots=True)
class FaissSettings:
    """How a base is built and searched (see :class:`~synaptoroute_agents.index.VectorIndex`)."""

    kind: IndexKind
    dim: int
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 128
    nlist: int | None = None
    nprobe: int = 32


@dataclass(frozen=True, eq=False)
class SavedBase:
    """A base read back from :meth:`VectorIndex.serialize`'s bytes, not yet loaded."""

    ids: np.ndarray  # the base's ids, in its row order
    inner: Any  # the Faiss index (an HNSW graph still without rows when ``base`` is None)
    base: Any  # the IndexIDMap2 around it, or None for a graph saved without its rows


# --------------------------------------------------------------------------- building
def build_base(s: FaissSettings, ids: np.ndarray, vecs: np.ndarray, storage: Any = None) -> tuple[Any, Any]:
    """``(base, inner)`` over ``vecs`` keyed by ``ids`` (``(None, None)`` when empty);
    ``storage``: a flat Faiss index already holding ``vecs`` (adopted, not copied)."""
    n = len(ids)
    if n == 0:
        return None, None
    kind = s.kind
    inner: Any
    if kind == "flat" and storage is not None:
        return with_ids(storage, ids), storage
    if kind == "ivf" and n < 10_000:
        kind = "flat"  # too few vectors to train useful lists
    if kind == "flat":
        inner = faiss.IndexFlatIP(s.dim)
    elif kind == "hnsw":
        inner = faiss.IndexHNSWFlat(s.dim, s.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = s.ef_construction
        inner.hnsw.efSearch = s.ef_search
    else:
        nlist = s.nlist or max(16, min(int(4 * np.sqrt(n)), n // 39))
        quantizer = faiss.IndexFlatIP(s.dim)
        inner = faiss.IndexIVFFlat(quantizer, s.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = vecs if n <= nlist * 64 else vecs[rng.choice(n, nlist * 64, replace=False)]
        inner.train(sample)
        inner.nprobe = s.nprobe
        inner.make_direct_map()
    base = faiss.IndexIDMap2(inner)
    base.add_with_ids(vecs, ids)
    return base, inner


def base_contents(base: Any, inner: Any, count: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The ids and rows of a base (the rows of a flat or HNSW base are Faiss's own, not copied)."""
    if base is None or count == 0:
        return EMPTY_IDS, np.empty((0, dim), dtype=np.float32)
    ids = faiss.vector_to_array(base.id_map).astype(np.int64, copy=False)
    if isinstance(inner, faiss.IndexIVF):
        vecs: np.ndarray = inner.reconstruct_n(0, count)
    else:
        vecs = flat_view(inner)
    return ids, vecs


def search_params(inner: Any, selector: Any, ef_search: int, nprobe: int) -> Any:
    """Faiss search parameters for a base (None when the defaults do): the HNSW or IVF setting
    and the selector that skips removed ids."""
    if isinstance(inner, faiss.IndexHNSW):
        p = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
        p.efSearch = ef_search
    elif isinstance(inner, faiss.IndexIVF):
        p = faiss.SearchParametersIVF()
        p.nprobe = nprobe
    elif selector is None:
        return None
    else:
        p = faiss.SearchParameters()
    if selector is not None:
        p.sel = selector  # the caller keeps the selector alive while the search runs
    return p


# --------------------------------------------------------------------------- saving
def serialize_base(base: Any, inner: Any, ids: np.ndarray) -> bytes:
    """The bytes of a base. An HNSW base is saved as its ids and its graph only
    (:data:`GRAPH_MAGIC`): its rows are the ones the caller already holds (the store's snapshot)."""
    if isinstance(inner, faiss.IndexHNSW):
        writer = faiss.VectorIOWriter()
        faiss.write_index(inner, writer, faiss.IO_FLAG_SKIP_STORAGE)
        ids = ids.astype("<i8", copy=False)
        head = GRAPH_MAGIC + np.array([len(ids)], dtype="<i8").tobytes()
        return head + ids.tobytes() + faiss.vector_to_array(writer.data).tobytes()
    return bytes(faiss.serialize_index(base))


def read_saved_base(blob: bytes, kind: IndexKind, dim: int) -> SavedBase | None:
    """Parse :func:`serialize_base`'s bytes; None (logged) when damaged or not of ``kind``/``dim``."""
    if blob.startswith(GRAPH_MAGIC):
        graph = _read_graph(blob, dim) if kind == "hnsw" else None
        if graph is None:
            log.warning(
                "a stored HNSW graph could not be read or does not fit this index; building a new one"
            )
        return graph
    if not blob.startswith(b"IxM2"):  # faiss's tag of an IndexIDMap2; anything else is not ours
        log.warning("a stored index is not a Faiss IndexIDMap2; building a new one")
        return None
    base: Any
    try:
        # the object deserialize_index returns owns the C++ index: keep THAT one referenced
        base = faiss.deserialize_index(np.frombuffer(blob, dtype=np.uint8))
        inner = faiss.downcast_index(base.index)
    except Exception:
        log.warning("a stored index could not be read; building a new one")
        return None
    want = faiss.IndexHNSW if kind == "hnsw" else faiss.IndexIVF if kind == "ivf" else faiss.IndexFlat
    if not isinstance(base, faiss.IndexIDMap2) or not isinstance(inner, want) or base.d != dim:
        return None
    return SavedBase(faiss.vector_to_array(base.id_map).astype(np.int64), inner, base)


def _read_graph(blob: bytes, dim: int) -> SavedBase | None:
    """The ids and the graph (without rows) of an HNSW base saved by :func:`serialize_base`."""
    head = len(GRAPH_MAGIC) + 8
    try:
        n = int(np.frombuffer(blob, dtype="<i8", count=1, offset=len(GRAPH_MAGIC))[0])
        if n < 0 or head + 8 * n > len(blob):
            return None
        base_ids = np.frombuffer(blob, dtype="<i8", count=n, offset=head).astype(np.int64)
        reader = faiss.VectorIOReader()
        faiss.copy_array_to_vector(np.frombuffer(blob, dtype=np.uint8, offset=head + 8 * n), reader.data)
        inner = faiss.read_index(reader, faiss.IO_FLAG_SKIP_STORAGE)  # already its own class
    except Exception:
        return None
    if not isinstance(inner, faiss.IndexHNSW) or inner.d != dim or inner.ntotal != n:
        return None
    if inner.metric_type != faiss.METRIC_INNER_PRODUCT:
        return None
    return SavedBase(base_ids, inner, None)


def graph_base(saved: SavedBase, ids: np.ndarray, vecs: np.ndarray, dim: int, storage: Any = None) -> Any:
    """The HNSW base of a saved graph, its rows looked up in ``ids``/``vecs`` by id.

    ``storage``: a flat Faiss index already holding ``vecs`` (when ``ids`` is the graph's own id
    order). A row removed since the save is not there: it gets a zero vector (it is a tombstone
    from then on, never returned, and the next compaction drops it).
    """
    base_ids, inner, n = saved.ids, saved.inner, len(saved.ids)
    if n == len(ids) and np.array_equal(base_ids, ids):
        rows = vecs  # the usual case: the snapshot holds the same rows in the same order
    else:
        storage = None
        order = np.argsort(ids, kind="stable")
        at = np.minimum(np.searchsorted(ids, base_ids, sorter=order), max(0, len(ids) - 1))
        pos = order[at] if len(ids) else np.zeros(n, dtype=np.int64)
        found = ids[pos] == base_ids if len(ids) else np.zeros(n, dtype=bool)
        rows = np.zeros((n, dim), dtype=np.float32)
        rows[found] = vecs[pos[found]]
    if storage is None:
        storage = faiss.IndexFlatIP(dim)
        storage.add(rows)
    inner.storage = storage  # not owned by the C++ index (read without storage, own_fields off):
    inner.referenced_objects = [storage]  # its owner stays referenced
    return with_ids(inner, base_ids)


# --------------------------------------------------------------------------- Faiss storage
def new_flat_storage(n: int, dim: int) -> tuple[Any, np.ndarray]:
    """An empty Faiss flat index sized for ``n`` rows, and a writable view of those rows.

    The rows stay uncounted (``ntotal`` 0) until the caller sets ``ntotal`` to adopt them.
    """
    storage = faiss.IndexFlatIP(dim)
    storage.codes.resize(n * dim * 4)
    view = np.asarray(_RowsOf(storage, n, dim))  # the array keeps the storage alive
    return storage, view


def with_ids(inner: Any, ids: np.ndarray) -> Any:
    """An IndexIDMap2 over ``inner``, which already holds its rows, with ``ids`` as their ids."""
    n = inner.ntotal
    inner.ntotal = 0  # IndexIDMap2 wraps only an empty index: count the rows after
    base = faiss.IndexIDMap2(inner)
    inner.ntotal = n
    base.referenced_objects = [inner]  # type: ignore[attr-defined]  # the owner of inner stays referenced
    faiss.copy_array_to_vector(ids, base.id_map)
    base.ntotal = n
    base.construct_rev_map()
    return base


class _RowsOf:
    """The rows of a Faiss flat storage as an array interface: an array made from it keeps the
    storage (which owns the memory) alive for as long as the array or a view of it lives."""

    def __init__(self, storage: Any, n: int, dim: int) -> None:
        self.storage = storage
        address = faiss.rev_swig_ptr(storage.get_xb(), 1).ctypes.data
        self.__array_interface__ = {
            "shape": (n, dim),
            "typestr": "<f4",
            "data": (address, False),
            "version": 3,
        }


def flat_view(inner: Any) -> np.ndarray:
    """The float32 rows stored by a flat (or HNSW-flat) Faiss index, without copying."""
    storage = inner.storage if isinstance(inner, faiss.IndexHNSW) else inner
    storage = faiss.downcast_index(storage)
    n, d = storage.ntotal, storage.d
    view: np.ndarray = faiss.rev_swig_ptr(storage.get_xb(), n * d).reshape(n, d)  # type: ignore[attr-defined]
    return view
