"""A LlamaIndex workflow agent in a real conversation: the tool retriever reads the agent's memory
(follow-ups keep their tools, a new topic switches) and refuses calls to tools it did not offer.

Real encoder, real ``FunctionAgent`` loop; the LLM is LlamaIndex's ``MockFunctionCallingLLM`` with
a scripted response generator that records the tools it was offered and emits the tool calls a
test asks for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ReActAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms import MockFunctionCallingLLM
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.tools import FunctionTool
from llama_index.core.workflow import Context
from llama_index.selectors.synaptoroute import SynaptoRouteToolRetriever

from synaptoroute_agents import InvalidInputError, InvalidTypeError

RAN: list[str] = []


def get_weather(city: str = "Paris") -> str:
    """Get the current weather forecast for a city: temperature, rain and wind."""
    RAN.append("get_weather")
    return f"sunny in {city}"


def convert_currency(amount: float = 1.0, to: str = "EUR") -> str:
    """Convert an amount of money into another currency at today's exchange rate."""
    RAN.append("convert_currency")
    return f"{amount} {to}"


def track_parcel(tracking_number: str = "X1") -> str:
    """Track a parcel or package shipment and tell where it is and when it arrives."""
    RAN.append("track_parcel")
    return "out for delivery"


def book_table(people: int = 2, time: str = "20:00") -> str:
    """Book a table at a restaurant for a number of people at a given time."""
    RAN.append("book_table")
    return "booked"


def send_email(to: str = "a@b.c", body: str = "") -> str:
    """Send an email message to a recipient."""
    RAN.append("send_email")
    return "sent"


TOOLS = [
    FunctionTool.from_defaults(fn)
    for fn in (get_weather, convert_currency, track_parcel, book_table, send_email)
]


class Script:
    """A response generator: records the tools offered on each LLM call; on a fresh user turn
    calls the tool ``pick(offered)`` names, then answers once the tool result is in."""

    def __init__(self, pick: Callable[[list[str]], str | None]) -> None:
        self.pick = pick
        self.offered: list[list[str]] = []

    def __call__(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        offered = [t.metadata.name for t in kwargs.get("tools") or []]
        self.offered.append(offered)
        if messages and messages[-1].role == MessageRole.TOOL:
            return ChatMessage(role=MessageRole.ASSISTANT, content=f"done: {messages[-1].content}")
        name = self.pick(offered)
        if name is None:
            return ChatMessage(role=MessageRole.ASSISTANT, content="no tool")
        call = ToolCallBlock(tool_call_id=f"call-{len(self.offered)}", tool_name=name, tool_kwargs={})
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])


def _llm(script: Script) -> MockFunctionCallingLLM:
    return MockFunctionCallingLLM(response_generator=script)


@pytest.fixture
def retriever(li_encoder) -> SynaptoRouteToolRetriever:
    return SynaptoRouteToolRetriever(TOOLS, k=2, encoder=li_encoder)


def _results(handler_result: Any) -> list[Any]:
    return [c.tool_output for c in handler_result.tool_calls]


async def test_a_call_to_a_tool_not_offered_is_refused_and_never_runs(retriever):
    RAN.clear()
    script = Script(lambda offered: "track_parcel")  # the model names a tool it was not given
    agent = FunctionAgent(tool_retriever=retriever, llm=_llm(script))
    result = await agent.run("what's the weather like in Paris tomorrow?")
    assert "track_parcel" not in script.offered[0]
    assert "track_parcel" not in RAN  # never executed
    (output,) = _results(result)
    assert output.is_error
    assert "'track_parcel' is not available for this request" in output.content
    assert "get_weather" in output.content  # the refusal names what was offered
    assert "not available" in str(result.response.content)  # the model read the refusal


async def test_a_call_to_an_offered_tool_runs(retriever):
    RAN.clear()
    script = Script(lambda offered: offered[0])
    agent = FunctionAgent(tool_retriever=retriever, llm=_llm(script))
    result = await agent.run("what's the weather like in Paris tomorrow?")
    assert script.offered[0][0] == "get_weather"
    assert RAN == ["get_weather"]
    (output,) = _results(result)
    assert not output.is_error and output.content == "sunny in Paris"


async def test_the_guard_refuses_in_an_agent_workflow(retriever):
    RAN.clear()
    script = Script(lambda offered: "send_email")
    agent = FunctionAgent(name="helper", description="helps", tool_retriever=retriever, llm=_llm(script))
    result = await AgentWorkflow(agents=[agent], root_agent="helper").run("convert 100 euros to yen")
    assert "send_email" not in script.offered[0]
    assert RAN == []
    assert any("'send_email' is not available" in o.content for o in _results(result))


