"""The HTTP face of the router: a thin FastAPI app that translates requests into router calls.

Run it with ``synaptoroute serve --db URL [--redis URL] [--encoder NAME]`` (uvicorn), or build it
with :func:`create_app` and serve it with any ASGI server. The app holds no routing logic: it
validates input, calls :class:`~synaptoroute_agents.SemanticRouter`, maps the engine's typed errors
to HTTP statuses, bounds the work in flight (excess gets ``429`` with ``Retry-After`` at once),
bounds body sizes (``413``), keeps replicas in step through
:class:`~synaptoroute_agents.sync.ReplicaSync`, and serves its own API documentation (``/docs``,
``/redoc``) with no CDN.

Modules: :mod:`.app` (the endpoints), :mod:`.models` (JSON shapes), :mod:`.guard` (API key, body
and in-flight bounds), :mod:`.metrics` (Prometheus text), :mod:`.state` (settings, router, sync),
:mod:`.serve` (uvicorn).
"""

from __future__ import annotations

from .app import create_app
from .serve import serve
from .state import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_INFLIGHT, DEFAULT_MAX_QUERIES

__all__ = ["create_app", "serve", "DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_INFLIGHT", "DEFAULT_MAX_QUERIES"]
