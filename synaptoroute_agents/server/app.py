"""The FastAPI app: endpoints that translate HTTP into router calls, and nothing else.

:func:`create_app` builds the app from small functions that each register one group of endpoints
(routing, reading routes, changing routes, operations) and one that maps the engine's typed errors
to HTTP statuses. A new endpoint goes into the group it belongs to (or a new ``_add_*`` function
called from :func:`create_app`); admission (key, body size, in-flight bounds) lives in
:mod:`.guard`, the JSON shapes in :mod:`.models`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, TypeVar

from fastapi import Body, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..encoders import Encoder
from ..errors import (
    DuplicateRouteError,
    InvalidInputError,
    RouteNotFoundError,
    RouterClosedError,
    RouterOverloadedError,
    StoreError,
    SynaptoRouteError,
)
from ..router import SemanticRouter
from ..routes import Route
from ..sync import DEFAULT_CHANNEL
from .guard import DOCS_ASSETS_URL, Auth, AuthError, Guard
from .models import (
    MATCH_EXAMPLES,
    ROUTE_EXAMPLES,
    ROUTE_REQUEST_EXAMPLES,
    TEACH_EXAMPLES,
    DeleteResult,
    ErrorModel,
    HealthModel,
    MatchModel,
    ReadyModel,
    RouteListModel,
    RouteModel,
    RouteRequest,
    TeachRequest,
    TeachResult,
)
from .state import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_MAX_QUERIES,
    DEFAULT_MAX_QUERY_CHARS,
    RETRY_AFTER_SECONDS,
    NotReady,
    ServerState,
)

__all__ = ["create_app"]

log = logging.getLogger("synaptoroute_agents.server")

RouteName = Annotated[str, Path(description="the route name", max_length=128, examples=["vpn"])]
RouteBody = Annotated[RouteModel, Body(openapi_examples=ROUTE_EXAMPLES)]
Responses = dict[int | str, dict[str, Any]]

_DESCRIPTION = """\
A local, zero-token semantic router for LLM agents: route queries, manage routes.

