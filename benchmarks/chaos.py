"""Chaos run: many writer and reader threads (and asyncio readers) mutate and route at once.

Writers add, update and delete routes and add and remove utterances; some of their writes are
invalid on purpose and must fail with the right typed error while changing nothing. Each writer
owns its route names and keeps a ledger of what it was acknowledged. At the end the store must
hold exactly the acknowledged state (checked through a freshly opened router and the live one),
the live index must agree with the store, and memory must be flat.

    uv run --group bench python -m benchmarks.chaos --seconds 60 --db chaos.db
    uv run --group bench python -m benchmarks.chaos --seconds 60 --db postgresql://user@host/db
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synaptoroute_agents.encoders.base import Encoder
from synaptoroute_agents.errors import (
    DuplicateRouteError,
    InvalidInputError,
    RouteNotFoundError,
    RouterOverloadedError,
)
from synaptoroute_agents.router import SemanticRouter
from synaptoroute_agents.routes import Route, RouteMatch

from .report import DEFAULT_DOC

__all__ = ["ChaosResult", "run_chaos", "rss_bytes", "main"]

TOPICS = (
    "weather rain forecast",
    "billing invoice refund",
    "password login reset",
    "flight booking travel",
    "music playlist song",
    "recipe cooking dinner",
    "shipping parcel tracking",
    "doctor appointment health",
)


def rss_bytes() -> int:
    """This process's resident memory (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


@dataclass
class ChaosResult:
    """What a chaos run did and what the checks found (``problems`` empty: all good)."""

    seconds: float
    writers: int
    readers: int
    async_readers: int
    mutations_ok: int = 0
    mutations_failed_on_purpose: int = 0
    queries: int = 0
    async_queries: int = 0
    overloaded: int = 0
    unexpected: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rss_warm_mb: float = 0.0
    rss_end_mb: float = 0.0
    routes_at_end: int = 0
    utterances_at_end: int = 0

    @property
    def mutations_per_s(self) -> float:
        return (self.mutations_ok + self.mutations_failed_on_purpose) / self.seconds

    @property
    def queries_per_s(self) -> float:
        return (self.queries + self.async_queries) / self.seconds

    @property
    def memory_growth_mb(self) -> float:
        return self.rss_end_mb - self.rss_warm_mb

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            mutations_per_s=self.mutations_per_s,
            queries_per_s=self.queries_per_s,
            memory_growth_mb=self.memory_growth_mb,
        )
        return d


