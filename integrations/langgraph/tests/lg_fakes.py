"""Fake chat models for the LangGraph integration tests (no network)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage


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
