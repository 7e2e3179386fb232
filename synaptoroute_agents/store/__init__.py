"""The route store: the truth every router rebuilds its memory from.

Modules:
    schema: the tables, the schema version, opening or creating them.
    engine: the SQLAlchemy engine (SQLite and PostgreSQL settings), transactions and locks.
    route_store: :class:`RouteStore` (routes, utterances, change log, fitted state).
    snapshots: the packed boot snapshot (its codec and its rows).
    records: the plain records the store returns.
"""

from __future__ import annotations

from .engine import Database, store_url
from .records import LoadedStore, StoredUtterances
from .route_store import RouteStore
from .schema import (
    SCHEMA_VERSION,
    metadata,
    t_changes,
    t_fitted,
    t_meta,
    t_routes,
    t_snapshot_chunks,
    t_snapshots,
    t_utterances,
)
from .snapshots import SnapshotInfo

__all__ = [
    "RouteStore",
    "StoredUtterances",
    "LoadedStore",
    "SnapshotInfo",
    "SCHEMA_VERSION",
    "store_url",
    "Database",
    "metadata",
    "t_meta",
    "t_routes",
    "t_utterances",
    "t_changes",
    "t_fitted",
    "t_snapshots",
    "t_snapshot_chunks",
]
