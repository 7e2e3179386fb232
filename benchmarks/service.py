"""Service benchmark: HTTP routing throughput and latency with one and three replicas, the time a
mutation takes to reach the other replicas, and an overload run.

    uv run --group bench python -m benchmarks.service [--db POSTGRES_URL --redis REDIS_URL] [--requests N]

Every server is a real ``synaptoroute serve`` process on 127.0.0.1. Without ``--db``/``--redis`` the
script starts a throwaway PostgreSQL and Redis when run from a source checkout (``tests/services.py``),
and otherwise measures one replica on SQLite only. Figures go to the "service" section of
docs/BENCHMARKS.md and to a JSON manifest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .report import DEFAULT_DOC, update_section, write_manifest

__all__ = ["ReplicaProcess", "free_port", "run_load", "run_overload", "measure_propagation", "main"]

ROUTES = {
    "vpn": ["the vpn does not connect", "cannot reach the corporate vpn", "vpn keeps dropping"],
    "password": ["I forgot my password", "reset my password please", "my account is locked"],
    "printer": ["the printer is jammed", "cannot print to the office printer", "printer out of toner"],
    "wifi": ["wifi keeps dropping", "no wireless signal in the meeting room", "cannot join the wifi"],
}
QUERIES = [
    "my vpn won't connect from home",
    "I can't remember my password",
    "the printer on floor 2 is jammed again",
    "wifi is flaky in room 3",
    "what's the capital of France?",
    "tell me a joke",
]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ReplicaProcess:
    """One ``synaptoroute serve`` process on 127.0.0.1 (started with the current interpreter)."""

    db: str
    redis_url: str | None = None
    channel: str = "synaptoroute:changes"
    port: int = field(default_factory=free_port)
    extra: tuple[str, ...] = ()
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "synaptoroute_agents.cli", "serve", "--db", self.db]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--channel", self.channel]
        cmd += ["--log-level", "warning"]
        if self.redis_url:
            cmd += ["--redis", self.redis_url]
        return cmd + list(self.extra)

    def start(self) -> ReplicaProcess:
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix=f"sr-replica-{self.port}-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        return self

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"replica on port {self.port} exited: {self.log_tail()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"replica on port {self.port} not ready after {timeout} s: {self.log_tail()}")

    def log_tail(self, n: int = 3000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-n:]

    def rss_bytes(self) -> int:
        """Resident memory of the server process."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Send ``sig`` and wait; returns the exit code."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return proc.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def run_load(urls: list[str], requests: int, concurrency: int) -> dict[str, Any]:
    """Send ``requests`` POST /route spread over ``urls`` with ``concurrency`` workers."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    counter = iter(range(requests))
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:

        async def worker(w: int) -> None:
            for i in counter:
                url = urls[(w + i) % len(urls)] + "/route"
                t0 = time.perf_counter()
                r = await client.post(url, json={"query": QUERIES[i % len(QUERIES)]})
                latencies.append(time.perf_counter() - t0)
                statuses[r.status_code] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        wall = time.perf_counter() - t0
    ok = latencies
    return {
        "requests": requests,
        "concurrency": concurrency,
        "replicas": len(urls),
        "seconds": round(wall, 3),
        "requests_per_s": round(requests / wall, 1),
        "p50_ms": round(1000 * _pct(ok, 0.50), 2),
        "p99_ms": round(1000 * _pct(ok, 0.99), 2),
        "statuses": dict(statuses),
    }


async def _raw_post(port: int, path: str, body: bytes) -> tuple[int, dict[str, str]]:
    """One HTTP/1.1 POST on its own connection to 127.0.0.1 (status, headers)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    header_blob = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(header_blob[0].split(" ", 2)[1])
    headers = {}
    for line in header_blob[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return status, headers


async def run_overload(url: str, requests: int, connections: int, timeout: float = 120.0) -> dict[str, Any]:
    """Fire ``requests`` POST /route at once, ``connections`` of them on the wire at a time.

    A minimal asyncio HTTP/1.1 client (a connection per request) is used here: at thousands of
    concurrent requests httpx's connection pool costs more CPU than the server under test.
    """
    port = int(url.rsplit(":", 1)[1])
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    retry_after: set[str] = set()
    gate = asyncio.Semaphore(connections)

    async def one(i: int) -> None:
        body = json.dumps({"query": QUERIES[i % len(QUERIES)]}).encode()
        async with gate:
            try:
                status, headers = await _raw_post(port, "/route", body)
            except (OSError, ValueError, IndexError) as exc:
                errors[type(exc).__name__] += 1
                return
        statuses[status] += 1
        if status == 429:
            retry_after.add(headers.get("retry-after", ""))

    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(requests))), timeout)
    wall = time.perf_counter() - t0
    return {
        "requests": requests,
        "connections": connections,
        "seconds": round(wall, 3),
        "statuses": dict(statuses),
        "client_errors": dict(errors),
        "retry_after": sorted(retry_after),
    }


