"""Packed boot snapshots: every utterance (ids, texts, vectors) and route in a few large rows.

A boot reads a snapshot as a handful of multi-MiB chunks instead of one row per utterance, then
applies the change log after the snapshot's version. The layout is one byte array of 8-byte
aligned sections, described by a JSON header (:func:`pack_snapshot`): the small sections first
(``ids`` int64, ``counts`` int64 per route, ``routes`` JSON, ``texts`` UTF-8 joined by NUL), the
float32 ``vectors`` last, so a reader can stream them straight into the index's own storage
(no second copy). Each chunk carries a cheap checksum (:func:`sum64`) and the small sections a
CRC-32: a damaged or missing snapshot is skipped (logged) and the boot reads the rows.
A snapshot is a cache, never the truth.

Why not NumPy's ``.npz``: its zip container must be whole in memory before an array comes out
(no streaming of chunks into the index's storage), NumPy's text arrays are fixed-width UTF-32,
and the vectors are copied once more into the index. ``benchmarks/hand_written.py`` measures
both (bytes, unpack time, peak memory).
"""

from __future__ import annotations

import json
import logging
import os
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DatabaseError, OperationalError

from ..errors import InvalidInputError, StoreError
from ..routes import Route
from .engine import PG_SNAPSHOT_LOCK_KEY, Database
from .records import LoadedStore
from .schema import t_snapshot_chunks, t_snapshots

__all__ = [
    "SnapshotInfo",
    "pack_snapshot",
    "unpack_snapshot",
    "sum64",
    "read_snapshot_info",
    "write_snapshot",
    "read_snapshot",
    "drop_snapshots",
]

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 1
SNAPSHOT_CHUNK = 8 << 20  # bytes per chunk row
_SQLITE_MMAP = 1 << 31  # bytes of a SQLite file mapped while a snapshot is read


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


# --------------------------------------------------------------------------- the codec
def sum64(data: Any) -> int:
    """A cheap checksum of a chunk: the wrapping sum of its 64-bit words (tail zero-padded)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    tail = len(arr) % 8
    total = int(arr[: len(arr) - tail].view(np.uint64).sum(dtype=np.uint64))
    if tail:
        total += int.from_bytes(bytes(arr[len(arr) - tail :]), "little")
    return (total + len(arr)) % (1 << 64)


def _route_table(routes: Mapping[str, Route], names: Sequence[str]) -> bytes:
    """The ``routes`` section: JSON rows (name, description, threshold, metadata as JSON)."""
    return json.dumps(
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


def pack_snapshot(
    routes: Mapping[str, Route],
    ids: np.ndarray,
    route_names: Sequence[str],
    texts: Sequence[str],
    vecs: np.ndarray,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Lay a snapshot out as one byte array: utterances grouped by route (then by id).

    Sections (8-byte aligned): ``ids`` int64, ``counts`` int64 per route, ``routes`` JSON
    (name, description, threshold, metadata), ``texts`` UTF-8 joined by NUL, ``vectors`` float32.
    Returns (bytes, layout), or (None, {}) when a text holds a NUL (nothing is written then).
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
    joined = "\x00".join(texts[i] for i in order.tolist())
    if joined.count("\x00") != max(0, n - 1):
        log.info("an utterance holds a NUL character; no boot snapshot is written")
        return None, {}
    sections: list[tuple[str, np.ndarray | bytes]] = [
        ("ids", ids[order]),
        ("counts", counts),
        ("routes", _route_table(routes, names)),
        ("texts", joined.encode("utf-8")),
        ("vectors", vecs),
    ]
    layout: dict[str, Any] = {"format": SNAPSHOT_FORMAT, "routes": len(names), "sections": {}}
    offset = 0
    for name, data in sections:
        size = data.nbytes if isinstance(data, np.ndarray) else len(data)
        layout["sections"][name] = [offset, size]
        offset += (size + 7) // 8 * 8
    buf = np.zeros(offset, dtype=np.uint8)
    for name, data in sections[:-1]:
        a, size = layout["sections"][name]
        if isinstance(data, np.ndarray):
            buf[a : a + size] = data.view(np.uint8).reshape(-1)
        else:
            buf[a : a + size] = np.frombuffer(data, dtype=np.uint8)
    a, size = layout["sections"]["vectors"]
    np.take(vecs, order, axis=0, out=buf[a : a + size].view(np.float32).reshape(vecs.shape))
    layout["crc32"] = zlib.crc32(buf[:a].data)
    return buf, layout


def unpack_snapshot(
    buf: np.ndarray, layout: dict[str, Any], info: SnapshotInfo, vectors_read: np.ndarray | None = None
) -> LoadedStore | None:
    """The snapshot's content from ``buf``; ``vectors_read``: its vectors, read apart (``buf`` then
    ends where they begin). None (logged) when the small sections fail their checksum; raises
    ValueError when the sections do not match the header."""
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


# --------------------------------------------------------------------------- in the database
def drop_snapshots(conn: Connection) -> None:
    """Delete every snapshot inside the caller's write transaction."""
    conn.execute(t_snapshot_chunks.delete())
    conn.execute(t_snapshots.delete())


