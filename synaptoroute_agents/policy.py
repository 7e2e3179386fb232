"""Former home of the scoring policies; they live in :mod:`synaptoroute_agents.scoring` now."""

from __future__ import annotations

from .scoring import CosinePolicy, Decision, QueryBatch, ScoringPolicy, aggregate_max

__all__ = ["Decision", "ScoringPolicy", "CosinePolicy", "QueryBatch", "aggregate_max"]
