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
    idx = VectorIndex(24, delta_limit=300, background=background)
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