def measure_propagation(replicas: list[ReplicaProcess], rounds: int, deadline: float = 30.0) -> list[float]:
    """Seconds from a 2xx PUT on one replica until every other replica serves the route."""
    out: list[float] = []
    with httpx.Client(timeout=10.0) as client:
        for i in range(rounds):
            origin = replicas[i % len(replicas)]
            others = [r for r in replicas if r is not origin]
            name = f"prop-{uuid.uuid4().hex[:8]}"
            body = {"name": name, "utterances": [f"propagation probe {i}"]}
            r = client.put(f"{origin.url}/routes/{name}", json=body)
            r.raise_for_status()
            t0 = time.perf_counter()
            pending = list(others)
            while pending and time.perf_counter() - t0 < deadline:
                pending = [o for o in pending if client.get(f"{o.url}/routes/{name}").status_code != 200]
                if pending:
                    time.sleep(0.005)
            if pending:
                raise TimeoutError(f"route {name} did not reach {len(pending)} replica(s) in {deadline} s")
            out.append(time.perf_counter() - t0)
    return out


def _seed(url: str) -> None:
    with httpx.Client(timeout=60.0) as client:
        for name, utterances in ROUTES.items():
            client.put(
                f"{url}/routes/{name}", json={"name": name, "utterances": utterances}
            ).raise_for_status()


def _services(args: argparse.Namespace) -> tuple[str | None, str | None, list[Any]]:
    if args.db and args.redis:
        return args.db, args.redis, []
    try:
        from tests import services  # a source checkout: throwaway PostgreSQL and Redis
    except ImportError:
        return None, None, []
    pg = services.start_postgres()
    redis = services.start_redis()
    return pg.create_database(f"sr_bench_{uuid.uuid4().hex[:8]}"), redis.url, [pg, redis]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", help="PostgreSQL URL shared by the replicas")
    parser.add_argument("--redis", help="Redis URL for change notifications")
    parser.add_argument("--requests", type=int, default=1000, help="requests per load run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--propagation-rounds", type=int, default=20)
    parser.add_argument("--overload-requests", type=int, default=20_000)
    parser.add_argument("--overload-connections", type=int, default=4000)
    parser.add_argument("--max-inflight", type=int, default=64)
    parser.add_argument("--doc", default=str(DEFAULT_DOC))
    parser.add_argument("--manifest", default="bench-results/service.json")
    args = parser.parse_args(argv)

    db, redis_url, started = _services(args)
    figures: dict[str, Any] = {"cores": os.cpu_count(), "load_average_before": round(os.getloadavg()[0], 1)}
    replicas: list[ReplicaProcess] = []
    tmp = tempfile.mkdtemp(prefix="sr-bench-service-")
    try:
        channel = f"bench:{uuid.uuid4().hex[:8]}"
        store = db or str(Path(tmp) / "routes.db")
        extra = ("--max-inflight", str(max(args.max_inflight, args.concurrency * 2)))
        replicas = [ReplicaProcess(store, redis_url, channel, extra=extra).start()]
        if db and redis_url:
            replicas += [ReplicaProcess(store, redis_url, channel, extra=extra).start() for _ in range(2)]
        for r in replicas:
            r.wait_ready()
        _seed(replicas[0].url)
        print(f"{len(replicas)} replica(s) ready on {'PostgreSQL + Redis' if db else 'SQLite'}")

        asyncio.run(run_load([replicas[0].url], min(200, args.requests), args.concurrency))  # warm-up
        figures["one_replica"] = asyncio.run(run_load([replicas[0].url], args.requests, args.concurrency))
        print("one replica:", figures["one_replica"])
        if len(replicas) == 3:
            figures["three_replicas"] = asyncio.run(
                run_load([r.url for r in replicas], args.requests, args.concurrency)
            )
            print("three replicas:", figures["three_replicas"])
            lat = measure_propagation(replicas, args.propagation_rounds)
            figures["propagation_s"] = {
                "rounds": len(lat),
                "median": round(statistics.median(lat), 4),
                "p90": round(_pct(lat, 0.9), 4),
                "max": round(max(lat), 4),
            }
            print("propagation:", figures["propagation_s"])

        # Overload: a replica with a small in-flight bound against a burst of requests at once.
        over = ReplicaProcess(store, redis_url, channel, extra=("--max-inflight", str(args.max_inflight)))
        over.start().wait_ready()
        rss_before = over.rss_bytes()
        result = asyncio.run(run_overload(over.url, args.overload_requests, args.overload_connections))
        rss_after = over.rss_bytes()
        after = httpx.post(over.url + "/route", json={"query": QUERIES[0]}, timeout=30.0)
        result.update(
            rss_before_mb=round(rss_before / 2**20, 1),
            rss_after_mb=round(rss_after / 2**20, 1),
            max_inflight=args.max_inflight,
            answers_after=after.status_code,
        )
        over.stop()
        figures["overload"] = result
        print("overload:", result)
        figures["load_average_after"] = round(os.getloadavg()[0], 1)
    finally:
        for r in replicas:
            r.stop()
        for s in started:
            s.stop()

    write_manifest(args.manifest, "service", figures)
    update_section("service", _markdown(figures, argv), doc=args.doc)
    print(f"wrote {args.doc} (section 'service') and {args.manifest}")
    return 0


