"""Head features: the bundled encoder's mix of layers 4-6, read by the fitted head.

Uses the small attributed CLINC150 sample (see fixtures/clinc10/NOTICE).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from synaptoroute_agents import InvalidInputError, Route, SemanticRouter
from synaptoroute_agents.encoders.base import embed_with_features_in_batches, head_features_of
from synaptoroute_agents.encoders.bundled import (
    HEAD_FEATURES,
    MODEL_SHA256,
    BundledEncoder,
    bundled_model_path,
)
from synaptoroute_agents.evaluation import read_labelled
from synaptoroute_agents.fitting import fit_policy, load_policy
from synaptoroute_agents.index.onnxproto import FLOAT, with_graph_outputs

DATA = Path(__file__).parent / "fixtures" / "clinc10"


@pytest.fixture(scope="module")
def data() -> dict[str, tuple[list[str], list[str]]]:
    return {s: read_labelled(DATA / f"{s}.jsonl") for s in ("train", "val", "test")}


def test_one_pass_gives_the_same_vectors_as_embed_and_unit_features(encoder, data) -> None:
    texts = data["test"][0][:70] + ["a", "é" * 600, "what's my PTO balance?? 🙂"]
    assert head_features_of(encoder) == HEAD_FEATURES
    V = encoder.embed(texts)
    V2, H = encoder.embed_with_features(texts)
    np.testing.assert_allclose(V2, V, atol=1e-6)  # the index's vectors do not change
    assert H.shape == V.shape and H.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(H, axis=1), 1.0, atol=1e-5)
    cos = (H * V).sum(axis=1)
    assert cos.min() > 0.5 and cos.max() < 0.9999  # related to the last layer, not a copy of it
    # each row is the same whether embedded alone or in a batch (length-sorted slices)
    _, alone = encoder.embed_with_features([texts[3]])
    np.testing.assert_allclose(alone[0], H[3], atol=1e-5)
    empty_v, empty_h = encoder.embed_with_features([])
    assert empty_v.shape == empty_h.shape == (0, encoder.dim)
    bv, bh = embed_with_features_in_batches(encoder, texts, batch_size=16)
    np.testing.assert_allclose(bh, H, atol=1e-6)
    np.testing.assert_allclose(bv, V, atol=1e-6)


def test_graph_outputs_expose_layer_tensors_and_reject_garbage() -> None:
    model = bundled_model_path().read_bytes()
    exposed = with_graph_outputs(model, [("layer_norm_8", FLOAT, ["batch", "sequence", 384])])
    sess = ort.InferenceSession(exposed, providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["last_hidden_state", "layer_norm_8"]
    ids = np.array([[101, 7592, 102]], np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    last, mid = sess.run(None, feed)
    plain = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feed)[0]
    np.testing.assert_array_equal(last, plain)
    assert mid.shape == last.shape and not np.allclose(mid, last)
    with pytest.raises(ValueError):
        with_graph_outputs(b"\x3a\xff", [("x", FLOAT, [1])])  # a length past the end
    with pytest.raises(ValueError):
        with_graph_outputs(b"\x08\x07", [("x", FLOAT, [1])])  # no graph field


def test_only_the_verified_default_model_offers_features(tmp_path) -> None:
    copy = tmp_path / "model.onnx"
    copy.write_bytes(bundled_model_path().read_bytes())
    same = BundledEncoder(model_file=copy, model_sha256=MODEL_SHA256, lazy_load=True)
    assert same.head_features == HEAD_FEATURES
    other = BundledEncoder(model_file=copy, model_sha256="0" * 64, lazy_load=True)
    assert other.head_features is None and head_features_of(other) is None


def test_the_head_reads_its_features_and_the_vote_reads_the_embeddings() -> None:
    rng = np.random.default_rng(0)
    n, d, k = 400, 16, 4
    y = rng.integers(0, k, n)
    labels = [f"r{i}" for i in y]
    X = rng.normal(size=(n, d)).astype(np.float32)  # embeddings that know nothing of the labels
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    H = rng.normal(size=(n, d)).astype(np.float32) * 0.3
    H[np.arange(n), y] += 2.0  # features that do
    H /= np.linalg.norm(H, axis=1, keepdims=True)
    plain = fit_policy(X, labels, lexical=False)
    feat = fit_policy(X, labels, lexical=False, H=H, features="test-features")
    assert plain.settings["held_out_head_accuracy"]["embedding"] < 0.5
    assert feat.settings["held_out_head_accuracy"]["embedding"] > 0.95
    assert feat.features == "test-features" and feat.settings["head_features"] == "test-features"
    P = feat.head_probs(X[:50], features=H[:50])
    assert (np.array(feat.routes)[P.argmax(axis=1)] == np.array(labels[:50])).mean() > 0.95
    # the id survives a round trip through the store format
    assert load_policy(feat.to_bytes()).features == "test-features"
    with pytest.raises(InvalidInputError):
        fit_policy(X, labels, H=H)  # features without an id
    with pytest.raises(InvalidInputError):
        fit_policy(X, labels, H=H[:10], features="x")


def _routes(texts: list[str], labels: list[str]) -> list[Route]:
    by: dict[str, list[str]] = {}
    for t, lab in zip(texts, labels, strict=True):
        if lab != "oos":
            by.setdefault(lab, []).append(t)
    return [Route(lab, ts) for lab, ts in sorted(by.items())]


def test_router_fits_on_head_features_and_routes_with_them_after_a_restart(
    encoder, counting, data, tmp_path
) -> None:
    db = tmp_path / "r.db"
    queries = data["test"][0]
    with SemanticRouter(encoder=encoder, store=db) as router:
        router.add_many(_routes(*data["train"]))
        router.fit(*data["train"], out_of_scope_label="oos", validation=data["val"])
        policy = router.policy
        assert policy.features == HEAD_FEATURES  # type: ignore[attr-defined]
        routed = [(m.name, round(m.score, 5)) for m in router.route_batch(queries)]
        # route_batch == decide with the features; without them the head reads the embeddings
        Q, H = encoder.embed_with_features(queries)
        with_feats = [(m.name, round(m.score, 5)) for m in router.decide(Q, texts=queries, features=H)]
        assert with_feats == routed
        without = [(m.name, round(m.score, 5)) for m in router.decide(Q, texts=queries)]
        assert without != routed and all(m.reason for m in router.decide(Q))
        with pytest.raises(InvalidInputError):
            router.decide(Q, features=H[:3])
        with pytest.raises(InvalidInputError):
            router.decide(Q, features=H.tolist())  # type: ignore[arg-type]
    with SemanticRouter(encoder=encoder, store=db) as again:
        assert again.policy.features == HEAD_FEATURES  # type: ignore[attr-defined]
        assert [(m.name, round(m.score, 5)) for m in again.route_batch(queries)] == routed
    # an encoder without head features (same model id) reuses the stored head on its embeddings
    with SemanticRouter(encoder=counting, store=db) as plain:
        assert head_features_of(counting) is None
        assert [(m.name, round(m.score, 5)) for m in plain.route_batch(queries)] == without


def test_the_default_model_runs_in_its_own_session_with_fastembeds_arithmetic(encoder, data) -> None:
    # fastembed is the optional `fastembed` extra (installed in the dev group): the bundled model
    # runs without it, and its arithmetic is checked against fastembed's wherever it is installed
    pytest.importorskip("fastembed")
    from synaptoroute_agents.encoders.bundled import tokenizer_dir
    from synaptoroute_agents.encoders.fastembed import FastEmbedEncoder, register_custom_model

    texts = data["train"][0][:40] + ["x " * 400, "naïve café ☕", "ＦＵＬＬＷＩＤＴＨ text", "a"]
    fresh = BundledEncoder(lazy_load=True)
    mine = fresh.embed(texts)
    assert not isinstance(fresh, FastEmbedEncoder)  # the default model never goes through fastembed
    register_custom_model("test/bundled-through-fastembed", model_file=str(bundled_model_path()), dim=384)
    reference = FastEmbedEncoder(
        "test/bundled-through-fastembed", dim=384, local_files_only=True, specific_model_path=tokenizer_dir()
    )
    np.testing.assert_allclose(mine, reference.embed(texts), atol=1e-6)
    np.testing.assert_allclose(mine, encoder.embed(texts), atol=1e-6)


def test_a_tampered_or_missing_model_file_is_refused_before_any_session(tmp_path) -> None:
    from synaptoroute_agents.errors import ModelIntegrityError

    bad = tmp_path / "model.onnx"
    data = bytearray(bundled_model_path().read_bytes())
    data[-10] ^= 1  # one flipped bit
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        BundledEncoder(model_file=bad, model_sha256=MODEL_SHA256)
    with pytest.raises(ModelIntegrityError, match="not found"):
        BundledEncoder(model_file=tmp_path / "missing.onnx", model_sha256=MODEL_SHA256)
