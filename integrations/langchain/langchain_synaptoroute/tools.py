"""SynaptoRouteTool: routing as a LangChain tool (content: the decision; artifact: the evidence)."""

from __future__ import annotations

from typing import Any, Literal

from ._deps import require

require("langchain_core", "langchain-core")

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun  # noqa: E402
from langchain_core.tools import BaseTool  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field  # noqa: E402

from synaptoroute_agents import (  # noqa: E402
    InvalidInputError,
    InvalidTypeError,
    RouteMatch,
    SemanticRouter,
    validate_positive_int,
)

__all__ = ["SynaptoRouteTool", "RouteQueryInput", "describe_match"]


class RouteQueryInput(BaseModel):
    """The tool's one argument."""

    query: str = Field(description="The user's message to route.")


def describe_match(match: RouteMatch) -> str:
    """A one-line account of a decision, for a model or a person to read."""
    if match.name is not None:
        also = [n for n in match.selected if n != match.name]
        extra = f"; also passing: {', '.join(also)}" if also else ""
        return (
            f"route: {match.name} (score {match.score:.3f}, margin {match.margin:.3f}, "
            f"reason {match.reason}{extra})"
        )
    if match.candidates:
        best = match.candidates[0]
        return f"route: none (reason {match.reason}; best candidate {best.name} with score {best.score:.3f})"
    return f"route: none (reason {match.reason})"


class SynaptoRouteTool(BaseTool):
    """A LangChain tool that routes a message with a local :class:`SemanticRouter`.

    The tool takes one argument, ``query``. Its content is a one-line decision (route name, score,
    reason); its artifact is the whole :class:`RouteMatch`, as a JSON-ready dict (default) or the
    object itself (``artifact_format="object"``). No LLM call, no network.

    Args:
        router: the :class:`SemanticRouter` that decides.
        name: the tool name shown to a model (default ``"route_query"``).
        description: shown to a model; by default it lists the router's routes.
        top_k: how many routes may pass at once (multi-intent); they are listed in the content.
        artifact_format: ``"dict"`` (``RouteMatch.to_dict()``, default) or ``"object"``.

    Example:
        >>> tool = SynaptoRouteTool(router=router)
        >>> msg = tool.invoke({"type": "tool_call", "id": "1", "name": "route_query",
        ...                    "args": {"query": "I was charged twice"}})
        >>> msg.content, msg.artifact["name"]
        ('route: billing (score 0.812, ...)', 'billing')
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "route_query"
    description: str = ""
    args_schema: type[BaseModel] = RouteQueryInput
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    router: SemanticRouter
    top_k: int = 1
    artifact_format: Literal["dict", "object"] = "dict"

    def __init__(self, *, router: SemanticRouter, **kwargs: Any) -> None:
        # Checked here rather than in a pydantic validator, so bad input raises the engine's
        # typed errors instead of a pydantic ValidationError.
        if not isinstance(router, SemanticRouter):
            raise InvalidTypeError(
                f"router must be a synaptoroute_agents.SemanticRouter, not {type(router).__name__}"
            )
        top_k = kwargs.get("top_k", 1)
        validate_positive_int(top_k, "top_k")
        if kwargs.get("response_format", "content_and_artifact") != "content_and_artifact":
            raise InvalidInputError("SynaptoRouteTool always answers with content and artifact")
        if kwargs.get("artifact_format", "dict") not in ("dict", "object"):
            raise InvalidInputError("artifact_format must be 'dict' or 'object'")
        if not kwargs.get("description"):
            names = sorted(route.name for route in router.routes())
            listed = ", ".join(names) if names else "(none yet)"
            kwargs["description"] = (
                "Decide which route should handle a user message, locally and without an LLM call. "
                f"Routes: {listed}. Answers 'none' when no route fits."
            )
        super().__init__(router=router, **kwargs)

    def _result(self, match: RouteMatch) -> tuple[str, Any]:
        artifact: Any = match if self.artifact_format == "object" else match.to_dict()
        return describe_match(match), artifact

    def _run(self, query: str, run_manager: CallbackManagerForToolRun | None = None) -> tuple[str, Any]:
        return self._result(self.router.route(query, top_k=self.top_k))

    async def _arun(
        self, query: str, run_manager: AsyncCallbackManagerForToolRun | None = None
    ) -> tuple[str, Any]:
        return self._result(await self.router.aroute(query, top_k=self.top_k))
