"""One consistent state of a :class:`~synaptoroute_agents.index.VectorIndex`: its base, the used
part of its delta buffer and its tombstones.

A search reads one snapshot without any lock; a writer publishes a new snapshot (the base and
the delta buffer are shared, never copied). What a search derives from the tombstones (masks,
a Faiss selector) is computed once per snapshot, on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np

from .faiss_base import flat_view

__all__ = ["IndexSnapshot"]


@dataclass(eq=False)
class IndexSnapshot:
    """Base + delta rows ``[:delta_n]`` - tombstones, as one immutable state."""

    base: Any  # faiss.IndexIDMap2 or None
    base_inner: Any  # keeps the wrapped index alive
    base_count: int
    delta_vecs: np.ndarray
    delta_ids: np.ndarray
    delta_n: int
    tomb: frozenset[int]
    live: int
    _tomb_array: np.ndarray | None = field(default=None, repr=False)
    _selector: Any = field(default=None, repr=False)
    _delta_mask: np.ndarray | None = field(default=None, repr=False)
    _base_vecs: np.ndarray | None = field(default=None, repr=False)
    _base_ids: np.ndarray | None = field(default=None, repr=False)
    _base_mask: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def empty(cls, dim: int, cap: int = 1024) -> IndexSnapshot:
        """No base, an empty delta buffer of ``cap`` rows, no tombstones."""
        return cls(
            base=None,
            base_inner=None,
            base_count=0,
            delta_vecs=np.empty((cap, dim), dtype=np.float32),
            delta_ids=np.empty(cap, dtype=np.int64),
            delta_n=0,
            tomb=frozenset(),
            live=0,
        )

    def tomb_array(self) -> np.ndarray:
        """The tombstones as an int64 array."""
        if self._tomb_array is None:
            self._tomb_array = np.fromiter(self.tomb, dtype=np.int64, count=len(self.tomb))
        return self._tomb_array

    def selector(self) -> Any:
        """A Faiss selector that skips the tombstones (None when there are none)."""
        if self._selector is None and self.tomb:
            arr = self.tomb_array()
            batch = faiss.IDSelectorBatch(len(arr), faiss.swig_ptr(arr))
            sel = faiss.IDSelectorNot(batch)
            self._selector = (sel, batch, arr)  # the C++ objects reference each other: keep all
        return None if self._selector is None else self._selector[0]

    def base_vectors(self) -> np.ndarray:
        """The base's rows (a view of Faiss's storage; flat bases only)."""
        if self._base_vecs is None:
            self._base_vecs = flat_view(self.base_inner)
        return self._base_vecs

    def base_id_array(self) -> np.ndarray:
        """The base's ids in its row order."""
        if self._base_ids is None:
            self._base_ids = faiss.vector_to_array(self.base.id_map).astype(np.int64, copy=False)
        return self._base_ids

    def base_dead(self) -> np.ndarray | None:
        """Boolean mask over the base rows of removed ids (None when none is removed)."""
        if not self.tomb:
            return None
        if self._base_mask is None:
            self._base_mask = np.isin(self.base_id_array(), self.tomb_array())
        return self._base_mask

    def delta_dead(self) -> np.ndarray | None:
        """Boolean mask over delta[:delta_n] of removed rows (None when none is removed)."""
        if not self.tomb or self.delta_n == 0:
            return None
        if self._delta_mask is None:
            self._delta_mask = np.isin(self.delta_ids[: self.delta_n], self.tomb_array())
        return self._delta_mask
