"""DocumentIndex: a small read-only retrieval index for the RAG fallback, on the router's engine.

Passages are embedded with the same encoder as the routes (the bundled model by default), searched
with the same Faiss :class:`~synaptoroute_agents.VectorIndex`, and kept in the same SQL database as
a :class:`~synaptoroute_agents.RouteStore` (table ``sr_documents``). Embeddings are stored as float32
blobs with the encoder's model id, so reopening an index never re-embeds; rows made by another
encoder are re-embedded once at load.

"Read-only" is about the agent: the fallback branch can only *search* it. Your code fills it with
:meth:`DocumentIndex.add` and removes passages with :meth:`DocumentIndex.delete`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from .encoders.base import Encoder, embed_in_batches
from .encoders.lazy import LazyEncoder
from .errors import InvalidInputError, InvalidTypeError, StoreError
from .index import VectorIndex
from .routes import clean_text, validate_positive_int
from .store import RouteStore

if TYPE_CHECKING:
    from .router import SemanticRouter

__all__ = ["DocumentHit", "DocumentIndex", "chunk_text"]

log = logging.getLogger(__name__)

_meta = sa.MetaData()
t_documents = sa.Table(
    "sr_documents",
    _meta,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("collection", sa.String(128), nullable=False, index=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("text_hash", sa.String(40), nullable=False),
    sa.Column("metadata", sa.Text, nullable=False, default="{}"),
    sa.Column("model_id", sa.String(256), nullable=False),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("vector", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)

_NAME_RE = re.compile(r"\w[\w.:\-]{0,127}")
_PARA = re.compile(r"\n\s*\n")


@dataclass(frozen=True, slots=True)
class DocumentHit:
    """One retrieved passage: its text, cosine score, metadata and row id."""

    text: str
    score: float
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: int = -1

    def to_dict(self) -> dict[str, Any]:
        """The hit as plain JSON-ready data."""
        return {"id": self.id, "text": self.text, "score": self.score, "metadata": dict(self.metadata)}


def chunk_text(text: str, *, chunk_size: int = 1000, chunk_overlap: int = 100) -> list[str]:
    """Split a long text into passages of at most ``chunk_size`` characters.

    Paragraphs (blank-line separated) are packed together while they fit; a paragraph longer than
    ``chunk_size`` is cut at word boundaries into windows that overlap by about ``chunk_overlap``
    characters. Short texts come back as one chunk.
    """
    if chunk_size < 50:
        raise InvalidInputError("chunk_size must be at least 50 characters")
    if not 0 <= chunk_overlap < chunk_size // 2:
        raise InvalidInputError("chunk_overlap must be >= 0 and less than half of chunk_size")
    paragraphs = [re.sub(r"\s+", " ", p).strip() for p in _PARA.split(text)]
    paragraphs = [p for p in paragraphs if p]
    pieces: list[str] = []
    for p in paragraphs:
        if len(p) <= chunk_size:
            pieces.append(p)
            continue
        start = 0
        while start < len(p):
            end = min(len(p), start + chunk_size)
            if end < len(p):
                cut = p.rfind(" ", start + chunk_size // 2, end)
                end = cut if cut > start else end
            pieces.append(p[start:end].strip())
            if end >= len(p):
                break
            nxt = end - chunk_overlap
            space = p.find(" ", nxt, end)
            start = space + 1 if space != -1 and chunk_overlap else max(nxt, start + 1)
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + 2 + len(piece) <= chunk_size:
            chunks[-1] = chunks[-1] + "\n\n" + piece
        else:
            chunks.append(piece)
    return chunks


def _as_doc(item: Any, meta: Any) -> tuple[str, dict[str, Any]]:
    """(text, metadata) from a string, a mapping or a LangChain/LlamaIndex document (duck-typed)."""
    extra: Any = {}
    if isinstance(item, str | bytes):
        text: Any = item.decode("utf-8") if isinstance(item, bytes) else item
    elif isinstance(item, Mapping):
        text = item.get("text", item.get("page_content"))
        extra = item.get("metadata") or {}
    elif hasattr(item, "page_content"):  # langchain_core.documents.Document
        text, extra = item.page_content, getattr(item, "metadata", None) or {}
    elif hasattr(item, "text"):  # llama_index TextNode / Document
        text, extra = item.text, getattr(item, "metadata", None) or {}
    else:
        raise InvalidTypeError(
            f"a document must be a str, a mapping with 'text', or a Document, not {type(item).__name__}"
        )
    if not isinstance(text, str):
        raise InvalidTypeError("a document's text must be a str")
    if not isinstance(extra, Mapping) or (meta is not None and not isinstance(meta, Mapping)):
        raise InvalidTypeError("document metadata must be a mapping")
    merged = {**dict(extra), **dict(meta or {})}
    try:
        merged = json.loads(json.dumps(merged, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"document metadata is not JSON-serializable: {exc}") from None
    return text, merged


class DocumentIndex:
    """Passages searchable by meaning, persisted beside the routes.

    Args:
        encoder: any :class:`Encoder`; None uses the router's encoder when ``router`` is given,
            else the bundled offline model.
        store: None (in memory), a SQLite path, a SQLAlchemy URL or a :class:`RouteStore`
            (its database is shared; the documents live in their own table).
        name: the collection name; several indexes can share one database.
        router: a :class:`SemanticRouter` whose encoder and store to reuse.
        chunk_size, chunk_overlap: how long texts are split (see :func:`chunk_text`).

    Raises:
        InvalidInputError: bad name or chunking settings.
        StoreError: the database cannot be opened or written.
    """

    def __init__(
        self,
        encoder: Encoder | None = None,
        store: str | os.PathLike[str] | RouteStore | None = None,
        *,
        name: str = "default",
        router: SemanticRouter | None = None,
        chunk_size: int = 1000,
        chunk_overlap: int = 100,
    ) -> None:
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise InvalidInputError(f"invalid collection name {name!r}")
        chunk_text("x" * 10, chunk_size=chunk_size, chunk_overlap=chunk_overlap)  # validates settings
        self.name = name
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        if router is not None:
            encoder = encoder or router.encoder
            store = store if store is not None else router.store
        # the given encoder, or the bundled model (an InvalidTypeError for anything else)
        self.encoder: Encoder = LazyEncoder(encoder).get()
        encoder = self.encoder
        self._owns_store = not isinstance(store, RouteStore)
        self.store = store if isinstance(store, RouteStore) else RouteStore(store)
        self.index = VectorIndex(encoder.dim)
        self._texts: dict[int, str] = {}
        self._metas: dict[int, dict[str, Any]] = {}
        self._write_lock = threading.Lock()
        self._closed = False
        try:
            _meta.create_all(self.store.engine, checkfirst=True)
        except Exception as exc:
            raise StoreError(f"cannot create the documents table: {exc}") from exc
        self._load()

    # ------------------------------------------------------------------ load
    def _load(self) -> None:
        t = t_documents
        with self.store._read() as conn:
            rows = conn.execute(
                sa.select(t.c.id, t.c.text, t.c.metadata, t.c.model_id, t.c.dim, t.c.vector)
                .where(t.c.collection == self.name)
                .order_by(t.c.id)
            ).all()
        ids = np.array([r.id for r in rows], dtype=np.int64)
        vecs = np.empty((len(rows), self.encoder.dim), dtype=np.float32)
        stale: list[int] = []
        for j, r in enumerate(rows):
            if r.model_id == self.encoder.model_id and r.dim == self.encoder.dim:
                vecs[j] = np.frombuffer(r.vector, dtype=np.float32)
            else:
                stale.append(j)
        if stale:
            log.info("re-embedding %d passages made by another encoder", len(stale))
            fresh = embed_in_batches(self.encoder, [rows[j].text for j in stale])
            with self.store._tx() as conn:
                for j, v in zip(stale, fresh, strict=True):
                    conn.execute(
                        t.update()
                        .where(t.c.id == int(ids[j]))
                        .values(model_id=self.encoder.model_id, dim=self.encoder.dim, vector=v.tobytes())
                    )
            vecs[stale] = fresh
        self.index.load(ids, vecs)
        self._texts = {int(r.id): r.text for r in rows}
        self._metas = {int(r.id): json.loads(r.metadata or "{}") for r in rows}

    def refresh(self) -> None:
        """Reload from the store (picks up passages other processes added or deleted)."""
        with self._write_lock:
            self.index = VectorIndex(self.encoder.dim)
            self._load()

    # ------------------------------------------------------------------ writes
    def add(
        self, texts_or_docs: Iterable[Any], metadatas: Sequence[Mapping[str, Any]] | None = None
    ) -> list[int]:
        """Add documents; long ones are chunked. Returns the ids of the stored passages.

        Args:
            texts_or_docs: strings, mappings ``{"text", "metadata"}``, LangChain ``Document`` or
                LlamaIndex nodes (anything with ``page_content`` or ``text`` and ``metadata``).
            metadatas: one mapping per document, merged over the document's own metadata.

        Each passage's metadata also records ``doc`` (the position in this call) and ``chunk``.

        Raises:
            InvalidTypeError / InvalidInputError: bad documents or metadata (nothing is stored).
        """
        self._check_open()
        if isinstance(texts_or_docs, str | bytes | Mapping) or not isinstance(texts_or_docs, Iterable):
            raise InvalidTypeError("add() takes a list of documents; wrap a single one in a list")
        items = list(texts_or_docs)
        if metadatas is not None and (isinstance(metadatas, Mapping) or len(metadatas) != len(items)):
            raise InvalidInputError("metadatas must be a list with one mapping per document")
        passages: list[str] = []
        metas: list[dict[str, Any]] = []
        for n, item in enumerate(items):
            text, meta = _as_doc(item, metadatas[n] if metadatas is not None else None)
            text = text.encode("utf-8", "replace").decode("utf-8")
            if not text.strip():
                raise InvalidInputError(f"document {n} is empty")
            chunks = chunk_text(text, chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap)
            if not chunks:
                raise InvalidInputError(f"document {n} is empty")
            for c, chunk in enumerate(chunks):
                passages.append(chunk)
                metas.append({**meta, "doc": n, "chunk": c} if len(chunks) > 1 else {**meta, "doc": n})
        if not passages:
            return []
        vecs = embed_in_batches(self.encoder, passages)
        now = time.time()
        rows = [
            {
                "collection": self.name,
                "text": p,
                "text_hash": hashlib.sha1(p.encode("utf-8"), usedforsecurity=False).hexdigest(),
                "metadata": json.dumps(m),
                "model_id": self.encoder.model_id,
                "dim": self.encoder.dim,
                "vector": v.tobytes(),
                "created_at": now,
            }
            for p, m, v in zip(passages, metas, vecs, strict=True)
        ]
        with self._write_lock:
            ids: list[int] = []
            with self.store._tx() as conn:
                for row in rows:
                    key = conn.execute(t_documents.insert().values(**row)).inserted_primary_key
                    if key is None:  # pragma: no cover - every supported dialect returns the key
                        raise StoreError("the database did not return the new document id")
                    ids.append(int(key[0]))
            for i, p, m in zip(ids, passages, metas, strict=True):
                self._texts[i] = p
                self._metas[i] = m
            self.index.add(np.asarray(ids, dtype=np.int64), vecs)
        return ids

    async def aadd(
        self, texts_or_docs: Iterable[Any], metadatas: Sequence[Mapping[str, Any]] | None = None
    ) -> list[int]:
        """Async twin of :meth:`add` (embedding and the write run in a worker thread)."""
        return await asyncio.to_thread(self.add, texts_or_docs, metadatas)

    def delete(self, ids: Iterable[int]) -> int:
        """Delete passages by id; unknown ids are ignored. Returns how many were deleted."""
        self._check_open()
        if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
            raise InvalidTypeError("ids must be a list of integers")
        wanted = []
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, int | np.integer):
                raise InvalidTypeError(f"document ids are integers, not {type(i).__name__}")
            wanted.append(int(i))
        if not wanted:
            return 0
        with self._write_lock:
            with self.store._tx() as conn:
                conn.execute(
                    t_documents.delete().where(
                        t_documents.c.collection == self.name, t_documents.c.id.in_(wanted)
                    )
                )
            gone = [i for i in wanted if i in self._texts]
            self.index.remove(gone)
            for i in gone:
                self._texts.pop(i, None)
                self._metas.pop(i, None)
        return len(gone)

    # ------------------------------------------------------------------ reads
    def search(self, query: str, k: int = 4, *, min_score: float | None = None) -> list[DocumentHit]:
        """The ``k`` passages nearest ``query``, best first (fewer when the index is smaller).

        Raises:
            InvalidQueryError / InvalidTypeError: empty or non-string query.
            InvalidInputError: ``k`` is not a positive integer.
        """
        self._check_open()
        validate_positive_int(k, "k")
        text = clean_text(query)
        if not self._texts:
            return []
        q = embed_in_batches(self.encoder, [text])
        scores, ids = self.index.search(q, k)
        hits = []
        for s, i in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
            if i < 0 or i not in self._texts:
                continue
            if min_score is not None and s < min_score:
                break
            hits.append(DocumentHit(self._texts[i], float(s), dict(self._metas.get(i, {})), int(i)))
        return hits

    async def asearch(self, query: str, k: int = 4, *, min_score: float | None = None) -> list[DocumentHit]:
        """Async twin of :meth:`search`: the encoder runs in a worker thread."""
        return await asyncio.to_thread(self.search, query, k, min_score=min_score)

    def get(self, id: int) -> DocumentHit:
        """The passage with this id (score 1.0). Raises ``KeyError`` when unknown."""
        if id not in self._texts:
            raise KeyError(id)
        return DocumentHit(self._texts[id], 1.0, dict(self._metas.get(id, {})), id)

    def __len__(self) -> int:
        return len(self._texts)

    # ------------------------------------------------------------------ lifecycle
    def _check_open(self) -> None:
        if self._closed:
            from .errors import RouterClosedError

            raise RouterClosedError("the document index is closed")

    def close(self) -> None:
        """Release the store if this index opened it."""
        if self._closed:
            return
        self._closed = True
        self.index.wait_idle(5)
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> DocumentIndex:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DocumentIndex(name={self.name!r}, passages={len(self)}, encoder={self.encoder.model_id!r})"
