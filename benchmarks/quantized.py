"""INT8 fast path vs the default encoder: throughput ratio and cosine of the embeddings.

Both encoders run in the same process with the same thread count. Each round embeds the same
texts with each encoder in turn, the order alternating between rounds, at three batch sizes:
1 (64 separate one-text calls), 32 (256 texts) and 256 (512 texts). We report the median texts/s
of each and the median of the per-round speed ratios, so load from other processes affects both
sides alike. Quality: the cosine between the two encoders' embeddings of every text, the top-1
of the tool-selection benchmark (130 seeded tools) with each encoder, and with ``--data DIR`` the
nearest-utterance accuracy on Banking77 (``DIR/banking77/{train,test}.jsonl``) with each encoder.

The texts default to the user-phrased requests of ``bench/data/tool_selection.jsonl``; pass
``--texts FILE`` (one text a line) to measure others.

Run: ``uv run --group bench python -m benchmarks.quantized [--rounds 5] [--threads 2] [--data ../shared/data]``
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synaptoroute_agents.encoders.bundled import BundledEncoder
from synaptoroute_agents.encoders.quantized import cpu_has_vnni, quantized_model

from .report import DEFAULT_DOC, MANIFESTS, machine_info, update_section, write_manifest

DATA = Path(__file__).parent / "data" / "tool_selection.jsonl"
#: batch size -> number of texts embedded per round
BATCHES = {1: 64, 32: 256, 256: 512}


def default_texts(path: Path = DATA) -> list[str]:
    return [json.loads(line)["request"] for line in path.read_text().splitlines() if line.strip()]


def _cycle(texts: Sequence[str], n: int) -> list[str]:
    return [texts[i % len(texts)] for i in range(n)]


def _time_embed(enc: BundledEncoder, texts: Sequence[str], batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        enc.embed(texts[i : i + batch])
    return len(texts) / (time.perf_counter() - start)


def accuracy(encoders: dict[str, BundledEncoder], data: Path | None) -> dict[str, Any]:
    """Routing accuracy with each encoder (its own embeddings for routes and queries)."""
    from . import tool_selection

    out: dict[str, Any] = {}
    for name, enc in encoders.items():
        res = tool_selection.run(["seeded"], encoder=enc)["variants"]["seeded"]
        out.setdefault("tool_selection_top1", {})[name] = round(100 * res["top1"], 2)
    if data is not None:
        from synaptoroute_agents.cli.eval import run_eval
        from synaptoroute_agents.evaluation import read_labelled

        def clean(split: str) -> tuple[list[str], list[str]]:
            texts, labels = read_labelled(data / "banking77" / f"{split}.jsonl")
            return texts, [re.sub(r"[^A-Za-z0-9_.:-]", "", label) for label in labels]

        train, test = clean("train"), clean("test")
        for name, enc in encoders.items():
            res = run_eval(train, test, fit=False, encoder=enc)
            out.setdefault("banking77_nearest_top1", {})[name] = round(100 * res["accuracy"], 2)
    return out


def run(
    texts: Sequence[str], *, rounds: int = 5, threads: int | None = 2, data: Path | None = None
) -> dict[str, Any]:
    t0 = time.perf_counter()
    path, digest = quantized_model()
    prepare_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fp32 = BundledEncoder(threads=threads)
    load_fp32 = time.perf_counter() - t0
    t0 = time.perf_counter()
    int8 = BundledEncoder(threads=threads, quantized=True)
    load_int8 = time.perf_counter() - t0
    encoders = {"default": fp32, "int8": int8}

    warm = _cycle(texts, 32)
    for enc in encoders.values():
        enc.embed(warm)

    speeds: dict[int, dict[str, list[float]]] = {b: {"default": [], "int8": []} for b in BATCHES}
    ratios: dict[int, list[float]] = {b: [] for b in BATCHES}
    for r in range(rounds):
        order = ["default", "int8"] if r % 2 == 0 else ["int8", "default"]
        for batch, n in BATCHES.items():
            shift = r % len(texts)
            sample = _cycle([*texts[shift:], *texts[:shift]], n)
            got = {name: _time_embed(encoders[name], sample, batch) for name in order}
            for name, tps in got.items():
                speeds[batch][name].append(tps)
            ratios[batch].append(got["int8"] / got["default"])

    a = fp32.embed(texts)
    b = int8.embed(texts)
    cos = (a * b).sum(axis=1)
    worst = np.argsort(cos)[:5]
    acc = accuracy(encoders, data)
    return {
        "accuracy": acc,
        "texts": len(texts),
        "rounds": rounds,
        "threads": threads,
        "cpu_has_vnni": cpu_has_vnni(),
        "quantized_file": path.name,
        "quantized_sha256": digest,
        "prepare_s": round(prepare_s, 3),
        "load_s": {"default": round(load_fp32, 3), "int8": round(load_int8, 3)},
        "throughput": {
            str(batch): {
                "default_tps": round(statistics.median(speeds[batch]["default"]), 1),
                "int8_tps": round(statistics.median(speeds[batch]["int8"]), 1),
                "ratio_median": round(statistics.median(ratios[batch]), 3),
                "ratio_rounds": [round(x, 3) for x in ratios[batch]],
            }
            for batch in BATCHES
        },
        "cosine": {
            "mean": round(float(cos.mean()), 4),
            "min": round(float(cos.min()), 4),
            "p5": round(float(np.percentile(cos, 5)), 4),
            "below_0.98": int((cos < 0.98).sum()),
            "worst": [{"text": texts[int(i)], "cosine": round(float(cos[int(i)]), 4)} for i in worst],
        },
    }


def markdown(out: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {batch} | {BATCHES[int(batch)]} | {t['default_tps']} | {t['int8_tps']} | **{t['ratio_median']}x** |"
        for batch, t in out["throughput"].items()
    )
    c = out["cosine"]
    acc_rows = "\n".join(
        f"| {what} | {v['default']:.2f} | {v['int8']:.2f} | {v['int8'] - v['default']:+.2f} |"
        for what, v in out["accuracy"].items()
    )
    m = out["machine"]
    return f"""## INT8 fast path (`BundledEncoder(quantized=True)`)

