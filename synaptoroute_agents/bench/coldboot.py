"""Cold boot from a SQLite store: routes x 5 utterances, no re-embedding, encoder load excluded.

    python -m synaptoroute_agents.bench.coldboot [--routes 50000] [--db .bench-cache/coldboot.db]

Vectors come from the cheap hash encoder (the boot path does not depend on what made them). The
store is built once and reused; each boot opens a new SemanticRouter on it and is timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence

from ..router import SemanticRouter
from ..routes import Route
from ..store import RouteStore
from .fake import HashEncoder
from .report import update_section, write_manifest


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routes", type=int, default=50_000)
    ap.add_argument("--db", default=None)
    ap.add_argument("--boots", type=int, default=3)
    ap.add_argument("--out", default="docs/benchmarks/coldboot.json")
    ap.add_argument("--doc", default="docs/BENCHMARKS.md")
    args = ap.parse_args(argv)
    enc = HashEncoder()
    db = args.db or f".bench-cache/coldboot-{args.routes}.db"
    os.makedirs(os.path.dirname(db) or ".", exist_ok=True)
    if not os.path.exists(db):
        store = RouteStore(db)
        for s in range(0, args.routes, 2000):
            rs = [
                Route(f"r{i}", [f"utterance {j} of route {i}" for j in range(5)])
                for i in range(s, min(s + 2000, args.routes))
            ]
            store.add_routes(rs, [enc.embed(r.utterances) for r in rs], enc.model_id)
        store.close()
    times = []
    vectors = 0
    for _ in range(args.boots):
        t0 = time.perf_counter()
        router = SemanticRouter(encoder=enc, store=db)
        times.append(time.perf_counter() - t0)
        vectors = len(router.index)
        router.close()
    med = statistics.median(times)
    print(
        f"{args.routes} routes, {vectors} vectors: cold boot median {med:.2f} s ({', '.join(f'{t:.2f}' for t in times)})"
    )
    load = os.getloadavg()[0]
    write_manifest(
        args.out,
        "coldboot",
        {
            "routes": args.routes,
            "vectors": vectors,
            "boot_seconds": times,
            "median_seconds": med,
            "loadavg_1min": load,
        },
    )
    update_section(
        "coldboot",
        f"""## Cold boot from the store (encoder load excluded)

Command: `python -m synaptoroute_agents.bench.coldboot --routes {args.routes}` (SQLite file, exact index).

| routes | vectors | cold boot, median of {args.boots} | 1-min load average |
| --- | --- | --- | --- |
| {args.routes:,} | {vectors:,} | {med:.2f} s | {load:.1f} |

Where the time goes (profiled): about half is SQLite returning 250k rows with their 1.5 KB blobs, then
joining them into one matrix and Faiss copying it. Nothing is re-embedded.
""",
        args.doc,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
