"""The opt-in INT8 fast path: built once into a cache folder, reused, rebuilt when corrupt, close to fp32."""

from __future__ import annotations

import builtins
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from synaptoroute_agents import BundledEncoder, Route, SemanticRouter
from synaptoroute_agents.encoders import quantized as qmod
from synaptoroute_agents.errors import EncoderError, EncoderMismatchError, InvalidInputError

SENTENCES = [
    "book me a flight to paris next tuesday",
    "what is the balance on my checking account",
    "cancel my gym membership starting next month",
    "how do I reset the password for my email",
    "play some relaxing jazz music in the kitchen",
    "what will the weather be like in boston tomorrow",
    "transfer two hundred dollars to my savings account",
    "remind me to call the dentist at four pm",
    "translate good morning into japanese for me",
    "my package has not arrived yet, where is it",
    "set an alarm for six thirty tomorrow morning",
    "which restaurants nearby are open late tonight",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sr-cache")


@pytest.fixture(scope="module")
def built(cache: Path) -> Path:
    """The model built once for the module (each test that rebuilds uses its own folder)."""
    return qmod.build_quantized_model(cache)


@pytest.fixture(scope="module")
def qenc(cache: Path, built: Path) -> BundledEncoder:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNAPTOROUTE_CACHE", str(cache))
        return BundledEncoder(quantized=True, threads=2)


def _count_builds(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = qmod._requantize

    def counting(src: Path, dst: Path, sha: str) -> str:
        calls.append(dst)
        return real(src, dst, sha)

    monkeypatch.setattr(qmod, "_requantize", counting)
    return calls


def test_cache_folder_comes_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SYNAPTOROUTE_CACHE", str(tmp_path / "c"))
    assert qmod.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("SYNAPTOROUTE_CACHE")
    assert qmod.cache_dir() == Path.home() / ".cache" / "synaptoroute-agents"


def test_builds_once_and_reuses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SYNAPTOROUTE_CACHE", str(tmp_path))
    calls = _count_builds(monkeypatch)
    first = qmod.build_quantized_model()
    assert first.parent == tmp_path and first.is_file()
    assert qmod.MODEL_SHA256[:16] in first.name and f"r{qmod.RECIPE_VERSION}" in first.name
    sidecar = first.with_name(first.name + ".sha256")
    assert sidecar.read_text().split()[0] == qmod.sha256_file(first)
    stat = first.stat()
    second = qmod.build_quantized_model()
    assert second == first
    assert len(calls) == 1
    after = second.stat()
    assert (after.st_ino, after.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    # No stray temporary files are left beside the model.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == sorted(
        [first.name, sidecar.name]
    )


def test_corrupt_cached_file_is_rebuilt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _count_builds(monkeypatch)
    path = qmod.build_quantized_model(tmp_path)
    good = path.read_bytes()
    # Flip bytes in the middle of the file (same size, so only the content check can notice).
    bad = bytearray(good)
    bad[len(bad) // 2 : len(bad) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(bad))
    rebuilt = qmod.build_quantized_model(tmp_path)
    assert len(calls) == 2
    assert rebuilt.read_bytes() == good  # deterministic: the same bytes come back
    # A missing sidecar also rebuilds.
    rebuilt.with_name(rebuilt.name + ".sha256").unlink()
    qmod.build_quantized_model(tmp_path)
    assert len(calls) == 3
    assert qmod.build_quantized_model(tmp_path) == rebuilt
    assert len(calls) == 3


def test_missing_onnx_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_import = builtins.__import__

    def no_onnx(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(EncoderError, match=r"synaptoroute-agents\[quantize\]"):
        qmod.build_quantized_model(tmp_path)
    assert not any(p.suffix == ".onnx" for p in tmp_path.iterdir())


def test_quantized_encoder_is_another_encoder(qenc: BundledEncoder, encoder: BundledEncoder) -> None:
    assert qenc.model_id != encoder.model_id
    assert qenc.model_id == qmod.QUANTIZED_MODEL_ID
    assert qenc.dim == encoder.dim == 384
    with pytest.raises(InvalidInputError):
        BundledEncoder(quantized=True, model_file=qmod.bundled_model_path())


def qenc_calls(enc: BundledEncoder, texts: list[str]) -> list[np.ndarray]:
    from synaptoroute_agents.encoders.bundled import token_slices

    _, tok = enc._session()
    return token_slices(np.array([sum(e.attention_mask) for e in tok.encode_batch(texts)]), enc.token_budget)


def test_embeddings_close_to_fp32(qenc: BundledEncoder, encoder: BundledEncoder) -> None:
    q = qenc.embed(SENTENCES)
    f = encoder.embed(SENTENCES)
    assert q.shape == (len(SENTENCES), 384) and q.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-4)
    cos = (q * f).sum(axis=1)
    assert cos.min() >= 0.95, cos
    assert cos.mean() >= 0.98, cos
    # It is a different computation, not the same model under another name.
    assert cos.min() < 0.99999
    # Very short inputs are the weakest case (dynamic activation scales are coarsest there).
    short = ["thanks", "thank you", "okay", "hello there"]
    cos_short = (qenc.embed(short) * encoder.embed(short)).sum(axis=1)
    assert cos_short.min() >= 0.9, cos_short
    # a batch cut into several calls keeps each text's row in order; the rows are close to, not
    # equal to, the text embedded alone (activation scales are set per call, over its texts)
    many = SENTENCES + short + [f"{s}, and {t}" for s, t in zip(SENTENCES, SENTENCES[1:], strict=False)]
    alone = np.concatenate([qenc.embed([t]) for t in many])
    assert len(qenc_calls(qenc, many)) > 1
    sims = qenc.embed(many) @ alone.T
    assert (sims.argmax(axis=1) == np.arange(len(many))).all()
    assert sims.diagonal().min() >= 0.9, sims.diagonal()  # as for short texts above
    with pytest.raises(EncoderError):
        qenc.embed_with_features(SENTENCES)  # head features belong to the default file only


def test_route_decisions_agree(qenc: BundledEncoder, encoder: BundledEncoder) -> None:
    routes = [
        Route("travel", ["book a flight", "reserve a hotel room", "find me a train ticket"]),
        Route("banking", ["check my account balance", "transfer money to savings", "pay my credit card"]),
        Route("weather", ["will it rain tomorrow", "what is the forecast", "how hot is it outside"]),
    ]
    queries = [
        "I need a plane ticket to rome",
        "how much money do I have in checking",
        "is it going to snow this weekend",
        "send fifty dollars to my savings account",
    ]
    expected = ["travel", "banking", "weather", "banking"]
    decisions = {}
    for name, enc in (("fp32", encoder), ("int8", qenc)):
        with SemanticRouter(enc, threshold=0.3) as router:
            for r in routes:
                router.add(r)
            decisions[name] = [m.name for m in router.route_batch(queries)]
    assert decisions["fp32"] == expected
    assert decisions["int8"] == decisions["fp32"]


def test_store_embedded_by_fp32_is_reembedded(
    tmp_path: Path, qenc: BundledEncoder, encoder: BundledEncoder
) -> None:
    db = tmp_path / "routes.db"
    with SemanticRouter(encoder, store=db) as router:
        router.add(Route("greet", ["hello there", "good morning"]))
    # The quantized encoder sees the fp32 embeddings as another encoder's ...
    with pytest.raises(EncoderMismatchError):
        SemanticRouter(qenc, store=db, on_encoder_mismatch="error")
    # ... re-embeds them by default ...
    with SemanticRouter(qenc, store=db) as router:
        assert router.route("hi, good morning to you").name == "greet"
    # ... after which the store is its own, and the fp32 encoder in turn sees a mismatch.
    SemanticRouter(qenc, store=db, on_encoder_mismatch="error").close()
    with pytest.raises(EncoderMismatchError):
        SemanticRouter(encoder, store=db, on_encoder_mismatch="error")


# --------------------------------------------------------------------------- quantized="auto"
X86_VNNI = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"
X86_OLD = "processor\t: 0\nflags\t\t: fpu sse2 avx2\n"
ARM_DOT = "processor\t: 0\nFeatures\t: fp asimd asimddp\n"


def test_int8_cpu_support_reads_the_cpu_flags() -> None:
    assert qmod.int8_cpu_support(X86_VNNI) == (True, "the CPU has avx512_vnni")
    assert qmod.int8_cpu_support(X86_OLD)[0] is False
    assert qmod.int8_cpu_support(ARM_DOT) == (True, "the CPU has asimddp")
    assert qmod.int8_cpu_support("")[0] is False  # nothing to tell from: the float model


def _broken_copy(good: Path, dst: Path, factor: float) -> Path:
    """The quantized model with the weight scale of its first quantized MatMul multiplied by
    ``factor`` (what a kernel that saturates, or a bad requantization, does to one layer)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(good))
    first = next(n for n in model.graph.node if n.op_type == "MatMulInteger")
    weight = first.input[1]
    # the weight's scale multiplies the MatMulInteger output downstream: find it by name
    inits = {t.name: t for t in model.graph.initializer}
    scale_name = next(
        name
        for node in model.graph.node
        if node.op_type == "Mul"
        for name in node.input
        if name in inits and name.endswith("_scale") and name.startswith(weight.rsplit("_quantized", 1)[0])
    )
    t = inits[scale_name]
    t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * np.float32(factor), scale_name))
    onnx.save(model, str(dst))
    return dst


def _auto(
    monkeypatch: pytest.MonkeyPatch, path: Path, cpu: tuple[bool, str] = (True, "test")
) -> BundledEncoder:
    monkeypatch.setattr(qmod, "int8_cpu_support", lambda cpuinfo=None: cpu)
    monkeypatch.setattr(qmod, "quantized_model", lambda dst_dir=None: (path, qmod.sha256_file(path)))
    return BundledEncoder(quantized="auto", threads=2)


def test_auto_uses_int8_when_it_passes_the_self_check(
    monkeypatch: pytest.MonkeyPatch, built: Path, encoder: BundledEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="synaptoroute_agents.encoders.bundled"):
        enc = _auto(monkeypatch, built)
    assert enc.quantized is True
    assert enc.model_id == qmod.QUANTIZED_MODEL_ID
    assert enc.head_features is None
    cos = (enc.embed(list(qmod.PROBE_TEXTS)) * encoder.embed(list(qmod.PROBE_TEXTS))).sum(axis=1)
    assert cos.min() >= qmod.SELF_CHECK_MIN_COSINE
    assert cos.min() < 0.99999  # the INT8 model, not the float one under another name


def test_auto_falls_back_to_float_when_the_int8_model_disagrees(
    monkeypatch: pytest.MonkeyPatch,
    built: Path,
    tmp_path: Path,
    encoder: BundledEncoder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = _broken_copy(built, tmp_path / "broken.onnx", 4.0)
    with caplog.at_level(logging.WARNING, logger="synaptoroute_agents.encoders.bundled"):
        enc = _auto(monkeypatch, broken)
    assert enc.quantized is False
    assert enc.model_id == encoder.model_id
    assert enc.head_features == encoder.head_features is not None
    np.testing.assert_allclose(enc.embed(SENTENCES), encoder.embed(SENTENCES), atol=1e-5)
    said = [r.getMessage() for r in caplog.records if "float model" in r.getMessage()]
    assert len(said) == 1 and "least probe cosine" in said[0]
    # the reason is logged once per process, not once per encoder
    _auto(monkeypatch, broken)
    assert len([r for r in caplog.records if "float model" in r.getMessage()]) == 1
    # the self-check itself: the broken model's embeddings are far from the float model's
    assert (
        qmod.self_check(encoder.embed(list(qmod.PROBE_TEXTS)), encoder.embed(list(qmod.PROBE_TEXTS))) > 0.9999
    )
    assert qmod.self_check(np.ones((2, 4)), np.full((2, 4), np.nan)) == -1.0


def test_auto_keeps_float_on_a_cpu_without_int8_instructions(
    monkeypatch: pytest.MonkeyPatch, encoder: BundledEncoder
) -> None:
    def never(dst_dir: object = None) -> tuple[Path, str]:
        raise AssertionError("the INT8 model must not be built on this CPU")

    monkeypatch.setattr(qmod, "int8_cpu_support", lambda cpuinfo=None: (False, "no VNNI"))
    monkeypatch.setattr(qmod, "quantized_model", never)
    enc = BundledEncoder(quantized="auto", threads=2, lazy_load=True)
    assert enc.model_id == encoder.model_id  # decided on first use
    assert enc.quantized is False


def test_auto_keeps_float_when_the_int8_model_cannot_be_built(
    monkeypatch: pytest.MonkeyPatch, encoder: BundledEncoder
) -> None:
    def missing(dst_dir: object = None) -> tuple[Path, str]:
        raise EncoderError("building the quantized encoder needs the onnx package")

    monkeypatch.setattr(qmod, "int8_cpu_support", lambda cpuinfo=None: (True, "test"))
    monkeypatch.setattr(qmod, "quantized_model", missing)
    enc = BundledEncoder(quantized="auto", threads=2)
    assert enc.quantized is False and enc.model_id == encoder.model_id
    with pytest.raises(InvalidInputError):
        BundledEncoder(quantized="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        BundledEncoder(quantized="auto", model_file=qmod.bundled_model_path())
