"""What one app holds while it runs: its limits, its router (opened in the background) and its sync."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..encoders import Encoder
from ..encoders.registry import check_encoder_type
from ..errors import InvalidInputError
from ..router import SemanticRouter
from ..sync import ReplicaSync, check_poll_interval
from .metrics import Metrics

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_QUERY_CHARS",
    "DEFAULT_MAX_INFLIGHT",
    "DEFAULT_MAX_QUERIES",
    "RETRY_AFTER_SECONDS",
    "NotReady",
    "ServerState",
    "resolve_api_key",
]

log = logging.getLogger("synaptoroute_agents.server")

DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_INFLIGHT = 256
DEFAULT_MAX_QUERIES = 256
#: Most characters in one routing request, summed over its queries: the request's work budget.
#: Model work grows with the text (up to the encoder's token limit per query); 256 queries of 64
#: characters fit, and the largest request costs a few seconds of one worker at most.
DEFAULT_MAX_QUERY_CHARS = 16_384
#: Seconds a client has to send a whole request body (408 past it).
DEFAULT_BODY_TIMEOUT = 10.0
#: Seconds a new connection has to send a request's headers before it is closed (``serve``).
DEFAULT_HEADER_TIMEOUT = 10.0
#: The ``Retry-After`` (seconds) of every 429 and 503 answer.
RETRY_AFTER_SECONDS = 1


def resolve_api_key(api_key: str | None) -> str | None:
    """The key to require: ``api_key``, else ``$SYNAPTOROUTE_API_KEY``, else the first line of the
    file named by ``$SYNAPTOROUTE_API_KEY_FILE`` (a Docker secret), else None (no key).

    Raises:
        InvalidInputError: the key given or found is empty (an empty key would silently mean none),
            or the key file cannot be read.
    """
    source = "the API key"
    if api_key is None and "SYNAPTOROUTE_API_KEY" in os.environ:
        api_key, source = os.environ["SYNAPTOROUTE_API_KEY"], "$SYNAPTOROUTE_API_KEY"
    if api_key is None and os.environ.get("SYNAPTOROUTE_API_KEY_FILE"):
        path = Path(os.environ["SYNAPTOROUTE_API_KEY_FILE"])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"cannot read the API key file {str(path)!r}: {exc}") from exc
        api_key, source = (lines[0] if lines else ""), f"the API key file {str(path)!r}"
    if api_key is not None and not api_key.strip():
        raise InvalidInputError(f"{source} is empty: give a non-empty key, or none at all")
    return api_key


class NotReady(Exception):
    """The app's own router has not loaded (yet, or ever): answered 503 ``not_ready``."""


class ServerState:
    """The app's settings, its router and its replica sync; ``app.state.synaptoroute`` holds it.

    The settings are checked here, and the environment fills in the key
    (:func:`resolve_api_key`) and the store (``$SYNAPTOROUTE_DB``, else ``synaptoroute.db``).

    Args:
        router: the router to serve (owned by the caller), or None to open one on ``db`` at start.
        db: the store the app opens its own router on.
        encoder: the encoder (or its registered name) of the router the app opens.
        redis_url: Redis for change notifications between replicas, or None.
        api_key: the key mutations need, or None to look in the environment (see :func:`resolve_api_key`).
        protect_routing: also require the key for routing and reads.
        max_body_bytes: the largest body accepted.
        max_inflight: requests served at once per class.
        max_queries: most queries in one routing request.
        max_query_chars: most characters in one routing request, over all its queries.
        body_timeout: seconds a client has to send the whole body.
        poll_interval: seconds between checks of the store version (0 or None: no polling).
        channel: the Redis pub/sub channel.
        router_options: more keyword arguments for the router the app opens.
    """

    def __init__(
        self,
        router: SemanticRouter | None,
        *,
        db: str | None,
        encoder: str | Encoder | None,
        redis_url: str | None,
        api_key: str | None,
        protect_routing: bool,
        max_body_bytes: int,
        max_inflight: int,
        max_queries: int,
        max_query_chars: int,
        body_timeout: float,
        poll_interval: float | None,
        channel: str,
        router_options: Mapping[str, Any],
    ) -> None:
        if min(max_inflight, max_body_bytes, max_queries, max_query_chars) < 1:
            raise InvalidInputError(
                "max_inflight, max_body_bytes, max_queries and max_query_chars must be positive"
            )
        if not body_timeout > 0:
            raise InvalidInputError(
                f"body_timeout must be a positive number of seconds, got {body_timeout!r}"
            )
        if poll_interval is not None:
            check_poll_interval(poll_interval)  # a bad value fails now, not when the router loads
        check_encoder_type(encoder)  # its name is resolved when the router loads
        if encoder is not None and router is not None:
            raise InvalidInputError("give encoder only when the app opens its own router (router=None)")
        if {"encoder", "store"} & set(router_options):
            raise InvalidInputError("router_options cannot hold 'encoder' or 'store': use encoder= and db=")
        key = resolve_api_key(api_key)
        if router is None and db is None:
            db = os.environ.get("SYNAPTOROUTE_DB") or "synaptoroute.db"
        self.router = router
        self.owns_router = router is None
        self.db = db
        self.encoder = encoder
        self.redis_url = redis_url
        self.api_key = key.encode() if key else None
        self.protect_routing = protect_routing
        self.max_body_bytes = int(max_body_bytes)
        self.max_inflight = int(max_inflight)
        self.max_queries = int(max_queries)
        self.max_query_chars = int(max_query_chars)
        self.body_timeout = float(body_timeout)
        self.poll_interval = poll_interval
        self.channel = channel
        self.router_options = dict(router_options)
        self.sync: ReplicaSync | None = None
        self.load_error: str | None = None
        self.loading: asyncio.Task[None] | None = None
        self.inflight = {"route": 0, "api": 0}
        self.metrics = Metrics()

    def ready_router(self) -> SemanticRouter:
        """The router, or :class:`NotReady` while the app's own router is loading or failed to."""
        if self.router is None:
            raise NotReady(self.load_error or "the router is still loading")
        return self.router

    def _open_router(self) -> SemanticRouter:
        return SemanticRouter(self.encoder, store=self.db, **self.router_options)

    async def start(self) -> None:
        """Start the sync, opening the app's own router first (in the background) when it has none."""
        if self.api_key is None:
            log.warning(
                "no API key is configured: anyone who can reach this server can add, change and "
                "delete routes (set --api-key or SYNAPTOROUTE_API_KEY)"
            )
        if self.router is not None:
            self._start_sync(self.router)
            return

        async def load() -> None:
            try:
                router = await asyncio.to_thread(self._open_router)
            except Exception as exc:
                self.load_error = f"the router failed to load: {exc}"
                log.exception("the router failed to load")
                return
            self.router = router
            self._start_sync(router)
            log.info("router ready: %s", router)

        self.loading = asyncio.create_task(load())

    def _start_sync(self, router: SemanticRouter) -> None:
        if self.redis_url is None and not self.poll_interval:
            return
        self.sync = ReplicaSync(
            router, self.redis_url, channel=self.channel, poll_interval=self.poll_interval
        )
        self.sync.start()

    async def stop(self) -> None:
        """Stop the sync and close the router when the app opened it."""
        if self.loading is not None and not self.loading.done():
            await self.loading  # never leave a half-opened store behind
        if self.sync is not None:
            await asyncio.to_thread(self.sync.stop)
            self.sync = None
        if self.owns_router and self.router is not None:
            router, self.router = self.router, None
            await asyncio.to_thread(router.close)