Every error is JSON `{"error": code, "detail": message}`. Requests over the in-flight bound get 429
with `Retry-After`; bodies over the size limit get 413, bodies that do not arrive in time 408.
"""
_KEY_DESCRIPTION = """
Mutations (and, with `--protect-routing`, routing and reads) need the API key: `Authorization:
Bearer <key>` or `X-API-Key: <key>`.
"""


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _err(description: str, code: str, detail: str) -> dict[str, Any]:
    """One documented error answer: its meaning and an example body."""
    example = {"error": code, "detail": detail}
    return {
        "model": ErrorModel,
        "description": description,
        "content": {"application/json": {"example": example}},
    }


_NOT_FOUND: Responses = {404: _err("No route has this name.", "not_found", "no route named 'vpn'")}
_INVALID: Responses = {
    422: _err(
        "Malformed JSON (also invalid UTF-8 or nesting too deep), wrong types, unknown fields, "
        "invalid values, or more query text than the work budget.",
        "invalid_request",
        "query: Input should be a valid string",
    )
}
_BUSY: Responses = {
    408: _err("The body did not arrive in time.", "timeout", "the body did not arrive within 10 s"),
    413: _err("The body is over the size limit.", "too_large", "request body over 1048576 bytes"),
    429: _err(
        "Too many requests in flight: retry after `Retry-After` seconds.",
        "overloaded",
        "too many requests in flight; retry later",
    ),
    503: _err(
        "The router is still loading or closing, or the store does not answer.",
        "not_ready",
        "the router is still loading",
    ),
}
_AUTH: Responses = {
    401: _err("No API key was sent.", "unauthorized", "an API key is required (Authorization: Bearer <key>)"),
    403: _err("The API key is not valid.", "forbidden", "the API key is not valid"),
}


def _auth_errors(dependencies: list[Any]) -> Responses:
    """401 and 403 when the endpoint checks a key (only when one is configured)."""
    return dict(_AUTH) if dependencies else {}


def create_app(
    router: SemanticRouter | None = None,
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
    router_options: Mapping[str, Any] | None = None,
    encoder: str | Encoder | None = None,
    max_query_chars: int = DEFAULT_MAX_QUERY_CHARS,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> FastAPI:
    """Build the HTTP app.

    Args:
        router: a :class:`SemanticRouter` to serve (the caller keeps owning it); None opens one on
            ``db`` when the app starts (in the background: ``/readyz`` answers 503 until it is loaded)
            and closes it at shutdown.
        db: store path or SQLAlchemy URL for the router the app opens (``$SYNAPTOROUTE_DB`` or
            ``synaptoroute.db`` when None).
        redis_url: Redis for change notifications between replicas; None polls the store only.
        api_key: when set (or ``$SYNAPTOROUTE_API_KEY``, or the first line of the file named by
            ``$SYNAPTOROUTE_API_KEY_FILE``, e.g. a Docker secret), mutations need
            ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. An empty key is an error.
        protect_routing: also require the key for ``POST /route`` and reading routes.
        max_body_bytes: bodies larger than this get 413.
        max_inflight: requests served at once per class (routing, other API calls); more get 429
            with ``Retry-After`` at once instead of queuing.
        max_queries: most queries in one ``POST /route``.
        max_query_chars: the work budget of one ``POST /route``: most characters over all its
            queries (422 beyond).
        body_timeout: seconds a client has to send the whole body (408 beyond); no in-flight slot
            is held meanwhile.
        poll_interval: seconds between checks of the store version (0 or None turns polling off).
        channel: the Redis pub/sub channel shared by the replicas.
        router_options: keyword arguments for the :class:`SemanticRouter` the app opens.
        encoder: the encoder of the router the app opens: an :class:`Encoder` or a registered name
            such as ``"bundled-int8"`` (None: the bundled model). Only without ``router``.

    Raises:
        InvalidInputError: a limit is not positive, the API key is empty, or ``encoder`` is given
            with ``router`` (or twice, also in ``router_options``).
        InvalidTypeError: ``encoder`` is neither a name nor an :class:`Encoder`.
    """
    state = ServerState(
        router,
        db=db,
        encoder=encoder,
        redis_url=redis_url,
        api_key=api_key,
        protect_routing=protect_routing,
        max_body_bytes=max_body_bytes,
        max_inflight=max_inflight,
        max_queries=max_queries,
        max_query_chars=max_query_chars,
        body_timeout=body_timeout,
        poll_interval=poll_interval,
        channel=channel,
        router_options=router_options or {},
    )
    from .. import __version__

    app = FastAPIOffline(
        title="synaptoroute-agents",
        version=__version__,
        description=_DESCRIPTION + (_KEY_DESCRIPTION if state.api_key is not None else ""),
        lifespan=_lifespan(state),
        static_url=DOCS_ASSETS_URL,
    )
    app.state.synaptoroute = state
    auth = Auth(state.api_key, protect_routing=state.protect_routing)
    _add_error_handlers(app, state)
    _add_routing(app, state, auth)
    _add_route_reads(app, state, auth)
    _add_route_writes(app, state, auth)
    _add_operations(app, state)
    # The guard wraps the app (and its error handling) so refusals cost no parsing.
    app.add_middleware(Guard, state=state)
    return app


def _lifespan(state: ServerState) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Open the router (when the app owns it) and start the sync at startup; undo both at shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    return lifespan


# ---------------------------------------------------------------------- error mapping
def _add_error_handlers(app: FastAPI, state: ServerState) -> None:
    """Answer every error as ``{"error": code, "detail": message}`` with the fitting status."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            if err.get("type") == "json_invalid":
                at = err.get("loc", ("", "?"))[-1]
                loc, msg = "", f"the body is not valid JSON (error at character {at})"
            parts.append(f"{loc}: {msg}" if loc else msg)
        return _error(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 400:
            # FastAPI answers 400 when it cannot decode the body at all (invalid UTF-8, JSON nested
            # deeper than the parser allows): malformed JSON, which the API documents as 422.
            detail = "the body is not valid JSON (not UTF-8, or nested too deeply)"
            return _error(422, "invalid_request", detail, headers)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", exc_info=exc)
        return _error(500, "internal_error", "the server failed to answer this request")

    @app.exception_handler(AuthError)
    async def _auth(_request: Request, exc: AuthError) -> JSONResponse:
        headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.code, exc.detail, headers)

    @app.exception_handler(ClientGone)
    async def _gone(_request: Request, _exc: ClientGone) -> JSONResponse:
        # Nobody reads this answer; 499 (as nginx counts it) keeps the metrics honest.
        return _error(499, "client_closed", "the client went away; its work was cancelled")

    @app.exception_handler(NotReady)
    async def _not_ready(_request: Request, exc: NotReady) -> JSONResponse:
        return _error(503, "not_ready", str(exc), {"retry-after": str(RETRY_AFTER_SECONDS)})

    @app.exception_handler(SynaptoRouteError)
    async def _engine(_request: Request, exc: SynaptoRouteError) -> JSONResponse:
        return _engine_error(state, exc)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 429: "overloaded"}


