"""LangGraph nodes for synaptoroute-agents.

- :class:`RouterNode`: a zero-token semantic router as a conditional edge (sync and async), with a
  fallback label when the router abstains; :func:`router_command_node` routes with ``Command``.
- :func:`create_rag_fallback`: a read-only RAG branch (no tools) for the fallback edge.
- :class:`ToolInjector` and :func:`create_routed_agent`: bind only the few tools that fit each
  turn out of hundreds, and refuse calls to the others.
"""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
    import langgraph.graph  # noqa: F401
except ImportError as exc:  # pragma: no cover - only without the framework installed
    raise ImportError(
        "langgraph-synaptoroute needs LangGraph and LangChain Core: "
        "pip install langgraph-synaptoroute (or: pip install 'langgraph>=1.2,<2' 'langchain-core>=1.0,<2')"
    ) from exc

from ._state import latest_human_text, query_from_state
from .rag import RagFallback, create_rag_fallback
from .router_node import RouterCommandNode, RouterNode, router_command_node
from .tools import SELECTED_TOOLS_KEY, RoutedAgentState, ToolInjector, create_routed_agent

__all__ = [
    "RouterNode",
    "RouterCommandNode",
    "router_command_node",
    "RagFallback",
    "create_rag_fallback",
    "ToolInjector",
    "RoutedAgentState",
    "create_routed_agent",
    "SELECTED_TOOLS_KEY",
    "latest_human_text",
    "query_from_state",
]
