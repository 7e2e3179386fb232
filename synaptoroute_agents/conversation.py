"""Conversation context: decide a turn from more than its last message.

A follow-up such as "make it 9 instead" names no route on its own. The faces (LangGraph,
LangChain, LlamaIndex) pass the conversation's human turns here, and this module decides:

1. The latest message alone is routed first. A confident route wins: a new topic switches.
2. When it abstains and ``carry_over`` is on, the last ``context_turns`` human turns are joined
   into one text (``"book a table for two at 8. make it 9 instead"``) and routed. The encoder
   reads the follow-up in the light of the request before it: a short follow-up says little of its
   own, so the request dominates and its route is kept; a foreign message carries its own meaning,
   pulls the text away and still abstains, so it reaches the fallback. When the caller knows the
   previous route and it still passes its threshold on the joined text, it is kept even if a
   neighbouring route scores a little higher.
3. The latest message must read as a follow-up, by two checks of its embedding, neither with a
   setting to tune (both sides of each comparison are read by the same encoder):

   * the joined text must stay closer to the earlier turns than to the latest message. A foreign
     message right after a request that matches a stored utterance almost word for word ("will it
     rain tomorrow" then "who painted the mona lisa") can leave the joined text above the request's
     threshold, but it takes the text's meaning over, so it is no follow-up;
   * the latest message must not be self-contained (:func:`is_self_contained`): a follow-up is
     elliptical ("make it two", "and in the evening?") or about the route it is carried to, so it
     is closer to generic elliptical follow-ups (:mod:`synaptoroute_agents.followups`) than to
     generic self-contained messages, or closer to that route's nearest stored utterance than to
     them. After a long request the joined text stays close to the request whatever follows
     ("the wifi keeps dropping ... and I cannot reach the VPN at all. who wrote the odyssey"); this
     check reads the latest message alone, so such a question still reaches the fallback.
4. The carry is bounded: a request older than ``context_turns`` human turns no longer counts.

Everything is a pure function of the turns (and, for tools, of the tools offered on the previous
turn), so a checkpointed graph decides the same way after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import InvalidQueryError, InvalidTypeError
from .followups import FOLLOW_UP_PROTOTYPES, SELF_CONTAINED_PROTOTYPES
from .router import SemanticRouter
from .routes import RouteMatch, clean_text, validate_positive_int

__all__ = [
    "DEFAULT_CONTEXT_TURNS",
    "TURN_SEPARATOR",
    "ConversationOptions",
    "TurnDecision",
    "context_text",
    "decide_turn",
    "adecide_turn",
    "carry_tools",
    "follow_up_texts",
    "follows_on",
    "is_follow_up",
    "is_self_contained",
    "nearest_utterance",
    "prototype_vectors",
    "recent_turns",
]

#: Human turns a follow-up is decided from by default: the latest and the one before it.
DEFAULT_CONTEXT_TURNS = 2
#: Joins the turns of a context into one text.
TURN_SEPARATOR = ". "
#: How many of its nearest prototypes of each set a message is compared with (the mean of their
#: cosines): more than one, so that no single prototype decides.
PROTOTYPE_NEIGHBOURS = 3

Source = Literal["latest", "carried", "context", "none"]


@dataclass(frozen=True)
class ConversationOptions:
    """How a face reads a conversation.

    Attributes:
        context_turns: the most human turns a follow-up is decided from (1: the latest only;
            more keeps chains of follow-ups on their route, and lets more foreign messages
            stay there too: docs/BENCHMARKS.md, "Conversations").
        carry_over: when the latest turn routes to nothing confidently, decide from the recent
            turns, so a follow-up keeps the conversation's route (default on).
    """

    context_turns: int = DEFAULT_CONTEXT_TURNS
    carry_over: bool = True

    def __post_init__(self) -> None:
        validate_positive_int(self.context_turns, "context_turns")
        if not isinstance(self.carry_over, bool):
            raise InvalidTypeError("carry_over must be True or False")

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


def context_text(turns: Sequence[str]) -> str:
    """The recent turns (oldest first) as the one text a follow-up is decided from."""
    return TURN_SEPARATOR.join(t.strip().rstrip(".") for t in turns if t.strip())


def follow_up_texts(turns: Sequence[str]) -> list[str]:
    """The three texts :func:`is_follow_up` compares: the earlier turns, the latest, all joined."""
    return [context_text(turns[:-1]), turns[-1], context_text(turns)]


def is_follow_up(vectors: np.ndarray) -> bool:
    """Whether the latest turn follows the earlier ones, from the unit embeddings of
    :func:`follow_up_texts`: the joined text stays closer to the earlier turns than to the
    latest message (a follow-up leans on the request; a foreign message takes the text over)."""
    earlier, latest, joined = (np.asarray(v, dtype=np.float64) for v in vectors[:3])
    return bool(joined @ earlier > joined @ latest)


def is_self_contained(
    latest: np.ndarray, route_similarity: float, prototypes: tuple[np.ndarray, np.ndarray]
) -> bool:
    """Whether the latest message stands on its own instead of leaning on the turns before it.

    Args:
        latest: its unit embedding.
        route_similarity: its cosine with the nearest stored utterance of the route it would be
            carried to (:func:`nearest_utterance`; -1.0 when none is among its nearest).
        prototypes: unit embeddings of the elliptical follow-ups and of the self-contained
            messages (:func:`prototype_vectors`).

    It is self-contained when it is at least as close to the self-contained prototypes as to the
    elliptical ones (the mean cosine of the :data:`PROTOTYPE_NEIGHBOURS` nearest of each set), and
    its nearest self-contained prototype is at least as close as the route's nearest utterance: a
    foreign question ("who wrote the odyssey") is; "make it 9 instead" (elliptical) and "and on my
    other card?" (about the route) are not.
    """
    vector = np.asarray(latest, dtype=np.float64)
    elliptical, standalone = (np.sort(np.asarray(p, dtype=np.float64) @ vector) for p in prototypes)
    near = PROTOTYPE_NEIGHBOURS
    return bool(standalone[-near:].mean() >= elliptical[-near:].mean() and standalone[-1] >= route_similarity)


def nearest_utterance(match: RouteMatch, routes: Sequence[str] | set[str]) -> float:
    """The best score among ``match``'s evidence (its nearest stored utterances, raw cosines)
    for one of ``routes``; -1.0 when none of them is there."""
    return max((e.score for e in match.evidence if e.route in routes), default=-1.0)


_PROTOTYPES: weakref.WeakKeyDictionary[object, tuple[np.ndarray, np.ndarray]] = weakref.WeakKeyDictionary()


def prototype_vectors(router: SemanticRouter) -> tuple[np.ndarray, np.ndarray]:
    """The router's encoder's embeddings of the elliptical follow-up prototypes and of the
    self-contained ones (computed once per encoder)."""
    encoder = router.encoder
    try:
        cached = _PROTOTYPES.get(encoder)
    except TypeError:  # an encoder that takes no weak reference: embed each time
        cached = None
    if cached is None:
        texts = [clean_text(t) for t in (*FOLLOW_UP_PROTOTYPES, *SELF_CONTAINED_PROTOTYPES)]
        vectors = router.embed(texts)
        split = len(FOLLOW_UP_PROTOTYPES)
        cached = (vectors[:split], vectors[split:])
        with contextlib.suppress(TypeError):
            _PROTOTYPES[encoder] = cached
    return cached


def follows_on(router: SemanticRouter, recent: Sequence[str], route_similarity: float) -> bool:
    """Whether the latest of ``recent`` (cleaned turns, oldest first) reads as a follow-up that
    may be carried: :func:`is_follow_up` and not :func:`is_self_contained`. One embedding of three
    texts (the prototypes are embedded once per encoder)."""
    vectors = router.embed(follow_up_texts(recent))
    if not is_follow_up(vectors):
        return False
    return not is_self_contained(vectors[1], route_similarity, prototype_vectors(router))


def _check(router: SemanticRouter, previous: str | None) -> None:
    if not isinstance(router, SemanticRouter):
        raise InvalidTypeError("router must be a SemanticRouter")
    if previous is not None and not isinstance(previous, str):
        raise InvalidTypeError("previous must be a route name or None")


def _from_context(latest: RouteMatch, context: RouteMatch, previous: str | None) -> TurnDecision:
    """Decide a turn the latest message alone abstained on, from the recent turns together."""
    if previous is not None and context.name != previous:
        kept = _keep(context, previous)
        if kept is not None:
            return TurnDecision(kept, "carried", latest)
    if context.name is None:
        return TurnDecision(latest, "none", latest)
    source: Source = "carried" if context.name == previous else "context"
    return TurnDecision(context, source, latest)


def _keep(context: RouteMatch, previous: str) -> RouteMatch | None:
    """``context`` decided for ``previous`` when that route passes its threshold there."""
    if previous not in context.selected:
        return None
    ranked = sorted(context.candidates, key=lambda c: c.name != previous)
    best = ranked[0]
    runner_up = max((c.score for c in ranked[1:]), default=best.score - 1.0)
    return dataclasses.replace(
        context,
        name=previous,
        score=best.score,
        margin=float(best.score - runner_up),
        candidates=tuple(ranked),
    )


def _context_top(router: SemanticRouter, top_k: int, previous: str | None) -> int:
    """Candidates to rank so that the previous route's own threshold can be checked."""
    return max(top_k, len(router)) if previous is not None else top_k


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
    if latest.name is not None or len(recent) < 2 or not opts.active:
        return TurnDecision(latest, "latest" if latest.name is not None else "none", latest)
    context = router.route(context_text(recent), top_k=_context_top(router, top_k, previous))
    decision = _from_context(latest, context, previous)
    if decision.source == "none" or follows_on(router, recent, _similarity(latest, decision)):
        return decision
    return TurnDecision(latest, "none", latest)


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
    if latest.name is not None or len(recent) < 2 or not opts.active:
        return TurnDecision(latest, "latest" if latest.name is not None else "none", latest)
    context = await router.aroute(context_text(recent), top_k=_context_top(router, top_k, previous))
    decision = _from_context(latest, context, previous)
    if decision.source == "none":
        return decision
    if await asyncio.to_thread(follows_on, router, recent, _similarity(latest, decision)):
        return decision
    return TurnDecision(latest, "none", latest)


def _similarity(latest: RouteMatch, decision: TurnDecision) -> float:
    return nearest_utterance(latest, {decision.name} if decision.name is not None else set())


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
            picks and none is confident: the best pick for the turns read together comes first,
            then the latest message's best, then the kept ones and the latest's others.
    """
    if thresholded:
        return list(latest) if latest else list(context)[:k]
    kept = [n for n in context if previous is None or n in previous]
    merged = list(dict.fromkeys([*context[:1], *latest[:1], *kept, *latest[1:]]))
    return merged[:k]
