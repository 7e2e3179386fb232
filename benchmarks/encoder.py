"""How the default encoder's batches are cut into model calls, and what that costs.

:class:`BundledEncoder` sorts a batch by token count and runs it in slices of at most
``token_budget`` tokens (texts times the slice's longest text), two slices at a time. This
benchmark embeds the same texts with several budgets in the same process, in rounds whose order
rotates, at batch sizes 1, 64 and 256, and reports the median texts/s of each budget and its
median speed ratio to the default budget within a round (so load from other processes affects
every side alike). ``--budgets`` takes token counts; ``0`` means one call per batch (no slicing).
The row ``32 texts`` is the earlier way, for comparison: calls of 32 texts sorted by characters,
two at a time, through the same session.

The texts are the train splits of CLINC150 and Banking77 under ``--data`` (``DIR/clinc150/
train.jsonl``, ``DIR/banking77/train.jsonl``), or the user-phrased requests of
``bench/data/tool_selection.jsonl`` without ``--data``.

Run: ``uv run --group bench python -m benchmarks.encoder [--data ../shared/data] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synaptoroute_agents.encoders.bundled import BundledEncoder

from .quantized import default_texts
from .report import write_manifest

#: batch size -> number of texts embedded per round
BATCHES = {1: 64, 64: 1024, 256: 1024}


def _texts(data: Path | None, n: int, seed: int = 0) -> dict[str, list[str]]:
    import random

    if data is None:
        return {"tool_requests": default_texts()}
    out = {}
    for name in ("clinc150", "banking77"):
        rows = [
            json.loads(line)["text"]
            for line in (data / name / "train.jsonl").read_text().splitlines()
            if line
        ]
        random.Random(seed).shuffle(rows)
        out[name] = rows[:n]
    return out


def _by_32_texts(enc: BundledEncoder, texts: Sequence[str]) -> None:
    """The earlier cut: calls of 32 texts sorted by characters, two at a time."""
    session, tok = enc._session()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))

    def one(part: list[int]) -> Any:
        got = tok.encode_batch([texts[i] for i in part])
        ids = np.array([e.ids for e in got], dtype=np.int64)
        mask = np.array([e.attention_mask for e in got], dtype=np.int64)
        return enc._forward(session, ids, mask, False)

    list(enc._slice_pool().map(one, [order[s : s + 32] for s in range(0, len(order), 32)]))


def _rate(enc: BundledEncoder, texts: Sequence[str], batch: int, budget: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        if budget < 0:
            _by_32_texts(enc, texts[i : i + batch])
        else:
            enc.token_budget = budget or 1 << 30
            enc.embed(texts[i : i + batch])
    return len(texts) / (time.perf_counter() - start)


def run(data: Path | None, budgets: Sequence[int], rounds: int, threads: int | None) -> dict[str, Any]:
    enc = BundledEncoder(threads=threads)
    default = BundledEncoder.token_budget
    sets = _texts(data, max(BATCHES.values()))
    out: dict[str, Any] = {"default_budget": default, "sets": {}}
    try:
        for set_name, pool in sets.items():
            res: dict[str, Any] = {}
            for batch, count in BATCHES.items():
                texts = [pool[i % len(pool)] for i in range(count)]
                rates: dict[int, list[float]] = {b: [] for b in budgets}
                ratios: dict[int, list[float]] = {b: [] for b in budgets}
                for b in budgets:  # warm-up
                    _rate(enc, texts[:batch], batch, b)
                for r in range(rounds):
                    order = list(budgets[r % len(budgets) :]) + list(budgets[: r % len(budgets)])
                    got = {}
                    for b in order:
                        got[b] = _rate(enc, texts, batch, b)
                        rates[b].append(got[b])
                    for b in budgets:
                        ratios[b].append(got[b] / got[default] if default in got else float("nan"))
                res[str(batch)] = {
                    str(b): {
                        "texts_per_s": round(statistics.median(rates[b]), 1),
                        "ratio_to_default": round(statistics.median(ratios[b]), 3),
                    }
                    for b in budgets
                }
            out["sets"][set_name] = res
    finally:
        del enc.token_budget  # back to the class default
    return out


def _label(budget: int) -> str:
    return "32 texts" if budget < 0 else "whole" if budget == 0 else f"{budget} tok"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="folder with clinc150/ and banking77/")
    ap.add_argument("--budgets", default="0,64,128,256,512", help="token budgets; 0: one call per batch")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    args = ap.parse_args(argv)
    budgets = [-32] + [int(b) for b in args.budgets.split(",")]
    if BundledEncoder.token_budget not in budgets:
        budgets.append(BundledEncoder.token_budget)
    fig = run(args.data, budgets, args.rounds, args.threads)
    write_manifest(
        args.out / "encoder.json", "encoder", fig, command="uv run --group bench python -m benchmarks.encoder"
    )
    for set_name, res in fig["sets"].items():
        print(f"{set_name}: texts/s (ratio to the default budget {fig['default_budget']})")
        for batch, row in res.items():
            cells = "  ".join(
                f"{_label(int(b))}: {v['texts_per_s']:.0f} ({v['ratio_to_default']:.2f})"
                for b, v in row.items()
            )
            print(f"  batch {batch:>3}  {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
