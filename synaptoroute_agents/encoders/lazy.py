"""LazyEncoder: an encoder given by the caller, or one built by name on first use."""

from __future__ import annotations

import threading

from .base import Encoder
from .registry import check_encoder_type, resolve_encoder

__all__ = ["LazyEncoder"]


class LazyEncoder:
    """Holds an encoder, building it on first use when none was given.

    The faces (LangChain embeddings, LlamaIndex selectors and tool retriever) and the engine's own
    defaults (seeding's validation, :class:`~synaptoroute_agents.DocumentIndex`) take an optional
    encoder and must not load the bundled model before it is needed: they keep a ``LazyEncoder``
    and call :meth:`get` when they embed. It is a holder, not an :class:`Encoder` itself, so that
    a protocol check never builds the model by accident.

    Args:
        encoder: an encoder to use as is, an encoder name for
            :func:`~synaptoroute_agents.encoders.registry.resolve_encoder` (built on first use), or
            None for the bundled model (built on first use).

    Raises:
        InvalidTypeError: ``encoder`` is neither None, a name nor an :class:`Encoder`.
    """

    def __init__(self, encoder: Encoder | str | None = None) -> None:
        check_encoder_type(encoder)
        self._spec: str | None = encoder if isinstance(encoder, str) else None
        self._encoder: Encoder | None = encoder if isinstance(encoder, Encoder) else None
        self._lock = threading.Lock()

    def get(self) -> Encoder:
        """The encoder, built now if this is the first use."""
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    self._encoder = resolve_encoder(self._spec)
        return self._encoder

    @property
    def loaded(self) -> bool:
        """Whether the encoder exists yet (True at once when one was given)."""
        return self._encoder is not None

    def __repr__(self) -> str:
        if self._encoder is None:
            return f"LazyEncoder({self._spec or 'bundled'!r}, not loaded)"
        return f"LazyEncoder({self._encoder!r})"
