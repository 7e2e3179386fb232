"""Cold boot from a SQLite store: routes x 5 utterances, no re-embedding, encoder load excluded.

    uv run --group bench python -m benchmarks.coldboot [--routes 50000] [--db .bench-cache/coldboot.db]

Vectors come from the cheap hash encoder (the boot path does not depend on what made them). The
store is built once and reused. Each run writes a fresh boot snapshot (timed), then times boots
that read the snapshot, boots that read the utterance rows (``snapshot="off"``), and a boot from a
snapshot 1,000 changes behind the store. The bundled model's load is timed apart.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence

import sqlalchemy as sa

from synaptoroute_agents.router import SemanticRouter
from synaptoroute_agents.routes import Route
from synaptoroute_agents.store import RouteStore, store_url
from synaptoroute_agents.testing import HashEncoder

from .report import DEFAULT_DOC, MANIFESTS, update_section, write_manifest


def _boots(db: str, enc: HashEncoder, n: int, mode: str) -> tuple[list[float], int, list[dict]]:
    times, infos, vectors = [], [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        router = SemanticRouter(encoder=enc, store=db, snapshot=mode)  # type: ignore[arg-type]
        times.append(time.perf_counter() - t0)
        vectors = len(router.index)
        infos.append(dict(router.boot_info))
        router.close()
    return times, vectors, infos


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routes", type=int, default=50_000)
    ap.add_argument("--db", default=None, help="a SQLite file (built once) or a SQLAlchemy URL")
    ap.add_argument("--boots", type=int, default=5)
    ap.add_argument(
        "--changes", type=int, default=1000, help="changes after the snapshot for the catch-up boot"
    )
    ap.add_argument("--out", default=str(MANIFESTS / "coldboot.json"))
    ap.add_argument("--doc", default=str(DEFAULT_DOC))
    args = ap.parse_args(argv)
    enc = HashEncoder()
    db = args.db or f".bench-cache/coldboot-{args.routes}.db"
    url = "://" in db  # e.g. a PostgreSQL URL: the same boot path
    if not url:
        os.makedirs(os.path.dirname(db) or ".", exist_ok=True)
    if (url and RouteStore(db).counts()[1] == 0) or (not url and not os.path.exists(db)):
        store = RouteStore(db)
        for s in range(0, args.routes, 2000):
            rs = [
                Route(f"r{i}", [f"utterance {j} of route {i}" for j in range(5)])
                for i in range(s, min(s + 2000, args.routes))
            ]
            store.add_routes(rs, [enc.embed(r.utterances) for r in rs], enc.model_id)
        store.close()
    load_before = os.getloadavg()[0]

    # 1. a fresh snapshot of the store as it is (read from the rows, written in one transaction)
    store = RouteStore(db)
    store.delete_snapshots()
    router = SemanticRouter(encoder=enc, store=store, snapshot="off")
    t0 = time.perf_counter()
    router.save_snapshot()
    write_s = time.perf_counter() - t0
    router.close()
    info = store.snapshot_info(enc.model_id, enc.dim)
    assert info is not None

    # 2. boots from the snapshot, and from the rows
    snap_times, vectors, infos = _boots(db, enc, args.boots, "read")
    assert all(i["source"] == "snapshot" for i in infos), infos
    rows_times, _, _ = _boots(db, enc, max(1, args.boots // 2), "off")

    # 3. a snapshot behind the store: teach and forget one utterance on routes (net: no change)
    k = args.changes // 2
    texts = [f"bench change {j} at {time.time():.0f}" for j in range(k)]
    vecs = enc.embed(texts)
    for j in range(k):
        store.add_utterances(f"r{j}", [texts[j]], vecs[j : j + 1], enc.model_id)
    for j in range(k):
        store.remove_utterances(f"r{j}", [texts[j]])
    behind_times, _, behind_infos = _boots(db, enc, max(1, args.boots // 2), "read")
    applied = behind_infos[0]["changes_applied"]
    assert behind_infos[0]["source"] == "snapshot" and applied == 2 * k, behind_infos
    store.close()

    # 4. the encoder's own load, apart
    from synaptoroute_agents.encoders.bundled import BundledEncoder

    t0 = time.perf_counter()
    BundledEncoder()
    model_s = time.perf_counter() - t0
    load_after = os.getloadavg()[0]

    phases = {k: statistics.median(i["phases"][k] for i in infos) for k in infos[0]["phases"]}
    med = statistics.median(snap_times)
    rows_med = statistics.median(rows_times)
    behind_med = statistics.median(behind_times)
    mib = info.nbytes / 2**20
    print(
        f"{args.routes} routes, {vectors} vectors: boot from the snapshot median {med:.2f} s "
        f"({', '.join(f'{t:.2f}' for t in snap_times)}); from the rows {rows_med:.2f} s "
        f"({', '.join(f'{t:.2f}' for t in rows_times)}); snapshot {applied} changes behind {behind_med:.2f} s; "
        f"snapshot write {write_s:.2f} s ({mib:.0f} MiB); model load {model_s:.2f} s; "
        f"load average {load_before:.1f} -> {load_after:.1f}"
    )
    write_manifest(
        args.out,
        "coldboot",
        {
            "routes": args.routes,
            "vectors": vectors,
            "boot_seconds": snap_times,
            "median_seconds": med,
            "rows_boot_seconds": rows_times,
            "rows_median_seconds": rows_med,
            "behind_changes": applied,
            "behind_boot_seconds": behind_times,
            "behind_median_seconds": behind_med,
            "snapshot_boot_phases_median_seconds": phases,
            "snapshot_write_seconds": write_s,
            "snapshot_mib": mib,
            "model_load_seconds": model_s,
            "loadavg_1min": load_before,
            "loadavg_1min_after": load_after,
        },
    )
    update_section(
        "coldboot",
        f"""## Cold boot from the store (encoder load excluded)

Command: `uv run --group bench python -m benchmarks.coldboot --routes {args.routes}{" --db <url>" if url else ""}`
({sa.make_url(store_url(db)).get_backend_name() if url else "SQLite file"}, exact index, 2 cores; 1-min load
average {load_before:.1f} before the run, {load_after:.1f} after).

| routes | vectors | boot from the snapshot, median of {len(snap_times)} | snapshot {applied} changes behind | from the rows (`snapshot="off"`), median of {len(rows_times)} | model load (apart) |
| --- | --- | --- | --- | --- | --- |
| {args.routes:,} | {vectors:,} | {med:.2f} s | {behind_med:.2f} s | {rows_med:.2f} s | {model_s:.2f} s |

The boot snapshot ({mib:.0f} MiB in {info.chunks} rows) took {write_s:.2f} s to write with `save_snapshot()`
(a consistent read of the rows plus one write transaction). A boot from it (medians, `router.boot_info["phases"]`):
{phases["read"]:.2f} s reading the chunks into one buffer and unpacking ids, texts and routes,
{phases["install"]:.2f} s copying the vectors into Faiss and building the id maps, {phases["catch_up"]:.3f} s
applying the change log after the snapshot (none here; 1,000 changes: the column above), the rest opening
the store and loading the policy. Nothing is re-embedded.
""",
        args.doc,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
