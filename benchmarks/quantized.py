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

``--fit DIR`` (instead): the rule for the default. The router is fitted on each data set of ``DIR``
(CLINC150 train + val with its out-of-scope label, Banking77 train, HWU64 train + val; test only
evaluated) once with the float encoder and once with the INT8 path, as ``synaptoroute eval`` does;
it reports both fitted accuracies, their difference in points, the end-to-end speed of the two
fitted routers (single ``route()`` and ``route_batch`` of 64, alternated, medians) and what
``quantized="auto"`` chooses on this machine. Embeddings are cached by text under ``--cache``.

    uv run --group bench python -m benchmarks.quantized --fit ../shared/data --cache /tmp/q-cache
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synaptoroute_agents.encoders.bundled import BundledEncoder
from synaptoroute_agents.encoders.quantized import cpu_has_vnni, quantized_model

from .accuracy import CachedEncoder
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
accuracy within 0.3 points on CLINC150, Banking77 and HWU64; `benchmarks.quantized --fit` measures that
(the section "INT8 fast path: fitted accuracy on every data set" has the figures and the verdict).
"""


#: The largest loss of fitted accuracy (points, on every data set) that lets the default change.
DEFAULT_RULE_POINTS = 0.3
#: name -> (splits fitted on, the validation split or None, out-of-scope label or None)
FIT_SETS: dict[str, tuple[str, str | None, str | None]] = {
    "clinc150": ("train", "val", "oos"),
    "banking77": ("train", None, None),
    "hwu64": ("train", "val", None),
}


class _DiskCached(CachedEncoder):
    """:class:`~benchmarks.accuracy.CachedEncoder` kept in an .npz file, so reruns skip the
    model; ``live = True`` sends every call to the model (for timing)."""

    def __init__(self, inner: BundledEncoder, path: Path) -> None:
        super().__init__(inner)
        self.path, self.live = path, False
        if path.exists():
            z = np.load(path, allow_pickle=False)
            self.preload(z["texts"].tolist(), z["vectors"], z.get("features"))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed(texts) if self.live else super().embed(texts)

    def embed_with_features(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if self.live:
            return self.inner.embed_with_features(texts)  # type: ignore[attr-defined]
        return super().embed_with_features(texts)

    def save(self) -> None:
        texts = list(self._cache)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"texts": np.array(texts), "vectors": self._rows(self._cache, texts)}
        if self._features:
            arrays["features"] = self._rows(self._features, texts)
        np.savez(self.path, **arrays)  # type: ignore[arg-type]


def _e2e_speed(routers: dict[str, Any], queries: list[str], n_single: int, rounds: int) -> dict[str, Any]:
    """Single ``route()`` and batched ``route_batch`` (64 a call) of the fitted routers, alternated
    query by query (single) and round by round (batched, order switching): medians and ratios."""
    names = list(routers)
    for name in names:
        for q in queries[:10]:
            routers[name].route(q)
    single: dict[str, list[float]] = {n: [] for n in names}
    for i in range(n_single):
        q = queries[i % len(queries)]
        for name in names if i % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            routers[name].route(q)
            single[name].append((time.perf_counter() - t0) * 1e3)
    batched: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            for s in range(0, len(queries), 64):
                routers[name].route_batch(queries[s : s + 64])
            batched[name].append(len(queries) / (time.perf_counter() - t0))
    a, b = names
    return {
        "single_p50_ms": {n: round(statistics.median(v), 3) for n, v in single.items()},
        "batched_qps": {n: round(statistics.median(v), 1) for n, v in batched.items()},
        "single_speed_ratio": round(statistics.median(single[a]) / statistics.median(single[b]), 3),
        "batched_speed_ratio": round(
            statistics.median(y / x for x, y in zip(batched[a], batched[b], strict=True)), 3
        ),
        "queries": len(queries),
        "single_n": n_single,
        "rounds": rounds,
    }


def default_rule(deltas: dict[str, float]) -> dict[str, Any]:
    """The issue's rule for the default: the INT8 path only if every data set of :data:`FIT_SETS`
    was fitted and none lost more than :data:`DEFAULT_RULE_POINTS` points of accuracy."""
    worst = min(deltas.values()) if deltas else None
    return {
        "max_loss_points": DEFAULT_RULE_POINTS,
        "worst_delta_points": worst,
        "passes": set(deltas) == set(FIT_SETS) and worst is not None and worst >= -DEFAULT_RULE_POINTS,
    }


def _points(share: float | None) -> float | None:
    return None if share is None else round(100 * share, 2)


def fit_rule(
    data: Path, cache: Path, *, threads: int | None = 2, n_single: int = 200, rounds: int = 3
) -> dict[str, Any]:
    """Fit on each data set with the float and the INT8 encoder; the accuracies, their differences
    and the end-to-end speed of both fitted routers, and the verdict of the default rule."""
    import logging

    from synaptoroute_agents.cli.eval import route_names_for
    from synaptoroute_agents.encoders import quantized as q
    from synaptoroute_agents.evaluation import read_labelled
    from synaptoroute_agents.router import SemanticRouter

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ok, why = q.int8_cpu_support()
    auto = BundledEncoder(threads=threads, quantized="auto")
    out: dict[str, Any] = {
        "cpu": {"int8_support": ok, "why": why, "auto_picks": "int8" if auto.quantized else "float"},
        "sets": {},
        "loadavg_start": round(os.getloadavg()[0], 2),
    }
    del auto
    encoders = {
        "float": BundledEncoder(threads=threads),
        "int8": BundledEncoder(threads=threads, quantized=True),
    }
    for name, (fit_split, val_split, oos) in FIT_SETS.items():
        folder = data / name
        if not (folder / f"{fit_split}.jsonl").exists():
            continue
        train = read_labelled(folder / f"{fit_split}.jsonl")
        val = read_labelled(folder / f"{val_split}.jsonl") if val_split else None
        test = read_labelled(folder / "test.jsonl")
        labels = [*train[1], *test[1], *(val[1] if val else [])]
        names = route_names_for(labels)
        if oos is not None:
            names[oos] = oos

        def rename(
            part: tuple[list[str], list[str]], names: dict[str, str] = names
        ) -> tuple[list[str], list[str]]:
            return part[0], [names[lab] for lab in part[1]]

        row: dict[str, Any] = {
            "n_fit": len(train[0]),
            "n_val": len(val[0]) if val else 0,
            "n_test": len(test[0]),
        }
        routers: dict[str, Any] = {}
        for enc_name, enc in encoders.items():
            cached = _DiskCached(enc, cache / f"quantized-fit-{enc_name}-{name}.npz")
            router = SemanticRouter(encoder=cached)
            t0 = time.perf_counter()
            router.fit(
                *rename(train),
                out_of_scope_label=oos,
                validation=rename(val) if val else None,
                create_routes=True,
            )
            fit_s = time.perf_counter() - t0
            report = router.evaluate(*rename(test), out_of_scope_label=oos)
            cached.save()
            cached.live = True
            routers[enc_name] = router
            row[enc_name] = {
                "accuracy": round(100 * report.accuracy, 2),
                "in_scope_accuracy": _points(report.in_scope_accuracy),
                "oos_recall": _points(report.oos_recall),
                "head_features": cached.head_features,
                "fit_seconds": round(fit_s, 1),
            }
            print(f"{name} {enc_name}: {row[enc_name]}", flush=True)
        row["delta_points"] = round(row["int8"]["accuracy"] - row["float"]["accuracy"], 2)
        row["speed"] = _e2e_speed(routers, test[0][:1024], n_single, rounds)
        row["speed"]["loadavg"] = round(os.getloadavg()[0], 2)
        print(f"{name}: delta {row['delta_points']:+.2f} points, speed {row['speed']}", flush=True)
        for router in routers.values():
            router.close()
        out["sets"][name] = row
    out["rule"] = default_rule({name: r["delta_points"] for name, r in out["sets"].items()})
    out["loadavg_end"] = round(os.getloadavg()[0], 2)
    return out


def fit_markdown(out: dict[str, Any], cmd: str) -> str:
    """The docs section of :func:`fit_rule`."""
    rows = []
    for name, r in out["sets"].items():
        f, i, sp = r["float"], r["int8"], r["speed"]
        oos = (
            f" (oos recall {f['oos_recall']:.2f} / {i['oos_recall']:.2f})"
            if f["oos_recall"] is not None
            else ""
        )
        rows.append(
            f"| {name} | {r['n_fit']:,} + {r['n_val']:,} | {f['accuracy']:.2f} | {i['accuracy']:.2f} "
            f"| **{r['delta_points']:+.2f}**{oos} | {sp['single_p50_ms']['float']:.2f} / {sp['single_p50_ms']['int8']:.2f} "
            f"| {sp['batched_qps']['float']:.0f} / {sp['batched_qps']['int8']:.0f} "
            f"| {sp['single_speed_ratio']:.2f}x / {sp['batched_speed_ratio']:.2f}x | {sp['loadavg']:.1f} |"
        )
    cpu, rule = out["cpu"], out["rule"]
    verdict = (
        'every fitted accuracy is within the rule, so the registry\'s `"bundled"` uses `quantized="auto"`'
        if rule["passes"]
        else "at least one fitted accuracy falls further than the rule allows, so the registry's "
        '`"bundled"` stays float (`quantized=False`); `"bundled-int8"` and `quantized="auto"` remain opt-in'
    )
    return f"""## INT8 fast path: fitted accuracy on every data set (the rule for the default)