Command: `uv run --group bench python -m benchmarks.quantized --rounds {out["rounds"]} --threads {out["threads"]}{out["data_arg"]}`
({m["cpu"]}, {m["cores"]} cores, VNNI: {out["cpu_has_vnni"]}; onnxruntime {m["packages"]["onnxruntime"]};
{out["rounds"]} rounds, order alternating; ratio = median of per-round ratios).

| batch | texts per round | default texts/s | int8 texts/s | speed ratio |
| --- | --- | --- | --- | --- |
{rows}

Cosine between the two encoders' embeddings of {out["texts"]} requests: mean {c["mean"]}, min {c["min"]},
5th percentile {c["p5"]}, {c["below_0.98"]} below 0.98. Build of the quantized file (or cache check):
{out["prepare_s"]} s; model load: default {out["load_s"]["default"]} s, int8 {out["load_s"]["int8"]} s.

Routing accuracy (%, each encoder's own embeddings for routes and queries):

| benchmark | default | int8 | delta (points) |
| --- | --- | --- | --- |
{acc_rows}

Not the default (`quantized=False`). `BundledEncoder(quantized="auto")` takes this path only on a CPU
whose INT8 instructions onnxruntime's kernels use (x86-64: `avx512_vnni`, `avx_vnni` or `amx_int8` in the
flags of /proc/cpuinfo; ARM64: `asimddp` or `i8mm`; `encoders.quantized.int8_cpu_support`) and only after
a self-check at model load: the INT8 model's embedding of each of 16 shipped probe texts
(`encoders.quantized.PROBE_TEXTS`) must be within cosine 0.98 of the float model's. Otherwise it keeps
the float model and logs why, once. Without VNNI the int8 kernels may saturate with full-range weights,
which the self-check catches. The registry's `"bundled"` stays float: changing it needs every fitted
accuracy within 0.3 points on CLINC150, Banking77 and HWU64, and this benchmark measures nearest-utterance
accuracy (Banking77) and tool selection only.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--texts", type=Path, help="a file of texts, one a line")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, help="folder with banking77/ (adds its accuracy)")
    parser.add_argument("--manifest", default=str(MANIFESTS / "quantized.json"))
    parser.add_argument("--doc", default=str(DEFAULT_DOC))
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.texts:
        texts = [t.strip() for t in args.texts.read_text().splitlines() if t.strip()]
    else:
        texts = default_texts()
    if not texts:
        parser.error("no texts to embed")
    out = run(texts, rounds=args.rounds, threads=args.threads, data=args.data)
    out["data_arg"] = f" --data {args.data}" if args.data else ""
    out["machine"] = machine_info()
    write_manifest(
        args.manifest, "quantized", {k: v for k, v in out.items() if k not in ("machine", "data_arg")}
    )
    print(json.dumps({k: v for k, v in out.items() if k not in ("machine", "data_arg")}, indent=2))
    if not args.no_doc:
        update_section("quantized", markdown(out), doc=args.doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
