"""Conversation context: decide a turn from more than its last message.

A follow-up such as "make it 9 instead" names no route on its own. The faces (LangGraph,
LangChain, LlamaIndex) pass the conversation's human turns here, and this module decides:

1. The latest message alone is routed first. A confident route wins: a new topic switches.
2. When it abstains and ``carry_over`` is on, the last ``context_turns`` human turns are embedded
   and averaged, weighted toward the latest (each older turn counts half as much as the next), and
   the router decides on that vector. A follow-up says little of its own, so the earlier request
   dominates and its route is kept; a foreign message carries its own meaning, pulls the vector
   away and still abstains, so it reaches the fallback.
3. The carry is bounded: a request older than ``context_turns`` human turns no longer counts.

Everything is a pure function of the turns (and, for tools, of the tools offered on the previous
turn), so a checkpointed graph decides the same way after a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import InvalidInputError, InvalidQueryError, InvalidTypeError
from .router import SemanticRouter
from .routes import RouteMatch, clean_text, validate_positive_int

__all__ = [
    "DEFAULT_CONTEXT_TURNS",
    "DEFAULT_RECENCY",
    "ConversationOptions",
    "TurnDecision",
    "context_vector",
    "decide_turn",
    "adecide_turn",
    "carry_tools",
    "recent_turns",
]

#: Human turns a follow-up is decided from by default (the latest and the two before it).
DEFAULT_CONTEXT_TURNS = 3
#: Weight of a turn relative to the next one in the context (the latest weighs most).
DEFAULT_RECENCY = 0.5

Source = Literal["latest", "carried", "context", "none"]


@dataclass(frozen=True)
class ConversationOptions:
    """How a face reads a conversation.

    Attributes:
        context_turns: the most human turns a follow-up is decided from (1: the latest only).
        carry_over: when the latest turn routes to nothing confidently, decide from the recent
            turns, so a follow-up keeps the conversation's route (default on).
        recency: a turn's weight next to the one after it (0.5: the latest counts twice the
            one before). Higher keeps more follow-ups on their route and lets more foreign
            messages stay there too (docs/BENCHMARKS.md, "Conversations").
    """

    context_turns: int = DEFAULT_CONTEXT_TURNS
    carry_over: bool = True
    recency: float = DEFAULT_RECENCY

    def __post_init__(self) -> None:
        validate_positive_int(self.context_turns, "context_turns")
        if not isinstance(self.carry_over, bool):
            raise InvalidTypeError("carry_over must be True or False")
        if isinstance(self.recency, bool) or not isinstance(self.recency, int | float):
            raise InvalidTypeError("recency must be a number in (0, 1]")
        if not 0.0 < float(self.recency) <= 1.0:
            raise InvalidInputError(
                "recency must be in (0, 1]: how much a turn weighs next to the one after it"
            )

    @property
    def active(self) -> bool:
        """True when more than the latest message can decide."""
        return self.carry_over and self.context_turns > 1


@dataclass(frozen=True)
class TurnDecision:
    """The decision for a conversation's latest turn.

    Attributes:
        match: the decision taken (the latest message's own, or the one made from the context).
        source: ``"latest"`` (the message alone decided), ``"carried"`` (a follow-up kept the
            previous route), ``"context"`` (the recent turns together named a route) or
            ``"none"`` (nothing confident: the fallback).
        latest: the decision for the latest message alone.
    """

    match: RouteMatch
    source: Source
    latest: RouteMatch

    @property
    def name(self) -> str | None:
        """The route taken, or None for the fallback."""
        return self.match.name


def recent_turns(turns: Sequence[str], context_turns: int) -> list[str]:
    """The last ``context_turns`` non-blank turns, cleaned, oldest first."""
    if isinstance(turns, str | bytes) or not isinstance(turns, Sequence):
        raise InvalidTypeError("turns must be a list of strings, oldest first")
    validate_positive_int(context_turns, "context_turns")
    if not all(isinstance(t, str) for t in turns):
        raise InvalidTypeError("turns must be strings")
    kept = [clean_text(t) for t in turns if t.strip()]
    return kept[-context_turns:]


def context_vector(embeddings: np.ndarray, recency: float = DEFAULT_RECENCY) -> np.ndarray:
    """Unit ``(1, dim)`` weighted mean of turn embeddings (oldest first): each turn weighs
    ``recency`` times the next one."""
    n = embeddings.shape[0]
    weights = float(recency) ** np.arange(n - 1, -1, -1, dtype=np.float64)
    vec = (weights[:, None] * embeddings.astype(np.float64)).sum(axis=0)
    norm = float(np.linalg.norm(vec))
    if norm > 0.0:
        vec = vec / norm
    out: np.ndarray = vec.astype(np.float32)[None, :]
    return out


def _check(router: SemanticRouter, previous: str | None) -> None:
    if not isinstance(router, SemanticRouter):
        raise InvalidTypeError("router must be a SemanticRouter")
    if previous is not None and not isinstance(previous, str):
        raise InvalidTypeError("previous must be a route name or None")


def _from_context(
    router: SemanticRouter,
    latest: RouteMatch,
    recent: list[str],
    previous: str | None,
    opts: ConversationOptions,
    top_k: int,
) -> TurnDecision:
    """Decide a turn the latest message alone abstained on, from the recent turns together."""
    vec = context_vector(router.embed(recent), opts.recency)
    context = router.decide(vec, top_k=top_k)[0]
    if context.name is None:
        return TurnDecision(latest, "none", latest)
    source: Source = "carried" if context.name == previous else "context"
    return TurnDecision(context, source, latest)


def _prepare(
    router: SemanticRouter, turns: Sequence[str], previous: str | None, options: ConversationOptions | None
) -> tuple[list[str], ConversationOptions]:
    _check(router, previous)
    opts = options or ConversationOptions()
    recent = recent_turns(turns, opts.context_turns)
    if not recent:
        raise InvalidQueryError("the conversation holds no human turn to route")
    return recent, opts


def decide_turn(
    router: SemanticRouter,
    turns: Sequence[str],
    *,
    previous: str | None = None,
    options: ConversationOptions | None = None,
    top_k: int = 1,
) -> TurnDecision:
    """Decide the latest of ``turns`` (human turns, oldest first) in the light of the earlier ones.

    Args:
        router: the router that decides.
        turns: the conversation's human messages, oldest first; the last one is being decided.
        previous: the route taken on the previous turn, when the caller keeps it in its state;
            None: the previous turn is decided again from its text.
        options: context length and carry-over (defaults: 3 turns, carry-over on).
        top_k: candidates to rank for the latest message (multi-intent).

    Raises:
        InvalidQueryError: there is no non-blank turn.
    """
    recent, opts = _prepare(router, turns, previous, options)
    latest = router.route(recent[-1], top_k=top_k)
    if latest.name is not None or not opts.active or len(recent) < 2:
        return TurnDecision(latest, "latest" if latest.name is not None else "none", latest)
    return _from_context(router, latest, recent, previous, opts, top_k)


async def adecide_turn(
    router: SemanticRouter,
    turns: Sequence[str],
    *,
    previous: str | None = None,
    options: ConversationOptions | None = None,
    top_k: int = 1,
) -> TurnDecision:
    """Async twin of :func:`decide_turn` (the encoder runs in a worker thread)."""
    recent, opts = _prepare(router, turns, previous, options)
    latest = await router.aroute(recent[-1], top_k=top_k)
    if latest.name is not None or not opts.active or len(recent) < 2:
        return TurnDecision(latest, "latest" if latest.name is not None else "none", latest)
    return await asyncio.to_thread(_from_context, router, latest, recent, previous, opts, top_k)


def carry_tools(
    latest: Sequence[str],
    context: Sequence[str],
    previous: Sequence[str] | None,
    k: int,
    *,
    thresholded: bool,
) -> list[str]:
    """The tools for a turn: the latest message's picks plus those the conversation keeps.

    Args:
        latest: tools picked for the latest message alone, best first.
        context: tools picked for the recent turns together, best first.
        previous: tools offered on the previous turn (None when unknown: any context pick counts).
        k: the most tools returned.
        thresholded: picks passed a minimum score. Then a latest message with picks is a
            confident request (a new topic switches), and one without lets the context decide
            (nothing there either: no tools, the fallback). Without a threshold every message has
            picks, so the best latest pick comes first and the kept ones follow it.
    """
    if thresholded:
        return list(latest) if latest else list(context)[:k]
    kept = [n for n in context if previous is None or n in previous]
    merged = list(dict.fromkeys([*latest[:1], *kept, *latest[1:]]))
    return merged[:k]
