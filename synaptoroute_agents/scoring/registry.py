"""Stored policies by kind: how a fitted policy is written to the store and read back.

A stored policy is its kind and its own bytes. :func:`register_policy` declares a kind: the
loader that reads its bytes back and, optionally, the fitter that ``SemanticRouter.fit(...,
policy=kind)`` calls. The built-in ``"fitted"`` kind is registered by
:mod:`synaptoroute_agents.fitting`. A state written before kinds were recorded (no envelope)
is the ``"fitted"`` kind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InvalidInputError, NotFittedError
from .base import StoredPolicy

if TYPE_CHECKING:
    from ..fitting.data import FitData

__all__ = [
    "DEFAULT_KIND",
    "PolicyFitter",
    "PolicyLoader",
    "dump_policy",
    "load_policy",
    "policy_fitter",
    "register_policy",
    "registered_policies",
]

#: Reads a policy's own bytes back.
PolicyLoader = Callable[[bytes], StoredPolicy]
#: Makes a policy from prepared, labelled and embedded examples.
PolicyFitter = Callable[["FitData"], StoredPolicy]

#: The kind of a stored state without an envelope (written before kinds were recorded).
DEFAULT_KIND = "fitted"
_MAGIC = b"synaptoroute-policy-kind\x00"
_MAX_KIND = 64


@dataclass(frozen=True, slots=True)
class _Entry:
    loader: PolicyLoader
    fitter: PolicyFitter | None


_registry: dict[str, _Entry] = {}
_lock = threading.Lock()


def register_policy(kind: str, loader: PolicyLoader, fitter: PolicyFitter | None = None) -> None:
    """Declare a kind of stored policy (registering a kind again replaces it).

    Args:
        kind: the policy's name, as its ``kind`` attribute says (letters, digits, ``-_.:``).
        loader: reads the bytes the policy's ``to_bytes`` wrote.
        fitter: makes the policy from :class:`~synaptoroute_agents.fitting.FitData`; without
            one the kind can be loaded but not fitted.
    """
    if (
        not isinstance(kind, str)
        or not kind
        or len(kind) > _MAX_KIND
        or not all(c.isalnum() or c in "-_.:" for c in kind)
    ):
        raise InvalidInputError(f"a policy kind is a short name of letters, digits and -_.: (got {kind!r})")
    if not callable(loader) or (fitter is not None and not callable(fitter)):
        raise InvalidInputError("loader and fitter must be callables")
    with _lock:
        _registry[kind] = _Entry(loader, fitter)


def registered_policies() -> list[str]:
    """The registered kinds, sorted."""
    return sorted(_registry)


def policy_fitter(kind: str) -> PolicyFitter:
    """The fitter of ``kind``. Raises :class:`InvalidInputError` for an unknown or load-only kind."""
    entry = _registry.get(kind)
    if entry is None:
        raise InvalidInputError(f"no policy kind {kind!r} is registered (known: {registered_policies()})")
    if entry.fitter is None:
        raise InvalidInputError(
            f"the policy kind {kind!r} cannot be fitted (it was registered without a fitter)"
        )
    return entry.fitter


def dump_policy(policy: StoredPolicy) -> bytes:
    """The bytes the store keeps: the policy's kind, then its own bytes."""
    kind = policy.kind
    if kind not in _registry:
        raise InvalidInputError(f"no policy kind {kind!r} is registered; register_policy() it first")
    return _MAGIC + kind.encode() + b"\x00" + policy.to_bytes()


def load_policy(blob: bytes) -> StoredPolicy:
    """Read a policy written by :func:`dump_policy` (or a bare ``"fitted"`` state of before).

    Raises:
        NotFittedError: the state cannot be read, or its kind is not registered in this process.
    """
    kind, payload = DEFAULT_KIND, bytes(blob)
    if payload.startswith(_MAGIC):
        end = payload.find(b"\x00", len(_MAGIC))
        if end < 0 or end - len(_MAGIC) > _MAX_KIND:
            raise NotFittedError("the stored fitted state cannot be read: a damaged kind; fit again")
        kind = payload[len(_MAGIC) : end].decode("utf-8", "replace")
        payload = payload[end + 1 :]
    entry = _registry.get(kind)
    if entry is None:
        raise NotFittedError(
            f"the stored fitted state is of kind {kind!r}, which is not registered in this process"
            " (import the module that registers it, or fit again)"
        )
    return entry.loader(payload)
