"""Library or reason: three hand-written pieces of the index and the store against the library
that does the same job, measured in one run.

1. ``synaptoroute_agents.index.onnxproto`` (a protobuf writer for ONNX graphs) against the
   ``onnx`` package: install size and import time of ``onnx``, the time to write the INT8
   screen's model, the longest stall of another thread while it is written (the GIL), and the
   time to expose inner outputs of the bundled model (``with_graph_outputs``).
2. The INT8 screen with exact float32 re-scoring (``synaptoroute_agents.index.screen``) against
   Faiss ``IndexScalarQuantizer`` (8 bit) + ``IndexRefineFlat``, with the float32 scan and a
   Faiss ``IndexFlatIP`` as references: build time, single-query and batched speed at the k the
   router asks for (32), top-1 agreement with exact search.
3. The packed boot snapshot codec (``synaptoroute_agents.store.snapshots``) against NumPy's
   ``.npz``: bytes, pack and unpack time (unpacked into the index's own storage), and the
   boot it serves (a snapshot against reading the utterance rows).

Vectors are random unit vectors of dimension 384 (the bundled model's), as 10,000 routes x 5
utterances (50,000 rows) and 50,000 x 5 (250,000 rows). The machine may be shared: compare the
ratios measured within this run, and read the load average printed with them.

Run::

    OMP_WAIT_POLICY=PASSIVE uv run python -m benchmarks.hand_written
    OMP_WAIT_POLICY=PASSIVE uv run python benchmarks/hand_written.py --sizes 50000 --json out.json
"""

from __future__ import annotations

import os
from functools import partial

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before faiss / onnxruntime start threads

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from synaptoroute_agents.index import VectorIndex
from synaptoroute_agents.index.faiss_base import new_flat_storage
from synaptoroute_agents.index.onnxproto import FLOAT, with_graph_outputs
from synaptoroute_agents.index.screen import screen_model
from synaptoroute_agents.routes import Route
from synaptoroute_agents.store import RouteStore
from synaptoroute_agents.store.snapshots import SNAPSHOT_CHUNK, SnapshotInfo, pack_snapshot, unpack_snapshot

