"""Framework imports that fail with a message naming what to install (the engine's ``require``)."""

from __future__ import annotations

from synaptoroute_agents import require

__all__ = ["require"]
