"""Replicas on one PostgreSQL store and one Redis: in-process sync, real server processes, failures.

Deadlines here are generous (the machine is shared); the measured propagation latency is a benchmark
figure (uv run --group bench python -m benchmarks.service), not an assertion.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

pytest.importorskip("redis")
pytest.importorskip("fastapi")

from benchmarks.service import ReplicaProcess, run_overload  # noqa: E402
from synaptoroute_agents import Route, RouteStore, SemanticRouter  # noqa: E402
from synaptoroute_agents.sync import ReplicaSync  # noqa: E402

from . import services  # noqa: E402

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DEADLINE = 20.0


def eventually(check: Callable[[], bool], deadline: float = DEADLINE, what: str = "condition") -> float:
    """Wait until ``check()`` is true; return the seconds it took."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > deadline:
            raise AssertionError(f"{what} not reached within {deadline} s")
        time.sleep(0.02)
    return time.monotonic() - t0


def route(name: str, *utterances: str) -> dict:
    return {"name": name, "utterances": list(utterances) or [f"an example for {name}"]}


def route_obj(name: str, *utterances: str) -> Route:
    return Route.from_dict(route(name, *utterances))  # the router takes Route objects only


# ---------------------------------------------------------------------- in process
def test_sync_propagates_once_and_ignores_own_messages(encoder, postgres_url, redis_server) -> None:
    channel = f"test:{uuid.uuid4().hex[:8]}"
    a = SemanticRouter(encoder, store=postgres_url)
    b = SemanticRouter(encoder, store=postgres_url)
    c = SemanticRouter(encoder, store=postgres_url)
    syncs = [ReplicaSync(r, redis_server.url, channel=channel, poll_interval=0) for r in (a, b, c)]
    try:
        for s in syncs:
            s.start()
        eventually(lambda: all(s.redis_connected for s in syncs), what="subscriptions")
        a.add(route_obj("vpn", "the vpn does not connect"))
        eventually(lambda: "vpn" in b and "vpn" in c, what="add on b and c")
        b.add_utterances("vpn", ["wireguard tunnel is down"])
        eventually(
            lambda: len(a.get("vpn").utterances) == 2 and len(c.get("vpn").utterances) == 2, what="teach"
        )
        assert a.route("the wireguard tunnel is down").name == "vpn"  # the index changed, not only the dict
        c.delete("vpn")
        eventually(lambda: "vpn" not in a and "vpn" not in b, what="delete")
        eventually(lambda: a.version == b.version == c.version == 3, what="versions")
        eventually(lambda: all(s.counters["ignored_own"] == 1 for s in syncs), what="own messages seen")
        # one publish per mutation, nobody re-publishes what it applied
        assert [s.counters["published"] for s in syncs] == [1, 1, 1]
        assert all(s.counters["received"] == 3 for s in syncs)
        assert a.route("the wireguard tunnel is down").name is None
    finally:
        for s in syncs:
            s.stop()
        for r in (a, b, c):
            r.close()


def test_redis_down_mutations_continue_and_replicas_converge(encoder, postgres_url) -> None:
    redis = services.start_redis()  # our own: this test stops it
    channel = f"test:{uuid.uuid4().hex[:8]}"
    writer = SemanticRouter(encoder, store=postgres_url)
    redis_only = SemanticRouter(encoder, store=postgres_url)  # no polling: must catch up on reconnect
    poll_only = SemanticRouter(encoder, store=postgres_url)  # no Redis at all
    s_writer = ReplicaSync(writer, redis.url, channel=channel, poll_interval=0).start()
    s_redis = ReplicaSync(redis_only, redis.url, channel=channel, poll_interval=0).start()
    s_poll = ReplicaSync(poll_only, None, poll_interval=0.3).start()
    try:
        eventually(lambda: s_writer.redis_connected and s_redis.redis_connected, what="subscriptions")
        writer.add(route_obj("before"))
        eventually(lambda: "before" in redis_only and "before" in poll_only, what="first change")

        redis.stop()
        eventually(lambda: not s_redis.redis_connected, what="subscriber notices Redis is gone")
        for i in range(3):  # mutations go on and are acknowledged while Redis is down
            writer.add(route_obj(f"during-{i}"))
        assert writer.route("an example for during-2").name == "during-2"
        eventually(lambda: all(f"during-{i}" in poll_only for i in range(3)), what="poll catches up")
        eventually(lambda: s_writer.counters["publish_errors"] >= 1, what="publish failure recorded")
        assert "during-0" not in redis_only  # nothing reached it yet: Redis is down and it does not poll

        redis.start()
        eventually(lambda: s_redis.redis_connected, what="subscriber reconnects")
        eventually(lambda: all(f"during-{i}" in redis_only for i in range(3)), what="catch-up on reconnect")
        writer.delete("before")
        eventually(
            lambda: "before" not in redis_only and "before" not in poll_only, what="after Redis returns"
        )
        want = sorted(writer.store.route_names())
        assert (
            sorted(r.name for r in redis_only.routes()) == want == sorted(r.name for r in poll_only.routes())
        )
        assert s_redis.counters["reconnects"] >= 1
    finally:
        for s in (s_writer, s_redis, s_poll):
            s.stop()
        for r in (writer, redis_only, poll_only):
            r.close()
        redis.stop()


def test_apply_pending_reads_from_the_store_without_redis(encoder, postgres_url) -> None:
    a = SemanticRouter(encoder, store=postgres_url)
    b = SemanticRouter(encoder, store=postgres_url)
    try:
        sync = ReplicaSync(b, None, poll_interval=0)
        assert sync.apply_pending() == 0
        a.add(route_obj("one"))
        a.add(route_obj("two"))
        a.delete("one")
        assert sync.apply_pending() == 3 and [r.name for r in b.routes()] == ["two"]
        assert sync.apply_pending() == 0 and b.version == a.store.current_version()
    finally:
        a.close()
        b.close()


