"""chat_completion: a LangChain chat model as the ``complete(prompt) -> text`` the engine takes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._deps import require

require("langchain_core", "langchain-core")

from langchain_core.runnables import Runnable  # noqa: E402

from synaptoroute_agents import InvalidTypeError, message_text  # noqa: E402

__all__ = ["chat_completion"]


def chat_completion(model: Runnable[Any, Any]) -> Callable[[str], str]:
    """Adapt a chat model (or any Runnable that answers a prompt) to ``complete(prompt) -> text``.

    The engine's utterance generation (``seed_route(..., complete=...)``,
    ``routes_from_functions(..., complete=...)``, ``generate_utterances(route, complete)``) takes
    a plain function so that it imports no framework; this is that function for LangChain.

    Args:
        model: a LangChain chat model such as ``ChatOpenAI(...)``, or any Runnable that accepts a
            string and returns a message or a string.

    Returns:
        A function that sends the prompt as one human message and returns the reply's text (its
        text blocks joined by new lines).

    Raises:
        InvalidTypeError: ``model`` is not a LangChain Runnable.
    """
    if not isinstance(model, Runnable):
        raise InvalidTypeError(
            f"model must be a LangChain chat model or Runnable, not {type(model).__name__}"
        )

    def complete(prompt: str) -> str:
        return message_text(model.invoke(prompt), sep="\n")

    return complete
