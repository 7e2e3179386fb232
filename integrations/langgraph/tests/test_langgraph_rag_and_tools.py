from __future__ import annotations

from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition
from langgraph_synaptoroute import RouterNode, ToolInjector, create_rag_fallback, create_routed_agent
from lg_fakes import ToolCallingStreamModel, scripted

from synaptoroute_agents import BundledEncoder, DocumentIndex, InvalidInputError, SemanticRouter

DOCS = [
    "To reset your VPN password, open the self-service portal and choose 'forgot password'.",
    "The office printer on floor 3 is serviced every Monday; report paper jams to facilities.",
    Document(
        page_content="Laptops are replaced every four years by the IT department.", metadata={"src": "policy"}
    ),
]


def test_rag_without_model_answers_with_passages(lg_encoder: BundledEncoder) -> None:
    node = create_rag_fallback(DOCS, k=1, encoder=lg_encoder)
    out = node({"messages": [HumanMessage("how often do we get new laptops?")]})
    msg = out["messages"][0]
    assert isinstance(msg, AIMessage) and "four years" in msg.content
    assert msg.response_metadata["sources"][0]["metadata"]["src"] == "policy"


async def test_rag_with_model_is_grounded_and_async(lg_encoder: BundledEncoder) -> None:
    index = DocumentIndex(lg_encoder)
    index.add(DOCS)
    model = scripted(AIMessage("Use the self-service portal."))
    node = create_rag_fallback(index, model=model, k=2)
    out = await node.ainvoke({"messages": [("user", "I forgot my VPN password")]})
    assert out["messages"][0].content == "Use the self-service portal."
    system = model.prompts[-1][0]
    assert isinstance(system, SystemMessage) and "self-service portal" in system.content
    assert model.bound == []  # no tools were ever bound in the fallback branch


def test_rag_branch_never_runs_a_tool(lg_encoder: BundledEncoder, helpdesk_router: SemanticRouter) -> None:
    ran: list[str] = []

    @tool
    def wipe_disk(device: str) -> str:
        """Erase a disk."""
        ran.append(device)
        return "wiped"

    model = scripted(
        AIMessage(content="", tool_calls=[{"name": "wipe_disk", "args": {"device": "sda"}, "id": "c1"}])
    )
    from langgraph.prebuilt import ToolNode

    edge = RouterNode(helpdesk_router, fallback="rag")
    g = StateGraph(MessagesState)
    g.add_node("classify", lambda s: {})
    for t in ("billing", "weather", "network"):
        g.add_node(t, lambda s: {"messages": [AIMessage("routed")]})
        g.add_edge(t, END)
    g.add_node("rag", create_rag_fallback(DOCS, model=model, encoder=lg_encoder))
    g.add_node("tools", ToolNode([wipe_disk]))
    g.add_edge(START, "classify")
    g.add_conditional_edges("classify", edge, edge.path_map)
    g.add_conditional_edges("rag", tools_condition, {"tools": "tools", END: END})
    g.add_edge("tools", END)
    out = g.compile().invoke({"messages": [("user", "who painted the ceiling of the sistine chapel")]})
    last = out["messages"][-1]
    assert isinstance(last, AIMessage) and not last.tool_calls
    assert last.response_metadata["refused_tool_calls"] == ["wipe_disk"]
    assert ran == []
    assert not any(isinstance(m, ToolMessage) for m in out["messages"])


def test_rag_bad_input(lg_encoder: BundledEncoder) -> None:
    with pytest.raises(InvalidInputError):
        create_rag_fallback("just one string", encoder=lg_encoder)
    with pytest.raises(InvalidInputError):
        create_rag_fallback(DOCS, encoder=lg_encoder, k=0)


def _make_tools(ran: list[str]) -> list[Any]:
    @tool
    def get_weather(city: str) -> str:
        """Current weather and forecast for a city.

        Args:
            city: the city name, e.g. Paris.
        """
        ran.append("get_weather")
        return f"sunny in {city}"

    @tool
    def convert_currency(amount: float, currency: str) -> str:
        """Convert an amount of money to another currency at today's exchange rate.

        Args:
            amount: how much money.
            currency: the target currency code, for example EUR.
        """
        ran.append("convert_currency")
        return f"{amount} {currency}"

    @tool
    def delete_account(user: str) -> str:
        """Permanently delete a user account and all of its data."""
        ran.append("delete_account")
        return "deleted"

    def book_flight(origin: str, destination: str) -> str:
        """Book a plane ticket between two airports."""
        ran.append("book_flight")
        return "booked"

    return [get_weather, convert_currency, delete_account, book_flight]


def test_injector_selects_and_binds_few_tools(lg_encoder: BundledEncoder) -> None:
    injector = ToolInjector(_make_tools([]), k=2, encoder=lg_encoder)
    names = [t.name for t in injector.select("will it rain in Lisbon tomorrow?")]
    assert names[0] == "get_weather" and len(names) <= 2
    assert injector.select_names("how many euros is 100 dollars", k=1) == ["convert_currency"]
    model = scripted(AIMessage("ok"))
    injector.bind(model, "I need a plane ticket from Oslo to Rome", k=1)
    assert model.bound[-1] == ["book_flight"]
    fn = injector.retrieve_tools_function({"book_flight": "id-7"})
    assert fn("fly me from Berlin to Madrid")[0] == "id-7"
    assert fn.__doc__ and "query" in fn.__code__.co_varnames