def _engine_error(state: ServerState, exc: SynaptoRouteError) -> JSONResponse:
    """The HTTP answer to one of the engine's typed errors."""
    retry = {"retry-after": str(RETRY_AFTER_SECONDS)}
    if isinstance(exc, RouteNotFoundError):
        return _error(404, "not_found", str(exc))
    if isinstance(exc, DuplicateRouteError):
        return _error(409, "conflict", str(exc))
    if isinstance(exc, InvalidInputError):
        return _error(422, "invalid_input", str(exc))
    if isinstance(exc, RouterOverloadedError):
        state.metrics.reject("overloaded")
        return _error(429, "overloaded", str(exc) or "overloaded", retry)
    if isinstance(exc, RouterClosedError):
        return _error(503, "closed", str(exc) or "the router is closed")
    if isinstance(exc, StoreError):
        log.warning("store error: %s", exc)
        return _error(503, "store_unavailable", str(exc), retry)
    log.error("engine error: %r", exc)
    return _error(500, "engine_error", str(exc))


# ---------------------------------------------------------------------- routing
def _add_routing(app: FastAPI, state: ServerState, auth: Auth) -> None:
    """``POST /route``."""

    @app.post(
        "/route",
        response_model=MatchModel | list[MatchModel],
        dependencies=auth.read,
        responses={
            200: {"content": {"application/json": {"examples": MATCH_EXAMPLES}}},
            **_BUSY,
            **_auth_errors(auth.read),
            **_INVALID,
        },
        summary="Route a query (or a list of queries)",
        response_description="The decision; for `queries`, a list of decisions in the same order.",
        tags=["routing"],
    )
    async def route(
        request: Request,
        body: Annotated[RouteRequest, Body(openapi_examples=ROUTE_REQUEST_EXAMPLES)],
    ) -> JSONResponse:
        """Choose the route of a query, or abstain (`name` null, `reason` says why).

        The decision explains itself: the score and margin, the ranked candidates, and the example
        utterances that decided it. `queries` routes up to the server's limit (256 by default) in
        one batch; `top_k` lets several routes be selected. The query text of one request is
        bounded (16,384 characters over all queries by default); a large batch runs in slices
        that take turns with other clients' queries, and stops when its client goes away.
        """
        router = state.ready_router()
        texts = body.queries if body.queries is not None else [body.query or ""]
        if len(texts) > state.max_queries:
            raise InvalidInputError(f"at most {state.max_queries} queries per request")
        chars = sum(len(t) for t in texts)
        if chars > state.max_query_chars:
            raise InvalidInputError(
                f"the queries hold {chars} characters; at most {state.max_query_chars} per request"
            )
        if body.queries is not None:
            matches = await _unless_client_leaves(
                request, router.aroute_batch(body.queries, top_k=body.top_k)
            )
            return JSONResponse([m.to_dict() for m in matches])
        match = await _unless_client_leaves(request, router.aroute(texts[0], top_k=body.top_k))
        return JSONResponse(match.to_dict())


_T = TypeVar("_T")


class ClientGone(Exception):
    """The client disconnected before its answer was ready (its work was cancelled)."""


async def _unless_client_leaves(request: Request, work: Coroutine[Any, Any, _T]) -> _T:
    """Run ``work``; cancel it (and raise :class:`ClientGone`) when the client disconnects first.

    The guard has read the body already, so the next ASGI message is the disconnect: waiting for
    it costs nothing while the client stays.
    """
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
        watch.cancel()
        if watch.done() and not watch.cancelled():
            watch.exception()  # retrieved: a failing receive counts as the client gone
    if task.cancelled() or not task.done():
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise ClientGone()
    return task.result()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


# ---------------------------------------------------------------------- routes
def _add_route_reads(app: FastAPI, state: ServerState, auth: Auth) -> None:
    """``GET /routes`` and ``GET /routes/{name}``."""

    @app.get(
        "/routes",
        response_model=RouteListModel,
        dependencies=auth.read,
        responses={**_auth_errors(auth.read), 503: _BUSY[503]},
        summary="List routes",
        response_description="Every route of this replica and the store version it has applied.",
        tags=["routes"],
    )
    async def list_routes() -> JSONResponse:
        """List every route with its utterances and settings."""
        router = state.ready_router()
        routes = router.routes()
        return JSONResponse(
            {"routes": [r.to_dict() for r in routes], "count": len(routes), "version": router.version}
        )

    @app.get(
        "/routes/{name}",
        response_model=RouteModel,
        dependencies=auth.read,
        responses={**_auth_errors(auth.read), **_NOT_FOUND, **_INVALID, 503: _BUSY[503]},
        summary="Get one route",
        response_description="The route.",
        tags=["routes"],
    )
    async def get_route(name: RouteName) -> JSONResponse:
        """Read one route by name."""
        return JSONResponse(state.ready_router().get(name).to_dict())


