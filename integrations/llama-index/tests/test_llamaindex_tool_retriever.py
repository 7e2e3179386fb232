from __future__ import annotations

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.llms import MockLLM
from llama_index.core.objects.base import ObjectRetriever
from llama_index.core.schema import QueryBundle
from llama_index.core.tools import FunctionTool
from llama_index.selectors.synaptoroute import SynaptoRouteToolRetriever

from synaptoroute_agents import InvalidInputError, InvalidTypeError, SemanticRouter


def get_weather(city: str) -> str:
    """Get the current weather forecast for a city: temperature, rain and wind."""
    return f"sunny in {city}"


def convert_currency(amount: float, to: str) -> str:
    """Convert an amount of money into another currency at today's exchange rate."""
    return f"{amount} {to}"


def track_parcel(tracking_number: str) -> str:
    """Track a parcel or package shipment and tell where it is and when it arrives."""
    return "out for delivery"


def book_flight(origin: str, destination: str) -> str:
    """Book a plane ticket for a flight between two airports."""
    return "booked"


def send_email(to: str, body: str) -> str:
    """Send an email message to a recipient."""
    return "sent"


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as 2 * (3 + 4)."""
    return "14"


TOOLS = [
    FunctionTool.from_defaults(fn)
    for fn in (get_weather, convert_currency, track_parcel, book_flight, send_email, calculator)
]


def _names(tools) -> list[str]:
    return [t.metadata.name for t in tools]


@pytest.fixture
def retriever(li_encoder) -> SynaptoRouteToolRetriever:
    return SynaptoRouteToolRetriever(TOOLS, k=2, encoder=li_encoder)


def test_is_an_object_retriever_returning_the_best_tools(retriever):
    assert isinstance(retriever, ObjectRetriever)
    tools = retriever.retrieve("will it rain in Paris tomorrow?")
    assert len(tools) == 2
    assert tools[0] is TOOLS[0]
    assert _names(retriever.retrieve(QueryBundle("where is my package")))[0] == "track_parcel"


async def test_aretrieve_matches_retrieve(retriever):
    for query in ("convert 20 dollars to euros", "book me a plane ticket to Rome"):
        assert _names(await retriever.aretrieve(query)) == _names(retriever.retrieve(query))


def test_always_include_and_empty_queries(li_encoder):
    retriever = SynaptoRouteToolRetriever(TOOLS, k=1, always_include=["calculator"], encoder=li_encoder)
    assert _names(retriever.retrieve("send an email to my boss")) == ["send_email", "calculator"]
    assert _names(retriever.retrieve("what is 17 times 23, calculate it")) == ["calculator"]
    assert _names(retriever.retrieve("")) == ["calculator"]


def test_threshold_limits_the_selection(li_encoder):
    retriever = SynaptoRouteToolRetriever(TOOLS, k=3, threshold=0.99, encoder=li_encoder)
    assert retriever.retrieve("will it rain tomorrow") == []


def test_generated_signature_line_is_not_seeded(retriever):
    route = retriever.selector.router.get("get_weather")
    assert all("->" not in u for u in route.utterances)
    assert any("weather forecast" in u for u in route.utterances)


def test_routes_persist_in_a_given_router(li_encoder, tmp_path):
    path = str(tmp_path / "tools.db")
    with SemanticRouter(li_encoder, store=path) as router:
        SynaptoRouteToolRetriever(TOOLS, router=router)
    with SemanticRouter(li_encoder, store=path) as router:
        assert {r.name for r in router.routes()} == set(_names(TOOLS))
        again = SynaptoRouteToolRetriever(TOOLS, k=1, router=router)
        assert _names(again.retrieve("email my colleague")) == ["send_email"]


async def test_function_agent_accepts_it_as_tool_retriever(retriever):
    agent = FunctionAgent(tool_retriever=retriever, llm=MockLLM())
    tools = await agent.get_tools("convert 100 euros to yen")
    assert [t.metadata.name for t in tools][0] == "convert_currency"
    assert len(tools) == 2


def test_bad_input_is_a_typed_error(li_encoder):
    with pytest.raises(InvalidInputError, match="unique"):
        SynaptoRouteToolRetriever([TOOLS[0], TOOLS[0]], encoder=li_encoder)
    with pytest.raises(InvalidInputError, match="nope"):
        SynaptoRouteToolRetriever(TOOLS, always_include=["nope"], encoder=li_encoder)
    with pytest.raises(InvalidTypeError):
        SynaptoRouteToolRetriever("tools", encoder=li_encoder)
    with pytest.raises(InvalidInputError):
        SynaptoRouteToolRetriever(TOOLS, k=0, encoder=li_encoder)
    retriever = SynaptoRouteToolRetriever(TOOLS[:2], encoder=li_encoder)
    with pytest.raises(InvalidTypeError):
        retriever.retrieve(42)
    with pytest.raises(NotImplementedError):
        retriever.retriever  # noqa: B018


def test_tool_names_are_kept_as_given_and_max_tools(li_encoder):
    tools = [
        FunctionTool.from_defaults(get_weather, name="Get Weather"),
        FunctionTool.from_defaults(track_parcel, name="Track Parcel"),
    ]
    retriever = SynaptoRouteToolRetriever(tools, max_tools=1, encoder=li_encoder)
    assert [t.metadata.name for t in retriever.retrieve("will it rain in Oslo?")] == ["Get Weather"]
    assert retriever.k == 1
