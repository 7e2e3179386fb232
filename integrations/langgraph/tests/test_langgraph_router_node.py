from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any, get_args

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, Send
from langgraph_synaptoroute import RouterNode, latest_human_text, router_command_node

from synaptoroute_agents import InvalidInputError, InvalidTypeError, Route, SemanticRouter


def _answer(label: str):
    def node(state: Any) -> dict[str, Any]:
        return {"messages": [AIMessage(content=f"answered by {label}")]}

    return node


def _graph(node: RouterNode, targets: list[str]) -> Any:
    g = StateGraph(MessagesState)
    g.add_node("classify", lambda s: {})
    for t in targets:
        g.add_node(t, _answer(t))
        g.add_edge(t, END)
    g.add_edge(START, "classify")
    g.add_conditional_edges("classify", node, node.path_map)
    return g.compile()


def test_routes_latest_human_message_and_falls_back(helpdesk_router: SemanticRouter) -> None:
    node = RouterNode(helpdesk_router, fallback="rag")
    app = _graph(node, ["billing", "weather", "network", "rag"])
    out = app.invoke(
        {"messages": [HumanMessage("hello"), AIMessage("hi"), HumanMessage("is it going to rain on sunday?")]}
    )
    assert out["messages"][-1].content == "answered by weather"
    out = app.invoke({"messages": [HumanMessage("explain the plot of a nineteenth century opera")]})
    assert out["messages"][-1].content == "answered by rag"


def test_state_shapes_dicts_tuples_and_query_key(helpdesk_router: SemanticRouter) -> None:
    node = RouterNode(helpdesk_router, fallback="rag")
    assert node({"messages": [{"role": "user", "content": "my wifi keeps dropping"}]}) == "network"
    assert node({"messages": [("user", "refund my payment please"), ("assistant", "sure")]}) == "billing"
    assert (
        node({"messages": [{"role": "user", "content": [{"type": "text", "text": "weekend forecast?"}]}]})
        == "weather"
    )
    assert node({"messages": []}) == "rag"  # no human message: the fallback, not an exception
    keyed = RouterNode(helpdesk_router, fallback="rag", query_key="question")
    assert keyed({"question": "I was charged two times", "messages": [("user", "weather?")]}) == "billing"
    assert latest_human_text([("ai", "x"), ("human", "y"), ("ai", "z")]) == "y"


def test_path_map_and_literal_draw_the_graph(helpdesk_router: SemanticRouter) -> None:
    node = RouterNode(
        helpdesk_router,
        fallback="rag",
        path_map={"billing": "money", "weather": "sky", "network": "it", "rag": "docs"},
    )
    assert set(get_args(node.return_type)) == {"billing", "weather", "network", "rag"}
    app = _graph(node, ["money", "sky", "it", "docs"])
    mermaid = app.get_graph().draw_mermaid()
    for target in ("money", "sky", "it", "docs"):
        assert re.search(rf"classify -\.[^\n]*\.-> {target};", mermaid), mermaid
    assert app.invoke({"messages": [("user", "where can I find my invoice")]})["messages"][-1].content == (
        "answered by money"
    )


def test_unknown_labels_fail_at_build_time(helpdesk_router: SemanticRouter) -> None:
    with pytest.raises(InvalidInputError, match="typo"):
        RouterNode(helpdesk_router, path_map={"typo": "x", "fallback": "f", "billing": "b"})
    with pytest.raises(InvalidInputError, match="fallback"):
        RouterNode(helpdesk_router, path_map={"billing": "b", "weather": "w", "network": "n"})
    with pytest.raises(InvalidInputError, match="no node"):
        RouterNode(helpdesk_router, path_map={"billing": "b", "fallback": "f"})
    partial = RouterNode(helpdesk_router, path_map={"billing": "b", "fallback": "f"}, unmapped="fallback")
    assert partial({"messages": [("user", "will it rain tomorrow")]}) == "fallback"
    with pytest.raises(InvalidInputError, match="route name"):
        RouterNode(helpdesk_router, fallback="billing")
    with pytest.raises(InvalidTypeError):
        RouterNode("not a router")  # type: ignore[arg-type]
    # A path_map pointing at a node the graph lacks is refused by LangGraph when compiling.
    node = RouterNode(helpdesk_router, fallback="rag")
    g = StateGraph(MessagesState)
    g.add_node("classify", lambda s: {})
    g.add_edge(START, "classify")
    g.add_conditional_edges("classify", node, node.path_map)
    with pytest.raises(ValueError):
        g.compile()


