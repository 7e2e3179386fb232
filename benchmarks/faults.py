"""Faults and bad input against a real server: what one careless or hostile client can do to it.

Each scenario starts ``synaptoroute serve`` (the real uvicorn, the bundled model) on 127.0.0.1 and
measures one of the attacks of the hardening issue:

- ``stalled``: 256 connections send ``POST /route`` headers with ``Content-Length: 100`` and 13 body
  bytes, then idle; a normal ``POST /route`` is timed while they are open (also with
  ``--protect-routing``, the normal client sending the key);
- ``heavy``: one client sends the largest batch the work budget allows (long queries), and a
  normal client routes one query meanwhile; then the heavy client disconnects and the batch's
  progress after that is read from ``/metrics`` (work for a client that left should stop);
- ``methods``: 5,000 requests with distinct made-up HTTP methods; the growth of ``/metrics``;
- ``sigterm``: SIGTERM while a heavy batch is in flight; the seconds until the process exits.

    uv run --group bench python -m benchmarks.faults            # all, writes docs/BENCHMARKS.md

The tests in tests/test_server_reliability.py run the same functions with the same sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from .report import DEFAULT_DOC, update_section, write_manifest
from .service import ReplicaProcess

__all__ = [
    "HEAVY_QUERY",
    "batched_queries",
    "heavy_batch",
    "odd_methods",
    "seed",
    "sigterm_with_heavy_batch",
    "stalled_bodies",
]

#: One long query: 1,000 characters, about 200 tokens for the bundled model.
HEAVY_QUERY = "rain " * 200
NORMAL = {"query": "my vpn keeps dropping"}


def seed(url: str, headers: dict[str, str] | None = None) -> None:
    """Give the server two routes."""
    for name, utterances in (
        ("vpn", ["the vpn does not connect", "vpn keeps dropping"]),
        ("password", ["I forgot my password", "reset my password"]),
    ):
        r = httpx.put(
            f"{url}/routes/{name}", json={"name": name, "utterances": utterances}, headers=headers, timeout=60
        )
        r.raise_for_status()


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


@contextlib.contextmanager
def _stalled_connections(url: str, n: int) -> Iterator[list[socket.socket]]:
    """``n`` connections that sent a ``POST /route`` head promising 100 bytes and 13 of them."""
    host, port = _host_port(url)
    socks: list[socket.socket] = []
    head = f"POST /route HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    try:
        for _ in range(n):
            s = socket.create_connection((host, port), timeout=10)
            s.sendall(head.encode() + b'{"query": "vp')
            socks.append(s)
        yield socks
    finally:
        for s in socks:
            s.close()


def stalled_bodies(url: str, n: int = 256, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Time normal ``POST /route`` calls while ``n`` stalled-body connections are open."""
    with _stalled_connections(url, n):
        time.sleep(1.0)  # the issue's +1 s: every stalled request has reached the server
        answers = []
        for _ in range(5):
            t0 = time.perf_counter()
            r = httpx.post(f"{url}/route", json=NORMAL, headers=headers, timeout=30)
            answers.append((r.status_code, time.perf_counter() - t0))
    seconds = [s for _, s in answers]
    return {
        "stalled_connections": n,
        "statuses": [c for c, _ in answers],
        "median_seconds": statistics.median(seconds),
        "max_seconds": max(seconds),
    }


