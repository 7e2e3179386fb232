"""The router: :class:`SemanticRouter` and what it is made of.

* :mod:`.core`: the :class:`SemanticRouter` surface (constructor, mutations, fit, queries).
* :mod:`.tables`: id tables and the epoch scheme that lets readers go without a lock.
* :mod:`.boot`: boot, boot snapshots, the saved approximate index, catching up on the change log.
* :mod:`.decide`: building RouteMatch decisions from index hits and the scoring policy.
"""

from __future__ import annotations

from ..fitting.data import FitSummary
from ..fitting.data import name_examples as _name_examples
from .boot import POLICY_KEY, REFRESH_PAGE, SNAPSHOT_MAX_BEHIND, SNAPSHOT_MIN_VECTORS
from .core import Listener, SemanticRouter
from .decide import MAX_TOP_K

__all__ = [
    "MAX_TOP_K",
    "POLICY_KEY",
    "REFRESH_PAGE",
    "SNAPSHOT_MAX_BEHIND",
    "SNAPSHOT_MIN_VECTORS",
    "FitSummary",
    "Listener",
    "SemanticRouter",
    "_name_examples",
]
