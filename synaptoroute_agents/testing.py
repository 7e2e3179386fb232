"""Test doubles users may use in their own tests.

:class:`HashEncoder` is a deterministic, nearly free encoder. It is not a language model: a text's
vector is the normalised sum of seeded random vectors of its words (a bag of hashed words), so texts
sharing words are close. Tests of code built on :class:`~synaptoroute_agents.SemanticRouter` can run
with it in microseconds and without the bundled model; stress runs use it so that the model's forward
pass does not dominate what they measure::

    from synaptoroute_agents import Route, SemanticRouter
    from synaptoroute_agents.testing import HashEncoder

    with SemanticRouter(encoder=HashEncoder()) as router:
        router.add(Route("billing", ["refund my payment"]))
        assert router.route("refund my payment please").name == "billing"
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
        #: how many times :meth:`embed` was called (tests assert on it)
        self.calls = 0

    @property
    def model_id(self) -> str:
        """The id stored next to embeddings made by this encoder."""
        return self._model_id

    @property
    def dim(self) -> int:
        """The vector dimension."""
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
        """Embed ``texts`` as L2-normalised float32 rows (an empty text is the zero vector).

        Args:
            texts: the texts to embed.

        Returns:
            An array of shape ``(len(texts), dim)``.
        """
        self.calls += 1
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for j, text in enumerate(texts):
            for w in text.lower().split():
                out[j] += self._word(w)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        out /= norms
        return out
