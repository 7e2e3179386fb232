"""Faults and bad input against a real server (uvicorn on 127.0.0.1, the bundled model).

The attacks of the hardening issue, each bounded in size and time: stalled bodies, a heavy batch
beside a normal client (and the heavy client leaving), 5,000 made-up HTTP methods, SIGTERM with a
heavy batch in flight. The functions are benchmarks/faults.py's, which reports their figures.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")

from benchmarks.faults import (  # noqa: E402
    HEAVY_QUERY,
    heavy_batch,
    odd_methods,
    seed,
    sigterm_with_heavy_batch,
    stalled_bodies,
)
from benchmarks.service import ReplicaProcess  # noqa: E402

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.timeout(120)]

KEY = "reliability-key"
#: A batch far over the default work budget (the server under test allows it): 192 long queries,
#: tens of seconds of model work, so a server that runs it in one go shows.
HEAVY = 192
BUDGET = HEAVY * len(HEAVY_QUERY)


def _start(db: Path, *extra: str) -> ReplicaProcess:
    rep = ReplicaProcess(str(db), extra=("--poll-interval", "0", *extra)).start()
    try:
        rep.wait_ready()
    except BaseException:
        rep.stop()
        raise
    return rep


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicaProcess]:
    rep = _start(tmp_path_factory.mktemp("rel") / "open.db", "--max-query-chars", str(BUDGET))
    try:
        seed(rep.url)
        yield rep
    finally:
        rep.stop()


def test_stalled_bodies_hold_no_slot(server: ReplicaProcess) -> None:
    """256 connections that never finish their body (the default in-flight bound) lock nobody out."""
    res = stalled_bodies(server.url, n=256)
    assert res["statuses"] == [200] * 5, res  # before: 429 for every normal request


def test_stalled_bodies_with_protect_routing(tmp_path: Path) -> None:
    rep = _start(tmp_path / "key.db", "--api-key", KEY, "--protect-routing")
    try:
        auth = {"Authorization": f"Bearer {KEY}"}
        seed(rep.url, auth)
        res = stalled_bodies(rep.url, n=256, headers=auth)
        assert res["statuses"] == [200] * 5, res
    finally:
        rep.stop()


def test_heavy_batch_takes_turns_and_stops_when_its_client_leaves(server: ReplicaProcess) -> None:
    res = heavy_batch(server.url, HEAVY, after_leave=3.0)
    assert res["normal_status"] == 200, res
    # The normal query did not wait for a block of the batch: before, it queued behind a 64-query
    # block of long queries (several seconds).
    assert res["heavy_run_while_normal_waited"] < 32, res
    # The batch stops once its client is gone: the slice running then (one long query) at most.
    assert res["heavy_run_after_leaving"] <= 2, res
    assert res["heavy_run_total"] < HEAVY, res


def test_made_up_methods_do_not_grow_metrics(server: ReplicaProcess) -> None:
    res = odd_methods(server.url, n=5000)
    assert res["answered"] == 5000, res
    assert res["growth_bytes"] < 10_240, res  # before: +25 MB, one series per method


def test_sigterm_with_heavy_batch_in_flight_exits_within_the_bound(tmp_path: Path) -> None:
    graceful = 4.0
    rep = _start(tmp_path / "term.db", "--max-query-chars", str(BUDGET), "--graceful-timeout", str(graceful))
    try:
        seed(rep.url)
        t0 = time.monotonic()
        res = sigterm_with_heavy_batch(rep, HEAVY, graceful)
        # The bound is the contract; a little slack for the interpreter's own exit under load.
        assert res["exit_seconds"] <= graceful + 2.0, (res, time.monotonic() - t0, rep.log_tail())
    finally:
        rep.stop()


def test_slow_headers_and_slow_bodies_time_out(tmp_path: Path) -> None:
    rep = _start(tmp_path / "slow.db", "--header-timeout", "1", "--body-timeout", "1")
    try:
        host, port = "127.0.0.1", rep.port
        headers_only = socket.create_connection((host, port), timeout=10)
        headers_only.sendall(b"POST /route HTTP/1.1\r\nHost: x\r\nContent-Le")  # never finishes
        body_only = socket.create_connection((host, port), timeout=10)
        body_only.sendall(b"POST /route HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        t0 = time.monotonic()
        assert headers_only.recv(4096) == b""  # closed by the server, no answer
        assert time.monotonic() - t0 < 8
        answer = b""
        while chunk := body_only.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b'"error": "timeout"' in answer and b"connection: close" in answer.lower()
        headers_only.close()
        body_only.close()
    finally:
        rep.stop()
