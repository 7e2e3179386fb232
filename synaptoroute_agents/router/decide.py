"""Decisions: the index's nearest utterances plus the scoring policy become RouteMatch objects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from ..errors import InvalidInputError
from ..index import VectorIndex
from ..routes import Evidence, Reason, RouteCandidate, RouteMatch, validate_positive_int
from ..scoring import QueryBatch, ScoringPolicy
from .tables import IdTables

__all__ = ["MAX_TOP_K", "check_features", "check_top_k", "decide", "empty_match"]

_EVIDENCE = 3  # nearest utterances kept as a decision's evidence
_CANDIDATES = 5  # candidates a RouteMatch lists at least

#: The largest ``top_k`` a query may ask for. A decision searches ``4 * top_k`` nearest
#: utterances per query, so an unbounded ``top_k`` is an unbounded allocation (``top_k=10**9``
#: asked Faiss for 29.8 GiB); a match never holds more routes than the router has anyway.
MAX_TOP_K = 1000


def check_top_k(top_k: Any) -> None:
    """Raise :class:`InvalidInputError` unless ``top_k`` is an int in ``[1, MAX_TOP_K]``."""
    validate_positive_int(top_k, "top_k", maximum=MAX_TOP_K)


def empty_match() -> RouteMatch:
    """The decision of a router without routes."""
    return RouteMatch(None, 0.0, 0.0, (), Reason.EMPTY_ROUTER, (), ())


def decide(
    tables: IdTables,
    index: VectorIndex,
    policy: ScoringPolicy,
    queries: QueryBatch,
    top_k: int,
    neighbors: int,
    found: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[RouteMatch]:
    """Decide for a batch of queries (the caller has registered as a reader of ``tables``).

    Args:
        tables: the router's id tables (each table is read once per batch).
        index: the vector index searched for the nearest utterances.
        policy: ranks and decides.
        queries: the embedded queries (with texts and head features when known).
        top_k: how many routes each match selects at most.
        neighbors: how many nearest utterances a decision looks at (at least ``4 * top_k``).
        found: the index's ``(scores, ids)`` for these queries when the caller already searched.
    """
    live = tables.thresholds
    if not live:
        return [empty_match() for _ in range(len(queries))]
    scores, ids = index.search(queries.embeddings, max(neighbors, 4 * top_k)) if found is None else found
    id_route, id_text = tables.id_route, tables.id_text
    pairs_of: list[list[tuple[str, float]]] = []
    evidence_ids: list[list[tuple[int, str, float]]] = []
    for srow, irow in zip(scores.tolist(), ids.tolist(), strict=True):
        names = list(map(id_route.get, irow))
        if None not in names and min(irow, default=0) >= 0:
            # every slot is a live row (the usual case): the loop below, done by zip and slices
            known = cast("list[str]", names)
            pairs_of.append(list(zip(known, srow, strict=True)))
            evidence_ids.append(list(zip(irow[:_EVIDENCE], known[:_EVIDENCE], srow[:_EVIDENCE], strict=True)))
            continue
        pairs: list[tuple[str, float]] = []
        ev: list[tuple[int, str, float]] = []
        for s, i in zip(srow, irow, strict=True):
            if i < 0:
                break
            name = id_route.get(i)
            if name is None:
                continue
            pairs.append((name, s))
            if len(ev) < _EVIDENCE:
                ev.append((i, name, s))
        pairs_of.append(pairs)
        evidence_ids.append(ev)
    decisions = policy.decide(queries, pairs_of, live, top_k)
    passes = policy.passes
    n_cands = max(top_k, _CANDIDATES)
    out: list[RouteMatch] = []
    for (ranked, chosen, reason), ev in zip(decisions, evidence_ids, strict=True):
        cands = tuple([RouteCandidate(n, float(s)) for n, s in ranked[:n_cands]])
        if ranked:
            best = float(ranked[0][1])
            margin = best - float(ranked[1][1]) if len(ranked) > 1 else 1.0
        else:
            best, margin = 0.0, 1.0
        selected = tuple([n for n, s in ranked[:top_k] if passes(n, s, live)])
        if chosen is not None and chosen not in selected:
            selected = (chosen, *selected[: top_k - 1])
        evidence = tuple([Evidence(name, id_text.get(i, ""), float(s)) for i, name, s in ev if i in id_text])
        why = reason if type(reason) is Reason else Reason(reason)  # Reason(x) costs ~5 us cold
        out.append(RouteMatch(chosen, best, margin, cands, why, evidence, selected))
    return out


def check_features(Q: np.ndarray, texts: Sequence[str] | None, features: np.ndarray | None) -> None:
    """Check the optional companions of already-embedded queries (see ``SemanticRouter.decide``)."""
    if texts is not None and len(texts) != len(Q):
        raise InvalidInputError("texts must have one entry per query row")
    if features is not None and (not isinstance(features, np.ndarray) or features.shape != np.shape(Q)):
        raise InvalidInputError("features must be an array of the same shape as the embeddings")