def _markdown(f: dict[str, Any], argv: list[str] | None) -> str:
    cmd = "uv run --group bench python -m benchmarks.service" + (" " + " ".join(argv) if argv else "")
    lines = [
        "## Service (HTTP on loopback)",
        "",
        f"Command: `{cmd}`. Each replica is a `synaptoroute serve` process on 127.0.0.1; the load client",
        f"runs on the same machine, so client and servers share its {f.get('cores')} cores (1-minute load average",
        f"{f.get('load_average_before')} before the run, {f.get('load_average_after')} after: other work shared them).",
        "Each request is its own encoder call unless the router micro-batches queries, so routing is",
        "CPU-bound; three replicas on the same cores add processes, not cores.",
        "",
        "| setup | requests | concurrency | requests/s | p50 ms | p99 ms | statuses |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for key, label in (("one_replica", "1 replica"), ("three_replicas", "3 replicas (PostgreSQL + Redis)")):
        if key in f:
            x = f[key]
            lines.append(
                f"| {label} | {x['requests']} | {x['concurrency']} | {x['requests_per_s']} | {x['p50_ms']} "
                f"| {x['p99_ms']} | {x['statuses']} |"
            )
    if "propagation_s" in f:
        p = f["propagation_s"]
        lines += [
            "",
            f"Propagation (a 2xx `PUT /routes/{{name}}` on one replica until both others serve the route,"
            f" {p['rounds']} rounds): median {1000 * p['median']:.0f} ms, p90 {1000 * p['p90']:.0f} ms,"
            f" max {1000 * p['max']:.0f} ms.",
        ]
    if "overload" in f:
        o = f["overload"]
        lines += [
            "",
            f"Overload: {o['requests']} concurrent `POST /route` (client limit {o['connections']} connections)"
            f" against one replica with `--max-inflight {o['max_inflight']}`: statuses {o['statuses']},"
            f" client errors {o['client_errors'] or 0}, Retry-After {o['retry_after']}, {o['seconds']} s;"
            f" replica RSS {o['rss_before_mb']} MB before, {o['rss_after_mb']} MB after;"
            f" a request afterwards got {o['answers_after']}.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
