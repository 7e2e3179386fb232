"""The opt-in INT8 fast path of the bundled encoder: a dynamically quantized copy, built once and cached.

The bundled ONNX file stores its weights as int8 tensors that the graph turns back into float32
(``int8 -> Cast(FLOAT) -> Mul(scale)``) before every MatMul, so onnxruntime computes in float32.
This module folds those chains into float32 weights and re-quantizes the MatMuls with
onnxruntime's dynamic quantization (int8 weights per output channel, uint8 activations quantized
per tensor at run time). With symmetric full-range weights the re-quantized weights are the shipped
int8 weights; only the activations add error. The embedding tables (which feed Gather) are left as
they are.

The result is written to a cache folder (``$SYNAPTOROUTE_CACHE``, else
``~/.cache/synaptoroute-agents``) under a name keyed by the source file's sha256, the onnxruntime
version and :data:`RECIPE_VERSION`, with a ``.sha256`` sidecar that is checked on every reuse: a
missing or mismatching sidecar rebuilds the file. Building needs the ``onnx`` package
(``pip install 'synaptoroute-agents[quantize]'``); loading the cached file does not.

When it is used: ``BundledEncoder(quantized=True)`` always; ``quantized="auto"`` only on a CPU
whose instruction set onnxruntime's INT8 kernels handle well (:func:`int8_cpu_support`: VNNI or
AMX on x86-64, the dot-product instructions on ARM64, read from ``/proc/cpuinfo``), and only
after :func:`self_check` has found the INT8 model's embeddings of :data:`PROBE_TEXTS` within
:data:`SELF_CHECK_MIN_COSINE` of the float model's. On other CPUs onnxruntime's u8s8 kernels may
saturate with full-range int8 weights; there ``"auto"`` keeps the float model (logged once).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EncoderError
from .model_files import MODEL_ID, MODEL_SHA256, bundled_model_path, sha256_file, verify_file

__all__ = [
    "QUANTIZED_MODEL_ID",
    "RECIPE",
    "RECIPE_VERSION",
    "build_quantized_model",
    "cache_dir",
    "cpu_has_vnni",
    "int8_cpu_support",
    "PROBE_TEXTS",
    "SELF_CHECK_MIN_COSINE",
    "quantized_model",
    "self_check",
]

logger = logging.getLogger(__name__)

#: Bumped whenever the recipe below changes what is written (the cache file name includes it).
RECIPE_VERSION = 1
RECIPE = "fold(int8 Cast*Mul -> fp32, MatMul weights)+quantize_dynamic(MatMul,QInt8,per_channel,full_range)"
#: The id stored beside embeddings made by the quantized encoder (differs from the fp32 path's id,
#: so a store embedded by one is re-embedded by the other).
QUANTIZED_MODEL_ID = f"{MODEL_ID}:dyn-int8-pc"

_GATHER_OPS = frozenset({"Gather", "GatherElements", "GatherND"})


def cache_dir() -> Path:
    """The cache folder: ``$SYNAPTOROUTE_CACHE`` if set, else ``~/.cache/synaptoroute-agents``."""
    env = os.environ.get("SYNAPTOROUTE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "synaptoroute-agents"


def cpu_has_vnni() -> bool | None:
    """Whether the CPU advertises AVX-512 VNNI or AVX-VNNI (None when it cannot be told)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_vnni", "avx_vnni"})
    except OSError:
        return None
    return None


#: x86-64 flags (``/proc/cpuinfo``) of the INT8 dot-product instructions onnxruntime's u8s8 kernels use
_X86_INT8 = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
#: ARM64 features of the same (SDOT/UDOT, and the 8-bit matrix multiply)
_ARM_INT8 = frozenset({"asimddp", "i8mm"})