def _add_route_writes(app: FastAPI, state: ServerState, auth: Auth) -> None:
    """Create, replace, delete and teach routes (the mutations)."""
    errors = {**_auth_errors(auth.write), **_BUSY, **_INVALID}

    @app.post(
        "/routes",
        response_model=RouteModel,
        status_code=201,
        dependencies=auth.write,
        responses={**errors, 409: _err("A route has this name.", "conflict", "route 'vpn' already exists")},
        summary="Create a route (409 when the name exists)",
        response_description="The route, as stored.",
        tags=["routes"],
    )
    async def create_route(body: RouteBody) -> JSONResponse:
        """Add a new route; its utterances are embedded and searchable once this answers."""
        router = state.ready_router()
        route = Route.from_dict(body.model_dump())
        await asyncio.to_thread(router.add, route)
        return JSONResponse(route.to_dict(), status_code=201)

    @app.put(
        "/routes/{name}",
        response_model=RouteModel,
        status_code=200,
        dependencies=auth.write,
        responses={**errors, 201: {"model": RouteModel, "description": "The route was created."}},
        summary="Create or replace a route (201 when created, 200 when replaced)",
        response_description="The route was replaced.",
        tags=["routes"],
    )
    async def put_route(name: RouteName, body: RouteBody) -> JSONResponse:
        """Create the route, or replace every field of the one with this name (safe to repeat).

        The body's `name` must be the one in the path.
        """
        router = state.ready_router()
        if body.name != name:
            raise InvalidInputError(f"the body names route {body.name!r} but the path names {name!r}")
        route = Route.from_dict(body.model_dump())
        created = await asyncio.to_thread(router.upsert, route)
        return JSONResponse(router.get(route.name).to_dict(), status_code=201 if created else 200)

    @app.delete(
        "/routes/{name}",
        response_model=DeleteResult,
        dependencies=auth.write,
        responses={**errors, **_NOT_FOUND},
        summary="Delete a route",
        response_description="The name of the deleted route.",
        tags=["routes"],
    )
    async def delete_route(name: RouteName) -> JSONResponse:
        """Delete a route and its utterances."""
        router = state.ready_router()
        await asyncio.to_thread(router.delete, name)
        return JSONResponse({"deleted": name})

    @app.post(
        "/routes/{name}/utterances",
        response_model=TeachResult,
        dependencies=auth.write,
        responses={**errors, **_NOT_FOUND},
        summary="Teach a route more example utterances",
        response_description="How many utterances were new, and how many the route has now.",
        tags=["routes"],
    )
    async def teach(
        name: RouteName, body: Annotated[TeachRequest, Body(openapi_examples=TEACH_EXAMPLES)]
    ) -> JSONResponse:
        """Add example utterances to a route; ones it already has are skipped."""
        router = state.ready_router()
        added = await asyncio.to_thread(router.add_utterances, name, body.utterances)
        try:
            total = len(router.get(name).utterances)
        except RouteNotFoundError:  # deleted by someone else right after
            total = 0
        return JSONResponse({"name": name, "added": added, "utterances": total})


# ---------------------------------------------------------------------- operations
def _add_operations(app: FastAPI, state: ServerState) -> None:
    """``/healthz``, ``/readyz`` and ``/metrics``: always open, never refused for load."""

    @app.get(
        "/healthz",
        response_model=HealthModel,
        summary="Liveness",
        response_description="The process answers.",
        tags=["operations"],
    )
    async def healthz() -> dict[str, str]:
        """Answer at once while the process runs, even before the model is loaded."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=ReadyModel,
        responses={
            503: {"model": ReadyModel, "description": "Not ready: still loading, or the store is down."}
        },
        summary="Readiness: the model is loaded and the store answers",
        response_description="Ready to serve.",
        tags=["operations"],
    )
    async def readyz() -> JSONResponse:
        """Report whether this replica can serve: 200 when ready, 503 (with the reason) when not."""
        body = await _readiness(state)
        return JSONResponse(body.model_dump(), status_code=200 if body.status == "ready" else 503)

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        summary="Prometheus metrics",
        response_description="The Prometheus text exposition format.",
        tags=["operations"],
        responses={200: {"content": {"text/plain": {"example": "synaptoroute_routes 12\n"}}}},
    )
    async def metrics() -> PlainTextResponse:
        """Request counts and latencies, refusals, routes and vectors, batching and replica sync."""
        router = state.router
        stats: dict[str, Any] = router.stats() if router is not None else {}
        sync = state.sync.stats() if state.sync is not None else None
        text = state.metrics.render(stats, sync, dict(state.inflight))
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


async def _readiness(state: ServerState) -> ReadyModel:
    router = state.router
    if router is None:
        return ReadyModel(
            status="unavailable",
            model_loaded=False,
            store_reachable=False,
            detail=state.load_error or "the router is still loading",
        )
    try:
        reachable = bool(await asyncio.wait_for(asyncio.to_thread(router.store.ping), 5.0))
    except (TimeoutError, RouterClosedError):
        reachable = False
    return ReadyModel(
        status="ready" if reachable else "unavailable",
        model_loaded=True,
        store_reachable=reachable,
        routes=len(router),
        version=router.version,
        detail=None if reachable else "the store does not answer",
    )
