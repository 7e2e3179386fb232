"""The HTTP app in process: every endpoint, every error status, auth, body limits and overload."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from synaptoroute_agents import RouterOverloadedError, SemanticRouter  # noqa: E402
from synaptoroute_agents.cli import build_parser  # noqa: E402
from synaptoroute_agents.server import create_app  # noqa: E402

VPN = {
    "name": "vpn",
    "utterances": ["the vpn does not connect", "cannot reach the corporate vpn", "vpn keeps dropping"],
    "description": "VPN trouble",
    "threshold": 0.4,
    "metadata": {"team": "network"},
}
PASSWORD = {
    "name": "password",
    "utterances": ["I forgot my password", "reset my password please", "my account is locked"],
}
KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def router(encoder, tmp_path) -> Iterator[SemanticRouter]:
    r = SemanticRouter(encoder, store=tmp_path / "routes.db")
    yield r
    r.close()


@pytest.fixture
def client(router) -> Iterator[TestClient]:
    with TestClient(create_app(router, poll_interval=0)) as c:
        yield c


def test_route_one_and_many(client: TestClient) -> None:
    assert client.put("/routes/vpn", json=VPN).status_code == 201
    assert client.put("/routes/password", json=PASSWORD).status_code == 201

    r = client.post("/route", json={"query": "my vpn won't connect from home"})
    assert r.status_code == 200
    m = r.json()
    assert m["name"] == "vpn" and m["reason"] == "matched" and m["selected"] == ["vpn"]
    assert m["candidates"][0]["name"] == "vpn" and m["score"] > 0.4 and 0 <= m["margin"] <= 2
    assert m["evidence"] and m["evidence"][0]["route"] == "vpn"

    r = client.post("/route", json={"queries": ["I can't remember my password", "vpn drops"], "top_k": 2})
    assert r.status_code == 200
    names = [x["name"] for x in r.json()]
    assert names == ["password", "vpn"]

    abstain = client.post("/route", json={"query": "what is the capital of France"}).json()
    assert abstain["name"] is None and abstain["reason"] != "matched" and abstain["selected"] == []


def test_routes_crud_and_teach(client: TestClient, router: SemanticRouter) -> None:
    assert client.get("/routes").json() == {"routes": [], "count": 0, "version": 0}
    created = client.put("/routes/vpn", json=VPN)
    assert created.status_code == 201 and created.json() == VPN
    replaced = client.put("/routes/vpn", json={**VPN, "utterances": ["vpn is down"], "threshold": None})
    assert replaced.status_code == 200 and replaced.json()["utterances"] == ["vpn is down"]
    assert router.get("vpn").utterances == ("vpn is down",)  # the router really changed

    listing = client.get("/routes").json()
    assert listing["count"] == 1 and listing["routes"][0]["name"] == "vpn" and listing["version"] >= 2

    r = client.post("/routes", json=PASSWORD)
    assert r.status_code == 201
    dup = client.post("/routes", json=PASSWORD)
    assert dup.status_code == 409 and dup.json()["error"] == "conflict" and "password" in dup.json()["detail"]

    taught = client.post(
        "/routes/vpn/utterances", json={"utterances": ["wireguard tunnel fails", "vpn is down"]}
    )
    assert taught.status_code == 200
    assert taught.json() == {"name": "vpn", "added": 1, "utterances": 2}
    assert client.get("/routes/vpn").json()["utterances"] == ["vpn is down", "wireguard tunnel fails"]
    assert client.post("/route", json={"query": "the wireguard tunnel fails"}).json()["name"] == "vpn"

    assert client.delete("/routes/vpn").json() == {"deleted": "vpn"}
    assert "vpn" not in router
    for method, path, body in [
        ("GET", "/routes/vpn", None),
        ("DELETE", "/routes/vpn", None),
        ("POST", "/routes/vpn/utterances", {"utterances": ["x"]}),
    ]:
        r = client.request(method, path, json=body)
        assert r.status_code == 404, (method, path)
        assert r.json()["error"] == "not_found" and "vpn" in r.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "needle"),
    [
        (
            "POST",
            "/route",
            {"content": b'{"query": "x"', "headers": {"content-type": "application/json"}},
            "JSON",
        ),
        ("POST", "/route", {"json": {"query": 5}}, "query"),
        ("POST", "/route", {"json": {"query": "a", "queries": ["b"]}}, "exactly one"),
        ("POST", "/route", {"json": {}}, "exactly one"),
        ("POST", "/route", {"json": {"queries": "not a list"}}, "queries"),
        ("POST", "/route", {"json": {"query": "a", "top_k": 0}}, "top_k"),
        ("POST", "/route", {"json": {"query": "a", "extra": 1}}, "extra"),
        ("POST", "/route", {"json": {"query": "   \n "}}, "empty"),
        ("POST", "/route", {"json": {"queries": ["ok"] * 300}}, "at most"),
        ("PUT", "/routes/vpn", {"json": {**VPN, "name": "other"}}, "path names"),
        ("PUT", "/routes/bad name!", {"json": {**VPN, "name": "bad name!"}}, "name"),
        ("PUT", "/routes/vpn", {"json": {**VPN, "utterances": []}}, "utterances"),
        ("PUT", "/routes/vpn", {"json": {**VPN, "threshold": 7}}, "threshold"),
        ("PUT", "/routes/vpn", {"json": {**VPN, "colour": "red"}}, "colour"),
        ("POST", "/routes/vpn/utterances", {"json": {"utterances": [1, 2]}}, "utterances"),
        ("POST", "/routes/vpn/utterances", {"json": {"utterances": ["  "]}}, "empty"),
    ],
)
def test_bad_input_is_422_with_a_clear_message(client, method, path, kwargs, needle) -> None:
    client.put("/routes/vpn", json=VPN)
    r = client.request(method, path, **kwargs)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] in ("invalid_request", "invalid_input")
    assert needle.lower() in body["detail"].lower(), body


def test_auth_on_mutations(router) -> None:
    with TestClient(create_app(router, api_key=KEY, poll_interval=0)) as c:
        r = c.put("/routes/vpn", json=VPN)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert c.put("/routes/vpn", json=VPN, headers={"Authorization": "Bearer nope"}).status_code == 403
        assert c.put("/routes/vpn", json=VPN, headers={"X-API-Key": "nope"}).status_code == 403
        assert c.put("/routes/vpn", json=VPN, headers=AUTH).status_code == 201
        assert c.post("/routes/vpn/utterances", json={"utterances": ["a"]}).status_code == 401
        assert (
            c.post("/routes/vpn/utterances", json={"utterances": ["vpn broke"]}, headers={"X-API-Key": KEY})
        ).status_code == 200
        assert c.delete("/routes/vpn").status_code == 401
        assert c.post("/routes", json=PASSWORD).status_code == 401
        assert "vpn" in router and "password" not in router  # refused mutations changed nothing
        # routing and reads stay open
        assert c.post("/route", json={"query": "vpn is down"}).json()["name"] == "vpn"
        assert c.get("/routes/vpn").status_code == 200
        assert c.delete("/routes/vpn", headers=AUTH).status_code == 200


def test_protect_routing_and_env_key(router, monkeypatch) -> None:
    monkeypatch.setenv("SYNAPTOROUTE_API_KEY", KEY)
    with TestClient(create_app(router, protect_routing=True, poll_interval=0)) as c:
        assert c.post("/route", json={"query": "vpn"}).status_code == 401
        assert c.get("/routes").status_code == 401
        assert c.post("/route", json={"query": "vpn"}, headers=AUTH).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/metrics").status_code == 200


def test_body_size_limits(router) -> None:
    with TestClient(create_app(router, max_body_bytes=4096, poll_interval=0)) as c:
        big = {"query": "x" * 5000}
        r = c.post("/route", json=big)  # Content-Length says it is too big
        assert r.status_code == 413 and r.json()["error"] == "too_large"

        def chunks():  # no Content-Length: the streamed size decides
            for _ in range(10):
                yield b"x" * 1024

        r = c.post("/route", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        r = c.put("/routes/vpn", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "vpn" not in router
        assert c.post("/route", json={"query": "x" * 100}).status_code == 200
        assert 'synaptoroute_http_rejected_total{reason="too_large"} 3' in c.get("/metrics").text


async def test_overload_answers_429_at_once(router) -> None:
    from synaptoroute_agents import Route

    router.add(Route("vpn", ["vpn is down"]))  # a dict is an InvalidTypeError (issue 21)
    app = create_app(router, max_inflight=2, poll_interval=0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        rs = await asyncio.gather(*(c.post("/route", json={"query": f"vpn {i}"}) for i in range(40)))
        codes = [r.status_code for r in rs]
        assert codes.count(200) >= 2 and codes.count(429) >= 1, codes
        assert set(codes) <= {200, 429}
        for r in rs:
            if r.status_code == 429:
                assert r.headers["retry-after"] == "1" and r.json()["error"] == "overloaded"
        # nothing stays counted in flight: the next requests pass
        for _ in range(3):
            assert (await c.post("/route", json={"query": "vpn"})).status_code == 200
        metrics = (await c.get("/metrics")).text
        assert f'synaptoroute_http_rejected_total{{reason="overloaded"}} {codes.count(429)}' in metrics
        assert 'synaptoroute_inflight_requests{class="route"} 0' in metrics


class _FullQueueRouter(SemanticRouter):
    """Stands in for a router whose micro-batch queue is full (the batcher's contract)."""

    async def aroute(self, query, top_k=1):
        raise RouterOverloadedError("the query queue is full")

    async def aroute_batch(self, queries, top_k=1):
        raise RouterOverloadedError("the query queue is full")


def test_router_overloaded_error_is_429(encoder, tmp_path) -> None:
    full = _FullQueueRouter(encoder, store=tmp_path / "full.db")
    try:
        with TestClient(create_app(full, poll_interval=0)) as c:
            for body in ({"query": "vpn"}, {"queries": ["vpn", "wifi"]}):
                r = c.post("/route", json=body)
                assert r.status_code == 429 and r.headers["retry-after"] == "1"
                assert r.json() == {"error": "overloaded", "detail": "the query queue is full"}
    finally:
        full.close()


def test_closed_router_is_503(router) -> None:
    with TestClient(create_app(router, poll_interval=0)) as c:
        router.close()
        r = c.post("/route", json={"query": "vpn"})
        assert r.status_code == 503 and r.json()["error"] == "closed"
        assert c.put("/routes/vpn", json=VPN).status_code == 503


def test_readyz_and_a_router_that_cannot_load(router, tmp_path) -> None:
    with TestClient(create_app(router, poll_interval=0)) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["store_reachable"] and ready.json()["model_loaded"]
    bad = tmp_path / "not-a-dir"
    bad.write_text("a file, so no database can live under it")
    with TestClient(create_app(db=str(bad / "routes.db"), poll_interval=0)) as c:
        deadline = time.monotonic() + 60
        while c.app.state.synaptoroute.load_error is None and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.05)
        r = c.get("/readyz")
        assert (
            r.status_code == 503 and not r.json()["model_loaded"] and "failed to load" in r.json()["detail"]
        )
        assert c.get("/healthz").status_code == 200
        r = c.post("/route", json={"query": "vpn"})
        assert r.status_code == 503 and r.json()["error"] == "not_ready"


