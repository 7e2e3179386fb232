"""Agent middleware: offer the model only the tools that fit the current request.

Needs ``langchain`` (``pip install 'langchain-synaptoroute[agents]'``) for
``langchain.agents.create_agent``. The selection is the engine's :class:`ToolSelector`, the same one
the LangGraph tool injector uses.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from ._deps import require

require("langchain_core", "langchain-core")
require("langchain.agents.middleware", "langchain-synaptoroute[agents]")

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse  # noqa: E402
from langchain_core.messages import AnyMessage, HumanMessage, ToolMessage  # noqa: E402
from langchain_core.tools import BaseTool  # noqa: E402

from synaptoroute_agents import (  # noqa: E402
    ConversationOptions,
    Encoder,
    InvalidInputError,
    InvalidThresholdError,
    InvalidTypeError,
    SemanticRouter,
    ToolSelector,
    message_text,
    refusal_text,
    resolve_k,
)

__all__ = ["SynaptoRouteToolSelectionMiddleware", "human_texts", "last_human_text"]

log = logging.getLogger(__name__)


def human_texts(messages: Sequence[AnyMessage]) -> list[str]:
    """The texts of the non-blank human messages, oldest first."""
    texts = (message_text(m, sep="").strip() for m in messages if isinstance(m, HumanMessage))
    return [t for t in texts if t]


def last_human_text(messages: Sequence[AnyMessage]) -> str | None:
    """The text of the latest human message, or None when there is none (or it is blank)."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            text = message_text(message, sep="").strip()
            return text or None
    return None


