"""encoder="cascade": the static tier, its gate, and what reaches the transformer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from synaptoroute_agents import BundledEncoder, Route, SemanticRouter
from synaptoroute_agents.encoders.base import TieredEncoder
from synaptoroute_agents.encoders.cascade import CascadeEncoder
from synaptoroute_agents.encoders.registry import resolve_encoder
from synaptoroute_agents.encoders.static import StaticEncoder
from synaptoroute_agents.errors import InvalidInputError
from synaptoroute_agents.router.cascade import DEFAULT_GATE, GATE_KEY, Gate, choose_gate

FIXTURE = Path(__file__).parent / "fixtures" / "clinc10"


class CountingTransformer:
    """The bundled model, counting the texts it embeds (with head features, like the model)."""

    def __init__(self, inner: BundledEncoder) -> None:
        self.inner = inner
        self.texts = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def head_features(self) -> str | None:
        return self.inner.head_features

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.embed(texts)

    def embed_with_features(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        self.texts += len(texts)
        return self.inner.embed_with_features(texts)


def read(split: str) -> tuple[list[str], list[str]]:
    rows = [json.loads(x) for x in (FIXTURE / f"{split}.jsonl").read_text().splitlines() if x.strip()]
    return [r["text"] for r in rows], [r["label"] for r in rows]


ROUTES = [
    Route("weather", ("what's the weather like", "will it rain tomorrow", "is it sunny outside")),
    Route("billing", ("show my invoice", "i want a refund", "why was my card charged twice")),
    Route("music", ("play some jazz", "put on my workout playlist", "skip this song")),
]


@pytest.fixture
def static() -> StaticEncoder:
    return StaticEncoder()


def test_static_rows_are_unit_and_texts_without_tokens_are_zero(static: StaticEncoder) -> None:
    out = static.embed(["will it rain tomorrow", "WILL IT RAIN TOMORROW", "", "play jazz"])
    assert out.shape == (4, 128) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out[[0, 1, 3]], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)  # the tokenizer lower-cases
    assert not out[2].any()
    assert static.embed([]).shape == (0, 128)
    # related texts are closer than unrelated ones
    a, b, c = static.embed(["will it rain tomorrow", "is it going to rain today", "refund my order"])
    assert a @ b > a @ c + 0.1


def test_a_large_batch_equals_its_texts_one_by_one(static: StaticEncoder) -> None:
    # several chunks, texts without tokens at a chunk's edges and a chunk with no tokens at all
    texts = [f"book a table for {i} at the place on {i % 7} street" for i in range(700)]
    for i in (0, 255, 256, 511, 699):
        texts[i] = ""
    texts[300:600] = [""] * 300
    batch = static.embed(texts)
    one = np.vstack([static.embed([t]) for t in texts])
    np.testing.assert_allclose(batch, one, atol=1e-5)
    assert not batch[[0, 255, 256, 400, 699]].any() and batch[1].any() and batch[257].any()


def test_cached_word_ids_equal_the_tokenizer_on_every_kind_of_text(static: StaticEncoder) -> None:
    texts = [
        "Will it RAIN tomorrow in São Paulo?",
        "hello, world!! (test) don't-stop",
        "tab\tand\nnew line",
        "a\x1cb",  # a control character joins the words for the tokenizer
        "日本語 text",
        "",
        "   ",
        "word " * 400,  # truncated at 256 tokens
        "unbelievably antidisestablishmentarianism",
    ]
    expected = [e.ids for e in static._tok.encode_batch(texts, add_special_tokens=False)]
    for _ in range(2):  # the words are new, then cached
        assert static.token_ids(texts) == expected
    assert static.token_ids(texts[:1]) == expected[:1]
    static._words.clear()
    np.testing.assert_allclose(static.embed(texts), static.embed(texts), atol=0)


def test_the_registry_builds_a_cascade_over_any_named_encoder(encoder: BundledEncoder) -> None:
    enc = resolve_encoder("cascade")
    assert isinstance(enc, TieredEncoder) and isinstance(enc, CascadeEncoder)
    assert enc.model_id == encoder.model_id and enc.dim == encoder.dim  # the store keeps the transformer's
    assert enc.head_features == encoder.head_features
    with pytest.raises(InvalidInputError):
        resolve_encoder("cascade:cascade")
    with pytest.raises(InvalidInputError):
        resolve_encoder("cascade:nonexistent")
    assert not isinstance(encoder, TieredEncoder)  # other encoders do not get the tier


def test_a_confident_query_skips_the_transformer_and_an_unsure_one_reaches_it(
    encoder: BundledEncoder,
) -> None:
    model = CountingTransformer(encoder)
    with SemanticRouter(CascadeEncoder(model)) as router:
        router.add_many(ROUTES)
        before = model.texts
        m = router.route("will it rain tomorrow?")
        assert (m.name, m.tier, m.reason) == ("weather", "static", "matched")
        assert model.texts == before  # the transformer did not run
        assert m.to_dict()["tier"] == "static"
        unsure = "could you tell me a joke about cats"
        assert router._cascade is not None
        best = router._cascade.encoder.static_embed([unsure])[0]
        assert (
            float(np.max(router._cascade.encoder.static_embed(["play some jazz"]) @ best))
            < DEFAULT_GATE.floor
        )
        m = router.route(unsure)
        assert m.tier == "transformer" and model.texts == before + 1  # it ran, for this query only
        # a batch: each query decided by one tier, in order, the transformer seeing only the unsure
        got = router.route_batch(["skip this song", unsure, "show my invoice"])
        assert [x.tier for x in got] == ["static", "transformer", "static"]
        assert [x.name for x in got][::2] == ["music", "billing"]
        assert model.texts == before + 2
        assert router.stats()["cascade"]["static"] == 3


def test_the_static_tier_defers_routes_with_their_own_threshold(encoder: BundledEncoder) -> None:
    with SemanticRouter(CascadeEncoder(encoder)) as router:
        router.add_many([*ROUTES[:2], Route("music", ROUTES[2].utterances, threshold=0.3)])
        assert router.route("skip this song").tier == "transformer"  # its threshold is the transformer's
        assert router.route("will it rain tomorrow").tier == "static"


def test_mutations_reach_the_static_index(encoder: BundledEncoder) -> None:
    with SemanticRouter(CascadeEncoder(encoder)) as router:
        router.add_many(ROUTES)
        assert router.route("skip this song").name == "music"
        router.delete("music")
        m = router.route("skip this song")
        assert m.name != "music" and all(c.name != "music" for c in m.candidates)
        router.add(Route("podcasts", ("skip this song", "play the next episode")))
        m = router.route("skip this song")
        assert (m.name, m.tier) == ("podcasts", "static")


def test_boot_from_a_store_does_not_run_the_transformer(encoder: BundledEncoder, tmp_path: Path) -> None:
    db = tmp_path / "routes.db"
    with SemanticRouter(encoder, db) as plain:  # a store made without the cascade
        plain.add_many(ROUTES)
    model = CountingTransformer(encoder)
    with SemanticRouter(CascadeEncoder(model), db) as router:
        assert model.texts == 0  # nothing re-embedded through the transformer
        m = router.route("put on my workout playlist please")
        assert (m.name, m.tier) == ("music", "static") and model.texts == 0
        assert router.verify() == []


class CountingStatic(StaticEncoder):
    """The shipped static table, counting the texts it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        return super().embed(texts)


