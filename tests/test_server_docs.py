"""A service a user can open: offline /docs and /redoc, a documented schema, the encoder by name."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("fastapi_offline")

import uvicorn  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from synaptoroute_agents import BundledEncoder, InvalidInputError, Route, SemanticRouter  # noqa: E402
from synaptoroute_agents.server import create_app  # noqa: E402

from . import services  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEY = "s3cret-key"


@pytest.fixture
def router(encoder, tmp_path) -> Iterator[SemanticRouter]:
    r = SemanticRouter(encoder, store=tmp_path / "routes.db")
    yield r
    r.close()


@pytest.fixture
def client(router) -> Iterator[TestClient]:
    with TestClient(create_app(router, poll_interval=0)) as c:
        yield c


# ---------------------------------------------------------------------- offline documentation pages
class _Assets(HTMLParser):
    """Every URL a page loads: script/img src, link href, and URLs named inside inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for attr in ("src", "href", "spec-url"):
            if values.get(attr):
                self.urls.append(str(values[attr]))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:  # Swagger UI's set-up script names the schema (url: '/openapi.json')
            self.urls += re.findall(r"""\burl:\s*['"]([^'"]+)['"]""", data)
            self.urls += re.findall(r"""['"](https?://[^'"]+)['"]""", data)


_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/", ".json": "application/json"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_every_asset_from_the_app_itself(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    parser = _Assets()
    parser.feed(r.text)
    assert parser.urls, "the page references no asset"
    kinds = set()
    for url in parser.urls:
        absolute = urljoin(f"http://testserver{page}", url)
        parts = urlsplit(absolute)
        assert parts.netloc == "testserver", f"{page} loads {url} from another host"
        asset = client.get(parts.path)
        suffix = Path(parts.path).suffix
        assert asset.status_code == 200, url
        assert asset.content, url
        assert _TYPES[suffix] in asset.headers["content-type"], (url, asset.headers["content-type"])
        kinds.add(suffix)
    assert ".js" in kinds and ".json" in kinds  # the viewer's script and the schema it renders
    if page == "/docs":
        assert ".css" in kinds


def test_docs_assets_are_never_refused_for_load(router) -> None:
    """The documentation, like health and metrics, is served whatever the API's in-flight load."""
    app = create_app(router, max_inflight=1, poll_interval=0)
    state = app.state.synaptoroute
    with TestClient(app) as c:
        state.inflight["api"] = state.inflight["route"] = 1  # both classes are full
        try:
            assert c.get("/routes").status_code == 429
            for path in ("/docs", "/redoc", "/openapi.json", "/docs-assets/swagger-ui-bundle.js"):
                assert c.get(path).status_code == 200, path
        finally:
            state.inflight["api"] = state.inflight["route"] = 0


