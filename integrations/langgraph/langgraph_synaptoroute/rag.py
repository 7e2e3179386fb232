"""A read-only RAG branch for the router's low-confidence fallback."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig

from synaptoroute_agents import (
    DocumentHit,
    DocumentIndex,
    Encoder,
    InvalidInputError,
    InvalidQueryError,
    validate_positive_int,
)

from ._state import query_from_state

__all__ = ["RagFallback", "create_rag_fallback"]

log = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = (
    "Answer the user's question using only the passages below. If they do not contain the answer, "
    "say that you do not know. You cannot call tools or take actions.\n\nPassages:\n{passages}"
)
NO_PASSAGES = "I could not find anything about that in the documents I can search."

#: The fallback model runs with no callbacks: its raw reply (which may hold a tool call) never
#: reaches a ``stream_mode="messages"`` or ``astream_events`` consumer; the node's answer, with
#: any tool call removed, is what they see.
_UNSTREAMED: RunnableConfig = {"callbacks": [], "tags": ["nostream"]}


def _as_index(documents_or_index: Any, encoder: Encoder | None, store: Any) -> DocumentIndex:
    if isinstance(documents_or_index, DocumentIndex):
        return documents_or_index
    if isinstance(documents_or_index, str | bytes) or not isinstance(documents_or_index, Sequence):
        raise InvalidInputError(
            "documents must be a DocumentIndex or a list of strings / LangChain Documents"
        )
    index = DocumentIndex(encoder, store)
    if documents_or_index:
        index.add(list(documents_or_index))
    return index


class RagFallback(Runnable[Any, dict[str, Any]]):
    """A graph node that answers from retrieved passages and never runs a tool.

    It reads the latest human message, searches the :class:`DocumentIndex`, and returns
    ``{"messages": [AIMessage]}``: with a chat model, the model's answer grounded in the passages
    (system prompt); without one, the passages themselves. No tools are bound, and any tool call
    the model asks for anyway is removed from the answer (its names are kept in
    ``response_metadata["refused_tool_calls"]``), so a ToolNode downstream has nothing to run.
    The model's raw reply is not streamed (it runs without callbacks): stream consumers
    (``stream_mode="messages"``, ``astream_events``) receive only the cleaned answer, whole, when
    the node finishes; tracing callbacks do not see the model call either.
    """

    def __init__(
        self,
        index: DocumentIndex,
        *,
        model: Any = None,
        k: int = 4,
        min_score: float | None = None,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        query_key: str | None = None,
        messages_key: str = "messages",
    ) -> None:
        validate_positive_int(k, "k")
        if model is not None and not isinstance(model, Runnable):
            raise InvalidInputError("model must be a LangChain chat model (with invoke/ainvoke)")
        if "{passages}" not in system_prompt:
            raise InvalidInputError("system_prompt must contain '{passages}'")
        self.name = "rag_fallback"
        self.index = index
        self.model = model
        self.k = k
        self.min_score = min_score
        self.system_prompt = system_prompt
        self.query_key = query_key
        self.messages_key = messages_key

    def _query(self, state: Any) -> str | None:
        try:
            return query_from_state(state, self.query_key, self.messages_key)
        except InvalidQueryError:
            return None

    def _prompt(self, query: str, hits: list[DocumentHit]) -> list[BaseMessage]:
        passages = "\n\n".join(f"[{i + 1}] {h.text}" for i, h in enumerate(hits)) or "(none)"
        return [SystemMessage(self.system_prompt.format(passages=passages)), HumanMessage(query)]

    @staticmethod
    def _metadata(hits: list[DocumentHit]) -> dict[str, Any]:
        return {
            "rag_fallback": True,
            "sources": [{"id": h.id, "score": h.score, "metadata": dict(h.metadata)} for h in hits],
        }

    def _without_tools(self, reply: Any, hits: list[DocumentHit]) -> AIMessage:
        content = reply.content if isinstance(reply, BaseMessage) else str(reply)
        calls = list(getattr(reply, "tool_calls", None) or []) + list(
            getattr(reply, "invalid_tool_calls", None) or []
        )
        meta = dict(getattr(reply, "response_metadata", None) or {})
        meta.update(self._metadata(hits))
        if calls:
            names = [str(c.get("name")) for c in calls]
            log.warning("the fallback model asked for tool call(s) %s; refused (read-only branch)", names)
            meta["refused_tool_calls"] = names
            if not content:
                content = "I can only answer from the documents here; I cannot run tools in this branch."
        return AIMessage(content=content, response_metadata=meta, id=getattr(reply, "id", None))

    def _passages_answer(self, hits: list[DocumentHit]) -> AIMessage:
        text = "\n\n".join(h.text for h in hits) if hits else NO_PASSAGES
        return AIMessage(content=text, response_metadata=self._metadata(hits))

    def __call__(self, state: Any) -> dict[str, Any]:
        query = self._query(state)
        if query is None:
            return {"messages": [AIMessage(content=NO_PASSAGES, response_metadata=self._metadata([]))]}
        hits = self.index.search(query, self.k, min_score=self.min_score)
        if self.model is None:
            return {"messages": [self._passages_answer(hits)]}
        reply = self.model.invoke(self._prompt(query, hits), config=_UNSTREAMED)
        return {"messages": [self._without_tools(reply, hits)]}

    async def acall(self, state: Any) -> dict[str, Any]:
        query = self._query(state)
        if query is None:
            return {"messages": [AIMessage(content=NO_PASSAGES, response_metadata=self._metadata([]))]}
        hits = await self.index.asearch(query, self.k, min_score=self.min_score)
        if self.model is None:
            return {"messages": [self._passages_answer(hits)]}
        reply = await self.model.ainvoke(self._prompt(query, hits), config=_UNSTREAMED)
        return {"messages": [self._without_tools(reply, hits)]}

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        return self(input)

    async def ainvoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        return await self.acall(input)


def create_rag_fallback(
    documents_or_index: Any,
    *,
    model: Any = None,
    k: int = 4,
    min_score: float | None = None,
    encoder: Encoder | None = None,
    store: Any = None,
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    query_key: str | None = None,
) -> RagFallback:
    """A read-only RAG node for the router's fallback edge.

    Args:
        documents_or_index: a :class:`~synaptoroute_agents.DocumentIndex`, or a list of strings /
            LangChain ``Document`` objects to index (with ``encoder`` and ``store``).
        model: optional chat model; it answers grounded in the passages, with no tools bound.
            Without one, the node answers with the passages themselves.
        k: passages to retrieve.
        min_score: drop passages scoring below this cosine.
        encoder, store: for a new index built from a list (bundled model, in memory by default).
        system_prompt: must contain ``{passages}``.
        query_key: read the query from ``state[query_key]`` instead of the latest human message.
    """
    index = _as_index(documents_or_index, encoder, store)
    return RagFallback(
        index, model=model, k=k, min_score=min_score, system_prompt=system_prompt, query_key=query_key
    )
