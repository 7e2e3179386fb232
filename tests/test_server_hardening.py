"""Server hardening in process: one error shape per status, the key before the body, no anonymous
writes by accident, a work budget, closed metrics labels, slow bodies, fair and cancellable batches."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from synaptoroute_agents import InvalidInputError, Route, SemanticRouter  # noqa: E402
from synaptoroute_agents.batching import SLICE_CHARS, BatchingConfig, MicroBatcher, slices  # noqa: E402
from synaptoroute_agents.cli import main  # noqa: E402
from synaptoroute_agents.errors import StoreError  # noqa: E402
from synaptoroute_agents.server import create_app, serve  # noqa: E402
from synaptoroute_agents.server.serve import is_loopback  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
VPN = {"name": "vpn", "utterances": ["the vpn does not connect", "vpn keeps dropping"]}
JSON = {"content-type": "application/json"}


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNAPTOROUTE_API_KEY", raising=False)
    monkeypatch.delenv("SYNAPTOROUTE_API_KEY_FILE", raising=False)


@pytest.fixture
def router(encoder, tmp_path) -> Iterator[SemanticRouter]:
    r = SemanticRouter(encoder, store=tmp_path / "routes.db")
    r.add(Route("vpn", VPN["utterances"]))
    yield r
    r.close()


def _shape(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert the status and the documented error shape; return the body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error", "detail"} and isinstance(body["detail"], str) and body["detail"], body
    if code is not None:
        assert body["error"] == code, body
    return body


# ---------------------------------------------------------------------- one error shape
def test_404_unknown_path_and_unknown_route(router) -> None:
    with TestClient(create_app(router, poll_interval=0)) as c:
        _shape(c.get("/no/such/path"), 404, "not_found")
        _shape(c.get("/routes/nope"), 404, "not_found")


def test_405_keeps_allow_header(router) -> None:
    with TestClient(create_app(router, poll_interval=0)) as c:
        r = c.delete("/route")
        _shape(r, 405, "method_not_allowed")
        assert "POST" in r.headers["allow"]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"query": "\xff\xfe vpn"}', id="invalid-utf8"),
        pytest.param(b"[" * 1000 + b"]" * 1000, id="nested-1000-deep"),
        pytest.param(b'{"query": ' + b"[" * 1000 + b"]" * 1000 + b"}", id="nested-in-a-field"),
        pytest.param(b'{"query": "vpn"', id="truncated-json"),
    ],
)
def test_malformed_bodies_are_422(router, content: bytes) -> None:
    with TestClient(create_app(router, poll_interval=0)) as c:
        _shape(c.post("/route", content=content, headers=JSON), 422, "invalid_request")


def test_401_403_409_413_429_503_share_the_shape(router, encoder, tmp_path) -> None:
    with TestClient(
        create_app(router, api_key=KEY, max_body_bytes=2048, max_inflight=1, poll_interval=0)
    ) as c:
        _shape(c.put("/routes/vpn", json=VPN), 401, "unauthorized")
        _shape(c.put("/routes/vpn", json=VPN, headers={"X-API-Key": "wrong"}), 403, "forbidden")
        _shape(c.post("/routes", json=VPN, headers=AUTH), 409, "conflict")
        _shape(c.post("/route", json={"query": "x" * 4000}), 413, "too_large")
        state = c.app.state.synaptoroute  # type: ignore[attr-defined]
        state.inflight["route"] = 1
        try:
            _shape(c.post("/route", json={"query": "vpn"}), 429, "overloaded")
        finally:
            state.inflight["route"] = 0
    app = create_app(db=str(tmp_path / "never.db"), encoder="no-such-encoder", poll_interval=0)
    with TestClient(app) as c:
        deadline = time.monotonic() + 30
        while app.state.synaptoroute.load_error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        _shape(c.post("/route", json={"query": "vpn"}), 503, "not_ready")


def test_500_is_shaped_too(router, monkeypatch) -> None:
    def boom(name: str) -> Route:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(router, "get", boom)
    with TestClient(create_app(router, poll_interval=0), raise_server_exceptions=False) as c:
        body = _shape(c.get("/routes/vpn"), 500, "internal_error")
        assert "disk on fire" not in body["detail"]  # no internals leak


def test_store_error_is_503_shaped(router, monkeypatch) -> None:
    def down(name: str) -> Route:
        raise StoreError("the store does not answer")

    monkeypatch.setattr(router, "get", down)
    with TestClient(create_app(router, poll_interval=0)) as c:
        _shape(c.get("/routes/vpn"), 503, "store_unavailable")


async def test_408_when_the_body_stalls(router) -> None:
    app = create_app(router, body_timeout=0.3, poll_interval=0)

    async def stalled() -> AsyncIterator[bytes]:
        yield b'{"query": "vp'
        await asyncio.sleep(30)
        yield b'n"}'

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        t0 = time.monotonic()
        r = await asyncio.wait_for(c.post("/route", content=stalled(), headers=JSON), 10)
        assert time.monotonic() - t0 < 5
    _shape(r, 408, "timeout")
    assert r.headers["connection"] == "close"
    assert app.state.synaptoroute.inflight["route"] == 0


# ---------------------------------------------------------------------- the key
def test_key_is_checked_before_the_body(router) -> None:
    with TestClient(create_app(router, api_key=KEY, poll_interval=0)) as c:
        # a keyless bad body is 401, not 422: nothing is parsed for an anonymous caller
        _shape(c.post("/routes", content=b"{not json", headers=JSON), 401, "unauthorized")
        _shape(c.put("/routes/x", content=b"\xff", headers=JSON), 401, "unauthorized")
        # the key given: now the body is read and judged
        _shape(c.post("/routes", content=b"{not json", headers={**JSON, **AUTH}), 422)
    with TestClient(create_app(router, api_key=KEY, protect_routing=True, poll_interval=0)) as c:
        _shape(c.post("/route", content=b"[[[", headers=JSON), 401)
        _shape(c.post("/route", content=b"[[[", headers={**JSON, "X-API-Key": KEY}), 422)


@pytest.mark.parametrize("how", ["argument", "env", "file"])
def test_an_empty_key_is_an_error(router, monkeypatch, tmp_path, how: str) -> None:
    kwargs: dict[str, Any] = {}
    if how == "argument":
        kwargs["api_key"] = ""
    elif how == "env":
        monkeypatch.setenv("SYNAPTOROUTE_API_KEY", "")
    else:
        (tmp_path / "key").write_text("\n")
        monkeypatch.setenv("SYNAPTOROUTE_API_KEY_FILE", str(tmp_path / "key"))
    with pytest.raises(InvalidInputError, match="empty"):
        create_app(router, poll_interval=0, **kwargs)


def test_key_from_a_docker_secret_file(router, monkeypatch, tmp_path) -> None:
    (tmp_path / "key").write_text(KEY + "\n")
    monkeypatch.setenv("SYNAPTOROUTE_API_KEY_FILE", str(tmp_path / "key"))
    with TestClient(create_app(router, poll_interval=0)) as c:
        assert c.delete("/routes/vpn").status_code == 401
        assert c.delete("/routes/vpn", headers=AUTH).status_code == 200


def test_warning_at_every_start_without_a_key(router, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="synaptoroute_agents.server"):
        for _ in range(2):
            with TestClient(create_app(router, poll_interval=0)):
                pass
    warnings = [r for r in caplog.records if "no API key" in r.getMessage()]
    assert len(warnings) == 2
    caplog.clear()
    with (
        caplog.at_level(logging.WARNING, logger="synaptoroute_agents.server"),
        TestClient(create_app(router, api_key=KEY, poll_interval=0)),
    ):
        pass
    assert not [r for r in caplog.records if "no API key" in r.getMessage()]


def test_non_loopback_without_key_is_refused(tmp_path, monkeypatch) -> None:
    ran: list[dict[str, Any]] = []
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: ran.append(kw))
    db = str(tmp_path / "r.db")
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org"):
        with pytest.raises(InvalidInputError, match="allow-anonymous-writes"):
            serve(db=db, host=host)
    assert not ran
    serve(db=db, host="0.0.0.0", allow_anonymous_writes=True)
    serve(db=db, host="0.0.0.0", api_key=KEY)
    serve(db=db, host="127.0.0.1")
    assert [kw["host"] for kw in ran] == ["0.0.0.0", "0.0.0.0", "127.0.0.1"]
    assert all(kw["timeout_graceful_shutdown"] == 13 for kw in ran)  # 15 s from SIGTERM to exit
    assert is_loopback("localhost") and is_loopback("127.0.0.2") and is_loopback("::1")


def test_cli_refuses_anonymous_public_serve_and_empty_key(tmp_path, capsys, monkeypatch) -> None:
    import uvicorn

    ran: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: ran.append(kw))  # never really listen
    db = str(tmp_path / "r.db")
    assert main(["serve", "--db", db, "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--allow-anonymous-writes" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["serve", "--db", db, "--api-key", ""]) == 2
    assert "empty" in capsys.readouterr().err
    assert not ran
    assert main(["serve", "--db", db, "--host", "0.0.0.0", "--allow-anonymous-writes"]) == 0
    assert [kw["host"] for kw in ran] == ["0.0.0.0"]


def test_docker_files_ship_no_key() -> None:
    compose = (ROOT / "compose.yaml").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "change-me" not in compose and "change-me" not in dockerfile
    assert "SYNAPTOROUTE_API_KEY_FILE" in compose and re.search(r"^secrets:", compose, re.M)
    instructions = "\n".join(line for line in dockerfile.splitlines() if not line.lstrip().startswith("#"))
    assert "SYNAPTOROUTE_API_KEY" not in instructions  # no key (nor an empty one) baked into the image


# ---------------------------------------------------------------------- budget and metrics
def test_work_budget_over_all_queries(router) -> None:
    with TestClient(create_app(router, max_query_chars=1000, poll_interval=0)) as c:
        assert c.post("/route", json={"queries": ["vpn " * 50] * 5}).status_code == 200  # exactly 1,000
        body = _shape(c.post("/route", json={"queries": ["vpn " * 50] * 6}), 422, "invalid_input")
        assert "1200 characters" in body["detail"] and "1000" in body["detail"]
        _shape(c.post("/route", json={"query": "x" * 1001}), 422, "invalid_input")


def test_metrics_labels_are_a_closed_set(router) -> None:
    with TestClient(create_app(router, poll_interval=0)) as c:
        for i in range(50):
            c.request(f"WEIRD{i}", "/route")
            c.get(f"/random/{i}")
        c.get("/routes/vpn")
        text = c.get("/metrics").text
    methods = set(re.findall(r'method="([^"]*)"', text))
    endpoints = set(re.findall(r'endpoint="([^"]*)"', text))
    assert methods <= {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"}, methods
    assert "other" in methods
    assert endpoints <= {
        "/route",
        "/routes",
        "/routes/{name}",
        "/routes/{name}/utterances",
        "/metrics",
        "other",
    }
    assert "/routes/{name}" in endpoints and not any("random" in e for e in endpoints)


# ---------------------------------------------------------------------- fair, cancellable batches
def test_slices_bound_characters_and_count() -> None:
    texts = ["a" * 300] * 10 + ["b" * 5000] + ["c"] * 200
    parts = slices(texts, 64, SLICE_CHARS)
    assert [t for p in parts for t in p] == texts  # in order, nothing lost
    for p in parts:
        assert len(p) <= 64 and (len(p) == 1 or sum(map(len, p)) <= SLICE_CHARS)


class _SlowFn:
    """A batch function that takes 50 ms per call and records the calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, texts: list[str], top_k: int) -> list[str]:
        with self.lock:
            self.calls.append(len(texts))
        time.sleep(0.05)
        return [t.upper() for t in texts]