def read_snapshot_info(
    db: Database, model_id: str | None = None, dim: int | None = None
) -> SnapshotInfo | None:
    """The newest boot snapshot in ``db`` (made by ``model_id`` with ``dim``, when given), or None."""
    query = sa.select(t_snapshots).order_by(t_snapshots.c.version.desc(), t_snapshots.c.created_at.desc())
    if model_id is not None:
        query = query.where(t_snapshots.c.model_id == model_id)
    if dim is not None:
        query = query.where(t_snapshots.c.dim == dim)
    try:
        with db._read() as conn:
            row = conn.execute(query.limit(1)).first()
    except DatabaseError as exc:  # the tables could not be created (see schema.open_schema)
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


def write_snapshot(
    db: Database,
    model_id: str,
    version: int,
    routes: Mapping[str, Route],
    ids: np.ndarray,
    route_names: Sequence[str],
    texts: Sequence[str],
    vecs: np.ndarray,
    *,
    replacing: str | None = None,
) -> SnapshotInfo | None:
    """Pack and write a snapshot (see :meth:`RouteStore.save_snapshot
    <synaptoroute_agents.store.RouteStore.save_snapshot>`); ``vecs`` is float32 and aligned."""
    dim = int(vecs.shape[1])
    payload, layout = pack_snapshot(routes, np.asarray(ids, dtype=np.int64), route_names, texts, vecs)
    if payload is None:
        return None
    nbytes = len(payload)
    chunks = [(k, payload[a : a + SNAPSHOT_CHUNK]) for k, a in enumerate(range(0, nbytes, SNAPSHOT_CHUNK))]
    layout["chunk_sums"] = [sum64(c) for _, c in chunks]
    info = SnapshotInfo(
        os.urandom(16).hex(),
        model_id,
        dim,
        int(version),
        len(ids),
        layout["routes"],
        nbytes,
        len(chunks),
        json.dumps(layout),
        time.time(),
    )
    try:
        # on PostgreSQL, not the mutation lock (a snapshot is not a change): only one that keeps
        # two snapshot writers apart
        with db._tx(PG_SNAPSHOT_LOCK_KEY) as conn:
            newest = conn.execute(
                sa.select(t_snapshots.c.id, t_snapshots.c.version)
                .where(t_snapshots.c.model_id == model_id, t_snapshots.c.dim == dim)
                .order_by(t_snapshots.c.version.desc())
                .limit(1)
            ).first()
            if newest is not None and int(newest.version) >= info.version and newest.id != replacing:
                return None
            drop_snapshots(conn)
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
                conn.execute(t_snapshot_chunks.insert().values(snapshot_id=info.id, seq=k, data=chunk))
    except (OperationalError, DatabaseError) as exc:
        raise StoreError(f"cannot save the boot snapshot: {exc.orig}") from exc
    if db.dialect == "sqlite" and not db.in_memory:
        # Move the new pages from the write-ahead log into the file now (without waiting for
        # anyone): a boot reads them from there through a memory map, much faster.
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    return info