def test_app_opens_and_closes_its_own_router(tmp_path) -> None:
    db = str(tmp_path / "own.db")
    with TestClient(create_app(db=db, poll_interval=0)) as c:
        deadline = time.monotonic() + 60
        while c.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.put("/routes/vpn", json=VPN).status_code == 201
        state = c.app.state.synaptoroute  # type: ignore[attr-defined]
    assert state.router is None  # closed at shutdown
    with SemanticRouter(store=db) as again:  # the acknowledged write is in the store
        assert again.get("vpn").utterances == tuple(VPN["utterances"])


def test_metrics_exposition(client: TestClient) -> None:
    client.put("/routes/vpn", json=VPN)
    for _ in range(3):
        client.post("/route", json={"query": "vpn down"})
    client.get("/routes/nope")
    text = client.get("/metrics").text
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")
    lines = text.splitlines()
    assert 'synaptoroute_http_request_duration_seconds_count{method="POST",endpoint="/route"} 3' in lines
    assert any(
        x.startswith(
            'synaptoroute_http_request_duration_seconds_bucket{method="GET",endpoint="/routes/{name}"'
        )
        for x in lines
    )
    assert 'synaptoroute_http_requests_total{method="GET",endpoint="/routes/{name}",status="404"} 1' in lines
    assert "synaptoroute_routes 1" in lines and "synaptoroute_vectors 3" in lines
    assert "synaptoroute_queue_depth 0" in lines or any(
        x.startswith("synaptoroute_queue_depth ") for x in lines
    )
    assert any(x.startswith('synaptoroute_batch_size_bucket{le="+Inf"}') for x in lines)
    # the three /route calls went through the batcher: one query per batch
    assert 'synaptoroute_batch_size_bucket{le="1"} 3' in lines and "synaptoroute_batch_size_sum 3" in lines
    # every sample line is "name{labels} number"
    for line in lines:
        if line and not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_openapi_documents_every_endpoint(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    expected = {
        "/route": {"post"},
        "/routes": {"get", "post"},
        "/routes/{name}": {"get", "put", "delete"},
        "/routes/{name}/utterances": {"post"},
        "/healthz": {"get"},
        "/readyz": {"get"},
        "/metrics": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    schemas = spec["components"]["schemas"]
    for model in ("RouteRequest", "MatchModel", "RouteModel", "TeachRequest", "ErrorModel"):
        assert model in schemas
    assert "429" in paths["/route"]["post"]["responses"] and "413" in paths["/route"]["post"]["responses"]
    assert "409" in paths["/routes"]["post"]["responses"]
    # no key configured: no lock (test_server_docs.py checks the schema with a key)
    assert "securitySchemes" not in spec["components"]


def test_serve_command_options() -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--db",
            "postgresql://x/y",
            "--redis",
            "redis://127.0.0.1:1/0",
            "--port",
            "9001",
            "--api-key",
            "k",
            "--protect-routing",
            "--max-inflight",
            "8",
            "--channel",
            "c",
        ]
    )
    assert args.command == "serve" and args.port == 9001 and args.max_inflight == 8
    assert args.redis == "redis://127.0.0.1:1/0" and args.protect_routing and args.channel == "c"
