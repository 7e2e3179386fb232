"""Scoring policies: how a query's nearest utterances become a ranked, thresholded decision.

The router hands a policy the query embeddings and, per query, the nearest stored utterances as
``(route, cosine)`` pairs. The default :class:`CosinePolicy` scores a route by its nearest
utterance; ``SemanticRouter.fit`` installs a learned policy with the same interface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Protocol, runtime_checkable

import numpy as np

from .routes import Reason

__all__ = ["Decision", "ScoringPolicy", "CosinePolicy", "aggregate_max"]

#: (ranked candidates best first, chosen route or None, reason)
Decision = tuple[list[tuple[str, float]], str | None, str]


@runtime_checkable
class ScoringPolicy(Protocol):
    """Turns neighbours into decisions. Implementations must be safe to call from many threads.

    A policy with a true ``uses_texts`` attribute also receives the cleaned query texts as the
    keyword argument ``texts`` (one per row of ``Q``) whenever the router knows them.
    """

    def decide(
        self,
        Q: np.ndarray,
        neighbors: Sequence[Sequence[tuple[str, float]]],
        live_routes: Mapping[str, float | None],
        top_k: int = 1,
    ) -> list[Decision]:
        """Decide for each query row.

        Args:
            Q: ``(b, dim)`` unit query embeddings.
            neighbors: per query, the nearest stored utterances as ``(route, cosine)``, best first.
            live_routes: every live route name mapped to its own threshold (or None).
            top_k: how many candidates the caller wants at least.
        """
        ...


def aggregate_max(pairs: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Per-route score = its best utterance's cosine; routes ranked best first."""
    best: dict[str, float] = {}
    for name, score in pairs:
        if name not in best:  # pairs arrive best first
            best[name] = score
    # Already in order when pairs arrive best first; timsort then costs one pass.
    return sorted(best.items(), key=itemgetter(1), reverse=True)


class CosinePolicy:
    """Nearest-utterance cosine per route, a threshold per route and an optional ambiguity margin.

    Args:
        threshold: the default minimum cosine for a match (a route's own threshold wins).
        ambiguity_margin: abstain with ``ambiguous`` when the best two routes are closer than this.
    """

    def __init__(self, threshold: float = 0.5, ambiguity_margin: float = 0.0) -> None:
        self.threshold = float(threshold)
        self.ambiguity_margin = float(ambiguity_margin)

    def decide(
        self,
        Q: np.ndarray,
        neighbors: Sequence[Sequence[tuple[str, float]]],
        live_routes: Mapping[str, float | None],
        top_k: int = 1,
    ) -> list[Decision]:
        out: list[Decision] = []
        for pairs in neighbors:
            ranked = aggregate_max([(n, s) for n, s in pairs if n in live_routes])
            if not ranked:
                out.append(([], None, str(Reason.BELOW_THRESHOLD)))
                continue
            name, score = ranked[0]
            own = live_routes.get(name)
            limit = self.threshold if own is None else own
            if score < limit:
                out.append((ranked, None, str(Reason.BELOW_THRESHOLD)))
            elif len(ranked) > 1 and score - ranked[1][1] < self.ambiguity_margin:
                out.append((ranked, None, str(Reason.AMBIGUOUS)))
            else:
                out.append((ranked, name, str(Reason.MATCHED)))
        return out

    def passes(self, name: str, score: float, live_routes: Mapping[str, float | None]) -> bool:
        """True when ``score`` reaches the route's threshold."""
        own = live_routes.get(name)
        return score >= (self.threshold if own is None else own)