def int8_cpu_support(cpuinfo: str | None = None) -> tuple[bool, str]:
    """Whether this CPU runs onnxruntime's INT8 kernels well, and why (for the log).

    Read from the ``flags`` (x86-64) or ``Features`` (ARM64) line of ``/proc/cpuinfo`` (or of
    ``cpuinfo``, its text): yes with AVX-512 VNNI, AVX-VNNI or AMX-INT8 on x86-64 and with the
    dot-product instructions (``asimddp``) or I8MM on ARM64; no otherwise, and no where the file
    cannot be read (another OS): the float model is then the safe choice.
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as fh:
                cpuinfo = fh.read()
        except OSError:
            return False, "cannot read /proc/cpuinfo to check for VNNI/AMX"
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if not sep or key.strip() not in ("flags", "Features"):
            continue
        found = sorted(set(value.split()) & (_X86_INT8 | _ARM_INT8))
        if found:
            return True, "the CPU has " + ", ".join(found)
        return False, "the CPU has no VNNI, AMX or ARM dot-product instructions"
    return False, "no CPU flags in /proc/cpuinfo"


#: Texts both models embed at load under ``quantized="auto"`` (ordinary requests of several
#: domains and lengths; the INT8 model's weakest case, one- or two-word texts, is left out: its
#: per-call activation scales are coarsest there, and the benchmarks measure it instead).
PROBE_TEXTS = (
    "book me a flight to paris next tuesday morning",
    "what is the balance on my checking account",
    "cancel my gym membership starting next month",
    "how do I reset the password for my email account",
    "play some relaxing jazz music in the kitchen",
    "what will the weather be like in boston tomorrow",
    "transfer two hundred dollars to my savings account",
    "remind me to call the dentist at four pm today",
    "my package has not arrived yet, where is it now",
    "summarize the attached quarterly report in three bullet points",
    "which python function parses a json string into a dictionary",
    "list the open pull requests that are waiting for my review",
    "the card payment at the supermarket was declined twice, why",
    "schedule a meeting with the design team for thursday afternoon",
    "translate 'where is the train station' into german",
    "search the knowledge base for our refund policy on damaged items",
)
#: The least cosine between the two models' embeddings of any probe text for ``"auto"`` to
#: choose the INT8 model.
SELF_CHECK_MIN_COSINE = 0.98


def self_check(reference: np.ndarray, candidate: np.ndarray) -> float:
    """The least cosine between matching rows of two embeddings of :data:`PROBE_TEXTS`
    (``-1`` when a row is not finite)."""
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    if a.shape != b.shape or not np.isfinite(b).all():
        return -1.0
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    cos = (a * b).sum(axis=1) / np.maximum(na * nb, 1e-12)
    return float(cos.min())


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def _cache_name(source_sha256: str) -> str:
    return f"all-MiniLM-L6-v2-{source_sha256[:16]}-ort{_ort_version()}-dynint8pc-r{RECIPE_VERSION}.onnx"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _read_sidecar(path: Path) -> str | None:
    try:
        text = _sidecar(path).read_text().split()
    except OSError:
        return None
    return text[0] if text and len(text[0]) == 64 else None


def _cached_ok(path: Path) -> str | None:
    """The sha256 of a cached file if it is present and matches its sidecar, else None."""
    expected = _read_sidecar(path)
    if expected is None or not path.is_file():
        return None
    actual = sha256_file(path)
    if actual != expected:
        logger.warning(
            "cached quantized model %s is corrupt (sha256 %s, expected %s): rebuilding",
            path,
            actual,
            expected,
        )
        return None
    return actual


@contextlib.contextmanager
def _build_lock(folder: Path, name: str) -> Iterator[None]:
    """Serialize builds of one cache file across processes (POSIX advisory lock; no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(folder / f".{name}.lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _fold_int8_weights(model: Any) -> int:
    """Replace ``int8 init -> Cast(FLOAT) -> Mul(fp32 init)`` chains by fp32 initializers (in place).

    Chains whose result feeds only Gather ops (the embedding tables) are kept: onnxruntime folds
    them at load exactly as it does for the source file, and the output stays small.
    Returns the number of chains folded.
    """
    import numpy as np
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}

    drop: set[int] = set()
    folded: dict[str, Any] = {}
    for node in graph.node:
        if node.op_type != "Cast" or node.input[0] not in inits:
            continue
        if inits[node.input[0]].data_type not in (TensorProto.INT8, TensorProto.UINT8):
            continue
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        users = consumers.get(node.output[0], [])
        if to != TensorProto.FLOAT or len(users) != 1 or users[0].op_type != "Mul":
            continue
        mul = users[0]
        scale_names = [x for x in mul.input if x != node.output[0]]
        if len(scale_names) != 1 or scale_names[0] not in inits or node.output[0] in outputs:
            continue
        after = consumers.get(mul.output[0], [])
        if not after or all(c.op_type in _GATHER_OPS for c in after):
            continue
        scale = numpy_helper.to_array(inits[scale_names[0]])
        if scale.dtype != np.float32:
            continue
        q = numpy_helper.to_array(inits[node.input[0]])
        # The same float32 product onnxruntime's Mul computes: the folded graph equals the source.
        weight = (q.astype(np.float32) * scale).astype(np.float32)
        folded[mul.output[0]] = numpy_helper.from_array(weight, mul.output[0])
        drop.update((id(node), id(mul)))

    kept = [n for n in graph.node if id(n) not in drop]
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(folded.values())
    used = {name for n in graph.node for name in n.input} | outputs
    live = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(live)
    value_info = [v for v in graph.value_info if v.name not in folded]
    del graph.value_info[:]
    graph.value_info.extend(value_info)
    return len(folded)


def _requantize(src: Path, dst: Path, source_sha256: str) -> str:
    """Write the quantized model to ``dst`` atomically, then its sidecar; return its sha256."""
    try:
        import onnx
        from onnx import helper
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise EncoderError(
            "building the quantized encoder needs the onnx package: "
            "pip install 'synaptoroute-agents[quantize]'"
        ) from exc

    model = onnx.load(str(src))
    n = _fold_int8_weights(model)
    if n == 0:
        raise EncoderError(f"{src}: found no int8 weight chains to fold; cannot build the quantized model")
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".requant-") as tmp:
        folded, out, final = Path(tmp) / "folded.onnx", Path(tmp) / "quant.onnx", Path(tmp) / "final.onnx"
        onnx.save(model, str(folded))
        del model
        quantize_dynamic(
            model_input=folded,
            model_output=out,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            reduce_range=False,
            weight_type=QuantType.QInt8,
            extra_options={"MatMulConstBOnly": True},
        )
        q = onnx.load(str(out))
        q.doc_string = ""
        helper.set_model_props(
            q,
            {
                "synaptoroute.source_sha256": source_sha256,
                "synaptoroute.recipe": f"r{RECIPE_VERSION}: {RECIPE}",
                "synaptoroute.onnxruntime": _ort_version(),
            },
        )
        onnx.checker.check_model(q)
        onnx.save(q, str(final))
        os.chmod(final, 0o644)
        digest = sha256_file(final)
        sidecar_tmp = Path(tmp) / "final.sha256"
        sidecar_tmp.write_text(f"{digest}  {dst.name}\n")
        # Model first, sidecar last: a reader that sees the sidecar sees the finished model.
        os.replace(final, dst)
        os.replace(sidecar_tmp, _sidecar(dst))
    return digest


