"""Text out of chat messages: one helper the seeding adapters and every framework face share.

No framework is imported: a message is read through its ``content`` (an attribute, as on
LangChain and LlamaIndex message objects, or a ``"content"`` key of a dict message), and content
is a string or a list of content blocks (strings or ``{"type": "text", "text": ...}`` mappings;
other blocks, such as images or tool calls, carry no text and are skipped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["content_text", "message_text"]


def content_text(content: Any, *, sep: str = " ") -> str:
    """The text of a message's content: a string as is, the text blocks of a list joined by ``sep``.

    Empty text blocks are dropped before joining. Anything else (None, an image block alone) has
    no text: ``""``.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, bytes | bytearray):
        parts: list[str] = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and block.get("type") == "text":
                parts.append(str(block.get("text") or ""))
        return sep.join(p for p in parts if p)
    return ""


def message_text(message: Any, *, sep: str = " ") -> str:
    """The text of a message or of a message's content.

    Args:
        message: a string; a list of content blocks; a dict message ``{"role": ..., "content":
            ...}``; or a message object (LangChain ``BaseMessage``, LlamaIndex ``ChatMessage``...)
            whose ``content`` is a string or a list of content blocks.
        sep: joins the text blocks of list content (LangChain's own ``.text`` uses ``""``).

    Returns:
        The text; ``""`` when there is none (no content, only image or tool-call blocks).
    """
    if isinstance(message, str):
        return message
    if isinstance(message, Mapping):
        return content_text(message.get("content"), sep=sep)
    if isinstance(message, Sequence) and not isinstance(message, bytes | bytearray):
        return content_text(message, sep=sep)
    return content_text(getattr(message, "content", None), sep=sep)
