"""What every scoring policy speaks: the query batch it reads, the decision it returns, its protocol.

The router hands a policy a :class:`QueryBatch` (the query embeddings, and the cleaned texts and
the encoder's head features when it knows them) and, per query, the nearest stored utterances
as ``(route, cosine)`` pairs, best first. The policy returns one :class:`Decision` per query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..routes import Reason

__all__ = ["Decision", "Neighbors", "QueryBatch", "ScoringPolicy", "StoredPolicy"]

#: Per query, the nearest stored utterances as ``(route name, cosine)``, best first.
Neighbors = Sequence[Sequence[tuple[str, float]]]


class Decision(NamedTuple):
    """One query's decision: every candidate ranked, the route chosen (or None) and why."""

    ranked: list[tuple[str, float]]
    """Candidate routes with their scores, best first."""
    chosen: str | None
    """The route the query goes to; None when the policy abstains."""
    reason: Reason
    """Why: matched, below_threshold, ambiguous or out_of_scope."""


@dataclass(frozen=True, slots=True)
class QueryBatch:
    """The queries a policy decides for.

    Attributes:
        embeddings: ``(b, dim)`` unit query embeddings.
        texts: the cleaned query texts, one per row, when the caller knows them (a policy that
            reads words leaves them out otherwise).
        features: the encoder's head features of the queries (``(b, dim)``), when the active
            policy reads them (see :attr:`ScoringPolicy.features`) and the encoder has them.
    """

    embeddings: np.ndarray
    texts: Sequence[str] | None = None
    features: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.embeddings)


@runtime_checkable
class ScoringPolicy(Protocol):
    """Turns neighbours into decisions. Implementations must be safe to call from many threads.

    Every member is required; :class:`~synaptoroute_agents.scoring.PolicyBase` gives the
    optional ones their defaults.
    """

    @property
    def kind(self) -> str:
        """The policy's registered name (``"cosine"``, ``"fitted"``, ...)."""
        ...

    @property
    def features(self) -> str | None:
        """The id of the encoder head features the policy reads (None: the embeddings only).

        When it is not None and the encoder provides those features, the router computes them
        beside the embeddings and passes them in :attr:`QueryBatch.features`.
        """
        ...

    @property
    def settings(self) -> Mapping[str, Any]:
        """What was chosen when the policy was made (plain data, reported by ``fit``)."""
        ...

    def decide(
        self,
        queries: QueryBatch,
        neighbors: Neighbors,
        live_routes: Mapping[str, float | None],
        top_k: int = 1,
    ) -> list[Decision]:
        """Decide for each query row.

        Args:
            queries: the query embeddings, with texts and head features when known.
            neighbors: per query, the nearest stored utterances as ``(route, cosine)``, best first.
            live_routes: every live route name mapped to its own threshold (or None).
            top_k: how many candidates the caller wants at least.
        """
        ...

    def passes(self, name: str, score: float, live_routes: Mapping[str, float | None]) -> bool:
        """True when a ranked candidate with ``score`` may be selected (the top-k selection)."""
        ...


@runtime_checkable
class StoredPolicy(ScoringPolicy, Protocol):
    """A policy the router keeps in its store: made by a fitter, read back by a loader.

    See :func:`~synaptoroute_agents.scoring.register_policy`.
    """

    def to_bytes(self) -> bytes:
        """The policy's own state (its kind is recorded beside it by the registry)."""
        ...


class PolicyBase:
    """Defaults for the optional members of :class:`ScoringPolicy` (subclass it, or not)."""

    kind: str = "custom"
    features: str | None = None

    @property
    def settings(self) -> Mapping[str, Any]:
        """No settings by default."""
        return {}
