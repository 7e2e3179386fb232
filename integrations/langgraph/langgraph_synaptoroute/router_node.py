"""RouterNode: a semantic router as a LangGraph conditional edge (or a Command node)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.types import Command, Send

from synaptoroute_agents import (
    ClauseMatch,
    ConversationOptions,
    InvalidInputError,
    InvalidQueryError,
    InvalidTypeError,
    RouteMatch,
    SemanticRouter,
    adecide_turn,
    decide_turn,
    validate_positive_int,
)

from ._state import state_get, turns_from_state

__all__ = ["RouterNode", "RouterCommandNode", "router_command_node"]

log = logging.getLogger(__name__)


class RouterNode(Runnable[Any, Any]):
    """Route a graph's state to a node by meaning, with no LLM call.

    Use it as the ``path`` of a conditional edge::

        node = RouterNode(router, fallback="rag")
        graph.add_conditional_edges("start", node, node.path_map)

    Args:
        router: the :class:`~synaptoroute_agents.SemanticRouter` that decides.
        fallback: the label returned when the router abstains (low confidence, ambiguity,
            an empty router, or a state without a human message).
        query_key: read the query from ``state[query_key]``; None reads the latest human
            message of ``state["messages"]`` (BaseMessages, dicts or ``(role, text)`` tuples).
        path_map: label -> node name. Labels are route names and ``fallback``. None maps every
            route of the router, and the fallback, to a node of the same name. Labels that are
            not routes are refused here, at build time; routes missing from a given path_map are
            refused too unless ``unmapped="fallback"``.
        top_k: candidates the router considers (and, with ``multi``, the most nodes to visit).
        multi: return a :class:`~langgraph.types.Send` to every selected route's node (multi-intent):
            the routes selected for the whole message and for each of its clauses ("refund my
            order and check the weather" is split at "and"; see ``SemanticRouter.route_multi``).
        unmapped: what to do with routes missing from ``path_map``: ``"error"`` (default) or
            ``"fallback"`` (they lead to the fallback).
        messages_key: the state key holding the messages.
        context_turns: the most human turns a follow-up is decided from (1: the latest only).
        carry_over: when the latest message routes to nothing confidently, decide from the last
            ``context_turns`` human turns together (weighted toward the latest), so a follow-up
            ("make it 9 instead") keeps the conversation's route while a new topic switches and
            a foreign message still takes the fallback. On by default; False routes the latest
            message alone. See :mod:`synaptoroute_agents.conversation`.
        query_from: a hook ``query_from(state) -> str`` giving the text to route (no context is
            added to it).
        route_key: the state key holding the previous turn's route, when a node writes it (a
            :func:`router_command_node` does); a kept route is then reported as carried.

    The async path (``ainvoke``, used by a graph run with ``ainvoke``/``astream``) calls
    ``router.aroute``, so encoding never blocks the event loop.
    """

    def __init__(
        self,
        router: SemanticRouter,
        *,
        fallback: str = "fallback",
        query_key: str | None = None,
        path_map: Mapping[str, str] | None = None,
        top_k: int = 1,
        multi: bool = False,
        unmapped: Literal["error", "fallback"] = "error",
        messages_key: str = "messages",
        context_turns: int = 3,
        carry_over: bool = True,
        query_from: Callable[[Any], str] | None = None,
        route_key: str = "route",
    ) -> None:
        if query_from is not None and not callable(query_from):
            raise InvalidTypeError("query_from must be a function state -> str")
        if query_from is not None and query_key is not None:
            raise InvalidInputError("give query_key or query_from, not both")
        self.conversation = ConversationOptions(context_turns=context_turns, carry_over=carry_over)
        self.query_from = query_from
        self.route_key = route_key
        if not isinstance(router, SemanticRouter):
            raise InvalidTypeError(f"router must be a SemanticRouter, not {type(router).__name__}")
        if not isinstance(fallback, str) or not fallback:
            raise InvalidInputError("fallback must be a non-empty label")
        validate_positive_int(top_k, "top_k")
        if unmapped not in ("error", "fallback"):
            raise InvalidInputError("unmapped must be 'error' or 'fallback'")
        self.name = "route"
        self.router = router
        self.fallback = fallback
        self.query_key = query_key
        self.messages_key = messages_key
        self.top_k = top_k
        self.multi = bool(multi)
        self.unmapped = unmapped
        routes = [r.name for r in router.routes()]
        if fallback in routes:
            raise InvalidInputError(f"the fallback label {fallback!r} is also a route name; choose another")
        if path_map is None:
            mapping = {name: name for name in routes}
            mapping[fallback] = fallback
        else:
            if not isinstance(path_map, Mapping):
                raise InvalidTypeError("path_map must be a mapping of label -> node name")
            mapping = {str(k): str(v) for k, v in path_map.items()}
            unknown = sorted(set(mapping) - set(routes) - {fallback})
            if unknown:
                raise InvalidInputError(
                    f"path_map has label(s) {unknown} that are neither routes of the router "
                    f"({sorted(routes)}) nor the fallback {fallback!r}"
                )
            if fallback not in mapping:
                raise InvalidInputError(f"path_map must map the fallback label {fallback!r} to a node")
            missing = sorted(set(routes) - set(mapping))
            if missing and unmapped == "error":
                raise InvalidInputError(
                    f"route(s) {missing} have no node in path_map; map them or pass unmapped='fallback'"
                )
        self._path_map: dict[str, str] = mapping

    # ------------------------------------------------------------------ graph-facing facts
    @property
    def path_map(self) -> dict[str, str]:
        """label -> node name (a copy; pass it to ``add_conditional_edges``)."""
        return dict(self._path_map)

    @property
    def labels(self) -> tuple[str, ...]:
        """Every label this node can return."""
        return tuple(self._path_map)

    @property
    def return_type(self) -> Any:
        """``Literal[...]`` of the labels (for annotations and graph drawing)."""
        return Literal[self.labels]

    @property
    def destinations(self) -> tuple[str, ...]:
        """The node names this edge can lead to."""
        return tuple(dict.fromkeys(self._path_map.values()))

    # ------------------------------------------------------------------ deciding
    def _label(self, match: RouteMatch | None) -> str:
        if match is None or match.name is None:
            return self.fallback
        if match.name not in self._path_map:
            log.warning(
                "route %r is not in the path map (added after the graph was built); using the fallback",
                match.name,
            )
            return self.fallback
        return match.name

    def _turns(self, state: Any) -> list[str] | None:
        try:
            return turns_from_state(state, self.query_key, self.messages_key, self.query_from)
        except InvalidQueryError:
            log.info("no query in the state; taking the fallback edge")
            return None

    def _previous(self, state: Any) -> str | None:
        if isinstance(state, Sequence):
            return None
        value = state_get(state, self.route_key)
        return value if isinstance(value, str) else None

    def _result(self, state: Any, match: RouteMatch | None) -> Any:
        if not self.multi:
            return self._label(match)
        names = [n for n in (match.selected if match is not None else ()) if n in self._path_map]
        if not names:
            return [self.fallback]
        return [Send(self._path_map[n], state) for n in names]

    def _multi_match(self, match: RouteMatch | None, clauses: list[ClauseMatch]) -> RouteMatch | None:
        """``match`` with ``selected`` = the routes chosen by the whole message or a clause."""
        names = tuple(c.name for c in clauses)
        if not names:
            return match
        if match is None or match.name is None:
            best = clauses[0].match
            return dataclasses.replace(best, name=names[0], selected=names)
        return dataclasses.replace(match, selected=tuple(dict.fromkeys([*match.selected, *names])))

    def decide(self, state: Any) -> RouteMatch | None:
        """The router's decision for a state (None when the state holds no query)."""
        turns = self._turns(state)
        if turns is None:
            return None
        decision = decide_turn(
            self.router, turns, previous=self._previous(state), options=self.conversation, top_k=self.top_k
        )
        if self.multi:
            found = self.router.route_multi(turns[-1], self.top_k, whole=decision.latest)
            return self._multi_match(decision.match, found)
        return decision.match

    async def adecide(self, state: Any) -> RouteMatch | None:
        """Async twin of :meth:`decide`."""
        turns = self._turns(state)
        if turns is None:
            return None
        decision = await adecide_turn(
            self.router, turns, previous=self._previous(state), options=self.conversation, top_k=self.top_k
        )
        if self.multi:
            found = await self.router.aroute_multi(turns[-1], self.top_k, whole=decision.latest)
            return self._multi_match(decision.match, found)
        return decision.match

    def __call__(self, state: Any) -> Any:
        """The label (or, with ``multi``, a list of Sends) for ``state``."""
        return self._result(state, self.decide(state))

    async def acall(self, state: Any) -> Any:
        """Async twin of ``__call__``."""
        return self._result(state, await self.adecide(state))

    # Runnable protocol: LangGraph's branch calls invoke() in sync runs and ainvoke() in async ones.
    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self(input)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self.acall(input)

    def as_command_node(
        self, *, update_keys: tuple[str, str] = ("route", "route_score")
    ) -> RouterCommandNode:
        """A node that routes with :class:`~langgraph.types.Command` (see :func:`router_command_node`)."""
        return RouterCommandNode(self, update_keys=update_keys)

    def __repr__(self) -> str:
        return f"RouterNode(labels={list(self._path_map)}, fallback={self.fallback!r}, multi={self.multi})"