class _Writer:
    """One writer thread: owns a few route names and a ledger of acknowledged state."""

    def __init__(self, router: SemanticRouter, wid: int, n_routes: int, seed: int, prefix: str) -> None:
        self.router = router
        self.rng = random.Random(seed * 7919 + wid)
        self.names = [f"{prefix}w{wid:03d}_r{j}" for j in range(n_routes)]
        self.ledger: dict[str, set[str] | None] = dict.fromkeys(self.names)
        self.ok = 0
        self.failed_on_purpose = 0
        self.unexpected: list[str] = []
        self._k = 0
        self.wid = wid

    def _texts(self, n: int) -> list[str]:
        out = []
        for _ in range(n):
            self._k += 1
            out.append(f"{self.rng.choice(TOPICS)} w{self.wid} n{self._k}")
        return out

    def _expect_fail(
        self, call: Callable[[], Any], errors: tuple[type[BaseException], ...], what: str
    ) -> None:
        try:
            call()
        except errors:
            self.failed_on_purpose += 1
            return
        except Exception as exc:
            self.unexpected.append(f"{what}: wrong error {exc!r}")
            return
        self.unexpected.append(f"{what}: an invalid write was acknowledged")

    def step(self) -> None:
        r, rng = self.router, self.rng
        name = rng.choice(self.names)
        state = self.ledger[name]
        roll = rng.random()
        try:
            if roll < 0.12:  # invalid on purpose
                kind = rng.randrange(5)
                if kind == 0:
                    self._expect_fail(
                        lambda: r.add(Route.from_dict({"name": "bad name!", "utterances": ["x"]})),
                        (InvalidInputError,),
                        "bad name",
                    )
                elif kind == 1 and state is not None:
                    self._expect_fail(
                        lambda: r.add(Route(name, tuple(self._texts(1)))),
                        (DuplicateRouteError,),
                        "duplicate add",
                    )
                elif kind == 2 and state is None:
                    self._expect_fail(lambda: r.delete(name), (RouteNotFoundError,), "delete missing")
                elif kind == 3 and state is not None:
                    self._expect_fail(
                        lambda: r.remove_utterances(name, sorted(state)), (InvalidInputError,), "remove all"
                    )
                else:
                    self._expect_fail(
                        lambda: r.add_utterances(name, ["   "]), (InvalidInputError,), "empty utterance"
                    )
                return
            if state is None:
                texts = self._texts(rng.randint(1, 4))
                r.add(Route(name, tuple(texts)))
                self.ledger[name] = set(texts)
            elif roll < 0.35:
                texts = self._texts(rng.randint(1, 4))
                if state and rng.random() < 0.5:
                    texts.append(rng.choice(sorted(state)))  # keep one: its embedding is reused
                r.update(Route(name, tuple(texts)))
                self.ledger[name] = set(texts)
            elif roll < 0.50:
                r.delete(name)
                self.ledger[name] = None
            elif roll < 0.80:
                texts = self._texts(rng.randint(1, 3))
                n = r.add_utterances(name, texts)
                if n != len(texts):
                    self.unexpected.append(f"add_utterances acknowledged {n} of {len(texts)} new texts")
                state.update(texts)
            else:
                if len(state) < 2:
                    texts = self._texts(1)
                    r.add_utterances(name, texts)
                    state.update(texts)
                else:
                    drop = rng.sample(sorted(state), rng.randint(1, len(state) - 1))
                    n = r.remove_utterances(name, drop)
                    if n != len(drop):
                        self.unexpected.append(f"remove_utterances removed {n} of {len(drop)}")
                    state.difference_update(drop)
            self.ok += 1
        except Exception as exc:
            self.unexpected.append(f"{name}: {exc!r}")


def _check_match(m: Any, universe: set[str]) -> str | None:
    if not isinstance(m, RouteMatch):
        return f"not a RouteMatch: {m!r}"
    if m.name is not None and m.name not in universe:
        return f"routed to an unknown route {m.name!r}"
    return None


