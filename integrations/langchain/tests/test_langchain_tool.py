from __future__ import annotations

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_synaptoroute import SynaptoRouteTool

from synaptoroute_agents import InvalidInputError, InvalidTypeError, RouteMatch


def _call(query: str, name: str = "route_query") -> dict:
    return {"type": "tool_call", "id": "call-1", "name": name, "args": {"query": query}}


def test_tool_has_one_query_argument_and_lists_routes(lc_router):
    tool = SynaptoRouteTool(router=lc_router)
    assert isinstance(tool, BaseTool)
    assert set(tool.args) == {"query"}
    assert tool.response_format == "content_and_artifact"
    for name in ("billing", "shipping", "weather"):
        assert name in tool.description


def test_tool_call_returns_route_as_content_and_match_as_artifact(lc_router):
    tool = SynaptoRouteTool(router=lc_router)
    message = tool.invoke(_call("I got billed two times for one order"))
    assert isinstance(message, ToolMessage)
    assert message.content.startswith("route: billing")
    assert "reason matched" in message.content
    artifact = message.artifact
    assert artifact["name"] == "billing"
    assert artifact["reason"] == "matched"
    assert artifact["candidates"][0]["name"] == "billing"
    assert artifact["evidence"][0]["route"] == "billing"
    assert f"{artifact['score']:.3f}" in message.content


def test_tool_abstains_honestly(lc_router):
    tool = SynaptoRouteTool(router=lc_router)
    message = tool.invoke(_call("what is the meaning of life"))
    assert message.content.startswith("route: none")
    assert "below_threshold" in message.content
    assert message.artifact["name"] is None


def test_tool_artifact_can_be_the_match_object(lc_router):
    tool = SynaptoRouteTool(router=lc_router, artifact_format="object", name="router", description="d")
    message = tool.invoke(_call("track my parcel please", name="router"))
    assert isinstance(message.artifact, RouteMatch)
    assert message.artifact.name == "shipping"
    assert tool.description == "d"


async def test_tool_async_matches_sync(lc_router):
    tool = SynaptoRouteTool(router=lc_router)
    sync = tool.invoke(_call("is it going to rain on sunday"))
    async_ = await tool.ainvoke(_call("is it going to rain on sunday"))
    assert async_.content == sync.content
    assert async_.artifact["name"] == "weather"


def test_tool_multi_intent_lists_other_passing_routes(lc_router):
    tool = SynaptoRouteTool(router=lc_router, top_k=2)
    message = tool.invoke(_call("refund my payment and track my order"))
    assert set(message.artifact["selected"]) == {"billing", "shipping"}
    assert "also passing" in message.content


def test_tool_rejects_bad_construction(lc_router):
    with pytest.raises(InvalidTypeError, match="SemanticRouter"):
        SynaptoRouteTool(router="not a router")
    with pytest.raises(InvalidInputError, match="top_k"):
        SynaptoRouteTool(router=lc_router, top_k=0)
    with pytest.raises(InvalidInputError, match="artifact_format"):
        SynaptoRouteTool(router=lc_router, artifact_format="json")


def test_tool_empty_query_is_a_typed_error(lc_router):
    from synaptoroute_agents import InvalidQueryError

    tool = SynaptoRouteTool(router=lc_router)
    with pytest.raises(InvalidQueryError):
        tool.invoke({"query": "   "})
