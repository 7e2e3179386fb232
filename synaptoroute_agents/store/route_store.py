"""RouteStore: routes, utterances and their embeddings in SQL (SQLite by default, PostgreSQL too).

The store is the truth; the in-memory index is a cache rebuilt from it. Each mutation is one
transaction that also appends a row to a change log, whose id is the store-wide *change version*
(replicas use it to catch up). A mutation is acknowledged only after its commit.

The tables are in :mod:`.schema`, the engine and its locks in :mod:`.engine`, the packed boot
snapshots in :mod:`.snapshots`; a new kind of stored state is a table there plus methods here.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from ..errors import (
    DuplicateRouteError,
    InvalidInputError,
    InvalidRouteError,
    RouteNotFoundError,
    StoreError,
)
from ..routes import Route
from . import snapshots
from .engine import Database
from .records import LoadedStore, StoredUtterances
from .schema import open_schema, t_changes, t_fitted, t_meta, t_routes, t_utterances
from .snapshots import SnapshotInfo

__all__ = ["RouteStore"]


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


class RouteStore(Database):
    """Routes, utterances, embeddings, fitted state and a change log in a SQL database.

    Args:
        url: None (in memory), a file path (SQLite) or any SQLAlchemy URL
            (``postgresql://user@host/db`` uses psycopg 3).
        origin: an id written into the change log with each mutation (replica id).
        create: True (default) creates the store's tables (and a SQLite file) when they are
            missing; False opens only an existing store and raises :class:`StoreNotFoundError`
            otherwise, creating nothing. The ``synaptoroute`` commands that only read (``list``,
            ``route``, ``export``, ...) open with False, so a mistyped path is an error, not a
            new empty store.
    """

    def __init__(
        self, url: str | os.PathLike[str] | None = None, *, origin: str | None = None, create: bool = True
    ) -> None:
        super().__init__(url, create=create)
        self.origin = origin or os.urandom(6).hex()
        #: False when the snapshot tables are missing and could not be added (boots read the rows).
        self.snapshots_enabled = True
        self.schema_version, self.snapshots_enabled = open_schema(self)

    # ------------------------------------------------------------------ change log

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
                snapshots.drop_snapshots(conn)

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

    def load_all(self, model_id: str, dim: int) -> LoadedStore:
        """Read every route and embedding at once (boot). Rows made by another encoder are marked stale."""
        with self._read_consistent() as conn:
            version = self._version(conn)
            # Plain DB-API cursors: no per-row Result/Row wrapping for a quarter million rows.
            dbapi: Any = conn.connection.dbapi_connection
            cur = dbapi.cursor()
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
        return snapshots.read_snapshot_info(self, model_id, dim)

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
        if not self.snapshots_enabled:
            return None
        return snapshots.write_snapshot(
            self, model_id, version, routes, ids, route_names, texts, vecs, replacing=replacing
        )

    def delete_snapshots(self) -> None:
        """Forget every boot snapshot (the next boot reads the utterance rows)."""
        if not self.snapshots_enabled:
            return
        with self._tx() as conn:
            snapshots.drop_snapshots(conn)

    def load_snapshot(
        self, info: SnapshotInfo, vectors_into: Callable[[int, int], np.ndarray] | None = None
    ) -> LoadedStore | None:
        """Read the snapshot ``info`` (its content as of ``info.version``), or None when it is gone,
        damaged or in a format this code does not read (the caller then reads the rows).

        ``vectors_into(rows, dim)``, when given, returns the writable float32 array the vectors
        are read into (for example an index's own storage, so they are not copied again).
        """
        return snapshots.read_snapshot(self, info, vectors_into)

    def count_changes_since(self, version: int) -> int:
        """How many change-log rows come after ``version``."""
        with self._read() as conn:
            n = conn.execute(
                sa.select(sa.func.count()).select_from(t_changes).where(t_changes.c.version > version)
            ).scalar_one()
        return int(n)

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


class _RouteRow(NamedTuple):
    id: int
    name: str
    description: str | None
    threshold: float | None
    metadata: str | None


def _stack_blobs(blobs: Sequence[bytes]) -> np.ndarray:
    if not blobs:
        return np.empty((0, 0), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1).copy()
