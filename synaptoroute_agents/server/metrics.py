"""Request counters and latency histograms, written out in the Prometheus text format."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["LATENCY_BUCKETS", "Metrics"]

#: Upper bounds (seconds) of the request latency histogram's buckets.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Request counters and latency histograms of one app (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latency: dict[tuple[str, str], list[float]] = {}  # bucket counts + [sum, count]
        self.requests: dict[tuple[str, str, int], int] = {}
        self.rejected: dict[str, int] = {"overloaded": 0, "too_large": 0, "timeout": 0}

    def observe(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (method, endpoint)
        with self._lock:
            row = self.latency.get(key)
            if row is None:
                row = self.latency[key] = [0.0] * (len(LATENCY_BUCKETS) + 2)
            i = bisect.bisect_left(LATENCY_BUCKETS, seconds)
            if i < len(LATENCY_BUCKETS):
                row[i] += 1
            row[-2] += seconds
            row[-1] += 1
            rkey = (method, endpoint, status)
            self.requests[rkey] = self.requests.get(rkey, 0) + 1

    def reject(self, why: str) -> None:
        """Count one request refused before any work (``overloaded``, ``too_large`` or ``timeout``)."""
        with self._lock:
            self.rejected[why] = self.rejected.get(why, 0) + 1

    def render(
        self, stats: Mapping[str, Any], sync: Mapping[str, Any] | None, inflight: Mapping[str, int]
    ) -> str:
        """The exposition text: HTTP metrics, then the router's ``stats()`` and the sync's."""
        out: list[str] = []
        self._render_http(out, inflight)
        _render_router(out, stats)
        if sync is not None:
            _render_sync(out, sync)
        return "\n".join(out) + "\n"

    def _render_http(self, out: list[str], inflight: Mapping[str, int]) -> None:
        with self._lock:
            latency = {k: list(v) for k, v in self.latency.items()}
            requests = dict(self.requests)
            rejected = dict(self.rejected)
        name = "synaptoroute_http_request_duration_seconds"
        _head(out, name, "histogram", "HTTP request latency by endpoint.")
        for (method, endpoint), row in sorted(latency.items()):
            labels = f'method="{method}",endpoint="{_esc(endpoint)}"'
            cumulative = 0.0
            for bound, n in zip(LATENCY_BUCKETS, row, strict=False):
                cumulative += n
                out.append(f'{name}_bucket{{{labels},le="{bound}"}} {int(cumulative)}')
            out.append(f'{name}_bucket{{{labels},le="+Inf"}} {int(row[-1])}')
            out.append(f"{name}_sum{{{labels}}} {row[-2]:.6f}")
            out.append(f"{name}_count{{{labels}}} {int(row[-1])}")
        name = "synaptoroute_http_requests_total"
        _head(out, name, "counter", "HTTP requests by endpoint and status.")
        for (method, endpoint, status), n in sorted(requests.items()):
            out.append(f'{name}{{method="{method}",endpoint="{_esc(endpoint)}",status="{status}"}} {n}')
        name = "synaptoroute_http_rejected_total"
        _head(
            out,
            name,
            "counter",
            "Requests refused before any work: overloaded (429), too large (413), body timeout (408).",
        )
        for why, n in sorted(rejected.items()):
            out.append(f'{name}{{reason="{why}"}} {n}')
        name = "synaptoroute_inflight_requests"
        _head(out, name, "gauge", "Requests being served now, by class.")
        for cls, n in sorted(inflight.items()):
            out.append(f'{name}{{class="{cls}"}} {n}')


def _render_router(out: list[str], stats: Mapping[str, Any]) -> None:
    _gauge(out, "synaptoroute_routes", stats.get("routes", 0), "Routes in this replica.")
    _gauge(out, "synaptoroute_vectors", stats.get("vectors", 0), "Utterance vectors in the index.")
    _gauge(out, "synaptoroute_store_version", stats.get("version", 0), "Store change version applied.")
    _gauge(out, "synaptoroute_fitted", 1 if stats.get("fitted") else 0, "1 when a fitted policy scores.")
    _gauge(out, "synaptoroute_queue_depth", stats.get("queue_depth", 0), "Queries waiting for a batch.")
    buckets = stats.get("batch_size_histogram") or stats.get("batch_size_buckets") or {}
    batches = stats.get("batches_total", 0)
    name = "synaptoroute_batch_size"
    _head(out, name, "histogram", "Queries per encoder batch.")
    for bound, n in sorted(((float(b), c) for b, c in buckets.items()), key=lambda x: x[0]):
        if bound != float("inf"):
            out.append(f'{name}_bucket{{le="{_num(bound)}"}} {_num(n)}')
    out.append(f'{name}_bucket{{le="+Inf"}} {_num(batches)}')
    out.append(f"{name}_sum {_num(stats.get('batched_queries_total', 0))}")
    out.append(f"{name}_count {_num(batches)}")


def _render_sync(out: list[str], sync: Mapping[str, Any]) -> None:
    name = "synaptoroute_sync_events_total"
    _head(out, name, "counter", "Replica sync events (published, received, applied_changes, ...).")
    for key, value in sorted(sync.items()):
        if isinstance(value, int) and not isinstance(value, bool) and key not in ("version", "outbox"):
            out.append(f'{name}{{event="{key}"}} {value}')
    _gauge(out, "synaptoroute_sync_redis_connected", 1 if sync.get("redis_connected") else 0, "Redis up.")
    _gauge(out, "synaptoroute_sync_outbox", sync.get("outbox", 0), "Notifications waiting to publish.")


def _head(out: list[str], name: str, kind: str, text: str) -> None:
    out.append(f"# HELP {name} {text}")
    out.append(f"# TYPE {name} {kind}")


def _gauge(out: list[str], name: str, value: Any, text: str) -> None:
    _head(out, name, "gauge", text)
    out.append(f"{name} {_num(value)}")


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: Any) -> str:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return "0"
    return str(int(f)) if f.is_integer() else repr(f)