def test_a_boot_reuses_the_static_rows_kept_in_the_store(
    encoder: BundledEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synaptoroute_agents.router import cascade

    monkeypatch.setattr(cascade, "ROWS_MIN", 5)  # the real floor is 20,000 utterances
    db = tmp_path / "routes.db"
    with SemanticRouter(encoder, db) as plain:  # a store made without the cascade
        plain.add_many(ROUTES)
    first = CountingStatic()
    with SemanticRouter(CascadeEncoder(encoder, first), db) as router:
        assert first.texts == 9 and router._cascade is not None and router._cascade.rows_reused == 0
        want = router.route_batch(["put on my workout playlist please", "is it sunny today"])
    # the first boot computed every row and kept them (written in the background, awaited by close)
    assert first.texts == 9 + 2  # and the two queries
    again = CountingStatic()
    with SemanticRouter(CascadeEncoder(encoder, again), db) as router:
        assert again.texts == 0 and router._cascade is not None and router._cascade.rows_reused == 9
        assert router.stats()["cascade"]["rows_reused"] == 9
        router.add(Route("podcasts", ("play the next episode",)))  # one row more than the cache
    third = CountingStatic()
    with SemanticRouter(CascadeEncoder(encoder, third), db) as router:
        assert third.texts == 1  # only the utterance the cache does not hold
        got = router.route_batch(["put on my workout playlist please", "is it sunny today"])
        # the same static scores as rows computed from the texts
        assert [(m.name, m.tier, m.score) for m in got] == [(m.name, m.tier, m.score) for m in want]
    assert third.texts == 1 + 2  # and the two queries


def test_a_damaged_static_rows_cache_is_computed_again(
    encoder: BundledEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synaptoroute_agents.router import cascade

    monkeypatch.setattr(cascade, "ROWS_MIN", 5)
    db = tmp_path / "routes.db"
    with SemanticRouter(encoder, db) as plain:
        plain.add_many(ROUTES)
        plain.store.save_cache_blob(cascade.ROWS_KEY, b"SRSTATIC broken", StaticEncoder().model_id, 1)
    static = CountingStatic()
    with SemanticRouter(CascadeEncoder(encoder, static), db) as router:
        assert static.texts == 9 and router.route("skip this song").name == "music"


def test_choose_gate_keeps_out_of_scope_queries_and_the_accuracy_budget() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    p1 = rng.uniform(0.3, 1.0, n)
    lead = p1 * rng.uniform(0.2, 1.0, n)
    # unsure rows cost accuracy: the static route is wrong where the transformer is right
    loss = np.where(p1 + lead < 1.0, 1.0, 0.0)
    loss[::50] = -1.0  # a few rows the static head gets right and the transformer wrong
    eligible = np.ones(n, bool)
    eligible[1::7] = False  # the best class is the reject class: never answered
    forbidden = np.zeros(n, bool)
    forbidden[:20] = True
    p1[:20], lead[:20] = 0.9, 0.2  # out-of-scope rows that look confident but lead little
    loss[:20] = 0.0
    cos = np.ones(n)
    gate = choose_gate(p1, lead, eligible, cos, loss, forbidden, budget=0.003)
    assert gate is not None
    passes = eligible & (p1 >= gate.floor) & (lead >= gate.margin)
    assert not (passes & forbidden).any()
    assert loss[passes].sum() <= 0.003 * (~forbidden).sum()
    assert passes[~forbidden].mean() > 0.2
    # simulated unseen-route rows: confident and leading, told apart by the in-scope cosine only
    sim = np.zeros(n, bool)
    sim[20:220] = True
    p1[20:220], lead[20:220], loss[20:220] = 0.99, 0.9, 0.0
    cos[20:220] = np.linspace(0.5, 0.9, 200)
    cos[220:] = rng.uniform(0.6, 1.0, n - 220)
    for unseen in (0.0, 0.05):
        gate = choose_gate(p1, lead, eligible, cos, loss, forbidden, 0.003, sim, unseen)
        assert gate is not None
        passes = eligible & (p1 >= gate.floor) & (lead >= gate.margin) & (cos >= gate.in_scope)
        assert not (passes & forbidden).any() and (passes & sim).sum() <= unseen * 200
        assert loss[passes & ~sim & ~forbidden].sum() <= 0.003 * (~sim & ~forbidden).sum()
    assert 0.85 < gate.in_scope <= 0.9  # a few of the most in-scope-looking simulated rows pass
    assert choose_gate(p1, lead, eligible, cos, np.ones(n), forbidden, budget=0.0) is None


def test_fit_chooses_a_gate_that_agrees_with_the_transformer_on_the_fixture(
    encoder: BundledEncoder, tmp_path: Path
) -> None:
    train, val, test = read("train"), read("val"), read("test")
    db = tmp_path / "fitted.db"
    with SemanticRouter(CascadeEncoder(encoder), db) as router:
        summary = router.fit(*train, validation=val, create_routes=True)
        tier = router._cascade
        assert tier is not None
        gate = tier.gate
        assert gate.source == "fitted"
        assert summary.settings["cascade_floor"] == gate.floor
        assert summary.settings["cascade_margin"] == gate.margin
        assert gate.head is not None and set(gate.head.routes) == {r.name for r in router.routes()}
        cascade = router.route_batch(test[0])
        tier.gate = Gate(2.0, 2.0)  # closed: the transformer-only decision
        alone = router.route_batch(test[0])
        tier.gate = gate
    static = [m for m in cascade if m.tier == "static"]
    assert static, "the fitted gate should answer some fixture queries statically"
    for c, t in zip(cascade, alone, strict=True):
        assert c.name == t.name, (c, t)
    # the fitted gate survives a restart and unfit returns to the default
    model = CountingTransformer(encoder)
    with SemanticRouter(CascadeEncoder(model), db) as again:
        assert again._cascade is not None and again._cascade.gate == gate
        assert model.texts == 0  # booting re-embeds nothing
        head = again._cascade.gate.head
        assert head is not None and gate.head is not None
        np.testing.assert_array_equal(head.weights, gate.head.weights)
        assert again.route_batch(test[0]) == cascade  # the stored head decides as before
        assert again.store.load_fitted(GATE_KEY) is not None
        again.unfit()
        assert again._cascade.gate == DEFAULT_GATE and again.store.load_fitted(GATE_KEY) is None


def test_an_out_of_scope_query_the_transformer_refuses_is_never_answered_statically(
    encoder: BundledEncoder,
) -> None:
    train, val, test = read("train"), read("val"), read("test")
    with SemanticRouter(CascadeEncoder(encoder)) as router:
        router.fit(*train, validation=val, out_of_scope_label="oos", create_routes=True)
        tier = router._cascade
        assert tier is not None
        gate = tier.gate
        assert gate.head is not None and gate.head.reject and gate.head.n_routes == len(router.routes())
        cascade = router.route_batch(test[0])
        tier.gate = Gate(2.0, 2.0)  # closed: the transformer-only decision
        alone = router.route_batch(test[0])
    oos = [i for i, lab in enumerate(test[1]) if lab == "oos"]
    refused = [i for i in oos if alone[i].name is None]
    assert refused, "the fixture's out-of-scope queries should be refused by the transformer"
    for i in refused:
        assert cascade[i].name is None and cascade[i].tier == "transformer", (test[0][i], cascade[i])
    static = [m for m in cascade if m.tier == "static"]
    assert all(m.name in gate.head.columns for m in static)  # never the reject class
    assert [m.name for m in cascade] == [m.name for m in alone]


def test_the_async_path_uses_the_cascade(encoder: BundledEncoder) -> None:
    import asyncio

    with SemanticRouter(CascadeEncoder(encoder)) as router:
        router.add_many(ROUTES)

        async def go() -> list[str | None]:
            got = await asyncio.gather(router.aroute("skip this song"), router.aroute("tell me a joke"))
            return [m.tier for m in got]

        assert asyncio.run(go()) == ["static", "transformer"]


def test_routers_with_other_encoders_are_untouched(encoder: BundledEncoder) -> None:
    with SemanticRouter(encoder) as router:
        router.add_many(ROUTES)
        assert router._cascade is None
        m = router.route("will it rain tomorrow")
        assert m.name == "weather" and m.tier is None and "tier" not in m.to_dict()
        assert "cascade" not in router.stats()
