"""VectorIndex: exactness, removal, snapshots, compaction beside the live index."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from synaptoroute_agents import InvalidInputError, VectorIndex


def unit(rng: np.random.Generator, n: int, d: int = 24) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top1(q: np.ndarray, x: np.ndarray, ids: np.ndarray) -> np.ndarray:
    return ids[np.argmax(q @ x.T, axis=1)]


@pytest.mark.parametrize("background", [False, True])
def test_flat_search_is_exact_after_adds_removes_and_compaction(background: bool) -> None:
    rng = np.random.default_rng(1)
    x = unit(rng, 6000)
    ids = np.arange(10, 6010)
    # the exact float path (no first stage: random vectors are not what its codes are measured on)
    idx = VectorIndex(24, delta_limit=300, background=background, screen=False)
    idx.load(ids[:3000], x[:3000])
    for s in range(3000, 6000, 100):
        idx.add(ids[s : s + 100], x[s : s + 100])
    dead = ids[::4]
    assert idx.remove(dead) == len(dead)
    idx.wait_idle()
    live = np.setdiff1d(ids, dead)
    q = unit(rng, 300)
    scores, got = idx.search(q, 5)
    assert not np.isin(got, dead).any()
    pos = np.searchsorted(ids, live)
    np.testing.assert_array_equal(got[:, 0], exact_top1(q, x[pos], live))
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    assert len(idx) == len(live)


def test_adding_does_not_copy_the_base() -> None:
    rng = np.random.default_rng(2)
    idx = VectorIndex(24)
    idx.load(np.arange(5000), unit(rng, 5000))
    base = idx._snap.base
    idx.add([99999], unit(rng, 1))
    assert idx._snap.base is base  # the base index object is shared, not rebuilt
    assert idx.search(idx._snap.delta_vecs[:1], 1)[1][0, 0] == 99999


def test_removed_ids_never_come_back_and_cannot_be_readded() -> None:
    rng = np.random.default_rng(3)
    x = unit(rng, 50)
    idx = VectorIndex(24, background=False)
    idx.add(np.arange(50), x)
    idx.remove([7])
    _, got = idx.search(x[7:8], 50)
    assert 7 not in got
    with pytest.raises(InvalidInputError):
        idx.add([7], x[7:8])
    assert idx.remove([7, 12345]) == 0


def test_bad_shapes_and_duplicate_ids() -> None:
    idx = VectorIndex(8)
    with pytest.raises(InvalidInputError):
        idx.add([1, 2], np.zeros((3, 8), np.float32))
    with pytest.raises(InvalidInputError):
        idx.add([1, 1], np.ones((2, 8), np.float32))
    with pytest.raises(InvalidInputError):
        idx.search(np.ones((1, 7), np.float32), 1)
    with pytest.raises(InvalidInputError):
        VectorIndex(8, kind="annoy")  # type: ignore[arg-type]


def test_empty_index_returns_padding() -> None:
    scores, ids = VectorIndex(4).search(np.ones((2, 4), np.float32) / 2, 3)
    assert ids.shape == (2, 3) and (ids == -1).all() and np.isneginf(scores).all()


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_respect_removal_and_find_near_duplicates(kind: str) -> None:
    rng = np.random.default_rng(4)
    x = unit(rng, 20000, 32)
    idx = VectorIndex(32, kind=kind, background=False)  # type: ignore[arg-type]
    idx.load(np.arange(20000), x)
    idx.remove(np.arange(0, 20000, 2))
    q = x[1::2][:200] + 0.01 * unit(rng, 200, 32)
    _, got = idx.search(q / np.linalg.norm(q, axis=1, keepdims=True), 3)
    assert not np.isin(got, np.arange(0, 20000, 2)).any()
    assert (got[:, 0] == np.arange(1, 400, 2)).mean() > 0.9


def test_readers_never_see_torn_state_during_writes() -> None:
    rng = np.random.default_rng(5)
    x = unit(rng, 8000)
    idx = VectorIndex(24, delta_limit=200)
    idx.load(np.arange(2000), x[:2000])
    errors: list[BaseException] = []
    stop = threading.Event()
    removed: set[int] = set()

    def reader() -> None:
        q = unit(np.random.default_rng(6), 16)
        while not stop.is_set():
            try:
                s, i = idx.search(q, 8)
                assert (i >= -1).all() and np.isfinite(s[i >= 0]).all()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for s in range(2000, 8000, 50):
        idx.add(np.arange(s, s + 50), x[s : s + 50])
        gone = list(range(s - 2000, s - 1990))
        idx.remove(gone)
        removed.update(gone)
    stop.set()
    for t in threads:
        t.join()
    idx.wait_idle()
    assert not errors
    assert len(idx) == 8000 - len(removed)
    _, got = idx.search(x[:100], 1)
    assert not np.isin(got, list(removed)).any()


def test_a_saved_hnsw_graph_reloads_without_its_vectors_and_searches_the_same() -> None:
    import faiss

    rng = np.random.default_rng(11)
    x = unit(rng, 4000, 32)
    ids = np.arange(4000, dtype=np.int64) * 3 + 5
    saved = VectorIndex(32, kind="hnsw", background=False)
    saved.load(ids, x)
    blob = saved.serialize()
    assert blob is not None and blob.startswith(b"SRHNSWG1")
    # the graph and the ids only: the vectors (4000 x 32 float32 = 512 kB) come from the caller
    assert len(blob) < len(faiss.serialize_index(saved._snap.base)) - 4000 * 32 * 4 + 4096
    q = unit(rng, 200, 32)
    want = saved.search(q, 10)

    same = VectorIndex(32, kind="hnsw", background=False)
    assert same.load_serialized(blob, ids, x)
    got = same.search(q, 10)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)

    # the store changed since the save: rows removed, rows added, and another row order
    removed = ids[::20]  # few enough that the load does not compact at once
    fresh_ids = np.arange(10**6, 10**6 + 50, dtype=np.int64)
    fresh = unit(rng, 50, 32)
    keep = ~np.isin(ids, removed)
    now_ids = np.concatenate([ids[keep], fresh_ids])
    now_x = np.concatenate([x[keep], fresh])
    order = rng.permutation(len(now_ids))
    later = VectorIndex(32, kind="hnsw", background=False)
    assert later.load_serialized(blob, now_ids[order], now_x[order])
    assert len(later) == len(now_ids) and later.pending()
    _, got_ids = later.search(q, 10)
    assert not np.isin(got_ids, removed).any()
    scores, top = later.search(fresh, 1)
    np.testing.assert_array_equal(top[:, 0], fresh_ids)
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
    # a kept row is found with its own vector (the graph's rows were matched by id, not by order)
    s_keep, i_keep = later.search(x[keep][:100], 1)
    assert (i_keep[:, 0] == ids[keep][:100]).mean() > 0.95
    np.testing.assert_allclose(s_keep[i_keep[:, 0] == ids[keep][:100], 0], 1.0, atol=1e-5)
    later.compact()
    assert len(later) == len(now_ids) and not later.pending()
    np.testing.assert_array_equal(later.search(fresh, 1)[1][:, 0], fresh_ids)


def test_a_damaged_or_foreign_saved_graph_is_refused_and_changes_nothing() -> None:
    rng = np.random.default_rng(12)
    x = unit(rng, 500, 16)
    ids = np.arange(500, dtype=np.int64)
    idx = VectorIndex(16, kind="hnsw", background=False)
    idx.load(ids, x)
    blob = idx.serialize()
    assert blob is not None
    fresh = VectorIndex(16, kind="hnsw", background=False)
    assert not fresh.load_serialized(blob[: len(blob) // 2], ids, x)  # cut short
    assert not fresh.load_serialized(blob[:12], ids, x)  # not even a row count
    assert not fresh.load_serialized(blob[:8] + np.array([10**12], "<i8").tobytes() + blob[16:], ids, x)
    assert not VectorIndex(8, kind="hnsw").load_serialized(blob, ids, np.ascontiguousarray(x[:, :8]))
    assert not VectorIndex(16, kind="ivf").load_serialized(blob, ids, x)
    assert len(fresh) == 0 and fresh.search(x[:2], 1)[1].tolist() == [[-1], [-1]]
    # the whole-index format of earlier versions still loads
    import faiss

    old = bytes(faiss.serialize_index(idx._snap.base))
    assert fresh.load_serialized(old, ids, x)
    np.testing.assert_array_equal(fresh.search(x[:50], 1)[1][:, 0], ids[:50])


def test_a_load_adopts_the_rows_it_reserved_without_a_copy() -> None:
    rng = np.random.default_rng(13)
    x = unit(rng, 3000, 16)
    ids = np.arange(3000, dtype=np.int64) + 100
    flat = VectorIndex(16, background=False)
    rows = flat.reserve(3000, 16)
    rows[:] = x  # as a boot fills it from the store
    flat.load(ids, rows)
    base_rows = flat._snap.base_vectors()
    assert base_rows.ctypes.data == rows.ctypes.data  # the base's own storage: one copy in memory
    np.testing.assert_array_equal(flat.search(x[:64], 1)[1][:, 0], ids[:64])
    flat.remove(ids[:10])
    flat.compact()  # a compaction reads the adopted rows like any other base
    assert len(flat) == 2990 and flat.search(x[10:20], 1)[1][:, 0].tolist() == ids[10:20].tolist()

    # another array than the reserved one is copied, and the reservation is dropped; the array
    # it handed out stays valid memory (it keeps its storage alive) however long it is held
    other = VectorIndex(16, background=False)
    kept = other.reserve(3000, 16)
    kept[:] = 0.5
    other.load(ids, x)
    assert other._reserved is None and other._snap.base_vectors().ctypes.data != kept.ctypes.data
    assert float(kept.sum()) == 0.5 * 3000 * 16
    np.testing.assert_array_equal(other.search(x[:64], 1)[1][:, 0], ids[:64])
    with pytest.raises(InvalidInputError):
        other.reserve(10, 8)

    # an HNSW base loaded from its saved graph adopts the reserved rows too
    hnsw = VectorIndex(16, kind="hnsw", background=False)
    hnsw.load(ids, x)
    blob = hnsw.serialize()
    assert blob is not None
    again = VectorIndex(16, kind="hnsw", background=False)
    rows = again.reserve(3000, 16)
    rows[:] = x
    assert again.load_serialized(blob, ids, rows)
    assert again._snap.base_vectors().ctypes.data == rows.ctypes.data and again._reserved is None
    np.testing.assert_array_equal(again.search(x[:64], 5)[1], hnsw.search(x[:64], 5)[1])


def test_one_query_over_base_and_delta_merges_as_a_batch_does(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A lone query over a base and a delta buffer (ties across them, removed rows in both, fewer
    live rows than k) gets the batch's answer: same ids, same scores, same padding."""
    rng = np.random.default_rng(9)
    distinct = unit(rng, 300)
    x = np.concatenate([distinct, distinct[:100]])  # exact ties between base and delta rows
    ids = np.arange(len(x)) + 5
    idx = VectorIndex(24, background=False, delta_limit=10_000)  # a small base: scanned exactly
    idx.load(ids[:300], x[:300])
    idx.add(ids[300:], x[300:])
    idx.remove(ids[::7])
    q = np.concatenate([unit(rng, 60), x[:20]])
    import synaptoroute_agents.index.vector_index as vi

    merged: list[int] = []
    merge = vi._merge_one
    monkeypatch.setattr(vi, "_merge_one", lambda *a: merged.append(1) or merge(*a))
    for k in (1, 5, 40):
        batch_s, batch_i = idx.search(q, k)
        for j in range(len(q)):
            s, i = idx.search(q[j], k)
            np.testing.assert_array_equal(i[0], batch_i[j])
            # a lone query's small scans run on its thread: float32 products to rounding
            np.testing.assert_allclose(s[0], batch_s[j], rtol=0, atol=1e-6)
    assert len(merged) == 3 * len(q)  # every lone query took the plain-Python merge
    small = VectorIndex(24, background=False, delta_limit=10_000)
    small.load(ids[:3], x[:3])
    small.add(ids[300:302], x[300:302])
    small.remove([ids[0], ids[300]])
    s, i = small.search(x[0], 6)
    assert sorted(i[0, :3].tolist()) == sorted([ids[301], ids[1], ids[2]]) and i[0, 3:].tolist() == [-1] * 3
    assert np.isneginf(s[0, 3:]).all() and np.isfinite(s[0, :3]).all() and s.dtype == np.float32


