"""A deterministic, nearly free encoder for stress runs and engine-only benchmarks.

It is not a language model: a text's vector is a seeded random unit vector derived from its
words (a bag of hashed words), so texts sharing words are close. It lets a stress run drive the
router, index and store as fast as they go, without the model's forward pass dominating.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

import numpy as np

__all__ = ["HashEncoder"]


class HashEncoder:
    """Bag-of-hashed-words unit vectors: deterministic, thread-safe, ~microseconds per text.

    Args:
        dim: vector dimension (384 matches the bundled model).
        model_id: the id written next to stored embeddings.
    """

    def __init__(self, dim: int = 384, model_id: str = "hash-bow-384") -> None:
        self._dim = int(dim)
        self._model_id = model_id
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.calls = 0

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    def _word(self, word: str) -> np.ndarray:
        v = self._cache.get(word)
        if v is None:
            seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(self._dim).astype(np.float32)
            with self._lock:
                if len(self._cache) < 200_000:
                    self._cache[word] = v
        return v

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for j, text in enumerate(texts):
            for w in text.lower().split():
                out[j] += self._word(w)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms
