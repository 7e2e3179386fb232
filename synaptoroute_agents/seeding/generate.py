"""More utterances for a route from a language model, kept only when they pass validation.

No framework is imported: the model is any ``complete(prompt) -> text`` callable. The LangChain
integration adapts a chat model to one (``langchain_synaptoroute.chat_completion``); any other
client (an HTTP call, a local model) is a one-line function.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from ..encoders.base import Encoder, embed_in_batches
from ..encoders.lazy import LazyEncoder
from ..errors import InvalidInputError, InvalidTypeError
from ..routes import Route, clean_text, validate_positive_int
from .docstrings import split_identifier

__all__ = ["Complete", "generation_prompt", "generate_for_route", "parse_generated", "validate_generated"]

#: A language model as a function: a prompt in, the model's text out.
Complete = Callable[[str], str]

_PROMPT = (
    "You generate test data. Answer with plain lines only.\n\n"
    "You write realistic user requests for a tool-using assistant.\n"
    "Tool name: {name}\nWhat the tool does: {description}\n"
    "Known example requests:\n{examples}\n\n"
    "Write {n} different requests a user could type that this tool answers. Vary the wording, "
    "do not mention the tool's name, one request per line, no numbering, no quotes, nothing else."
)
_LIST_PREFIX = re.compile(r"^\s*(?:[-*\u2022]+|\d+[.):]|\(\d+\))\s*")


def generation_prompt(route: Route, n: int) -> str:
    """The prompt that asks a model for ``n`` requests for ``route``."""
    examples = "\n".join(f"- {u}" for u in route.utterances[:8])
    return _PROMPT.format(
        name=route.name, description=route.description or split_identifier(route.name), examples=examples, n=n
    )


def parse_generated(text: str) -> list[str]:
    """Model output -> candidate utterances (one per line; bullets, numbers and quotes removed)."""
    out = []
    for line in text.splitlines():
        s = _LIST_PREFIX.sub("", line).strip().strip("\"'`").strip()
        if s:
            out.append(s)
    return out


def validate_generated(
    route: Route,
    candidates: Sequence[str],
    *,
    encoder: Encoder | None = None,
    others: Sequence[Route] = (),
    n: int | None = None,
    min_chars: int = 8,
    max_chars: int = 200,
) -> list[str]:
    """Keep generated utterances that are new, of sensible length, and nearer their own route.

    An utterance is dropped when it repeats one already kept (case-insensitively), is shorter than
    ``min_chars`` or longer than ``max_chars``, or (with ``others`` and an encoder) its nearest
    utterance belongs to another route rather than to ``route``.
    """
    seen = {u.lower() for u in route.utterances}
    kept: list[str] = []
    for raw in candidates:
        try:
            text = clean_text(raw, what="utterance")
        except InvalidInputError:
            continue
        if not min_chars <= len(text) <= max_chars or text.lower() in seen:
            continue
        seen.add(text.lower())
        kept.append(text)
    if kept and others:
        enc = LazyEncoder(encoder).get()
        own = embed_in_batches(enc, list(route.utterances))
        other_texts = [u for r in others for u in r.utterances]
        other_vecs = embed_in_batches(enc, other_texts)
        cand = embed_in_batches(enc, kept)
        own_best = (cand @ own.T).max(axis=1)
        other_best = (cand @ other_vecs.T).max(axis=1) if len(other_texts) else np.full(len(kept), -1.0)
        kept = [t for t, a, b in zip(kept, own_best, other_best, strict=True) if a >= b]
    return kept[:n] if n is not None else kept


def generate_for_route(
    route: Route,
    complete: Complete,
    n: int = 10,
    *,
    encoder: Encoder | None = None,
    others: Sequence[Route] = (),
    min_chars: int = 8,
    max_chars: int = 200,
) -> list[str]:
    """Ask ``complete`` for ``n`` user requests for ``route``, then validate them.

    See :func:`synaptoroute_agents.seeding.generate_utterances`, which also accepts the objects
    :func:`~synaptoroute_agents.seeding.seed_route` reads.
    """
    validate_positive_int(n, "n")
    if not callable(complete):
        raise InvalidTypeError("complete must be a callable taking a prompt and returning the model's text")
    reply = complete(generation_prompt(route, n))
    if not isinstance(reply, str):
        raise InvalidTypeError(f"complete must return a str, not {type(reply).__name__}")
    return validate_generated(
        route,
        parse_generated(reply),
        encoder=encoder,
        others=others,
        n=n,
        min_chars=min_chars,
        max_chars=max_chars,
    )