# ---------------------------------------------------------------------- real server processes
@pytest.fixture
def cluster(postgres_url, redis_server) -> Iterator[list[ReplicaProcess]]:
    channel = f"test:{uuid.uuid4().hex[:8]}"
    replicas = [ReplicaProcess(postgres_url, redis_server.url, channel).start() for _ in range(3)]
    try:
        for r in replicas:
            r.wait_ready()
        yield replicas
    finally:
        for r in replicas:
            r.stop()


def _serves(client: httpx.Client, replica: ReplicaProcess, name: str) -> bool:
    return client.get(f"{replica.url}/routes/{name}").status_code == 200


def test_three_replicas_converge_and_a_killed_one_catches_up(cluster, postgres_url) -> None:
    r0, r1, r2 = cluster
    with httpx.Client(timeout=30.0) as c:
        assert c.put(f"{r0.url}/routes/vpn", json=route("vpn", "the vpn does not connect")).status_code == 201
        took = eventually(lambda: _serves(c, r1, "vpn") and _serves(c, r2, "vpn"), what="PUT on all replicas")
        print(f"propagation of one PUT to two replicas: {took * 1000:.0f} ms")

        r = c.post(f"{r1.url}/routes/vpn/utterances", json={"utterances": ["wireguard tunnel is down"]})
        assert r.status_code == 200 and r.json()["added"] == 1

        def taught(rep: ReplicaProcess) -> bool:
            m = c.post(f"{rep.url}/route", json={"query": "the wireguard tunnel is down"}).json()
            return m["name"] == "vpn" and m["evidence"][0]["utterance"] == "wireguard tunnel is down"

        eventually(lambda: taught(r0) and taught(r2), what="teach on all replicas")

        # SIGKILL one replica, change things while it is gone, restart it: it catches up from the store.
        r1.kill()
        assert (
            c.put(f"{r0.url}/routes/printer", json=route("printer", "the printer is jammed")).status_code
            == 201
        )
        assert c.delete(f"{r2.url}/routes/vpn").status_code == 200
        r1.start()
        r1.wait_ready()
        listing = c.get(f"{r1.url}/routes").json()
        assert [x["name"] for x in listing["routes"]] == ["printer"]
        assert listing["version"] == RouteStore(postgres_url).current_version()
        # and it is back in the pub/sub group
        assert c.put(f"{r1.url}/routes/wifi", json=route("wifi", "wifi keeps dropping")).status_code == 201
        eventually(
            lambda: _serves(c, r0, "wifi") and _serves(c, r2, "wifi"), what="PUT from the restarted one"
        )
        metrics = c.get(f"{r0.url}/metrics").text
        assert 'synaptoroute_sync_events_total{event="applied_changes"}' in metrics
        assert "synaptoroute_sync_redis_connected 1" in metrics


def test_graceful_shutdown_loses_nothing_acknowledged(tmp_path) -> None:
    db = str(tmp_path / "routes.db")
    rep = ReplicaProcess(db).start()
    acknowledged: list[str] = []
    refused: list[str] = []
    stop = threading.Event()

    def writer(w: int) -> None:
        with httpx.Client(timeout=30.0) as c:
            i = 0
            while not stop.is_set():
                name = f"w{w}-{i}"
                i += 1
                try:
                    r = c.put(f"{rep.url}/routes/{name}", json=route(name))
                except httpx.HTTPError:
                    refused.append(name)
                    continue
                (acknowledged if r.status_code == 201 else refused).append(name)

    try:
        rep.wait_ready()
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        eventually(lambda: len(acknowledged) >= 8, what="some writes acknowledged")
        code = rep.stop(signal.SIGTERM)
    finally:
        stop.set()
        rep.stop(signal.SIGKILL)
    for t in threads:
        t.join(60)
    # uvicorn finishes the requests in flight, runs the shutdown, then re-raises SIGTERM
    assert code in (0, -signal.SIGTERM) and "Traceback" not in rep.log_tail(100_000), rep.log_tail()
    store = RouteStore(db)
    try:
        stored = set(store.route_names())
    finally:
        store.close()
    assert acknowledged and set(acknowledged) <= stored  # every 2xx is committed


def test_overload_bounded_memory_and_no_5xx(tmp_path) -> None:
    """20,000 concurrent requests (1,000 on the wire at a time) against max-inflight 16."""
    rep = ReplicaProcess(str(tmp_path / "routes.db"), extra=("--max-inflight", "16")).start()
    try:
        rep.wait_ready()
        httpx.put(f"{rep.url}/routes/vpn", json=route("vpn", "the vpn does not connect"), timeout=30)
        rss_before = rep.rss_bytes()
        result = asyncio.run(run_overload(rep.url, 20_000, connections=1000, timeout=500))
        rss_after = rep.rss_bytes()
        statuses = result["statuses"]
        print("overload:", result, f"rss {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MB")
        assert not result["client_errors"], result
        assert sum(statuses.values()) == 20_000
        assert set(statuses) <= {200, 429}, statuses  # zero 5xx
        assert statuses.get(429, 0) > 0 and statuses.get(200, 0) > 0
        assert result["retry_after"] == ["1"]
        assert rss_after - rss_before < 300 * 2**20  # no unbounded queue of requests
        r = httpx.post(f"{rep.url}/route", json={"query": "my vpn does not connect"}, timeout=30)
        assert r.status_code == 200 and r.json()["name"] == "vpn"
    finally:
        rep.stop()
