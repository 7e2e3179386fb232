"""The vector index: a cache of the store's embeddings that answers top-k inner products.

Modules:
    vector_index: :class:`VectorIndex` (the public index: base + delta + tombstones, compaction).
    snapshot: the consistent state one search reads without a lock.
    faiss_base: building (flat, HNSW, IVF), saving and reading Faiss bases.
    stages: the :class:`~.stages.Screen` contract of a first stage over a flat base.
    pq_screen: the default first stage: product-quantized codes, float32 re-scoring of candidates.
    screen: the INT8 screen (an onnxruntime graph) with exact float32 re-scoring.
    exact: the exact float32 scan in a shared onnxruntime session (NumPy as fallback).
    onnxproto: the ONNX protobuf writer the two graphs are built with.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must precede faiss's OpenMP start-up

from .exact import FloatScan, exact_top_k  # noqa: E402
from .faiss_base import IndexKind, SavedBase  # noqa: E402
from .screen import Int8Screen, build_screen  # noqa: E402
from .stages import Screen  # noqa: E402
from .vector_index import VectorIndex  # noqa: E402

#: The former private name of :func:`~.exact.exact_top_k` (kept importable).
_exact_top_k = exact_top_k

__all__ = [
    "VectorIndex",
    "IndexKind",
    "SavedBase",
    "Screen",
    "Int8Screen",
    "build_screen",
    "FloatScan",
    "exact_top_k",
]
