"""Scoring policies: how a query's nearest utterances become a ranked, thresholded decision.

* :mod:`.base`: :class:`ScoringPolicy` (the protocol the router calls), :class:`Decision`,
  :class:`QueryBatch`, :class:`StoredPolicy`, :class:`PolicyBase` (defaults).
* :mod:`.cosine`: :class:`CosinePolicy`, the unfitted default.
* :mod:`.registry`: stored policies by kind (:func:`register_policy`, :func:`load_policy`).

A new scoring method is one module with a class that satisfies :class:`StoredPolicy` and one
:func:`register_policy` call (its loader and fitter); ``SemanticRouter.fit(..., policy=kind)``
fits it, stores it with its kind, and every router on the store loads it.
"""

from __future__ import annotations

from .base import Decision, Neighbors, PolicyBase, QueryBatch, ScoringPolicy, StoredPolicy
from .cosine import CosinePolicy, aggregate_max
from .registry import (
    DEFAULT_KIND,
    PolicyFitter,
    PolicyLoader,
    dump_policy,
    load_policy,
    policy_fitter,
    register_policy,
    registered_policies,
)

__all__ = [
    "DEFAULT_KIND",
    "CosinePolicy",
    "Decision",
    "Neighbors",
    "PolicyBase",
    "PolicyFitter",
    "PolicyLoader",
    "QueryBatch",
    "ScoringPolicy",
    "StoredPolicy",
    "aggregate_max",
    "dump_policy",
    "load_policy",
    "policy_fitter",
    "register_policy",
    "registered_policies",
]
