"""Encoders that run through fastembed on onnxruntime: any model by name, or a local ONNX folder.

fastembed is an optional extra (``pip install 'synaptoroute-agents[fastembed]'``): it is imported
when a :class:`FastEmbedEncoder` is built, never when this module is. The bundled model does not
need it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np

from ..deps import require
from ..errors import EncoderError
from .base import SliceRunner, as_unit_rows

__all__ = ["FastEmbedEncoder", "register_custom_model"]

_REGISTER_LOCK = threading.Lock()
Pooling = Literal["mean", "cls", "disabled"]
#: What to install for this module's encoders.
INSTALL = "synaptoroute-agents[fastembed]"


def _fastembed(module: str = "fastembed") -> ModuleType:
    """Import fastembed (or one of its modules), or raise ImportError naming the extra."""
    return require(module, INSTALL)


def register_custom_model(
    name: str, *, model_file: str, dim: int, pooling: Pooling = "mean", normalize: bool = True
) -> None:
    """Register an ONNX file with fastembed under ``name`` (once per process)."""
    TextEmbedding = _fastembed().TextEmbedding
    described = _fastembed("fastembed.common.model_description")
    ModelSource, PoolingType = described.ModelSource, described.PoolingType

    with _REGISTER_LOCK:
        known = {m["model"].lower() for m in TextEmbedding.list_supported_models()}
        if name.lower() in known:
            return
        TextEmbedding.add_custom_model(
            name,
            pooling={"mean": PoolingType.MEAN, "cls": PoolingType.CLS, "disabled": PoolingType.DISABLED}[
                pooling
            ],
            normalization=normalize,
            # Never used: the model is always loaded from local files.
            sources=ModelSource(hf="local/none"),
            dim=dim,
            model_file=model_file,
        )


class FastEmbedEncoder(SliceRunner):
    """An encoder backed by ``fastembed.TextEmbedding`` (``pip install 'synaptoroute-agents[fastembed]'``).

    Args:
        model_name: a fastembed model name (for example ``"BAAI/bge-small-en-v1.5"``). Models that
            are not installed are downloaded by fastembed from its hub: this is the one path that
            uses the network, and only because you named a model.
        model_id: the id stored beside embeddings; defaults to ``model_name``.
        dim: the embedding size; read from fastembed's model list when None.
        threads: onnxruntime threads (None: onnxruntime's default, all cores).
        cache_dir: fastembed's cache folder.
        local_files_only: never download (fail instead).
        specific_model_path: a folder that holds the model files.
        lazy_load: load the model on first use instead of now.
        batch_size: texts per onnxruntime call.
        providers: onnxruntime execution providers.

    Raises:
        ImportError: fastembed is not installed (the message names the extra to install).
    """

    def __init__(
        self,
        model_name: str,
        *,
        model_id: str | None = None,
        dim: int | None = None,
        threads: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool = False,
        specific_model_path: str | os.PathLike[str] | None = None,
        lazy_load: bool = False,
        batch_size: int = 256,
        providers: Sequence[Any] | None = None,
    ) -> None:
        _fastembed()  # fail now, with the extra to install, rather than on first use
        self._model_name = model_name
        self._model_id = model_id or model_name
        self._threads = threads
        self._cache_dir = None if cache_dir is None else str(cache_dir)
        self._local_files_only = local_files_only
        self._specific_model_path = None if specific_model_path is None else str(specific_model_path)
        self._batch_size = batch_size
        self._providers = providers
        self._model: Any = None
        self._lock = threading.Lock()
        self._dim = dim if dim is not None else self._known_dim(model_name)
        if not lazy_load:
            self._load()

    @staticmethod
    def _known_dim(model_name: str) -> int | None:
        for m in _fastembed().TextEmbedding.list_supported_models():
            if m["model"].lower() == model_name.lower():
                return int(m["dim"])
        return None

    @classmethod
    def from_folder(
        cls,
        folder: str | os.PathLike[str],
        *,
        model_file: str = "model.onnx",
        dim: int | None = None,
        pooling: Pooling = "mean",
        normalize: bool = True,
        model_id: str | None = None,
        threads: int | None = None,
        lazy_load: bool = False,
    ) -> FastEmbedEncoder:
        """Load a local ONNX model folder (the ONNX file plus tokenizer.json and tokenizer_config.json).

        Nothing is downloaded. ``dim`` is found by embedding one text when not given.
        """
        path = Path(folder).expanduser().resolve()
        onnx_file = path / model_file
        for needed in (onnx_file, path / "tokenizer.json", path / "tokenizer_config.json"):
            if not needed.is_file():
                raise EncoderError(f"model folder {path} lacks {needed.name}")
        digest = hashlib.sha256(str(onnx_file).encode()).hexdigest()[:16]
        name = f"local/{path.name}-{digest}"
        probe_dim = dim or 1
        register_custom_model(
            name, model_file=str(onnx_file), dim=probe_dim, pooling=pooling, normalize=normalize
        )
        enc = cls(
            name,
            model_id=model_id or f"local:{path.name}:{pooling}",
            dim=dim,
            threads=threads,
            local_files_only=True,
            specific_model_path=path,
            lazy_load=True,
        )
        if dim is None:
            enc._dim = int(enc._raw_embed(["dimension probe"]).shape[1])
        elif not lazy_load:
            enc._load()
        return enc

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._raw_embed(["dimension probe"]).shape[1])
        return self._dim

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                TextEmbedding = _fastembed().TextEmbedding
                kwargs: dict[str, Any] = {}
                if self._local_files_only:
                    kwargs["local_files_only"] = True
                if self._specific_model_path:
                    kwargs["specific_model_path"] = self._specific_model_path
                try:
                    self._model = TextEmbedding(
                        self._model_name,
                        cache_dir=self._cache_dir,
                        threads=self._threads,
                        providers=self._providers,
                        **kwargs,
                    )
                except Exception as exc:  # fastembed raises plain ValueError/OSError/RuntimeError
                    raise EncoderError(f"cannot load embedding model {self._model_name!r}: {exc}") from exc
        return self._model

    def _raw_embed(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        try:
            rows = list(model.embed(list(texts), batch_size=self._batch_size))
        except Exception as exc:
            raise EncoderError(f"embedding failed: {exc}") from exc
        return np.asarray(rows, dtype=np.float32)

    # texts per model call when a batch is split by length (see embed)
    length_batch = 32

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into an ``(n, dim)`` float32 array of unit rows.

        A batch larger than :attr:`length_batch` is sorted by length and embedded in slices of
        similar lengths: the model pads each call to its longest text, so mixed lengths would
        otherwise pay for padding (a third of the tokens of typical queries). Rows come back in
        the order of ``texts``; each row is the same as when embedded alone. Slices run
        :attr:`parallel_slices` at a time: on few cores two concurrent small calls keep the cores
        busier than one call split across them by onnxruntime.
        """
        n = len(texts)
        if n == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        return as_unit_rows(self._by_length(self._raw_embed, texts, self.dim), n, self.dim)

    def _by_length(
        self, raw: Callable[[Sequence[str]], np.ndarray], texts: Sequence[str], width: int
    ) -> np.ndarray:
        """``raw(slice) -> (len(slice), width)`` over ``texts`` in slices of similar lengths."""
        n = len(texts)
        step = self.length_batch
        order: list[int] | None = None
        if n <= step:
            done = np.asarray(raw(texts))
        else:
            order = sorted(range(n), key=lambda i: len(texts[i]))
            slices = [[texts[i] for i in order[s : s + step]] for s in range(0, n, step)]
            if self.parallel_slices > 1 and len(slices) > 1:
                self._load()
            done = np.concatenate(self.map_slices(raw, slices))
        if done.ndim != 2 or done.shape != (n, width):
            raise EncoderError(f"encoder returned shape {done.shape}, expected ({n}, {width})")
        if order is None:
            return done
        rows = np.empty_like(done)
        rows[np.asarray(order)] = done
        return rows

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self._model_id!r}, dim={self._dim})"
