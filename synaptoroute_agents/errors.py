"""The exception tree of synaptoroute-agents, in one place.

Every error the package raises on purpose derives from :class:`SynaptoRouteError`. Errors about
bad input also derive from the matching built-in (``ValueError``, ``TypeError``, ``KeyError``) so
code that already catches those keeps working.
"""

from __future__ import annotations

__all__ = [
    "SynaptoRouteError",
    "InvalidInputError",
    "InvalidTypeError",
    "InvalidQueryError",
    "InvalidRouteError",
    "InvalidThresholdError",
    "RouteFileError",
    "RouteNotFoundError",
    "DuplicateRouteError",
    "StoreError",
    "NotARouterStoreError",
    "StoreNotFoundError",
    "SchemaVersionError",
    "EncoderMismatchError",
    "EncoderError",
    "ModelIntegrityError",
    "RouterClosedError",
    "RouterOverloadedError",
    "NotFittedError",
]


class SynaptoRouteError(Exception):
    """Base class of every error raised on purpose by synaptoroute-agents."""


class InvalidInputError(SynaptoRouteError, ValueError):
    """A value given by the caller cannot be used."""


class InvalidTypeError(InvalidInputError, TypeError):
    """A value given by the caller has the wrong type."""


class InvalidQueryError(InvalidInputError):
    """A query is empty, of the wrong type or otherwise unusable."""


class InvalidRouteError(InvalidInputError):
    """A route definition is invalid (bad name, no utterances, bad metadata, ...)."""


class InvalidThresholdError(InvalidRouteError):
    """A threshold is not a finite number in [-1, 1]."""


class RouteFileError(InvalidInputError):
    """A route file (YAML or JSON) cannot be read or does not hold routes."""


class RouteNotFoundError(SynaptoRouteError, KeyError):
    """No route has the given name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"no route named {self.name!r}"


class DuplicateRouteError(SynaptoRouteError, ValueError):
    """A route with this name already exists."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a route named {name!r} already exists; use update() to change it")
        self.name = name


class StoreError(SynaptoRouteError):
    """The route store cannot be opened, read or written."""


class NotARouterStoreError(StoreError):
    """The given file or database is not a synaptoroute-agents store."""


class StoreNotFoundError(NotARouterStoreError):
    """A store opened with ``create=False`` does not exist (a missing SQLite file, a database
    without the store's tables); nothing was created."""


class SchemaVersionError(StoreError):
    """The store was written by a newer, incompatible version of the schema."""


class EncoderMismatchError(StoreError):
    """The store's embeddings were made by another encoder and re-embedding was refused."""


class EncoderError(SynaptoRouteError):
    """The encoder cannot be loaded or failed to embed."""


class ModelIntegrityError(EncoderError):
    """A model file on disk is not the file that was expected (checksum mismatch)."""


class RouterClosedError(SynaptoRouteError):
    """The router (or its batcher) was closed."""


class RouterOverloadedError(SynaptoRouteError):
    """The query queue is full: retry later (a server answers 429)."""


class NotFittedError(SynaptoRouteError):
    """An operation needs a fitted router."""
