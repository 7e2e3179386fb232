"""The HTTP face of the router: a thin FastAPI app that translates requests into router calls.

Run it with ``synaptoroute serve --db URL [--redis URL]`` (uvicorn), or build it with
:func:`create_app` and serve it with any ASGI server. The app holds no routing logic: it validates
input, calls :class:`~synaptoroute_agents.SemanticRouter`, maps the engine's typed errors to HTTP
statuses, bounds the work in flight (excess gets ``429`` with ``Retry-After`` at once), bounds body
sizes (``413``), and keeps replicas in step through :class:`~synaptoroute_agents.sync.ReplicaSync`.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from .errors import (
    DuplicateRouteError,
    InvalidInputError,
    RouteNotFoundError,
    RouterClosedError,
    RouterOverloadedError,
    StoreError,
    SynaptoRouteError,
)
from .routes import Route
from .sync import DEFAULT_CHANNEL, ReplicaSync

__all__ = ["create_app", "DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_INFLIGHT", "DEFAULT_MAX_QUERIES"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_INFLIGHT = 256
DEFAULT_MAX_QUERIES = 256
RETRY_AFTER_SECONDS = 1
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_UNBOUNDED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"})


# ---------------------------------------------------------------------- request/response models
class RouteRequest(BaseModel):
    """Route one query (``query``) or many (``queries``, answered as a list in the same order)."""

    model_config = ConfigDict(extra="forbid")

    query: StrictStr | None = Field(None, description="one query")
    queries: list[StrictStr] | None = Field(None, description="many queries, routed in one batch")
    top_k: int = Field(1, ge=1, le=100, strict=True, description="how many routes may be selected")

    @model_validator(mode="after")
    def _one_of(self) -> RouteRequest:
        if (self.query is None) == (self.queries is None):
            raise ValueError("give exactly one of 'query' or 'queries'")
        return self


class CandidateModel(BaseModel):
    name: str
    score: float


class EvidenceModel(BaseModel):
    route: str
    utterance: str
    score: float


class MatchModel(BaseModel):
    """A decision: the chosen route (or null when the router abstains) and why."""

    name: str | None = Field(description="the chosen route, null when the router abstains")
    score: float
    margin: float
    reason: str = Field(description="matched, below_threshold, ambiguous, out_of_scope or empty_router")
    candidates: list[CandidateModel]
    evidence: list[EvidenceModel]
    selected: list[str]


class RouteModel(BaseModel):
    """A route: a name, example utterances and optional settings."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr
    utterances: list[StrictStr] = Field(min_length=1)
    description: StrictStr | None = None
    threshold: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class RouteListModel(BaseModel):
    routes: list[RouteModel]
    count: int
    version: int = Field(description="the store change version this replica has applied")


class TeachRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    utterances: list[StrictStr] = Field(min_length=1, description="new example utterances")


class TeachResult(BaseModel):
    name: str
    added: int = Field(description="how many utterances were new")
    utterances: int = Field(description="how many the route has now")


class DeleteResult(BaseModel):
    deleted: str


class ErrorModel(BaseModel):
    error: str = Field(description="a short machine-readable code")
    detail: str = Field(description="what went wrong, for people")


class HealthModel(BaseModel):
    status: str


class ReadyModel(BaseModel):
    status: str
    model_loaded: bool
    store_reachable: bool
    routes: int | None = None
    version: int | None = None
    detail: str | None = None


_bearer = HTTPBearer(auto_error=False, description="the API key as a bearer token")
_header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
HeaderKey = Annotated[str | None, Depends(_header_key)]
RouteName = Annotated[str, Path(description="the route name", max_length=128)]


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


_ERR = {"model": ErrorModel}


