"""Former home of the INT8 screen and the float32 scan: they live in :mod:`synaptoroute_agents.index`
(:mod:`~synaptoroute_agents.index.screen` and :mod:`~synaptoroute_agents.index.exact`). The
names stay importable from here."""

from __future__ import annotations

from .index.exact import FloatScan, float_scan_model, matmul_model
from .index.screen import Int8Screen, build_screen, screen_model

__all__ = ["FloatScan", "Int8Screen", "build_screen", "float_scan_model", "matmul_model", "screen_model"]
