"""ToolSelector: pick the few tools that fit a request out of many, one route per tool.

The engine-level tool selection the framework integrations share (LangGraph's tool node, the
LangChain middleware, the LlamaIndex tool retriever). Routes are seeded from the tools with
:func:`~synaptoroute_agents.seeding.seed_route`; no framework is imported.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .conversation import (
    ConversationOptions,
    carry_tools,
    context_text,
    follows_on,
    nearest_utterance,
    recent_turns,
)
from .encoders.base import Encoder
from .errors import InvalidInputError, InvalidQueryError, InvalidTypeError, RouteNotFoundError
from .router import SemanticRouter
from .routes import Route, RouteMatch, validate_positive_int, validate_route_name, validate_threshold
from .seeding.seed import FINGERPRINT_KEY, seed_route, tool_name

__all__ = ["ToolSelector", "refusal_text", "resolve_k", "route_name_for_tool"]

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^\w.:\-]+")


def route_name_for_tool(name: str) -> str:
    """The route name a tool is stored under: the tool name when it is a valid route name, else a
    safe form of it with a short digest of the original (``"Get Weather"`` ->
    ``"Get_Weather~1a2b3c4d"``-like, never clashing with another tool's name)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"a tool name must be a non-empty string, got {name!r}")
    try:
        return validate_route_name(name)
    except InvalidInputError:
        pass
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    safe = _UNSAFE.sub("_", name).strip("_.:-") or "tool"
    return validate_route_name(f"{safe[:110]}.{digest}")


def refusal_text(name: str, offered: Iterable[str]) -> str | None:
    """What a face answers for a call to tool ``name``: None when it was offered, else the refusal.

    Every face (the LangGraph tool node, the LangChain middleware) refuses a call to a tool it did
    not offer on that turn with this text in an error ToolMessage, and never runs the tool. The
    refusal is logged once per call.
    """
    allowed = sorted(set(offered))
    if name in allowed:
        return None
    log.warning("refused a call to tool %r: it was not offered on this turn", name)
    return (
        f"Error: tool {name!r} is not available for this request: it was not offered on this turn"
        f" and was not run. Available tools: {allowed}."
    )


def resolve_k(k: int | None, max_tools: int | None, default: int = 5) -> int:
    """``k``, or its alias ``max_tools`` (the name other tool-selection libraries use)."""
    if k is not None and max_tools is not None and k != max_tools:
        raise InvalidInputError(f"k={k} and max_tools={max_tools} disagree; give one of them")
    value = k if k is not None else max_tools if max_tools is not None else default
    return validate_positive_int(value, "k" if k is not None else "max_tools")


class ToolSelector:
    """Pick the few tools that fit a request out of many, with one route per tool.

    Args:
        tools: callables, LangChain tools, tool mappings or :class:`Route` objects (names unique).
        router: the router holding the tool routes (it may hold other routes too; only these
            tools are ever returned). Missing routes are added; routes already present are kept
            as they are (a persistent store is not re-embedded) unless the tool's docstring
            changed since they were seeded (a fingerprint is stored with each seeded route): those
            are re-seeded, replacing their utterances. :attr:`reseeded` names both kinds. None: a new in-memory
            router on ``encoder``.
        k: default number of tools to select (``max_tools`` is an alias).
        threshold: when set, only tools scoring at least this are selected; None selects the
            best ``k`` whatever their score.
        encoder: the encoder of a new router (the bundled model by default).
        always_include: tool names selected on every call, first, in addition to the ``k``
            chosen by meaning (they do not count toward ``k``).
        max_tools: alias of ``k``.

    Tool names are kept as given (``"Get Weather"`` is fine); a name that is not a valid route
    name is stored under :func:`route_name_for_tool`'s safe form, mapped back on every answer.
    """

    def __init__(
        self,
        tools: Sequence[Any],
        *,
        router: SemanticRouter | None = None,
        k: int | None = None,
        threshold: float | None = None,
        encoder: Encoder | None = None,
        always_include: Sequence[str] = (),
        max_tools: int | None = None,
    ) -> None:
        if isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Iterable):
            raise InvalidTypeError("tools must be a sequence of callables, tools or mappings")
        self.k = resolve_k(k, max_tools)
        self.threshold = validate_threshold(threshold)
        routes: list[Route] = []
        self.tools: dict[str, Any] = {}
        self._route_of: dict[str, str] = {}
        self._tool_of: dict[str, str] = {}
        for obj in tools:
            name = obj.name if isinstance(obj, Route) else tool_name(obj)
            if name in self.tools:
                raise InvalidInputError(f"two tools are named {name!r}; tool names must be unique")
            rname = route_name_for_tool(name)
            if rname in self._tool_of:
                raise InvalidInputError(f"tools {self._tool_of[rname]!r} and {name!r} map to one route name")
            route = obj if isinstance(obj, Route) else seed_route(obj, name=rname)
            self.tools[name] = obj
            self._route_of[name] = rname
            self._tool_of[rname] = name
            routes.append(route)
        self.always_include = self._check_names(always_include, "always_include")
        if router is None:
            router = SemanticRouter(encoder, threshold=-1.0, neighbors=max(64, 8 * self.k))
        elif not isinstance(router, SemanticRouter):
            raise InvalidTypeError("router must be a SemanticRouter")
        self.router = router
        #: Routes (re)seeded by this selector: new ones, and stored ones whose tool changed.
        self.reseeded: list[str] = []
        for route in routes:
            if route.name not in router:
                router.add(route)
                self.reseeded.append(self._tool_of[route.name])
            elif self._changed(router.get(route.name), route):
                router.upsert(route)
                self.reseeded.append(self._tool_of[route.name])
        log.debug("tool routes: %s utterances", self.utterance_counts())

    @staticmethod
    def _changed(stored: Route, seeded: Route) -> bool:
        """A seeded route whose docstring (or the seeding method) changed since it was stored."""
        new = seeded.metadata.get(FINGERPRINT_KEY)
        return new is not None and stored.metadata.get(FINGERPRINT_KEY) != new

    def utterance_counts(self) -> dict[str, int]:
        """How many utterances each tool's route holds (seeded, plus any taught since)."""
        return {tool: len(self.router.get(rname).utterances) for tool, rname in self._route_of.items()}

    def _check_names(self, names: Sequence[str], what: str) -> list[str]:
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise InvalidTypeError(f"{what} must be a list of tool names, not {type(names).__name__}")
        unknown = [n for n in names if n not in self.tools]
        if unknown:
            raise InvalidInputError(f"{what} names unknown tool(s) {unknown}; the tools are {self.names}")
        return list(dict.fromkeys(names))

    def route_name(self, tool: str) -> str:
        """The route name tool ``tool`` is stored under (the tool name itself when valid)."""
        try:
            return self._route_of[tool]
        except KeyError:
            raise RouteNotFoundError(tool) from None

    @property
    def names(self) -> list[str]:
        """The tool names, in the order given."""
        return list(self.tools)

    def tool(self, name: str) -> Any:
        """The object given for tool ``name``."""
        try:
            return self.tools[name]
        except KeyError:
            raise RouteNotFoundError(name) from None

    def match(self, query: str, k: int | None = None) -> RouteMatch:
        """The router's full decision for ``query`` with at least ``k`` ranked candidates."""
        k = self.k if k is None else validate_positive_int(k, "k")
        return self.router.route(query, top_k=k)

    async def amatch(self, query: str, k: int | None = None) -> RouteMatch:
        """Async twin of :meth:`match` (the encoder runs in a worker thread)."""
        k = self.k if k is None else validate_positive_int(k, "k")
        return await self.router.aroute(query, top_k=k)

    def _pick(self, match: RouteMatch, k: int) -> list[str]:
        out = []
        skip = set(self.always_include)
        for cand in match.candidates:
            tool = self._tool_of.get(cand.name)
            if tool is None or tool in skip:
                continue
            if self.threshold is not None and cand.score < self.threshold:
                break
            out.append(tool)
            if len(out) >= k:
                break
        return out

    def _top(self, k: int) -> int:
        return k + len(self.always_include)

    def _with_always(self, names: list[str]) -> list[str]:
        return list(dict.fromkeys([*self.always_include, *names]))

    def select(self, query: str, k: int | None = None) -> list[str]:
        """Names of the ``always_include`` tools, then at most ``k`` tools for ``query``, best first."""
        k = self.k if k is None else validate_positive_int(k, "k")
        return self._with_always(self._pick(self.router.route(query, top_k=self._top(k)), k))

    async def aselect(self, query: str, k: int | None = None) -> list[str]:
        """Async twin of :meth:`select`; never blocks the event loop."""
        k = self.k if k is None else validate_positive_int(k, "k")
        return self._with_always(self._pick(await self.router.aroute(query, top_k=self._top(k)), k))

    # ------------------------------------------------------------------ conversations
    def _turn_plan(
        self, turns: Sequence[str], k: int | None, options: ConversationOptions | None
    ) -> tuple[list[str], int, ConversationOptions]:
        k = self.k if k is None else validate_positive_int(k, "k")
        opts = options or ConversationOptions()
        recent = recent_turns(turns, opts.context_turns)
        if not recent:
            raise InvalidQueryError("the conversation holds no human turn to select tools for")
        return recent, k, opts

    def _turn_result(
        self,
        recent: list[str],
        latest: list[str],
        context: list[str] | None,
        previous: Sequence[str] | None,
        k: int,
    ) -> list[str]:
        if context is None:
            return self._with_always(latest)
        thresholded = self.threshold is not None
        return self._with_always(carry_tools(latest, context, previous, k, thresholded=thresholded))

    def _similarity(self, match: RouteMatch, tool: str) -> float:
        """The latest message's cosine with the nearest stored utterance of ``tool``."""
        return nearest_utterance(match, {r for r, t in self._tool_of.items() if t == tool})

    def _needs_context(self, recent: list[str], latest: list[str], opts: ConversationOptions) -> bool:
        if not opts.active or len(recent) < 2:
            return False
        return not (self.threshold is not None and latest)

    def select_turn(
        self,
        turns: Sequence[str],
        *,
        previous: Sequence[str] | None = None,
        k: int | None = None,
        options: ConversationOptions | None = None,
    ) -> list[str]:
        """Tools for the latest of ``turns`` (human messages, oldest first), keeping the
        conversation's tools on a follow-up.

        Args:
            turns: the human turns, oldest first.
            previous: the tools offered on the previous turn (kept in the caller's state); a
                tool from it stays when the recent turns together still rank it in the top ``k``.
                None: any tool the recent turns rank there may stay.
            k: the most tools chosen by meaning (``always_include`` comes on top).
            options: context length and carry-over (:class:`ConversationOptions`).

        With a ``threshold``, a latest message that some tool passes is a new request (its tools
        only); one no tool passes is decided from the recent turns (nothing there, or a latest
        message that is no follow-up (:func:`~synaptoroute_agents.conversation.follows_on`):
        no tools, so the caller's fallback runs). Without one, the best tool for the recent turns read
        together comes first, then the latest message's best, then the kept tools and the
        latest's other picks (so with ``k >= 2`` both a follow-up's and a new request's tool are
        offered).
        """
        recent, k, opts = self._turn_plan(turns, k, options)
        match = self.router.route(recent[-1], top_k=self._top(k))
        latest = self._pick(match, k)
        context = None
        if self._needs_context(recent, latest, opts):
            context = self._pick(self.router.route(context_text(recent), top_k=self._top(k)), k)
            if (
                context
                and self.threshold is not None
                and not follows_on(self.router, recent, self._similarity(match, context[0]))
            ):
                context = []  # a foreign message, not a follow-up: no tools, the fallback
        return self._turn_result(recent, latest, context, previous, k)

    async def aselect_turn(
        self,
        turns: Sequence[str],
        *,
        previous: Sequence[str] | None = None,
        k: int | None = None,
        options: ConversationOptions | None = None,
    ) -> list[str]:
        """Async twin of :meth:`select_turn`."""
        recent, k, opts = self._turn_plan(turns, k, options)
        match = await self.router.aroute(recent[-1], top_k=self._top(k))
        latest = self._pick(match, k)
        context = None
        if self._needs_context(recent, latest, opts):
            context = self._pick(await self.router.aroute(context_text(recent), top_k=self._top(k)), k)
            if context and self.threshold is not None:
                similarity = self._similarity(match, context[0])
                if not await asyncio.to_thread(follows_on, self.router, recent, similarity):
                    context = []  # a foreign message, not a follow-up: no tools, the fallback
        return self._turn_result(recent, latest, context, previous, k)

    def select_tools(self, query: str, k: int | None = None) -> list[Any]:
        """Like :meth:`select`, returning the tool objects."""
        return [self.tools[n] for n in self.select(query, k)]

    async def aselect_tools(self, query: str, k: int | None = None) -> list[Any]:
        """Async twin of :meth:`select_tools`."""
        return [self.tools[n] for n in await self.aselect(query, k)]

    def __len__(self) -> int:
        return len(self.tools)

    def __contains__(self, name: object) -> bool:
        return name in self.tools

    def __repr__(self) -> str:
        return (
            f"ToolSelector(tools={len(self.tools)}, k={self.k}, threshold={self.threshold}, "
            f"always_include={self.always_include})"
        )
