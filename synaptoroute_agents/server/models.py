"""The JSON shapes of the HTTP API, as pydantic models with examples for the OpenAPI schema.

Request models reject unknown fields and wrong types (422); response models document what the
endpoints answer (the endpoints build their answers from the engine's ``to_dict`` directly, so the
hot path pays for no second validation). The ``*_EXAMPLES`` mappings are the named examples the
``/docs`` page offers in its "Try it out" menu.
"""

from __future__ import annotations

from typing import Any

from fastapi.openapi.models import Example
from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

__all__ = [
    "CandidateModel",
    "DeleteResult",
    "ErrorModel",
    "EvidenceModel",
    "HealthModel",
    "MatchModel",
    "ReadyModel",
    "RouteListModel",
    "RouteModel",
    "RouteRequest",
    "TeachRequest",
    "TeachResult",
    "MATCH_EXAMPLES",
    "ROUTE_EXAMPLES",
    "ROUTE_REQUEST_EXAMPLES",
    "TEACH_EXAMPLES",
]

_VPN_ROUTE: dict[str, Any] = {
    "name": "vpn",
    "utterances": ["the vpn does not connect", "cannot reach the corporate vpn", "vpn keeps dropping"],
    "description": "VPN trouble",
    "threshold": 0.4,
    "metadata": {"team": "network"},
}
_VPN_MATCH: dict[str, Any] = {
    "name": "vpn",
    "score": 0.71,
    "margin": 0.38,
    "reason": "matched",
    "candidates": [{"name": "vpn", "score": 0.71}, {"name": "password", "score": 0.33}],
    "evidence": [{"route": "vpn", "utterance": "the vpn does not connect", "score": 0.71}],
    "selected": ["vpn"],
}
_ABSTAIN: dict[str, Any] = {
    "name": None,
    "score": 0.12,
    "margin": 0.02,
    "reason": "below_threshold",
    "candidates": [{"name": "vpn", "score": 0.12}],
    "evidence": [{"route": "vpn", "utterance": "vpn keeps dropping", "score": 0.12}],
    "selected": [],
}


# ---------------------------------------------------------------------- requests
class RouteRequest(BaseModel):
    """Route one query (``query``) or many (``queries``, answered as a list in the same order)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"query": "my vpn won't connect from home"}]},
    )

    query: StrictStr | None = Field(None, description="one query")
    queries: list[StrictStr] | None = Field(None, description="many queries, routed in one batch")
    top_k: int = Field(1, ge=1, le=100, strict=True, description="how many routes may be selected")

    @model_validator(mode="after")
    def _one_of(self) -> RouteRequest:
        if (self.query is None) == (self.queries is None):
            raise ValueError("give exactly one of 'query' or 'queries'")
        return self


class RouteModel(BaseModel):
    """A route: a name, example utterances and optional settings."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_VPN_ROUTE]})

    name: StrictStr = Field(
        description="starts with a letter, digit or '_', then also '.', ':' or '-'; 128 characters at most"
    )
    utterances: list[StrictStr] = Field(
        min_length=1, description="example queries that should select this route"
    )
    description: StrictStr | None = Field(None, description="free text for people")
    threshold: float | None = Field(
        None, description="this route's own score threshold (the router's when null)"
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="JSON data returned with the route, never used to route"
    )


class TeachRequest(BaseModel):
    """More example utterances for an existing route."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"utterances": ["wireguard tunnel fails", "vpn is down"]}]},
    )

    utterances: list[StrictStr] = Field(min_length=1, description="new example utterances")


ROUTE_REQUEST_EXAMPLES: dict[str, Example] = {
    "one query": Example(
        summary="Route one query",
        value={"query": "my vpn won't connect from home"},
    ),
    "a batch": Example(
        summary="Route several queries in one call, two routes at most each",
        value={"queries": ["I can't remember my password", "vpn drops"], "top_k": 2},
    ),
}
ROUTE_EXAMPLES: dict[str, Example] = {
    "a route": Example(summary="A route with every field", value=_VPN_ROUTE),
    "the least": Example(
        summary="Only a name and utterances",
        value={"name": "password", "utterances": ["I forgot my password", "reset my password please"]},
    ),
}
TEACH_EXAMPLES: dict[str, Example] = {
    "more utterances": Example(
        summary="Teach two more ways to say it (ones the route has are skipped)",
        value={"utterances": ["wireguard tunnel fails", "vpn is down"]},
    ),
}
MATCH_EXAMPLES: dict[str, Any] = {
    "matched": {"summary": "One query, matched", "value": _VPN_MATCH},
    "abstained": {"summary": "One query, no route is close enough", "value": _ABSTAIN},
    "a batch": {
        "summary": "A list of queries: a list of decisions in order",
        "value": [_VPN_MATCH, _ABSTAIN],
    },
}


# ---------------------------------------------------------------------- responses
class CandidateModel(BaseModel):
    """A route the query was compared with, best first."""

    name: str
    score: float


class EvidenceModel(BaseModel):
    """An example utterance that decided the score."""

    route: str
    utterance: str
    score: float


class MatchModel(BaseModel):
    """A decision: the chosen route (or null when the router abstains) and why."""

    model_config = ConfigDict(json_schema_extra={"examples": [_VPN_MATCH, _ABSTAIN]})

    name: str | None = Field(description="the chosen route, null when the router abstains")
    score: float = Field(description="the best route's score (cosine similarity or fitted probability)")
    margin: float = Field(description="how far the best route is ahead of the second")
    reason: str = Field(description="matched, below_threshold, ambiguous, out_of_scope or empty_router")
    candidates: list[CandidateModel] = Field(description="the routes compared, best first")
    evidence: list[EvidenceModel] = Field(description="the utterances that decided the scores")
    selected: list[str] = Field(description="the routes chosen (up to top_k); empty when abstaining")


class RouteListModel(BaseModel):
    """Every route of this replica."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"routes": [_VPN_ROUTE], "count": 1, "version": 4}]}
    )

    routes: list[RouteModel]
    count: int
    version: int = Field(description="the store change version this replica has applied")


class TeachResult(BaseModel):
    """What teaching changed."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "vpn", "added": 1, "utterances": 4}]})

    name: str
    added: int = Field(description="how many utterances were new")
    utterances: int = Field(description="how many the route has now")


class DeleteResult(BaseModel):
    """The route that was deleted."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"deleted": "vpn"}]})

    deleted: str


class ErrorModel(BaseModel):
    """Every error the API answers has this shape."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "not_found", "detail": "no route named 'vpn'"}]}
    )

    error: str = Field(description="a short machine-readable code")
    detail: str = Field(description="what went wrong, for people")


class HealthModel(BaseModel):
    """The process is alive."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str


class ReadyModel(BaseModel):
    """Whether this replica can serve: the model is loaded and the store answers."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "model_loaded": True,
                    "store_reachable": True,
                    "routes": 12,
                    "version": 40,
                    "detail": None,
                },
                {
                    "status": "unavailable",
                    "model_loaded": False,
                    "store_reachable": False,
                    "routes": None,
                    "version": None,
                    "detail": "the router is still loading",
                },
            ]
        }
    )

    status: str = Field(description="ready or unavailable")
    model_loaded: bool
    store_reachable: bool
    routes: int | None = None
    version: int | None = None
    detail: str | None = Field(None, description="why the replica is not ready")