def run_chaos(
    store: str,
    encoder: Encoder,
    *,
    seconds: float = 10.0,
    writers: int = 50,
    readers: int = 50,
    async_readers: int = 16,
    routes_per_writer: int = 3,
    seed: int = 0,
    warmup: float = 0.25,
    prefix: str = "",
    index: str = "flat",
    reader_pause: float = 0.001,
) -> ChaosResult:
    """Run the chaos workload against ``store`` and check the outcome.

    Args:
        store: a SQLite file path or a SQLAlchemy URL (PostgreSQL).
        encoder: the encoder (a cheap fake lets 100 threads run on 2 cores).
        seconds: how long writers and readers run.
        writers, readers, async_readers: thread and task counts.
        routes_per_writer: route names each writer owns.
        warmup: share of ``seconds`` after which the memory baseline is taken.
        prefix: route-name prefix (to run several times on one store).
        index: the index kind of the live router.
        reader_pause: seconds each reader thread sleeps between queries (0: spin; with 50
            spinning readers the GIL leaves writers few turns).
    """
    result = ChaosResult(seconds, writers, readers, async_readers)
    router = SemanticRouter(encoder=encoder, store=store, batching="throughput", index=index)  # type: ignore[arg-type]
    pre_existing = {r.name for r in router.routes()}
    ws = [_Writer(router, w, routes_per_writer, seed, prefix) for w in range(writers)]
    universe = {n for w in ws for n in w.names} | pre_existing
    stop = threading.Event()
    lock = threading.Lock()
    counts = {"q": 0, "aq": 0, "over": 0}
    unexpected: list[str] = []
    queries = [f"{t} please" for t in TOPICS] + ["something else entirely", "w1 n3 weather"]

    def writer_loop(w: _Writer) -> None:
        while not stop.is_set():
            w.step()

    def reader_loop(i: int) -> None:
        rng = random.Random(seed * 31 + i)
        n = 0
        while not stop.is_set():
            try:
                if rng.random() < 0.2:
                    ms = router.route_batch(rng.sample(queries, 3))
                else:
                    ms = [router.route(rng.choice(queries))]
                for m in ms:
                    problem = _check_match(m, universe)
                    if problem:
                        with lock:
                            unexpected.append(problem)
                n += len(ms)
                if reader_pause:
                    time.sleep(reader_pause)
            except Exception as exc:
                with lock:
                    unexpected.append(f"reader: {exc!r}")
        with lock:
            counts["q"] += n

    def async_thread() -> None:
        async def one(i: int) -> None:
            rng = random.Random(seed * 17 + i)
            n = over = 0
            while not stop.is_set():
                try:
                    m = await router.aroute(rng.choice(queries))
                    problem = _check_match(m, universe)
                    if problem:
                        unexpected.append(problem)
                    n += 1
                except RouterOverloadedError:
                    over += 1
                    await asyncio.sleep(0.001)
                except Exception as exc:
                    unexpected.append(f"async reader: {exc!r}")
            with lock:
                counts["aq"] += n
                counts["over"] += over

        async def main() -> None:
            await asyncio.gather(*(one(i) for i in range(async_readers)))

        asyncio.run(main())

    threads = [threading.Thread(target=writer_loop, args=(w,), name=f"chaos-w{w.wid}") for w in ws]
    threads += [threading.Thread(target=reader_loop, args=(i,), name=f"chaos-r{i}") for i in range(readers)]
    if async_readers:
        threads.append(threading.Thread(target=async_thread, name="chaos-async"))
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(max(0.0, seconds * warmup))
    gc.collect()
    result.rss_warm_mb = rss_bytes() / 2**20
    time.sleep(max(0.0, seconds * (1 - warmup)))
    stop.set()
    for t in threads:
        t.join(120)
        if t.is_alive():
            unexpected.append(f"thread {t.name} did not stop")
    result.seconds = time.perf_counter() - t0
    router.index.wait_idle(60)
    gc.collect()
    result.rss_end_mb = rss_bytes() / 2**20

    result.mutations_ok = sum(w.ok for w in ws)
    result.mutations_failed_on_purpose = sum(w.failed_on_purpose for w in ws)
    result.queries, result.async_queries, result.overloaded = counts["q"], counts["aq"], counts["over"]
    result.unexpected = unexpected + [u for w in ws for u in w.unexpected]

    # ---- the checks: ledger == live router == fresh router == store, index == store
    want: dict[str, set[str]] = {}
    for w in ws:
        for name, state in w.ledger.items():
            if state is not None:
                want[name] = state
    problems = result.problems

    def compare(label: str, routes: list[Route]) -> None:
        have = {r.name: set(r.utterances) for r in routes if r.name not in pre_existing}
        for r in routes:
            if len(set(r.utterances)) != len(r.utterances):
                problems.append(f"{label}: route {r.name!r} holds a duplicated utterance")
        lost = sorted(n for n in want if n not in have)
        ghost = sorted(n for n in have if n not in want)
        differ = sorted(n for n in want if n in have and have[n] != want[n])
        if lost:
            problems.append(f"{label}: {len(lost)} acknowledged routes are missing, e.g. {lost[:3]}")
        if ghost:
            problems.append(f"{label}: {len(ghost)} routes that should not exist, e.g. {ghost[:3]}")
        if differ:
            n = differ[0]
            problems.append(
                f"{label}: {len(differ)} routes differ from the acknowledged state, e.g. {n}: "
                f"missing {sorted(want[n] - have[n])[:3]}, extra {sorted(have[n] - want[n])[:3]}"
            )

    compare("live router", router.routes())
    problems.extend(f"live index: {p}" for p in router.verify())
    result.routes_at_end = len(want)
    result.utterances_at_end = sum(len(s) for s in want.values())
    router.close()
    fresh = SemanticRouter(encoder=encoder, store=store, on_encoder_mismatch="error")
    try:
        compare("fresh router", fresh.routes())
        problems.extend(f"fresh index: {p}" for p in fresh.verify())
        if len(fresh.index) != len(fresh.index.ids()):
            problems.append("fresh index: live count and id set disagree")
    finally:
        fresh.close()
    return result


