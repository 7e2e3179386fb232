"""Serving the app with uvicorn (what ``synaptoroute serve`` runs)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

from ..errors import InvalidInputError
from ..sync import DEFAULT_CHANNEL
from .app import create_app
from .state import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_MAX_QUERY_CHARS,
    resolve_api_key,
)

__all__ = ["CLOSE_RESERVE_SECONDS", "is_loopback", "serve"]

log = logging.getLogger("synaptoroute_agents.server")

#: Seconds of ``graceful_timeout`` kept for closing the router after the requests in flight were
#: given the rest (or cancelled): the process exits within ``graceful_timeout`` of SIGTERM.
CLOSE_RESERVE_SECONDS = 2


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
    encoder: str | None = None,
    allow_anonymous_writes: bool = False,
    max_query_chars: int = DEFAULT_MAX_QUERY_CHARS,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
) -> None:
    """Serve the app with uvicorn until SIGINT/SIGTERM; exits within ``graceful_timeout`` of it.

    Args:
        db: store path or SQLAlchemy URL (None: ``$SYNAPTOROUTE_DB`` or ``synaptoroute.db``).
        redis_url: Redis for change notifications between replicas, or None.
        host: the address to listen on.
        port: the port to listen on.
        api_key: the key mutations need (None: ``$SYNAPTOROUTE_API_KEY``, else the file named by
            ``$SYNAPTOROUTE_API_KEY_FILE``, else no key).
        protect_routing: also require the key for routing and reading routes.
        max_body_bytes: bodies larger than this get 413.
        max_inflight: requests served at once per class before 429.
        poll_interval: seconds between checks of the store's change version.
        channel: the Redis pub/sub channel shared by the replicas.
        log_level: uvicorn's log level.
        backlog: the listening socket's backlog.
        graceful_timeout: seconds from SIGTERM to exit: the requests in flight get all but
            :data:`CLOSE_RESERVE_SECONDS` of it to finish (then they are cancelled), closing the
            router the rest.
        encoder: a registered encoder name such as ``"bundled-int8"`` (None: the bundled model).
        allow_anonymous_writes: serve on a non-loopback ``host`` without a key (anyone who can
            reach it may change routes); refused otherwise.
        max_query_chars: most characters of query text in one ``POST /route`` (422 beyond).
        body_timeout: seconds a client has to send a whole body (408 beyond).
        header_timeout: seconds a connection has to send a request's headers (closed beyond).

    Raises:
        InvalidInputError: the key is empty, or ``host`` is not a loopback address, there is no
            key and ``allow_anonymous_writes`` is not given; a limit is not valid.
    """
    import uvicorn

    key = resolve_api_key(api_key)
    if key is None and not is_loopback(host) and not allow_anonymous_writes:
        raise InvalidInputError(
            f"refusing to serve on {host} without an API key: anyone who can reach it could change "
            "routes; set --api-key (or SYNAPTOROUTE_API_KEY / SYNAPTOROUTE_API_KEY_FILE), or pass "
            "--allow-anonymous-writes to accept that"
        )
    if not header_timeout > 0 or not graceful_timeout > 0:
        raise InvalidInputError("header_timeout and graceful_timeout must be positive numbers of seconds")
    app = create_app(
        db=db,
        redis_url=redis_url,
        api_key=key,
        protect_routing=protect_routing,
        max_body_bytes=max_body_bytes,
        max_inflight=max_inflight,
        poll_interval=poll_interval,
        channel=channel,
        encoder=encoder,
        max_query_chars=max_query_chars,
        body_timeout=body_timeout,
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        backlog=backlog,
        timeout_graceful_shutdown=max(int(graceful_timeout) - CLOSE_RESERVE_SECONDS, 1),
        access_log=False,
        http=_with_header_timeout(header_timeout),
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (``localhost``, 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to any interface


def _with_header_timeout(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol (h11) that closes a connection whose request headers do not
    arrive within ``seconds`` (uvicorn itself times out only idle keep-alive connections)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _header_cycle: Any = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._header_cycle = self.cycle
            self._header_timer = self.loop.call_later(seconds, self._header_timeout)

        def _header_timeout(self) -> None:
            self._header_timer = None
            waiting = self.cycle is self._header_cycle and (
                self.cycle is None or self.cycle.response_complete
            )
            if waiting and not self.transport.is_closing():
                log.debug("closing a connection that sent no request headers within %g s", seconds)
                self.transport.close()

    return HeaderTimeoutProtocol
