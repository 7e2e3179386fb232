"""SynaptoRouteToolRetriever: the few tools that fit a request, for LlamaIndex agents with many tools."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._common import require, tool_mapping

require("llama_index.core")

from llama_index.core.base.base_retriever import BaseRetriever  # noqa: E402
from llama_index.core.objects.base import ObjectRetriever  # noqa: E402
from llama_index.core.schema import QueryBundle, QueryType  # noqa: E402
from llama_index.core.tools.types import BaseTool  # noqa: E402

from synaptoroute_agents import (  # noqa: E402
    Encoder,
    InvalidInputError,
    InvalidTypeError,
    LazyEncoder,
    SemanticRouter,
    ToolSelector,
    resolve_k,  # noqa: E402
)

__all__ = ["SynaptoRouteToolRetriever"]


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

    Tool names are kept as given (``"Get Weather"`` works). An empty query (LlamaIndex agents pass ``""`` when there is no user text) returns only the
    ``always_include`` tools.
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
    ) -> None:
        k = resolve_k(k, max_tools)
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
        """Async twin of :meth:`retrieve`; the model runs in a worker thread."""
        text = _query_text(str_or_query_bundle)
        if not text.strip():
            return list(self._always)
        return self._assemble(await self.selector.aselect(text))

    def __repr__(self) -> str:
        return f"SynaptoRouteToolRetriever(tools={len(self._tools)}, k={self.k})"