# ---------------------------------------------------------------------- the schema
def _operations(spec: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield path, method, op


def _resolve(spec: dict, schema: dict) -> dict:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_every_operation_has_a_description_and_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ops = list(_operations(spec))
    assert len(ops) == 10
    for path, method, op in ops:
        where = f"{method.upper()} {path}"
        assert op.get("summary") and len(op.get("description", "")) > 20, where
        for status, answer in op["responses"].items():
            assert answer.get("description"), (where, status)
            for media, content in answer.get("content", {}).items():
                schema = _resolve(spec, content.get("schema", {}))
                has_example = "example" in content or "examples" in content or "examples" in schema
                if media == "application/json":
                    assert has_example, (where, status)
        body = op.get("requestBody")
        if body is not None:
            content = body["content"]["application/json"]
            assert content.get("examples"), f"{where}: the request body has no examples"
            model = _resolve(spec, content["schema"])
            assert model.get("examples"), f"{where}: the body's model has no examples"
            for example in content["examples"].values():
                assert example["summary"] and example["value"]
    # error answers show the documented error shape
    not_found = spec["paths"]["/routes/{name}"]["get"]["responses"]["404"]["content"]["application/json"]
    assert set(not_found["example"]) == {"error", "detail"}


def test_the_lock_appears_only_when_a_key_is_configured(router, monkeypatch) -> None:
    monkeypatch.delenv("SYNAPTOROUTE_API_KEY", raising=False)
    with TestClient(create_app(router, poll_interval=0)) as c:
        spec = c.get("/openapi.json").json()
    assert "securitySchemes" not in spec.get("components", {})
    for path, method, op in _operations(spec):
        assert "security" not in op, (method, path)
        assert "401" not in op["responses"], (method, path)

    with TestClient(create_app(router, api_key=KEY, poll_interval=0)) as c:
        spec = c.get("/openapi.json").json()
    assert {"HTTPBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])
    locked = {(p, m) for p, m, op in _operations(spec) if op.get("security")}
    assert locked == {
        ("/routes", "post"),
        ("/routes/{name}", "put"),
        ("/routes/{name}", "delete"),
        ("/routes/{name}/utterances", "post"),
    }
    assert "401" in spec["paths"]["/routes"]["post"]["responses"]

    with TestClient(create_app(router, api_key=KEY, protect_routing=True, poll_interval=0)) as c:
        spec = c.get("/openapi.json").json()
    locked = {(p, m) for p, m, op in _operations(spec) if op.get("security")}
    assert {("/route", "post"), ("/routes", "get"), ("/routes/{name}", "get")} <= locked
    assert not {p for p, _ in locked} & {"/healthz", "/readyz", "/metrics"}


# ---------------------------------------------------------------------- the encoder by name
def test_the_app_opens_its_router_with_an_encoder_by_name(tmp_path) -> None:
    app = create_app(db=str(tmp_path / "int8.db"), poll_interval=0, encoder="bundled-int8")
    with TestClient(app) as c:
        deadline = time.monotonic() + 120
        while c.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            assert app.state.synaptoroute.load_error is None, app.state.synaptoroute.load_error
            time.sleep(0.05)
        router = app.state.synaptoroute.router
        assert isinstance(router.encoder, BundledEncoder)
        assert router.encoder.model_id != BundledEncoder(lazy_load=True).model_id  # the INT8 one
        assert "int8" in router.encoder.model_id.lower()
        assert (
            c.put("/routes/weather", json={"name": "weather", "utterances": ["will it rain"]}).status_code
            == 201
        )
        assert c.post("/route", json={"query": "is it going to rain?"}).json()["name"] == "weather"


def test_an_encoder_needs_the_app_to_open_its_router(router) -> None:
    with pytest.raises(InvalidInputError):
        create_app(router, encoder="bundled-int8")
    with pytest.raises(InvalidInputError):
        create_app(db="x.db", router_options={"encoder": "bundled"})


# ---------------------------------------------------------------------- Dockerfile
def test_dockerfile_is_multi_stage_and_runs_unprivileged() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    instructions = [line.split(None, 1)[0].upper() for line in lines]
    froms = [line for line in lines if line.upper().startswith("FROM ")]
    assert len(froms) >= 2, froms
    assert any(" AS " in f.upper() for f in froms[:-1])  # a named build stage
    final = lines[lines.index(froms[-1]) :]
    assert any(x.upper().startswith("COPY --FROM=") for x in final)  # the runtime copies the build
    users = [x.split(None, 1)[1] for x in final if x.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    health = [x for x in final if x.upper().startswith("HEALTHCHECK")]
    assert health and "/healthz" in health[0]
    assert "uv" in " ".join(lines[: lines.index(froms[-1])])  # the build stage installs with uv
    assert instructions.count("CMD") == 1


# ---------------------------------------------------------------------- a real browser
@pytest.fixture
def live_server(router) -> Iterator[str]:
    router.add(Route("vpn", ["the vpn does not connect"]))
    port = services.free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(router, poll_interval=0), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    services.unavailable("no headless Chromium here (apt-get install chromium)")
    raise AssertionError("unreachable")


@pytest.mark.slow
def test_swagger_ui_renders_the_operations_in_a_real_browser(live_server: str, tmp_path) -> None:
    browser = _browser()
    # Every host but this machine's loopback fails to resolve: a CDN asset would not load.
    args = [
        browser,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--virtual-time-budget=15000",
        "--dump-dom",
    ]
    for page, needles in {
        "/docs": ["opblock", "/routes/{name}/utterances", "Route a query"],
        "/redoc": ["Create or replace a route", "Teach a route more example utterances"],
    }.items():
        run = subprocess.run([*args, live_server + page], capture_output=True, text=True, timeout=120)
        dom = run.stdout
        assert run.returncode == 0, run.stderr[-2000:]
        for needle in needles:
            assert needle in dom, f"{page} did not render {needle!r}: {dom[:2000]}"
