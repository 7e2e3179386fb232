"""The store's tables, its schema version, and opening (or creating) them in a database.

A new table goes into :data:`metadata` here; a change to an existing one raises
:data:`SCHEMA_VERSION` (a store written by a newer version is refused, never misread).
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DatabaseError, IntegrityError

from ..errors import NotARouterStoreError, SchemaVersionError, StoreError, StoreNotFoundError
from .engine import Database

__all__ = [
    "SCHEMA_VERSION",
    "metadata",
    "t_meta",
    "t_routes",
    "t_utterances",
    "t_changes",
    "t_fitted",
    "t_snapshots",
    "t_snapshot_chunks",
    "open_schema",
]

log = logging.getLogger(__name__)

#: Version of the table layout written by this code.
SCHEMA_VERSION = 1
APP = "synaptoroute-agents"

metadata = sa.MetaData()

t_meta = sa.Table(
    "sr_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
t_routes = sa.Table(
    "sr_routes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("description", sa.Text),
    sa.Column("threshold", sa.Float),
    sa.Column("metadata", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sqlite_autoincrement=True,
)
t_utterances = sa.Table(
    "sr_utterances",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("route_id", sa.ForeignKey("sr_routes.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("text_hash", sa.String(40), nullable=False),
    sa.Column("model_id", sa.String(256), nullable=False),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("vector", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("route_id", "text_hash", name="uq_sr_utterance_text"),
    sqlite_autoincrement=True,
)
#: The change log: one row per mutation; its id is the store-wide change version.
t_changes = sa.Table(
    "sr_changes",
    metadata,
    sa.Column(
        "version", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("op", sa.String(32), nullable=False),
    sa.Column("route", sa.String(128)),
    sa.Column("origin", sa.String(64)),
    sqlite_autoincrement=True,
)
#: Fitted state (and rebuildable caches such as a saved index) by key.
t_fitted = sa.Table(
    "sr_fitted",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("model_id", sa.String(256), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("blob", sa.LargeBinary, nullable=False),
)

#: Packed boot snapshots (see :mod:`synaptoroute_agents.store.snapshots`): a header row per
#: snapshot and its payload cut into chunks of a few MiB, so a boot reads a few large rows
#: instead of one row per utterance. A snapshot is a cache of the utterance table, never the truth.
t_snapshots = sa.Table(
    "sr_snapshots",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model_id", sa.String(256), nullable=False),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("routes", sa.BigInteger, nullable=False),
    sa.Column("nbytes", sa.BigInteger, nullable=False),
    sa.Column("chunks", sa.Integer, nullable=False),
    sa.Column("layout", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
t_snapshot_chunks = sa.Table(
    "sr_snapshot_chunks",
    metadata,
    sa.Column("snapshot_id", sa.String(32), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
# PostgreSQL would try to compress each chunk (float32 noise does not compress): keep them plain.
event.listen(
    t_snapshot_chunks,
    "after_create",
    sa.DDL("ALTER TABLE sr_snapshot_chunks ALTER COLUMN data SET STORAGE EXTERNAL").execute_if(
        dialect="postgresql"
    ),
)
SNAPSHOT_TABLES = ("sr_snapshots", "sr_snapshot_chunks")


def open_schema(db: Database) -> tuple[int, bool]:
    """Check (or create) the store's tables in ``db``.

    Returns (schema version, whether the snapshot tables are there). Raises
    :class:`NotARouterStoreError` for a database of something else,
    :class:`SchemaVersionError` for a store written by a newer version, and
    :class:`StoreNotFoundError` for a database without a store when ``db.create`` is False (no
    table is created then).
    """
    try:
        with db.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
    except DatabaseError as exc:
        raise NotARouterStoreError(f"{db._safe_url()} is not a router store: {exc.orig}") from exc
    except Exception as exc:
        raise StoreError(f"cannot open store {db._safe_url()}: {exc}") from exc
    if "sr_meta" in tables:
        version = _check_meta(db)
        if not set(SNAPSHOT_TABLES) <= tables:
            return version, _add_snapshot_tables(db)
        return version, True
    if db.dialect == "sqlite" and tables:
        raise NotARouterStoreError(
            f"{db._safe_url()} is a database of something else (tables: {', '.join(sorted(tables)[:5])})"
        )
    if not db.create:
        raise StoreNotFoundError(f"{db._safe_url()} holds no router store (nothing was created)")
    try:
        with db._tx() as conn:
            metadata.create_all(conn)
            if conn.execute(sa.select(sa.func.count()).select_from(t_meta)).scalar_one() == 0:
                conn.execute(
                    t_meta.insert(),
                    [
                        {"key": "app", "value": APP},
                        {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                        {"key": "created_at", "value": repr(time.time())},
                    ],
                )
    except IntegrityError:
        pass  # another process initialized the same database at the same moment
    return _check_meta(db), True


def _add_snapshot_tables(db: Database) -> bool:
    """Add the (optional) snapshot tables to a store made before they existed; True when they
    are there afterwards."""
    try:
        with db._tx() as conn:
            metadata.create_all(conn, tables=[t_snapshots, t_snapshot_chunks])
    except Exception as exc:  # read-only user, a concurrent creator: boot without snapshots
        log.info("snapshot tables not created (%s); boots read the utterance rows", exc)
    with db.engine.connect() as conn:
        return set(SNAPSHOT_TABLES) <= set(sa.inspect(conn).get_table_names())


def _check_meta(db: Database) -> int:
    """The schema version of the store in ``db`` (refused when it is not ours or too new)."""
    with db.engine.connect() as conn:
        try:
            rows = {str(k): str(v) for k, v in conn.execute(sa.select(t_meta.c.key, t_meta.c.value))}
        except DatabaseError as exc:
            raise NotARouterStoreError(f"{db._safe_url()} is not a router store: {exc.orig}") from exc
    if rows.get("app") != APP:
        raise NotARouterStoreError(f"{db._safe_url()} is not a router store (no {APP} marker)")
    version = int(rows.get("schema_version", "0"))
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"store schema version {version} is newer than this package understands ({SCHEMA_VERSION}); upgrade"
        )
    return version