def read_snapshot(
    db: Database, info: SnapshotInfo, vectors_into: Callable[[int, int], np.ndarray] | None = None
) -> LoadedStore | None:
    """Read the snapshot ``info`` (its content as of ``info.version``), or None when it is gone,
    damaged or in a format this code does not read (the caller then reads the rows).

    ``vectors_into(rows, dim)``, when given, returns the writable float32 array the vectors
    are read into (for example an index's own storage, so they are not copied again).
    """
    try:
        layout = json.loads(info.layout)
        if layout.get("format") != SNAPSHOT_FORMAT:
            log.warning("boot snapshot %s has format %r; reading the rows", info.id, layout.get("format"))
            return None
        sums = layout["chunk_sums"]
        vec_at, vec_size = layout["sections"]["vectors"]
        vectors: np.ndarray | None = None
        if vectors_into is not None and vec_at + vec_size == info.nbytes and vec_at >= 0:
            vectors = vectors_into(info.rows, info.dim)
            if vectors.dtype != np.float32 or vectors.nbytes != vec_size or not vectors.flags.c_contiguous:
                raise ValueError("the array for the vectors does not fit the snapshot")
        # the small sections (ids, texts, routes) come first, the vectors last
        buf = np.empty(info.nbytes if vectors is None else vec_at, dtype=np.uint8)
        tail = None if vectors is None else vectors.reshape(-1).view(np.uint8)
        if not _read_chunks(db, info, sums, buf, tail, vec_at):
            return None
        return unpack_snapshot(buf, layout, info, vectors)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        log.warning("boot snapshot %s is damaged (%s); reading the rows", info.id, exc)
        return None
    except Exception as exc:  # the driver's own errors too: a cache that cannot be read is skipped
        log.warning("boot snapshot %s could not be read (%s); reading the rows", info.id, exc)
        return None


def _read_chunks(
    db: Database, info: SnapshotInfo, sums: list[int], buf: np.ndarray, tail: np.ndarray | None, vec_at: int
) -> bool:
    """Copy the chunks of ``info`` into ``buf`` (and, past ``vec_at``, into ``tail``): False
    (logged) when one is missing, damaged or the whole is truncated.

    The chunks come through the driver's own cursor, from one read transaction: no per-row
    wrapping, and on SQLite straight from a memory map of the file.
    """
    pos = expected = 0
    with db._read() as conn:
        conn.execute(sa.text("SELECT 1"))  # begin: every chunk from one read transaction
        dbapi: Any = conn.connection.dbapi_connection
        pg = db.dialect == "postgresql"
        mark = "%s" if pg else "?"
        sql = f"SELECT seq, data FROM sr_snapshot_chunks WHERE snapshot_id = {mark} ORDER BY seq"
        cur = dbapi.cursor(binary=True) if pg else dbapi.cursor()
        mapped = db.dialect == "sqlite" and not db.in_memory
        if mapped:  # read the large rows straight from a memory map of the file
            cur.execute(f"PRAGMA mmap_size={_SQLITE_MMAP}")
        rows: Any = None
        try:
            # PostgreSQL streams the rows (it reads the next chunk while this one is copied)
            rows = cur.stream(sql, (info.id,), binary=True) if pg else cur.execute(sql, (info.id,))
            for seq, data in rows:
                size = len(data)
                if seq != expected or expected >= info.chunks:
                    log.warning("boot snapshot %s lacks chunk %d; reading the rows", info.id, expected)
                    return False
                if pos + size > info.nbytes or sum64(data) != sums[seq]:
                    log.warning("boot snapshot %s is damaged (chunk %d); reading the rows", info.id, seq)
                    return False
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
        return False
    return True
