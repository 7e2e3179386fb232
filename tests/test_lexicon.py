"""Lexical features of the fitted head (synaptoroute_agents.fitting.lexicon) and how fit chooses them."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from synaptoroute_agents import SemanticRouter
from synaptoroute_agents.fitting import FittedPolicy, fit_policy
from synaptoroute_agents.fitting.lexicon import Lexicon

TEXTS = [
    "where is my new card",
    "my card has not arrived yet",
    "how long does card delivery take",
    "top up my account with a transfer",
    "the top-up did not go through",
    "why was my top up declined",
]


def test_rows_have_unit_norm_and_unknown_words_give_a_zero_row() -> None:
    lex = Lexicon.fit(TEXTS)
    F = lex.transform(["my card", "zzzz qqqq", "", "top-up declined"])
    norms = np.sqrt(np.asarray(F.multiply(F).sum(axis=1))).ravel()
    assert norms[0] == pytest.approx(1.0, abs=1e-5)
    assert norms[1] == 0.0 and norms[2] == 0.0  # nothing known: no signal, no error
    assert norms[3] == pytest.approx(1.0, abs=1e-5)
    assert F.shape == (4, lex.dim) and F.dtype == np.float32


def test_unknown_words_add_nothing_and_odd_text_does_not_break_it() -> None:
    lex = Lexicon.fit(TEXTS)
    F = lex.transform(["card delivery", "crad delivery", "top up", "\u202eمرحبا 🙂 \x00\ufeff"]).toarray()
    assert float(F[0] @ F[1]) > 0.3  # the typo drops one word, the other still counts
    assert float(F[0] @ F[2]) == 0.0
    assert np.isfinite(F).all() and not F[3].any()


def test_vocabulary_is_deterministic_and_capped() -> None:
    a = Lexicon.fit(TEXTS, max_terms=10)
    b = Lexicon.fit(list(reversed(TEXTS)), max_terms=10)
    assert a.terms == b.terms and all(len(t) <= 10 for t in a.terms)
    # large sets drop terms seen once
    many = [f"word{i} common" for i in range(1200)]
    lex = Lexicon.fit(many)
    assert "common" in lex.terms[0] and "word7" not in lex.terms[0]


def _keyword_task(n_per: int, seed: int) -> tuple[np.ndarray, list[str], list[str]]:
    """Labels decided by one keyword in the text; the 'embeddings' are pure noise."""
    rng = np.random.default_rng(seed)
    keys = ["invoice", "password", "shipping", "refund"]
    filler = ["please", "help", "me", "with", "the", "my", "now", "today", "thanks", "hi"]
    texts, labels = [], []
    for i, key in enumerate(keys):
        for _ in range(n_per):
            words = list(rng.choice(filler, size=4)) + [key]
            rng.shuffle(words)
            texts.append(" ".join(words))
            labels.append(f"r{i}")
    X = rng.standard_normal((len(texts), 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, texts, labels


def test_fit_picks_the_lexical_head_when_words_decide() -> None:
    X, texts, labels = _keyword_task(25, seed=0)
    Xq, tq, yq = _keyword_task(10, seed=1)
    pol = fit_policy(X, labels, texts=texts)
    assert pol.lexicon is not None and pol.settings["lexical_terms"] > 0
    hp = pol.head_probs(Xq, tq)
    acc = float((np.array(pol.routes)[hp.argmax(axis=1)] == np.array(yq)).mean())
    assert acc >= 0.95
    # without the texts the same head only has noise to go on
    blind = pol.head_probs(Xq)
    assert float((np.array(pol.routes)[blind.argmax(axis=1)] == np.array(yq)).mean()) < 0.6
    # and it survives the store's byte format
    again = FittedPolicy.from_bytes(pol.to_bytes())
    np.testing.assert_allclose(again.head_probs(Xq, tq), hp, rtol=1e-6)
    assert again.lexicon is not None and again.lexicon.terms == pol.lexicon.terms
    # opting out fits on the embeddings alone
    assert fit_policy(X, labels, texts=texts, lexical=False).lexicon is None


def _noisy_clusters(n_per: int, seed: int) -> tuple[np.ndarray, list[str], list[str]]:
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    X = np.repeat(centers, n_per, axis=0) + 0.9 * rng.standard_normal((3 * n_per, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    labels = [f"r{i // n_per}" for i in range(3 * n_per)]
    pool = [f"w{j}" for j in range(30)]
    texts = [" ".join(rng.choice(pool, size=3)) for _ in range(3 * n_per)]  # unrelated to the labels
    return X, texts, labels


def test_words_unrelated_to_the_routes_do_not_hurt() -> None:
    X, texts, labels = _noisy_clusters(40, seed=3)
    Xq, tq, yq = _noisy_clusters(200, seed=4)
    with_words = fit_policy(X, labels, texts=texts)
    without = fit_policy(X, labels)
    acc = with_words.settings["held_out_head_accuracy"]
    assert acc["lexical"] <= acc["embedding"] + 1e-9  # no signal: never better on held-out data

    def accuracy(pol: FittedPolicy, texts_q: list[str] | None) -> float:
        pred = np.array(pol.routes)[pol.head_probs(Xq, texts_q).argmax(axis=1)]
        return float((pred == np.array(yq)).mean())

    assert accuracy(with_words, tq) >= accuracy(without, None) - 0.03


def test_a_policy_stored_before_lexical_features_still_loads() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 8)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    pol = fit_policy(X, [f"r{i % 2}" for i in range(40)])
    with np.load(io.BytesIO(pol.to_bytes())) as z:
        header = json.loads(bytes(z["header"]).decode())
        weights = np.array(z["weights"])
    header["version"] = 1
    header.pop("scale")
    buf = io.BytesIO()
    np.savez(buf, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), weights=weights)
    old = FittedPolicy.from_bytes(buf.getvalue())
    assert old.lexicon is None and old.scale == 1.0
    np.testing.assert_allclose(old.head_probs(X[:3]), pol.head_probs(X[:3]), rtol=1e-6)


def test_router_passes_query_texts_to_a_lexical_head(encoder) -> None:
    # Two routes whose examples embed alike but differ by one word.
    a = [
        f"please {v} the invoice for order {i}"
        for i, v in enumerate(["send", "email", "mail", "forward"] * 6)
    ]
    b = [
        f"please {v} the receipt for order {i}"
        for i, v in enumerate(["send", "email", "mail", "forward"] * 6)
    ]
    texts, labels = a + b, ["invoices"] * len(a) + ["receipts"] * len(b)
    with SemanticRouter(encoder=encoder) as router:
        router.fit(texts, labels, create_routes=True)
        pol = router.policy
        assert isinstance(pol, FittedPolicy)
        queries = ["could you mail me the receipt for order 99", "forward the invoice for order 123"]
        got = [m.name for m in router.route_batch(queries)]
        assert got == ["receipts", "invoices"]
        if pol.lexicon is not None:  # the router hands the texts over: same as deciding with them
            with_texts = router.decide(router.embed(queries), texts=queries)
            assert [m.name for m in with_texts] == got
        with pytest.raises(Exception, match="one entry per query"):
            router.decide(router.embed(queries), texts=queries[:1])


def test_route_names_read_as_words_become_examples() -> None:
    from synaptoroute_agents import Route
    from synaptoroute_agents.router import _name_examples

    got = _name_examples(
        [
            Route("card_arrival", ["x"]),
            Route("verifyTopUp", ["y"], description="Check that a top-up went through."),
            Route("r1", ["z"]),
        ]
    )
    assert got == [
        ("card arrival", "card_arrival"),
        ("verify top up", "verifyTopUp"),
        ("Check that a top-up went through.", "verifyTopUp"),
    ]
    # a word every name shares says nothing; what is left of these names is a number
    assert _name_examples([Route("intent_17", ["a"]), Route("intent_18", ["b"])]) == []


def test_fit_learns_from_route_names(encoder) -> None:
    texts = ["it still has not come", "any news on it?", "I cannot get in", "locked out again"]
    labels = ["parcel_tracking", "parcel_tracking", "password_reset", "password_reset"]
    with SemanticRouter(encoder=encoder) as router:
        summary = router.fit(texts, labels, create_routes=True)
        assert summary.n_examples == 4  # the user's examples; names are extra
        assert router.route("track my parcel").name == "parcel_tracking"
        assert router.route("reset my password").name == "password_reset"