def test_the_one_query_merge_equals_the_stable_sort_it_replaces() -> None:
    from synaptoroute_agents.index.vector_index import _merge_one

    rng = np.random.default_rng(3)
    for _ in range(500):
        parts_s, parts_i = [], []
        for _part in range(2):
            m = int(rng.integers(0, 8))
            sc = np.sort(rng.choice([0.1, 0.2, 0.5, 0.7, -np.inf], m))[::-1].astype(np.float32)
            ii = rng.integers(0, 50, m)
            ii[np.isneginf(sc) & (rng.random(m) < 0.5)] = -1
            parts_s.append(sc[None, :])
            parts_i.append(ii[None, :].astype(np.int64))
        k = int(rng.integers(1, 12))
        got = _merge_one(parts_s, parts_i, k)
        assert got is not None
        s = np.concatenate(parts_s, axis=1)
        i = np.concatenate(parts_i, axis=1)
        i = np.where(i < 0, -1, i)
        s = np.where(i < 0, -np.inf, s).astype(np.float32)
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
        s = np.take_along_axis(s, order, axis=1)
        i = np.where(np.isfinite(s), np.take_along_axis(i, order, axis=1), -1)
        pad = k - s.shape[1]
        s = np.pad(s, ((0, 0), (0, pad)), constant_values=-np.inf)
        i = np.pad(i, ((0, 0), (0, pad)), constant_values=-1)
        np.testing.assert_array_equal(got[0], s)
        np.testing.assert_array_equal(got[1], i)
    # a part that is not best first is left to the general path
    assert _merge_one([np.array([[0.1, 0.5]], np.float32)] * 2, [np.array([[1, 2]])] * 2, 2) is None
