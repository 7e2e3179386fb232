"""Replica sync: routers on one shared store converge through Redis pub/sub and a cheap version poll.

The store is the truth. Every committed mutation carries a store-wide change version. After a local
commit a replica publishes one small message (origin, version, op, route) on a Redis channel; the
other replicas read the change from the store with :meth:`SemanticRouter.refresh`, which is
idempotent. A replica ignores its own messages and never re-publishes what it applied, so one
mutation costs one publish and N-1 deliveries.

Redis only makes convergence fast. A replica that missed messages (Redis down, a restart, a blip)
still catches up: every ``poll_interval`` seconds it compares the store's current version with its own
(one small query) and refreshes when it is behind. Redis being down never stops routing or mutation:
publishing failures are logged and dropped, and the subscriber reconnects with backoff.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import InvalidInputError

if TYPE_CHECKING:
    from .router import SemanticRouter

__all__ = ["ReplicaSync", "DEFAULT_CHANNEL", "check_poll_interval"]

log = logging.getLogger(__name__)

DEFAULT_CHANNEL = "synaptoroute:changes"

_PUBLISH_QUEUE = 10_000
_MAX_BACKOFF = 5.0


def check_poll_interval(value: object) -> float:
    """``value`` as seconds between store polls: a finite number >= 0 (None or 0: no polling).

    Raises :class:`InvalidInputError` for anything else: a negative interval used to turn
    catch-up off without a word.
    """
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InvalidInputError(
            f"poll_interval must be a finite number of seconds >= 0 (0 or None: no polling), got {value!r}"
        )
    return float(value)


class ReplicaSync:
    """Keep one router in step with the other replicas of its store.

    Args:
        router: the replica's router; its store is shared with the other replicas.
        redis_url: ``redis://host:port/db`` for change notifications; None polls only.
        channel: the pub/sub channel every replica of this store uses.
        poll_interval: seconds between checks of the store's change version (0 or None: no polling;
            a negative, infinite or non-numeric value is an :class:`InvalidInputError`).

    Call :meth:`start` once; :meth:`stop` ends the background threads. Neither blocks routing: the
    work runs in daemon threads and applies changes through the router's own write path.
    """

    def __init__(
        self,
        router: SemanticRouter,
        redis_url: str | None = None,
        *,
        channel: str = DEFAULT_CHANNEL,
        poll_interval: float | None = 1.0,
    ) -> None:
        self.router = router
        self.redis_url = redis_url
        self.channel = channel
        self.poll_interval = check_poll_interval(poll_interval)
        self.origin = router.store.origin
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._outbox: queue.Queue[dict[str, Any] | None] = queue.Queue(_PUBLISH_QUEUE)
        self._unsubscribe: Callable[[], None] | None = None
        self._apply_lock = threading.Lock()
        self._sub_client: Any = None
        self.counters: dict[str, int] = {
            "published": 0,
            "publish_errors": 0,
            "publish_dropped": 0,
            "received": 0,
            "ignored_own": 0,
            "applied_changes": 0,
            "refreshes": 0,
            "polls": 0,
            "gaps": 0,
            "reconnects": 0,
            "errors": 0,
        }
        self.redis_connected = False
        self.last_applied_at: float | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ReplicaSync:
        """Subscribe to local mutations and start the publisher, subscriber and poller threads."""
        if self._threads:
            return self
        self._stop.clear()
        self._unsubscribe = self.router.subscribe(self._on_local_change)
        if self.redis_url:
            self._spawn("publisher", self._publish_loop)
            self._spawn("subscriber", self._subscribe_loop)
        if self.poll_interval > 0:
            self._spawn("poller", self._poll_loop)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads (pending notifications are published first when Redis answers)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._outbox.put_nowait(None)
        client = self._sub_client
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def __enter__(self) -> ReplicaSync:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=f"synaptoroute-sync-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    # ------------------------------------------------------------------ catching up
    def apply_pending(self) -> int:
        """Apply every change in the store this replica has not seen. Returns how many were applied."""
        with self._apply_lock:
            total = 0
            while self.router.store.current_version() > self.router.version:
                before = self.router.version
                n = self.router.refresh()
                self.counters["refreshes"] += 1
                total += n
                if n == 0 or self.router.version == before:
                    break
            if total:
                self.counters["applied_changes"] += total
                self.last_applied_at = time.time()
            return total

    def _safe_apply(self, why: str) -> None:
        if self._stop.is_set():
            return
        try:
            self.apply_pending()
        except Exception as exc:  # the store may be unreachable for a moment: next poll retries
            self.counters["errors"] += 1
            log.warning("replica sync: catching up after %s failed: %s", why, exc)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            self.counters["polls"] += 1
            self._safe_apply("poll")

    # ------------------------------------------------------------------ publishing
    def _on_local_change(self, version: int, op: str, route: str | None) -> None:
        """Router listener: runs in the writer's thread right after the commit; never blocks."""
        if not self.redis_url:
            return
        message = {"origin": self.origin, "version": int(version), "op": op, "route": route}
        try:
            self._outbox.put_nowait(message)
        except queue.Full:
            self.counters["publish_dropped"] += 1  # the poll will carry the change instead

    def _connect(self) -> Any:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No silent retries inside the client: a lost connection must surface here, so that the
        # subscriber catches up from the store after reconnecting (messages sent meanwhile are gone).
        return redis.Redis.from_url(
            self.redis_url or "",
            socket_connect_timeout=1.0,
            socket_timeout=2.0,
            health_check_interval=10,
            retry=Retry(NoBackoff(), 0),
        )

    def _publish_loop(self) -> None:
        """Publish each local change once. While Redis is down, changes collapse into the newest
        one, which is retried with backoff: subscribers that see a version gap catch up from the
        store, so nothing piles up and the latest change is never lost."""
        client = None
        pending: dict[str, Any] | None = None
        stopping = False
        backoff = 0.2
        while True:
            if pending is None:
                message = self._outbox.get()
                if message is None:
                    if self._stop.is_set() and self._outbox.empty():
                        break
                    continue
                pending = message
            # collapse whatever else is queued into the newest change
            while True:
                try:
                    nxt = self._outbox.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = self._stop.is_set()
                    continue
                self.counters["publish_dropped"] += 1
                pending = nxt
            assert pending is not None
            version = pending.get("version")
            try:
                if client is None:
                    client = self._connect()
                client.publish(self.channel, json.dumps(pending, separators=(",", ":")))
                self.counters["published"] += 1
                pending = None
                backoff = 0.2
            except Exception as exc:
                self.counters["publish_errors"] += 1
                log.warning("replica sync: publishing change %s failed: %s", version, exc)
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.close()
                client = None
                if self._stop.wait(backoff):
                    break  # stopping: the store already holds the change; pollers will see it
                backoff = min(backoff * 2, 5.0)
            if stopping and pending is None and self._outbox.empty():
                break
        if client is not None:
            client.close()

    # ------------------------------------------------------------------ subscribing
    def _subscribe_loop(self) -> None:
        backoff = 0.1
        first = True
        while not self._stop.is_set():
            pubsub = None
            try:
                client = self._connect()
                self._sub_client = client
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                self.redis_connected = True
                if not first:
                    self.counters["reconnects"] += 1
                    log.info("replica sync: reconnected to Redis")
                first = False
                backoff = 0.1
                # Messages may have been missed while disconnected: catch up from the store.
                self._safe_apply("connect")
                while not self._stop.is_set():
                    msg = pubsub.get_message(timeout=0.5)
                    if msg is not None and msg.get("type") == "message":
                        self._on_message(msg.get("data"))
            except Exception as exc:
                if self._stop.is_set():
                    break
                if self.redis_connected or first:
                    log.warning("replica sync: Redis subscription lost: %s", exc)
                first = False
                self.redis_connected = False
                self._stop.wait(backoff)
                backoff = min(_MAX_BACKOFF, backoff * 2)
            finally:
                self.redis_connected = False
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()

    def _on_message(self, data: Any) -> None:
        self.counters["received"] += 1
        try:
            message = json.loads(data)
            origin = message["origin"]
            version = int(message["version"])
        except (ValueError, TypeError, KeyError):
            self.counters["errors"] += 1
            log.warning("replica sync: ignoring a malformed message on %s", self.channel)
            return
        if origin == self.origin:
            self.counters["ignored_own"] += 1
            return
        seen = self.router.version
        if version <= seen:
            return
        if version > seen + 1:
            self.counters["gaps"] += 1
        self._safe_apply("notification")

    # ------------------------------------------------------------------ reporting
    def stats(self) -> dict[str, Any]:
        """Counters for metrics: messages published/received, changes applied, Redis state."""
        return {
            **self.counters,
            "redis_configured": bool(self.redis_url),
            "redis_connected": self.redis_connected,
            "outbox": self._outbox.qsize(),
            "version": self.router.version,
            "last_applied_at": self.last_applied_at,
        }
