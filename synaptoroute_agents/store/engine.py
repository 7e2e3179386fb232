"""The database under a route store: the SQLAlchemy engine, its SQLite and PostgreSQL settings, and
the transactions and locks every write goes through.

Writers are serialized store-wide (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped
advisory lock), so a change-log version is never handed out twice. Readers never wait for
writers (SQLite in WAL mode; PostgreSQL's MVCC). An in-memory SQLite database is one connection
shared by every thread, so there a process lock guards it instead.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, RootTransaction
from sqlalchemy.pool import StaticPool

from ..errors import InvalidInputError, NotARouterStoreError, StoreError, StoreNotFoundError

__all__ = ["Database", "store_url", "PG_LOCK_KEY", "PG_SNAPSHOT_LOCK_KEY"]

#: Advisory lock that serializes mutations store-wide on PostgreSQL.
PG_LOCK_KEY = 0x5359_4E52
#: Advisory lock that serializes snapshot writers only (never mutations) on PostgreSQL.
PG_SNAPSHOT_LOCK_KEY = 0x5359_4E53


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


def _check_sqlite_file(url: str) -> None:
    """Refuse a non-empty file that is not a SQLite database (before SQLAlchemy touches it)."""
    path = Path(sa.make_url(url).database or "")
    if path.exists() and path.is_file() and path.stat().st_size > 0:
        with open(path, "rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                raise NotARouterStoreError(f"{path} is not a router store (not a SQLite database)")


def _check_sqlite_exists(url: str) -> None:
    """For a store that must exist: refuse a missing path, a folder or an empty file, before
    SQLite would create (or write a header into) it."""
    path = Path(sa.make_url(url).database or "")
    if not path.exists():
        raise StoreNotFoundError(f"no store at {path} (nothing was created)")
    if not path.is_file():
        raise NotARouterStoreError(f"{path} is not a router store (not a file)")
    if path.stat().st_size == 0:
        raise StoreNotFoundError(f"no store at {path}: the file is empty (nothing was written)")


def _sqlite_events(engine: Engine, memory: bool) -> None:
    """SQLite pragmas, and transactions that begin the way the store's locking needs."""

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()
        # pysqlite's own transaction handling is turned off so BEGIN IMMEDIATE is ours.
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Writers take the write lock at BEGIN so they queue instead of failing later;
        # readers begin a deferred transaction and never wait for writers (WAL).
        write = conn.get_execution_options().get("sr_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_engine(url: str, dialect: str, memory: bool, safe_url: str, *, create: bool = True) -> Engine:
    """The SQLAlchemy engine of a store at ``url`` with the settings its ``dialect`` needs.

    With ``create=False`` a SQLite file must exist already (:class:`StoreNotFoundError`).
    """
    kwargs: dict[str, Any] = {}
    if dialect == "sqlite":
        if memory:
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            if not create:
                _check_sqlite_exists(url)
            _check_sqlite_file(url)
            kwargs.update(connect_args={"check_same_thread": False, "timeout": 60})
    elif dialect == "postgresql":
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
    try:
        engine = sa.create_engine(url, **kwargs)
    except Exception as exc:  # bad URL, missing driver
        raise StoreError(f"cannot open store {safe_url}: {exc}") from exc
    if dialect == "sqlite":
        _sqlite_events(engine, memory)
    return engine


class WriteTx:
    """A write transaction; on PostgreSQL it holds the advisory lock ``pg_lock_key``.

    Commits when the block ends normally, rolls back when it raises.
    """

    def __init__(self, db: Database, pg_lock_key: int = PG_LOCK_KEY) -> None:
        self.db = db
        self.pg_lock_key = pg_lock_key
        self.conn: Connection | None = None
        self.trans: RootTransaction | None = None

    def __enter__(self) -> Connection:
        lock = self.db._lock
        if lock is not None:
            lock.acquire()
        try:
            self.conn = self.db.engine.connect().execution_options(sr_write=True)
            self.trans = self.conn.begin()
            if self.db.dialect == "postgresql":
                self.conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": self.pg_lock_key})
            return self.conn
        except BaseException:
            if self.conn is not None:
                self.conn.close()
            if lock is not None:
                lock.release()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.conn is not None and self.trans is not None
        try:
            if exc_type is None:
                self.trans.commit()
            else:
                self.trans.rollback()
        finally:
            self.conn.close()
            if self.db._lock is not None:
                self.db._lock.release()


class LockedConnect:
    """A read connection of an in-memory store, held under its process lock."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.conn: Connection | None = None

    def __enter__(self) -> Connection:
        assert self.db._lock is not None
        self.db._lock.acquire()
        try:
            self.conn = self.db.engine.connect()
            return self.conn
        except BaseException:
            self.db._lock.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self.conn is not None:
                self.conn.close()
        finally:
            assert self.db._lock is not None
            self.db._lock.release()


class Database:
    """An SQL database opened with the store's transaction rules.

    Args:
        url: None (in memory), a file path (SQLite) or any SQLAlchemy URL
            (``postgresql://user@host/db`` uses psycopg 3).
        create: False opens only a store that exists: a missing SQLite file is a
            :class:`StoreNotFoundError` and nothing is created (what read-only tools want).
    """

    def __init__(self, url: str | os.PathLike[str] | None = None, *, create: bool = True) -> None:
        self.url = store_url(url)
        self.dialect = sa.make_url(self.url).get_backend_name()
        self._memory = self.url.endswith(":memory:")
        self._lock = threading.RLock() if self._memory else None
        self.create = bool(create)
        self.engine = make_engine(self.url, self.dialect, self._memory, self._safe_url(), create=self.create)

    @property
    def in_memory(self) -> bool:
        """True for an in-memory SQLite store (gone with the process)."""
        return self._memory

    def _safe_url(self) -> str:
        try:
            return sa.make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return "<store>"

    def _tx(self, pg_lock_key: int = PG_LOCK_KEY) -> WriteTx:
        """A write transaction (``with store._tx() as conn: ...``), serialized store-wide."""
        return WriteTx(self, pg_lock_key)

    def _read(self) -> Connection | LockedConnect:
        """A read connection (``with store._read() as conn: ...``); never waits for writers."""
        if self._lock is None:
            return self.engine.connect()
        return LockedConnect(self)

    def _read_consistent(self) -> Connection | LockedConnect:
        """A read connection whose statements all see one snapshot of the database.

        SQLite's read transaction already does (WAL); PostgreSQL needs REPEATABLE READ for it
        (READ COMMITTED would let a route appear between two statements). Never blocks writers.
        """
        if self.dialect == "postgresql":
            return self.engine.connect().execution_options(isolation_level="REPEATABLE READ")
        return self._read()

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