def test_route_added_after_build_goes_to_fallback(helpdesk_router: SemanticRouter) -> None:
    node = RouterNode(helpdesk_router, fallback="rag")
    helpdesk_router.add(Route("pets", ["my dog is sick", "adopt a kitten"]))
    assert node({"messages": [("user", "my dog is sick")]}) == "rag"


async def test_ainvoke_uses_aroute_and_never_blocks_the_loop(helpdesk_router: SemanticRouter) -> None:
    node = RouterNode(helpdesk_router, fallback="rag")
    app = _graph(node, ["billing", "weather", "network", "rag"])
    loop_threads: set[int] = set()
    encode_threads: set[int] = set()
    inner = helpdesk_router.embed  # the encoder call, wherever aroute schedules it

    def spy(queries: Any) -> Any:
        encode_threads.add(threading.get_ident())
        time.sleep(0.3)  # a slow encoder must not stall the loop
        return inner(queries)

    helpdesk_router.embed = spy  # type: ignore[method-assign]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        loop_threads.add(threading.get_ident())
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    out = await app.ainvoke({"messages": [("user", "the wifi keeps dropping")]})
    task.cancel()
    assert out["messages"][-1].content == "answered by network"
    assert encode_threads and not (encode_threads & loop_threads)
    assert ticks >= 10  # the loop kept running while the router encoded


def test_multi_returns_sends(helpdesk_router: SemanticRouter) -> None:
    node = RouterNode(helpdesk_router, fallback="rag", multi=True, top_k=3)
    state = {"messages": [("user", "refund my payment and tell me if it will rain tomorrow")]}
    result = node(state)
    assert all(isinstance(s, Send) for s in result)
    assert {s.node for s in result} >= {"billing", "weather"}
    assert node({"messages": [("user", "recite a poem about the medieval french monarchy")]}) == ["rag"]

    class State(MessagesState):
        pass

    g = StateGraph(State)
    g.add_node("classify", lambda s: {})
    for t in ("billing", "weather", "network", "rag"):
        g.add_node(t, _answer(t))
        g.add_edge(t, END)
    g.add_edge(START, "classify")
    g.add_conditional_edges("classify", node, node.path_map)
    out = g.compile().invoke(state)
    answers = {m.content for m in out["messages"] if isinstance(m, AIMessage)}
    assert {"answered by billing", "answered by weather"} <= answers


class CommandState(MessagesState):
    route: str | None
    route_score: float


def test_command_node_updates_state_and_checkpoints(helpdesk_router: SemanticRouter) -> None:
    cmd = router_command_node(helpdesk_router, fallback="rag")
    result = cmd({"messages": [("user", "I was charged twice")]})
    assert isinstance(result, Command) and result.goto == "billing"
    assert result.update["route"] == "billing" and isinstance(result.update["route_score"], float)
    g = StateGraph(CommandState)
    g.add_node("classify", cmd, destinations=cmd.destinations)
    for t in ("billing", "weather", "network", "rag"):
        g.add_node(t, _answer(t))
        g.add_edge(t, END)
    g.add_edge(START, "classify")
    app = g.compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t1"}}
    out = app.invoke({"messages": [("user", "nothing about any of this: a sonnet on marble")]}, cfg)
    assert out["route"] is None and out["messages"][-1].content == "answered by rag"
    out = app.invoke({"messages": [("user", "the VPN is unreachable")]}, cfg)
    assert out["route"] == "network" and out["route_score"] > 0.55
    assert app.get_state(cfg).values["route"] == "network"  # checkpointed as plain values
    mermaid = app.get_graph().draw_mermaid()
    assert "classify -.-> network;" in mermaid and "classify -.-> rag;" in mermaid


async def test_command_node_async(helpdesk_router: SemanticRouter) -> None:
    node = RouterNode(helpdesk_router, fallback="rag").as_command_node()
    result = await node.ainvoke({"messages": [("user", "weekend forecast please")]})
    assert result.goto == "weather" and result.update["route"] == "weather"
