"""A Runnable that sends its input to one of several runnables by route."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from ._deps import require

require("langchain_core", "langchain-core")

from langchain_core.callbacks import (  # noqa: E402
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
)
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event  # noqa: E402
from langchain_core.messages import BaseMessage, HumanMessage  # noqa: E402
from langchain_core.prompt_values import PromptValue  # noqa: E402
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda  # noqa: E402
from langchain_core.runnables.config import patch_config  # noqa: E402

from synaptoroute_agents import (  # noqa: E402  # noqa: E402
    ConversationOptions,
    InvalidInputError,
    InvalidQueryError,
    InvalidTypeError,
    RouteMatch,
    SemanticRouter,
    adecide_turn,
    clean_text,
    decide_turn,
    message_text,
)

__all__ = ["DECISION_EVENT", "SynaptoRouteRunnable", "as_runnable", "query_from_input", "turns_from_input"]

log = logging.getLogger(__name__)

#: Name of the custom event a streaming router sends as soon as it has decided.
DECISION_EVENT = "synaptoroute_decision"

#: Keys looked up, in order, in a dict input when no ``query_key`` is given.
DEFAULT_QUERY_KEYS = ("query", "input", "question", "messages")


def _message_text(message: BaseMessage) -> str:
    return message_text(message, sep="")  # text blocks joined as LangChain's own .text joins them


def _from_messages(messages: Sequence[Any]) -> str:
    """The text of the last human message (or, when there is none, of the last message)."""
    items = [m for m in messages if isinstance(m, BaseMessage)]
    if len(items) != len(messages):
        raise InvalidTypeError("a message list must hold only LangChain messages")
    if not items:
        raise InvalidQueryError("the message list is empty")
    for message in reversed(items):
        if isinstance(message, HumanMessage):
            return _message_text(message)
    return _message_text(items[-1])


def query_from_input(value: Any, query_key: str | None = None) -> str:
    """The text to route, taken from a Runnable input.

    Accepts a string, a message (or a list of messages: the last human message is used), a prompt
    value, or a dict holding one of those under ``query_key`` (by default the first present of
    ``query``, ``input``, ``question``, ``messages``).

    Raises:
        InvalidTypeError: the input has no usable shape.
        InvalidQueryError: the dict lacks the key, or the message list is empty.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, BaseMessage):
        return _message_text(value)
    if isinstance(value, PromptValue):
        return _from_messages(value.to_messages())
    if isinstance(value, Mapping):
        keys = (query_key,) if query_key is not None else DEFAULT_QUERY_KEYS
        for key in keys:
            if key in value:
                inner = value[key]
                if isinstance(inner, Mapping):
                    raise InvalidTypeError(f"input[{key!r}] is a mapping, not a query")
                return query_from_input(inner)
        raise InvalidQueryError(
            f"the input dict has no query under {' or '.join(repr(k) for k in keys)}; "
            "pass query_key= to name the key that holds the text"
        )
    if isinstance(value, list | tuple):
        return _from_messages(value)
    raise InvalidTypeError(
        f"cannot route a {type(value).__name__}: give a string, messages, or a dict with the query"
    )


def turns_from_input(value: Any, query_key: str | None = None) -> list[str]:
    """The human turns of an input, oldest first: every human message of a message list (or of a
    dict's message list), else the one query :func:`query_from_input` reads."""
    inner = value
    if isinstance(value, Mapping):
        keys = (query_key,) if query_key is not None else DEFAULT_QUERY_KEYS
        inner = next((value[k] for k in keys if k in value), value)
    if isinstance(inner, PromptValue):
        inner = inner.to_messages()
    if isinstance(inner, list | tuple) and inner and all(isinstance(m, BaseMessage) for m in inner):
        turns = [_message_text(m) for m in inner if isinstance(m, HumanMessage)]
        turns = [t for t in turns if t.strip()]
        if turns:
            return turns
    return [query_from_input(value, query_key)]


def _coerce(target: Any, what: str) -> Runnable[Any, Any]:
    if isinstance(target, Runnable):
        return target
    if callable(target):
        return RunnableLambda(target)
    raise InvalidTypeError(f"{what} must be a Runnable or a callable, not {type(target).__name__}")


