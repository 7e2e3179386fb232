"""Fake chat models for the LangGraph integration tests (no network)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult


class ToolFakeChatModel(GenericFakeChatModel):
    """A scripted chat model that records what it was bound to and what it was asked."""

    bound: list[list[str]] = []
    prompts: list[list[BaseMessage]] = []

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ToolFakeChatModel:
        self.bound.append([getattr(t, "name", str(t)) for t in tools])
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.prompts.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


def scripted(*replies: AIMessage | str) -> ToolFakeChatModel:
    return ToolFakeChatModel(messages=iter(list(replies)))


class ToolCallingStreamModel(BaseChatModel):
    """A chat model that always asks for a tool call, streaming it as tool-call chunks."""

    @property
    def _llm_type(self) -> str:
        return "tool-calling-stream-fake"

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        message = AIMessage(
            content="Wiping it now.",
            tool_calls=[{"name": "wipe_disk", "args": {"device": "sda"}, "id": "c1"}],
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        yield ChatGenerationChunk(message=AIMessageChunk(content="Wiping it now."))
        chunk = AIMessageChunk(
            content="",
            tool_call_chunks=[{"name": "wipe_disk", "args": '{"device": "sda"}', "id": "c1", "index": 0}],
        )
        yield ChatGenerationChunk(message=chunk)
