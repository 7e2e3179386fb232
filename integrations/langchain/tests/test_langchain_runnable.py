from __future__ import annotations

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_synaptoroute import SynaptoRouteRunnable, as_runnable, query_from_input

from synaptoroute_agents import InvalidInputError, InvalidQueryError, InvalidTypeError, Route


def _tagger(name: str):
    return RunnableLambda(lambda value: (name, value))


@pytest.fixture
def runnable(lc_router) -> SynaptoRouteRunnable:
    return as_runnable(
        lc_router,
        {"billing": _tagger("billing"), "weather": _tagger("weather"), "shipping": _tagger("shipping")},
        fallback=_tagger("fallback"),
    )


def test_string_input_goes_to_the_chosen_route_unchanged(runnable):
    assert runnable.invoke("I was charged twice this month") == ("billing", "I was charged twice this month")
    assert runnable.invoke("will it snow this weekend?")[0] == "weather"


def test_abstention_goes_to_the_fallback(runnable):
    assert runnable.invoke("what is the meaning of life") == ("fallback", "what is the meaning of life")


def test_message_list_uses_the_last_human_message(runnable):
    messages = [
        SystemMessage("you are helpful"),
        HumanMessage("what's the forecast for saturday"),
        AIMessage("sunny"),
        HumanMessage("and where is my parcel?"),
        AIMessage("let me check"),
    ]
    route, value = runnable.invoke(messages)
    assert route == "shipping" and value is messages


def test_dict_input_with_default_and_custom_keys(lc_router):
    default = as_runnable(
        lc_router, {n: _tagger(n) for n in ("billing", "weather", "shipping")}, fallback=_tagger("fb")
    )
    assert default.invoke({"input": "refund my payment", "user": 7}) == (
        "billing",
        {"input": "refund my payment", "user": 7},
    )
    assert default.invoke({"messages": [HumanMessage("track my order")]})[0] == "shipping"
    custom = as_runnable(
        lc_router,
        {n: _tagger(n) for n in ("billing", "weather", "shipping")},
        fallback=_tagger("fb"),
        query_key="text",
    )
    assert custom.invoke({"text": "rain tomorrow?", "input": "refund"})[0] == "weather"
    with pytest.raises(InvalidQueryError, match="'text'"):
        custom.invoke({"input": "refund"})


def test_callables_and_chains_as_targets(lc_router):
    chain = (
        ChatPromptTemplate.from_messages([("human", "{input}")])
        | GenericFakeChatModel(messages=iter([AIMessage("Your refund is on its way.")]))
        | StrOutputParser()
    )
    router = as_runnable(
        lc_router,
        {"billing": chain, "weather": lambda v: "sunny", "shipping": lambda v: "in transit"},
        fallback=lambda v: "sorry",
    )
    assert router.invoke({"input": "please refund my payment"}) == "Your refund is on its way."
    assert router.invoke({"input": "when will my package arrive"}) == "in transit"
    assert router.invoke({"input": "tell me a joke"}) == "sorry"


async def test_ainvoke_matches_invoke(runnable):
    for query in ("I was charged twice", "weekend forecast please", "hello there, how are you"):
        assert await runnable.ainvoke(query) == runnable.invoke(query)


def test_batch_routes_all_inputs_and_keeps_order(runnable):
    queries = [
        "refund my payment",
        "rain tomorrow?",
        "who won the football match",
        "track my order",
        "invoice please",
    ]
    out = runnable.batch(queries)
    assert [route for route, _ in out] == ["billing", "weather", "fallback", "shipping", "billing"]
    assert [value for _, value in out] == queries


def test_batch_groups_inputs_per_target(lc_router):
    calls: list[tuple[str, int]] = []

    class Counting(RunnableLambda):
        def batch(self, inputs, config=None, **kwargs):  # one call per target and batch
            calls.append((self.name, len(inputs)))
            return super().batch(inputs, config, **kwargs)

    targets = {n: Counting(lambda v, n=n: n, name=n) for n in ("billing", "weather", "shipping")}
    router = as_runnable(lc_router, targets, fallback=Counting(lambda v: "fallback", name="fallback"))
    out = router.batch(["refund my payment", "where is my invoice", "rain tomorrow?", "tell me a joke"])
    assert out == ["billing", "billing", "weather", "fallback"]
    assert sorted(calls) == [("billing", 2), ("fallback", 1), ("weather", 1)]


async def test_abatch_matches_batch(runnable):
    queries = ["refund my payment", "rain tomorrow?", "who won the football match", "track my order"]
    assert await runnable.abatch(queries) == runnable.batch(queries)
    assert await runnable.abatch([]) == []


def test_batch_reports_bad_inputs_per_item(runnable):
    out = runnable.batch(["refund my payment", "   ", 42], return_exceptions=True)
    assert out[0][0] == "billing"
    assert isinstance(out[1], InvalidQueryError)
    assert isinstance(out[2], InvalidTypeError)
    with pytest.raises(InvalidQueryError):
        runnable.batch(["refund my payment", "   "])


