"""The encoder protocol and helpers every encoder shares."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import EncoderError

__all__ = ["Encoder", "as_unit_rows", "embed_in_batches"]


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into L2-normalized float32 vectors.

    An encoder has a stable ``model_id`` (stored beside every embedding, so a store knows which
    encoder made it) and a fixed dimension ``dim``. ``embed`` returns an array of shape
    ``(len(texts), dim)``, dtype float32, rows of unit length.
    """

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def as_unit_rows(vectors: object, n: int, dim: int) -> np.ndarray:
    """Check an encoder's output and return it as C-contiguous, L2-normalized float32 rows."""
    arr = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if arr.ndim != 2 or arr.shape != (n, dim):
        raise EncoderError(f"encoder returned shape {arr.shape}, expected ({n}, {dim})")
    if not np.isfinite(arr).all():
        raise EncoderError("encoder returned non-finite values")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if (norms == 0).any():
        raise EncoderError("encoder returned a zero vector")
    arr /= norms
    return arr


def _chunks(texts: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(texts), size):
        yield texts[start : start + size]


def embed_in_batches(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    batch_size: int = 512,
    progress: bool | None = None,
    progress_min: int = 2000,
) -> np.ndarray:
    """Embed many texts in batches, with a progress bar for large sets.

    Args:
        encoder: any :class:`Encoder`.
        texts: the texts.
        batch_size: texts per call to ``encoder.embed``.
        progress: show a tqdm bar; None shows it when there are more than ``progress_min`` texts.
        progress_min: the size above which ``progress=None`` shows the bar.
    """
    n = len(texts)
    out = np.empty((n, encoder.dim), dtype=np.float32)
    if n == 0:
        return out
    show = progress if progress is not None else n > progress_min
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="embedding", unit="text")
    try:
        pos = 0
        for chunk in _chunks(texts, batch_size):
            out[pos : pos + len(chunk)] = as_unit_rows(encoder.embed(list(chunk)), len(chunk), encoder.dim)
            pos += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return out
