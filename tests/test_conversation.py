"""Conversation context in the engine: follow-ups keep their route, new topics switch, foreign
messages abstain; ToolSelector options (always_include, max_tools, tool names as given)."""

from __future__ import annotations

import pytest

from synaptoroute_agents import (
    BundledEncoder,
    InvalidInputError,
    InvalidQueryError,
    InvalidTypeError,
    Route,
    SemanticRouter,
    ToolSelector,
    conversation,
)
from synaptoroute_agents.conversation import ConversationOptions, adecide_turn, decide_turn


@pytest.fixture(scope="module")
def encoder() -> BundledEncoder:
    return BundledEncoder(threads=2)


@pytest.fixture(scope="module")
def router(encoder: BundledEncoder) -> SemanticRouter:
    r = SemanticRouter(encoder, threshold=0.55)
    r.add(Route("billing", ["I was charged twice", "where is my invoice", "refund my payment"]))
    r.add(Route("weather", ["will it rain tomorrow", "weekend forecast", "how hot is it today"]))
    r.add(Route("network", ["the wifi keeps dropping", "I cannot reach the VPN", "ping is very slow"]))
    return r


def test_a_follow_up_keeps_the_route_a_new_topic_switches_a_foreign_message_abstains(
    router: SemanticRouter,
) -> None:
    turns = ["I was charged twice for my last order", "it happened again this morning"]
    assert router.route(turns[-1]).name is None  # alone, the follow-up names nothing
    follow = decide_turn(router, turns, previous="billing")
    assert (follow.name, follow.source) == ("billing", "carried")
    assert follow.latest.name is None
    switch = decide_turn(router, [*turns, "will it rain tomorrow in Oslo?"], previous="billing")
    assert (switch.name, switch.source) == ("weather", "latest")
    foreign = decide_turn(router, [*turns, "who painted the mona lisa"], previous="billing")
    assert (foreign.name, foreign.source) == (None, "none")
    off = decide_turn(router, turns, previous="billing", options=ConversationOptions(carry_over=False))
    assert off.name is None


@pytest.mark.parametrize("threshold", [0.55, 0.45, 0.4])
def test_a_foreign_message_right_after_a_near_exact_match_reaches_the_fallback(
    encoder: BundledEncoder, threshold: float
) -> None:
    """The request matches a stored utterance word for word, so the joined text "will it rain
    tomorrow. who painted the mona lisa" still passed the weather threshold; the foreign message
    took over the conversation's meaning, so it is no follow-up and must reach the fallback."""
    r = SemanticRouter(encoder, threshold=threshold)
    r.add(Route("billing", ["I was charged twice", "where is my invoice", "refund my payment"]))
    r.add(Route("weather", ["will it rain tomorrow", "weekend forecast", "how hot is it today"]))
    r.add(Route("network", ["the wifi keeps dropping", "I cannot reach the VPN", "ping is very slow"]))
    for request, foreign in [
        ("will it rain tomorrow", "who painted the mona lisa"),
        ("refund my payment", "what is the capital of australia"),
    ]:
        assert r.route(foreign).name is None
        decision = decide_turn(r, [request, foreign], previous=r.route(request).name)
        assert (decision.name, decision.source) == (None, "none"), (request, foreign)
    # a real follow-up of the same request is still carried
    kept = decide_turn(r, ["will it rain tomorrow", "and on saturday?"], previous="weather")
    assert kept.name == "weather"


LONG_REQUESTS = {
    "billing": "I was charged twice for my order last week and I would like a refund of the payment please",
    "weather": "will it rain tomorrow afternoon in the city where I live, I need to know before I go out",
    "network": "the wifi keeps dropping every few minutes in my office and I cannot reach the VPN at all",
}
FOREIGN_QUESTIONS = [
    "how many moons does jupiter have",
    "who wrote the odyssey",
    "what is the largest ocean on earth",
    "when did the roman empire fall",
]