async def test_injector_async_and_bigtool_coroutine(lg_encoder: BundledEncoder) -> None:
    injector = ToolInjector(_make_tools([]), k=1, encoder=lg_encoder)
    assert [t.name for t in await injector.aselect("exchange rate dollars to yen")] == ["convert_currency"]
    coro = injector.retrieve_tools_coroutine()
    assert await coro("is it snowing in Oslo") == ["get_weather"]


def test_routed_agent_runs_selected_tool_and_refuses_others(lg_encoder: BundledEncoder) -> None:
    ran: list[str] = []
    injector = ToolInjector(_make_tools(ran), k=1, encoder=lg_encoder)
    model = scripted(
        AIMessage(content="", tool_calls=[{"name": "get_weather", "args": {"city": "Rome"}, "id": "a"}]),
        AIMessage("It is sunny in Rome."),
        # second turn: the model tries a tool that was not selected for this request
        AIMessage(content="", tool_calls=[{"name": "delete_account", "args": {"user": "bob"}, "id": "b"}]),
        AIMessage("I cannot do that."),
    )
    app = create_routed_agent(model, injector)
    out = app.invoke({"messages": [("user", "what's the weather like in Rome today?")]})
    assert out["selected_tools"] == ["get_weather"]
    assert model.bound[0] == ["get_weather"]
    assert ran == ["get_weather"]
    assert out["messages"][-1].content == "It is sunny in Rome."
    out = app.invoke({"messages": [*out["messages"], HumanMessage("how much is 20 dollars in euros")]})
    assert out["selected_tools"] == ["convert_currency"]
    refused = [m for m in out["messages"] if isinstance(m, ToolMessage) and m.tool_call_id == "b"]
    assert refused and refused[0].status == "error" and "not available" in refused[0].content
    assert "delete_account" not in ran


async def test_routed_agent_async_guard_and_fallback(lg_encoder: BundledEncoder) -> None:
    ran: list[str] = []
    model = scripted(
        AIMessage(content="", tool_calls=[{"name": "delete_account", "args": {"user": "x"}, "id": "z"}]),
        AIMessage("done"),
    )
    app = create_routed_agent(model, _make_tools(ran), k=1, threshold=0.3, encoder=lg_encoder, fallback=DOCS)
    out = await app.ainvoke({"messages": [("user", "is it going to rain in Lyon?")]})
    assert out["selected_tools"] == ["get_weather"]
    assert ran == [] and out["messages"][-1].content == "done"
    assert any(isinstance(m, ToolMessage) and m.status == "error" for m in out["messages"])
    # nothing reaches the threshold: the read-only fallback answers from the documents
    out = await app.ainvoke({"messages": [("user", "who services the printer on floor 3?")]})
    assert out["selected_tools"] == []
    assert "floor 3" in out["messages"][-1].content
    assert ran == []


def test_guarded_tool_node_in_a_plain_messages_graph(lg_encoder: BundledEncoder) -> None:
    """Without a selected_tools key the guard selects for the latest human message itself."""
    ran: list[str] = []
    injector = ToolInjector(_make_tools(ran), k=1, encoder=lg_encoder)
    node = injector.tool_node()
    allowed = AIMessage(content="", tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "1"}])
    denied = AIMessage(content="", tool_calls=[{"name": "delete_account", "args": {"user": "x"}, "id": "2"}])
    g = StateGraph(MessagesState)
    g.add_node("tools", node)
    g.add_edge(START, "tools")
    g.add_edge("tools", END)
    app = g.compile()
    out = app.invoke({"messages": [HumanMessage("weather in Oslo?"), allowed]})
    assert ran == ["get_weather"] and out["messages"][-1].status == "success"
    out = app.invoke({"messages": [HumanMessage("weather in Oslo?"), denied]})
    assert ran == ["get_weather"] and out["messages"][-1].status == "error"
    out = app.invoke({"messages": [allowed]})  # no human message: nothing is allowed
    assert ran == ["get_weather"] and out["messages"][-1].status == "error"


def _rag_graph(lg_encoder: BundledEncoder) -> Any:
    model = ToolCallingStreamModel()
    g = StateGraph(MessagesState)
    g.add_node("rag", create_rag_fallback(DOCS, model=model, encoder=lg_encoder))
    g.add_edge(START, "rag")
    g.add_edge("rag", END)
    return g.compile()


def _has_tool_call(message: Any) -> bool:
    return bool(
        getattr(message, "tool_calls", None)
        or getattr(message, "tool_call_chunks", None)
        or getattr(message, "invalid_tool_calls", None)
    )


def test_rag_tool_call_never_reaches_a_messages_stream(lg_encoder: BundledEncoder) -> None:
    app = _rag_graph(lg_encoder)
    seen = [m for m, _meta in app.stream({"messages": [("user", "wipe the disk")]}, stream_mode="messages")]
    assert seen, "the stripped answer itself is streamed"
    assert not any(_has_tool_call(m) for m in seen)
    assert any(m.response_metadata.get("refused_tool_calls") == ["wipe_disk"] for m in seen)


async def test_rag_tool_call_never_reaches_astream_events(lg_encoder: BundledEncoder) -> None:
    app = _rag_graph(lg_encoder)
    leaked = []
    async for event in app.astream_events({"messages": [("user", "wipe the disk")]}, version="v2"):
        data = event.get("data", {})
        for value in (data.get("chunk"), data.get("output")):
            messages = value.get("messages", []) if isinstance(value, dict) else [value]
            leaked += [m for m in messages if _has_tool_call(m)]
    assert leaked == []