def _markdown(res: ChaosResult, command: str, backend: str, encoder: str) -> str:
    status = "pass" if not res.unexpected and not res.problems else "FAIL"
    return f"""## Chaos run ({backend})

Writers and readers at once against one store; the checks compare the store, a freshly opened
router and the live index with every writer's ledger of acknowledged mutations.

Command: `{command}`

| figure | value |
|---|---|
| machine | {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end |
| store | {backend} |
| encoder | {encoder} |
| duration | {res.seconds:.1f} s |
| writer threads / reader threads / asyncio readers | {res.writers} / {res.readers} / {res.async_readers} |
| acknowledged mutations | {res.mutations_ok} |
| invalid writes rejected on purpose | {res.mutations_failed_on_purpose} |
| mutations/s (incl. rejected) | {res.mutations_per_s:.1f} |
| queries (threads + asyncio) | {res.queries} + {res.async_queries} |
| queries/s | {res.queries_per_s:.1f} |
| overloaded (429) answers | {res.overloaded} |
| unexpected exceptions | {len(res.unexpected)} |
| store / index mismatches | {len(res.problems)} |
| RSS after warm-up -> end | {res.rss_warm_mb:.0f} MiB -> {res.rss_end_mb:.0f} MiB ({res.memory_growth_mb:+.0f} MiB) |
| routes / utterances at the end | {res.routes_at_end} / {res.utterances_at_end} |
| verdict | {status} |
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Chaos run: concurrent writers and readers, then consistency checks."
    )
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--db", required=True, help="SQLite file or SQLAlchemy URL (a fresh store is best)")
    p.add_argument("--writers", type=int, default=50)
    p.add_argument("--readers", type=int, default=50)
    p.add_argument("--async-readers", type=int, default=16)
    p.add_argument("--encoder", choices=["hash", "bundled"], default="hash")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reader-pause", type=float, default=0.001, help="seconds between a reader's queries")
    p.add_argument("--manifest", default="bench-results/chaos.json")
    p.add_argument("--doc", default=str(DEFAULT_DOC), help="'' to leave the docs alone")
    args = p.parse_args(argv)
    from synaptoroute_agents.testing import HashEncoder

    from .report import update_section, write_manifest

    enc: Encoder
    if args.encoder == "bundled":
        from synaptoroute_agents.encoders.bundled import BundledEncoder

        enc = BundledEncoder()
    else:
        enc = HashEncoder()
    res = run_chaos(
        args.db,
        enc,
        seconds=args.seconds,
        writers=args.writers,
        readers=args.readers,
        async_readers=args.async_readers,
        seed=args.seed,
        prefix=f"s{args.seed}_",
        reader_pause=args.reader_pause,
    )
    for line in res.unexpected[:20]:
        print("UNEXPECTED", line)
    for line in res.problems[:20]:
        print("PROBLEM", line)
    d = res.to_dict()
    d["unexpected"] = res.unexpected[:50]
    print({k: v for k, v in d.items() if k not in ("unexpected", "problems")})
    backend = "PostgreSQL" if "://" in args.db and args.db.startswith("postgres") else "SQLite file"
    command = (
        f"uv run --group bench python -m benchmarks.chaos --seconds {args.seconds:g} --db <{backend}> "
        f"--encoder {args.encoder} --writers {args.writers} --readers {args.readers}"
    )
    write_manifest(
        args.manifest,
        "chaos",
        d,
        command=command,
        dataset=f"{args.writers} writers x 3 route names, utterances from {len(TOPICS)} topics",
    )
    if args.doc:
        encoder_name = "bundled MiniLM INT8" if args.encoder == "bundled" else "HashEncoder (fake, ~free)"
        update_section(
            "chaos-postgres" if backend == "PostgreSQL" else "chaos",
            _markdown(res, command, backend, encoder_name),
            args.doc,
        )
    print(f"manifest: {Path(args.manifest)}")
    return 0 if not res.unexpected and not res.problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
