"""Encoders: the protocol, the bundled offline model, fastembed models by name, remote services."""

from .base import Encoder, embed_in_batches
from .bundled import BundledEncoder
from .fastembed import FastEmbedEncoder
from .quantized import build_quantized_model
from .registry import EncoderFactory, encoder_names, register_encoder, resolve_encoder
from .remote import OpenAICompatibleEncoder

__all__ = [
    "Encoder",
    "BundledEncoder",
    "FastEmbedEncoder",
    "OpenAICompatibleEncoder",
    "build_quantized_model",
    "embed_in_batches",
    "EncoderFactory",
    "encoder_names",
    "register_encoder",
    "resolve_encoder",
]
