"""Former home of :class:`Lexicon`; it lives in :mod:`synaptoroute_agents.fitting.lexicon` now."""

from __future__ import annotations

from .fitting.lexicon import Lexicon

__all__ = ["Lexicon"]