DIM = 384
K = 32  # what the router asks the index for (max(neighbors=32, 4 * top_k))
PER_ROUTE = 5


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _median_ms(fn: Callable[[], Any], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


# --------------------------------------------------------------------------- 1. onnx package
def _requires(dist: str) -> set[str]:
    """Names of the distributions ``dist`` needs (no extras), itself included, recursively."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [dist]
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        try:
            reqs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for line in reqs:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            todo.append(req.name)
    return seen


def _installed_bytes(dist: str) -> int:
    total = 0
    for f in metadata.distribution(dist).files or []:
        path = Path(str(f.locate()))
        if path.is_file():
            total += path.stat().st_size
    return total


def _import_seconds(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    runs = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(3)
    ]
    return statistics.median(runs)


def _screen_parts(x: np.ndarray, chunk: int = 65536, group: int = 32) -> list[tuple[np.ndarray, np.ndarray]]:
    """The screen's rows as :class:`Int8Screen` lays them out (transposed INT8 chunks + scales)."""
    n = len(x)
    n_chunks = -(-n // chunk)
    per = -(-n // n_chunks)  # rows per chunk, rounded up to whole groups
    per = -(-per // group) * group
    parts = []
    for c in range(n_chunks):
        v = x[c * per : (c + 1) * per]
        s = np.abs(v).max(axis=1) / np.float32(127.0)
        q8 = np.clip(np.rint(v / s[:, None]), -127, 127).astype(np.int8)
        xt = np.zeros((DIM, per), dtype=np.int8)
        sc = np.zeros(per, dtype=np.float32)
        xt[:, : len(v)] = q8.T
        sc[: len(v)] = s
        parts.append((xt, sc))
    return parts


def _screen_model_onnx(parts: list[tuple[np.ndarray, np.ndarray]], group: int) -> bytes:
    """The same graph as :func:`screen_model`, written with the ``onnx`` package's helpers."""
    data: bytes = _screen_proto_onnx(parts, group).SerializeToString()
    return data


def _screen_files_onnx(parts: list[tuple[np.ndarray, np.ndarray]], group: int, folder: str) -> None:
    """The screen's model file with its rows in a file beside it (ONNX external data), as the
    index writes it, with the ``onnx`` package."""
    import onnx

    onnx.save_model(
        _screen_proto_onnx(parts, group),
        os.path.join(folder, "screen.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="rows.bin",
        size_threshold=1024,
    )


def _screen_files_ours(parts: list[tuple[np.ndarray, np.ndarray]], group: int, folder: str) -> None:
    """The same two files with :mod:`synaptoroute_agents.index.onnxproto` (the index's own path)."""
    from synaptoroute_agents.index.onnxproto import ExternalData

    with ExternalData(os.path.join(folder, "rows.bin")) as external:
        graph = screen_model(parts, group, external)
    with open(os.path.join(folder, "screen.onnx"), "wb") as f:
        f.write(graph)


def _screen_proto_onnx(parts: list[tuple[np.ndarray, np.ndarray]], group: int) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(np.array(128, dtype=np.uint8), "azp"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
    ]
    nodes = []
    maxima = []
    outputs = [helper.make_tensor_value_info("T", TensorProto.FLOAT, ["b", 1])]
    for j, (xt, sc) in enumerate(parts):
        c = xt.shape[1]
        inits += [
            numpy_helper.from_array(xt, f"B{j}"),
            numpy_helper.from_array(sc, f"S{j}"),
            numpy_helper.from_array(np.array([0, c // group, group], dtype=np.int64), f"shape{j}"),
        ]
        nodes += [
            helper.make_node(
                "MatMulIntegerToFloat",
                ["A", f"B{j}", "one", f"S{j}", "azp"],
                [f"Y{j}"],
                domain="com.microsoft",
            ),
            helper.make_node("Reshape", [f"Y{j}", f"shape{j}"], [f"R{j}"]),
            helper.make_node("ReduceMax", [f"R{j}"], [f"M{j}"], axes=[2], keepdims=0),
        ]
        maxima.append(f"M{j}")
    nodes += [
        helper.make_node("Concat", maxima, ["M"], axis=1),
        helper.make_node("Add", ["M", "D"], ["MD"]),
        helper.make_node("TopK", ["MD", "k"], ["V", "VI"], axis=1),
        helper.make_node("ReduceMin", ["V"], ["T"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["T", "W"], ["cut"]),
    ]
    for j in range(len(parts)):
        nodes += [
            helper.make_node("GreaterOrEqual", [f"M{j}", "cut"], [f"G{j}"]),
            helper.make_node("NonZero", [f"G{j}"], [f"N{j}"]),
            helper.make_node("Transpose", [f"N{j}"], [f"P{j}"], perm=[1, 0]),
            helper.make_node("GatherND", [f"R{j}", f"P{j}"], [f"E{j}"]),
        ]
        outputs += [
            helper.make_tensor_value_info(f"N{j}", TensorProto.INT64, [2, f"m{j}"]),
            helper.make_tensor_value_info(f"E{j}", TensorProto.FLOAT, [f"m{j}", group]),
        ]
    inputs = [
        helper.make_tensor_value_info("A", TensorProto.UINT8, ["b", DIM]),
        helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
        helper.make_tensor_value_info("W", TensorProto.FLOAT, ["b", 1]),
        helper.make_tensor_value_info("D", TensorProto.FLOAT, ["g"]),
    ]
    graph = helper.make_graph(nodes, "int8_screen", inputs, outputs, inits)
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets, producer_name="synaptoroute-agents", ir_version=7)


def _longest_stall_ms(fn: Callable[[], Any]) -> tuple[float, float]:
    """(time of ``fn`` in ms, the longest gap in ms seen by a thread that wakes every ms meanwhile)."""
    stop = threading.Event()
    gaps: list[float] = []

    def beat() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    t = threading.Thread(target=beat, daemon=True)
    t.start()
    time.sleep(0.02)
    t0 = time.perf_counter()
    fn()
    took = (time.perf_counter() - t0) * 1e3
    stop.set()
    t.join()
    return took, max(gaps) * 1e3 if gaps else 0.0


def _external_files(parts: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Time and longest stall of writing the model + rows files (the index's real path)."""
    out: dict[str, float] = {}
    for name, write in (("ours", _screen_files_ours), ("onnx", _screen_files_onnx)):
        with tempfile.TemporaryDirectory(prefix="sr-hand-written-") as d:
            took, stall = _longest_stall_ms(partial(write, parts, 32, d))
        out[f"files_ms_{name}"] = round(took, 1)
        out[f"files_stall_ms_{name}"] = round(stall, 1)
    return out


def bench_onnx(sizes: list[int]) -> dict[str, Any]:
    """Part 1: the hand-written ONNX writer against the ``onnx`` package."""
    import onnx

    runtime = _requires("synaptoroute-agents")
    extra = sorted(_requires("onnx") - runtime)
    out: dict[str, Any] = {
        "onnx_version": onnx.__version__,
        "extra_distributions": extra,
        "extra_install_mb": round(sum(_installed_bytes(d) for d in extra) / 1e6, 1),
        "onnx_import_s": round(_import_seconds("onnx"), 3),
        "screen_model": [],
    }
    rng = np.random.default_rng(0)
    for n in sizes:
        parts = _screen_parts(_unit(rng, n))
        ours = screen_model(parts, 32)
        theirs = _screen_model_onnx(parts, 32)
        onnx.checker.check_model(onnx.load_from_string(ours))
        t_ours, stall_ours = _longest_stall_ms(partial(screen_model, parts, 32))
        t_theirs, stall_theirs = _longest_stall_ms(partial(_screen_model_onnx, parts, 32))
        out["screen_model"].append(
            {
                "rows": n,
                "bytes_ours": len(ours),
                "bytes_onnx": len(theirs),
                "ms_ours": round(_median_ms(partial(screen_model, parts, 32), 3), 1),
                "ms_onnx": round(_median_ms(partial(_screen_model_onnx, parts, 32), 3), 1),
                "stall_ms_ours": round(stall_ours, 1),
                "stall_ms_onnx": round(stall_theirs, 1),
                "single_run_ms": [round(t_ours, 1), round(t_theirs, 1)],
                **_external_files(parts),
            }
        )
        del parts
    try:
        from synaptoroute_agents.encoders.bundled import bundled_model_path

        data = bundled_model_path().read_bytes()
    except Exception as exc:  # the bundled model is a dependency; say so if it is missing
        out["graph_outputs"] = {"skipped": str(exc)}
        return out
    names = ["layer_norm_8", "layer_norm_10"]

    def theirs_outputs() -> bytes:
        m = onnx.load_from_string(data)
        for name in names:
            m.graph.output.append(onnx.helper.make_tensor_value_info(name, FLOAT, ["batch", "sequence", DIM]))
        blob: bytes = m.SerializeToString()
        return blob

    out["graph_outputs"] = {
        "model_mb": round(len(data) / 1e6, 1),
        "ms_ours": round(
            _median_ms(
                lambda: with_graph_outputs(data, [(t, FLOAT, ["batch", "sequence", DIM]) for t in names])
            ),
            1,
        ),
        "ms_onnx": round(_median_ms(theirs_outputs), 1),
    }
    return out


# --------------------------------------------------------------------------- 2. INT8 screen
def _timings(search: Callable[[np.ndarray], Any], q: np.ndarray, single: int) -> dict[str, float]:
    search(q[:8])  # warm-up
    lat = []
    for i in range(single):
        t0 = time.perf_counter()
        search(q[i : i + 1])
        lat.append((time.perf_counter() - t0) * 1e3)
    batch_ms = _median_ms(lambda: search(q), 3)
    return {
        "single_p50_ms": round(float(np.percentile(lat, 50)), 3),
        "single_p99_ms": round(float(np.percentile(lat, 99)), 3),
        "batched_qps": round(len(q) / batch_ms * 1e3),
    }


def bench_screen(sizes: list[int], n_queries: int, single: int, k_factors: list[int]) -> list[dict[str, Any]]:
    """Part 2: the INT8 screen against Faiss SQ8 + refine, with exact references."""
    rng = np.random.default_rng(1)
    return [_screen_size(_unit(rng, n), _unit(rng, n_queries), single, k_factors) for n in sizes]


def _screen_size(x: np.ndarray, q: np.ndarray, single: int, k_factors: list[int]) -> dict[str, Any]:
    n = len(x)
    truth = np.concatenate([np.argmax(q[s : s + 100] @ x.T, axis=1) for s in range(0, len(q), 100)])
    ids = np.arange(n, dtype=np.int64)
    entry: dict[str, Any] = {"rows": n, "queries": len(q), "k": K, "methods": {}}

    def run(name: str, build: Callable[[], Callable[[np.ndarray], np.ndarray]]) -> None:
        t0 = time.perf_counter()
        search = build()
        built = time.perf_counter() - t0
        top1 = search(q)[:, 0]
        res = {"build_s": round(built, 2), "top1_agreement": round(float(np.mean(top1 == truth)), 4)}
        res.update(_timings(search, q, single))
        entry["methods"][name] = res
        _out(f"  {n:>7} rows  {name:<28} {res}")

    def ours(screen: bool) -> Callable[[], Callable[[np.ndarray], np.ndarray]]:
        def build() -> Callable[[np.ndarray], np.ndarray]:
            idx = VectorIndex(DIM, screen=screen, background=False)
            idx.load(ids, x)
            idx.prepare()
            if screen and not idx.screen_info()["enabled"]:
                raise RuntimeError("the INT8 screen did not build")
            return lambda qq: idx.search(qq, K)[1]

        return build

    def faiss_flat() -> Callable[[np.ndarray], np.ndarray]:
        index = faiss.IndexFlatIP(DIM)
        index.add(x)
        return lambda qq: index.search(qq, K)[1]

    def faiss_sq8(k_factor: int) -> Callable[[], Callable[[np.ndarray], np.ndarray]]:
        def build() -> Callable[[np.ndarray], np.ndarray]:
            sq = faiss.IndexScalarQuantizer(DIM, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
            index = faiss.IndexRefineFlat(sq)
            index.train(x)
            index.add(x)
            index.k_factor = float(k_factor)
            keep = (sq, index)
            return lambda qq: keep[1].search(qq, K)[1]

        return build

    run("int8 screen + exact (ours)", ours(True))
    run("float32 scan (ours)", ours(False))
    run("faiss IndexFlatIP", faiss_flat)
    for kf in k_factors:
        run(f"faiss SQ8 + RefineFlat kf={kf}", faiss_sq8(kf))
    return entry


# --------------------------------------------------------------------------- 3. snapshot codec
def _corpus(n: int, rng: np.random.Generator) -> tuple[dict[str, Route], np.ndarray, list[str], list[str]]:
    n_routes = max(1, n // PER_ROUTE)
    words = [
        "book",
        "a",
        "flight",
        "to",
        "cancel",
        "my",
        "order",
        "what",
        "is",
        "the",
        "weather",
        "in",
        "paris",
    ]
    texts = [" ".join(words[j] for j in rng.integers(0, len(words), 6 + i % 5)) + f" #{i}" for i in range(n)]
    names = [f"route-{i // PER_ROUTE}" for i in range(n)]
    routes = {
        f"route-{r}": Route.trusted(
            f"route-{r}", tuple(texts[r * PER_ROUTE : (r + 1) * PER_ROUTE]), None, None, {}
        )
        for r in range(n_routes)
    }
    return routes, np.arange(1, n + 1, dtype=np.int64), names, texts


def bench_snapshot(sizes: list[int], boot_max: int) -> list[dict[str, Any]]:
    """Part 3: the packed snapshot codec against NumPy's .npz, and the boot it serves."""
    rng = np.random.default_rng(2)
    out = []
    for n in sizes:
        entry = _snapshot_size(n, rng, boot_max)
        out.append(entry)
        _out(f"  {entry}")
    return out


def _snapshot_size(n: int, rng: np.random.Generator, boot_max: int) -> dict[str, Any]:
    routes, ids, names, texts = _corpus(n, rng)
    x = _unit(rng, n)
    payload, layout = pack_snapshot(routes, ids, names, texts, x)
    assert payload is not None
    info = SnapshotInfo("bench", "m", DIM, 1, n, len(routes), len(payload), 0, json.dumps(layout), 0.0)
    chunks = [bytes(payload[a : a + SNAPSHOT_CHUNK]) for a in range(0, len(payload), SNAPSHOT_CHUNK)]
    vec_at = layout["sections"]["vectors"][0]

    def unpack_ours() -> Any:
        # as a boot does: small sections into a buffer, the vectors into Faiss's own storage
        _, view = new_flat_storage(n, DIM)
        buf = np.empty(vec_at, dtype=np.uint8)
        tail = view.reshape(-1).view(np.uint8)
        pos = 0
        for data in chunks:
            chunk = np.frombuffer(data, dtype=np.uint8)
            cut = min(max(vec_at - pos, 0), len(chunk))
            buf[pos : pos + cut] = chunk[:cut]
            tail[pos + cut - vec_at : pos + len(chunk) - vec_at] = chunk[cut:]
            pos += len(chunk)
        return unpack_snapshot(buf, layout, info, view)

    meta = json.dumps([[name, r.description, r.threshold, None] for name, r in routes.items()])

    def pack_npz() -> bytes:
        bio = io.BytesIO()
        np.savez(
            bio,
            ids=ids,
            routes=np.frombuffer(meta.encode(), dtype=np.uint8),
            route_of=np.array([int(s[6:]) for s in names], dtype=np.int64),
            texts=np.array(texts),  # NumPy's own text array (fixed-width UTF-32)
            vectors=x,
        )
        return bio.getvalue()

    npz_blob = pack_npz()
    npz_chunks = [npz_blob[a : a + SNAPSHOT_CHUNK] for a in range(0, len(npz_blob), SNAPSHOT_CHUNK)]

    def unpack_npz() -> Any:
        # the zip container needs the whole blob in one buffer, then each array is read out
        # of it, and the vectors are copied once more into Faiss's storage
        with np.load(io.BytesIO(b"".join(npz_chunks))) as z:
            got_ids = z["ids"]
            got_texts = z["texts"].tolist()
            json.loads(bytes(z["routes"]))
            _, view = new_flat_storage(n, DIM)
            view[:] = z["vectors"]
        return got_ids, got_texts, view

    entry: dict[str, Any] = {
        "rows": n,
        "bytes_ours": len(payload),
        "bytes_npz": len(npz_blob),
        "pack_ms_ours": round(_median_ms(lambda: pack_snapshot(routes, ids, names, texts, x), 3), 1),
        "pack_ms_npz": round(_median_ms(pack_npz, 3), 1),
        "unpack_ms_ours": round(_median_ms(unpack_ours, 3), 1),
        "unpack_ms_npz": round(_median_ms(unpack_npz, 3), 1),
        "unpack_peak_mb_ours": _peak_mb(unpack_ours),
        "unpack_peak_mb_npz": _peak_mb(unpack_npz),
    }
    if n <= boot_max:
        entry.update(_boot(routes, x))
    return entry


def _peak_mb(fn: Callable[[], Any]) -> float:
    """Peak memory that Python and NumPy allocate while ``fn`` runs, in MB (Faiss's own storage,
    allocated in C++, is not counted: both codecs fill the same one)."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return round(tracemalloc.get_traced_memory()[1] / 1e6, 1)
    finally:
        tracemalloc.stop()


def _boot(routes: dict[str, Route], x: np.ndarray) -> dict[str, float]:
    """Boot reads from a SQLite store: its snapshot (into Faiss storage) against its rows."""
    with tempfile.TemporaryDirectory(prefix="sr-hand-written-") as d:
        store = RouteStore(Path(d) / "boot.db")
        groups = list(routes.values())
        vecs, at = [], 0
        for r in groups:
            vecs.append(x[at : at + len(r.utterances)])
            at += len(r.utterances)
        for s in range(0, len(groups), 2000):
            store.add_routes(groups[s : s + 2000], vecs[s : s + 2000], "m")
        loaded = store.load_all("m", DIM)
        store.save_snapshot(
            "m", loaded.version, loaded.routes, loaded.ids, loaded.route_names, loaded.texts, loaded.vectors
        )
        info = store.snapshot_info("m", DIM)
        assert info is not None

        def from_snapshot() -> Any:
            got = store.load_snapshot(info, lambda rows, dim: new_flat_storage(rows, dim)[1])
            assert got is not None
            return got

        res = {
            "boot_ms_snapshot": round(_median_ms(from_snapshot, 3), 1),
            "boot_ms_rows": round(_median_ms(lambda: store.load_all("m", DIM), 3), 1),
        }
        store.close()
        return res


# --------------------------------------------------------------------------- report
def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50_000, 250_000], help="rows (routes x 5)")
    ap.add_argument("--queries", type=int, default=1000, help="queries of the batched run")
    ap.add_argument("--single", type=int, default=200, help="queries timed one at a time")
    ap.add_argument("--k-factors", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--boot-max", type=int, default=50_000, help="largest size whose store boot is timed")
    ap.add_argument("--only", choices=["onnx", "screen", "snapshot"], nargs="+")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    parts = set(args.only or ["onnx", "screen", "snapshot"])
    report: dict[str, Any] = {
        "load_before": _load(),
        "cpus": os.cpu_count(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "faiss": faiss.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
    }
    _out(f"# hand-written pieces vs libraries ({report['load_before']})")
    if "onnx" in parts:
        _out("## 1. onnxproto vs the onnx package")
        report["onnx"] = bench_onnx(args.sizes)
        _out(json.dumps(report["onnx"], indent=1))
    if "screen" in parts:
        _out(f"## 2. INT8 screen + exact re-rank vs Faiss SQ8 + RefineFlat (k={K})")
        report["screen"] = bench_screen(args.sizes, args.queries, args.single, args.k_factors)
    if "snapshot" in parts:
        _out("## 3. snapshot codec vs numpy .npz")
        report["snapshot"] = bench_snapshot(args.sizes, args.boot_max)
    report["load_after"] = _load()
    _out(f"# done ({report['load_after']})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