# ---------------------------------------------------------------------- metrics
class _Metrics:
    """Request counters and latency histograms, written out in Prometheus text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latency: dict[tuple[str, str], list[float]] = {}  # bucket counts + [sum, count]
        self.requests: dict[tuple[str, str, int], int] = {}
        self.rejected: dict[str, int] = {"overloaded": 0, "too_large": 0}

    def observe(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        key = (method, endpoint)
        with self._lock:
            row = self.latency.get(key)
            if row is None:
                row = self.latency[key] = [0.0] * (len(_LATENCY_BUCKETS) + 2)
            i = bisect.bisect_left(_LATENCY_BUCKETS, seconds)
            if i < len(_LATENCY_BUCKETS):
                row[i] += 1
            row[-2] += seconds
            row[-1] += 1
            rkey = (method, endpoint, status)
            self.requests[rkey] = self.requests.get(rkey, 0) + 1

    def reject(self, why: str) -> None:
        with self._lock:
            self.rejected[why] = self.rejected.get(why, 0) + 1

    def render(self, stats: dict[str, Any], sync: dict[str, Any] | None, inflight: dict[str, int]) -> str:
        out: list[str] = []

        def head(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")

        with self._lock:
            latency = {k: list(v) for k, v in self.latency.items()}
            requests = dict(self.requests)
            rejected = dict(self.rejected)
        name = "synaptoroute_http_request_duration_seconds"
        head(name, "histogram", "HTTP request latency by endpoint.")
        for (method, endpoint), row in sorted(latency.items()):
            labels = f'method="{method}",endpoint="{_esc(endpoint)}"'
            cumulative = 0.0
            for bound, n in zip(_LATENCY_BUCKETS, row, strict=False):
                cumulative += n
                out.append(f'{name}_bucket{{{labels},le="{bound}"}} {int(cumulative)}')
            out.append(f'{name}_bucket{{{labels},le="+Inf"}} {int(row[-1])}')
            out.append(f"{name}_sum{{{labels}}} {row[-2]:.6f}")
            out.append(f"{name}_count{{{labels}}} {int(row[-1])}")
        name = "synaptoroute_http_requests_total"
        head(name, "counter", "HTTP requests by endpoint and status.")
        for (method, endpoint, status), n in sorted(requests.items()):
            out.append(f'{name}{{method="{method}",endpoint="{_esc(endpoint)}",status="{status}"}} {n}')
        name = "synaptoroute_http_rejected_total"
        head(name, "counter", "Requests refused before any work: overloaded (429) or too large (413).")
        for why, n in sorted(rejected.items()):
            out.append(f'{name}{{reason="{why}"}} {n}')
        name = "synaptoroute_inflight_requests"
        head(name, "gauge", "Requests being served now, by class.")
        for cls, n in sorted(inflight.items()):
            out.append(f'{name}{{class="{cls}"}} {n}')

        def gauge(name: str, value: Any, text: str, kind: str = "gauge") -> None:
            head(name, kind, text)
            out.append(f"{name} {_num(value)}")

        gauge("synaptoroute_routes", stats.get("routes", 0), "Routes in this replica.")
        gauge("synaptoroute_vectors", stats.get("vectors", 0), "Utterance vectors in the index.")
        gauge("synaptoroute_store_version", stats.get("version", 0), "Store change version applied.")
        gauge("synaptoroute_fitted", 1 if stats.get("fitted") else 0, "1 when a fitted policy scores.")
        gauge("synaptoroute_queue_depth", stats.get("queue_depth", 0), "Queries waiting for a batch.")
        buckets = stats.get("batch_size_histogram") or stats.get("batch_size_buckets") or {}
        batches = stats.get("batches_total", 0)
        name = "synaptoroute_batch_size"
        head(name, "histogram", "Queries per encoder batch.")
        for bound, n in sorted(((float(b), c) for b, c in buckets.items()), key=lambda x: x[0]):
            if bound != float("inf"):
                out.append(f'{name}_bucket{{le="{_num(bound)}"}} {_num(n)}')
        out.append(f'{name}_bucket{{le="+Inf"}} {_num(batches)}')
        out.append(f"{name}_sum {_num(stats.get('batched_queries_total', 0))}")
        out.append(f"{name}_count {_num(batches)}")
        if sync is not None:
            name = "synaptoroute_sync_events_total"
            head(name, "counter", "Replica sync events (published, received, applied_changes, ...).")
            for key, value in sorted(sync.items()):
                if (
                    isinstance(value, int)
                    and not isinstance(value, bool)
                    and key not in ("version", "outbox")
                ):
                    out.append(f'{name}{{event="{key}"}} {value}')
            gauge("synaptoroute_sync_redis_connected", 1 if sync.get("redis_connected") else 0, "Redis up.")
            gauge("synaptoroute_sync_outbox", sync.get("outbox", 0), "Notifications waiting to publish.")
        return "\n".join(out) + "\n"


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: Any) -> str:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return "0"
    return str(int(f)) if f.is_integer() else repr(f)


# ---------------------------------------------------------------------- ASGI guard
class _Guard:
    """Outermost ASGI layer: in-flight bounds (429), body size bounds (413) and request metrics.

    Overload and size checks answer before the body is read, so refused requests cost almost nothing.
    """

    def __init__(self, app: ASGIApp, state: _State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.state
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET")
        started = time.perf_counter()
        status_box = [500]
        cls = None if path in _UNBOUNDED_PATHS else ("route" if path == "/route" else "api")

        async def send_tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = int(message["status"])
            await send(message)

        try:
            if cls is not None and state.inflight[cls] >= state.max_inflight:
                state.metrics.reject("overloaded")
                await _send_json(
                    send_tracked,
                    429,
                    {"error": "overloaded", "detail": "too many requests in flight; retry later"},
                    {"retry-after": str(RETRY_AFTER_SECONDS)},
                )
                return
            length = _content_length(scope)
            if length is not None and length > state.max_body_bytes:
                state.metrics.reject("too_large")
                await _send_json(
                    send_tracked,
                    413,
                    {"error": "too_large", "detail": f"request body over {state.max_body_bytes} bytes"},
                )
                return
            if cls is not None:
                state.inflight[cls] += 1
            try:
                await self._call_limited(scope, receive, send_tracked)
            finally:
                if cls is not None:
                    state.inflight[cls] -= 1
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or ("/route" if cls == "route" else "unmatched")
            state.metrics.observe(method, endpoint, status_box[0], time.perf_counter() - started)

    async def _call_limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the streamed body; past the limit answer 413 and tell the app the client left."""
        limit = self.state.max_body_bytes
        seen = 0
        refused = False
        started = False

        async def guarded_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    self.state.metrics.reject("too_large")
                    if not started:
                        await _send_json(
                            send, 413, {"error": "too_large", "detail": f"request body over {limit} bytes"}
                        )
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 was sent; drop whatever the app answers to the "disconnect"
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if refused:
                return
            raise


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


