"""SemanticRouter with the real bundled model: routing, mutations, bad input, concurrency."""

from __future__ import annotations

import asyncio
import threading

import pytest

from synaptoroute_agents import (
    DuplicateRouteError,
    InvalidInputError,
    InvalidQueryError,
    InvalidRouteError,
    InvalidTypeError,
    Reason,
    Route,
    RouteNotFoundError,
    RouterClosedError,
    SemanticRouter,
)

ROUTES = [
    Route("weather", ["what's the weather like today", "will it rain tomorrow", "forecast for the weekend"]),
    Route("billing", ["I was charged twice", "where is my invoice", "refund my last payment"]),
    Route("password", ["I forgot my password", "reset my login", "my account is locked"]),
]


@pytest.fixture
def router(encoder) -> SemanticRouter:
    r = SemanticRouter(encoder=encoder)
    for route in ROUTES:
        r.add(route)
    yield r
    r.close()


def test_routes_queries_to_the_right_route_with_explanations(router: SemanticRouter) -> None:
    m = router.route("is it going to rain this afternoon?")
    assert m.name == "weather" and m.reason == Reason.MATCHED and m
    assert m.candidates[0].name == "weather" and m.score == m.candidates[0].score
    assert m.margin == pytest.approx(m.candidates[0].score - m.candidates[1].score)
    assert m.evidence and m.evidence[0].route == "weather"
    assert m.evidence[0].utterance in ROUTES[0].utterances
    # candidates are routes (aggregated), each at most once
    names = [c.name for c in m.candidates]
    assert len(names) == len(set(names)) == 3


def test_abstains_below_threshold(router: SemanticRouter) -> None:
    m = router.route("explain quantum chromodynamics")
    assert m.name is None and m.reason == Reason.BELOW_THRESHOLD and not m
    assert m.candidates  # still ranked, for the fallback branch to inspect


def test_per_route_threshold_wins_over_default(router: SemanticRouter) -> None:
    q = "is it going to rain this afternoon?"
    score = router.route(q).score
    router.update(Route("weather", ROUTES[0].utterances, threshold=min(1.0, score + 0.01)))
    assert router.route(q).reason == Reason.BELOW_THRESHOLD
    router.update(Route("weather", ROUTES[0].utterances, threshold=None))
    assert router.route(q).name == "weather"


def test_ambiguity_margin(encoder) -> None:
    with SemanticRouter(encoder=encoder, ambiguity_margin=0.5, threshold=0.0) as r:
        for route in ROUTES:
            r.add(route)
        m = r.route("my payment for the weather app failed")
        assert m.name is None and m.reason == Reason.AMBIGUOUS


def test_top_k_multi_intent(router: SemanticRouter) -> None:
    m = router.route("I forgot my password and was charged twice", top_k=2)
    assert {"password", "billing"} <= {c.name for c in m.candidates[:2]}
    assert set(m.selected) == {"password", "billing"}


def test_empty_router(encoder) -> None:
    with SemanticRouter(encoder=encoder) as r:
        m = r.route("anything")
        assert m.name is None and m.reason == Reason.EMPTY_ROUTER and m.candidates == ()


def test_hot_reload_add_update_delete_take_effect_at_once(router: SemanticRouter) -> None:
    q = "book me a flight to Lisbon"
    assert router.route(q).name is None
    router.add(Route("travel", ["book a flight", "reserve a plane ticket to Rome"]))
    assert router.route(q).name == "travel"
    router.update(Route("travel", ["rent a car at the airport"]))
    assert router.get("travel").utterances == ("rent a car at the airport",)
    assert router.route("reserve a plane ticket to Rome").candidates[0].score < 0.99
    router.delete("travel")
    assert "travel" not in router
    assert all(c.name != "travel" for c in router.route(q, top_k=5).candidates)


def test_teach_and_forget_utterances(router: SemanticRouter) -> None:
    q = "my card got declined at checkout"
    assert router.add_utterances("billing", [q, "I was charged twice"]) == 1
    m = router.route(q)
    assert m.name == "billing" and m.score > 0.99
    assert router.remove_utterances("billing", [q]) == 1
    assert router.route(q).score < 0.99
    assert q not in router.get("billing").utterances
    with pytest.raises(InvalidRouteError):
        router.remove_utterances("billing", list(router.get("billing").utterances))