Command: `{cmd}`

Each data set fitted with the float encoder and with the INT8 path (`BundledEncoder(quantized=True)`), as
`synaptoroute eval` does: CLINC150 on train with val for the settings (its `oos` label taught as out of
scope), Banking77 on train, HWU64 on train with val; test only evaluated. The float encoder gives the head
its features (layers 4-6); the INT8 path has none, so its head reads the embeddings. Speed: the two fitted
routers on the test queries, `route()` alternated query by query and `route_batch` (64 a call) in rounds
of alternating order; medians; load average {out["loadavg_start"]:.1f} at start, {out["loadavg_end"]:.1f} at the end (2 cores).

| data set | fitted on (+ val) | float accuracy % | int8 accuracy % | int8 - float, points | e2e single p50 ms float / int8 | e2e batched q/s float / int8 | int8 speed-up single / batched | load |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

The rule (issue #22): the default may take the INT8 path only if every fitted accuracy stays within
{rule["max_loss_points"]} points of the float one. Worst difference here: **{rule["worst_delta_points"]:+.2f} points**:
{verdict}.

This machine: INT8 support detected: **{cpu["int8_support"]}** ({cpu["why"]}); `quantized="auto"` picks
**{cpu["auto_picks"]}** here.
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
    parser.add_argument(
        "--fit",
        type=Path,
        metavar="DIR",
        help="instead: fitted accuracy and e2e speed of both paths on DIR's data sets",
    )
    parser.add_argument(
        "--cache", type=Path, default=Path(".bench-cache"), help="where --fit keeps embeddings by text"
    )
    args = parser.parse_args(argv)
    if args.fit:
        import sys

        cmd = "uv run --group bench python -m benchmarks.quantized " + " ".join(
            argv if argv is not None else sys.argv[1:]
        )
        res = fit_rule(args.fit, args.cache, threads=args.threads)
        write_manifest(
            str(Path(args.manifest).with_name("quantized-fit.json")), "quantized-fit", res, command=cmd
        )
        print(json.dumps(res, indent=2))
        if not args.no_doc:
            update_section("quantized-fit", fit_markdown(res, cmd), doc=args.doc)
        return 0
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
