"""LlamaIndex integration for synaptoroute-agents.

- :class:`SynaptoRouteSelector`: a ``BaseSelector`` for ``RouterQueryEngine`` and ``RouterRetriever``
  that picks a choice with a local semantic router (no LLM call, no network).
- :class:`SynaptoRouteToolRetriever`: an ``ObjectRetriever`` of tools for agents with many tools.
"""

from llama_index.selectors.synaptoroute.retriever import SynaptoRouteToolRetriever
from llama_index.selectors.synaptoroute.selector import SynaptoRouteSelector

__all__ = ["SynaptoRouteSelector", "SynaptoRouteToolRetriever"]
