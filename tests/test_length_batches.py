"""Encoders split large batches by text length: same rows, same order, less padding."""

from __future__ import annotations

import numpy as np

from synaptoroute_agents import BundledEncoder


def test_length_sorted_batches_return_the_same_rows_in_order(encoder: BundledEncoder) -> None:
    rng = np.random.default_rng(3)
    words = [
        "card",
        "limit",
        "travel",
        "alert",
        "balance",
        "transfer",
        "pin",
        "lost",
        "stolen",
        "freeze",
        "account",
    ]
    texts = [" ".join(rng.choice(words, int(rng.integers(1, 40)))) for _ in range(90)]
    assert len(texts) > encoder.length_batch
    batched = encoder.embed(texts)
    one_by_one = np.concatenate([encoder.embed([t]) for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert batched.shape == (90, encoder.dim)
    # duplicates of one text land in different slices and still agree
    dup = encoder.embed(texts[:40] + [texts[0]] * 5)
    np.testing.assert_allclose(dup[-5:], np.repeat(dup[:1], 5, axis=0), atol=1e-6)


def test_concurrent_slices_match_sequential_slices(encoder: BundledEncoder) -> None:
    texts = [f"please move {i} dollars {'to savings ' * (i % 7)}now" for i in range(100)]
    concurrent = encoder.embed(texts)
    assert encoder.parallel_slices > 1
    encoder.parallel_slices = 1
    try:
        sequential = encoder.embed(texts)
    finally:
        del encoder.parallel_slices  # back to the class default
    np.testing.assert_allclose(concurrent, sequential, atol=1e-6)
