from __future__ import annotations

import sys
from typing import Any

import pytest

pytest.importorskip("langchain.agents", reason="needs langchain-synaptoroute[agents]")

from langchain.agents import create_agent  # noqa: E402
from langchain_core.language_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langchain_synaptoroute import SynaptoRouteToolSelectionMiddleware  # noqa: E402
from pydantic import Field  # noqa: E402

from synaptoroute_agents import InvalidInputError, InvalidThresholdError, SemanticRouter, ToolSelector  # noqa: E402


class ToolRecordingChat(GenericFakeChatModel):
    """A scripted chat model that records the tool names it was offered on each call."""

    offered: list[list[str]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> ToolRecordingChat:
        self.offered.append(
            [t if isinstance(t, str) else getattr(t, "name", None) or t["name"] for t in tools]
        )
        return self


@tool
def get_weather(city: str) -> str:
    """Get the current weather forecast for a city: temperature, rain and wind."""
    return f"sunny in {city}"


@tool
def convert_currency(amount: float, to: str) -> str:
    """Convert an amount of money into another currency at today's exchange rate."""
    return f"{amount} in {to}"


@tool
def track_parcel(tracking_number: str) -> str:
    """Track a parcel or package shipment and tell where it is and when it arrives."""
    return "out for delivery"


@tool
def book_flight(origin: str, destination: str) -> str:
    """Book a plane ticket for a flight between two airports."""
    return "booked"


@tool
def send_email(to: str, body: str) -> str:
    """Send an email message to a recipient."""
    return "sent"


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as 2 * (3 + 4)."""
    return "14"


TOOLS = [get_weather, convert_currency, track_parcel, book_flight, send_email, calculator]


def _model(*replies: AIMessage) -> ToolRecordingChat:
    return ToolRecordingChat(messages=iter(replies))


def _weather_script() -> list[AIMessage]:
    call = AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}])
    return [call, AIMessage("It is sunny in Paris.")]


def test_agent_is_offered_only_the_fitting_tools(lc_encoder):
    model = _model(*_weather_script())
    middleware = SynaptoRouteToolSelectionMiddleware(k=2, encoder=lc_encoder)
    agent = create_agent(model, tools=TOOLS, middleware=[middleware])
    result = agent.invoke({"messages": [HumanMessage("will it rain in Paris tomorrow?")]})
    assert result["messages"][-1].content == "It is sunny in Paris."
    tool_messages = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert tool_messages[0].content == "sunny in Paris"  # the agent can still run every tool
    assert len(model.offered) == 2  # one model call per turn step
    for offered in model.offered:
        assert len(offered) == 2
        assert offered[0] == "get_weather"


async def test_async_agent_narrows_tools_too(lc_encoder):
    model = _model(AIMessage("Your parcel is out for delivery."))
    agent = create_agent(
        model, tools=TOOLS, middleware=[SynaptoRouteToolSelectionMiddleware(k=1, encoder=lc_encoder)]
    )
    result = await agent.ainvoke({"messages": [HumanMessage("where is my package? it has not arrived")]})
    assert result["messages"][-1].content == "Your parcel is out for delivery."
    assert model.offered == [["track_parcel"]]


def test_always_include_is_offered_on_top_of_k(lc_encoder):
    model = _model(AIMessage("done"))
    middleware = SynaptoRouteToolSelectionMiddleware(k=1, always_include=["calculator"], encoder=lc_encoder)
    create_agent(model, tools=TOOLS, middleware=[middleware]).invoke(
        {"messages": [HumanMessage("convert 20 dollars to euros")]}
    )
    assert model.offered == [["convert_currency", "calculator"]]


def test_threshold_with_no_match_offers_all_or_none(lc_encoder):
    query = {"messages": [HumanMessage("zzz qqq")]}
    model = _model(AIMessage("ok"))
    strict = SynaptoRouteToolSelectionMiddleware(k=2, threshold=0.99, encoder=lc_encoder)
    create_agent(model, tools=TOOLS, middleware=[strict]).invoke(query)
    assert sorted(model.offered[0]) == sorted(t.name for t in TOOLS)

    model = _model(AIMessage("ok"))
    none = SynaptoRouteToolSelectionMiddleware(
        k=2, threshold=0.99, on_no_match="none", always_include=["send_email"], encoder=lc_encoder
    )
    create_agent(model, tools=TOOLS, middleware=[none]).invoke(query)
    assert model.offered == [["send_email"]]


def test_a_shared_selector_is_used_as_is(lc_encoder):
    selector = ToolSelector(TOOLS[:4], k=1, encoder=lc_encoder)  # knows four of the six tools
    model = _model(AIMessage("ok"))
    middleware = SynaptoRouteToolSelectionMiddleware(k=1, selector=selector)
    create_agent(model, tools=TOOLS, middleware=[middleware]).invoke(
        {"messages": [HumanMessage("book me a plane ticket from Oslo to Rome")]}
    )
    # the best known tool, then the tools the selector does not know (it cannot judge them)
    assert model.offered == [["book_flight", "send_email", "calculator"]]


def test_selector_is_rebuilt_only_when_tools_change(lc_encoder):
    middleware = SynaptoRouteToolSelectionMiddleware(k=2, encoder=lc_encoder)
    first = middleware.selector_for(TOOLS)
    assert middleware.selector_for(list(reversed(TOOLS))) is first
    second = middleware.selector_for(TOOLS[:5])
    assert second is not first and len(second) == 5


def test_tools_persist_in_a_given_router(lc_encoder, tmp_path):
    path = tmp_path / "tools.db"
    with SemanticRouter(lc_encoder, store=str(path)) as router:
        SynaptoRouteToolSelectionMiddleware(k=2, router=router).selector_for(TOOLS)
    with SemanticRouter(lc_encoder, store=str(path)) as router:
        assert {r.name for r in router.routes()} == {t.name for t in TOOLS}


def test_bad_options_are_typed_errors(lc_encoder):
    with pytest.raises(InvalidInputError):
        SynaptoRouteToolSelectionMiddleware(k=0)
    with pytest.raises(InvalidThresholdError):
        SynaptoRouteToolSelectionMiddleware(threshold=2.0)
    with pytest.raises(InvalidInputError):
        SynaptoRouteToolSelectionMiddleware(on_no_match="some")
    with pytest.raises(TypeError):
        SynaptoRouteToolSelectionMiddleware(always_include="calculator")
    with pytest.raises(InvalidInputError):
        SynaptoRouteToolSelectionMiddleware(
            selector=ToolSelector(TOOLS[:1], encoder=lc_encoder), encoder=lc_encoder
        )


def test_missing_langchain_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "langchain.agents.middleware", None)
    monkeypatch.delitem(sys.modules, "langchain_synaptoroute.middleware", raising=False)
    import langchain_synaptoroute

    monkeypatch.delitem(langchain_synaptoroute.__dict__, "SynaptoRouteToolSelectionMiddleware", raising=False)
    with pytest.raises(ImportError, match=r"langchain-synaptoroute\[agents\]"):
        langchain_synaptoroute.SynaptoRouteToolSelectionMiddleware  # noqa: B018


@pytest.mark.parametrize("use_async", [False, True])
async def test_a_call_to_a_tool_not_offered_is_refused_and_never_runs(lc_encoder, use_async):
    ran: list[str] = []

    @tool
    def delete_account(user: str) -> str:
        """Delete a user account and all of its data."""
        ran.append(user)
        return "deleted"

    call = AIMessage("", tool_calls=[{"name": "delete_account", "args": {"user": "bob"}, "id": "c9"}])
    model = _model(call, AIMessage("I cannot do that."))
    agent = create_agent(
        model,
        tools=[*TOOLS, delete_account],
        middleware=[SynaptoRouteToolSelectionMiddleware(k=1, encoder=lc_encoder)],
    )
    query = {"messages": [HumanMessage("will it rain in Paris tomorrow?")]}
    result = await agent.ainvoke(query) if use_async else agent.invoke(query)
    assert model.offered[0] == ["get_weather"]
    refusals = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert len(refusals) == 1 and refusals[0].status == "error"
    assert "delete_account" in refusals[0].content and "not offered" in refusals[0].content
    assert ran == []  # never executed


def test_unknown_always_include_and_max_tools(lc_encoder):
    model = _model(AIMessage("ok"))
    bad = SynaptoRouteToolSelectionMiddleware(k=1, always_include=["no_such_tool"], encoder=lc_encoder)
    with pytest.raises(InvalidInputError, match="no_such_tool"):
        create_agent(model, tools=TOOLS, middleware=[bad]).invoke({"messages": [HumanMessage("hi")]})
    assert SynaptoRouteToolSelectionMiddleware(max_tools=2).k == 2


def test_a_follow_up_keeps_the_tools_of_the_conversation(lc_encoder):
    history = [
        HumanMessage("will it rain in Paris tomorrow?"),
        AIMessage("Sunny in Paris."),
        HumanMessage("ok and after that?"),
    ]
    plain = _model(AIMessage("ok"))
    create_agent(
        plain,
        tools=TOOLS,
        middleware=[SynaptoRouteToolSelectionMiddleware(k=1, carry_over=False, encoder=lc_encoder)],
    ).invoke({"messages": history})
    assert plain.offered[0] != ["get_weather"]  # alone, the follow-up points elsewhere
    model = _model(AIMessage("ok"))
    create_agent(
        model, tools=TOOLS, middleware=[SynaptoRouteToolSelectionMiddleware(k=1, encoder=lc_encoder)]
    ).invoke({"messages": history})
    assert model.offered[0] == ["get_weather"]
