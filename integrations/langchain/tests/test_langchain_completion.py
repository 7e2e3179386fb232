"""chat_completion: a chat model as the engine's complete(prompt) -> text."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from langchain_synaptoroute import chat_completion

from synaptoroute_agents import InvalidTypeError, Route, generate_utterances


def test_chat_completion_returns_the_reply_text() -> None:
    complete = chat_completion(FakeListChatModel(responses=["one\ntwo"]))
    assert complete("write two lines") == "one\ntwo"
    blocks = RunnableLambda(
        lambda _: AIMessage(content=[{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])
    )
    assert chat_completion(blocks)("x") == "a\nb"  # text blocks become lines for the parser


def test_chat_completion_feeds_generate_utterances() -> None:
    seen: list[str] = []
    model = RunnableLambda(lambda prompt: seen.append(prompt) or "Is it going to rain in Oslo tomorrow?")
    route = Route("get_weather", ["what's the weather"], description="Weather forecast")
    assert generate_utterances(route, chat_completion(model), n=3) == [
        "Is it going to rain in Oslo tomorrow?"
    ]
    assert "get_weather" in seen[0] and "Weather forecast" in seen[0]


def test_chat_completion_refuses_what_is_not_a_runnable() -> None:
    with pytest.raises(InvalidTypeError):
        chat_completion(object())  # type: ignore[arg-type]
