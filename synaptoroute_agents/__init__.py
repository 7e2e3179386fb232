"""synaptoroute-agents: a local, zero-token semantic router for LLM agents.

A query is embedded on the local CPU, compared with example utterances of each route in a Faiss
index, and turned into a decision (a route, or an honest abstention) in milliseconds.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .encoders import BundledEncoder, Encoder, FastEmbedEncoder, OpenAICompatibleEncoder, embed_in_batches
from .errors import (
    DuplicateRouteError,
    EncoderError,
    EncoderMismatchError,
    InvalidInputError,
    InvalidQueryError,
    InvalidRouteError,
    InvalidThresholdError,
    InvalidTypeError,
    ModelIntegrityError,
    NotARouterStoreError,
    NotFittedError,
    RouteFileError,
    RouteNotFoundError,
    RouterClosedError,
    RouterOverloadedError,
    SchemaVersionError,
    StoreError,
    SynaptoRouteError,
)
from .index import VectorIndex
from .policy import CosinePolicy, ScoringPolicy
from .routefile import parse_routes, read_routes, write_routes
from .router import SemanticRouter
from .routes import Evidence, Reason, Route, RouteCandidate, RouteMatch, clean_text
from .store import RouteStore
from .sync import ReplicaSync

try:
    __version__ = version("synaptoroute-agents")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "__version__",
    # core
    "SemanticRouter",
    "Route",
    "RouteMatch",
    "RouteCandidate",
    "Evidence",
    "Reason",
    "clean_text",
    # parts
    "Encoder",
    "BundledEncoder",
    "FastEmbedEncoder",
    "OpenAICompatibleEncoder",
    "embed_in_batches",
    "VectorIndex",
    "RouteStore",
    "ReplicaSync",
    "ScoringPolicy",
    "CosinePolicy",
    # route files
    "read_routes",
    "write_routes",
    "parse_routes",
    # errors
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
    "SchemaVersionError",
    "EncoderMismatchError",
    "EncoderError",
    "ModelIntegrityError",
    "RouterClosedError",
    "RouterOverloadedError",
    "NotFittedError",
]
