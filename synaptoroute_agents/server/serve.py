"""Serving the app with uvicorn (what ``synaptoroute serve`` runs)."""

from __future__ import annotations

from ..sync import DEFAULT_CHANNEL
from .app import create_app
from .state import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_INFLIGHT

__all__ = ["serve"]


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
) -> None:
    """Serve the app with uvicorn until SIGINT/SIGTERM (in-flight requests finish first).

    Args:
        db: store path or SQLAlchemy URL (None: ``$SYNAPTOROUTE_DB`` or ``synaptoroute.db``).
        redis_url: Redis for change notifications between replicas, or None.
        host: the address to listen on.
        port: the port to listen on.
        api_key: the key mutations need (None: ``$SYNAPTOROUTE_API_KEY``, else no key).
        protect_routing: also require the key for routing and reading routes.
        max_body_bytes: bodies larger than this get 413.
        max_inflight: requests served at once per class before 429.
        poll_interval: seconds between checks of the store's change version.
        channel: the Redis pub/sub channel shared by the replicas.
        log_level: uvicorn's log level.
        backlog: the listening socket's backlog.
        graceful_timeout: seconds the requests in flight get to finish at shutdown.
        encoder: a registered encoder name such as ``"bundled-int8"`` (None: the bundled model).
    """
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
        encoder=encoder,
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
