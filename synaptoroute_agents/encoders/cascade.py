"""``encoder="cascade"``: the static tier in front of a transformer encoder.

:class:`CascadeEncoder` is the transformer encoder it wraps (same ``model_id``, ``dim``,
``embed`` and head features: the store keeps the transformer's embeddings, so a store made with
``"bundled"`` boots under ``"cascade"`` without re-embedding) plus the
:class:`~synaptoroute_agents.encoders.base.TieredEncoder` capability: ``static_embed`` from the
distilled table (:mod:`.static`). The router does the rest (``router/cascade.py``): it answers
from the static tier when that tier's decision is confident by a margin, and runs ``embed``
only for the other queries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import EncoderError
from .base import Encoder, FeatureEncoder, head_features_of
from .static import StaticEncoder

__all__ = ["CascadeEncoder"]


class CascadeEncoder:
    """A transformer encoder with the static tier beside it.

    Args:
        transformer: the encoder that decides what the static tier is unsure of (None: the
            bundled model).
        static: the static tier (None: the shipped table, :class:`StaticEncoder`).
    """

    def __init__(self, transformer: Encoder | None = None, static: StaticEncoder | None = None) -> None:
        if transformer is None:
            from .bundled import BundledEncoder

            transformer = BundledEncoder()
        self.transformer: Encoder = transformer
        self.static = static if static is not None else StaticEncoder()

    # -- the transformer's identity: what the store keeps
    @property
    def model_id(self) -> str:
        """The transformer's model id (its embeddings are the stored ones)."""
        return self.transformer.model_id

    @property
    def dim(self) -> int:
        """The transformer's dimension."""
        return self.transformer.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The transformer's embeddings."""
        return self.transformer.embed(texts)

    @property
    def head_features(self) -> str | None:
        """The transformer's head features (None when it has none)."""
        return head_features_of(self.transformer)

    def embed_with_features(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The transformer's ``embed_with_features``."""
        if not isinstance(self.transformer, FeatureEncoder):
            raise EncoderError(f"{type(self.transformer).__name__} has no head features")
        return self.transformer.embed_with_features(texts)

    # -- the static tier
    @property
    def static_id(self) -> str:
        """The static table's id."""
        return self.static.model_id

    @property
    def static_dim(self) -> int:
        """The static table's width."""
        return self.static.dim

    def static_embed(self, texts: Sequence[str]) -> np.ndarray:
        """Static rows of unit length (a zero row for a text without known tokens)."""
        return self.static.embed(texts)

    def __repr__(self) -> str:
        return f"CascadeEncoder(transformer={self.transformer!r}, static={self.static_id!r})"
