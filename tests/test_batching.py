"""The async micro-batcher: batching, deadlines, backpressure, shutdown, event loops, snapshots."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from synaptoroute_agents import (
    LATENCY,
    THROUGHPUT,
    BatchingConfig,
    InvalidInputError,
    InvalidQueryError,
    Route,
    RouterClosedError,
    RouterOverloadedError,
    SemanticRouter,
)
from synaptoroute_agents.testing import HashEncoder

ROUTES = [
    Route("weather", ["what's the weather like today", "will it rain tomorrow", "forecast for the weekend"]),
    Route("billing", ["I was charged twice", "where is my invoice", "refund my last payment"]),
    Route("password", ["I forgot my password", "reset my login", "my account is locked"]),
]
QUERIES = [
    "is it going to rain this afternoon?",
    "I need my money back for the last charge",
    "can't log in, forgot the password",
    "tell me about medieval castles",
]


class GatedEncoder(HashEncoder):
    """Blocks inside ``embed`` until released; records the threads and batch sizes it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.threads: set[int] = set()
        self.sizes: list[int] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.threads.add(threading.get_ident())
        self.sizes.append(len(texts))
        self.entered.set()
        assert self.gate.wait(30)
        return super().embed(texts)


def _router(encoder, batching) -> SemanticRouter:
    r = SemanticRouter(encoder=encoder, batching=batching)
    for route in ROUTES:
        r.add(route)
    return r


async def test_throughput_batches_concurrent_queries_and_matches_sync_results(encoder) -> None:
    with _router(encoder, BatchingConfig(max_batch_size=16, max_wait=0.05, max_queue=256)) as r:
        queries = QUERIES * 10
        got = await asyncio.gather(*(r.aroute(q) for q in queries))
        want = r.route_batch(queries)
        assert [m.name for m in got] == [m.name for m in want]
        assert [m.reason for m in got] == [m.reason for m in want]
        assert np.allclose([m.score for m in got], [m.score for m in want], atol=1e-4)
        s = r.stats()
        assert s["batched_queries_total"] == 40
        assert s["batches_total"] < 40  # they were batched together
        hist = s["batch_size_histogram"]
        assert hist["+Inf"] == s["batches_total"]
        counts = list(hist.values())
        assert counts == sorted(counts)  # cumulative
        assert hist["16"] == s["batches_total"]  # no batch exceeded max_batch_size
        assert s["queue_depth"] == 0


async def test_lone_query_is_answered_at_the_deadline_not_held_for_a_full_batch() -> None:
    enc = HashEncoder()
    with _router(enc, BatchingConfig(max_batch_size=1000, max_wait=0.01)) as r:
        m = await asyncio.wait_for(r.aroute("will it rain tomorrow"), timeout=20)
        assert m.name == "weather"
        assert r.stats()["batch_size_histogram"]["1"] == 1


async def test_batch_closes_at_max_batch_size() -> None:
    enc = GatedEncoder()
    with _router(enc, BatchingConfig(max_batch_size=4, max_wait=5.0, max_queue=100)) as r:
        enc.sizes.clear()
        enc.gate.clear()
        enc.entered.clear()
        first = asyncio.ensure_future(r.aroute("will it rain tomorrow"))
        # wait (without blocking the loop) until the first batch is inside the encoder
        while not enc.entered.is_set():
            await asyncio.sleep(0.01)
        rest = [asyncio.ensure_future(r.aroute(f"where is my invoice {i}")) for i in range(10)]
        await asyncio.sleep(0.05)
        enc.gate.set()
        results = await asyncio.wait_for(asyncio.gather(first, *rest), timeout=60)
        assert len(results) == 11
        # with max_wait=5 s, the 10 waiting queries could only leave in full batches of 4 (+ a rest)
        assert max(enc.sizes) <= 4
        assert enc.sizes[1:3] == [4, 4]


async def test_full_queue_raises_overloaded_at_once_and_recovers() -> None:
    enc = GatedEncoder()
    cfg = BatchingConfig(max_batch_size=2, max_wait=0.0, max_queue=3, workers=1)
    with _router(enc, cfg) as r:
        enc.gate.clear()
        enc.entered.clear()
        running = asyncio.ensure_future(r.aroute("will it rain tomorrow"))
        while not enc.entered.is_set():
            await asyncio.sleep(0.01)
        waiting = [asyncio.ensure_future(r.aroute("reset my login")) for _ in range(3)]
        await asyncio.sleep(0.05)  # let them enter the queue
        assert r.stats()["queue_depth"] == 3
        with pytest.raises(RouterOverloadedError):
            await r.aroute("one too many")
        assert r.stats()["overloaded_total"] == 1
        enc.gate.set()
        done = await asyncio.wait_for(asyncio.gather(running, *waiting), timeout=60)
        assert [m.name for m in done] == ["weather", "password", "password", "password"]
        assert (await r.aroute("where is my invoice")).name == "billing"


