from __future__ import annotations

import asyncio

import pytest
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.base_selector import BaseSelector
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import CustomQueryEngine, RouterQueryEngine
from llama_index.core.retrievers import RouterRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.tools import QueryEngineTool, RetrieverTool, ToolMetadata
from llama_index.selectors.synaptoroute import SynaptoRouteSelector

from synaptoroute_agents import (
    InvalidInputError,
    InvalidThresholdError,
    InvalidTypeError,
    Route,
    SemanticRouter,
)

CHOICES = [
    ToolMetadata(
        name="billing", description="Questions about invoices, payments, refunds and double charges."
    ),
    ToolMetadata(
        name="shipping", description="Questions about deliveries, parcels, package tracking and shipping."
    ),
    ToolMetadata(name="hr", description="Questions about vacation days, sick leave and employee benefits."),
]


@pytest.fixture
def selector(li_encoder) -> SynaptoRouteSelector:
    return SynaptoRouteSelector(encoder=li_encoder)


def test_is_a_base_selector_without_prompts(selector):
    assert isinstance(selector, BaseSelector)
    assert selector.get_prompts() == {}
    selector.update_prompts({"anything": None})  # nothing to update, and no error
    assert selector.get_prompts() == {}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("where is my package? it has not arrived", 1),
        ("how many vacation days do I get per year", 2),
        ("can I get a refund for a double charge", 0),
    ],
)
def test_seeded_routes_pick_the_described_choice(selector, query, expected):
    result = selector.select(CHOICES, query)
    assert result.inds == [expected]
    assert result.reason.startswith("synaptoroute: matched")
    assert repr(CHOICES[expected].name) in result.reason


def test_nothing_passing_returns_the_configured_fallback(li_encoder):
    by_name = SynaptoRouteSelector(fallback="hr", encoder=li_encoder)
    result = by_name.select(CHOICES, "what is the airspeed velocity of an unladen swallow")
    assert result.inds == [2]
    assert "below_threshold" in result.reason and "fallback 'hr'" in result.reason
    by_index = SynaptoRouteSelector(fallback=0, encoder=li_encoder)
    assert by_index.select(CHOICES, "what is the airspeed velocity of an unladen swallow").inds == [0]


def test_without_fallback_the_best_candidate_is_named_as_such(selector):
    result = selector.select(CHOICES, "what is the airspeed velocity of an unladen swallow")
    assert len(result.inds) == 1
    assert "no fallback set, using the best candidate" in result.reason


def test_unknown_fallback_is_a_clear_error(li_encoder):
    selector = SynaptoRouteSelector(fallback="sales", encoder=li_encoder)
    with pytest.raises(InvalidInputError, match="sales"):
        selector.select(CHOICES, "what is the airspeed velocity of an unladen swallow")


def test_routes_are_seeded_once_per_choice_set(selector):
    selector.select(CHOICES, "track my parcel")
    first = selector._seeded_router(CHOICES)
    selector.select(list(CHOICES), "refund please")
    assert selector._seeded_router(list(CHOICES)) is first
    assert len(selector._seeded) == 1
    other = [*CHOICES[:2], ToolMetadata(name="hr", description="Salaries and payroll.")]
    assert selector._seeded_router(other) is not first
    assert len(selector._seeded) == 2
    selector.close()
    assert len(selector._seeded) == 0


def test_examples_sharpen_a_seeded_choice(li_encoder):
    plain = SynaptoRouteSelector(encoder=li_encoder)
    taught = SynaptoRouteSelector(
        encoder=li_encoder, examples={"billing": ["my card was declined at checkout"]}
    )
    query = "my card got declined at checkout"
    plain_score = plain._seeded_router(CHOICES).route(query).candidates[0]
    taught_match = taught._seeded_router(CHOICES).route(query)
    assert taught_match.name == "billing"
    assert taught_match.score > plain_score.score


def test_multi_select_returns_every_passing_choice(li_encoder):
    selector = SynaptoRouteSelector(encoder=li_encoder, top_k=3, threshold=0.15)
    result = selector.select(CHOICES, "refund my payment and tell me where my parcel is")
    assert set(result.inds) == {0, 1}
    assert all(r.startswith("synaptoroute: matched") for r in result.reasons)


