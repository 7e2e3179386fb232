"""ToolInjector: per-turn tool selection for agents with hundreds of tools, and a guarded ToolNode."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

from synaptoroute_agents import (
    ConversationOptions,
    DocumentIndex,
    Encoder,
    InvalidInputError,
    InvalidQueryError,
    InvalidTypeError,
    SemanticRouter,
    ToolSelector,
    refusal_text,
)

from ._state import human_turns, latest_human_text, query_from_state, state_get
from .rag import create_rag_fallback

__all__ = ["ToolInjector", "RoutedAgentState", "create_routed_agent", "SELECTED_TOOLS_KEY"]

log = logging.getLogger(__name__)

#: The state key where the agent records the tools selected for the current turn.
SELECTED_TOOLS_KEY = "selected_tools"


def _as_tool(obj: Any) -> BaseTool:
    if isinstance(obj, BaseTool):
        return obj
    if callable(obj):
        return StructuredTool.from_function(obj)
    raise InvalidTypeError(f"a tool must be a BaseTool or a function, not {type(obj).__name__}")


class ToolInjector:
    """Bind only the few tools that fit the request, and refuse calls to any other.

    One route per tool is seeded from its name, description, docstring and argument
    descriptions (:func:`synaptoroute_agents.seed_route`); each turn, :meth:`select` picks at most
    ``k`` tools for the latest user message, :meth:`bind` binds just those to the chat model, and
    :meth:`tool_node` builds a ToolNode whose ``wrap_tool_call`` refuses (with an error
    ToolMessage) any call to a tool that was not selected for the turn: selection is also a
    permission boundary.

    Args:
        tools: LangChain tools or plain functions (converted with ``StructuredTool.from_function``).
        router: a router to hold the tool routes (e.g. one on a persistent store, so a restart does
            not re-embed); None builds one in memory.
        k: the most tools bound per turn.
        threshold: only tools scoring at least this are selected (None: the best ``k`` always).
        encoder: the encoder of a new router (bundled model by default).
        always_include: tool names selected on every turn, in addition to the ``k`` chosen by
            meaning (``always`` is the older name). Unknown names raise ``InvalidInputError``.
        max_tools: alias of ``k``.
        context_turns, carry_over: conversation context for :meth:`select_turn_names` (see
            :class:`~synaptoroute_agents.conversation.ConversationOptions`); carry-over is on by
            default: a follow-up keeps the tools of the previous turn that the conversation
            still points at.

    Tool names are kept as given (``"Get Weather"`` works).
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
        always: Sequence[str] = (),
        max_tools: int | None = None,
        context_turns: int = 3,
        carry_over: bool = True,
    ) -> None:
        if isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Sequence):
            raise InvalidTypeError("tools must be a list of tools or functions")
        converted = [_as_tool(t) for t in tools]
        if not converted:
            raise InvalidInputError("ToolInjector needs at least one tool")
        if isinstance(always, str) or isinstance(always_include, str):
            raise InvalidTypeError("always_include must be a list of tool names, not a single string")
        if always and always_include:
            raise InvalidInputError("give always_include or its older name always, not both")
        self.conversation = ConversationOptions(context_turns=context_turns, carry_over=carry_over)
        self.selector = ToolSelector(
            converted,
            router=router,
            k=k,
            max_tools=max_tools,
            threshold=threshold,
            encoder=encoder,
            always_include=list(always_include or always),
        )
        self.tools: dict[str, BaseTool] = {t.name: t for t in converted}
        self.always = list(self.selector.always_include)
        self.k = self.selector.k

    @property
    def router(self) -> SemanticRouter:
        """The router holding one route per tool."""
        return self.selector.router

    # ------------------------------------------------------------------ selection
    def select_names(self, query: str, k: int | None = None) -> list[str]:
        """Names of the ``always_include`` tools, then at most ``k`` tools for ``query``, best first."""
        return self.selector.select(query, k)

    async def aselect_names(self, query: str, k: int | None = None) -> list[str]:
        """Async twin of :meth:`select_names`."""
        return await self.selector.aselect(query, k)

    def select_turn_names(
        self, turns: Sequence[str], previous: Sequence[str] | None = None, k: int | None = None
    ) -> list[str]:
        """Tool names for the latest of ``turns`` (human messages, oldest first), keeping the
        ``previous`` turn's tools on a follow-up (see :meth:`ToolSelector.select_turn`)."""
        return self.selector.select_turn(turns, previous=previous, k=k, options=self.conversation)

    async def aselect_turn_names(
        self, turns: Sequence[str], previous: Sequence[str] | None = None, k: int | None = None
    ) -> list[str]:
        """Async twin of :meth:`select_turn_names`."""
        return await self.selector.aselect_turn(turns, previous=previous, k=k, options=self.conversation)

    def select(self, query: str, k: int | None = None) -> list[BaseTool]:
        """The tools for ``query`` (at most ``k``), best first."""
        return [self.tools[n] for n in self.select_names(query, k)]

    async def aselect(self, query: str, k: int | None = None) -> list[BaseTool]:
        """Async twin of :meth:`select`."""
        return [self.tools[n] for n in await self.aselect_names(query, k)]

    def bind(self, model: Any, query: str, k: int | None = None, **kwargs: Any) -> Any:
        """``model.bind_tools(selected)`` for ``query`` (the model unchanged when none fit)."""
        selected = self.select(query, k)
        return model.bind_tools(selected, **kwargs) if selected else model

    # ------------------------------------------------------------------ bigtool drop-in
    def retrieve_tools_function(
        self, tool_ids: Mapping[str, str] | None = None
    ) -> Callable[[str], list[str]]:
        """A ``retrieve_tools_function`` for langgraph-bigtool's ``create_agent``.

        Args:
            tool_ids: tool name -> id in your bigtool registry; None uses the tool names as ids.
        """
        ids = dict(tool_ids or {})

        def retrieve_tools(query: str) -> list[str]:
            """Retrieve the tools to use, given a search query describing the task."""
            return [ids.get(n, n) for n in self.select_names(query)]

        return retrieve_tools

    def retrieve_tools_coroutine(
        self, tool_ids: Mapping[str, str] | None = None
    ) -> Callable[[str], Awaitable[list[str]]]:
        """The async twin of :meth:`retrieve_tools_function` (``retrieve_tools_coroutine``)."""
        ids = dict(tool_ids or {})

        async def retrieve_tools(query: str) -> list[str]:
            """Retrieve the tools to use, given a search query describing the task."""
            return [ids.get(n, n) for n in await self.aselect_names(query)]

        return retrieve_tools

    # ------------------------------------------------------------------ permission boundary
    def allowed_for_state(self, state: Any) -> set[str] | None:
        """The tool names allowed in ``state``: its ``selected_tools``, else a fresh selection for
        its latest human message; None when the state holds neither (everything is refused)."""
        selected = state_get(state, SELECTED_TOOLS_KEY)
        if selected is not None:
            return set(selected)
        try:
            query = query_from_state(state)
        except InvalidQueryError:
            return None
        return set(self.select_names(query))

    def _refusal(self, request: ToolCallRequest, allowed: set[str] | None) -> ToolMessage | None:
        name = request.tool_call["name"]
        text = refusal_text(name, allowed or ())
        if text is None:
            return None
        return ToolMessage(
            content=text, name=name, tool_call_id=request.tool_call["id"] or "", status="error"
        )

    def wrap_tool_call(
        self, request: ToolCallRequest, execute: Callable[[ToolCallRequest], ToolMessage | Command[Any]]
    ) -> ToolMessage | Command[Any]:
        """ToolNode ``wrap_tool_call`` hook: run the call only if the tool was selected."""
        refusal = self._refusal(request, self.allowed_for_state(request.state))
        return refusal if refusal is not None else execute(request)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        execute: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        """Async twin of :meth:`wrap_tool_call` (``awrap_tool_call``)."""
        allowed: set[str] | None
        selected = state_get(request.state, SELECTED_TOOLS_KEY)
        if selected is not None:
            allowed = set(selected)
        else:
            text = latest_human_text(state_get(request.state, "messages"))
            allowed = set(await self.aselect_names(text)) if text else None
        refusal = self._refusal(request, allowed)
        return refusal if refusal is not None else await execute(request)

    def tool_node(self, **kwargs: Any) -> ToolNode:
        """A ToolNode over every tool, guarded by :meth:`wrap_tool_call` / :meth:`awrap_tool_call`."""
        return ToolNode(
            list(self.tools.values()),
            wrap_tool_call=self.wrap_tool_call,
            awrap_tool_call=self.awrap_tool_call,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"ToolInjector(tools={len(self.tools)}, k={self.k})"


class RoutedAgentState(TypedDict, total=False):
    """State of :func:`create_routed_agent`: the messages and the tools selected this turn."""

    messages: Annotated[list[AnyMessage], add_messages]
    selected_tools: list[str]


def create_routed_agent(
    model: Any,
    tools: Sequence[Any] | ToolInjector,
    *,
    fallback: Any = None,
    k: int = 5,
    threshold: float | None = None,
    router: SemanticRouter | None = None,
    encoder: Encoder | None = None,
    system_prompt: str | None = None,
    checkpointer: Any = None,
) -> Any:
    """A compiled agent graph that binds only the tools fitting each turn.

    Nodes: ``select`` (picks at most ``k`` tools for the latest user message, keeping on a
    follow-up the previous turn's tools the conversation still points at, and records them in
    ``selected_tools``, which a checkpointer keeps across turns), ``agent`` (the model with just those tools bound), ``tools`` (a
    guarded ToolNode: calls to tools not selected this turn get an error ToolMessage) and,
    when ``fallback`` is given, ``fallback``: taken when no tool reaches ``threshold``.

    Args:
        model: a chat model with ``bind_tools``.
        tools: tools or functions, or a ready :class:`ToolInjector`.
        fallback: a node (callable or Runnable), a :class:`DocumentIndex`, or a list of documents
            (a read-only RAG branch is built with :func:`create_rag_fallback`).
        k, threshold, router, encoder: see :class:`ToolInjector`.
        system_prompt: prepended to the messages sent to the model.
        checkpointer: passed to ``compile``.
    """
    injector = (
        tools
        if isinstance(tools, ToolInjector)
        else ToolInjector(tools, router=router, k=k, threshold=threshold, encoder=encoder)
    )
    if not callable(getattr(model, "bind_tools", None)):
        raise InvalidTypeError("model must be a chat model with bind_tools()")
    fallback_node: Any = None
    if fallback is not None:
        if isinstance(fallback, DocumentIndex) or (
            isinstance(fallback, Sequence) and not isinstance(fallback, str | bytes)
        ):
            fallback_node = create_rag_fallback(fallback, encoder=encoder)
        elif callable(fallback) or hasattr(fallback, "invoke"):
            fallback_node = fallback
        else:
            raise InvalidTypeError("fallback must be a node, a DocumentIndex or a list of documents")

    def _prompt(state: Any) -> list[Any]:
        messages = list(state_get(state, "messages") or [])
        return [SystemMessage(system_prompt), *messages] if system_prompt else messages

    def select(state: RoutedAgentState) -> dict[str, Any]:
        turns = human_turns(state.get("messages"))
        previous = state.get(SELECTED_TOOLS_KEY)
        return {SELECTED_TOOLS_KEY: injector.select_turn_names(turns, previous) if turns else []}

    async def aselect(state: RoutedAgentState) -> dict[str, Any]:
        turns = human_turns(state.get("messages"))
        previous = state.get(SELECTED_TOOLS_KEY)
        return {SELECTED_TOOLS_KEY: await injector.aselect_turn_names(turns, previous) if turns else []}

    def _bound(state: RoutedAgentState) -> Any:
        names: list[str] = state.get("selected_tools") or []
        chosen = [injector.tools[n] for n in names if n in injector.tools]
        return model.bind_tools(chosen) if chosen else model

    def agent(state: RoutedAgentState) -> dict[str, Any]:
        reply = _bound(state).invoke(_prompt(state))
        return {"messages": [reply]}

    async def aagent(state: RoutedAgentState) -> dict[str, Any]:
        reply = await _bound(state).ainvoke(_prompt(state))
        return {"messages": [reply]}

    def after_select(state: RoutedAgentState) -> str:
        if fallback_node is not None and not state.get(SELECTED_TOOLS_KEY):
            return "fallback"
        return "agent"

    graph = StateGraph(RoutedAgentState)
    graph.add_node("select", RunnableLambda(select, afunc=aselect, name="select"))
    graph.add_node("agent", RunnableLambda(agent, afunc=aagent, name="agent"))
    graph.add_node("tools", injector.tool_node())
    graph.add_edge(START, "select")
    if fallback_node is not None:
        graph.add_node("fallback", fallback_node)
        graph.add_conditional_edges("select", after_select, {"agent": "agent", "fallback": "fallback"})
        graph.add_edge("fallback", END)
    else:
        graph.add_edge("select", "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer)
