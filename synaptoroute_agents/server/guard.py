"""Admission: who may call what (the API key), how much may run at once, how large a body may be.

:class:`Guard` is the outermost ASGI layer. It refuses a request over the in-flight bound (429 with
``Retry-After``) or with a declared body over the limit (413) before the body is read, counts the
streamed body of the others (413 past the limit), and records every request in the metrics.
:class:`Auth` holds the key check as FastAPI dependencies; they (and so the lock in the OpenAPI
schema) are attached to the endpoints only when a key is configured.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import Route

from .state import RETRY_AFTER_SECONDS, ServerState

__all__ = ["ASGIApp", "Auth", "AuthError", "Guard", "DOCS_ASSETS_URL"]

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
class Guard:
    """Outermost ASGI layer: in-flight bounds (429), body size bounds (413) and request metrics.

    Overload and size checks answer before the body is read, so refused requests cost almost nothing.
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
            if not await self._admit(scope, cls, send_tracked):
                return
            if cls is not None:
                state.inflight[cls] += 1
            try:
                await self._call_limited(scope, receive, send_tracked)
            finally:
                if cls is not None:
                    state.inflight[cls] -= 1
        finally:
            state.metrics.observe(method, _endpoint(scope, cls), status_box[0], time.perf_counter() - started)

    async def _admit(self, scope: Scope, cls: str | None, send: Send) -> bool:
        """Answer 429 or 413 at once (and return False) when the request cannot be taken."""
        state = self.state
        if cls is not None and state.inflight[cls] >= state.max_inflight:
            state.metrics.reject("overloaded")
            await _send_json(
                send,
                429,
                {"error": "overloaded", "detail": "too many requests in flight; retry later"},
                {"retry-after": str(RETRY_AFTER_SECONDS)},
            )
            return False
        length = _content_length(scope)
        if length is not None and length > state.max_body_bytes:
            state.metrics.reject("too_large")
            await _send_json(
                send, 413, {"error": "too_large", "detail": f"request body over {state.max_body_bytes} bytes"}
            )
            return False
        return True

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


def _endpoint(scope: Scope, cls: str | None) -> str:
    """The metrics label of a request: its route template ("/routes/{name}"), never the raw path."""
    route = scope.get("route")
    if isinstance(route, Route):
        return route.path
    return "/route" if cls == "route" else "unmatched"


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