@pytest.fixture
def router(li_encoder):
    router = SemanticRouter(li_encoder, threshold=0.45)
    router.add(Route("payments", ["I was charged twice", "refund my payment", "where is my invoice"]))
    router.add(Route("shipping", ["track my order", "where is my parcel"]))
    router.add(Route("smalltalk", ["hello there", "how are you"]))
    yield router
    router.close()


def test_router_routes_map_to_choices_by_name_and_route_map(router):
    selector = SynaptoRouteSelector(router, route_map={"payments": "billing"}, fallback="hr")
    assert selector.select(CHOICES, "please refund my payment").inds == [0]
    assert selector.select(CHOICES, "where is my parcel").inds == [1]
    by_index = SynaptoRouteSelector(router, route_map={"payments": 0, "shipping": 1})
    assert by_index.select(CHOICES, "please refund my payment").inds == [0]


def test_router_route_that_is_no_choice_leads_to_the_fallback(router):
    selector = SynaptoRouteSelector(router, route_map={"payments": "billing"}, fallback="hr")
    result = selector.select(CHOICES, "hello there, how are you")
    assert result.inds == [2]
    assert "'smalltalk', which is none of the choices" in result.reason


def test_string_choices_work_in_seeded_mode(selector):
    result = selector.select(
        ["Questions about the weather forecast.", "Questions about cooking recipes."], "will it rain tomorrow"
    )
    assert result.inds == [0]
    assert "choice 0" in result.reason


async def test_aselect_does_not_block_the_event_loop(li_encoder):
    selector = SynaptoRouteSelector(encoder=li_encoder)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    result = await selector.aselect(CHOICES, QueryBundle("where is my package"))
    done.set()
    await task
    assert result.inds == [1]
    assert ticks > 1  # the loop kept running while seeding and embedding happened in a thread


def test_bad_options_are_typed_errors(li_encoder, router):
    with pytest.raises(InvalidTypeError):
        SynaptoRouteSelector("not a router")
    with pytest.raises(InvalidInputError):
        SynaptoRouteSelector(top_k=0)
    with pytest.raises(InvalidThresholdError):
        SynaptoRouteSelector(threshold=1.5)
    with pytest.raises(InvalidInputError):
        SynaptoRouteSelector(route_map={"a": "b"})
    with pytest.raises(InvalidInputError):
        SynaptoRouteSelector(router, encoder=li_encoder)
    with pytest.raises(InvalidTypeError):
        SynaptoRouteSelector(examples={"billing": "one string"})
    with pytest.raises(InvalidInputError):
        SynaptoRouteSelector(encoder=li_encoder).select([], "anything")


class _Answer(CustomQueryEngine):
    answer: str

    def custom_query(self, query_str: str) -> str:
        return f"{self.answer}: {query_str}"


def _engine_tools() -> list[QueryEngineTool]:
    return [
        QueryEngineTool(query_engine=_Answer(answer=m.name), metadata=m)  # type: ignore[arg-type]
        for m in CHOICES
    ]


def test_router_query_engine_uses_the_selector(li_encoder):
    engine = RouterQueryEngine(
        selector=SynaptoRouteSelector(encoder=li_encoder, fallback="hr"),
        query_engine_tools=_engine_tools(),
        llm=MockLLM(),
    )
    assert str(engine.query("where is my parcel")) == "shipping: where is my parcel"
    response = engine.query("who painted the mona lisa")
    assert str(response) == "hr: who painted the mona lisa"
    assert "fallback" in response.metadata["selector_result"].reason


async def test_router_query_engine_async(li_encoder):
    engine = RouterQueryEngine(
        selector=SynaptoRouteSelector(encoder=li_encoder), query_engine_tools=_engine_tools(), llm=MockLLM()
    )
    response = await engine.aquery("how many sick days can I take")
    assert str(response) == "hr: how many sick days can I take"


class _Fixed(BaseRetriever):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [NodeWithScore(node=TextNode(text=self.text), score=1.0)]