class SynaptoRouteToolSelectionMiddleware(AgentMiddleware):
    """Narrow the tools offered to the model on each model call, locally and without an LLM call.

    Before every model call the latest human message is matched against one seeded route per
    tool (name, description, argument descriptions); the model then sees only the best ``k``
    tools (plus ``always_include``). Tools the selector does not know and provider tools given as
    dicts are always offered. Use it with ``langchain.agents.create_agent(..., middleware=[...])``.

    Args:
        k: how many tools to offer.
        threshold: when set, only tools scoring at least this are offered.
        always_include: names of tools offered on every call (not counted in ``k``).
        selector: a ready :class:`ToolSelector` (for example one shared with other agents). None
            builds one from the agent's tools on the first call (and again if the tools change).
        router: where a built selector keeps its tool routes (a persistent store keeps them
            across restarts); None keeps them in memory.
        encoder: the encoder of a built selector (the bundled offline model by default).
        on_no_match: what to offer when no tool passes ``threshold``: ``"all"`` (every tool,
            the model decides; default) or ``"none"`` (only ``always_include`` and unknown tools).
        max_tools: alias of ``k``.
        context_turns, carry_over: conversation context (on by default): a follow-up ("and in
            Paris?") keeps the tools the last ``context_turns`` human turns, read together,
            point at (see :mod:`synaptoroute_agents.conversation`).

    The selection is also a permission boundary: a tool call to a tool that was not offered on
    the turn (the model named it anyway) is answered with an error ``ToolMessage`` and never
    runs. ``always_include`` names that are not among the agent's tools raise
    ``InvalidInputError`` on the first model call.

    Example:
        >>> agent = create_agent(model, tools=many_tools,
        ...                      middleware=[SynaptoRouteToolSelectionMiddleware(k=3)])
    """

    def __init__(
        self,
        *,
        k: int | None = None,
        threshold: float | None = None,
        always_include: Sequence[str] = (),
        selector: ToolSelector | None = None,
        router: SemanticRouter | None = None,
        encoder: Encoder | None = None,
        on_no_match: Literal["all", "none"] = "all",
        max_tools: int | None = None,
        context_turns: int = 2,
        carry_over: bool = True,
    ) -> None:
        super().__init__()
        k = resolve_k(k, max_tools)
        self.conversation = ConversationOptions(context_turns=context_turns, carry_over=carry_over)
        if isinstance(always_include, str):
            raise InvalidTypeError("always_include must be a list of tool names, not a single string")
        if selector is not None and not isinstance(selector, ToolSelector):
            raise InvalidTypeError("selector must be a synaptoroute_agents.ToolSelector")
        if selector is not None and (router is not None or encoder is not None):
            raise InvalidInputError("give either a ready selector or router/encoder to build one, not both")
        if on_no_match not in ("all", "none"):
            raise InvalidInputError("on_no_match must be 'all' or 'none'")
        self.k = k
        self.threshold = threshold
        self.always_include = frozenset(always_include)
        self.on_no_match = on_no_match
        self._router = router
        self._encoder = encoder
        self._selector = selector
        self._fixed = selector is not None
        self._key: tuple[tuple[str, str], ...] | None = None
        self._lock = threading.Lock()
        if threshold is not None and (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not -1.0 <= float(threshold) <= 1.0
        ):
            raise InvalidThresholdError(f"threshold must be a number in [-1, 1], got {threshold!r}")

    # ------------------------------------------------------------------ selection
    def selector_for(self, tools: Sequence[BaseTool]) -> ToolSelector:
        """The selector over ``tools`` (built, or rebuilt when the tool set changed)."""
        if self._fixed:
            assert self._selector is not None
            return self._selector
        key = tuple(sorted((t.name, t.description) for t in tools))
        with self._lock:
            if self._selector is None or key != self._key:
                if self._encoder is None and self._selector is not None:
                    self._encoder = self._selector.router.encoder  # reuse the loaded model
                self._selector = ToolSelector(
                    list(tools),
                    router=self._router,
                    k=self.k,
                    threshold=self.threshold,
                    encoder=self._encoder,
                )
                self._key = key
            return self._selector

    def _split(self, request: ModelRequest) -> tuple[list[BaseTool], list[Any]]:
        """(tools to choose among, tools always offered)."""
        choose: list[BaseTool] = []
        keep: list[Any] = []
        forced = request.tool_choice if isinstance(request.tool_choice, str) else None
        for tool in request.tools:
            if isinstance(tool, BaseTool) and tool.name not in self.always_include and tool.name != forced:
                choose.append(tool)
            else:
                keep.append(tool)
        return choose, keep

    def _narrow(
        self, request: ModelRequest, names: list[str], choose: list[BaseTool], keep: list[Any]
    ) -> ModelRequest:
        by_name = {t.name: t for t in choose}
        if self._fixed:
            assert self._selector is not None
            unknown = [t for t in choose if t.name not in self._selector]
        else:
            unknown = []
        picked = [by_name[n] for n in names if n in by_name]
        if not picked and self.on_no_match == "all":
            log.debug("no tool passed the threshold; offering all %d tools", len(choose))
            return request
        offered = [*picked, *unknown, *keep]
        log.debug(
            "offering %d of %d tools: %s",
            len(offered),
            len(request.tools),
            [n for n in names if n in by_name],
        )
        return request.override(tools=offered)

    def _check_always(self, tools: Sequence[Any]) -> None:
        names = {t.name for t in tools if isinstance(t, BaseTool)}
        unknown = sorted(self.always_include - names)
        if unknown:
            raise InvalidInputError(
                f"always_include names unknown tool(s) {unknown}; the agent's tools are {sorted(names)}"
            )

    def _prepare(
        self, request: ModelRequest
    ) -> tuple[list[str], ToolSelector, list[BaseTool], list[Any]] | None:
        if not request.tools:
            return None
        self._check_always(request.tools)
        turns = human_texts(request.messages)
        if not turns:
            return None
        choose, keep = self._split(request)
        if len(choose) <= self.k and not self._fixed and self.threshold is None:
            return None  # nothing to narrow
        if not choose:
            return None
        return turns, self.selector_for(choose), choose, keep

    # ------------------------------------------------------------------ hooks
    def wrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse],
    ) -> Any:
        prepared = self._prepare(request)
        if prepared is not None:
            turns, selector, choose, keep = prepared
            names = selector.select_turn(turns, k=self.k, options=self.conversation)
            request = self._narrow(request, names, choose, keep)
        return handler(request)

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> Any:
        prepared = self._prepare(request)
        if prepared is not None:
            turns, selector, choose, keep = prepared
            names = await selector.aselect_turn(turns, k=self.k, options=self.conversation)
            request = self._narrow(request, names, choose, keep)
        return await handler(request)

    # ------------------------------------------------------------------ the guard
    def _refusal(self, request: Any, offered: set[str] | None) -> ToolMessage | None:
        name = str(request.tool_call["name"])
        text = None if offered is None else refusal_text(name, offered)
        if text is None:
            return None
        return ToolMessage(
            content=text, name=name, tool_call_id=request.tool_call["id"] or "", status="error"
        )

    def _narrowed(self, request: Any) -> tuple[ToolSelector, list[str]] | None:
        selector = self._selector
        messages = request.state.get("messages") if isinstance(request.state, dict) else None
        turns = human_texts(messages or [])
        if selector is None or not turns:
            return None  # nothing was narrowed on this turn
        return selector, turns

    def _offered(self, selector: ToolSelector, picked: list[str], name: str) -> set[str] | None:
        """The tools offered on the turn among those the selector chose from (None: all were)."""
        if name not in selector or name in self.always_include:
            return None  # unknown to the selector, or always offered
        if not picked and self.on_no_match == "all":
            return None
        return set(picked) | set(self.always_include)

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        """Run a tool call only if the tool was offered on this turn."""
        narrowed = self._narrowed(request)
        if narrowed is not None:
            selector, turns = narrowed
            name = str(request.tool_call["name"])
            picked = selector.select_turn(turns, k=self.k, options=self.conversation)
            refusal = self._refusal(request, self._offered(selector, picked, name))
            if refusal is not None:
                return refusal
        return handler(request)

    async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        """Async twin of :meth:`wrap_tool_call`."""
        narrowed = self._narrowed(request)
        if narrowed is not None:
            selector, turns = narrowed
            name = str(request.tool_call["name"])
            picked = await selector.aselect_turn(turns, k=self.k, options=self.conversation)
            refusal = self._refusal(request, self._offered(selector, picked, name))
            if refusal is not None:
                return refusal
        return await handler(request)
