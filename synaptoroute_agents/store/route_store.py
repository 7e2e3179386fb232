"""RouteStore: routes, utterances and their embeddings in SQL (SQLite by default, PostgreSQL too).

The store is the truth; the in-memory index is a cache rebuilt from it. Each mutation is one
transaction that also appends a row to a change log, whose id is the store-wide *change version*
(replicas use it to catch up). A mutation is acknowledged only after its commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool

from .errors import (
    DuplicateRouteError,
    InvalidInputError,
    NotARouterStoreError,
    RouteNotFoundError,
    SchemaVersionError,
    StoreError,
)
from .routes import Route

log = logging.getLogger(__name__)

__all__ = ["RouteStore", "StoredUtterances", "SnapshotInfo", "SCHEMA_VERSION", "store_url"]

#: Version of the table layout written by this code.
SCHEMA_VERSION = 1
_APP = "synaptoroute-agents"
_PG_LOCK_KEY = 0x5359_4E52  # advisory lock that serializes mutations store-wide on PostgreSQL

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
t_fitted = sa.Table(
    "sr_fitted",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("model_id", sa.String(256), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("blob", sa.LargeBinary, nullable=False),
)


#: Packed boot snapshots (see :meth:`RouteStore.save_snapshot`): a header row per snapshot and
#: its payload cut into chunks of a few MiB, so a boot reads a few large rows instead of one row
#: per utterance. A snapshot is a cache of the utterance table, never the truth.
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
_SNAPSHOT_TABLES = ("sr_snapshots", "sr_snapshot_chunks")
_SNAPSHOT_FORMAT = 1
_SNAPSHOT_CHUNK = 8 << 20  # bytes per chunk row
_SQLITE_MMAP = 1 << 31  # bytes of a SQLite file mapped while a snapshot is read
_PG_SNAPSHOT_LOCK_KEY = 0x5359_4E53  # serializes snapshot writers only (never mutations)


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def store_url(store: str | os.PathLike[str] | None) -> str:
    """The SQLAlchemy URL for ``store``: None is in memory, a path is a SQLite file, a URL is kept."""
    if store is None or store == ":memory:":
        return "sqlite+pysqlite:///:memory:"
    if isinstance(store, os.PathLike):
        return f"sqlite+pysqlite:///{Path(store).expanduser().resolve()}"
    if not isinstance(store, str):
        raise InvalidInputError(f"store must be None, a path or a SQLAlchemy URL, not {type(store).__name__}")
    if "://" in store:
        if store.startswith("postgresql://") or store.startswith("postgres://"):
            return "postgresql+psycopg://" + store.split("://", 1)[1]
        return store
    return f"sqlite+pysqlite:///{Path(store).expanduser().resolve()}"


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


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """The header of a packed boot snapshot: which encoder made its vectors and which store
    change version its content reflects."""

    id: str
    model_id: str
    dim: int
    version: int
    rows: int
    routes: int
    nbytes: int
    chunks: int
    layout: str
    created_at: float


class RouteStore:
    """Routes, utterances, embeddings, fitted state and a change log in a SQL database.

    Args:
        url: None (in memory), a file path (SQLite) or any SQLAlchemy URL
            (``postgresql://user@host/db`` uses psycopg 3).
        origin: an id written into the change log with each mutation (replica id).
    """

    def __init__(self, url: str | os.PathLike[str] | None = None, *, origin: str | None = None) -> None:
        self.url = store_url(url)
        self.origin = origin or os.urandom(6).hex()
        self.dialect = sa.make_url(self.url).get_backend_name()
        self._memory = self.url.endswith(":memory:")
        self._lock = threading.RLock() if self._memory else None
        #: False when the snapshot tables are missing and could not be added (boots read the rows).
        self.snapshots_enabled = True
        self.engine = self._make_engine()
        self._init_schema()

    # ------------------------------------------------------------------ setup
    def _make_engine(self) -> Engine:
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            if self._memory:
                kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
            else:
                path = Path(sa.make_url(self.url).database or "")
                if path.exists() and path.is_file() and path.stat().st_size > 0:
                    with open(path, "rb") as fh:
                        if fh.read(16) != b"SQLite format 3\x00":
                            raise NotARouterStoreError(
                                f"{path} is not a router store (not a SQLite database)"
                            )
                kwargs.update(connect_args={"check_same_thread": False, "timeout": 60})
        elif self.dialect == "postgresql":
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        try:
            engine = sa.create_engine(self.url, **kwargs)
        except Exception as exc:  # bad URL, missing driver
            raise StoreError(f"cannot open store {self._safe_url()}: {exc}") from exc
        if self.dialect == "sqlite":
            memory = self._memory

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                if not memory:
                    cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA busy_timeout=60000")
                cur.close()

            @event.listens_for(engine, "begin")
            def _begin(conn: Connection) -> None:
                # Writers take the write lock at BEGIN so they queue instead of failing later;
                # readers begin a deferred transaction and never wait for writers (WAL).
                write = conn.get_execution_options().get("sr_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

            # pysqlite's own transaction handling is turned off so BEGIN IMMEDIATE is ours.
            @event.listens_for(engine, "connect")
            def _no_autobegin(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None

        return engine

    @property
    def in_memory(self) -> bool:
        """True for an in-memory SQLite store (gone with the process)."""
        return self._memory

    def _safe_url(self) -> str:
        try:
            return sa.make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return "<store>"

    def _init_schema(self) -> None:
        try:
            with self.engine.connect() as conn:
                tables = set(sa.inspect(conn).get_table_names())
        except DatabaseError as exc:
            raise NotARouterStoreError(f"{self._safe_url()} is not a router store: {exc.orig}") from exc
        except Exception as exc:
            raise StoreError(f"cannot open store {self._safe_url()}: {exc}") from exc
        if "sr_meta" in tables:
            self._check_meta()
            if not set(_SNAPSHOT_TABLES) <= tables:
                self._add_snapshot_tables()
            return
        if self.dialect == "sqlite" and tables:
            raise NotARouterStoreError(
                f"{self._safe_url()} is a database of something else (tables: {', '.join(sorted(tables)[:5])})"
            )
        try:
            with self._tx() as conn:
                metadata.create_all(conn)
                if conn.execute(sa.select(sa.func.count()).select_from(t_meta)).scalar_one() == 0:
                    conn.execute(
                        t_meta.insert(),
                        [
                            {"key": "app", "value": _APP},
                            {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                            {"key": "created_at", "value": repr(time.time())},
                        ],
                    )
        except IntegrityError:
            pass  # another process initialized the same database at the same moment
        self._check_meta()

    def _add_snapshot_tables(self) -> None:
        """Add the (optional) snapshot tables to a store made before they existed."""
        try:
            with self._tx() as conn:
                metadata.create_all(conn, tables=[t_snapshots, t_snapshot_chunks])
        except Exception as exc:  # read-only user, a concurrent creator: boot without snapshots
            log.info("snapshot tables not created (%s); boots read the utterance rows", exc)
        with self.engine.connect() as conn:
            self.snapshots_enabled = set(_SNAPSHOT_TABLES) <= set(sa.inspect(conn).get_table_names())

    def _check_meta(self) -> None:
        with self.engine.connect() as conn:
            try:
                rows = dict(conn.execute(sa.select(t_meta.c.key, t_meta.c.value)).all())
            except DatabaseError as exc:
                raise NotARouterStoreError(f"{self._safe_url()} is not a router store: {exc.orig}") from exc
        if rows.get("app") != _APP:
            raise NotARouterStoreError(f"{self._safe_url()} is not a router store (no {_APP} marker)")
        version = int(rows.get("schema_version", "0"))
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"store schema version {version} is newer than this package understands ({SCHEMA_VERSION}); upgrade"
            )
        self.schema_version = version

    # ------------------------------------------------------------------ transactions
    class _Tx:
        """A write transaction; on PostgreSQL it holds the advisory lock ``pg_lock_key``."""

        def __init__(self, store: RouteStore, pg_lock_key: int = _PG_LOCK_KEY) -> None:
            self.store = store
            self.pg_lock_key = pg_lock_key
            self.conn: Any = None
            self.trans: Any = None

        def __enter__(self) -> Connection:
            if self.store._lock is not None:
                self.store._lock.acquire()
            try:
                self.conn = self.store.engine.connect().execution_options(sr_write=True)
                self.trans = self.conn.begin()
                if self.store.dialect == "postgresql":
                    self.conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": self.pg_lock_key})
                return self.conn
            except BaseException:
                if self.conn is not None:
                    self.conn.close()
                if self.store._lock is not None:
                    self.store._lock.release()
                raise

        def __exit__(self, exc_type: Any, *exc: Any) -> None:
            try:
                if exc_type is None:
                    self.trans.commit()
                else:
                    self.trans.rollback()
            finally:
                self.conn.close()
                if self.store._lock is not None:
                    self.store._lock.release()

    def _tx(self) -> RouteStore._Tx:
        return RouteStore._Tx(self)

    def _read(self) -> Any:
        if self._lock is None:
            return self.engine.connect()
        return _LockedConnect(self)

    def _log(self, conn: Connection, op: str, route: str | None) -> int:
        res = conn.execute(t_changes.insert().values(at=time.time(), op=op, route=route, origin=self.origin))
        return int(res.inserted_primary_key[0])  # type: ignore[index]

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _row_to_route(row: Any, texts: Sequence[str]) -> Route:
        meta = row.metadata
        return Route.trusted(
            row.name,
            tuple(texts),
            row.description,
            row.threshold,
            {} if not meta or meta == "{}" else json.loads(meta),
        )

    def _route_row(self, conn: Connection, name: str) -> Any:
        return conn.execute(sa.select(t_routes).where(t_routes.c.name == name)).first()

    @staticmethod
    def _utt_rows(
        route_id: int, texts: Sequence[str], vectors: np.ndarray, model_id: str
    ) -> list[dict[str, Any]]:
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        return [
            {
                "route_id": route_id,
                "text": t,
                "text_hash": _hash(t),
                "model_id": model_id,
                "dim": int(vecs.shape[1]),
                "vector": vecs[i].tobytes(),
            }
            for i, t in enumerate(texts)
        ]

    def _insert_utterances(
        self, conn: Connection, route_id: int, texts: Sequence[str], vectors: np.ndarray, model_id: str
    ) -> list[int]:
        if not texts:
            return []
        rows = self._utt_rows(route_id, texts, vectors, model_id)
        if self.dialect in ("sqlite", "postgresql"):
            res = conn.execute(
                t_utterances.insert().returning(t_utterances.c.id, t_utterances.c.text_hash), rows
            )
            by_hash = {h: int(i) for i, h in res.all()}
            return [by_hash[r["text_hash"]] for r in rows]
        ids = []
        for r in rows:
            ids.append(int(conn.execute(t_utterances.insert().values(**r)).inserted_primary_key[0]))  # type: ignore[index]
        return ids

    # ------------------------------------------------------------------ mutations
    def _add_route_in(
        self, conn: Connection, route: Route, vectors: np.ndarray, model_id: str, now: float
    ) -> tuple[list[int], int]:
        if self._route_row(conn, route.name) is not None:
            raise DuplicateRouteError(route.name)
        version = self._log(conn, "add", route.name)
        rid = conn.execute(
            t_routes.insert().values(
                name=route.name,
                description=route.description,
                threshold=route.threshold,
                metadata=json.dumps(dict(route.metadata)),
                created_at=now,
                updated_at=now,
                version=version,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        ids = self._insert_utterances(conn, int(rid), route.utterances, vectors, model_id)
        return ids, version

    def add_route(self, route: Route, vectors: np.ndarray, model_id: str) -> tuple[list[int], int]:
        """Insert a route and its utterances. Returns (utterance ids, change version)."""
        return self.add_routes([route], [vectors], model_id)[0]

    def add_routes(
        self, routes: Sequence[Route], vectors: Sequence[np.ndarray], model_id: str
    ) -> list[tuple[list[int], int]]:
        """Insert several new routes in ONE transaction (all or nothing; a bulk import).

        ``vectors[i]`` holds the embeddings of ``routes[i].utterances``. Returns, per route, its
        utterance ids and change version.
        """
        if len(routes) != len(vectors):
            raise InvalidInputError("one vector array per route is needed")
        now = time.time()
        name = routes[0].name if routes else ""
        try:
            with self._tx() as conn:
                out = []
                for route, vecs in zip(routes, vectors, strict=True):
                    name = route.name
                    out.append(self._add_route_in(conn, route, vecs, model_id, now))
                return out
        except IntegrityError as exc:
            if "sr_routes" in str(exc) or "name" in str(exc.orig):
                raise DuplicateRouteError(name) from None
            raise StoreError(f"cannot add route {name!r}: {exc.orig}") from exc
        except OperationalError as exc:
            raise StoreError(f"cannot add route {name!r}: {exc.orig}") from exc

    def update_route(
        self, route: Route, vectors: Mapping[str, np.ndarray], model_id: str
    ) -> tuple[list[int], list[int], list[str], int]:
        """Replace a route's fields and utterances (keeping unchanged utterances' embeddings).

        ``vectors`` maps each utterance text that may be new to its embedding.
        Returns (removed ids, added ids, added texts, change version).
        """
        with self._tx() as conn:
            row = self._route_row(conn, route.name)
            if row is None:
                raise RouteNotFoundError(route.name)
            version = self._log(conn, "update", route.name)
            conn.execute(
                t_routes.update()
                .where(t_routes.c.id == row.id)
                .values(
                    description=route.description,
                    threshold=route.threshold,
                    metadata=json.dumps(dict(route.metadata)),
                    updated_at=time.time(),
                    version=version,
                )
            )
            existing = conn.execute(
                sa.select(t_utterances.c.id, t_utterances.c.text).where(t_utterances.c.route_id == row.id)
            ).all()
            wanted = set(route.utterances)
            have = {t: int(i) for i, t in existing}
            removed = [i for t, i in have.items() if t not in wanted]
            if removed:
                conn.execute(t_utterances.delete().where(t_utterances.c.id.in_(removed)))
            new_texts = [t for t in route.utterances if t not in have]
            missing = [t for t in new_texts if t not in vectors]
            if missing:
                raise StoreError(f"route {route.name!r} changed concurrently; retry the update")
            added = self._insert_utterances(
                conn,
                int(row.id),
                new_texts,
                np.stack([vectors[t] for t in new_texts]) if new_texts else np.empty((0, 1)),
                model_id,
            )
            return removed, added, new_texts, version

    def delete_route(self, name: str) -> tuple[list[int], int]:
        """Delete a route and its utterances. Returns (removed utterance ids, change version)."""
        with self._tx() as conn:
            row = self._route_row(conn, name)
            if row is None:
                raise RouteNotFoundError(name)
            ids = [
                int(i)
                for (i,) in conn.execute(
                    sa.select(t_utterances.c.id).where(t_utterances.c.route_id == row.id)
                )
            ]
            version = self._log(conn, "delete", name)
            conn.execute(t_utterances.delete().where(t_utterances.c.route_id == row.id))
            conn.execute(t_routes.delete().where(t_routes.c.id == row.id))
            return ids, version

    def add_utterances(
        self, name: str, texts: Sequence[str], vectors: np.ndarray, model_id: str
    ) -> tuple[list[int], list[str], int]:
        """Add utterances not yet on the route. Returns (new ids, their texts, change version)."""
        with self._tx() as conn:
            row = self._route_row(conn, name)
            if row is None:
                raise RouteNotFoundError(name)
            have = {
                t
                for (t,) in conn.execute(
                    sa.select(t_utterances.c.text).where(
                        t_utterances.c.route_id == row.id,
                        t_utterances.c.text_hash.in_([_hash(t) for t in texts]),
                    )
                )
            }
            keep = [i for i, t in enumerate(texts) if t not in have]
            new_texts = [texts[i] for i in keep]
            version = self._log(conn, "add_utterances", name)
            conn.execute(
                t_routes.update()
                .where(t_routes.c.id == row.id)
                .values(version=version, updated_at=time.time())
            )
            ids = (
                self._insert_utterances(conn, int(row.id), new_texts, vectors[keep], model_id) if keep else []
            )
            return ids, new_texts, version

    def remove_utterances(self, name: str, texts: Sequence[str]) -> tuple[list[int], int]:
        """Remove utterances by text. A route keeps at least one. Returns (removed ids, version)."""
        from .errors import InvalidRouteError

        with self._tx() as conn:
            row = self._route_row(conn, name)
            if row is None:
                raise RouteNotFoundError(name)
            total = conn.execute(
                sa.select(sa.func.count()).select_from(t_utterances).where(t_utterances.c.route_id == row.id)
            ).scalar_one()
            ids = [
                int(i)
                for (i,) in conn.execute(
                    sa.select(t_utterances.c.id).where(
                        t_utterances.c.route_id == row.id,
                        t_utterances.c.text_hash.in_([_hash(t) for t in texts]),
                    )
                )
            ]
            if ids and len(ids) >= total:
                raise InvalidRouteError(
                    f"route {name!r} must keep at least one utterance; delete the route instead"
                )
            version = self._log(conn, "remove_utterances", name)
            if ids:
                conn.execute(t_utterances.delete().where(t_utterances.c.id.in_(ids)))
            conn.execute(
                t_routes.update()
                .where(t_routes.c.id == row.id)
                .values(version=version, updated_at=time.time())
            )
            return ids, version

    def set_vectors(self, ids: Sequence[int], vectors: np.ndarray, model_id: str) -> None:
        """Replace embeddings (re-embedding after an encoder change), in batches of one transaction."""
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._tx() as conn:
            for start in range(0, len(ids), 1000):
                conn.execute(
                    t_utterances.update()
                    .where(t_utterances.c.id == sa.bindparam("uid"))
                    .values(model_id=model_id, dim=int(vecs.shape[1]), vector=sa.bindparam("vec")),
                    [
                        {"uid": int(ids[j]), "vec": vecs[j].tobytes()}
                        for j in range(start, min(start + 1000, len(ids)))
                    ],
                )
            conn.execute(t_meta.delete().where(t_meta.c.key == "model_id"))
            conn.execute(t_meta.insert().values(key="model_id", value=model_id))
            # Snapshots hold the vectors as they were: a re-embedding makes every one of them stale.
            if self.snapshots_enabled:
                self._drop_snapshots(conn)

    # ------------------------------------------------------------------ reads
    def get_route(self, name: str) -> Route | None:
        """The stored route, or None."""
        with self._read() as conn:
            row = self._route_row(conn, name)
            if row is None:
                return None
            texts = [
                t
                for (t,) in conn.execute(
                    sa.select(t_utterances.c.text)
                    .where(t_utterances.c.route_id == row.id)
                    .order_by(t_utterances.c.id)
                )
            ]
        return self._row_to_route(row, texts)

    def route_names(self) -> list[str]:
        """All route names, sorted."""
        with self._read() as conn:
            return [n for (n,) in conn.execute(sa.select(t_routes.c.name).order_by(t_routes.c.name))]

    def route_state(self, name: str, model_id: str) -> StoredUtterances | None:
        """A route with its utterance ids, texts and vectors (for catching up), or None."""
        with self._read() as conn:
            row = self._route_row(conn, name)
            if row is None:
                return None
            rows = conn.execute(
                sa.select(
                    t_utterances.c.id, t_utterances.c.text, t_utterances.c.model_id, t_utterances.c.vector
                )
                .where(t_utterances.c.route_id == row.id)
                .order_by(t_utterances.c.id)
            ).all()
        route = self._row_to_route(row, [r.text for r in rows])
        ids = np.array([r.id for r in rows], dtype=np.int64)
        vecs = _stack_blobs([r.vector for r in rows])
        stale = np.array([r.model_id != model_id for r in rows], dtype=bool)
        return StoredUtterances(route, ids, [r.text for r in rows], vecs, stale)

    def _read_consistent(self) -> Any:
        """A read connection whose statements all see one snapshot of the database.

        SQLite's read transaction already does (WAL); PostgreSQL needs REPEATABLE READ for it
        (READ COMMITTED would let a route appear between two statements). Never blocks writers.
        """
        if self.dialect == "postgresql":
            return self.engine.connect().execution_options(isolation_level="REPEATABLE READ")
        return self._read()

    def load_all(self, model_id: str, dim: int) -> LoadedStore:
        """Read every route and embedding at once (boot). Rows made by another encoder are marked stale."""
        with self._read_consistent() as conn:
            version = self._version(conn)
            # Plain DB-API cursors: no per-row Result/Row wrapping for a quarter million rows.
            cur = conn.connection.dbapi_connection.cursor()
            try:
                cur.execute("SELECT id, name, description, threshold, metadata FROM sr_routes")
                route_rows = [_RouteRow(*r) for r in cur.fetchall()]
                cur.execute("SELECT id, route_id, text, model_id, dim, vector FROM sr_utterances ORDER BY id")
                raw = cur.fetchall()
            finally:
                cur.close()
        n = len(raw)
        if n == 0:
            empty = np.empty(0, dtype=np.int64)
            return LoadedStore({}, empty, [], [], np.empty((0, dim), np.float32), np.zeros(0, bool), version)
        # Column-wise, without per-row Python work where it can be avoided (boot time at 250k rows).
        uids, rids, texts_t, mids, dims, blobs = zip(*raw, strict=True)
        ids = np.fromiter(uids, dtype=np.int64, count=n)
        name_of = {r.id: r.name for r in route_rows}
        names = [name_of[r] for r in rids]
        texts = list(texts_t)
        if set(mids) == {model_id} and set(dims) == {dim}:
            stale = np.zeros(n, dtype=bool)
            vectors = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(n, dim)
        else:
            stale = np.fromiter(
                (m != model_id or d != dim for m, d in zip(mids, dims, strict=True)), dtype=bool, count=n
            )
            zero = bytes(4 * dim)
            vectors = np.frombuffer(
                b"".join(zero if s else b for s, b in zip(stale.tolist(), blobs, strict=True)),
                dtype=np.float32,
            ).reshape(n, dim)
        texts_by_route: dict[int, list[str]] = {r.id: [] for r in route_rows}
        for rid, text in zip(rids, texts, strict=True):
            texts_by_route[rid].append(text)
        routes = {
            r.name: self._row_to_route(r, texts_by_route[r.id]) for r in route_rows if texts_by_route[r.id]
        }
        # read-only view of one joined buffer: no second copy of every vector
        return LoadedStore(routes, ids, names, texts, vectors, stale, version)

    def route_states(self, names: Sequence[str], model_id: str) -> dict[str, StoredUtterances | None]:
        """:meth:`route_state` of many routes with a few queries (None: the route does not exist)."""
        out: dict[str, StoredUtterances | None] = dict.fromkeys(names)
        wanted = list(out)
        with self._read_consistent() as conn:
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                route_rows = {
                    r.id: r for r in conn.execute(sa.select(t_routes).where(t_routes.c.name.in_(part))).all()
                }
                if not route_rows:
                    continue
                rows = conn.execute(
                    sa.select(
                        t_utterances.c.id,
                        t_utterances.c.route_id,
                        t_utterances.c.text,
                        t_utterances.c.model_id,
                        t_utterances.c.dim,
                        t_utterances.c.vector,
                    )
                    .where(t_utterances.c.route_id.in_(list(route_rows)))
                    .order_by(t_utterances.c.id)
                ).all()
                by_route: dict[int, list[Any]] = {rid: [] for rid in route_rows}
                for r in rows:
                    by_route[r.route_id].append(r)
                for rid, row in route_rows.items():
                    utt = by_route[rid]
                    stale = np.array([u.model_id != model_id for u in utt], dtype=bool)
                    vecs = _stack_blobs(
                        [bytes(4 * u.dim) if u.model_id != model_id else u.vector for u in utt]
                    )
                    out[row.name] = StoredUtterances(
                        self._row_to_route(row, [u.text for u in utt]),
                        np.array([u.id for u in utt], dtype=np.int64),
                        [u.text for u in utt],
                        vecs,
                        stale,
                    )
        return out

    # ------------------------------------------------------------------ boot snapshots
    def snapshot_info(self, model_id: str | None = None, dim: int | None = None) -> SnapshotInfo | None:
        """The newest boot snapshot (made by ``model_id`` with ``dim``, when given), or None."""
        if not self.snapshots_enabled:
            return None
        query = sa.select(t_snapshots).order_by(t_snapshots.c.version.desc(), t_snapshots.c.created_at.desc())
        if model_id is not None:
            query = query.where(t_snapshots.c.model_id == model_id)
        if dim is not None:
            query = query.where(t_snapshots.c.dim == dim)
        try:
            with self._read() as conn:
                row = conn.execute(query.limit(1)).first()
        except DatabaseError as exc:  # the tables could not be created (see _add_snapshot_tables)
            log.info("no boot snapshot readable: %s", exc.orig)
            return None
        if row is None:
            return None
        return SnapshotInfo(
            str(row.id),
            str(row.model_id),
            int(row.dim),
            int(row.version),
            int(row.rows),
            int(row.routes),
            int(row.nbytes),
            int(row.chunks),
            str(row.layout),
            float(row.created_at),
        )

    def count_changes_since(self, version: int) -> int:
        """How many change-log rows come after ``version``."""
        with self._read() as conn:
            n = conn.execute(
                sa.select(sa.func.count()).select_from(t_changes).where(t_changes.c.version > version)
            ).scalar_one()
        return int(n)

    def save_snapshot(
        self,
        model_id: str,
        version: int,
        routes: Mapping[str, Route],
        ids: np.ndarray,
        route_names: Sequence[str],
        texts: Sequence[str],
        vectors: np.ndarray,
        *,
        replacing: str | None = None,
    ) -> SnapshotInfo | None:
        """Keep a packed copy of every utterance (ids, texts, vectors) and route as of store ``version``.

        A boot reads it as a few large rows, then applies the change log after ``version``. The
        rows given must be the store's content at ``version`` or later (a later state is brought
        up to date the same way). Written in one transaction that also drops older snapshots;
        readers are never blocked. Returns None (nothing written) when an equally recent
        snapshot by the same encoder exists (unless it is ``replacing``, one found damaged),
        or when the content cannot be packed.
        """
        n = len(ids)
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[0] != n or len(route_names) != n or len(texts) != n:
            raise InvalidInputError("ids, route names, texts and vectors must be aligned")
        dim = int(vecs.shape[1])
        if not self.snapshots_enabled:
            return None
        payload, layout = _pack_snapshot(routes, np.asarray(ids, dtype=np.int64), route_names, texts, vecs)
        if payload is None:
            return None
        nbytes = len(payload)
        chunks = [
            (k, payload[a : a + _SNAPSHOT_CHUNK]) for k, a in enumerate(range(0, nbytes, _SNAPSHOT_CHUNK))
        ]
        layout["chunk_sums"] = [_sum64(c) for _, c in chunks]
        sid = os.urandom(16).hex()
        info = SnapshotInfo(
            sid,
            model_id,
            dim,
            int(version),
            n,
            layout["routes"],
            nbytes,
            len(chunks),
            json.dumps(layout),
            time.time(),
        )
        try:
            with self._snapshot_tx() as conn:
                newest = conn.execute(
                    sa.select(t_snapshots.c.id, t_snapshots.c.version)
                    .where(t_snapshots.c.model_id == model_id, t_snapshots.c.dim == dim)
                    .order_by(t_snapshots.c.version.desc())
                    .limit(1)
                ).first()
                if newest is not None and int(newest.version) >= info.version and newest.id != replacing:
                    return None
                self._drop_snapshots(conn)
                conn.execute(
                    t_snapshots.insert().values(
                        id=info.id,
                        model_id=info.model_id,
                        dim=info.dim,
                        version=info.version,
                        rows=info.rows,
                        routes=info.routes,
                        nbytes=info.nbytes,
                        chunks=info.chunks,
                        layout=info.layout,
                        created_at=info.created_at,
                    )
                )
                for k, chunk in chunks:
                    conn.execute(t_snapshot_chunks.insert().values(snapshot_id=sid, seq=k, data=chunk))
        except (OperationalError, DatabaseError) as exc:
            raise StoreError(f"cannot save the boot snapshot: {exc.orig}") from exc
        if self.dialect == "sqlite" and not self._memory:
            # Move the new pages from the write-ahead log into the file now (without waiting for
            # anyone): a boot reads them from there through a memory map, much faster.
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        return info

    def _snapshot_tx(self) -> Any:
        """A write transaction for snapshots: on PostgreSQL it does not take the mutation lock
        (a snapshot is not a change), only one that keeps two snapshot writers apart."""
        return RouteStore._Tx(self, pg_lock_key=_PG_SNAPSHOT_LOCK_KEY)

    @staticmethod
    def _drop_snapshots(conn: Connection) -> None:
        conn.execute(t_snapshot_chunks.delete())
        conn.execute(t_snapshots.delete())

    def delete_snapshots(self) -> None:
        """Forget every boot snapshot (the next boot reads the utterance rows)."""
        if not self.snapshots_enabled:
            return
        with self._tx() as conn:
            self._drop_snapshots(conn)

    def load_snapshot(
        self, info: SnapshotInfo, vectors_into: Callable[[int, int], np.ndarray] | None = None
    ) -> LoadedStore | None:
        """Read the snapshot ``info`` (its content as of ``info.version``), or None when it is gone,
        damaged or in a format this code does not read (the caller then reads the rows).

        ``vectors_into(rows, dim)``, when given, returns the writable float32 array the vectors
        are read into (for example an index's own storage, so they are not copied again).
        """
        try:
            layout = json.loads(info.layout)
            if layout.get("format") != _SNAPSHOT_FORMAT:
                log.warning("boot snapshot %s has format %r; reading the rows", info.id, layout.get("format"))
                return None
            sums = layout["chunk_sums"]
            vec_at, vec_size = layout["sections"]["vectors"]
            vectors: np.ndarray | None = None
            if vectors_into is not None and vec_at + vec_size == info.nbytes and vec_at >= 0:
                vectors = vectors_into(info.rows, info.dim)
                if (
                    vectors.dtype != np.float32
                    or vectors.nbytes != vec_size
                    or not vectors.flags.c_contiguous
                ):
                    raise ValueError("the array for the vectors does not fit the snapshot")
            # the small sections (ids, texts, routes) come first, the vectors last
            buf = np.empty(info.nbytes if vectors is None else vec_at, dtype=np.uint8)
            tail = None if vectors is None else vectors.reshape(-1).view(np.uint8)
            pos = expected = 0
            with self._read() as conn:
                conn.execute(sa.text("SELECT 1"))  # begin: every chunk from one read transaction
                dbapi: Any = conn.connection.dbapi_connection
                pg = self.dialect == "postgresql"
                mark = "%s" if pg else "?"
                sql = f"SELECT seq, data FROM sr_snapshot_chunks WHERE snapshot_id = {mark} ORDER BY seq"
                cur = dbapi.cursor(binary=True) if pg else dbapi.cursor()
                mapped = self.dialect == "sqlite" and not self._memory
                if mapped:  # read the large rows straight from a memory map of the file
                    cur.execute(f"PRAGMA mmap_size={_SQLITE_MMAP}")
                rows: Any = None
                try:
                    # PostgreSQL streams the rows (it reads the next chunk while this one is copied)
                    rows = cur.stream(sql, (info.id,), binary=True) if pg else cur.execute(sql, (info.id,))
                    for seq, data in rows:
                        size = len(data)
                        if seq != expected or expected >= info.chunks:
                            log.warning(
                                "boot snapshot %s lacks chunk %d; reading the rows", info.id, expected
                            )
                            return None
                        if pos + size > info.nbytes or _sum64(data) != sums[seq]:
                            log.warning(
                                "boot snapshot %s is damaged (chunk %d); reading the rows", info.id, seq
                            )
                            return None
                        chunk = np.frombuffer(data, dtype=np.uint8)
                        if tail is None:
                            buf[pos : pos + size] = chunk
                        else:  # split at the start of the vectors
                            cut = min(max(vec_at - pos, 0), size)
                            buf[pos : pos + cut] = chunk[:cut]
                            tail[pos + cut - vec_at : pos + size - vec_at] = chunk[cut:]
                        del chunk
                        pos += size
                        expected += 1
                        del data
                finally:
                    if pg and rows is not None:
                        rows.close()  # an unfinished stream holds the connection: end it first
                    if mapped:
                        cur.execute("PRAGMA mmap_size=0")
                    cur.close()
            if pos != info.nbytes or expected != info.chunks:
                log.warning("boot snapshot %s is truncated; reading the rows", info.id)
                return None
            return _unpack_snapshot(buf, layout, info, vectors)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            log.warning("boot snapshot %s is damaged (%s); reading the rows", info.id, exc)
            return None
        except Exception as exc:  # the driver's own errors too: a cache that cannot be read is skipped
            log.warning("boot snapshot %s could not be read (%s); reading the rows", info.id, exc)
            return None

    @staticmethod
    def _version(conn: Connection) -> int:
        v = conn.execute(sa.select(sa.func.max(t_changes.c.version))).scalar()
        return int(v or 0)

    def current_version(self) -> int:
        """The store-wide change version (0 for a new store)."""
        with self._read() as conn:
            return self._version(conn)

    def changes_since(
        self, version: int, limit: int = 10_000
    ) -> list[tuple[int, str, str | None, str | None]]:
        """Change-log rows after ``version``: (version, op, route, origin), oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t_changes.c.version, t_changes.c.op, t_changes.c.route, t_changes.c.origin)
                .where(t_changes.c.version > version)
                .order_by(t_changes.c.version)
                .limit(limit)
            ).all()
        return [(int(v), op, r, o) for v, op, r, o in rows]

    def save_fitted(self, key: str, blob: bytes, model_id: str) -> int:
        """Store a fitted state blob under ``key``; returns the change version."""
        with self._tx() as conn:
            version = self._log(conn, "fit", None)
            conn.execute(t_fitted.delete().where(t_fitted.c.key == key))
            conn.execute(
                t_fitted.insert().values(
                    key=key, model_id=model_id, created_at=time.time(), version=version, blob=blob
                )
            )
            return version

    def save_cache_blob(self, key: str, blob: bytes, model_id: str, version: int) -> None:
        """Keep a rebuildable blob (e.g. a built approximate index) that reflects store ``version``.

        Unlike :meth:`save_fitted`, nothing is written to the change log: a cache is not a change.
        """
        with self._tx() as conn:
            conn.execute(t_fitted.delete().where(t_fitted.c.key == key))
            conn.execute(
                t_fitted.insert().values(
                    key=key, model_id=model_id, created_at=time.time(), version=version, blob=blob
                )
            )

    def load_fitted(self, key: str) -> tuple[bytes, str, int] | None:
        """(blob, model_id, version) of a fitted state, or None."""
        with self._read() as conn:
            row = conn.execute(sa.select(t_fitted).where(t_fitted.c.key == key)).first()
        return None if row is None else (bytes(row.blob), row.model_id, int(row.version))

    def delete_fitted(self, key: str) -> int:
        """Forget a fitted state; returns the change version."""
        with self._tx() as conn:
            version = self._log(conn, "unfit", None)
            conn.execute(t_fitted.delete().where(t_fitted.c.key == key))
            return version

    def counts(self) -> tuple[int, int]:
        """(routes, utterances)."""
        with self._read() as conn:
            r = conn.execute(sa.select(sa.func.count()).select_from(t_routes)).scalar_one()
            u = conn.execute(sa.select(sa.func.count()).select_from(t_utterances)).scalar_one()
        return int(r), int(u)

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self._read() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except Exception:
            return False

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


