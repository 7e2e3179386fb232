"""The encoder protocol and helpers every encoder shares."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import EncoderError

__all__ = [
    "Encoder",
    "as_unit_rows",
    "embed_in_batches",
    "embed_with_features_in_batches",
    "head_features_of",
]


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


def head_features_of(encoder: object) -> str | None:
    """The id of an encoder's head features, or None when it has none.

    An encoder may offer features for a fitted head besides its embeddings: a ``head_features``
    property (a stable id) and ``embed_with_features(texts) -> (vectors, features)``, both arrays
    ``(len(texts), dim)`` of unit rows, computed in one pass.
    """
    fid = getattr(encoder, "head_features", None)
    return fid if isinstance(fid, str) and callable(getattr(encoder, "embed_with_features", None)) else None


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
    return _batched(encoder, texts, False, batch_size, progress, progress_min)[0]


def embed_with_features_in_batches(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    batch_size: int = 512,
    progress: bool | None = None,
    progress_min: int = 2000,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`embed_in_batches` for an encoder with head features: ``(vectors, features)``."""
    out, feats = _batched(encoder, texts, True, batch_size, progress, progress_min)
    assert feats is not None
    return out, feats


def _batched(
    encoder: Encoder,
    texts: Sequence[str],
    with_features: bool,
    batch_size: int,
    progress: bool | None,
    progress_min: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    n = len(texts)
    out = np.empty((n, encoder.dim), dtype=np.float32)
    feats = np.empty((n, encoder.dim), dtype=np.float32) if with_features else None
    if n == 0:
        return out, feats
    show = progress if progress is not None else n > progress_min
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="embedding", unit="text")
    try:
        pos = 0
        for chunk in _chunks(texts, batch_size):
            m = len(chunk)
            if feats is not None:
                vecs, fs = encoder.embed_with_features(list(chunk))  # type: ignore[attr-defined]
                feats[pos : pos + m] = as_unit_rows(fs, m, encoder.dim)
            else:
                vecs = encoder.embed(list(chunk))
            out[pos : pos + m] = as_unit_rows(vecs, m, encoder.dim)
            pos += m
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return out, feats