def test_every_route_needs_a_runnable_at_construction(lc_router):
    with pytest.raises(InvalidInputError, match="shipping"):
        as_runnable(lc_router, {"billing": _tagger("b"), "weather": _tagger("w")}, fallback=_tagger("f"))
    with pytest.raises(InvalidInputError, match="sports"):
        as_runnable(
            lc_router,
            {n: _tagger(n) for n in ("billing", "weather", "shipping", "sports")},
            fallback=_tagger("f"),
        )
    with pytest.raises(InvalidTypeError, match="fallback"):
        as_runnable(lc_router, {n: _tagger(n) for n in ("billing", "weather", "shipping")}, fallback=3)
    with pytest.raises(TypeError):
        as_runnable(
            lc_router, {n: _tagger(n) for n in ("billing", "weather", "shipping")}
        )  # fallback is required


def test_route_added_later_goes_to_the_fallback(runnable, lc_router, caplog):
    lc_router.add(Route("sports", ["who won the football match", "basketball scores tonight"]))
    with caplog.at_level("WARNING"):
        assert runnable.invoke("who won the football match last night")[0] == "fallback"
    assert "sports" in caplog.text


def test_query_from_input_shapes():
    assert query_from_input("hi") == "hi"
    assert query_from_input(HumanMessage("hello")) == "hello"
    assert query_from_input([AIMessage("only an ai message")]) == "only an ai message"
    assert query_from_input(ChatPromptTemplate.from_messages([("human", "x {a}")]).invoke({"a": 1})) == "x 1"
    assert query_from_input({"question": "why"}) == "why"
    with pytest.raises(InvalidQueryError):
        query_from_input([])
    with pytest.raises(InvalidTypeError):
        query_from_input(["not a message"])
    with pytest.raises(InvalidTypeError):
        query_from_input(3.5)


def test_child_runs_are_traced_under_the_router(runnable):
    class Names(BaseCallbackHandler):
        def __init__(self) -> None:
            self.starts: list[tuple[str | None, list[str]]] = []

        def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, tags=None, **kwargs):
            self.starts.append((kwargs.get("name"), list(tags or [])))

    handler = Names()
    runnable.invoke("refund my payment", {"callbacks": [handler]})
    names = [name for name, _ in handler.starts]
    assert names[0] == "SynaptoRouteRunnable"
    assert any("synaptoroute:billing" in tags for _, tags in handler.starts[1:])


def test_default_takes_the_routes_the_mapping_leaves_out(lc_router):
    chain = as_runnable(
        lc_router, {"billing": _tagger("billing")}, fallback=_tagger("fallback"), default=_tagger("default")
    )
    assert chain.invoke("I was charged twice this month")[0] == "billing"
    assert chain.invoke("will it snow this weekend?")[0] == "default"  # weather is unmapped
    assert chain.invoke("what is the meaning of life")[0] == "fallback"  # abstained
    assert [out[0] for out in chain.batch(["where is my parcel", "refund my payment"])] == [
        "default",
        "billing",
    ]
    with pytest.raises(InvalidInputError, match="default="):
        as_runnable(lc_router, {"billing": _tagger("billing")}, fallback=_tagger("fallback"))


def _words(value):
    yield from ("one", "two", "three")


def test_stream_yields_the_targets_chunks_one_by_one(lc_router):
    from langchain_core.runnables import RunnableGenerator

    chain = as_runnable(
        lc_router,
        {
            "billing": RunnableGenerator(_words),
            "weather": _tagger("weather"),
            "shipping": _tagger("shipping"),
        },
        fallback=_tagger("fallback"),
    )
    assert list(chain.stream("I was charged twice this month")) == ["one", "two", "three"]


async def test_astream_events_announce_the_decision_before_the_first_chunk(lc_router):
    from langchain_core.runnables import RunnableGenerator

    async def words(value):
        for word in ("one", "two", "three"):
            yield word

    chain = as_runnable(
        lc_router,
        {"billing": RunnableGenerator(words), "weather": _tagger("weather"), "shipping": _tagger("shipping")},
        fallback=_tagger("fallback"),
    )
    kinds = []
    async for event in chain.astream_events("I was charged twice this month", version="v2"):
        if event["event"] == "on_custom_event":
            assert event["name"] == "synaptoroute_decision"
            assert event["data"]["route"] == "billing"
            kinds.append("decision")
        elif event["event"] == "on_chain_stream" and event["name"] == chain.name:
            kinds.append(event["data"]["chunk"])
    assert kinds == ["decision", "one", "two", "three"]


async def test_a_follow_up_in_a_message_list_keeps_the_route(lc_router):
    chain = as_runnable(
        lc_router,
        {"billing": _tagger("billing"), "weather": _tagger("weather"), "shipping": _tagger("shipping")},
        fallback=_tagger("fallback"),
    )
    history = [HumanMessage("I was charged twice for my last order"), AIMessage("Sorry!")]
    follow = [*history, HumanMessage("it happened again this morning")]
    assert lc_router.route("it happened again this morning").name is None
    assert chain.invoke(follow)[0] == "billing"
    assert (await chain.ainvoke({"messages": follow}))[0] == "billing"
    assert chain.invoke([*history, HumanMessage("will it snow this weekend?")])[0] == "weather"
    plain = as_runnable(
        lc_router,
        {"billing": _tagger("billing"), "weather": _tagger("weather"), "shipping": _tagger("shipping")},
        fallback=_tagger("fallback"),
        carry_over=False,
    )
    assert plain.invoke(follow)[0] == "fallback"
