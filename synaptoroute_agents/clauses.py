"""Multi-intent routing by clauses: "cancel my order and tell me tomorrow's weather" is two requests.

One embedding of a sentence that joins two requests often passes neither route's threshold. Here
the message is split into clauses (at sentence punctuation, semicolons, commas and conjunctions
such as "and", "also", "then", "plus"), each clause is routed, and the whole message too, in one
encoder call; every route chosen confidently by the whole or by a clause is returned with the
text that chose it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .routes import RouteMatch, clean_text, validate_positive_int

if TYPE_CHECKING:  # the router imports nothing from here; the import runs one way at run time
    from .router import SemanticRouter

__all__ = [
    "ClauseMatch",
    "aroute_clauses",
    "clause_queries",
    "route_clauses",
    "select_clauses",
    "split_clauses",
]

_BREAKS = re.compile(
    r"[.;!?]+\s+|[.;!?]+$|,\s*(?:and\s+|then\s+|also\s+|plus\s+)?|\s+(?:and then|and also|as well as|and|also|then|plus)\s+",
    re.IGNORECASE,
)
#: A clause needs at least this many words to be routed on its own ("and me" is not a request).
MIN_CLAUSE_WORDS = 2


@dataclass(frozen=True)
class ClauseMatch:
    """A route selected for part of a message.

    Attributes:
        name: the route.
        score: its score for ``clause``.
        clause: the text that selected it (the whole message, or one clause of it).
        match: the full decision for ``clause``.
    """

    name: str
    score: float
    clause: str
    match: RouteMatch


def split_clauses(text: str) -> list[str]:
    """The clauses of ``text``: split at ``. ; ! ?``, commas and joining words, pieces of one word
    dropped; ``[text]`` when fewer than two clauses remain.

    >>> split_clauses("Cancel my order and tell me tomorrow's weather")
    ['Cancel my order', "tell me tomorrow's weather"]
    """
    whole = clean_text(text)
    parts = [p.strip(" ,") for p in _BREAKS.split(whole)]
    clauses = [p for p in parts if len(p.split()) >= MIN_CLAUSE_WORDS]
    return clauses if len(clauses) >= 2 else [whole]


def clause_queries(text: str) -> list[str]:
    """The whole message first, then its clauses when there are at least two."""
    whole = clean_text(text)
    clauses = split_clauses(whole)
    return [whole, *clauses] if len(clauses) >= 2 else [whole]


def select_clauses(queries: list[str], matches: list[RouteMatch], top_k: int) -> list[ClauseMatch]:
    """Every route the whole message (``matches[0]``, its ``selected`` routes) or a clause (its
    chosen route) picked, best score first, each with the text that picked it; at most
    ``max(top_k, clauses)``."""
    validate_positive_int(top_k, "top_k")
    best: dict[str, ClauseMatch] = {}

    def offer(name: str, score: float, clause: str, match: RouteMatch) -> None:
        if name not in best or score > best[name].score:
            best[name] = ClauseMatch(name, score, clause, match)

    whole = matches[0]
    scores = {c.name: c.score for c in whole.candidates}
    for name in whole.selected if whole.name is not None else ():
        offer(name, float(scores.get(name, whole.score)), queries[0], whole)
    for clause, match in zip(queries[1:], matches[1:], strict=True):
        if match.name is not None:
            offer(match.name, float(match.score), clause, match)
    ranked = sorted(best.values(), key=lambda m: -m.score)
    return ranked[: max(top_k, len(queries) - 1)]


def route_clauses(
    router: SemanticRouter, text: str, top_k: int = 2, whole: RouteMatch | None = None
) -> list[ClauseMatch]:
    """Route ``text`` and each of its clauses in one encoder call (see :func:`select_clauses`).

    ``whole``: the caller's decision for ``text`` with the same ``top_k``, when it has one; then
    only the clauses are routed (none at all for a message of one clause).
    """
    queries = clause_queries(text)
    todo = queries if whole is None else queries[1:]
    matches = router.route_batch(todo, top_k=top_k) if todo else []
    return select_clauses(queries, matches if whole is None else [whole, *matches], top_k)


async def aroute_clauses(
    router: SemanticRouter, text: str, top_k: int = 2, whole: RouteMatch | None = None
) -> list[ClauseMatch]:
    """Async twin of :func:`route_clauses`."""
    queries = clause_queries(text)
    todo = queries if whole is None else queries[1:]
    matches = await router.aroute_batch(todo, top_k=top_k) if todo else []
    return select_clauses(queries, matches if whole is None else [whole, *matches], top_k)