async def test_the_guard_refuses_in_a_react_agent(retriever):
    """ReActAgent parses the call from the model's text; the same lookup refuses it."""
    RAN.clear()

    def react(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        if any("Observation" in (m.content or "") for m in messages[1:]):
            return ChatMessage(role=MessageRole.ASSISTANT, content="Thought: I can answer.\nAnswer: done")
        return ChatMessage(
            role=MessageRole.ASSISTANT,
            content='Thought: I need a tool.\nAction: send_email\nAction Input: {"to": "x@y.z"}',
        )

    agent = ReActAgent(tool_retriever=retriever, llm=MockFunctionCallingLLM(response_generator=react))
    result = await agent.run("convert 100 euros to yen")
    assert RAN == []
    (output,) = _results(result)
    assert output.is_error and "'send_email' is not available" in output.content
    assert "convert_currency" in output.content


async def test_follow_ups_keep_their_tools_and_a_new_topic_switches(retriever):
    """Three turns in one Context (the agent's memory): the follow-up alone ("and make it four
    people") is read with the request before it."""
    RAN.clear()
    script = Script(lambda offered: offered[0])
    agent = FunctionAgent(tool_retriever=retriever, llm=_llm(script))
    ctx = Context(agent)
    await agent.run("book a table for two at an italian restaurant at 8pm", ctx=ctx)
    assert script.offered[-1][0] == "book_table"
    await agent.run("make it 9 instead", ctx=ctx)
    assert script.offered[-1][0] == "book_table"
    await agent.run("how much is 100 dollars in yen?", ctx=ctx)
    assert script.offered[-1][0] == "convert_currency"
    assert RAN == ["book_table", "book_table", "convert_currency"]
    # the tools offered are kept in the context's state, visible and serializable
    state = await ctx.store.get("synaptoroute_tools")
    assert state["offered"][0] == "convert_currency"
    assert Context.from_dict(agent, ctx.to_dict()) is not None


async def test_without_context_the_follow_up_loses_its_tool(li_encoder):
    """The same follow-up with carry_over=False is decided from its own words."""
    retriever = SynaptoRouteToolRetriever(TOOLS, k=1, encoder=li_encoder, carry_over=False)
    script = Script(lambda offered: None)
    agent = FunctionAgent(tool_retriever=retriever, llm=_llm(script))
    ctx = Context(agent)
    await agent.run("book a table for two at an italian restaurant at 8pm", ctx=ctx)
    await agent.run("make it 9 instead", ctx=ctx)
    with_context = SynaptoRouteToolRetriever(TOOLS, k=1, encoder=li_encoder)
    script2 = Script(lambda offered: None)
    agent2 = FunctionAgent(tool_retriever=with_context, llm=_llm(script2))
    ctx2 = Context(agent2)
    await agent2.run("book a table for two at an italian restaurant at 8pm", ctx=ctx2)
    await agent2.run("make it 9 instead", ctx=ctx2)
    assert script2.offered[-1] == ["book_table"]
    assert script.offered[-1] == ["convert_currency"]  # its own words alone: a wrong tool


async def test_a_memory_passed_to_run_is_read(retriever):
    script = Script(lambda offered: None)
    agent = FunctionAgent(tool_retriever=retriever, llm=_llm(script))
    memory = ChatMemoryBuffer.from_defaults()
    await agent.run("book a table for two at an italian restaurant at 8pm", memory=memory)
    await agent.run("make it 9 instead", memory=memory)
    assert script.offered[-1][0] == "book_table"


async def test_query_from_routes_a_text_of_your_own(li_encoder):
    seen: list[list[str]] = []

    def query_from(messages: list[ChatMessage]) -> str:
        seen.append([m.content or "" for m in messages if m.role == MessageRole.USER])
        return "send an email to my boss"

    retriever = SynaptoRouteToolRetriever(TOOLS, k=1, encoder=li_encoder, query_from=query_from)
    script = Script(lambda offered: None)
    agent = FunctionAgent(tool_retriever=retriever, llm=_llm(script))
    await agent.run("what's the weather in Paris?")
    assert script.offered[-1] == ["send_email"]
    assert seen[0] == ["what's the weather in Paris?"]


def test_outside_an_agent_only_the_query_counts(retriever):
    assert [t.metadata.name for t in retriever.retrieve("what's the weather in Paris?")][0] == "get_weather"
    # a tool name as the query is an ordinary query outside an agent run (nothing was offered)
    assert "track_parcel" in [t.metadata.name for t in retriever.retrieve("track_parcel")]


def test_conversation_options_are_checked(li_encoder):
    with pytest.raises(InvalidInputError):
        SynaptoRouteToolRetriever(TOOLS, encoder=li_encoder, context_turns=0)
    with pytest.raises(InvalidTypeError):
        SynaptoRouteToolRetriever(TOOLS, encoder=li_encoder, query_from="text")


def lookup_order(order_id: str = "A1") -> str:
    """Look up an order."""
    RAN.append("lookup_order")
    return "shipped"


async def test_the_agents_own_tools_run_and_leave_the_conversation_alone(retriever):
    """A tool given with tools= is not the retriever's: a call to it runs, and the lookup (the
    agent asks the retriever with the tool's name) neither refuses it nor counts as a turn."""
    RAN.clear()
    script = Script(lambda offered: "lookup_order")
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(lookup_order)], tool_retriever=retriever, llm=_llm(script)
    )
    ctx = Context(agent)
    await agent.run("book a table for two at an italian restaurant at 8pm", ctx=ctx)
    assert RAN == ["lookup_order"]
    state = await ctx.store.get("synaptoroute_tools")
    assert state["query"] == "book a table for two at an italian restaurant at 8pm"
    assert state["turns"] == ["book a table for two at an italian restaurant at 8pm"]
    assert state["offered"][0] == "book_table"


async def test_guard_false_turns_the_refusal_off(li_encoder):
    RAN.clear()
    retriever = SynaptoRouteToolRetriever(TOOLS, k=2, encoder=li_encoder, guard=False)
    agent = FunctionAgent(tool_retriever=retriever, llm=_llm(Script(lambda offered: "track_parcel")))
    result = await agent.run("what's the weather like in Paris tomorrow?")
    (output,) = _results(result)
    assert RAN == ["track_parcel"] and not output.is_error  # looked up by its name, and run
