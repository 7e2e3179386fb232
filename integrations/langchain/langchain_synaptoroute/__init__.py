"""LangChain integration for synaptoroute-agents.

A local, zero-token semantic router as LangChain parts:

- :class:`SynaptoRouteTool`: a tool whose answer is the chosen route (content) and the whole
  decision (artifact).
- :class:`SynaptoRouteRunnable` / :func:`as_runnable`: a Runnable that sends its input to one of
  several runnables by route, and to a fallback when the router abstains.
- :class:`SynaptoRouteEmbeddings`: LangChain ``Embeddings`` over the bundled offline encoder (or any
  synaptoroute encoder), for any LangChain vector store.
- :class:`SynaptoRouteToolSelectionMiddleware` (``pip install 'langchain-synaptoroute[agents]'``):
  narrows the tools offered to the model on each turn of a ``langchain.agents.create_agent`` agent.
- :func:`chat_completion`: a chat model as the ``complete(prompt) -> text`` function the engine's
  utterance generation takes (``seed_route(tool, complete=chat_completion(model))``).

Names are imported on first use, so ``import langchain_synaptoroute`` itself needs no framework.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .completion import chat_completion
    from .embeddings import SynaptoRouteEmbeddings
    from .middleware import SynaptoRouteToolSelectionMiddleware
    from .runnables import SynaptoRouteRunnable, as_runnable, query_from_input
    from .tools import SynaptoRouteTool

__all__ = [
    "SynaptoRouteTool",
    "SynaptoRouteRunnable",
    "as_runnable",
    "query_from_input",
    "SynaptoRouteEmbeddings",
    "SynaptoRouteToolSelectionMiddleware",
    "chat_completion",
]

_WHERE = {
    "SynaptoRouteTool": ".tools",
    "SynaptoRouteRunnable": ".runnables",
    "as_runnable": ".runnables",
    "query_from_input": ".runnables",
    "SynaptoRouteEmbeddings": ".embeddings",
    "SynaptoRouteToolSelectionMiddleware": ".middleware",
    "chat_completion": ".completion",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
