"""SynaptoRouteSelector: a local, zero-token ``BaseSelector`` for LlamaIndex routers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ._common import require, tool_mapping

require("llama_index.core")

from llama_index.core.base.base_selector import (  # noqa: E402
    BaseSelector,
    MetadataType,
    MultiSelection,
    SelectorResult,
    SingleSelection,
    _wrap_choice,
)
from llama_index.core.prompts.mixin import PromptDictType  # noqa: E402
from llama_index.core.schema import QueryBundle  # noqa: E402
from llama_index.core.tools.types import ToolMetadata  # noqa: E402

from synaptoroute_agents import (  # noqa: E402
    ClauseMatch,
    ConversationOptions,
    Encoder,
    InvalidInputError,
    InvalidThresholdError,
    InvalidTypeError,
    LazyEncoder,
    RouteMatch,
    SemanticRouter,
    adecide_turn,
    decide_turn,
    route_name_for_tool,
    seed_route,
    validate_positive_int,
)

__all__ = ["SynaptoRouteSelector"]

log = logging.getLogger(__name__)

#: How many seeded routers (one per distinct choice set) are kept.
CACHE_SIZE = 16


def _choice_key(choices: Sequence[ToolMetadata]) -> str:
    """A hash of the choice set: the same names and descriptions, in any order, reuse the same
    seeded routes."""
    data = (
        sorted([[c.name or "", c.description or ""] for c in choices])
        if _named(choices)
        else [[c.name, c.description] for c in choices]
    )
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode("utf-8")).hexdigest()


def _named(choices: Sequence[ToolMetadata]) -> bool:
    """True when every choice has a name and no two share one (routes are then named after them)."""
    names = [c.name for c in choices]
    return all(names) and len(set(names)) == len(names)


def _route_names(choices: Sequence[ToolMetadata]) -> list[str]:
    """The seeded route of each choice: its tool name, or ``choice_<i>`` when names are missing
    or repeated."""
    if _named(choices):
        return [route_name_for_tool(str(c.name)) for c in choices]
    return [f"choice_{i}" for i in range(len(choices))]


def _check_threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not -1.0 <= float(value) <= 1.0:
        raise InvalidThresholdError(f"threshold must be a number in [-1, 1], got {value!r}")
    return float(value)


class SynaptoRouteSelector(BaseSelector):
    """Pick the query engine (or retriever) for a query with a local semantic router.

    Use it as ``RouterQueryEngine(selector=SynaptoRouteSelector(), query_engine_tools=[...])`` or
    ``RouterRetriever(selector=..., retriever_tools=[...])``. No LLM call, no network.

    Two modes:

    - **No router** (default): each choice becomes a route named after the choice's tool name and
      seeded from that name and its description (the engine's ``seed_route``), so two tools with
      similar descriptions are told apart by their names. The routes are built once per distinct
      set of choices (keyed by a hash of names and descriptions, in any order: a reordered list
      reuses them and maps back by name) and cached.
    - **With a router**: the router's routes are matched to the choices by ``ToolMetadata.name``;
      ``route_map`` maps route names to choice names (or indices) when they differ.

    When no choice passes the threshold the selector never raises: it returns the ``fallback``
    choice (a name or an index) or, without one, the best-scoring choice, and the selection's
    ``reason`` says that the router abstained and why.

    Args:
        router: a :class:`SemanticRouter` whose routes name the choices; None seeds routes from the
            choices' descriptions.
        route_map: route name -> choice name or index (router mode).
        fallback: the choice (name or index) to return when nothing passes.
        top_k: at most this many choices are selected; 1 (default) selects one. Above 1 the query
            is also split into clauses ("refund me, and where is my parcel?") and each clause is
            routed as well as the whole (the engine's ``route_multi``): every choice the whole or
            a clause selects, each selection's reason naming the text that selected it.
        threshold: the minimum score of a seeded route (no-router mode; a router uses its own).
            Descriptions make looser examples than real utterances, so the default is lower than
            the router's.
        examples: choice name -> example queries, added to that choice's seeded route (a few real
            examples sharpen a route much more than a longer description).
        encoder: the encoder of seeded routes (the bundled offline model, loaded on first use).
        context_turns: the most human turns :meth:`select_turn` decides a follow-up from.
        carry_over: in :meth:`select_turn`, a follow-up that selects nothing on its own is decided
            from the recent turns and keeps the previous choice (default on).

    ``RouterQueryEngine`` and ``RouterRetriever`` hand the selector one query, so
    :meth:`select` decides from that text alone. In a chat, call :meth:`select_turn` with the
    conversation's human turns: a follow-up ("and last month's?") keeps the previous turn's
    choice, a new topic switches, a foreign message gets the fallback (the engine's
    conversation module, as on the LangGraph and LangChain faces).
    """

    def __init__(
        self,
        router: SemanticRouter | None = None,
        *,
        route_map: Mapping[str, str | int] | None = None,
        fallback: str | int | None = None,
        top_k: int = 1,
        threshold: float = 0.2,
        examples: Mapping[str, Sequence[str]] | None = None,
        encoder: Encoder | None = None,
        context_turns: int = 2,
        carry_over: bool = True,
    ) -> None:
        self.conversation = ConversationOptions(context_turns=context_turns, carry_over=carry_over)
        if router is not None and not isinstance(router, SemanticRouter):
            raise InvalidTypeError(
                f"router must be a synaptoroute_agents.SemanticRouter, not {type(router).__name__}"
            )
        if router is not None and encoder is not None:
            raise InvalidInputError("encoder is for seeded routes; a router brings its own encoder")
        if route_map is not None and router is None:
            raise InvalidInputError("route_map needs a router (seeded routes are named after the choices)")
        if route_map is not None and not isinstance(route_map, Mapping):
            raise InvalidTypeError("route_map must map route names to choice names or indices")
        if examples is not None and router is not None:
            raise InvalidInputError("examples are for seeded routes; teach a router with add_utterances()")
        if examples is not None and (
            not isinstance(examples, Mapping)
            or any(isinstance(v, str) or not isinstance(v, Sequence) for v in examples.values())
        ):
            raise InvalidTypeError("examples must map choice names to lists of example queries")
        validate_positive_int(top_k, "top_k")
        if fallback is not None and (isinstance(fallback, bool) or not isinstance(fallback, str | int)):
            raise InvalidTypeError("fallback must be a choice name, a choice index or None")
        self.router = router
        self.route_map = dict(route_map or {})
        self.fallback = fallback
        self.top_k = top_k
        self.threshold = _check_threshold(threshold)
        self.examples = {str(k): list(v) for k, v in (examples or {}).items()}
        self._encoder = LazyEncoder(encoder)
        self._seeded: OrderedDict[str, SemanticRouter] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ PromptMixin
    def _get_prompts(self) -> PromptDictType:
        """The selector uses no prompt."""
        return {}

    def _update_prompts(self, prompts: PromptDictType) -> None:
        """The selector uses no prompt: nothing to update."""

    # ------------------------------------------------------------------ routing
    def _seeded_router(self, choices: Sequence[ToolMetadata]) -> SemanticRouter:
        key = _choice_key(choices)
        with self._lock:
            router = self._seeded.get(key)
            if router is not None:
                self._seeded.move_to_end(key)
                return router
            router = SemanticRouter(self._encoder.get(), threshold=self.threshold)
            for i, (choice, route_name) in enumerate(zip(choices, _route_names(choices), strict=True)):
                route = seed_route(
                    tool_mapping(choice),
                    name=route_name,
                    examples=self.examples.get(choice.name or "", ()),
                    metadata={"choice": i, "choice_name": choice.name},
                )
                router.add(route)
            self._seeded[key] = router
            while len(self._seeded) > CACHE_SIZE:
                _, old = self._seeded.popitem(last=False)
                old.close()
            log.debug("seeded %d routes for a new choice set", len(choices))
            return router

    def _index_of(self, route: str, choices: Sequence[ToolMetadata], seeded: bool) -> int | None:
        if seeded:
            names = _route_names(choices)
            return names.index(route) if route in names else None
        target = self.route_map.get(route, route)
        if isinstance(target, int):
            return target if 0 <= target < len(choices) else None
        for i, choice in enumerate(choices):
            if choice.name == target:
                return i
        return None

    def _fallback_index(self, choices: Sequence[ToolMetadata]) -> int | None:
        if self.fallback is None:
            return None
        if isinstance(self.fallback, int):
            if not 0 <= self.fallback < len(choices):
                raise InvalidInputError(
                    f"fallback index {self.fallback} is out of range for {len(choices)} choices"
                )
            return self.fallback
        for i, choice in enumerate(choices):
            if choice.name == self.fallback:
                return i
        raise InvalidInputError(f"fallback {self.fallback!r} is not the name of any choice")

    def _label(self, choices: Sequence[ToolMetadata], index: int) -> str:
        name = choices[index].name
        return repr(name) if name else f"choice {index}"

    def _result(self, match: RouteMatch, choices: Sequence[ToolMetadata], seeded: bool) -> SelectorResult:
        score = {c.name: c.score for c in match.candidates}
        picked = self._pick(
            match.selected if match.name is not None else (),
            choices,
            seeded,
            lambda route, label: (
                f"synaptoroute: {match.reason} {label} "
                f"(score {score.get(route, match.score):.3f}, margin {match.margin:.3f})"
            ),
        )
        if picked:
            return MultiSelection(selections=picked)
        return MultiSelection(selections=[self._abstained(match, choices, seeded)])

    def _abstained(self, match: RouteMatch, choices: Sequence[ToolMetadata], seeded: bool) -> SingleSelection:
        best_index = None
        best = None
        for cand in match.candidates:
            index = self._index_of(cand.name, choices, seeded)
            if index is not None:
                best_index, best = index, cand
                break
        if match.name is not None:
            why = f"the router chose route {match.name!r}, which is none of the choices ("
        else:
            why = f"no choice passed (reason {match.reason}"
        if best is not None and best_index is not None:
            why += f"{'' if why.endswith('(') else '; '}best {self._label(choices, best_index)} with score {best.score:.3f}"
        why += ")"
        fallback = self._fallback_index(choices)
        if fallback is not None:
            return SingleSelection(
                index=fallback,
                reason=f"synaptoroute: {why}; using the fallback {self._label(choices, fallback)}",
            )
        if best_index is not None:
            return SingleSelection(
                index=best_index, reason=f"synaptoroute: {why}; no fallback set, using the best candidate"
            )
        return SingleSelection(
            index=0, reason=f"synaptoroute: {why}; no fallback set and no candidate, using choice 0"
        )

    def _router_for(self, choices: Sequence[ToolMetadata]) -> tuple[SemanticRouter, bool]:
        if not choices:
            raise InvalidInputError("there are no choices to select from")
        if self.router is None:
            return self._seeded_router(choices), True
        return self.router, False

    def _select(self, choices: Sequence[ToolMetadata], query: QueryBundle) -> SelectorResult:
        router, seeded = self._router_for(choices)
        match = router.route(query.query_str, top_k=self.top_k)
        if self.top_k > 1:
            found = router.route_multi(query.query_str, top_k=self.top_k, whole=match)
            result = self._multi(found, choices, seeded)
            if result is not None:
                return result
        return self._result(match, choices, seeded)

    def _multi(
        self, found: list[ClauseMatch], choices: Sequence[ToolMetadata], seeded: bool
    ) -> SelectorResult | None:
        """Multi-intent: every choice the whole query or one of its clauses selected, each with
        the text that selected it; None when none of them is a choice."""
        by_route = {m.name: m for m in found}
        picked = self._pick(
            by_route,
            choices,
            seeded,
            lambda route, label: (
                f"synaptoroute: matched {label} for {by_route[route].clause!r} "
                f"(score {by_route[route].score:.3f})"
            ),
        )
        return MultiSelection(selections=picked) if picked else None

    def _pick(
        self,
        routes: Iterable[str],
        choices: Sequence[ToolMetadata],
        seeded: bool,
        reason: Callable[[str, str], str],
    ) -> list[SingleSelection]:
        """The first ``top_k`` distinct choices among ``routes``, in order, each with
        ``reason(route, its label)``; routes that are no choice are skipped."""
        picked: list[SingleSelection] = []
        for route in routes:
            index = self._index_of(route, choices, seeded)
            if index is None or any(s.index == index for s in picked):
                continue
            picked.append(SingleSelection(index=index, reason=reason(route, self._label(choices, index))))
            if len(picked) >= self.top_k:
                break
        return picked

    # ------------------------------------------------------------------ conversations
    def _previous_route(
        self, previous: str | int | None, choices: Sequence[ToolMetadata], seeded: bool
    ) -> str | None:
        """The route of the choice selected on the previous turn (a choice name or index)."""
        if previous is None:
            return None
        if isinstance(previous, bool) or not isinstance(previous, str | int):
            raise InvalidTypeError("previous must be a choice name, a choice index or None")
        index = previous if isinstance(previous, int) else None
        if index is None:
            index = next((i for i, c in enumerate(choices) if c.name == previous), None)
        if index is None or not 0 <= index < len(choices):
            raise InvalidInputError(f"previous {previous!r} is none of the choices")
        if seeded:
            return _route_names(choices)[index]
        names = [r for r, target in self.route_map.items() if target in (index, choices[index].name)]
        return names[0] if names else choices[index].name

    def select_turn(
        self,
        choices: Sequence[MetadataType],
        turns: Sequence[str],
        *,
        previous: str | int | None = None,
    ) -> SelectorResult:
        """Select for the latest of ``turns`` (the human turns of a chat, oldest first).

        Args:
            choices: the choices, as for :meth:`select`.
            turns: the human messages, oldest first; the last one is being decided.
            previous: the choice (name or index) selected on the previous turn, when you keep
                it; None decides the previous turn again from its text.

        A confident latest message decides alone (a new topic switches); a follow-up that passes
        nothing is decided from the last ``context_turns`` turns read together and keeps the
        previous choice while it still passes; nothing confident: the fallback, as in
        :meth:`select`.
        """
        metadatas = [_wrap_choice(c) for c in choices]
        router, seeded = self._router_for(metadatas)
        before = self._previous_route(previous, metadatas, seeded)
        decision = decide_turn(router, turns, previous=before, options=self.conversation, top_k=self.top_k)
        return self._result(decision.match, metadatas, seeded)

    async def aselect_turn(
        self,
        choices: Sequence[MetadataType],
        turns: Sequence[str],
        *,
        previous: str | int | None = None,
    ) -> SelectorResult:
        """Async twin of :meth:`select_turn` (seeding and embedding off the event loop)."""
        metadatas = [_wrap_choice(c) for c in choices]
        router, seeded = await asyncio.to_thread(self._router_for, metadatas)
        before = self._previous_route(previous, metadatas, seeded)
        decision = await adecide_turn(
            router, turns, previous=before, options=self.conversation, top_k=self.top_k
        )
        return self._result(decision.match, metadatas, seeded)

    async def _aselect(self, choices: Sequence[ToolMetadata], query: QueryBundle) -> SelectorResult:
        # Seeding (first call for a choice set) and embedding both run off the event loop.
        return await asyncio.to_thread(self._select, choices, query)

    def close(self) -> None:
        """Release the seeded routers (a router given by the caller is left open)."""
        with self._lock:
            while self._seeded:
                _, router = self._seeded.popitem()
                router.close()

    def __repr__(self) -> str:
        mode = "router" if self.router is not None else f"seeded(threshold={self.threshold})"
        return f"SynaptoRouteSelector({mode}, top_k={self.top_k}, fallback={self.fallback!r})"
