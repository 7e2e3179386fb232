"""The product-quantized first stage of a flat index: exact scores, top-1 as exact search on real embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from synaptoroute_agents import Route, SemanticRouter, VectorIndex
from synaptoroute_agents.errors import InvalidInputError
from synaptoroute_agents.index.pq_screen import PqScreen, build_pq_screen

DATA = Path(__file__).parent / "fixtures" / "clinc10"


def _rows(name: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in (DATA / f"{name}.jsonl").read_text().splitlines() if line]


@pytest.fixture(scope="module")
def real(encoder) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """The bundled model's embeddings of the fixture's training utterances among 6,000 rows (the
    rest: other real embeddings moved a little, like the scale benchmark's derived vectors) and of
    its 190 test and validation queries."""
    base = encoder.embed([r["text"] for r in _rows("train")])
    queries = encoder.embed([r["text"] for r in _rows("test") + _rows("val")])
    rng = np.random.default_rng(5)
    picks = base[rng.integers(0, len(base), 6000 - len(base))]
    noisy = picks + rng.normal(0, 0.05, picks.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    return np.concatenate([base, noisy]).astype(np.float32), queries


def test_top1_is_that_of_exact_search_and_scores_are_exact(real) -> None:  # type: ignore[no-untyped-def]
    x, q = real
    ids = np.arange(7, 7 + len(x))
    idx = VectorIndex(x.shape[1], screen=True, background=False)  # stage="pq" is the default
    idx.load(ids, x)
    s, i = idx.search(q, 8)
    assert idx.screen_info()["stage"] == "PqScreen"
    assert idx.screen_info()["candidates"] > 0
    exact = q.astype(np.float64) @ x.astype(np.float64).T
    # the best score found is the best score there is, for every query
    np.testing.assert_allclose(s[:, 0], exact.max(axis=1), rtol=0, atol=2e-6)
    # every score returned is the float score of the row returned (re-scored, not approximate)
    np.testing.assert_allclose(s, np.take_along_axis(exact, i - 7, axis=1), rtol=0, atol=2e-6)
    assert (np.diff(s, axis=1) <= 0).all()
    # the re-scoring reads the base's own Faiss rows: no second copy of the vectors
    screen = idx._screen[2]
    assert isinstance(screen, PqScreen) and screen._flat is idx._snap.base_inner


def test_removed_rows_never_come_back_and_the_delta_is_searched(real) -> None:  # type: ignore[no-untyped-def]
    x, q = real
    n = len(x) - 300
    ids = np.arange(len(x)) * 2 + 1
    idx = VectorIndex(x.shape[1], screen=True, background=False, delta_limit=10_000)
    idx.load(ids[:n], x[:n])
    idx.add(ids[n:], x[n:])
    _, best = idx.search(q[:50], 2)
    dead = np.unique(best[best >= 0])
    idx.remove(dead)
    s, got = idx.search(q, 4)
    assert not np.isin(got, dead).any()
    live = ~np.isin(ids, dead)
    exact = q.astype(np.float64) @ x[live].astype(np.float64).T
    np.testing.assert_allclose(s[:, 0], exact.max(axis=1), rtol=0, atol=2e-6)
    assert idx.screen_info()["stage"] == "PqScreen"


def test_router_decisions_equal_those_of_exact_search(encoder) -> None:  # type: ignore[no-untyped-def]
    train = _rows("train")
    by_route: dict[str, list[str]] = {}
    for r in train:
        by_route.setdefault(r["label"], []).append(r["text"])
    queries = [r["text"] for r in _rows("test") + _rows("val")]
    picks = {}
    for stage in ("pq", "exact"):
        opts = {"screen": stage == "pq", "background": False}
        with SemanticRouter(encoder, threshold=0.0, index_options=opts) as router:
            router.add_many([Route(n, tuple(u)) for n, u in by_route.items()])
            router.index.compact()
            matches = router.route_batch(queries)
            single = [router.route(t) for t in queries[:20]]
            info = router.index.screen_info()
        picks[stage] = [(m.name, m.score) for m in matches]
        assert [m.name for m in single] == [m.name for m in matches[:20]]
        assert info["enabled"] == (stage == "pq")
    assert [p[0] for p in picks["pq"]] == [p[0] for p in picks["exact"]]
    np.testing.assert_allclose([p[1] for p in picks["pq"]], [p[1] for p in picks["exact"]], atol=1e-5)


def test_small_or_odd_inputs() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    screen = PqScreen(x)
    # as many candidates as half the rows: it scans in float32, exactly
    s, r = screen.search(x[:3], 5, None)
    assert (r[:, 0] == np.arange(3)).all()
    dead = np.zeros(len(x), dtype=bool)
    dead[:3] = True
    s, r = screen.search(x[:3], 5, dead)
    assert not np.isin(r, np.arange(3)).any()
    with pytest.raises(ValueError):
        PqScreen(np.zeros((10, 6), dtype=np.float32))  # dimension not a multiple of 4
    assert build_pq_screen(np.zeros((10, 6), dtype=np.float32)) is None
    with pytest.raises(InvalidInputError):
        VectorIndex(16, stage="binary")  # type: ignore[arg-type]


def test_a_single_query_runs_on_one_thread_with_the_same_answer(real) -> None:  # type: ignore[no-untyped-def]
    """One query at a time goes through Faiss on the calling thread alone (no OpenMP thread to wake
    after an encoder call); its answer is the batch's, and the thread's own OpenMP count is restored,
    also when the search fails."""
    import faiss

    x, q = real
    screen = PqScreen(x)
    batch_s, batch_r = screen.search(q, 8, None)
    seen: list[int] = []
    inner = screen._refine

    class Spy:
        def search(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(faiss.omp_get_max_threads())
            return inner.search(*args, **kwargs)

    screen._refine = Spy()
    before = faiss.omp_get_max_threads()
    for j in range(len(q)):
        s, r = screen.search(q[j : j + 1], 8, None)
        np.testing.assert_array_equal(r[0], batch_r[j])
        np.testing.assert_allclose(s[0], batch_s[j], rtol=0, atol=1e-6)
    screen.search(q[:4], 8, None)
    assert seen[: len(q)] == [1] * len(q)
    assert seen[-1] == before  # a batch keeps the thread's count
    assert faiss.omp_get_max_threads() == before

    class Broken:
        def search(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise RuntimeError("faiss failed")

    screen._refine = Broken()
    with pytest.raises(RuntimeError):
        screen.search(q[:1], 8, None)
    assert faiss.omp_get_max_threads() == before


def test_faiss_order_is_kept_only_where_the_full_sort_would_not_move_it(real, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A query whose Faiss answer is already best first (ties by the lower row, no empty slot)
    skips the re-sort; every answer equals the re-sorted one, on real embeddings and on rows full
    of exact ties (duplicated utterances), one query at a time and in batches."""
    import synaptoroute_agents.index.pq_screen as pq

    x, q = real
    rng = np.random.default_rng(11)
    dup = x[rng.integers(0, 200, 5000)]  # 5,000 rows, 200 distinct: every score is tied
    kept: list[bool] = []
    real_check = pq._in_final_order

    def spy(scores: np.ndarray, rows: np.ndarray) -> bool:
        kept.append(real_check(scores, rows))
        return kept[-1]

    for rows, k in ((x, 32), (dup, 32), (x[:700], 32), (x, 1)):
        screen = PqScreen(rows)
        monkeypatch.setattr(pq, "_in_final_order", spy)
        fast = [screen.search(q[j : j + 1], k, None) for j in range(len(q))] + [screen.search(q, k, None)]
        monkeypatch.setattr(pq, "_in_final_order", lambda s, r: False)
        full = [screen.search(q[j : j + 1], k, None) for j in range(len(q))] + [screen.search(q, k, None)]
        for (fs, fr), (ss, sr) in zip(fast, full, strict=True):
            np.testing.assert_array_equal(fr, sr)
            np.testing.assert_array_equal(fs, ss)
            assert fs.dtype == np.float32 and fr.dtype == np.int64
        if rows is dup:
            assert kept == [False] * (len(q) + 1)  # ties everywhere: always re-sorted
        else:
            assert sum(kept) > len(q) // 2  # real embeddings: most queries keep Faiss's order
        kept.clear()


def test_the_default_index_takes_the_first_stage_from_4096_rows_with_exact_top1(real) -> None:  # type: ignore[no-untyped-def]
    """The tier where the default flat index switches to the product-quantized stage (if it is
    faster here), and, at a base of that size, each query on its own finds the exact best row."""
    x, q = real
    idx = VectorIndex(x.shape[1], background=False)
    assert idx.screen_min == 4096
    inner = object.__new__(__import__("faiss").IndexFlatIP)
    assert not idx._wants_screen(inner, 4095)
    assert idx._wants_screen(inner, 4096)
    ids = np.arange(len(x)) + 3
    forced = VectorIndex(x.shape[1], screen=True, background=False)
    forced.load(ids, x)
    forced.prepare()
    assert forced.screen_info()["stage"] == "PqScreen"
    exact = q @ x.T
    for j in range(len(q)):
        s, i = forced.search(q[j], 32)
        assert i[0, 0] - 3 == int(np.argmax(exact[j]))
        np.testing.assert_allclose(s[0, 0], exact[j].max(), rtol=0, atol=2e-6)


def test_a_lone_query_maps_rows_to_ids_as_a_batch_does(real) -> None:  # type: ignore[no-untyped-def]
    """A lone query whose slots are all filled takes its ids with one gather; with removed rows and
    with empty slots (k above the live rows) it gives the ids the batch gives."""
    x, q = real
    ids = np.arange(len(x), dtype=np.int64) * 3 + 11
    idx = VectorIndex(x.shape[1], screen=True, background=False)
    idx.load(ids, x)
    idx.remove(ids[::7])
    live = len(x) - len(ids[::7])
    bs, bi = idx.search(q[:20], 8)
    assert idx.screen_info()["stage"] == "PqScreen"
    for j in range(20):
        s, i = idx.search(q[j : j + 1], 8)
        assert i.dtype == np.int64
        np.testing.assert_array_equal(i[0], bi[j])
        np.testing.assert_allclose(s[0], bs[j], rtol=0, atol=1e-6)
    _, bi = idx.search(q[:3], len(x))
    for j in range(3):
        _, i = idx.search(q[j : j + 1], len(x))
        assert (i[0, live:] == -1).all() and (i[0, :live] >= 0).all()
        assert set(i[0].tolist()) == set(bi[j].tolist())
        assert not np.isin(i[0], ids[::7]).any()