# ---------------------------------------------------------------------- app state
class _State:
    def __init__(
        self,
        router: Any,
        *,
        db: str | None,
        redis_url: str | None,
        api_key: str | None,
        protect_routing: bool,
        max_body_bytes: int,
        max_inflight: int,
        max_queries: int,
        poll_interval: float | None,
        channel: str,
        router_options: dict[str, Any],
    ) -> None:
        self.router = router
        self.owns_router = router is None
        self.db = db
        self.redis_url = redis_url
        self.api_key = api_key.encode() if api_key else None
        self.protect_routing = protect_routing
        self.max_body_bytes = max_body_bytes
        self.max_inflight = max_inflight
        self.max_queries = max_queries
        self.poll_interval = poll_interval
        self.channel = channel
        self.router_options = router_options
        self.sync: ReplicaSync | None = None
        self.load_error: str | None = None
        self.loading: asyncio.Task[None] | None = None
        self.inflight = {"route": 0, "api": 0}
        self.metrics = _Metrics()

    def ready_router(self) -> Any:
        if self.router is None:
            raise _NotReady(self.load_error or "the router is still loading")
        return self.router

    def _open_router(self) -> Any:
        from .router import SemanticRouter

        return SemanticRouter(store=self.db, **self.router_options)

    async def start(self) -> None:
        if self.router is not None:
            self._start_sync()
            return

        async def load() -> None:
            try:
                router = await asyncio.to_thread(self._open_router)
            except Exception as exc:
                self.load_error = f"the router failed to load: {exc}"
                log.exception("the router failed to load")
                return
            self.router = router
            self._start_sync()
            log.info("router ready: %s", router)

        self.loading = asyncio.create_task(load())

    def _start_sync(self) -> None:
        if self.redis_url is None and not self.poll_interval:
            return
        self.sync = ReplicaSync(
            self.router, self.redis_url, channel=self.channel, poll_interval=self.poll_interval
        )
        self.sync.start()

    async def stop(self) -> None:
        if self.loading is not None and not self.loading.done():
            await self.loading  # never leave a half-opened store behind
        if self.sync is not None:
            await asyncio.to_thread(self.sync.stop)
            self.sync = None
        if self.owns_router and self.router is not None:
            router, self.router = self.router, None
            await asyncio.to_thread(router.close)


