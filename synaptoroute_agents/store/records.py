"""What the store hands back: plain records of routes with their utterances and vectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..routes import Route

__all__ = ["StoredUtterances", "LoadedStore"]


@dataclass(frozen=True, slots=True)
class StoredUtterances:
    """Utterance rows of one route: ids, texts and vectors (aligned)."""

    route: Route
    ids: np.ndarray
    texts: list[str]
    vectors: np.ndarray
    stale: np.ndarray  # bool per row: made by another encoder


@dataclass(frozen=True, slots=True)
class LoadedStore:
    """Everything a router needs to build its index."""

    routes: dict[str, Route]
    ids: np.ndarray
    route_names: list[str]
    texts: list[str]
    vectors: np.ndarray
    stale: np.ndarray
    version: int
    #: True when the rows come grouped by route, in the order of ``routes`` (a snapshot).
    grouped: bool = False