class _RouteRow(NamedTuple):
    id: int
    name: str
    description: str | None
    threshold: float | None
    metadata: str | None


class _LockedConnect:
    def __init__(self, store: RouteStore) -> None:
        self.store = store
        self.conn: Any = None

    def __enter__(self) -> Connection:
        assert self.store._lock is not None
        self.store._lock.acquire()
        try:
            self.conn = self.store.engine.connect()
            return self.conn
        except BaseException:
            self.store._lock.release()
            raise

    def __exit__(self, *exc: Any) -> None:
        try:
            self.conn.close()
        finally:
            assert self.store._lock is not None
            self.store._lock.release()


def _stack_blobs(blobs: Sequence[bytes]) -> np.ndarray:
    if not blobs:
        return np.empty((0, 0), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1).copy()


def _sum64(data: Any) -> int:
    """A cheap checksum of a chunk: the wrapping sum of its 64-bit words (tail zero-padded)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    tail = len(arr) % 8
    total = int(arr[: len(arr) - tail].view(np.uint64).sum(dtype=np.uint64))
    if tail:
        total += int.from_bytes(bytes(arr[len(arr) - tail :]), "little")
    return (total + len(arr)) % (1 << 64)


def _pack_snapshot(
    routes: Mapping[str, Route],
    ids: np.ndarray,
    route_names: Sequence[str],
    texts: Sequence[str],
    vecs: np.ndarray,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Lay a snapshot out as one byte array: utterances grouped by route (then by id).

    Sections (8-byte aligned): ``ids`` int64, ``counts`` int64 per route, ``routes`` JSON
    (name, description, threshold, metadata), ``texts`` UTF-8 joined by NUL, ``vectors`` float32.
    """
    n = len(ids)
    used = set(route_names)
    missing = used - routes.keys()
    if missing:
        raise InvalidInputError(f"an utterance belongs to route {sorted(missing)[0]!r}, which is not given")
    names = [name for name in routes if name in used]  # a route without utterances is not served
    pos_of = {name: k for k, name in enumerate(names)}
    route_idx = np.fromiter((pos_of[r] for r in route_names), dtype=np.int64, count=n)
    order = np.lexsort((ids, route_idx))
    counts = np.bincount(route_idx, minlength=len(names)).astype(np.int64)
    order_list = order.tolist()
    joined = "\x00".join(texts[i] for i in order_list)
    if joined.count("\x00") != max(0, n - 1):
        log.info("an utterance holds a NUL character; no boot snapshot is written")
        return None, {}
    text_bytes = joined.encode("utf-8")
    meta = json.dumps(
        [
            [
                name,
                routes[name].description,
                routes[name].threshold,
                json.dumps(dict(routes[name].metadata)) if routes[name].metadata else None,
            ]
            for name in names
        ]
    ).encode("utf-8")
    sections: list[tuple[str, Any]] = [
        ("ids", ids[order]),
        ("counts", counts),
        ("routes", meta),
        ("texts", text_bytes),
        ("vectors", vecs),
    ]
    layout: dict[str, Any] = {"format": _SNAPSHOT_FORMAT, "routes": len(names), "sections": {}}
    offset = 0
    for name, data in sections:
        size = data.nbytes if isinstance(data, np.ndarray) else len(data)
        layout["sections"][name] = [offset, size]
        offset += (size + 7) // 8 * 8
    buf = np.zeros(offset, dtype=np.uint8)
    for name, data in sections:
        a, size = layout["sections"][name]
        if name == "vectors":
            continue
        if isinstance(data, np.ndarray):
            buf[a : a + size] = data.view(np.uint8).reshape(-1)
        else:
            buf[a : a + size] = np.frombuffer(data, dtype=np.uint8)
    a, size = layout["sections"]["vectors"]
    np.take(vecs, order, axis=0, out=buf[a : a + size].view(np.float32).reshape(vecs.shape))
    small_end = layout["sections"]["vectors"][0]
    layout["crc32"] = zlib.crc32(buf[:small_end].data)
    return buf, layout