def test_a_foreign_question_after_a_long_request_reaches_the_fallback(encoder: BundledEncoder) -> None:
    """A long request dominates the joined text, so "the wifi keeps dropping ... who wrote the
    odyssey" stayed closer to the request than to the question and was carried to ``network``. A
    self-contained question is no follow-up: it must reach the fallback (default threshold), and a
    tool selector with a threshold must offer no tools."""
    r = SemanticRouter(encoder)
    r.add(Route("billing", ["I was charged twice", "where is my invoice", "refund my payment"]))
    r.add(Route("weather", ["will it rain tomorrow", "weekend forecast", "how hot is it today"]))
    r.add(Route("network", ["the wifi keeps dropping", "I cannot reach the VPN", "ping is very slow"]))
    selector = ToolSelector([refund_payment, get_weather, reset_wifi], k=1, threshold=0.3, encoder=encoder)
    for route, request in LONG_REQUESTS.items():
        assert r.route(request).name == route
        offered = selector.select_turn([request])
        assert offered
        for question in FOREIGN_QUESTIONS:
            assert r.route(question).name is None
            decision = decide_turn(r, [request, question], previous=route)
            assert (decision.name, decision.source) == (None, "none"), (request, question)
            assert selector.select_turn([request, question], previous=offered) == [], (request, question)


def test_an_elliptical_follow_up_after_a_long_request_keeps_its_route(encoder: BundledEncoder) -> None:
    r = SemanticRouter(encoder)
    r.add(Route("billing", ["I was charged twice", "where is my invoice", "refund my payment"]))
    r.add(Route("weather", ["will it rain tomorrow", "weekend forecast", "how hot is it today"]))
    r.add(Route("network", ["the wifi keeps dropping", "I cannot reach the VPN", "ping is very slow"]))
    selector = ToolSelector([refund_payment, get_weather, reset_wifi], k=1, threshold=0.3, encoder=encoder)
    for route, request in LONG_REQUESTS.items():
        offered = selector.select_turn([request])
        for follow_up in ["could you try once more", "and what about the day after?", "and an hour later?"]:
            assert r.route(follow_up).name is None
            decision = decide_turn(r, [request, follow_up], previous=route)
            assert (decision.name, decision.source) == (route, "carried"), (request, follow_up)
            assert selector.select_turn([request, follow_up], previous=offered) == offered, (
                request,
                follow_up,
            )


def test_a_follow_up_about_the_route_is_carried_though_not_elliptical(encoder: BundledEncoder) -> None:
    """ "and the ping on the laptop?" is no elliptical phrasing (it is nearer the self-contained
    prototypes), but it is nearer the route's own utterances than any of them: it is carried. The
    prototypes are embedded once per encoder."""
    r = SemanticRouter(encoder, threshold=0.6)
    r.add(Route("network", ["the wifi keeps dropping", "I cannot reach the VPN", "ping is very slow"]))
    r.add(Route("weather", ["will it rain tomorrow", "weekend forecast", "how hot is it today"]))
    follow_up = "and the ping on the laptop?"
    alone = r.route(follow_up)
    assert alone.name is None
    vector = r.embed([follow_up])[0]
    prototypes = conversation.prototype_vectors(r)
    assert conversation.prototype_vectors(r) is prototypes
    assert conversation.is_self_contained(vector, -1.0, prototypes)  # not elliptical
    similarity = conversation.nearest_utterance(alone, {"network"})
    assert not conversation.is_self_contained(vector, similarity, prototypes)  # but about the route
    decision = decide_turn(r, [LONG_REQUESTS["network"], follow_up], previous="network")
    assert (decision.name, decision.source) == ("network", "carried")


async def test_the_async_twins_tell_a_foreign_question_from_a_follow_up(encoder: BundledEncoder) -> None:
    r = SemanticRouter(encoder)
    r.add(Route("network", ["the wifi keeps dropping", "I cannot reach the VPN", "ping is very slow"]))
    r.add(Route("weather", ["will it rain tomorrow", "weekend forecast", "how hot is it today"]))
    selector = ToolSelector([get_weather, reset_wifi], k=1, threshold=0.3, encoder=encoder)
    request = LONG_REQUESTS["network"]
    foreign = await adecide_turn(r, [request, "who wrote the odyssey"], previous="network")
    assert foreign.name is None
    kept = await adecide_turn(r, [request, "could you try once more"], previous="network")
    assert kept.name == "network"
    assert await selector.aselect_turn([request, "who wrote the odyssey"], previous=["reset_wifi"]) == []
    assert await selector.aselect_turn([request, "could you try once more"], previous=["reset_wifi"]) == [
        "reset_wifi"
    ]