class SynaptoRouteRunnable(Runnable[Any, Any]):
    """Route an input with a local :class:`SemanticRouter` and run the runnable of the chosen route.

    The input goes on unchanged to the chosen runnable, or to ``fallback`` when the router abstains
    (no route passes its threshold, the best two are too close, ...). ``invoke``, ``ainvoke``,
    ``batch`` and ``abatch`` are supported; a batch routes every input with one encoder call and
    runs each target runnable once over its share of the inputs.

    Args:
        router: the router that decides.
        routes: route name -> Runnable (or a plain callable, wrapped in ``RunnableLambda``). Every
            route the router knows must have one, and every key must be a route of the router.
        fallback: the Runnable (or callable) for inputs the router abstains on.
        query_key: for dict inputs, the key holding the text (default: the first present of
            ``query``, ``input``, ``question``, ``messages``).
        default: the Runnable (or callable) for routes of the router that ``routes`` does not
            map. Without it every route needs a runnable.
        context_turns, carry_over: for message-list inputs, a follow-up that routes to nothing
            by itself is decided from the last ``context_turns`` human messages read together
            (on by default; see :mod:`synaptoroute_agents.conversation`). ``batch`` routes the
            latest message of each input alone.

    Raises:
        InvalidInputError: a route of the router has no runnable, or a runnable has no route.
        InvalidTypeError: a target is neither a Runnable nor a callable.

    A route added to the router after construction has no runnable; inputs routed to it go to
    ``fallback`` (and a warning is logged).
    """

    def __init__(
        self,
        router: SemanticRouter,
        routes: Mapping[str, Runnable[Any, Any] | Callable[..., Any]],
        *,
        fallback: Runnable[Any, Any] | Callable[..., Any],
        query_key: str | None = None,
        name: str | None = None,
        default: Runnable[Any, Any] | Callable[..., Any] | None = None,
        context_turns: int = 2,
        carry_over: bool = True,
    ) -> None:
        self.conversation = ConversationOptions(context_turns=context_turns, carry_over=carry_over)
        if not isinstance(router, SemanticRouter):
            raise InvalidTypeError(
                f"router must be a synaptoroute_agents.SemanticRouter, not {type(router).__name__}"
            )
        if not isinstance(routes, Mapping) or not routes:
            raise InvalidInputError("routes must be a non-empty mapping of route name -> runnable")
        if query_key is not None and not isinstance(query_key, str):
            raise InvalidTypeError("query_key must be a str or None")
        known = {route.name for route in router.routes()}
        missing = sorted(known - set(routes))
        if missing and default is None:
            raise InvalidInputError(
                f"route(s) without a runnable: {', '.join(missing)}; give every route of the router a "
                "runnable, or pass default= for the unmapped ones"
            )
        unknown = sorted(set(routes) - known)
        if unknown:
            raise InvalidInputError(
                f"runnable(s) for unknown route(s): {', '.join(unknown)}; the router's routes are: "
                f"{', '.join(sorted(known)) or '(none)'}"
            )
        self.router = router
        self.routes: dict[str, Runnable[Any, Any]] = {
            key: _coerce(value, f"routes[{key!r}]") for key, value in routes.items()
        }
        self.fallback: Runnable[Any, Any] = _coerce(fallback, "fallback")
        self.default: Runnable[Any, Any] | None = None if default is None else _coerce(default, "default")
        self.query_key = query_key
        self.name = name or "SynaptoRouteRunnable"

    # ------------------------------------------------------------------ helpers
    def target_for(self, match: RouteMatch) -> tuple[str | None, Runnable[Any, Any]]:
        """The route name (None for the fallback) and the runnable a decision leads to."""
        if match.name is None:
            return None, self.fallback
        target = self.routes.get(match.name)
        if target is None and self.default is not None:
            return match.name, self.default
        if target is None:
            log.warning("route %r has no runnable (added after construction); using the fallback", match.name)
            return None, self.fallback
        return match.name, target

    def route(self, value: Any) -> RouteMatch:
        """The router's decision for one input, without running anything."""
        turns = turns_from_input(value, self.query_key)
        return decide_turn(self.router, turns, options=self.conversation).match

    async def aroute(self, value: Any) -> RouteMatch:
        """Async twin of :meth:`route`."""
        turns = turns_from_input(value, self.query_key)
        return (await adecide_turn(self.router, turns, options=self.conversation)).match

    @staticmethod
    def _child_config(config: RunnableConfig, run_manager: Any, route: str | None) -> RunnableConfig:
        tag = f"synaptoroute:{route}" if route is not None else "synaptoroute:fallback"
        return patch_config(config, callbacks=run_manager.get_child(tag))

    # ------------------------------------------------------------------ single
    def _invoke(self, value: Any, run_manager: CallbackManagerForChainRun, config: RunnableConfig) -> Any:
        name, target = self.target_for(self.route(value))
        return target.invoke(value, self._child_config(config, run_manager, name))

    async def _ainvoke(
        self, value: Any, run_manager: AsyncCallbackManagerForChainRun, config: RunnableConfig
    ) -> Any:
        name, target = self.target_for(await self.aroute(value))
        return await target.ainvoke(value, self._child_config(config, run_manager, name))

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:  # noqa: A002
        return self._call_with_config(self._invoke, input, config, run_type="chain")

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:  # noqa: A002
        return await self._acall_with_config(self._ainvoke, input, config, run_type="chain")

    # ------------------------------------------------------------------ stream
    def _decision_event(self, match: RouteMatch, name: str | None) -> dict[str, Any]:
        return {"route": name, "decision": match.to_dict()}

    def _stream(
        self, inputs: Iterator[Any], run_manager: CallbackManagerForChainRun, config: RunnableConfig
    ) -> Iterator[Any]:
        for value in inputs:
            match = self.route(value)
            name, target = self.target_for(match)
            child = self._child_config(config, run_manager, name)
            dispatch_custom_event(DECISION_EVENT, self._decision_event(match, name), config=child)
            yield from target.stream(value, child)

    async def _astream(
        self,
        inputs: AsyncIterator[Any],
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> AsyncIterator[Any]:
        async for value in inputs:
            match = await self.aroute(value)
            name, target = self.target_for(match)
            child = self._child_config(config, run_manager, name)
            await adispatch_custom_event(DECISION_EVENT, self._decision_event(match, name), config=child)
            async for chunk in target.astream(value, child):
                yield chunk

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:  # noqa: A002
        """Route, announce the decision (custom event ``synaptoroute_decision``, seen by
        ``astream_events`` and callbacks as soon as it is made), then stream the chosen runnable's
        chunks as they come."""
        return self._transform_stream_with_config(iter([input]), self._stream, config, run_type="chain")

    async def astream(
        self,
        input: Any,  # noqa: A002
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Async twin of :meth:`stream`."""

        async def one() -> AsyncIterator[Any]:
            yield input

        async for chunk in self._atransform_stream_with_config(
            one(), self._astream, config, run_type="chain"
        ):
            yield chunk

    # ------------------------------------------------------------------ batch
    def _plan(self, values: list[Any]) -> tuple[list[int | Exception], list[str]]:
        """For each input: its position in the query list, or the error that made it unroutable."""
        slots: list[int | Exception] = []
        queries: list[str] = []
        for value in values:
            try:
                queries.append(clean_text(query_from_input(value, self.query_key)))
                slots.append(len(queries) - 1)
            except Exception as exc:  # reported per input, as batch(return_exceptions=True) expects
                slots.append(exc)
        return slots, queries

    def _groups(
        self, values: list[Any], slots: list[int | Exception], matches: list[RouteMatch]
    ) -> tuple[list[Any], dict[str | None, list[int]]]:
        results: list[Any] = [None] * len(values)
        groups: dict[str | None, list[int]] = {}
        for i, slot in enumerate(slots):
            if isinstance(slot, Exception):
                results[i] = slot
                continue
            name, _ = self.target_for(matches[slot])
            groups.setdefault(name, []).append(i)
        return results, groups

    def _target(self, name: str | None) -> Runnable[Any, Any]:
        if name is None:
            return self.fallback
        target = self.routes.get(name, self.default)
        return self.fallback if target is None else target

    # LangChain passes ``run_manager`` and ``config`` (one per input) by these keyword names.
    def _batch(
        self,
        values: list[Any],
        run_manager: list[CallbackManagerForChainRun],
        config: list[RunnableConfig],
    ) -> list[Any]:
        slots, queries = self._plan(values)
        matches = self.router.route_batch(queries) if queries else []
        results, groups = self._groups(values, slots, matches)
        for name, positions in groups.items():
            outs = self._target(name).batch(
                [values[i] for i in positions],
                [self._child_config(config[i], run_manager[i], name) for i in positions],
                return_exceptions=True,
            )
            for i, out in zip(positions, outs, strict=True):
                results[i] = out
        return results

    async def _abatch(
        self,
        values: list[Any],
        run_manager: list[AsyncCallbackManagerForChainRun],
        config: list[RunnableConfig],
    ) -> list[Any]:
        slots, queries = self._plan(values)
        matches = await self.router.aroute_batch(queries) if queries else []
        results, groups = self._groups(values, slots, matches)
        for name, positions in groups.items():
            outs = await self._target(name).abatch(
                [values[i] for i in positions],
                [self._child_config(config[i], run_manager[i], name) for i in positions],
                return_exceptions=True,
            )
            for i, out in zip(positions, outs, strict=True):
                results[i] = out
        return results

    def batch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        if not inputs:
            return []
        return self._batch_with_config(
            self._batch, inputs, config, return_exceptions=return_exceptions, run_type="chain"
        )

    async def abatch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        if not inputs:
            return []
        return await self._abatch_with_config(
            self._abatch, inputs, config, return_exceptions=return_exceptions, run_type="chain"
        )

    def __repr__(self) -> str:
        return f"SynaptoRouteRunnable(routes={sorted(self.routes)}, fallback={self.fallback!r})"


def as_runnable(
    router: SemanticRouter,
    routes: Mapping[str, Runnable[Any, Any] | Callable[..., Any]],
    *,
    fallback: Runnable[Any, Any] | Callable[..., Any],
    query_key: str | None = None,
    default: Runnable[Any, Any] | Callable[..., Any] | None = None,
    context_turns: int = 2,
    carry_over: bool = True,
) -> SynaptoRouteRunnable:
    """Build a :class:`SynaptoRouteRunnable` (see there for the arguments).

    Example:
        >>> chain = as_runnable(router, {"billing": billing_chain, "weather": weather_chain},
        ...                     fallback=general_chain)
        >>> chain.invoke("I was charged twice")  # runs billing_chain
    """
    return SynaptoRouteRunnable(
        router,
        routes,
        fallback=fallback,
        query_key=query_key,
        default=default,
        context_turns=context_turns,
        carry_over=carry_over,
    )
