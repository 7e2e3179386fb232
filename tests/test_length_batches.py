"""Encoders split large batches by length: same rows, same order, less padding."""

from __future__ import annotations

import numpy as np

from synaptoroute_agents import BundledEncoder
from synaptoroute_agents.encoders.bundled import token_slices


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
    _, tok = encoder._session()
    lengths = np.array([sum(e.attention_mask) for e in tok.encode_batch(texts)])
    assert len(token_slices(lengths, encoder.token_budget)) > 10  # many model calls
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


def test_head_features_in_slices_match_one_by_one(encoder: BundledEncoder) -> None:
    texts = [f"how do I {'really ' * (i % 9)}reset my pin number {i}" for i in range(40)]
    vecs, feats = encoder.embed_with_features(texts)
    alone = [encoder.embed_with_features([t]) for t in texts]
    np.testing.assert_allclose(vecs, np.concatenate([a[0] for a in alone]), atol=1e-5)
    np.testing.assert_allclose(feats, np.concatenate([a[1] for a in alone]), atol=1e-5)
    np.testing.assert_allclose(vecs, encoder.embed(texts), atol=1e-6)


def test_token_slices_fill_the_budget_in_length_order() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 60, 500)
    lengths[7] = 300  # longer than the budget: a call of its own
    parts = token_slices(lengths, 128)
    rows = np.concatenate(parts)
    assert sorted(rows.tolist()) == list(range(500))  # every row exactly once
    assert np.all(np.diff(lengths[rows]) >= 0)  # shortest first
    for p in parts:
        assert len(p) * lengths[p].max() <= 128 or len(p) == 1
    assert [7] in [p.tolist() for p in parts]
    # greedy: a slice could not have taken the next row
    for p, nxt in zip(parts, parts[1:], strict=False):
        assert (len(p) + 1) * lengths[nxt[0]] > 128
    assert token_slices(np.array([5]), 128)[0].tolist() == [0]


def test_one_text_is_tokenized_as_in_a_batch_truncation_included(encoder: BundledEncoder) -> None:
    """A single text takes the tokenizer's one-text call: same ids, mask and truncation (256 tokens)
    as in a batch, so the same row."""
    _, tok = encoder._session()
    long = "please freeze my card because " * 120  # far past the 256-token limit
    for text in ("hi", "what is my balance", long):
        one, batch = tok.encode(text), tok.encode_batch([text])[0]
        assert one.ids == batch.ids and one.attention_mask == batch.attention_mask
    assert len(tok.encode(long).ids) == 256
    alone = encoder.embed([long])
    in_batch = encoder.embed([long, "what is my balance"])[:1]
    np.testing.assert_allclose(alone, in_batch, atol=1e-5)