def test_context_is_bounded_by_context_turns(router: SemanticRouter) -> None:
    turns = ["I was charged twice for my last order", "it happened again this morning"]
    one = ConversationOptions(context_turns=1)
    assert decide_turn(router, turns, options=one).name is None
    with pytest.raises(InvalidInputError):
        ConversationOptions(context_turns=0)
    with pytest.raises(InvalidTypeError):
        ConversationOptions(carry_over="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError):
        decide_turn(router, ["  "])
    with pytest.raises(InvalidTypeError):
        decide_turn(router, "a string is not a list of turns")


def refund_payment(order_id: str) -> str:
    """Refund a payment that was charged twice."""
    return "ok"


def get_weather(city: str) -> str:
    """Get the weather forecast for a city."""
    return "sunny"


def search_docs(query: str) -> str:
    """Search the internal documentation."""
    return ""


def reset_wifi() -> str:
    """Restart the office wifi access point."""
    return "ok"


def test_tool_follow_up_keeps_the_previous_tools(encoder: BundledEncoder) -> None:
    selector = ToolSelector([refund_payment, get_weather, reset_wifi], k=1, threshold=0.3, encoder=encoder)
    turns = ["I was charged twice for my last order", "it happened again this morning"]
    first = selector.select_turn(turns[:1])
    assert first == ["refund_payment"]
    assert selector.select(turns[-1]) != ["refund_payment"]  # alone: not the refund tool
    assert selector.select_turn(turns, previous=first) == ["refund_payment"]
    assert selector.select_turn([*turns, "will it rain in Oslo tomorrow?"], previous=first) == ["get_weather"]
    assert selector.select_turn([*turns, "who painted the mona lisa"], previous=first) == []


def test_always_include_adds_to_k_and_unknown_names_raise(encoder: BundledEncoder) -> None:
    tools = [refund_payment, get_weather, search_docs, reset_wifi]
    selector = ToolSelector(tools, k=1, encoder=encoder, always_include=["search_docs"])
    assert selector.select("will it rain tomorrow?") == ["search_docs", "get_weather"]
    with pytest.raises(InvalidInputError, match="unknown tool"):
        ToolSelector(tools, encoder=encoder, always_include=["no_such_tool"])
    assert ToolSelector(tools, max_tools=2, encoder=encoder).k == 2
    with pytest.raises(InvalidInputError, match="disagree"):
        ToolSelector(tools, k=1, max_tools=2, encoder=encoder)


def test_tool_names_langchain_accepts_are_kept_as_given(encoder: BundledEncoder) -> None:
    tools = [
        {"name": "Get Weather", "description": "Get the weather forecast for a city."},
        {"name": "Refund Payment", "description": "Refund a payment that was charged twice."},
    ]
    selector = ToolSelector(tools, k=1, encoder=encoder)
    assert selector.names == ["Get Weather", "Refund Payment"]
    assert selector.select("will it rain tomorrow?") == ["Get Weather"]
    assert selector.tool("Get Weather") is tools[0]
    assert selector.route_name("Get Weather") != "Get Weather"  # stored under a valid route name


def test_a_changed_docstring_reseeds_a_persistent_store_and_counts_are_reported(
    encoder: BundledEncoder, tmp_path
) -> None:
    store = tmp_path / "tools.db"

    def lookup(order_id: str) -> str:
        """Track a parcel and tell where it is."""
        return ""

    with SemanticRouter(encoder, store=store) as router:
        first = ToolSelector([lookup], router=router)
        assert first.reseeded == ["lookup"]
        counts = first.utterance_counts()
        assert counts == {"lookup": len(router.get("lookup").utterances)} and counts["lookup"] >= 1
        assert any("parcel" in u for u in router.get("lookup").utterances)

    def lookup(order_id: str) -> str:  # noqa: F811 - the same tool, its docstring rewritten
        """Look up an invoice and show how much is owed."""
        return ""

    with SemanticRouter(encoder, store=store) as router:
        again = ToolSelector([lookup], router=router)
        assert again.reseeded == ["lookup"]
        utterances = router.get("lookup").utterances
        assert any("invoice" in u for u in utterances) and not any("parcel" in u for u in utterances)
    with SemanticRouter(encoder, store=store) as router:
        assert ToolSelector([lookup], router=router).reseeded == []  # unchanged: kept as stored


def test_seeds_include_a_request_shaped_question() -> None:
    from synaptoroute_agents import seed_route

    def get_weather(city: str) -> str:
        """Return the weather forecast for a city, in degrees Celsius."""
        return ""

    assert "what is the weather forecast for a city?" in seed_route(get_weather).utterances
