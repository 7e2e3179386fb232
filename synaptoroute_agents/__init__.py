"""synaptoroute-agents: a local, zero-token semantic router for LLM agents.

A query is embedded on the local CPU, compared with example utterances of each route in a Faiss
index, and turned into a decision (a route, or an honest abstention) in milliseconds.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .batching import LATENCY, THROUGHPUT, BatchingConfig
from .clauses import ClauseMatch
from .conversation import ConversationOptions, adecide_turn, decide_turn
from .deps import require
from .documents import DocumentHit, DocumentIndex, chunk_text
from .encoders import (
    BundledEncoder,
    Encoder,
    FastEmbedEncoder,
    FeatureEncoder,
    LazyEncoder,
    OpenAICompatibleEncoder,
    embed_in_batches,
    encoder_names,
    register_encoder,
    resolve_encoder,
)
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
    StoreNotFoundError,
    SynaptoRouteError,
)
from .index import VectorIndex
from .routefile import parse_routes, read_routes, write_routes
from .router import SemanticRouter
from .routes import Evidence, Reason, Route, RouteCandidate, RouteMatch, clean_text, validate_positive_int
from .scoring import (
    CosinePolicy,
    Decision,
    PolicyBase,
    QueryBatch,
    ScoringPolicy,
    StoredPolicy,
    register_policy,
    registered_policies,
)
from .seeding import (
    generate_utterances,
    parse_docstring,
    routes_from_functions,
    seed_route,
    utterances_from_description,
)
from .store import RouteStore
from .sync import ReplicaSync
from .text import message_text
from .tools import ToolSelector, refusal_text, resolve_k, route_name_for_tool

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
    "message_text",
    "validate_positive_int",
    "require",
    # parts
    "Encoder",
    "FeatureEncoder",
    "LazyEncoder",
    "BundledEncoder",
    "FastEmbedEncoder",
    "OpenAICompatibleEncoder",
    "embed_in_batches",
    "register_encoder",
    "resolve_encoder",
    "encoder_names",
    "VectorIndex",
    "RouteStore",
    "ReplicaSync",
    "ScoringPolicy",
    "StoredPolicy",
    "PolicyBase",
    "CosinePolicy",
    "Decision",
    "QueryBatch",
    "register_policy",
    "registered_policies",
    # serving
    "BatchingConfig",
    "LATENCY",
    "THROUGHPUT",
    # seeding and tool selection
    "seed_route",
    "routes_from_functions",
    "utterances_from_description",
    "generate_utterances",
    "parse_docstring",
    "ToolSelector",
    "refusal_text",
    "resolve_k",
    "route_name_for_tool",
    # conversations and multi-intent
    "ConversationOptions",
    "decide_turn",
    "adecide_turn",
    "ClauseMatch",
    # documents (RAG fallback)
    "DocumentIndex",
    "DocumentHit",
    "chunk_text",
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
    "StoreNotFoundError",
    "SchemaVersionError",
    "EncoderMismatchError",
    "EncoderError",
    "ModelIntegrityError",
    "RouterClosedError",
    "RouterOverloadedError",
    "NotFittedError",
]