def _unpack_snapshot(
    buf: np.ndarray, layout: dict[str, Any], info: SnapshotInfo, vectors_read: np.ndarray | None = None
) -> LoadedStore | None:
    """The snapshot's content from ``buf``; ``vectors_read``: its vectors, read apart (``buf`` then
    ends where they begin)."""
    sec = layout["sections"]
    n, dim = info.rows, info.dim

    def part(name: str) -> np.ndarray:
        a, size = sec[name]
        if a < 0 or a + size > len(buf):
            raise ValueError(f"section {name} out of bounds")
        return buf[a : a + size]

    if zlib.crc32(buf[: sec["vectors"][0]].data) != layout["crc32"]:
        log.warning("boot snapshot %s is damaged (checksum); reading the rows", info.id)
        return None
    ids = part("ids").view(np.int64)
    counts = part("counts").view(np.int64)
    vectors = part("vectors").view(np.float32) if vectors_read is None else vectors_read.reshape(-1)
    routes_meta = json.loads(bytes(part("routes")).decode("utf-8"))
    if len(ids) != n or vectors.size != n * dim or len(routes_meta) != len(counts) or int(counts.sum()) != n:
        raise ValueError("section sizes do not match the header")
    vectors = vectors.reshape(n, dim)
    texts = bytes(part("texts")).decode("utf-8").split("\x00") if n else []
    if len(texts) != n:
        raise ValueError("text count does not match the header")
    routes: dict[str, Route] = {}
    route_names: list[str] = []
    start = 0
    for (name, description, threshold, meta), count in zip(routes_meta, counts.tolist(), strict=True):
        end = start + count
        routes[name] = Route.trusted(
            name, tuple(texts[start:end]), description, threshold, {} if not meta else json.loads(meta)
        )
        route_names.extend([name] * count)
        start = end
    return LoadedStore(
        routes, ids, route_names, texts, vectors, np.zeros(n, dtype=bool), info.version, grouped=True
    )
