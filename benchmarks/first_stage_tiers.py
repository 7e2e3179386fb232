# ruff: noqa: T201  (a command-line script: its output is the report)
"""Top-1 agreement of the flat index's default first stage with exact search at 50k and 250k rows.

The rows are real embeddings (the bundled model on the train splits of every data set in
``--data``), completed to the largest tier with random convex mixtures of two real rows (unit
length again), so the neighbourhoods look like text embeddings rather than random vectors. The
queries are the data sets' test texts. Exact search is a float32 matrix product over the same rows.

Run from the repository root::

    uv run --group bench python -m benchmarks.first_stage_tiers --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from synaptoroute_agents import BundledEncoder, embed_in_batches  # noqa: E402
from synaptoroute_agents.index import VectorIndex  # noqa: E402

CACHE = Path(".bench-cache")


def _texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]


def _embedded(encoder: BundledEncoder, name: str, texts: list[str]) -> np.ndarray:
    CACHE.mkdir(exist_ok=True)
    cached = CACHE / f"first-stage-{name}.npy"
    if cached.exists():
        arr: np.ndarray = np.load(cached)
        if arr.shape[0] == len(texts):
            return arr
    arr = embed_in_batches(encoder, texts, progress=True)
    np.save(cached, arr)
    return arr


def agreement(rows: np.ndarray, queries: np.ndarray, k: int = 5) -> tuple[float, dict[str, object]]:
    """Share of queries whose top-1 id from the index equals exact search's, and the stage used."""
    index = VectorIndex(rows.shape[1], screen=True, background=False)
    index.load(np.arange(len(rows)), rows)
    exact = np.argmax(queries @ rows.T, axis=1)
    same = 0
    for start in range(0, len(queries), 256):
        _, ids = index.search(queries[start : start + 256], k)
        same += int((ids[:, 0] == exact[start : start + 256]).sum())
    return same / len(queries), index.screen_info()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--tiers", default="50000,250000", help="row counts, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    encoder = BundledEncoder()
    sets = sorted(
        p for p in args.data.iterdir() if (p / "train.jsonl").exists() and (p / "test.jsonl").exists()
    )
    real = np.concatenate([_embedded(encoder, f"{s.name}-train", _texts(s / "train.jsonl")) for s in sets])
    queries = np.concatenate([_embedded(encoder, f"{s.name}-test", _texts(s / "test.jsonl")) for s in sets])
    tiers = [int(t) for t in args.tiers.split(",")]
    rng = np.random.default_rng(args.seed)
    extra = max(0, max(tiers) - len(real))
    i, j = rng.integers(0, len(real), extra), rng.integers(0, len(real), extra)
    w = rng.uniform(0.2, 0.8, (extra, 1)).astype(np.float32)
    mixed = w * real[i] + (1 - w) * real[j]
    rows = np.concatenate([real, mixed]).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    print(f"{len(real)} real rows from {', '.join(s.name for s in sets)}; {len(queries)} test queries")
    print("| rows | top-1 = exact | first stage |")
    print("| ---: | ---: | --- |")
    for n in tiers:
        share, info = agreement(rows[:n], queries)
        print(f"| {n:,} | {share:.4f} | {info.get('stage')} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
