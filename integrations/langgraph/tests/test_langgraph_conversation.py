"""A multi-turn conversation with a checkpointer: follow-ups keep the route and the tools, a new
topic switches, a foreign message reaches the fallback (real encoder, defaults)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph_synaptoroute import RouterNode, create_routed_agent
from lg_fakes import scripted

from synaptoroute_agents import SemanticRouter


def _answer(label: str) -> Any:
    def node(state: Any) -> dict[str, Any]:
        return {"messages": [AIMessage(content=f"answered by {label}")]}

    return node


def test_router_node_follow_up_switch_and_fallback_with_a_checkpointer(
    helpdesk_router: SemanticRouter,
) -> None:
    edge = RouterNode(helpdesk_router, fallback="rag")  # defaults: carry-over on
    g = StateGraph(MessagesState)
    g.add_node("classify", lambda s: {})
    for target in ("billing", "weather", "network", "rag"):
        g.add_node(target, _answer(target))
        g.add_edge(target, END)
    g.add_edge(START, "classify")
    g.add_conditional_edges("classify", edge, edge.path_map)
    app = g.compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t1"}}

    def say(text: str) -> str:
        return str(app.invoke({"messages": [("user", text)]}, cfg)["messages"][-1].content)

    assert say("I was charged twice for my last order") == "answered by billing"
    assert say("it happened again this morning") == "answered by billing"  # follow-up kept
    assert say("will it rain tomorrow in Oslo?") == "answered by weather"  # new topic
    assert say("who painted the mona lisa") == "answered by rag"  # foreign: fallback
    # Without carry-over the same follow-up alone takes the fallback.
    plain = RouterNode(helpdesk_router, fallback="rag", carry_over=False)
    state = app.get_state(cfg).values["messages"][:3]
    assert plain({"messages": state}) == "rag"


def refund_payment(order_id: str) -> str:
    """Refund a payment that was charged twice."""
    return "refunded"


def get_weather(city: str) -> str:
    """Get the weather forecast for a city."""
    return "sunny"


def reset_wifi() -> str:
    """Restart the office wifi access point."""
    return "restarted"


async def test_routed_agent_keeps_tools_across_checkpointed_turns() -> None:
    model = scripted(*(AIMessage(f"reply {i}") for i in range(4)))
    model.bound.clear()
    agent = create_routed_agent(
        model,
        [refund_payment, get_weather, reset_wifi],
        k=1,
        threshold=0.3,
        fallback=lambda state: {"messages": [AIMessage("fallback")]},
        checkpointer=InMemorySaver(),
    )
    cfg = {"configurable": {"thread_id": "t2"}}

    async def say(text: str) -> dict[str, Any]:
        return await agent.ainvoke({"messages": [("user", text)]}, cfg)

    assert (await say("I was charged twice for my last order"))["selected_tools"] == ["refund_payment"]
    assert (await say("it happened again this morning"))["selected_tools"] == ["refund_payment"]
    assert (await say("will it rain in Oslo tomorrow?"))["selected_tools"] == ["get_weather"]
    out = await say("who painted the mona lisa")
    assert out["selected_tools"] == [] and out["messages"][-1].content == "fallback"
    assert model.bound == [["refund_payment"], ["refund_payment"], ["get_weather"]]


def test_multi_intent_sends_to_every_clause_route(helpdesk_router: SemanticRouter) -> None:
    from langgraph.types import Send

    node = RouterNode(helpdesk_router, fallback="rag", multi=True, top_k=2)
    sends = node({"messages": [("user", "the wifi keeps dropping and my invoice is missing")]})
    assert all(isinstance(s, Send) for s in sends)
    assert {s.node for s in sends} == {"network", "billing"}