async def test_latency_profile_bounds_queries_in_flight() -> None:
    enc = GatedEncoder()
    with _router(enc, BatchingConfig(max_batch_size=1, max_wait=0.0, max_queue=2, workers=1)) as r:
        enc.gate.clear()
        a = asyncio.ensure_future(r.aroute("will it rain tomorrow"))
        b = asyncio.ensure_future(r.aroute("reset my login"))
        await asyncio.sleep(0.05)
        with pytest.raises(RouterOverloadedError):
            await r.aroute("where is my invoice")
        enc.gate.set()
        assert [m.name for m in await asyncio.gather(a, b)] == ["weather", "password"]
        assert r.stats()["batch_size_histogram"]["1"] == 2


async def test_close_resolves_or_fails_every_pending_query() -> None:
    enc = GatedEncoder()
    with _router(enc, BatchingConfig(max_batch_size=2, max_wait=0.0, max_queue=100, workers=1)) as r:
        enc.gate.clear()
        enc.entered.clear()
        running = asyncio.ensure_future(r.aroute("will it rain tomorrow"))
        while not enc.entered.is_set():
            await asyncio.sleep(0.01)
        waiting = [asyncio.ensure_future(r.aroute(f"reset my login {i}")) for i in range(5)]
        await asyncio.sleep(0.05)
        closer = threading.Thread(target=r.close)
        closer.start()
        await asyncio.sleep(0.05)
        enc.gate.set()
        results = await asyncio.wait_for(
            asyncio.gather(running, *waiting, return_exceptions=True), timeout=60
        )
        closer.join(30)
        assert not closer.is_alive()
        # the running batch was either finished or failed cleanly; nothing hangs
        assert all(isinstance(x, RouterClosedError) for x in results[1:])
        assert not isinstance(results[0], BaseException) or isinstance(results[0], RouterClosedError)
        with pytest.raises(RouterClosedError):
            await r.aroute("anything")


def test_one_batcher_serves_several_event_loops(encoder) -> None:
    with _router(encoder, "throughput") as r:
        errors: list[BaseException] = []
        names: list[list[str | None]] = []

        def in_own_loop() -> None:
            async def go() -> list[str | None]:
                ms = await asyncio.gather(*(r.aroute(q) for q in QUERIES))
                return [m.name for m in ms]

            try:
                names.append(asyncio.run(go()))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=in_own_loop) for _ in range(4)]
        for t in threads:
            t.start()
        in_own_loop()  # and a loop in this thread, one after the other
        in_own_loop()
        for t in threads:
            t.join(60)
        assert not errors
        assert len(names) == 6
        assert all(n == ["weather", "billing", "password", None] for n in names)


async def test_inference_never_runs_on_the_event_loop_thread() -> None:
    enc = GatedEncoder()
    for batching in ("latency", "throughput"):
        with _router(enc, batching) as r:
            enc.threads.clear()
            await r.aroute("will it rain tomorrow")
            await r.aroute_batch(QUERIES * 40)
            assert threading.get_ident() not in enc.threads


async def test_aroute_batch_large_and_small_lists(encoder) -> None:
    with _router(encoder, THROUGHPUT) as r:
        small = await r.aroute_batch(QUERIES)
        big = await r.aroute_batch(QUERIES * 50)
        assert [m.name for m in small] == ["weather", "billing", "password", None]
        assert [m.name for m in big] == [m.name for m in small] * 50
        assert await r.aroute_batch([]) == []


async def test_bad_queries_fail_alone_and_at_once() -> None:
    with _router(HashEncoder(), "throughput") as r:
        good = asyncio.ensure_future(r.aroute("will it rain tomorrow"))
        with pytest.raises(InvalidQueryError):
            await r.aroute("   ")
        with pytest.raises(InvalidInputError):
            await r.aroute("will it rain", top_k=0)
        assert (await good).name == "weather"


def test_presets_and_config_validation() -> None:
    assert LATENCY.max_batch_size == 1 and THROUGHPUT.max_batch_size > 1
    for bad in (
        dict(max_batch_size=0),
        dict(max_wait=-1),
        dict(max_wait=float("nan")),
        dict(max_queue=0),
        dict(workers=True),
    ):
        with pytest.raises(InvalidInputError):
            BatchingConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        SemanticRouter(encoder=HashEncoder(), batching="fastest")
    r = SemanticRouter(encoder=HashEncoder(), batching="THROUGHPUT")
    assert r.batching == THROUGHPUT
    s = r.stats()
    assert s["queue_depth"] == 0 and s["batches_total"] == 0 and s["batch_size_histogram"]["+Inf"] == 0
    r.close()


def test_queries_see_a_route_before_or_after_an_update_never_half_way() -> None:
    """A reader looping during updates always finds the route (old or new utterances)."""
    enc = HashEncoder()
    with SemanticRouter(encoder=enc, threshold=0.3) as r:
        r.add(Route("alpha", ["alpha beta gamma one"]))
        r.add(Route("other", ["zeta eta theta"]))
        stop = threading.Event()
        misses: list[object] = []

        def reader() -> None:
            while not stop.is_set():
                m = r.route("alpha beta gamma")
                if m.name != "alpha":
                    misses.append(m.reason)

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        for i in range(300):
            # every update replaces the whole utterance set: no utterance survives it
            r.update(Route("alpha", [f"alpha beta gamma v{i}", f"alpha beta gamma w{i}"]))
        stop.set()
        for t in threads:
            t.join(30)
        assert misses == []
        assert len(r.index) == 3
