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


def test_choose_gate_keeps_out_of_scope_queries_and_the_budget() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    best = rng.uniform(0.5, 1.0, n)
    lead = rng.uniform(0.0, 0.5, n)
    agree = best + lead > 1.0  # confident rows agree
    oos = np.zeros(n, bool)
    oos[:20] = True
    best[:20], lead[:20] = 0.9, 0.05  # out-of-scope rows that look confident but lead little
    gate = choose_gate(best, lead, agree, oos, budget=0.002)
    assert gate is not None
    passes = (best >= gate.floor) & (lead >= gate.margin)
    assert not (passes & oos).any()
    assert (passes & ~oos & ~agree).sum() <= 0.002 * (~oos).sum()
    assert passes[~oos].mean() > 0.2
    assert choose_gate(best, lead, np.zeros(n, bool), np.zeros(n, bool), budget=0.0) is None


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
        assert again.store.load_fitted(GATE_KEY) is not None
        again.unfit()
        assert again._cascade.gate == DEFAULT_GATE and again.store.load_fitted(GATE_KEY) is None
        assert model.texts == 0


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