class RouterCommandNode(Runnable[Any, Any]):
    """A graph node returning ``Command(update={"route", "route_score"}, goto=node)``.

    The update holds plain values only (a route name or None, a float), so any checkpointer can
    serialize it. Add it with its destinations so the graph draws its edges::

        node = router_command_node(router, fallback="rag")
        graph.add_node("classify", node, destinations=node.destinations)
    """

    def __init__(self, edge: RouterNode, *, update_keys: tuple[str, str] = ("route", "route_score")) -> None:
        if not isinstance(edge, RouterNode):
            raise InvalidTypeError("expected a RouterNode")
        if (
            not isinstance(update_keys, Sequence)
            or len(update_keys) != 2
            or not all(isinstance(k, str) for k in update_keys)
        ):
            raise InvalidInputError("update_keys must be two state keys: (route key, score key)")
        self.name = "route_command"
        self.edge = edge
        self.update_keys = (update_keys[0], update_keys[1])

    @property
    def destinations(self) -> tuple[str, ...]:
        return self.edge.destinations

    @property
    def path_map(self) -> dict[str, str]:
        return self.edge.path_map

    def _command(self, state: Any, match: RouteMatch | None) -> Command[Any]:
        route_key, score_key = self.update_keys
        name = match.name if match is not None and match.name in self.edge.path_map else None
        score = float(match.score) if match is not None else 0.0
        update = {route_key: name, score_key: score}
        result = self.edge._result(state, match)
        if isinstance(result, list):  # multi: Sends, or the fallback label
            goto: Any = [r if isinstance(r, Send) else self.edge.path_map[r] for r in result]
        else:
            goto = self.edge.path_map[result]
        return Command(update=update, goto=goto)

    def __call__(self, state: Any) -> Command[Any]:
        return self._command(state, self.edge.decide(state))

    async def acall(self, state: Any) -> Command[Any]:
        return self._command(state, await self.edge.adecide(state))

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Command[Any]:
        return self(input)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Command[Any]:
        return await self.acall(input)


def router_command_node(
    router: SemanticRouter,
    *,
    fallback: str = "fallback",
    query_key: str | None = None,
    path_map: Mapping[str, str] | None = None,
    top_k: int = 1,
    multi: bool = False,
    unmapped: Literal["error", "fallback"] = "error",
    update_keys: tuple[str, str] = ("route", "route_score"),
    context_turns: int = 3,
    carry_over: bool = True,
    query_from: Callable[[Any], str] | None = None,
) -> RouterCommandNode:
    """A node that routes by returning a ``Command`` (same options as :class:`RouterNode`).

    The route it writes is the previous route of the next turn (with a checkpointer it is kept
    across turns). The state needs the two ``update_keys`` (default ``route: str | None`` and
    ``route_score: float``).
    """
    edge = RouterNode(
        router,
        fallback=fallback,
        query_key=query_key,
        path_map=path_map,
        top_k=top_k,
        multi=multi,
        unmapped=unmapped,
        context_turns=context_turns,
        carry_over=carry_over,
        query_from=query_from,
        route_key=update_keys[0] if isinstance(update_keys, Sequence) and update_keys else "route",
    )
    return RouterCommandNode(edge, update_keys=update_keys)
