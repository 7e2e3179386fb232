"""Async micro-batching with backpressure for :meth:`SemanticRouter.aroute`.

Concurrent ``await router.aroute(q)`` calls join a *micro-batch*: the batch closes when it holds
``max_batch_size`` queries or when ``max_wait`` seconds have passed since its first query,
whichever comes first; the whole batch is embedded with one encoder call in a worker thread. The
queue is bounded: when it is full, :class:`RouterOverloadedError` is raised at once (a server
answers 429). Model inference never runs on an event loop.

The collector is a plain thread and each result is handed back to the loop that awaits it with
``loop.call_soon_threadsafe``, so one batcher serves any number of event loops (a FastAPI server,
tests that each run their own loop, a notebook).

A caller's own large batch (:meth:`MicroBatcher.submit_many`) is cut into slices of bounded
work (:data:`SLICE_CHARS` characters, at most ``max(max_batch_size, 64)`` queries) that run one
after another on a separate bulk lane: single queries never queue behind a large batch, several
large batches take turns slice by slice, and cancelling the caller stops its batch after the
slice that is running.

Two named presets: :data:`LATENCY` (no queue: each query runs on its own, one at a time per
worker) and :data:`THROUGHPUT` (micro-batches). :class:`BatchingConfig` keeps the raw settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInputError, RouterClosedError, RouterOverloadedError
from .routes import validate_positive_int

__all__ = ["BatchingConfig", "MicroBatcher", "LATENCY", "THROUGHPUT", "resolve_batching", "HISTOGRAM_BOUNDS"]

log = logging.getLogger(__name__)

#: Upper bounds of the batch-size histogram buckets (a final ``+Inf`` bucket is implied).
HISTOGRAM_BOUNDS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)

#: Characters of query text per slice of a caller's large batch. Model work grows with the text (up
#: to the encoder's token limit per query); a slice this size is a fraction of a second of model
#: time on a small CPU, so a cancelled batch stops within that.
SLICE_CHARS = 1024

#: Routes a list of cleaned queries with one encoder call (the router's ``route_batch``).
BatchFn = Callable[[list[str], int], list[Any]]


@dataclass(frozen=True, slots=True)
class BatchingConfig:
    """How :meth:`SemanticRouter.aroute` serves concurrent queries.

    Args:
        max_batch_size: a batch closes when it holds this many queries (1: no batching).
        max_wait: seconds a batch may wait for more queries after its first one arrived.
        max_queue: queries allowed to wait; one more raises :class:`RouterOverloadedError`.
        workers: threads running batches (model inference) in parallel.
    """

    max_batch_size: int = 64
    max_wait: float = 0.002
    max_queue: int = 1024
    workers: int = 1

    def __post_init__(self) -> None:
        validate_positive_int(self.max_batch_size, "max_batch_size")
        validate_positive_int(self.max_queue, "max_queue")
        validate_positive_int(self.workers, "workers")
        wait = self.max_wait
        if (
            isinstance(wait, bool)
            or not isinstance(wait, int | float)
            or not 0 <= wait <= 10
            or math.isnan(wait)
        ):
            raise InvalidInputError(f"max_wait must be a number of seconds in [0, 10], got {wait!r}")


#: One query at a time, no waiting: the lowest latency for a lightly loaded service.
LATENCY = BatchingConfig(max_batch_size=1, max_wait=0.0, max_queue=1024, workers=2)
#: Micro-batches of up to 64 queries, waiting at most 2 ms: the most queries per second. Two
#: batches run at once, so one batch's index search overlaps the next one's model pass (on 2 cores
#: about 7% more queries per second than one at a time).
THROUGHPUT = BatchingConfig(max_batch_size=64, max_wait=0.002, max_queue=4096, workers=2)

_PRESETS = {"latency": LATENCY, "throughput": THROUGHPUT}


def resolve_batching(batching: str | BatchingConfig | None) -> BatchingConfig:
    """``"latency"``, ``"throughput"``, a :class:`BatchingConfig` or None (latency) -> a config."""
    if batching is None:
        return LATENCY
    if isinstance(batching, BatchingConfig):
        return batching
    if isinstance(batching, str) and batching.lower() in _PRESETS:
        return _PRESETS[batching.lower()]
    raise InvalidInputError(f"batching must be 'latency', 'throughput' or a BatchingConfig, not {batching!r}")


class _Item:
    __slots__ = ("text", "top_k", "future", "loop")

    def __init__(self, text: str, top_k: int, future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop):
        self.text = text
        self.top_k = top_k
        self.future = future
        self.loop = loop


def _settle(fut: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if fut.done():  # cancelled by its caller meanwhile
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


def _deliver(item: _Item, value: Any = None, exc: BaseException | None = None) -> None:
    # A closed loop raises RuntimeError: nobody is waiting there any more.
    with contextlib.suppress(RuntimeError):
        item.loop.call_soon_threadsafe(_settle, item.future, value, exc)


def slices(texts: Sequence[str], most: int, chars: int) -> list[Sequence[str]]:
    """``texts`` cut in order into slices of at most ``most`` texts and about ``chars`` characters
    (a slice closes once it reaches ``chars``; a longer text is a slice of its own)."""
    out: list[Sequence[str]] = []
    start = 0
    held = 0
    for i, text in enumerate(texts):
        if i > start and (i - start >= most or held + len(text) > chars):
            out.append(texts[start:i])
            start, held = i, 0
        held += len(text)
    if start < len(texts):
        out.append(texts[start:])
    return out


class MicroBatcher:
    """Collects concurrent queries into batches and runs them in a thread pool.

    Args:
        fn: ``fn(cleaned_texts, top_k) -> results`` in the same order (called in a worker thread).
        config: the batching settings.
    """

    def __init__(self, fn: BatchFn, config: BatchingConfig) -> None:
        self.fn = fn
        self.config = config
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._closed = False
        self._busy = 0  # batches running in workers
        self._pool = ThreadPoolExecutor(config.workers, thread_name_prefix="synaptoroute-batch")
        # Large caller batches run here, slice by slice, so they never hold up the pool above.
        self._bulk = ThreadPoolExecutor(1, thread_name_prefix="synaptoroute-bulk")
        self._collector: threading.Thread | None = None
        self.batches_total = 0
        self.batched_queries_total = 0
        self.overloaded_total = 0
        self._hist = [0] * (len(HISTOGRAM_BOUNDS) + 1)
        if config.max_batch_size > 1:
            self._collector = threading.Thread(target=self._collect, name="synaptoroute-batcher", daemon=True)
            self._collector.start()

    # ------------------------------------------------------------------ submitting
    async def submit(self, text: str, top_k: int) -> Any:
        """Route one cleaned query; resolves when its batch is done."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        item = _Item(text, top_k, fut, loop)
        with self._cond:
            if self._closed:
                raise RouterClosedError("the router is closed")
            if self._collector is None:
                # LATENCY: no queue; the bound counts queries waiting for or holding a worker.
                if self._busy >= self.config.max_queue:
                    self.overloaded_total += 1
                    raise RouterOverloadedError(
                        f"{self._busy} queries are in flight (max_queue={self.config.max_queue}); retry later"
                    )
                self._busy += 1
                self._pool.submit(self._run, [item])
            else:
                if len(self._queue) >= self.config.max_queue:
                    self.overloaded_total += 1
                    raise RouterOverloadedError(
                        f"the query queue is full ({self.config.max_queue} waiting); retry later"
                    )
                self._queue.append(item)
                if len(self._queue) == 1 or len(self._queue) >= self.config.max_batch_size:
                    self._cond.notify_all()
        return await fut

    async def submit_many(self, texts: Sequence[str], top_k: int) -> list[Any]:
        """Route a caller's own batch: small ones join others, large ones run slice by slice.

        A large batch runs on the bulk lane, one slice at a time (each slice queued behind the
        slices of other large batches), so it takes turns with them and never delays single
        queries. Cancelling the caller stops the batch after the running slice.
        """
        size = self.config.max_batch_size
        if self._collector is not None and len(texts) < size and sum(map(len, texts)) <= SLICE_CHARS:
            return list(await asyncio.gather(*(self.submit(t, top_k) for t in texts)))
        loop = asyncio.get_running_loop()
        out: list[Any] = []
        for chunk in slices(texts, max(size, 64), SLICE_CHARS):
            items = [_Item(t, top_k, loop.create_future(), loop) for t in chunk]
            with self._cond:
                if self._closed:
                    raise RouterClosedError("the router is closed")
                self._bulk.submit(self._run, items, False)
            out.extend(await asyncio.gather(*(i.future for i in items)))
        return out

    # ------------------------------------------------------------------ collecting
    def _collect(self) -> None:
        cfg = self.config
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                # A real deadline: max_wait after the first query of this batch arrived.
                deadline = time.monotonic() + cfg.max_wait
                while len(self._queue) < cfg.max_batch_size and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                if self._closed:
                    return
                # Backpressure: while every worker is busy the queue grows (and overflows with 429)
                # instead of piling batches up in the pool.
                while self._busy >= cfg.workers and not self._closed:
                    self._cond.wait(0.05)
                if self._closed:
                    return
                n = min(len(self._queue), cfg.max_batch_size)
                batch = [self._queue.popleft() for _ in range(n)]
                self._busy += 1
            try:
                self._pool.submit(self._run, batch)
            except RuntimeError:  # the pool was shut down meanwhile
                for item in batch:
                    _deliver(item, exc=RouterClosedError("the router is closed"))
                return

    def _run(self, batch: list[_Item], pooled: bool = True) -> None:
        self._record(len(batch))  # counted before any caller can see its result
        try:
            live = [i for i in batch if not i.future.done()]
            groups: dict[int, list[_Item]] = {}
            for item in live:
                groups.setdefault(item.top_k, []).append(item)
            for top_k, items in groups.items():
                try:
                    results = self.fn([i.text for i in items], top_k)
                except BaseException as exc:  # one failing batch fails only its own queries
                    for item in items:
                        _deliver(item, exc=exc)
                    continue
                for item, result in zip(items, results, strict=True):
                    _deliver(item, result)
        finally:
            if pooled:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _record(self, n: int) -> None:
        with self._cond:
            self.batches_total += 1
            self.batched_queries_total += n
            for j, bound in enumerate(HISTOGRAM_BOUNDS):
                if n <= bound:
                    self._hist[j] += 1
                    break
            else:
                self._hist[-1] += 1

    # ------------------------------------------------------------------ numbers and shutdown
    @property
    def queue_depth(self) -> int:
        """Queries waiting for a batch (LATENCY: queries in flight)."""
        return len(self._queue) if self._collector is not None else self._busy

    def stats(self) -> dict[str, Any]:
        """Counters for metrics: queue depth, batches, queries and a cumulative batch-size histogram.

        ``batch_size_histogram`` maps bucket upper bounds (``"1"``, ``"2"``, ... ``"+Inf"``, as
        Prometheus ``le`` labels) to the cumulative count of batches of at most that size.
        """
        with self._cond:
            hist: dict[str, int] = {}
            total = 0
            for bound, count in zip((*HISTOGRAM_BOUNDS, math.inf), self._hist, strict=True):
                total += count
                hist["+Inf" if bound == math.inf else str(bound)] = total
            return {
                "queue_depth": self.queue_depth,
                "queue_capacity": self.config.max_queue,
                "batches_total": self.batches_total,
                "batched_queries_total": self.batched_queries_total,
                "overloaded_total": self.overloaded_total,
                "batch_size_histogram": hist,
            }

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking queries, fail the waiting ones with :class:`RouterClosedError`, finish the rest.

        Batches already running complete (their callers get results); nothing is left hanging.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            waiting = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for item in waiting:
            _deliver(item, exc=RouterClosedError("the router was closed before this query ran"))
        if self._collector is not None and self._collector is not threading.current_thread():
            self._collector.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=False)
        self._bulk.shutdown(wait=True, cancel_futures=False)

    @property
    def closed(self) -> bool:
        return self._closed
