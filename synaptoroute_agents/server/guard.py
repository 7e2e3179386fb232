"""Admission: who may call what (the API key), how much may run at once, how large a body may be.

:class:`Guard` is the outermost ASGI layer. It checks the API key before reading anything, reads
the body whole within a time limit and a size limit (408, 413), and only then takes an in-flight
slot (429 with ``Retry-After`` when none is free): a client that stalls its body holds no slot. It
records every request in the metrics under labels from a closed set. :class:`Auth` declares the
same key check as FastAPI dependencies; they (and so the lock in the OpenAPI schema) are attached
to the endpoints only when a key is configured.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.applications import Starlette
from starlette.routing import Match, Route

from .state import RETRY_AFTER_SECONDS, ServerState

__all__ = ["ASGIApp", "Auth", "AuthError", "Guard", "DOCS_ASSETS_URL", "KNOWN_METHODS"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Where the app serves the Swagger UI and ReDoc scripts and styles (no CDN).
DOCS_ASSETS_URL = "/docs-assets"
#: Paths served whatever the load: health, metrics and the API's own documentation.
_UNBOUNDED_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)


def _request_class(path: str) -> str | None:
    """The in-flight class of a path: ``route``, ``api``, or None for the unbounded ones."""
    if path in _UNBOUNDED_PATHS or path.startswith(DOCS_ASSETS_URL + "/"):
        return None
    return "route" if path == "/route" else "api"


# ---------------------------------------------------------------------- the API key
class AuthError(Exception):
    """A missing (401) or wrong (403) API key."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


_bearer = HTTPBearer(auto_error=False, description="the API key as a bearer token")
_header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
HeaderKey = Annotated[str | None, Depends(_header_key)]


class Auth:
    """The key checks of one app as endpoint dependencies: ``write`` for mutations, ``read`` for the rest.

    Both are empty lists when no key is configured, so the OpenAPI schema shows no lock then.
    """

    def __init__(self, api_key: bytes | None, *, protect_routing: bool) -> None:
        self._key = api_key
        self.write: list[Any] = [] if api_key is None else [Depends(self._check)]
        self.read: list[Any] = self.write if protect_routing else []

    def _check(self, credentials: BearerCredentials, x_api_key: HeaderKey) -> None:
        if self._key is None:
            return
        given = credentials.credentials if credentials is not None else x_api_key
        if not given:
            raise AuthError(401, "unauthorized", "an API key is required (Authorization: Bearer <key>)")
        if not hmac.compare_digest(given.encode(), self._key):
            raise AuthError(403, "forbidden", "the API key is not valid")


# ---------------------------------------------------------------------- the ASGI guard
#: HTTP methods that never change anything (their requests need the key only with protect_routing).
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The method label values of the metrics; any other method is counted as ``other``.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


