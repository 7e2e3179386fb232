"""Shared helpers: the framework import, choices as seeding input."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from synaptoroute_agents import require as _require

__all__ = ["require", "tool_mapping", "strip_signature"]


def require(module: str, install: str = "llama-index-core") -> ModuleType:
    """Import ``module`` or raise :class:`ImportError` naming the distribution to install."""
    return _require(module, install)


def strip_signature(name: str | None, description: str) -> str:
    """Drop the ``name(arg: type) -> type`` line LlamaIndex puts before a function tool's docstring."""
    text = description.strip()
    if name and text.startswith(f"{name}("):
        first, _, rest = text.partition("\n")
        if ")" in first:
            return rest.strip()
    return text


def tool_mapping(metadata: Any, *, name: str | None = None) -> dict[str, Any]:
    """A LlamaIndex ``ToolMetadata`` as the mapping the engine's seeding reads.

    The name, the description (without the generated signature line) and the argument
    descriptions of ``fn_schema`` (when it has any) are used.
    """
    tool_name = metadata.name if name is None else name
    description = strip_signature(metadata.name, metadata.description or "")
    args: dict[str, str] = {}
    schema = getattr(metadata, "fn_schema", None)
    if schema is not None:
        try:
            props = schema.model_json_schema().get("properties", {})
        except Exception:  # a schema that cannot be rendered is simply not used for seeding
            props = {}
        for key, value in props.items():
            if isinstance(value, dict):
                args[str(key)] = str(value.get("description") or "")
    return {"name": tool_name or "", "description": description, "args": args}
