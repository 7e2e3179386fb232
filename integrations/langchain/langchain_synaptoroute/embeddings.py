"""SynaptoRouteEmbeddings: LangChain ``Embeddings`` over a local synaptoroute encoder."""

from __future__ import annotations

import asyncio

from ._deps import require

require("langchain_core", "langchain-core")

from langchain_core.embeddings import Embeddings  # noqa: E402

from synaptoroute_agents import (  # noqa: E402
    Encoder,
    InvalidTypeError,
    LazyEncoder,
    clean_text,
    embed_in_batches,
    validate_positive_int,
)

__all__ = ["SynaptoRouteEmbeddings"]


class SynaptoRouteEmbeddings(Embeddings):
    """Local embeddings for any LangChain vector store, with no network and no API key.

    By default the bundled offline model (all-MiniLM-L6-v2, INT8 ONNX, 384 dimensions) is loaded on
    first use; any synaptoroute :class:`Encoder` can be given instead (for example the encoder a
    :class:`SemanticRouter` already holds, so both share one model in memory). Vectors are unit
    length, so cosine similarity equals the dot product.

    Args:
        encoder: any synaptoroute encoder; None loads :class:`BundledEncoder` lazily.
        batch_size: texts per encoder call in :meth:`embed_documents`.

    Texts are cleaned as queries are (control characters, white space, length cut at 8,192
    characters); an empty text raises :class:`InvalidQueryError`.
    """

    def __init__(self, encoder: Encoder | None = None, *, batch_size: int = 256) -> None:
        if isinstance(encoder, str):  # LazyEncoder takes names; this class takes encoders only
            raise InvalidTypeError("encoder must implement the Encoder protocol (model_id, dim, embed)")
        self._encoder = LazyEncoder(encoder)
        self.batch_size = validate_positive_int(batch_size, "batch_size")

    @property
    def encoder(self) -> Encoder:
        """The encoder (the bundled model is loaded on first access)."""
        return self._encoder.get()

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents; returns one list of ``dim`` floats per text."""
        if isinstance(texts, str | bytes):
            raise InvalidTypeError("texts must be a list of strings, not a single string")
        cleaned = [clean_text(t, what="query") for t in texts]
        if not cleaned:
            return []
        vectors = embed_in_batches(self.encoder, cleaned, batch_size=self.batch_size, progress=False)
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one query."""
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async twin of :meth:`embed_documents` (the model runs in a worker thread)."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Async twin of :meth:`embed_query`."""
        return await asyncio.to_thread(self.embed_query, text)

    def __repr__(self) -> str:
        model = self._encoder.model_id if self._encoder.loaded else "bundled (not loaded)"
        return f"SynaptoRouteEmbeddings(model={model!r})"