def quantized_model(dst_dir: str | os.PathLike[str] | None = None) -> tuple[Path, str]:
    """Like :func:`build_quantized_model`, also returning the file's sha256."""
    src = bundled_model_path()
    verify_file(src, MODEL_SHA256, "embedding model file")
    folder = Path(dst_dir).expanduser() if dst_dir is not None else cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EncoderError(f"cannot create the model cache folder {folder}: {exc}") from exc
    path = folder / _cache_name(MODEL_SHA256)
    digest = _cached_ok(path)
    if digest is not None:
        return path, digest
    with _build_lock(folder, path.name):
        digest = _cached_ok(path)  # another process may have built it while we waited
        if digest is not None:
            return path, digest
        if cpu_has_vnni() is False:
            logger.warning(
                "this CPU lacks VNNI: int8 kernels may saturate with full-range weights; "
                "check routing accuracy before relying on the quantized encoder"
            )
        logger.info("building the quantized encoder model at %s", path)
        try:
            digest = _requantize(src, path, MODEL_SHA256)
        except EncoderError:
            raise
        except Exception as exc:
            raise EncoderError(f"cannot build the quantized model at {path}: {exc}") from exc
    return path, digest


def build_quantized_model(dst_dir: str | os.PathLike[str] | None = None) -> Path:
    """Build (or reuse) the dynamically quantized bundled model and return its path.

    Args:
        dst_dir: the cache folder; None means ``$SYNAPTOROUTE_CACHE`` or ``~/.cache/synaptoroute-agents``.

    The source file's sha256 is checked first. A cached file is reused when its ``.sha256``
    sidecar matches; otherwise it is rebuilt (about 2-6 s). Writes are atomic.

    Raises:
        ModelIntegrityError: the bundled source file is missing or altered.
        EncoderError: ``onnx`` is not installed (``pip install 'synaptoroute-agents[quantize]'``),
            or the build failed.
    """
    return quantized_model(dst_dir)[0]
