"""Encoders: the protocols, the bundled offline model, fastembed models by name, remote services.

Modules: ``base`` (the :class:`Encoder` and :class:`FeatureEncoder` protocols, batching helpers),
``model_files`` (the bundled model's files, ids and checksums), ``bundled`` (the default encoder
on onnxruntime + tokenizers), ``quantized`` (its opt-in INT8 fast path), ``fastembed`` (any
fastembed model; an optional extra), ``remote`` (OpenAI-compatible services), ``registry``
(encoders by name), ``lazy`` (:class:`LazyEncoder`, built on first use).
"""

from .base import Encoder, FeatureEncoder, embed_in_batches, head_features_of
from .bundled import BundledEncoder
from .fastembed import FastEmbedEncoder
from .lazy import LazyEncoder
from .quantized import build_quantized_model
from .registry import EncoderFactory, encoder_names, register_encoder, resolve_encoder
from .remote import OpenAICompatibleEncoder

__all__ = [
    "Encoder",
    "FeatureEncoder",
    "BundledEncoder",
    "FastEmbedEncoder",
    "LazyEncoder",
    "OpenAICompatibleEncoder",
    "build_quantized_model",
    "embed_in_batches",
    "head_features_of",
    "EncoderFactory",
    "encoder_names",
    "register_encoder",
    "resolve_encoder",
]