class Guard:
    """Outermost ASGI layer: the key, body bounds and timeouts, in-flight bounds, request metrics.

    In order, for every request but health, metrics and the documentation:

    1. the API key, when the request needs one (401/403 before a byte of the body is read);
    2. a declared ``Content-Length`` over the limit (413, before the body is read);
    3. the body, read whole within ``body_timeout`` seconds (408 past it, 413 past the limit);
    4. an in-flight slot (429 with ``Retry-After`` when none is free), taken only now, so a client
       that sends its body slowly (or never) holds no slot;
    5. the app, which gets the buffered body and then the real ``http.disconnect`` when the client
       goes away (so it can cancel work nobody waits for).
    """

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
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
        cls = _request_class(path)

        async def send_tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = int(message["status"])
            await send(message)

        try:
            if cls is None:
                await self.app(scope, receive, send_tracked)
                return
            body = await self._admit(scope, method, path, receive, send_tracked)
            if body is None:
                return
            if state.inflight[cls] >= state.max_inflight:
                state.metrics.reject("overloaded")
                await _send_json(
                    send_tracked,
                    429,
                    {"error": "overloaded", "detail": "too many requests in flight; retry later"},
                    {"retry-after": str(RETRY_AFTER_SECONDS)},
                )
                return
            state.inflight[cls] += 1
            try:
                await self.app(scope, _replay(body, receive), send_tracked)
            finally:
                state.inflight[cls] -= 1
        finally:
            state.metrics.observe(
                method if method in KNOWN_METHODS else "other",
                _endpoint(scope, cls),
                status_box[0],
                time.perf_counter() - started,
            )

    async def _admit(
        self, scope: Scope, method: str, path: str, receive: Receive, send: Send
    ) -> bytes | None:
        """The body, or None when the request was answered (401, 403, 408, 413) or its client left."""
        state = self.state
        refusal = self._key_refusal(scope, method, path)
        if refusal is not None:
            status, code, detail = refusal
            headers = {"www-authenticate": "Bearer"} if status == 401 else {}
            await _send_json(send, status, {"error": code, "detail": detail}, {**headers, **_CLOSE})
            return None
        length = _content_length(scope)
        if length is not None and length > state.max_body_bytes:
            state.metrics.reject("too_large")
            await _send_json(send, 413, _too_large(state.max_body_bytes), _CLOSE)
            return None
        return await self._read_body(receive, send)

    def _key_refusal(self, scope: Scope, method: str, path: str) -> tuple[int, str, str] | None:
        """(status, code, detail) when the request needs the key and lacks it, else None."""
        key = self.state.api_key
        if key is None:
            return None
        mutation = method not in _SAFE_METHODS and path != "/route"
        if not (mutation or self.state.protect_routing):
            return None
        given = _given_key(scope)
        if not given:
            return 401, "unauthorized", "an API key is required (Authorization: Bearer <key>)"
        if not hmac.compare_digest(given, key):
            return 403, "forbidden", "the API key is not valid"
        return None

    async def _read_body(self, receive: Receive, send: Send) -> bytes | None:
        """Read the whole body within the timeout and the size limit; None when answered or gone."""
        state = self.state
        limit = state.max_body_bytes
        loop = asyncio.get_running_loop()
        deadline = loop.time() + state.body_timeout
        chunks: list[bytes] = []
        seen = 0
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                state.metrics.reject("timeout")
                detail = f"the body did not arrive within {state.body_timeout:g} s"
                await _send_json(send, 408, {"error": "timeout", "detail": detail}, _CLOSE)
                return None
            if message["type"] != "http.request":  # http.disconnect: nobody to answer
                return None
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                state.metrics.reject("too_large")
                await _send_json(send, 413, _too_large(limit), _CLOSE)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


_CLOSE = {"connection": "close"}


def _too_large(limit: int) -> dict[str, str]:
    return {"error": "too_large", "detail": f"request body over {limit} bytes"}


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the buffered body once, then waits on the real one (for the disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _given_key(scope: Scope) -> bytes | None:
    """The key a request carries: a bearer token, else ``X-API-Key`` (as the Auth dependencies)."""
    header_key: bytes | None = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return bytes(token.strip())
        elif name == b"x-api-key":
            header_key = bytes(value)
    return header_key


def _endpoint(scope: Scope, cls: str | None) -> str:
    """The metrics label of a request, from a closed set: its route template or ``other``.

    Never the raw path: the app's own route templates ("/routes/{name}"), the documentation assets'
    mount, or ``other`` for anything that matches none of them.
    """
    route = scope.get("route")
    if isinstance(route, Route):
        return route.path
    if scope.get("path", "").startswith(DOCS_ASSETS_URL + "/"):
        return DOCS_ASSETS_URL
    app = scope.get("app")
    for candidate in app.routes if isinstance(app, Starlette) else ():
        if isinstance(candidate, Route) and candidate.matches(scope)[0] is not Match.NONE:
            return candidate.path
    return "other"


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