async def test_single_queries_do_not_wait_for_a_large_batch() -> None:
    fn = _SlowFn()
    batcher = MicroBatcher(fn, BatchingConfig(max_batch_size=1, max_wait=0, workers=2))
    try:
        big = asyncio.ensure_future(batcher.submit_many(["x" * SLICE_CHARS] * 40, 1))  # 40 slices, ~2 s
        await asyncio.sleep(0.12)
        t0 = time.monotonic()
        assert await batcher.submit("hello", 1) == "HELLO"
        waited = time.monotonic() - t0
        assert not big.done()
        assert waited < 1.0  # one 50 ms call, not behind the 40 slices
        assert (await big) == ["X" * SLICE_CHARS] * 40
    finally:
        batcher.close()


async def test_cancelling_a_large_batch_stops_it_after_the_running_slice() -> None:
    fn = _SlowFn()
    batcher = MicroBatcher(fn, BatchingConfig(max_batch_size=1, max_wait=0, workers=2))
    try:
        big = asyncio.ensure_future(batcher.submit_many(["x" * SLICE_CHARS] * 40, 1))
        await asyncio.sleep(0.12)
        big.cancel()
        with pytest.raises(asyncio.CancelledError):
            await big
        ran = len(fn.calls)
        await asyncio.sleep(0.3)
        assert len(fn.calls) <= ran + 1 and len(fn.calls) < 10, fn.calls
    finally:
        batcher.close()


def test_a_negative_poll_interval_fails_when_the_app_is_built() -> None:
    from synaptoroute_agents import InvalidInputError
    from synaptoroute_agents.server import create_app

    with pytest.raises(InvalidInputError):
        create_app(db=None, poll_interval=-1)
