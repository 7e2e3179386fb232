"""The INT8 screen of a flat index: its neighbours are exactly those of float32 search."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import pytest

from synaptoroute_agents import Route, SemanticRouter, VectorIndex
from synaptoroute_agents.index import screen as screen_mod
from synaptoroute_agents.index.exact import FloatScan, float_scan_model, matmul_model
from synaptoroute_agents.index.screen import Int8Screen, build_screen, screen_model

DATA = Path(__file__).parent / "fixtures" / "clinc10"


def _rows(name: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in (DATA / f"{name}.jsonl").read_text().splitlines() if line]


@pytest.fixture(scope="module")
def real(encoder) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """Real embeddings: a base of 6,000 rows (170 utterances plus perturbed copies, like the scale
    benchmark's derived vectors) and 190 real queries."""
    base = encoder.embed([r["text"] for r in _rows("train")])
    queries = encoder.embed([r["text"] for r in _rows("test") + _rows("val")])
    rng = np.random.default_rng(5)
    picks = base[rng.integers(0, len(base), 6000 - len(base))]
    noisy = picks + rng.normal(0, 0.02, picks.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    return np.concatenate([base, noisy]).astype(np.float32), queries


def true_top_k(q: np.ndarray, x: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference: float64 scores, full sort."""
    s = q.astype(np.float64) @ x.astype(np.float64).T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, axis=1), ids[order]


def assert_exact(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    """Same scores rank by rank, and the same ids wherever the ranking is not a float tie."""
    gs, gi = got
    ws, wi = want
    np.testing.assert_allclose(gs, ws, rtol=4e-6, atol=2e-6)  # float32 against float64
    for row in range(len(gs)):
        kth = ws[row, -1]
        tol = 4e-6 * max(1.0, abs(kth))
        sure_want = {int(i) for i, s in zip(wi[row], ws[row], strict=True) if s > kth + tol}
        sure_got = {int(i) for i, s in zip(gi[row], gs[row], strict=True) if s > kth + tol}
        assert sure_want == sure_got, f"query {row}"
        assert len(set(gi[row].tolist())) == len(gi[row])


@pytest.mark.parametrize("k", [1, 5, 32])
def test_screened_flat_index_equals_exact_search_on_real_embeddings(real, k: int) -> None:  # type: ignore[no-untyped-def]
    x, q = real
    ids = np.arange(100, 100 + len(x))
    idx = VectorIndex(x.shape[1], screen=True, background=False, stage="int8")
    idx.load(ids, x)
    got = idx.search(q, k)
    assert idx.screen_info()["enabled"]
    assert idx.screen_info()["candidates"] > 0
    assert_exact(got, true_top_k(q, x, ids, k))
    # and it agrees with the float32 scan it replaces
    plain = VectorIndex(x.shape[1], screen=False)
    plain.load(ids, x)
    assert_exact(got, plain.search(q, k))
    assert not plain.screen_info()["enabled"]


def test_screen_with_delta_and_tombstones(real) -> None:  # type: ignore[no-untyped-def]
    x, q = real
    n = len(x) - 400
    ids = np.arange(len(x)) * 3 + 1
    idx = VectorIndex(x.shape[1], screen=True, background=False, delta_limit=10_000, stage="int8")
    idx.load(ids[:n], x[:n])
    idx.add(ids[n:], x[n:])  # the delta buffer, searched exactly beside the screened base
    # remove the current best neighbours of many queries (tombstones inside the screened base)
    _, best = idx.search(q[:60], 3)
    dead = np.unique(best[best >= 0])
    idx.remove(dead)
    assert idx.pending()
    live = ~np.isin(ids, dead)
    for k in (1, 8, 32):
        got = idx.search(q, k)
        assert not np.isin(got[1], dead).any()
        assert_exact(got, true_top_k(q, x[live], ids[live], k))
    assert idx.screen_info()["enabled"]


def test_adversarial_near_ties_inside_the_quantization_window() -> None:
    """Thousands of rows whose scores differ by less than the INT8 error: the screen cannot rank
    them, the float re-rank must, and the decoys just below must not slip in."""
    rng = np.random.default_rng(11)
    d = 384
    q = rng.standard_normal(d)
    q /= np.linalg.norm(q)
    n_tied, n_decoy = 3000, 9000
    target = np.concatenate([0.8 - 3e-5 * np.arange(n_tied), 0.8 - 0.09 - 1e-3 * rng.random(n_decoy)])
    r = rng.standard_normal((len(target), d))
    r -= (r @ q)[:, None] * q  # orthogonal to q
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    x = (target[:, None] * q + np.sqrt(1 - target**2)[:, None] * r).astype(np.float32)
    perm = rng.permutation(len(x))
    x = x[perm]
    ids = np.arange(len(x))
    queries = np.stack([q, q + 1e-3 * rng.standard_normal(d)]).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    scr = Int8Screen(x, chunk=4096)
    assert scr.n_chunks == 3
    for k in (1, 7, 32, 100):
        s, rows = scr.search(queries, k, None)
        assert_exact((s, ids[rows]), true_top_k(queries, x, ids, k))
    # the order of the tied block is the exact one
    s, rows = scr.search(queries[:1], 50, None)
    np.testing.assert_array_equal(perm[rows[0]], np.arange(50))


def test_rows_own_bounds_re_rank_fewer_rows_than_the_shared_window(real) -> None:  # type: ignore[no-untyped-def]
    """Only rows whose own error interval reaches the k-th best lower end are re-scored in float32:
    fewer than every row inside the window the session cuts with (built from the largest row
    error), and the answer stays exact."""
    x, q = real
    scr = Int8Screen(x, chunk=2048)
    k = 32
    a, s, w = scr.quantize_queries(q)
    approx = (a.astype(np.float64) - 128) @ np.rint(x / np.maximum(np.abs(x).max(1), 1e-30)[:, None] * 127).T
    approx *= s[:, None] * (np.abs(x).max(1) / 127)[None, :]
    kth = -np.partition(-approx, k - 1, axis=1)[:, k - 1]
    in_window = int((approx >= (kth - 2 * w)[:, None]).sum())
    got = scr.search(q, k, None)
    assert_exact((got[0], got[1]), true_top_k(q, x, np.arange(len(x)), k))
    assert k * len(q) <= scr.candidates < 0.9 * in_window


def test_adversarial_quantization_errors_aligned_with_the_query() -> None:
    """Rows built on the INT8 grid plus almost half a step towards (or against) the query's signs:
    every INT8 score is off by nearly the worst case, half of them low and half high, so the INT8
    ranking is wrong near the top and only a sound error bound keeps the true neighbours."""
    rng = np.random.default_rng(12)
    d, n, step = 384, 20000, 1 / 256
    q = rng.standard_normal(d)
    q /= np.linalg.norm(q)
    m = rng.integers(-40, 41, (n, d)).astype(np.float64)
    side = rng.choice([-1.0, 1.0], n)[:, None]
    m += 0.49 * side * np.sign(q)[None, :]
    m[:, int(np.argmin(np.abs(q)))] = 127  # fixes every row's INT8 scale to exactly `step`
    x = (m * step).astype(np.float32)
    ids = np.arange(n)
    queries = np.stack([q, q + 0.05 * rng.standard_normal(d)]).astype(np.float32)
    scr = Int8Screen(x, chunk=8192)
    a, s, _ = scr.quantize_queries(queries[:1])
    approx = (a.astype(np.float64) - 128) @ np.rint(m).T * s[0] * step
    truth = q @ x.astype(np.float64).T
    assert not set(np.argsort(-approx[0])[:32]) >= set(np.argsort(-truth)[:32])  # INT8 alone errs
    for k in (1, 32):
        got = scr.search(queries, k, None)
        assert_exact((got[0], ids[got[1]]), true_top_k(queries, x, ids, k))


@pytest.mark.parametrize("group", [8, 32])
def test_screen_over_several_chunks_with_dead_rows_and_padding(group: int) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5003, 64)).astype(np.float32)  # not unit: the bounds use the norms
    q = rng.standard_normal((40, 64)).astype(np.float32)
    scr = Int8Screen(x, chunk=1000, group=group)
    assert scr.n_chunks == 6 and scr.n_chunks * scr.chunk > len(x)
    dead = np.zeros(len(x), dtype=bool)
    _, top = scr.search(q, 4, None)
    dead[top[:, :2].ravel()] = True  # the two best rows of every query are gone
    ids = np.arange(len(x))
    for k in (1, 16):
        s, rows = scr.search(q, k, dead)
        assert not dead[rows[rows >= 0]].any()
        assert_exact((s, rows), true_top_k(q, x[~dead], ids[~dead], k))
    scr.max_batch = 7  # a large batch runs the session in slices: same answer
    s, rows = scr.search(q, 16, dead)
    assert_exact((s, rows), true_top_k(q, x[~dead], ids[~dead], 16))


def test_many_removed_rows_keep_the_screen_exact_and_in_use() -> None:
    """A tenth of the rows removed (what an index holds before it compacts) touches most groups;
    groups with a removed row do not fix the cut, the others still do, so the screen keeps
    screening (it re-scores candidates) instead of falling back to a float scan."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((20000, 48)).astype(np.float32)
    q = rng.standard_normal((24, 48)).astype(np.float32)
    scr = Int8Screen(x, chunk=8192)
    dead = rng.random(len(x)) < 0.02  # 2% of rows: about half of the 32-row groups hold one
    _, top = scr.search(q, 3, None)
    dead[top.ravel()] = True  # and every query's best rows
    ids = np.arange(len(x))
    before = scr.candidates
    s, rows = scr.search(q, 32, dead)
    assert scr.candidates > before
    assert not dead[rows[rows >= 0]].any()
    assert_exact((s, rows), true_top_k(q, x[~dead], ids[~dead], 32))
    almost_all = rng.random(len(x)) < 0.5  # no whole group left: the float scan answers, exactly
    s, rows = scr.search(q, 8, almost_all)
    assert_exact((s, rows), true_top_k(q, x[~almost_all], ids[~almost_all], 8))


def test_small_and_empty_indexes() -> None:
    rng = np.random.default_rng(8)
    empty = VectorIndex(16, screen=True, background=False, stage="int8")
    s, i = empty.search(rng.standard_normal((2, 16)), 3)
    assert (i == -1).all() and np.isneginf(s).all()
    x = rng.standard_normal((3, 16)).astype(np.float32)
    small = VectorIndex(16, screen=True, background=False, stage="int8")
    small.load([5, 6, 7], x)
    q = rng.standard_normal((4, 16)).astype(np.float32)
    s, i = small.search(q, 5)  # k > rows: the screen answers with a float scan
    assert (i[:, 3:] == -1).all() and np.isneginf(s[:, 3:]).all()
    assert_exact((s[:, :3], i[:, :3]), true_top_k(q, x, np.array([5, 6, 7]), 3))
    small.remove([6])
    s, i = small.search(q, 2)
    assert_exact((s, i), true_top_k(q, x[[0, 2]], np.array([5, 7]), 2))


def test_default_screens_only_large_bases(real) -> None:  # type: ignore[no-untyped-def]
    x, q = real
    idx = VectorIndex(x.shape[1], background=False, stage="int8")  # screen=None, screen_min 4096
    idx.load(np.arange(4000), x[:4000])
    idx.search(q[:2], 3)
    assert not idx.screen_info()["enabled"]
    # above screen_min the calibrated screen is used only where it is faster; either way exact
    auto = VectorIndex(x.shape[1], background=False, screen_min=1000, stage="int8")
    auto.load(np.arange(len(x)), x)
    assert_exact(auto.search(q, 10), true_top_k(q, x, np.arange(len(x)), 10))


def test_background_build_swaps_in_and_stays_exact(real) -> None:  # type: ignore[no-untyped-def]
    x, q = real
    ids = np.arange(len(x))
    idx = VectorIndex(x.shape[1], screen=True, background=True, stage="int8")
    idx.load(ids, x)
    first = idx.search(q, 5)  # answered in float32 while the screen is built beside it
    idx.prepare()
    assert idx.screen_info()["enabled"]
    assert_exact(idx.search(q, 5), first)
    # a compaction builds a new base: its screen follows
    idx.add(np.arange(len(x), len(x) + 10), x[:10])
    idx.compact()
    idx.prepare()
    assert idx.screen_info()["enabled"] and idx.screen_info()["rows"] == len(x) + 10


def test_screens_are_ready_without_waiting_for_a_search(real) -> None:  # type: ignore[no-untyped-def]
    """A bulk load starts building the screen at once (not at the first search), and a compaction
    swaps its new base in with the screen already built, so no search after the swap scans the
    new base in float32; a search still holding the replaced base never starts a build for it."""
    x, q = real
    ids = np.arange(len(x))
    idx = VectorIndex(x.shape[1], screen=True, background=True, stage="int8")
    idx.load(ids, x)
    idx.wait_idle()
    assert idx.screen_info()["enabled"]  # no search has run yet
    old = idx._snap
    idx.add(np.arange(len(x), len(x) + 10), x[:10])
    idx.remove([3, 4])
    idx.compact()  # synchronous here: the swap has happened when it returns
    info = idx.screen_info()
    assert info["enabled"] and info["rows"] == len(x) + 8
    builder = idx._screen_builder
    assert idx._screen_of(old) is None  # the replaced base: no build claimed
    assert idx._screen_builder is builder and idx.screen_info()["enabled"]
    keep = ~np.isin(np.arange(len(x) + 10), [3, 4])
    all_x, all_ids = np.concatenate([x, x[:10]]), np.arange(len(x) + 10)
    assert_exact(idx.search(q, 7), true_top_k(q, all_x[keep], all_ids[keep], 7))


def test_falls_back_to_float_search_when_onnxruntime_refuses_the_graph(
    real,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    x, q = real
    real_model = screen_model

    def without_the_operator(chunks, group, external=None):  # type: ignore[no-untyped-def]
        # the same graph, as an onnxruntime without the fused INT8 operator would see it
        model = real_model(chunks, group, external)
        return model.replace(b"MatMulIntegerToFloat", b"MatMulIntegerToFloaX")

    monkeypatch.setattr(screen_mod, "screen_model", without_the_operator)
    assert build_screen(x) is None
    idx = VectorIndex(x.shape[1], screen=True, background=False, stage="int8")
    idx.load(np.arange(len(x)), x)
    with caplog.at_level(logging.WARNING, logger="synaptoroute_agents.index.screen"):
        got = idx.search(q, 8)
    assert "unavailable" in caplog.text
    assert not idx.screen_info()["enabled"]
    assert_exact(got, true_top_k(q, x, np.arange(len(x)), 8))


def test_screen_rows_go_through_a_file_or_inside_the_model_alike(real, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The screen's rows reach onnxruntime through a temporary file (external data); where no
    temporary folder can be written they go inside the model: same neighbours either way, and
    no file is left behind."""
    x, q = real
    made: list[str] = []
    real_tmp = tempfile.TemporaryDirectory

    def tracked(*args, **kwargs):  # type: ignore[no-untyped-def]
        t = real_tmp(*args, **kwargs)
        made.append(t.name)
        return t

    import onnxruntime as ort

    sizes: dict[str, int] = {}
    real_session = ort.InferenceSession

    def session(model, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(model, str):  # a path: the model file and its rows beside it
            sizes.update({p.name: p.stat().st_size for p in Path(model).parent.iterdir()})
        return real_session(model, *args, **kwargs)

    monkeypatch.setattr(screen_mod.tempfile, "TemporaryDirectory", tracked)
    monkeypatch.setattr(ort, "InferenceSession", session)
    via_file = Int8Screen(x, chunk=2048)
    assert made and not any(Path(d).exists() for d in made)
    # the protobuf holds the graph only (GIL-free loading); the rows are in the file
    assert sizes["screen.onnx"] < 20_000 and sizes["rows.bin"] >= x.size

    def unwritable(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise PermissionError("read-only file system")

    monkeypatch.setattr(screen_mod.tempfile, "TemporaryDirectory", unwritable)
    in_model = Int8Screen(x, chunk=2048)
    truth = true_top_k(q, x, np.arange(len(x)), 16)
    for scr in (via_file, in_model):
        assert_exact(scr.search(q, 16, None), truth)


def test_the_hand_written_model_is_valid_onnx() -> None:
    onnx = pytest.importorskip("onnx")
    rng = np.random.default_rng(0)
    xt = rng.integers(-127, 128, (16, 64)).astype(np.int8)
    model = onnx.load_from_string(screen_model([(xt, np.ones(64, np.float32))] * 2, 8))
    onnx.checker.check_model(model)
    assert [o.name for o in model.graph.output] == ["T", "N0", "E0", "N1", "E1"]


def test_router_decisions_are_identical_with_the_screen(encoder) -> None:  # type: ignore[no-untyped-def]
    routes: dict[str, list[str]] = {}
    for r in _rows("train"):
        routes.setdefault(r["label"], []).append(r["text"])
    queries = [r["text"] for r in _rows("test")]
    out = []
    for screen in (True, False):
        with SemanticRouter(
            encoder, index_options={"screen": screen, "background": False, "stage": "int8"}
        ) as router:
            for name, utts in routes.items():
                router.add(Route(name, utts))
            router.index.compact()  # one base: the screen covers it
            out.append(router.route_batch(queries, top_k=3))
            assert router.index.screen_info()["enabled"] is screen
    for a, b in zip(*out, strict=True):
        assert a.name == b.name and a.reason == b.reason
        assert [c.name for c in a.candidates] == [c.name for c in b.candidates]
        np.testing.assert_allclose(
            [c.score for c in a.candidates], [c.score for c in b.candidates], atol=2e-6
        )


# ---------------------------------------------------------------------------- float32 scan
def test_float_scan_equals_exact_search_with_dead_rows_and_small_bases(real) -> None:  # type: ignore[no-untyped-def]
    from synaptoroute_agents.index.exact import exact_top_k as _exact_top_k

    x, q = real
    scan = FloatScan.shared()
    assert scan is not None  # onnxruntime is a dependency: the scan must run here
    ids = np.arange(10_000, 10_000 + len(x))
    dead = np.zeros(len(x), dtype=bool)
    dead[np.random.default_rng(3).choice(len(x), 500, replace=False)] = True
    for k in (1, 32):
        s, got = _exact_top_k(q, x, ids, dead, k)
        assert not np.isin(got, ids[dead]).any()  # a dead row never comes back
        want = true_top_k(q, x[~dead], ids[~dead], k)
        assert_exact((s, got), want)
    # fewer rows than k: every row, best first
    s, got = _exact_top_k(q[:3], x[:5], ids[:5], None, 32)
    assert s.shape == (3, 5)
    assert_exact((s, got), true_top_k(q[:3], x[:5], ids[:5], 5))


def test_float_scan_breaks_ties_by_the_lower_row() -> None:
    scan = FloatScan.shared()
    assert scan is not None
    x = np.tile(np.eye(4, 8, dtype=np.float32), (3, 1))  # rows 0, 4, 8 are the same vector
    v, rows = scan.top_k(x[:1], x, np.zeros(len(x), np.float32), 3)
    assert rows.tolist() == [[0, 4, 8]]
    assert v.tolist() == [[1.0, 1.0, 1.0]]


def test_index_falls_back_to_numpy_when_the_float_scan_fails(
    real,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    x, q = real
    scan = FloatScan.shared()
    assert scan is not None

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("onnxruntime refused")

    monkeypatch.setattr(scan, "top_k", broken)
    idx = VectorIndex(x.shape[1], screen=False, background=False)
    idx.load(np.arange(len(x)), x)
    with caplog.at_level(logging.WARNING, logger="synaptoroute_agents.index"):
        got = idx.search(q, 8)
    assert "using NumPy" in caplog.text
    assert_exact(got, true_top_k(q, x, np.arange(len(x)), 8))


def test_the_float_scan_models_are_valid_onnx() -> None:
    onnx = pytest.importorskip("onnx")
    for model in (float_scan_model(), matmul_model()):
        onnx.checker.check_model(onnx.load_from_string(model))


def test_fitted_head_logits_match_numpy(encoder) -> None:  # type: ignore[no-untyped-def]
    from synaptoroute_agents.fitting import _design_logits

    scan = FloatScan.shared()
    assert scan is not None
    rng = np.random.default_rng(1)
    X = encoder.embed([r["text"] for r in _rows("test")])
    W = rng.normal(0, 1, (X.shape[1] + 1, 11)).astype(np.float32)
    np.testing.assert_allclose(
        _design_logits(X, None, W, 2.0, scan.matmul), _design_logits(X, None, W, 2.0), rtol=1e-5, atol=1e-5
    )


def test_assembled_messages_equal_concatenated_fields() -> None:
    """The screen's model is assembled from parts (its rows copied once); the bytes are those of
    plain nested fields."""
    from synaptoroute_agents.index.onnxproto import Message, assemble, ld, vi

    rows = np.arange(-100, 100, dtype=np.int8).reshape(4, 50)
    scales = np.linspace(0, 1, 300, dtype=np.float32)  # long enough for a two-byte length
    parts = [
        vi(1, 7),
        Message(
            7, [ld(1, "node"), Message(5, [b"head", Message(9, [rows])]), Message(5, [Message(9, [scales])])]
        ),
        ld(8, "opset"),
    ]
    inner = ld(1, "node") + ld(5, b"head" + ld(9, rows.tobytes())) + ld(5, ld(9, scales.tobytes()))
    assert assemble(parts) == vi(1, 7) + ld(7, inner) + ld(8, "opset")


def test_a_lone_query_over_a_small_base_is_scanned_on_its_thread_like_the_session(real, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A single query over at most ONE_QUERY_ROWS rows (a small base, the delta buffer) is answered on
    the calling thread; its rows are the onnxruntime session's (best first, ties by the lower row,
    removed rows last), its scores the same float32 products to rounding, with duplicated rows
    (exact ties), removed rows and k larger than the rows."""
    from synaptoroute_agents.index import exact

    x, q = real
    rng = np.random.default_rng(4)
    rows = np.concatenate([x[:1500], x[rng.integers(0, 1500, 500)]])  # 500 exact duplicates
    ids = np.arange(len(rows)) * 3 + 1
    dead = np.zeros(len(rows), dtype=bool)
    dead[rng.integers(0, len(rows), 200)] = True
    session = FloatScan.shared()
    assert session is not None
    for n, k, mask in ((len(rows), 32, None), (len(rows), 32, dead), (40, 64, None), (40, 64, dead[:40])):
        for j in range(len(q)):
            s, i = exact.one_query_top_k(q[j : j + 1], rows[:n], ids[:n], mask, k)
            m = np.zeros(n, np.float32) if mask is None else np.where(mask, -np.inf, 0).astype(np.float32)
            ws, wr = session.top_k(q[j : j + 1], rows[:n], m, k)
            np.testing.assert_array_equal(i, ids[:n][wr])
            np.testing.assert_allclose(s, ws, rtol=0, atol=1e-6)
            assert s.dtype == np.float32 and s.shape == (1, min(k, n))
    # the index sends a lone query over a small base (and its delta) there, and a batch to the session
    calls: list[int] = []
    one = exact.one_query_top_k
    monkeypatch.setattr(exact, "one_query_top_k", lambda *a: calls.append(len(a[0])) or one(*a))
    idx = VectorIndex(x.shape[1], background=False)
    idx.load(ids[:2000], rows[:2000])
    idx.add([10**6], x[2000:2001])
    singles = [idx.search(q[j], 10) for j in range(len(q))]
    assert calls == [1, 1] * len(q)  # base and delta, one query each
    batch_s, batch_i = idx.search(q, 10)
    assert calls == [1, 1] * len(q)  # the batch went to the session
    np.testing.assert_array_equal(np.concatenate([i for _, i in singles]), batch_i)
    np.testing.assert_allclose(np.concatenate([s for s, _ in singles]), batch_s, rtol=0, atol=1e-6)
    assert exact.ONE_QUERY_ROWS == 4096
