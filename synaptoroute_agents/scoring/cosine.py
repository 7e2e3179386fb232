"""The default policy: a route scores its nearest utterance's cosine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter

from ..routes import Reason
from .base import Decision, Neighbors, PolicyBase, QueryBatch

__all__ = ["CosinePolicy", "aggregate_max"]


def aggregate_max(pairs: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Per-route score = its best utterance's cosine; routes ranked best first."""
    best: dict[str, float] = {}
    for name, score in pairs:
        if name not in best:  # pairs arrive best first
            best[name] = score
    # Already in order when pairs arrive best first; timsort then costs one pass.
    return sorted(best.items(), key=itemgetter(1), reverse=True)


class CosinePolicy(PolicyBase):
    """Nearest-utterance cosine per route, a threshold per route and an optional ambiguity margin.

    Args:
        threshold: the default minimum cosine for a match (a route's own threshold wins).
        ambiguity_margin: abstain with ``ambiguous`` when the best two routes are closer than this.
    """

    kind = "cosine"

    def __init__(self, threshold: float = 0.5, ambiguity_margin: float = 0.0) -> None:
        self.threshold = float(threshold)
        self.ambiguity_margin = float(ambiguity_margin)

    def decide(
        self,
        queries: QueryBatch,
        neighbors: Neighbors,
        live_routes: Mapping[str, float | None],
        top_k: int = 1,
    ) -> list[Decision]:
        """Rank routes by their nearest utterance and apply the thresholds (see :class:`ScoringPolicy`)."""
        out: list[Decision] = []
        for pairs in neighbors:
            # aggregate_max over the live routes' pairs, in one pass
            best: dict[str, float] = {}
            for n, s in pairs:
                if n not in best and n in live_routes:
                    best[n] = s
            ranked = sorted(best.items(), key=itemgetter(1), reverse=True)
            if not ranked:
                out.append(Decision([], None, Reason.BELOW_THRESHOLD))
                continue
            name, score = ranked[0]
            own = live_routes.get(name)
            limit = self.threshold if own is None else own
            if score < limit:
                out.append(Decision(ranked, None, Reason.BELOW_THRESHOLD))
            elif len(ranked) > 1 and score - ranked[1][1] < self.ambiguity_margin:
                out.append(Decision(ranked, None, Reason.AMBIGUOUS))
            else:
                out.append(Decision(ranked, name, Reason.MATCHED))
        return out

    def passes(self, name: str, score: float, live_routes: Mapping[str, float | None]) -> bool:
        """True when ``score`` reaches the route's threshold."""
        own = live_routes.get(name)
        return score >= (self.threshold if own is None else own)
