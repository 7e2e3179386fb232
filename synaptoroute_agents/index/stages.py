"""The contract of a *screen*: a structure built over a flat base's fixed rows that answers
exact top-k by row faster than a float32 scan of every row.

:class:`~synaptoroute_agents.index.VectorIndex` builds one per flat base, beside the live base
(in the background), swaps it in with the base, and scans in float32 until it is ready. Two
exist: product-quantized codes with float32 re-scoring (:mod:`.pq_screen`, the default) and the
INT8 screen (:mod:`.screen`, exact by construction). A new first stage (binary or PCA-reduced codes,
a graph, route centroids) is a new module here with a class that satisfies :class:`Screen` and
re-scores its candidates exactly, plus a builder the index calls in
:meth:`VectorIndex._new_screen <synaptoroute_agents.index.VectorIndex._new_screen>`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

__all__ = ["Screen", "faster_than_float"]

log = logging.getLogger(__name__)


class Screen(Protocol):
    """What the index needs from a screen of ``n`` fixed rows."""

    #: rows screened
    n: int
    #: seconds the build took (for stats)
    build_seconds: float
    #: rows re-scored exactly since the build (for benchmarks)
    candidates: int

    def search(self, q: np.ndarray, k: int, dead: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` ``(scores, rows)`` ``(b, k)`` for each query, best first, ties by the
        lower row; missing slots ``-inf`` and ``-1``. ``dead`` masks rows that must not appear."""
        ...


def _best_ms(run: Callable[[], Any], rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        run()
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


def faster_than_float(name: str, stage: Callable[[], Any], scan: Callable[[], Any]) -> bool:
    """Whether a freshly built screen answers its probe queries faster than a float32 scan does.

    Each is timed three times on this machine and the best time counts: a screen that does not pay
    for itself here is not used (the index keeps scanning in float32).
    """
    t_stage, t_float = _best_ms(stage), _best_ms(scan)
    if t_stage < t_float:
        return True
    log.info("the %s screen (%.2f ms) is not faster than float32 (%.2f ms)", name, t_stage, t_float)
    return False