def batched_queries(url: str) -> int:
    """Queries the server's router has run so far (``synaptoroute_batch_size_sum``)."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    m = re.search(r"^synaptoroute_batch_size_sum (\d+)", text, re.M)
    return int(m.group(1)) if m else 0


async def _send_heavy(url: str, queries: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = _host_port(url)
    body = json.dumps({"queries": [HEAVY_QUERY] * queries}).encode()
    reader, writer = await asyncio.open_connection(host, port)
    head = f"POST /route HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)
    await writer.drain()
    return reader, writer


def heavy_batch(url: str, queries: int, after_leave: float = 3.0) -> dict[str, Any]:
    """A normal query beside the largest batch the budget allows, then the heavy client leaves.

    Returns the normal query's status and seconds, how many of the batch's queries had run when
    the normal answer came back, and how many more ran in ``after_leave`` seconds after the heavy
    client disconnected (one slice at most when its work is cancelled).
    """

    async def run() -> dict[str, Any]:
        before = await asyncio.to_thread(batched_queries, url)
        reader, writer = await _send_heavy(url, queries)
        # wait until the batch is running
        deadline = time.monotonic() + 30
        while await asyncio.to_thread(batched_queries, url) == before and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        started = await asyncio.to_thread(batched_queries, url)
        async with httpx.AsyncClient(timeout=120) as client:
            t0 = time.perf_counter()
            r = await client.post(f"{url}/route", json=NORMAL)
            normal_seconds = time.perf_counter() - t0
            at_normal = await asyncio.to_thread(batched_queries, url)
            more = []
            for _ in range(4):  # a few more while the batch still runs
                t1 = time.perf_counter()
                await client.post(f"{url}/route", json=NORMAL)
                more.append(time.perf_counter() - t1)
        writer.close()  # the heavy client goes away
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        del reader
        left = await asyncio.to_thread(batched_queries, url)
        await asyncio.sleep(after_leave)
        later = await asyncio.to_thread(batched_queries, url)
        return {
            "heavy_queries": queries,
            "heavy_chars": queries * len(HEAVY_QUERY),
            "normal_status": r.status_code,
            "normal_seconds": normal_seconds,
            "normal_median_seconds": statistics.median([normal_seconds, *more]),
            "normal_max_seconds": max([normal_seconds, *more]),
            # the normal query itself is one of the counted queries
            "heavy_run_while_normal_waited": max(at_normal - started - 1, 0),
            "heavy_run_before_leaving": left - before - 5,
            "heavy_run_after_leaving": later - left,
            "heavy_run_total": later - before - 1,
        }

    return asyncio.run(run())


def odd_methods(url: str, n: int = 5000, connections: int = 8) -> dict[str, Any]:
    """``n`` requests, each with its own made-up method; ``/metrics`` size before and after."""
    before = len(httpx.get(f"{url}/metrics", timeout=30).content)
    host, port = _host_port(url)

    async def one_connection(start: int, stop: int) -> int:
        reader, writer = await asyncio.open_connection(host, port)
        answered = 0
        try:
            for i in range(start, stop):
                writer.write(
                    f"M{i:05d}X /route HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n".encode()
                )
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
                await reader.readexactly(length)
                answered += 1
        finally:
            writer.close()
        return answered

    async def run() -> int:
        step = -(-n // connections)
        counts = await asyncio.gather(*(one_connection(s, min(s + step, n)) for s in range(0, n, step)))
        return sum(counts)

    t0 = time.perf_counter()
    answered = asyncio.run(run())
    seconds = time.perf_counter() - t0
    after = len(httpx.get(f"{url}/metrics", timeout=30).content)
    return {
        "requests": n,
        "answered": answered,
        "seconds": seconds,
        "metrics_bytes_before": before,
        "metrics_bytes_after": after,
        "growth_bytes": after - before,
    }


def sigterm_with_heavy_batch(replica: ReplicaProcess, queries: int, graceful: float) -> dict[str, Any]:
    """SIGTERM with a heavy batch in flight: seconds until the process exits."""
    assert replica.proc is not None

    async def run() -> float:
        before = await asyncio.to_thread(batched_queries, replica.url)
        _reader, writer = await _send_heavy(replica.url, queries)
        deadline = time.monotonic() + 30
        while await asyncio.to_thread(batched_queries, replica.url) == before and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert replica.proc is not None
        t0 = time.perf_counter()
        replica.proc.send_signal(signal.SIGTERM)
        while replica.proc.poll() is None and time.perf_counter() - t0 < 120:
            await asyncio.sleep(0.05)
        writer.close()
        return time.perf_counter() - t0

    seconds = asyncio.run(run())
    return {"heavy_queries": queries, "graceful_timeout": graceful, "exit_seconds": seconds}


def _replica(db: str, *extra: str) -> ReplicaProcess:
    rep = ReplicaProcess(db, extra=("--poll-interval", "0", *extra)).start()
    rep.wait_ready()
    return rep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--doc", default=str(DEFAULT_DOC))
    ap.add_argument("--manifest", default="docs/benchmarks/faults.json")
    ap.add_argument("--workdir", default=".bench-cache/faults")
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {}
    key = "faults-bench-key"
    budget = 16_384  # the server's default work budget (DEFAULT_MAX_QUERY_CHARS)
    heavy = budget // len(HEAVY_QUERY)

    rep = _replica(str(work / f"open-{time.time_ns()}.db"))
    try:
        seed(rep.url)
        figures["stalled"] = stalled_bodies(rep.url)
        figures["heavy"] = heavy_batch(rep.url, heavy)
        figures["methods"] = odd_methods(rep.url)
    finally:
        rep.stop()
    rep = _replica(str(work / f"key-{time.time_ns()}.db"), "--api-key", key, "--protect-routing")
    try:
        auth = {"Authorization": f"Bearer {key}"}
        seed(rep.url, auth)
        figures["stalled_protected"] = stalled_bodies(rep.url, headers=auth)
    finally:
        rep.stop()
    db = str(work / f"term-{time.time_ns()}.db")
    rep = _replica(db, "--max-query-chars", str(16 * budget))
    seed(rep.url)
    figures["sigterm"] = sigterm_with_heavy_batch(rep, 16 * heavy, 15.0)
    rep.stop()
    figures["load"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    write_manifest(args.manifest, "faults", figures)
    update_section("faults-server", _markdown(figures), doc=args.doc)
    print(json.dumps(figures, indent=2))
    print(f"wrote {args.doc} (section 'faults-server') and {args.manifest}")
    return 0


def _markdown(f: dict[str, Any]) -> str:
    s, sp, h, m, t = f["stalled"], f["stalled_protected"], f["heavy"], f["methods"], f["sigterm"]
    return "\n".join(
        [
            "## Faults and bad input (server)",
            "",
            "`uv run --group bench python -m benchmarks.faults` (a real `synaptoroute serve` on 127.0.0.1,",
            "the bundled model; the tests in `tests/test_server_reliability.py` run the same functions).",
            "",
            "| attack | figure |",
            "| --- | --- |",
            f"| {s['stalled_connections']} stalled-body connections open | normal `POST /route`: "
            f"{sorted(set(s['statuses']))}, median {s['median_seconds'] * 1000:.0f} ms, "
            f"max {s['max_seconds'] * 1000:.0f} ms |",
            f"| the same with `--protect-routing` (normal client sends the key) | "
            f"{sorted(set(sp['statuses']))}, median {sp['median_seconds'] * 1000:.0f} ms, "
            f"max {sp['max_seconds'] * 1000:.0f} ms |",
            f"| largest batch the budget allows in flight ({h['heavy_queries']} queries, "
            f"{h['heavy_chars']:,} characters) | normal `POST /route`: {h['normal_status']}, first in "
            f"{h['normal_seconds'] * 1000:.0f} ms ({h['heavy_run_while_normal_waited']} of the batch's "
            f"queries started meanwhile); 5 in a row: median {h['normal_median_seconds'] * 1000:.0f} ms, "
            f"max {h['normal_max_seconds'] * 1000:.0f} ms |",
            f"| the heavy client disconnects (after {h['heavy_run_before_leaving']} of its queries) | "
            f"{h['heavy_run_after_leaving']} more of them ran (of {h['heavy_queries']}) |",
            f"| {m['requests']:,} requests with distinct made-up methods | `/metrics` "
            f"{m['metrics_bytes_before']:,} -> {m['metrics_bytes_after']:,} bytes "
            f"(+{m['growth_bytes']:,}) |",
            f"| SIGTERM with a {t['heavy_queries']}-query batch of long queries in flight "
            f"(budget raised to allow it) | exited after {t['exit_seconds']:.1f} s "
            f"(bound: {t['graceful_timeout']:.0f} s) |",
            "",
            "Before (the parent commit of this change, same machine): every normal request got 429 with",
            "the stalled bodies open; a normal query waited 11.9 s beside a 192-query batch of long",
            "queries, whose work went on after its client left; 5,000 made-up methods grew `/metrics` by",
            "8.2 MB; SIGTERM with that batch in flight took 18.4 s (the documented bound: 15 s).",
            f"Load average during this run: {f.get('load', '?')} (2 cores, shared).",
            "",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
