"""Encoders by name: the one place where a string such as ``"bundled-int8"`` becomes an encoder.

The router, the CLI (``--encoder``) and the server all resolve names here, so a new encoder is one
module plus one :func:`register_encoder` call. Built-in names:

- ``"bundled"``: all-MiniLM-L6-v2 from installed files (the default);
- ``"bundled-int8"``: the same model's INT8 fast path (``BundledEncoder(quantized=True)``);
- ``"fastembed:<model>"``: a fastembed model by name (needs the ``fastembed`` extra; downloads);
- ``"remote:<model>@<base url>"``: an OpenAI-compatible embeddings service (needs ``remote``);
- ``"cascade"``: the bundled model behind a static tier distilled from it (the router answers
  confident queries from the static tier); ``"cascade:<name>"`` puts the static tier in front of
  another encoder by name (``"cascade:bundled-int8"``).

A name is ``<kind>`` or ``<kind>:<argument>``; the factory registered for ``kind`` receives the
argument (``None`` when there is none).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..errors import InvalidInputError, InvalidTypeError
from .base import Encoder

__all__ = [
    "EncoderFactory",
    "check_encoder_name",
    "check_encoder_type",
    "encoder_names",
    "register_encoder",
    "resolve_encoder",
]

#: Builds an encoder from the part of its name after the first ``:`` (None when absent).
EncoderFactory = Callable[[str | None], Encoder]

_FACTORIES: dict[str, EncoderFactory] = {}
_LOCK = threading.Lock()


def register_encoder(kind: str, factory: EncoderFactory, *, replace: bool = False) -> None:
    """Make ``kind`` (and ``kind:<argument>``) a name :func:`resolve_encoder` understands.

    Raises :class:`InvalidInputError` when ``kind`` is taken, unless ``replace=True``.
    """
    if not isinstance(kind, str) or not kind or ":" in kind or kind != kind.strip():
        raise InvalidInputError(f"an encoder kind is a non-empty name without ':' (got {kind!r})")
    if not callable(factory):
        raise InvalidTypeError("factory must be callable")
    with _LOCK:
        if kind in _FACTORIES and not replace:
            raise InvalidInputError(f"encoder kind {kind!r} is already registered")
        _FACTORIES[kind] = factory


def encoder_names() -> list[str]:
    """The registered kinds, sorted."""
    with _LOCK:
        return sorted(_FACTORIES)


def check_encoder_type(spec: object) -> None:
    """Raise :class:`InvalidTypeError` unless ``spec`` is None, a name or an :class:`Encoder`.

    Names are not looked up here (see :func:`check_encoder_name`), so nothing is built.
    """
    if spec is not None and not isinstance(spec, str | Encoder):
        raise InvalidTypeError(
            "encoder must be a name such as 'bundled-int8' or implement the Encoder protocol"
            f" (model_id, dim, embed), not {type(spec).__name__}"
        )


def check_encoder_name(spec: str) -> str:
    """``spec`` when its kind is registered, without building the encoder (which may load a model).

    Raises :class:`InvalidInputError` for an unknown kind (the message lists the known ones).
    """
    if not isinstance(spec, str):
        raise InvalidTypeError(f"an encoder name is a string, got {type(spec).__name__}")
    kind = spec.strip().partition(":")[0]
    with _LOCK:
        known = kind in _FACTORIES
    if not known:
        raise InvalidInputError(f"unknown encoder {spec!r}; known: {', '.join(encoder_names())}")
    return spec


def resolve_encoder(spec: str | Encoder | None) -> Encoder:
    """An encoder from a name, an encoder, or None (the bundled model).

    Raises :class:`InvalidInputError` for an unknown name (the message lists the known ones) and
    :class:`InvalidTypeError` for anything that is neither a name nor an :class:`Encoder`.
    """
    check_encoder_type(spec)
    if isinstance(spec, Encoder):
        return spec
    kind, sep, arg = check_encoder_name(spec or "bundled").strip().partition(":")
    with _LOCK:
        factory = _FACTORIES[kind]
    return factory(arg if sep else None)


def _no_argument(kind: str, arg: str | None) -> None:
    if arg:
        raise InvalidInputError(f"encoder {kind!r} takes no argument (got {kind}:{arg})")


def _bundled(arg: str | None) -> Encoder:
    from .bundled import BundledEncoder

    _no_argument("bundled", arg)
    return BundledEncoder()


def _bundled_int8(arg: str | None) -> Encoder:
    from .bundled import BundledEncoder

    _no_argument("bundled-int8", arg)
    return BundledEncoder(quantized=True)


def _fastembed(arg: str | None) -> Encoder:
    from .fastembed import FastEmbedEncoder

    if not arg:
        raise InvalidInputError("name the model: 'fastembed:<model name>'")
    return FastEmbedEncoder(arg)


def _remote(arg: str | None) -> Encoder:
    from .remote import OpenAICompatibleEncoder

    model, at, url = (arg or "").rpartition("@")
    if not at or not model or not url:
        raise InvalidInputError("name the model and the service: 'remote:<model>@<base url>'")
    return OpenAICompatibleEncoder(url, model)


def _cascade(arg: str | None) -> Encoder:
    from .cascade import CascadeEncoder

    if arg is not None and arg.strip().partition(":")[0] == "cascade":
        raise InvalidInputError("a cascade's transformer cannot be another cascade")
    return CascadeEncoder(resolve_encoder(arg) if arg else None)


register_encoder("bundled", _bundled)
register_encoder("bundled-int8", _bundled_int8)
register_encoder("fastembed", _fastembed)
register_encoder("remote", _remote)
register_encoder("cascade", _cascade)
