"""SynaptoRouteToolRetriever: the few tools that fit a request, for LlamaIndex agents with many tools.

Inside a workflow agent (``FunctionAgent``, ``ReActAgent``, ``AgentWorkflow``) the retriever is
called from the agent's steps, so it reads the running ``Context``
(``Context.get_step_context()``): the human turns in the agent's memory decide a follow-up (the
engine's :mod:`~synaptoroute_agents.conversation`, as on the LangGraph and LangChain faces), the
tools offered on the turn are kept in ``ctx.store`` (visible, serialized with the context), and
when the agent looks up a tool the model called that was not offered on the turn, the retriever
hands it a stand-in that refuses the call, so the tool never runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._common import require, tool_mapping

require("llama_index.core")

from llama_index.core.base.base_retriever import BaseRetriever  # noqa: E402
from llama_index.core.base.llms.types import ChatMessage, MessageRole  # noqa: E402
from llama_index.core.memory.types import BaseMemory  # noqa: E402
from llama_index.core.objects.base import ObjectRetriever  # noqa: E402
from llama_index.core.schema import QueryBundle, QueryType  # noqa: E402
from llama_index.core.tools.types import AsyncBaseTool, BaseTool, ToolMetadata, ToolOutput  # noqa: E402
from llama_index.core.workflow import Context, WorkflowRuntimeError  # noqa: E402

from synaptoroute_agents import (  # noqa: E402
    ConversationOptions,
    Encoder,
    InvalidInputError,
    InvalidTypeError,
    LazyEncoder,
    SemanticRouter,
    ToolSelector,
    refusal_text,
    resolve_k,
)

__all__ = ["SynaptoRouteToolRetriever"]


#: The ``ctx.store`` key the tools offered on the turn are kept under (by default).
STATE_KEY = "synaptoroute_tools"


def _step_context() -> Context | None:
    """The ``Context`` of the workflow step running now, or None outside one."""
    try:
        return Context.get_step_context()
    except WorkflowRuntimeError:
        return None


def _text(message: ChatMessage) -> str:
    return message.content or ""


class RefusedTool(AsyncBaseTool):
    """Stands in for a tool the model called but was not offered on the turn: calling it runs
    nothing and returns an error :class:`ToolOutput` that says so (the agent hands it to the model)."""

    def __init__(self, name: str, offered: Sequence[str]) -> None:
        self._metadata = ToolMetadata(name=name, description=f"{name} was not offered on this turn")
        self._offered = list(offered)

    @property
    def metadata(self) -> ToolMetadata:
        return self._metadata

    def _refuse(self, kwargs: dict[str, Any]) -> ToolOutput:
        name = self._metadata.get_name()
        text = refusal_text(name, self._offered) or ""
        return ToolOutput(content=text, tool_name=name, raw_input=kwargs, raw_output=None, is_error=True)

    def call(self, *args: Any, **kwargs: Any) -> ToolOutput:
        return self._refuse(kwargs)

    async def acall(self, *args: Any, **kwargs: Any) -> ToolOutput:
        return self._refuse(kwargs)


def _query_text(query: QueryType) -> str:
    if isinstance(query, QueryBundle):
        return query.query_str
    if isinstance(query, str):
        return query
    raise InvalidTypeError(f"query must be a str or a QueryBundle, not {type(query).__name__}")


class SynaptoRouteToolRetriever(ObjectRetriever[BaseTool]):
    """Retrieve the tools that fit a request, for agents that have too many tools to offer at once.

    An ``ObjectRetriever`` of tools: pass it as ``tool_retriever=`` to a LlamaIndex agent
    (``FunctionAgent``, ``ReActAgent``, ...) instead of ``tools=``. Each tool becomes one route
    seeded from its name, description and argument descriptions; selection is the engine's
    :class:`ToolSelector` (the same one the LangGraph and LangChain faces use). No LLM call, no
    network.

    Args:
        tools: LlamaIndex tools (``FunctionTool``, ``QueryEngineTool``, ...) with unique names.
        k: how many tools :meth:`retrieve` returns at most.
        threshold: when set, only tools scoring at least this are returned.
        always_include: names of tools returned on every call, besides the ``k`` selected ones.
        router: where the tool routes are kept (a persistent store keeps them across restarts);
            None keeps them in memory.
        encoder: the encoder of a new in-memory router (the bundled offline model by default).
        max_tools: alias of ``k``.
        context_turns: the most human turns of the agent's memory a follow-up is decided from.
        carry_over: when the latest message picks no tool confidently, decide from the recent
            turns and keep the previous turn's tools they still rank (default on).
        query_from: a hook ``query_from(messages) -> str`` (the memory's messages) giving the one
            text to select tools for (no context is added).
        guard: refuse calls to tools that were not offered on the turn (default on). Off, the
            agent's lookup of a called tool is an ordinary query for its name, so the tool runs.
        state_key: where in ``ctx.store`` the tools offered on the turn are kept.

    **In an agent** (``await retriever.aretrieve(...)`` from the agent's steps, with the running
    ``Context``) the retriever reads the human turns in the agent's memory: a follow-up that picks
    no tool on its own ("and make it four people") is decided with the request before it, a new
    request switches. The tools offered on the turn are kept in ``ctx.store[state_key]``
    (``{"turn": ..., "query": ..., "offered": [...]}``), so a checkpointed ``Context`` keeps them.
    When the agent looks up a tool the model called (it asks the retriever again with the tool's
    name) and that tool was not offered on the turn, it gets a :class:`RefusedTool` in its place:
    the call returns an error result that says so, and the tool never runs. **Outside an agent**
    (no running ``Context``, or the sync :meth:`retrieve`) only the query counts.

    Tool names are kept as given (``"Get Weather"`` works). An empty query (LlamaIndex agents pass
    ``""`` when there is no user text) returns only the ``always_include`` tools.
    """

    def __init__(
        self,
        tools: Sequence[BaseTool],
        k: int | None = None,
        *,
        threshold: float | None = None,
        always_include: Sequence[str] = (),
        router: SemanticRouter | None = None,
        encoder: Encoder | None = None,
        max_tools: int | None = None,
        context_turns: int = 2,
        carry_over: bool = True,
        query_from: Callable[[list[ChatMessage]], str] | None = None,
        guard: bool = True,
        state_key: str = STATE_KEY,
    ) -> None:
        k = resolve_k(k, max_tools)
        self.conversation = ConversationOptions(context_turns=context_turns, carry_over=carry_over)
        if query_from is not None and not callable(query_from):
            raise InvalidTypeError("query_from must be a function messages -> str")
        if not isinstance(guard, bool):
            raise InvalidTypeError("guard must be True or False")
        if not isinstance(state_key, str) or not state_key:
            raise InvalidTypeError("state_key must be a non-empty string")
        self.query_from = query_from
        self.guard = guard
        self.state_key = state_key
        if isinstance(tools, str | bytes) or not isinstance(tools, Sequence):
            raise InvalidTypeError("tools must be a list of LlamaIndex tools")
        if isinstance(always_include, str):
            raise InvalidTypeError("always_include must be a list of tool names, not a single string")
        by_name: dict[str, BaseTool] = {}
        routes = []
        for tool in tools:
            metadata = getattr(tool, "metadata", None)
            name = getattr(metadata, "name", None)
            if not isinstance(name, str) or not name:
                raise InvalidInputError(
                    f"every tool needs metadata.name (got {type(tool).__name__} without one)"
                )
            if name in by_name:
                raise InvalidInputError(f"two tools are named {name!r}; tool names must be unique")
            by_name[name] = tool
            routes.append(tool_mapping(metadata))  # the selector seeds it, keeping the name as given
        missing = sorted(set(always_include) - set(by_name))
        if missing:
            raise InvalidInputError(f"always_include names unknown tool(s): {', '.join(missing)}")
        if router is not None and encoder is not None:
            raise InvalidInputError("encoder is for a new router; the given router brings its own")
        self._tools = by_name
        self._always = [by_name[n] for n in dict.fromkeys(always_include)]
        self._encoder = LazyEncoder(encoder) if router is None else None
        self.selector = ToolSelector(
            routes,
            router=router,
            k=k,
            threshold=threshold,
            encoder=self._encoder.get() if self._encoder is not None else None,
        )
        self._node_postprocessors = []

    @property
    def k(self) -> int:
        return self.selector.k

    @property
    def tools(self) -> list[BaseTool]:
        """Every tool, in the order given."""
        return list(self._tools.values())

    @property
    def retriever(self) -> BaseRetriever:
        raise NotImplementedError(
            "SynaptoRouteToolRetriever selects tools directly; it has no node retriever"
        )

    @property
    def object_node_mapping(self) -> Any:
        raise NotImplementedError("SynaptoRouteToolRetriever selects tools directly; it has no node mapping")

    def _assemble(self, names: list[str]) -> list[BaseTool]:
        always = {id(t) for t in self._always}
        return [*(self._tools[n] for n in names if id(self._tools[n]) not in always), *self._always]

    def retrieve(self, str_or_query_bundle: QueryType) -> list[BaseTool]:
        """The best ``k`` tools for the query (best first), then the ``always_include`` tools."""
        text = _query_text(str_or_query_bundle)
        if not text.strip():
            return list(self._always)
        return self._assemble(self.selector.select(text))

    async def aretrieve(self, str_or_query_bundle: QueryType) -> list[BaseTool]:
        """Async twin of :meth:`retrieve`; the model runs in a worker thread.

        Called from a workflow agent's step, it reads the conversation and guards tool calls
        (see the class docstring)."""
        text = _query_text(str_or_query_bundle)
        if not text.strip():
            return list(self._always)
        ctx = _step_context()
        if ctx is None:
            return self._assemble(await self.selector.aselect(text))
        return await self._in_agent(ctx, text)

    # ------------------------------------------------------------------ inside an agent
    async def _in_agent(self, ctx: Context, text: str) -> list[BaseTool]:
        states: dict[str, Any] = dict(await ctx.store.get(self.state_key, default=None) or {})
        agent = str(await ctx.store.get("current_agent_name", default=None) or "")
        # one record per agent of a multi-agent workflow; a single agent keeps it at the top
        record = states.get(agent) if agent else (states or None)
        # the agent passes the user's message when it picks the tools for a step, and the tool's
        # name when it looks up a tool the model called (then nothing is selected or recorded)
        asked = await ctx.store.get("user_msg_str", default=None)
        if record is not None and isinstance(asked, str) and text != asked:
            if not self.guard:  # no guard: the name is an ordinary query, as outside an agent
                return self._assemble(await self.selector.aselect(text))
            return self._lookup(text, list(record.get("offered", [])))
        messages = await self._messages(ctx)
        turn = [sum(m.role == MessageRole.USER for m in messages), text]
        if record is not None and record.get("turn") == turn:
            # the agent asks again at each step of the same turn: the same tools
            return self._assemble([n for n in record.get("offered", []) if n in self._tools])
        turns = self._turns(messages, text, list(record.get("turns", [])) if record is not None else [])
        previous = list(record.get("offered", [])) if record is not None else None
        offered = await self.selector.aselect_turn(turns, previous=previous, options=self.conversation)
        new = {
            "turn": turn,
            "query": text,
            "turns": turns[-self.conversation.context_turns :],
            "offered": offered,
        }
        if agent:
            states[agent] = new
        else:
            states = new
        await ctx.store.set(self.state_key, states)
        return self._assemble([n for n in offered if n in self._tools])

    async def _messages(self, ctx: Context) -> list[ChatMessage]:
        memory = await ctx.store.get("memory", default=None)
        if not isinstance(memory, BaseMemory):
            return []
        return list(await memory.aget_all())

    def _turns(self, messages: list[ChatMessage], text: str, kept: list[str]) -> list[str]:
        """The human turns to decide from, oldest first; the query is the latest.

        The agent's memory is read first; when it holds no earlier human turn (a new memory, or
        a ``Context`` restored without its memory), the turns kept in the state are used."""
        if self.query_from is not None:
            chosen = self.query_from(messages)
            if not isinstance(chosen, str):
                raise InvalidTypeError(f"query_from must return a str, not {type(chosen).__name__}")
            return [chosen]
        human = [t for t in (_text(m) for m in messages if m.role == MessageRole.USER) if t.strip()]
        # the agent put the current message in its memory before asking (its last human turn,
        # possibly wrapped in the agent's state prompt)
        if human and text.strip() in human[-1]:
            human = human[:-1]
        return [*(human or kept), text]

    def _lookup(self, name: str, offered: list[str]) -> list[BaseTool]:
        """The tools the agent may call for the model's call to ``name`` on this turn: the offered
        ones, and a :class:`RefusedTool` in place of one of ours that was not offered (a tool
        that is not ours, such as the agent's own ``tools=`` or a handoff, is left to the agent)."""
        tools: list[BaseTool] = [self._tools[n] for n in offered if n in self._tools]
        if name in self._tools and name not in offered:
            tools.append(RefusedTool(name, offered))
        return tools

    def __repr__(self) -> str:
        return f"SynaptoRouteToolRetriever(tools={len(self._tools)}, k={self.k})"