class _NotReady(Exception):
    pass


# ---------------------------------------------------------------------- the app
def create_app(
    router: Any = None,
    *,
    db: str | None = None,
    redis_url: str | None = None,
    api_key: str | None = None,
    protect_routing: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_inflight: int = DEFAULT_MAX_INFLIGHT,
    max_queries: int = DEFAULT_MAX_QUERIES,
    poll_interval: float | None = 1.0,
    channel: str = DEFAULT_CHANNEL,
    router_options: dict[str, Any] | None = None,
) -> FastAPI:
    """Build the HTTP app.

    Args:
        router: a :class:`SemanticRouter` to serve (the caller keeps owning it); None opens one on
            ``db`` when the app starts (in the background: ``/readyz`` answers 503 until it is loaded)
            and closes it at shutdown.
        db: store path or SQLAlchemy URL for the router the app opens (``$SYNAPTOROUTE_DB`` or
            ``synaptoroute.db`` when None).
        redis_url: Redis for change notifications between replicas; None polls the store only.
        api_key: when set (or ``$SYNAPTOROUTE_API_KEY``), mutations need ``Authorization: Bearer
            <key>`` or ``X-API-Key: <key>``.
        protect_routing: also require the key for ``POST /route`` and reading routes.
        max_body_bytes: bodies larger than this get 413.
        max_inflight: requests served at once per class (routing, other API calls); more get 429
            with ``Retry-After`` at once instead of queuing.
        max_queries: most queries in one ``POST /route``.
        poll_interval: seconds between checks of the store version (0 or None turns polling off).
        channel: the Redis pub/sub channel shared by the replicas.
        router_options: keyword arguments for the :class:`SemanticRouter` the app opens.
    """
    if max_inflight < 1 or max_body_bytes < 1 or max_queries < 1:
        raise InvalidInputError("max_inflight, max_body_bytes and max_queries must be positive")
    if api_key is None:
        api_key = os.environ.get("SYNAPTOROUTE_API_KEY") or None
    if router is None and db is None:
        db = os.environ.get("SYNAPTOROUTE_DB") or "synaptoroute.db"
    state = _State(
        router,
        db=db,
        redis_url=redis_url,
        api_key=api_key,
        protect_routing=protect_routing,
        max_body_bytes=int(max_body_bytes),
        max_inflight=int(max_inflight),
        max_queries=int(max_queries),
        poll_interval=poll_interval,
        channel=channel,
        router_options=dict(router_options or {}),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    from . import __version__

    app = FastAPI(
        title="synaptoroute-agents",
        version=__version__,
        description="A local, zero-token semantic router for LLM agents: route queries, manage routes.",
        lifespan=lifespan,
    )
    app.state.synaptoroute = state

    def check_key(
        credentials: BearerCredentials,
        x_api_key: HeaderKey,
    ) -> None:
        if state.api_key is None:
            return
        given = credentials.credentials if credentials is not None else x_api_key
        if not given:
            raise _AuthError(401, "unauthorized", "an API key is required (Authorization: Bearer <key>)")
        if not hmac.compare_digest(given.encode(), state.api_key):
            raise _AuthError(403, "forbidden", "the API key is not valid")

    def check_read_key(
        credentials: BearerCredentials,
        x_api_key: HeaderKey,
    ) -> None:
        if state.protect_routing:
            check_key(credentials, x_api_key)

    write_auth = [Depends(check_key)]
    read_auth = [Depends(check_read_key)]
    auth_errors: dict[int | str, dict[str, Any]] = {401: _ERR, 403: _ERR}
    busy_errors: dict[int | str, dict[str, Any]] = {413: _ERR, 429: _ERR, 503: _ERR}

    # ------------------------------------------------------------------ error mapping
    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            if err.get("type") == "json_invalid":
                loc, msg = (
                    "",
                    f"the body is not valid JSON (error at character {err.get('loc', ('', '?'))[-1]})",
                )
            parts.append(f"{loc}: {msg}" if loc else msg)
        return _error(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(_AuthError)
    async def _auth(_request: Request, exc: _AuthError) -> JSONResponse:
        headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.code, exc.detail, headers)

    @app.exception_handler(_NotReady)
    async def _not_ready(_request: Request, exc: _NotReady) -> JSONResponse:
        return _error(503, "not_ready", str(exc), {"retry-after": str(RETRY_AFTER_SECONDS)})

    @app.exception_handler(SynaptoRouteError)
    async def _engine(_request: Request, exc: SynaptoRouteError) -> JSONResponse:
        if isinstance(exc, RouteNotFoundError):
            return _error(404, "not_found", str(exc))
        if isinstance(exc, DuplicateRouteError):
            return _error(409, "conflict", str(exc))
        if isinstance(exc, InvalidInputError):
            return _error(422, "invalid_input", str(exc))
        if isinstance(exc, RouterOverloadedError):
            state.metrics.reject("overloaded")
            return _error(
                429, "overloaded", str(exc) or "overloaded", {"retry-after": str(RETRY_AFTER_SECONDS)}
            )
        if isinstance(exc, RouterClosedError):
            return _error(503, "closed", str(exc) or "the router is closed")
        if isinstance(exc, StoreError):
            log.warning("store error: %s", exc)
            return _error(503, "store_unavailable", str(exc), {"retry-after": str(RETRY_AFTER_SECONDS)})
        log.error("engine error: %r", exc)
        return _error(500, "engine_error", str(exc))

    # ------------------------------------------------------------------ routing
    @app.post(
        "/route",
        response_model=MatchModel | list[MatchModel],
        dependencies=read_auth,
        responses={**busy_errors, 401: _ERR, 403: _ERR, 422: _ERR},
        summary="Route a query (or a list of queries)",
        tags=["routing"],
    )
    async def route(body: RouteRequest) -> Any:
        router = state.ready_router()
        if body.queries is not None:
            if len(body.queries) > state.max_queries:
                raise InvalidInputError(f"at most {state.max_queries} queries per request")
            matches = await router.aroute_batch(body.queries, top_k=body.top_k)
            return JSONResponse([m.to_dict() for m in matches])
        assert body.query is not None
        match = await router.aroute(body.query, top_k=body.top_k)
        return JSONResponse(match.to_dict())

    # ------------------------------------------------------------------ routes
    @app.get(
        "/routes",
        response_model=RouteListModel,
        dependencies=read_auth,
        responses=auth_errors,
        summary="List routes",
        tags=["routes"],
    )
    async def list_routes() -> Any:
        router = state.ready_router()
        routes = router.routes()
        return JSONResponse(
            {"routes": [r.to_dict() for r in routes], "count": len(routes), "version": router.version}
        )

    @app.post(
        "/routes",
        response_model=RouteModel,
        status_code=201,
        dependencies=write_auth,
        responses={**auth_errors, **busy_errors, 409: _ERR, 422: _ERR},
        summary="Create a route (409 when the name exists)",
        tags=["routes"],
    )
    async def create_route(body: RouteModel) -> Any:
        router = state.ready_router()
        route = Route.from_dict(body.model_dump())
        await asyncio.to_thread(router.add, route)
        return JSONResponse(route.to_dict(), status_code=201)

    @app.get(
        "/routes/{name}",
        response_model=RouteModel,
        dependencies=read_auth,
        responses={**auth_errors, 404: _ERR, 422: _ERR},
        summary="Get one route",
        tags=["routes"],
    )
    async def get_route(name: RouteName) -> Any:
        return JSONResponse(state.ready_router().get(name).to_dict())

    @app.put(
        "/routes/{name}",
        response_model=RouteModel,
        status_code=200,
        dependencies=write_auth,
        responses={**auth_errors, **busy_errors, 201: {"model": RouteModel}, 422: _ERR},
        summary="Create or replace a route (201 when created, 200 when replaced)",
        tags=["routes"],
    )
    async def put_route(name: RouteName, body: RouteModel) -> Any:
        router = state.ready_router()
        if body.name != name:
            raise InvalidInputError(f"the body names route {body.name!r} but the path names {name!r}")
        route = Route.from_dict(body.model_dump())
        created = await asyncio.to_thread(router.upsert, route)
        return JSONResponse(router.get(route.name).to_dict(), status_code=201 if created else 200)

    @app.delete(
        "/routes/{name}",
        response_model=DeleteResult,
        dependencies=write_auth,
        responses={**auth_errors, **busy_errors, 404: _ERR, 422: _ERR},
        summary="Delete a route",
        tags=["routes"],
    )
    async def delete_route(name: RouteName) -> Any:
        router = state.ready_router()
        await asyncio.to_thread(router.delete, name)
        return JSONResponse({"deleted": name})

    @app.post(
        "/routes/{name}/utterances",
        response_model=TeachResult,
        dependencies=write_auth,
        responses={**auth_errors, **busy_errors, 404: _ERR, 422: _ERR},
        summary="Teach a route more example utterances",
        tags=["routes"],
    )
    async def teach(name: RouteName, body: TeachRequest) -> Any:
        router = state.ready_router()
        added = await asyncio.to_thread(router.add_utterances, name, body.utterances)
        try:
            total = len(router.get(name).utterances)
        except RouteNotFoundError:  # deleted by someone else right after
            total = 0
        return JSONResponse({"name": name, "added": added, "utterances": total})

    # ------------------------------------------------------------------ operations
    @app.get("/healthz", response_model=HealthModel, summary="Liveness", tags=["operations"])
    async def healthz() -> Any:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=ReadyModel,
        responses={503: {"model": ReadyModel}},
        summary="Readiness: the model is loaded and the store answers",
        tags=["operations"],
    )
    async def readyz() -> Any:
        router = state.router
        if router is None:
            body = ReadyModel(
                status="unavailable",
                model_loaded=False,
                store_reachable=False,
                detail=state.load_error or "the router is still loading",
            )
            return JSONResponse(body.model_dump(), status_code=503)
        try:
            reachable = bool(await asyncio.wait_for(asyncio.to_thread(router.store.ping), 5.0))
        except (TimeoutError, RouterClosedError):
            reachable = False
        body = ReadyModel(
            status="ready" if reachable else "unavailable",
            model_loaded=True,
            store_reachable=reachable,
            routes=len(router),
            version=router.version,
            detail=None if reachable else "the store does not answer",
        )
        return JSONResponse(body.model_dump(), status_code=200 if reachable else 503)

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        summary="Prometheus metrics",
        tags=["operations"],
        responses={200: {"content": {"text/plain": {}}}},
    )
    async def metrics() -> Response:
        router = state.router
        stats: dict[str, Any] = router.stats() if router is not None else {}
        sync = state.sync.stats() if state.sync is not None else None
        text = state.metrics.render(stats, sync, dict(state.inflight))
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    # The guard wraps the app (and its error handling) so refusals cost no parsing.
    app.add_middleware(_Guard, state=state)
    return app


class _AuthError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def serve(
    *,
    db: str | None,
    redis_url: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    protect_routing: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_inflight: int = DEFAULT_MAX_INFLIGHT,
    poll_interval: float = 1.0,
    channel: str = DEFAULT_CHANNEL,
    log_level: str = "info",
    backlog: int = 2048,
    graceful_timeout: float = 15.0,
) -> None:
    """Serve the app with uvicorn until SIGINT/SIGTERM (in-flight requests finish first)."""
    import uvicorn

    app = create_app(
        db=db,
        redis_url=redis_url,
        api_key=api_key,
        protect_routing=protect_routing,
        max_body_bytes=max_body_bytes,
        max_inflight=max_inflight,
        poll_interval=poll_interval,
        channel=channel,
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        backlog=backlog,
        timeout_graceful_shutdown=int(graceful_timeout),
        access_log=False,
    )
