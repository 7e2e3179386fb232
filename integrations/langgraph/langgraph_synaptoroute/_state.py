"""Reading the user's query out of a LangGraph state (MessagesState-style or a plain key)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from synaptoroute_agents import InvalidQueryError, InvalidTypeError, message_text

__all__ = ["human_turns", "latest_human_text", "query_from_state", "state_get", "turns_from_state"]

_HUMAN = {"human", "user"}


def state_get(state: Any, key: str, default: Any = None) -> Any:
    """``state[key]`` for dict states, ``state.key`` for pydantic/dataclass states."""
    if isinstance(state, Mapping):
        return state.get(key, default)
    return getattr(state, key, default)


def _role_and_text(message: Any) -> tuple[str | None, str]:
    """(role, text) of a BaseMessage, a dict message or a ``(role, text)`` tuple."""
    if isinstance(message, str):
        return "human", message
    if isinstance(message, tuple) and len(message) == 2:
        return str(message[0]).lower(), message_text(message[1])
    if isinstance(message, Mapping):
        role = message.get("role", message.get("type"))
        return (str(role).lower() if role is not None else None), message_text(message)
    role = getattr(message, "type", None)
    return (str(role).lower() if role is not None else None), message_text(message)


def latest_human_text(messages: Any) -> str | None:
    """The text of the most recent human/user message, or None when there is none."""
    if messages is None:
        return None
    if isinstance(messages, str):
        return messages
    if not isinstance(messages, Sequence):
        raise InvalidTypeError(f"messages must be a list, not {type(messages).__name__}")
    for message in reversed(messages):
        role, text = _role_and_text(message)
        if role in _HUMAN and text.strip():
            return text
    return None


def query_from_state(state: Any, query_key: str | None = None, messages_key: str = "messages") -> str:
    """The query to route: ``state[query_key]`` if given, else the latest human message.

    Raises:
        InvalidQueryError: there is no usable query in the state.
    """
    if isinstance(state, Sequence) and not isinstance(state, str | bytes):
        text = latest_human_text(state)  # a bare list of messages
    elif query_key is not None:
        value = state_get(state, query_key)
        if value is None:
            raise InvalidQueryError(f"the state has no {query_key!r} value to route")
        text = value if isinstance(value, str) else latest_human_text(value)
    else:
        text = latest_human_text(state_get(state, messages_key))
    if text is None or not str(text).strip():
        raise InvalidQueryError("the state holds no human message to route")
    return str(text)


def human_turns(messages: Any) -> list[str]:
    """The texts of every non-blank human/user message, oldest first."""
    if messages is None:
        return []
    if isinstance(messages, str):
        return [messages] if messages.strip() else []
    if not isinstance(messages, Sequence):
        raise InvalidTypeError(f"messages must be a list, not {type(messages).__name__}")
    turns = []
    for message in messages:
        role, text = _role_and_text(message)
        if role in _HUMAN and text.strip():
            turns.append(text)
    return turns


def turns_from_state(
    state: Any,
    query_key: str | None = None,
    messages_key: str = "messages",
    query_from: Callable[[Any], str] | None = None,
) -> list[str]:
    """The human turns to decide from, oldest first (the latest last).

    ``query_from(state) -> str`` (a user hook) or ``state[query_key]`` give one turn; otherwise
    every human message of ``state[messages_key]`` is a turn.

    Raises:
        InvalidQueryError: there is no usable query in the state.
    """
    if query_from is not None:
        text = query_from(state)
        if not isinstance(text, str):
            raise InvalidTypeError(f"query_from must return a str, not {type(text).__name__}")
        turns = [text] if text.strip() else []
    elif isinstance(state, Sequence) and not isinstance(state, str | bytes):
        turns = human_turns(state)
    elif query_key is not None:
        return [query_from_state(state, query_key, messages_key)]
    else:
        turns = human_turns(state_get(state, messages_key))
    if not turns:
        raise InvalidQueryError("the state holds no human message to route")
    return turns
