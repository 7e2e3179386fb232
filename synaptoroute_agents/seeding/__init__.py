"""Seeding: turn a function, a tool or a tool description into a route.

- :mod:`.docstrings`: identifiers and docstrings to utterances, deterministically
  (:func:`parse_docstring`, :func:`utterances_from_description`);
- :mod:`.seed`: callables, tools and mappings to routes (:func:`seed_route`,
  :func:`routes_from_functions`);
- :mod:`.generate`: more utterances from a language model given as ``complete(prompt) -> text``,
  validated before they are kept (:func:`generate_utterances`).

No agent framework is imported. :class:`~synaptoroute_agents.tools.ToolSelector` lives in
:mod:`synaptoroute_agents.tools` and is re-exported here for old imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .docstrings import (
    MAX_BODY_SENTENCES,
    MAX_CHARS,
    MAX_DESCRIPTION_CHARS,
    MIN_CHARS,
    ParsedDocstring,
    looks_like_request,
    parse_docstring,
    split_identifier,
    utterances_from_description,
)
from .generate import Complete, generation_prompt, parse_generated, validate_generated
from .seed import generate_utterances, routes_from_functions, seed_route, tool_name

if TYPE_CHECKING:
    from ..tools import ToolSelector

__all__ = [
    "Complete",
    "MAX_BODY_SENTENCES",
    "MAX_CHARS",
    "MAX_DESCRIPTION_CHARS",
    "MIN_CHARS",
    "ParsedDocstring",
    "ToolSelector",
    "generate_utterances",
    "generation_prompt",
    "looks_like_request",
    "parse_docstring",
    "parse_generated",
    "routes_from_functions",
    "seed_route",
    "split_identifier",
    "tool_name",
    "utterances_from_description",
    "validate_generated",
]


def __getattr__(name: str) -> Any:
    # ToolSelector needs the router, which seeding itself does not: imported on first use only,
    # so `from synaptoroute_agents.seeding import ToolSelector` keeps working without a cycle.
    if name == "ToolSelector":
        from ..tools import ToolSelector

        return ToolSelector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
