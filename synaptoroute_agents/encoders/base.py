"""The encoder protocol and helpers every encoder shares."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np

from ..errors import EncoderError

__all__ = [
    "Encoder",
    "FeatureEncoder",
    "SliceRunner",
    "TieredEncoder",
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


@runtime_checkable
class FeatureEncoder(Encoder, Protocol):
    """An :class:`Encoder` that also offers features for a fitted head (an optional capability).

    ``head_features`` is a stable id of the features (None when this instance has none, for
    example a quantized copy of a model that has them); ``embed_with_features(texts)`` returns
    ``(vectors, features)``, both ``(len(texts), dim)`` arrays of unit rows computed in one pass,
    ``vectors`` being exactly what ``embed`` returns.
    """

    @property
    def head_features(self) -> str | None: ...

    def embed_with_features(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class TieredEncoder(Encoder, Protocol):
    """An :class:`Encoder` with a cheap first tier (an optional capability; see ``encoder="cascade"``).

    ``static_embed(texts)`` returns ``(len(texts), static_dim)`` float32 rows of unit length (a
    zero row for a text it cannot read) from a model that costs a fraction of a millisecond; ``static_id``
    names it. A router whose encoder has this capability decides from the static rows where
    they are confident enough and calls ``embed`` only for the rest; ``embed`` is the encoder's
    full (transformer) embedding, what the store keeps.
    """

    @property
    def static_id(self) -> str: ...

    @property
    def static_dim(self) -> int: ...

    def static_embed(self, texts: Sequence[str]) -> np.ndarray: ...


def head_features_of(encoder: object) -> str | None:
    """The id of an encoder's head features, or None when it has none (see :class:`FeatureEncoder`)."""
    if not isinstance(encoder, FeatureEncoder):
        return None
    fid = encoder.head_features
    return fid if isinstance(fid, str) else None


_T = TypeVar("_T")
_R = TypeVar("_R")


class SliceRunner:
    """Runs an encoder's slices of one batch a few at a time in a small thread pool of its own.

    Each onnxruntime call releases the GIL: on few cores two concurrent small calls keep the
    cores busier than one call split across them by onnxruntime.
    """

    #: slices run at once; 1 runs them one after another
    parallel_slices: int = 2
    _pool: ThreadPoolExecutor | None = None
    _pool_lock: ClassVar[threading.Lock] = threading.Lock()

    def map_slices(self, fn: Callable[[_T], _R], slices: Sequence[_T]) -> list[_R]:
        """``[fn(s) for s in slices]``, :attr:`parallel_slices` at a time."""
        if self.parallel_slices <= 1 or len(slices) <= 1:
            return [fn(s) for s in slices]
        return list(self._slice_pool().map(fn, slices))

    def _slice_pool(self) -> ThreadPoolExecutor:
        """This encoder's pool of :attr:`parallel_slices` threads, made on first use."""
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        self.parallel_slices, thread_name_prefix="synaptoroute-embed"
                    )
        return self._pool


def as_unit_rows(vectors: object, n: int, dim: int) -> np.ndarray:
    """Check an encoder's output and return it as C-contiguous, L2-normalized float32 rows."""
    arr = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if arr.ndim != 2 or arr.shape != (n, dim):
        raise EncoderError(f"encoder returned shape {arr.shape}, expected ({n}, {dim})")
    if not np.isfinite(arr).all():
        raise EncoderError("encoder returned non-finite values")
    norms = np.sqrt(np.add.reduce(arr * arr, axis=1, keepdims=True))  # np.linalg.norm's own sum
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

    def plain(chunk: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        return encoder.embed(chunk), None

    return _batched(encoder, texts, plain, False, batch_size, progress, progress_min)[0]


def embed_with_features_in_batches(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    batch_size: int = 512,
    progress: bool | None = None,
    progress_min: int = 2000,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`embed_in_batches` for a :class:`FeatureEncoder`: ``(vectors, features)``.

    Raises:
        EncoderError: the encoder does not implement :class:`FeatureEncoder`.
    """
    if not isinstance(encoder, FeatureEncoder):
        raise EncoderError(f"{type(encoder).__name__} has no head features (embed_with_features)")
    out, feats = _batched(
        encoder, texts, encoder.embed_with_features, True, batch_size, progress, progress_min
    )
    assert feats is not None
    return out, feats


def _batched(
    encoder: Encoder,
    texts: Sequence[str],
    step: Callable[[list[str]], tuple[np.ndarray, np.ndarray | None]],
    with_features: bool,
    batch_size: int,
    progress: bool | None,
    progress_min: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    n = len(texts)
    show = progress if progress is not None else n > progress_min
    if 0 < n <= batch_size and not show:
        # one call (a routed query): its checked rows as they are, without a copy into a buffer
        vecs, fs = step(list(texts))
        one = as_unit_rows(fs, n, encoder.dim) if with_features else None
        return as_unit_rows(vecs, n, encoder.dim), one
    out = np.empty((n, encoder.dim), dtype=np.float32)
    feats = np.empty((n, encoder.dim), dtype=np.float32) if with_features else None
    if n == 0:
        return out, feats
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="embedding", unit="text")
    try:
        pos = 0
        for chunk in _chunks(texts, batch_size):
            m = len(chunk)
            vecs, fs = step(list(chunk))
            if feats is not None:
                feats[pos : pos + m] = as_unit_rows(fs, m, encoder.dim)
            out[pos : pos + m] = as_unit_rows(vecs, m, encoder.dim)
            pos += m
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return out, feats
