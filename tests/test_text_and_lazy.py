"""message_text (one reader of chat message content) and LazyEncoder (an encoder built on first use)."""

from __future__ import annotations

import pytest

from synaptoroute_agents import InvalidTypeError, LazyEncoder, message_text
from synaptoroute_agents.encoders.base import FeatureEncoder, head_features_of


class _Msg:
    def __init__(self, content: object) -> None:
        self.content = content


def test_message_text_reads_strings_blocks_dicts_and_objects() -> None:
    blocks = [
        "hello",
        {"type": "image_url", "image_url": "x"},
        {"type": "text", "text": "world"},
        {"type": "text"},
    ]
    assert message_text("plain") == "plain"
    assert message_text(blocks) == "hello world"
    assert message_text(blocks, sep="") == "helloworld"
    assert message_text({"role": "user", "content": blocks}, sep="\n") == "hello\nworld"
    assert message_text(_Msg("from an object")) == "from an object"
    assert message_text(_Msg(blocks)) == "hello world"
    assert message_text(_Msg(None)) == ""
    assert message_text(object()) == ""
    assert message_text([{"type": "image_url"}]) == ""


def test_message_text_matches_langchain_text() -> None:
    messages = pytest.importorskip("langchain_core.messages")
    msg = messages.HumanMessage(
        content=["a", {"type": "text", "text": "b"}, {"type": "image_url", "image_url": {"url": "u"}}]
    )
    assert message_text(msg, sep="") == msg.text


def test_lazy_encoder_builds_on_first_use_only(encoder) -> None:
    given = LazyEncoder(encoder)
    assert given.loaded and given.get() is encoder
    lazy = LazyEncoder()
    assert not lazy.loaded and "not loaded" in repr(lazy)
    assert head_features_of(lazy) is None and not lazy.loaded  # a holder, not an encoder: builds nothing
    assert lazy.get().model_id == encoder.model_id and lazy.loaded and lazy.get() is lazy.get()
    with pytest.raises(InvalidTypeError):
        LazyEncoder(object())  # type: ignore[arg-type]


def test_feature_encoder_is_a_declared_capability(encoder) -> None:
    assert isinstance(encoder, FeatureEncoder)
    assert head_features_of(encoder) == encoder.head_features

    class Plain:
        model_id = "plain"
        dim = 3

        def embed(self, texts):  # noqa: ANN001, ANN202
            raise NotImplementedError

    assert not isinstance(Plain(), FeatureEncoder) and head_features_of(Plain()) is None
