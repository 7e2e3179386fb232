"""Reliability: SIGKILL a real ``synaptoroute serve`` process in the middle of a stream of writes.

Two client threads write routes over HTTP (create, replace, teach, delete), each keeping a ledger
of the writes the server acknowledged (a 2xx answer). At a random moment the server process gets
SIGKILL; a new one starts on the same store, and its routes must be exactly the acknowledged
writes replayed, plus or minus the one write per client that was in flight (never answered).
Ten kills per store, on a SQLite file and on PostgreSQL. The figures are in docs/BENCHMARKS.md
("Faults and bad input"): ``uv run pytest -m reliability -s tests/test_reliability.py``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from synaptoroute_agents import SemanticRouter
from synaptoroute_agents.testing import HashEncoder

from .services import free_port

pytestmark = pytest.mark.reliability

CRASH_SERVER = Path(__file__).with_name("crash_server.py")
KILLS = 10
KEY = "reliability-test-key"
WRITERS = 2
State = dict[str, frozenset[str]]


def _replay(base: State, ops: list[dict[str, Any]]) -> State:
    state = dict(base)
    for op in ops:
        name, texts = op["name"], op.get("texts", [])
        if op["op"] in ("add", "put"):
            state[name] = frozenset(texts)
        elif op["op"] == "delete":
            state.pop(name, None)
        else:  # teach
            state[name] = state[name] | frozenset(texts)
    return state


@dataclass
class Writer:
    """One client: a stream of writes to its own routes and the ledger of the acknowledged ones."""

    wid: int
    rng: random.Random
    base: State = field(default_factory=dict)  # the state checked after the last kill
    acked: list[dict[str, Any]] = field(default_factory=list)  # acknowledged since then
    pending: dict[str, Any] | None = None  # sent, not answered
    unexpected: list[str] = field(default_factory=list)
    total_acked: int = 0
    in_flight_committed: int = 0  # unanswered writes the next server had nonetheless
    seq: int = 0

    def names(self) -> list[str]:
        return [f"w{self.wid}_r{j}" for j in range(4)]

    def _next(self) -> dict[str, Any]:
        live = _replay(self.base, self.acked)
        name = self.rng.choice(self.names())
        self.seq += 1
        k = self.seq
        if name not in live:
            return {"op": "add", "name": name, "texts": [f"{name} first {k}", f"{name} second {k}"]}
        roll = self.rng.random()
        if roll < 0.2:
            return {"op": "delete", "name": name}
        if roll < 0.45:
            return {"op": "put", "name": name, "texts": [f"{name} replaced {k}", f"{name} again {k}"]}
        return {"op": "teach", "name": name, "texts": [f"{name} more {k}"]}

    def run(self, url: str, stop: threading.Event) -> None:
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            while not stop.is_set():
                op = self._next()
                self.pending = op
                name = op["name"]
                try:
                    if op["op"] == "add":
                        r = client.post("/routes", json={"name": name, "utterances": op["texts"]})
                    elif op["op"] == "put":
                        r = client.put(f"/routes/{name}", json={"name": name, "utterances": op["texts"]})
                    elif op["op"] == "delete":
                        r = client.delete(f"/routes/{name}")
                    else:
                        r = client.post(f"/routes/{name}/utterances", json={"utterances": op["texts"]})
                except httpx.TransportError:
                    return  # the server is gone: the pending write may or may not have committed
                if r.is_success:
                    self.acked.append(op)
                    self.total_acked += 1
                    self.pending = None
                else:
                    self.unexpected.append(f"{op}: {r.status_code} {r.text[:200]}")
                    return

    def check(self, have: State) -> None:
        """``have`` (this writer's routes in the store) is the ledger replayed, with or without
        the write in flight; it becomes the base of the next round."""
        allowed = [_replay(self.base, self.acked)]
        if self.pending is not None:
            allowed.append(_replay(self.base, [*self.acked, self.pending]))
        assert have in allowed, {"have": have, "allowed": allowed, "pending": self.pending}
        self.in_flight_committed += have != allowed[0]
        self.base, self.acked, self.pending = have, [], None


class Servers:
    """Starts ``synaptoroute serve`` processes on one store (tests/crash_server.py forks them
    from one process that imported everything once, so a restart costs a boot, not imports)."""

    def __init__(self, store: str, log: Path) -> None:
        self.log = log
        self.zygote = subprocess.Popen(
            [sys.executable, str(CRASH_SERVER), store, KEY, str(log)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def start(self) -> Server:
        port = free_port()
        assert self.zygote.stdin is not None and self.zygote.stdout is not None
        self.zygote.stdin.write(f"{port}\n")
        self.zygote.stdin.flush()
        pid = int(self.zygote.stdout.readline())
        return Server(pid, port, self.log)

    def close(self) -> None:
        self.zygote.kill()
        self.zygote.wait(30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Server:
    """One ``synaptoroute serve`` process."""

    def __init__(self, pid: int, port: int, log: Path) -> None:
        self.pid, self.port = pid, port
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert _alive(pid), f"the server exited: see {log}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the server was not ready in 120 s: see {log}"
            time.sleep(0.02)

    def routes(self) -> dict[str, frozenset[str]]:
        r = httpx.get(f"{self.url}/routes", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
        assert r.status_code == 200, r.text
        return {x["name"]: frozenset(x["utterances"]) for x in r.json()["routes"]}

    def _gone(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while _alive(self.pid):
            assert time.monotonic() < deadline, f"server {self.pid} still runs"
            time.sleep(0.01)

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self._gone(30)

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGTERM)
        self._gone(30)


def _kill_cycles(store: str, log: Path, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    writers = [Writer(w, random.Random(rng.randrange(1 << 30))) for w in range(WRITERS)]
    kills = in_flight = 0
    t0 = time.monotonic()
    servers = Servers(store, log)
    try:
        server = servers.start()
        while True:
            have = server.routes()
            for w in writers:  # the new server holds every acknowledged write
                in_flight += w.pending is not None
                w.check({n: t for n, t in have.items() if n.startswith(f"w{w.wid}_")})
            if kills == KILLS:
                break
            stop = threading.Event()
            threads = [threading.Thread(target=w.run, args=(server.url, stop)) for w in writers]
            for t in threads:
                t.start()
            # kill after a random number of acknowledgements (or after 5 s when slow), then after
            # up to 30 ms more, so the kill lands anywhere in a request
            target = sum(w.total_acked for w in writers) + rng.randint(1, 30)
            deadline = time.monotonic() + 5
            while sum(w.total_acked for w in writers) < target and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.random() * 0.03)
            server.kill()
            kills += 1
            stop.set()
            for t in threads:
                t.join(60)
            for w in writers:
                assert w.unexpected == [], w.unexpected
            server = servers.start()
        server.stop()
    finally:
        servers.close()
    # the store itself: opened directly, its index matches its rows and the routes served
    with SemanticRouter(encoder=HashEncoder(), store=store, on_encoder_mismatch="error") as router:
        assert router.verify() == []
        direct = {r.name: frozenset(r.utterances) for r in router.routes()}
    assert direct == have
    acked = sum(w.total_acked for w in writers)
    summary = {
        "kills": kills,
        "acknowledged_writes": acked,
        "unanswered_at_kill": in_flight,
        "unanswered_but_committed": sum(w.in_flight_committed for w in writers),
        "lost_acknowledged": 0,  # every check above passed
        "routes_at_end": len(have),
        "seconds": round(time.monotonic() - t0, 1),
    }
    print(f"\nreliability {'postgresql' if '://' in store else 'sqlite'}: {summary}")
    assert kills >= 10 and acked >= kills
    return summary


def test_the_ledger_check_catches_a_lost_or_invented_write() -> None:
    w = Writer(0, random.Random(0))
    w.acked = [
        {"op": "add", "name": "w0_r0", "texts": ["a", "b"]},
        {"op": "teach", "name": "w0_r0", "texts": ["c"]},
    ]
    w.pending = {"op": "delete", "name": "w0_r0"}
    with pytest.raises(AssertionError):  # the acknowledged teach is missing
        w.check({"w0_r0": frozenset({"a", "b"})})
    with pytest.raises(AssertionError):  # a write nobody sent
        w.check({"w0_r0": frozenset({"a", "b", "c"}), "w0_r1": frozenset({"x"})})
    w.check({})  # the unanswered delete committed: allowed
    assert w.base == {} and w.acked == [] and w.in_flight_committed == 1


@pytest.mark.slow
def test_sigkill_server_mid_stream_loses_no_acknowledged_write_sqlite(tmp_path: Path) -> None:
    _kill_cycles(str(tmp_path / "served.db"), tmp_path / "server.log", seed=21)


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_server_mid_stream_loses_no_acknowledged_write_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    _kill_cycles(postgres_url, tmp_path / "server.log", seed=22)