def test_unknown_and_duplicate_routes(router: SemanticRouter) -> None:
    with pytest.raises(DuplicateRouteError):
        router.add(Route("weather", ["sunny?"]))
    for call in (
        lambda: router.get("nope"),
        lambda: router.delete("nope"),
        lambda: router.update(Route("nope", ["x"])),
        lambda: router.add_utterances("nope", ["x"]),
        lambda: router.remove_utterances("nope", ["x"]),
    ):
        with pytest.raises(RouteNotFoundError):
            call()
    assert len(router) == 3  # nothing changed


@pytest.mark.parametrize("bad", ["", "   ", "\x00\x00", b"\xff\xfe"])
def test_bad_queries_raise_typed_errors(router: SemanticRouter, bad: object) -> None:
    with pytest.raises(InvalidQueryError):
        router.route(bad)  # type: ignore[arg-type]


def test_wrong_types_raise_typed_errors(router: SemanticRouter) -> None:
    with pytest.raises(InvalidTypeError):
        router.route(123)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        router.route_batch("not a list")
    with pytest.raises(InvalidTypeError):
        router.add("weather")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        router.route("hello", top_k=0)


def test_odd_unicode_and_huge_queries_route(router: SemanticRouter) -> None:
    assert router.route("🌧️☔ will it rain tomorrow? ☔").name == "weather"
    assert router.route("هل ستمطر غدا؟ will it rain tomorrow").name == "weather"
    huge = "will it rain tomorrow " + "lorem ipsum " * 90_000  # ~1 MB
    m = router.route(huge)
    assert m.reason in set(Reason) and m.candidates


def test_route_batch_matches_single_routes(router: SemanticRouter) -> None:
    qs = ["refund please", "reset my password", "sunny tomorrow?"]
    batch = router.route_batch(qs)
    assert [m.name for m in batch] == [router.route(q).name for q in qs] == ["billing", "password", "weather"]
    assert router.route_batch([]) == []


async def test_aroute_does_not_block_the_loop(router: SemanticRouter) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.create_task(ticker())
    results = await asyncio.gather(*(router.aroute("will it rain tomorrow") for _ in range(8)))
    t.cancel()
    assert all(m.name == "weather" for m in results)
    assert ticks > 8  # the loop kept running while the model worked


def test_closed_router_refuses_work(encoder) -> None:
    r = SemanticRouter(encoder=encoder)
    with r:
        r.add(Route("a", ["hello"]))
    with pytest.raises(RouterClosedError):
        r.route("hello")
    with pytest.raises(RouterClosedError):
        r.add(Route("b", ["bye"]))


def test_concurrent_routing_and_mutation(router: SemanticRouter) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                m = router.route("will it rain tomorrow")
                assert m.name in ("weather", None) or m.name.startswith("extra_")
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                return

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in readers:
        t.start()

    def writer(n: int) -> None:
        try:
            for j in range(5):
                name = f"extra_{n}_{j}"
                router.add(Route(name, [f"topic number {n} {j} about gardening"]))
                if j % 2:
                    router.delete(name)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors
    assert len(router) == 3 + 4 * 3
    assert router.route("will it rain tomorrow").name == "weather"


def test_upsert_and_replace_make_setup_code_idempotent(encoder, tmp_path):
    from synaptoroute_agents import DuplicateRouteError, Route, SemanticRouter

    db = str(tmp_path / "routes.db")
    for run in range(2):  # the same set-up code, run twice on the same store
        with SemanticRouter(encoder, store=db) as router:
            router.add(Route("billing", ["I was charged twice", "where is my invoice"]), replace=True)
            router.add_many(
                [Route("weather", ["will it rain tomorrow"]), Route("music", ["play some jazz"])],
                replace=True,
            )
            assert router.upsert(Route("greeting", ["hello there"])) is (run == 0)
            assert sorted(r.name for r in router.routes()) == ["billing", "greeting", "music", "weather"]
            if run == 1:
                with pytest.raises(DuplicateRouteError):
                    router.add(Route("billing", ["x y z"]))
                with pytest.raises(DuplicateRouteError):
                    router.add_many([Route("music", ["play rock"])])
    with SemanticRouter(encoder, store=db) as router:
        assert router.upsert(Route("billing", ["refund my money"])) is False
        assert router.get("billing").utterances == ("refund my money",)
        assert router.route("please refund my money").name == "billing"


def test_calling_the_router_routes(encoder):
    from synaptoroute_agents import Route, SemanticRouter

    with SemanticRouter(encoder) as router:
        router.add(Route(name="weather", utterances=["will it rain tomorrow", "weekend forecast"]))
        assert router("is it going to rain on sunday?").name == "weather"
        assert router("is it going to rain on sunday?", top_k=1) == router.route(
            "is it going to rain on sunday?"
        )