def test_router_retriever_uses_the_selector(li_encoder):
    retriever = RouterRetriever(
        selector=SynaptoRouteSelector(encoder=li_encoder),
        retriever_tools=[RetrieverTool(retriever=_Fixed(m.name), metadata=m) for m in CHOICES],
        llm=MockLLM(),
    )
    nodes = retriever.retrieve("is my refund processed yet")
    assert [n.node.get_content() for n in nodes] == ["billing"]


def test_missing_llama_index_core_names_the_package(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "llama_index.core", None)
    monkeypatch.delitem(sys.modules, "llama_index.selectors.synaptoroute.selector")
    with pytest.raises(ImportError, match="pip install 'llama-index-core'"):
        import llama_index.selectors.synaptoroute.selector  # noqa: F401


def test_similar_descriptions_are_told_apart_by_name_and_reordering_keeps_the_mapping(li_encoder):
    desc = "Answers questions about the data behind this tool."
    choices = [
        ToolMetadata(name="stock_prices", description=desc),
        ToolMetadata(name="weather_forecast", description=desc),
        ToolMetadata(name="restaurant_menu", description=desc),
    ]
    sel = SynaptoRouteSelector(encoder=li_encoder, threshold=0.0)
    picked = sel.select(choices, "will it rain tomorrow?").selections[0]
    assert choices[picked.index].name == "weather_forecast"
    reordered = [choices[2], choices[1], choices[0]]
    picked = sel.select(reordered, "what is the share price of ACME today?").selections[0]
    assert reordered[picked.index].name == "stock_prices"
    assert len(sel._seeded) == 1  # the reordered list reused the seeded routes


def test_select_turn_keeps_a_follow_up_on_its_choice(router):
    """RouterQueryEngine hands the selector one query; select_turn reads the chat's human turns:
    the follow-up keeps billing, a new topic switches, a foreign message gets the fallback."""
    selector = SynaptoRouteSelector(router, route_map={"payments": "billing"}, fallback="hr")
    request = "I was charged twice, please refund my payment"
    follow_up = "and the one from last month too"
    assert selector.select(CHOICES, follow_up).inds == [2]  # alone: nothing passes, the fallback
    assert selector.select_turn(CHOICES, [request, follow_up]).inds == [0]
    assert selector.select_turn(CHOICES, [request, follow_up], previous="billing").inds == [0]
    assert selector.select_turn(CHOICES, [request, "where is my parcel"]).inds == [1]
    assert selector.select_turn(CHOICES, [request, "who painted the mona lisa?"]).inds == [2]
    off = SynaptoRouteSelector(router, route_map={"payments": "billing"}, fallback="hr", carry_over=False)
    assert off.select_turn(CHOICES, [request, follow_up]).inds == [2]
    result = asyncio.run(selector.aselect_turn(CHOICES, [request, follow_up], previous=0))
    assert result.inds == [0]


def test_select_turn_in_seeded_mode_and_bad_previous(selector):
    turns = ["can I get a refund for a double charge", "and for the other invoice as well?"]
    assert selector.select_turn(CHOICES, turns, previous="billing").inds == [0]
    with pytest.raises(InvalidInputError, match="none of the choices"):
        selector.select_turn(CHOICES, turns, previous="nope")
    with pytest.raises(InvalidTypeError):
        selector.select_turn(CHOICES, turns, previous=1.5)
    with pytest.raises(InvalidInputError):
        SynaptoRouteSelector(context_turns=0)


def test_top_k_routes_each_clause_and_names_it(router):
    """Two requests in one query: the whole passes one threshold at most, each clause its own."""
    selector = SynaptoRouteSelector(router, route_map={"payments": "billing"}, fallback="hr", top_k=2)
    query = "I was charged twice on my card last week, and also where is my parcel"
    result = selector.select(CHOICES, query)
    assert sorted(result.inds) == [0, 1]
    reasons = {s.index: s.reason for s in result.selections}
    assert "where is my parcel'" in reasons[1]
    assert selector.select(CHOICES, "who painted the mona lisa?").inds == [2]  # nothing: the fallback
