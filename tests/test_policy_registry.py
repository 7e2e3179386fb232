"""A new scoring method is one module plus a registration: fit, store, reload and route with it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from synaptoroute_agents import InvalidInputError, NotFittedError, Reason, Route, SemanticRouter
from synaptoroute_agents.fitting import FitData, FittedPolicy
from synaptoroute_agents.router import POLICY_KEY
from synaptoroute_agents.scoring import (
    Decision,
    Neighbors,
    PolicyBase,
    QueryBatch,
    ScoringPolicy,
    StoredPolicy,
    aggregate_max,
    dump_policy,
    load_policy,
    register_policy,
)

try:
    from synaptoroute_agents.testing import HashEncoder
except ImportError:  # before the test doubles moved out of the benchmarks
    from synaptoroute_agents.testing import HashEncoder


# ---------------------------------------------------------------- the whole new scoring method
class NearestRoutePolicy(PolicyBase):
    """Always the route of the nearest utterance; refuses below a cosine of ``threshold``."""

    kind = "test-nearest"

    def __init__(self, threshold: float = 0.9) -> None:
        self.threshold = threshold

    @property
    def settings(self) -> Mapping[str, float]:
        return {"threshold": self.threshold}

    def decide(
        self,
        queries: QueryBatch,
        neighbors: Neighbors,
        live_routes: Mapping[str, float | None],
        top_k: int = 1,
    ) -> list[Decision]:
        out = []
        for pairs in neighbors:
            ranked = aggregate_max([(n, s) for n, s in pairs if n in live_routes])
            if ranked and ranked[0][1] >= self.threshold:
                out.append(Decision(ranked, ranked[0][0], Reason.MATCHED))
            else:
                out.append(Decision(ranked, None, Reason.BELOW_THRESHOLD))
        return out

    def passes(self, name: str, score: float, live_routes: Mapping[str, float | None]) -> bool:
        return name in live_routes and score >= self.threshold

    def to_bytes(self) -> bytes:
        return json.dumps({"threshold": self.threshold}).encode()

    @classmethod
    def from_bytes(cls, blob: bytes) -> NearestRoutePolicy:
        return cls(float(json.loads(blob)["threshold"]))

    @classmethod
    def fit(cls, data: FitData) -> NearestRoutePolicy:
        return cls(float(data.options.get("threshold", 0.9)))


register_policy(NearestRoutePolicy.kind, NearestRoutePolicy.from_bytes, NearestRoutePolicy.fit)
# ---------------------------------------------------------------------------------------------

ROUTES = [
    Route("weather", ["what is the weather today", "will it rain tomorrow", "is it sunny outside"]),
    Route("billing", ["show my last invoice", "update my credit card", "why was i charged twice"]),
]


def test_the_new_policy_satisfies_the_protocols() -> None:
    policy = NearestRoutePolicy()
    assert isinstance(policy, ScoringPolicy) and isinstance(policy, StoredPolicy)
    again = load_policy(dump_policy(policy))
    assert isinstance(again, NearestRoutePolicy) and again.threshold == 0.9


def test_a_registered_policy_is_fitted_stored_reloaded_and_routes(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    texts = [t for r in ROUTES for t in r.utterances]
    labels = [r.name for r in ROUTES for _ in r.utterances]
    with SemanticRouter(encoder=HashEncoder(), store=db) as router:
        router.add_many(ROUTES)
        summary = router.fit(texts, labels, policy="test-nearest", options={"threshold": 0.95})
        assert summary.settings == {"threshold": 0.95}
        assert router.fitted and router.policy.kind == "test-nearest"
        hit = router.route("will it rain tomorrow")
        assert hit.name == "weather" and hit.reason is Reason.MATCHED and hit.selected == ("weather",)
        miss = router.route("a query about something else entirely")
        assert miss.name is None and miss.reason is Reason.BELOW_THRESHOLD and miss.selected == ()
        want = [(m.name, m.reason) for m in router.route_batch([*texts, "something else entirely"])]
    with SemanticRouter(encoder=HashEncoder(), store=db) as again:  # loaded from the store by kind
        assert isinstance(again.policy, NearestRoutePolicy) and again.policy.threshold == 0.95
        assert [(m.name, m.reason) for m in again.route_batch([*texts, "something else entirely"])] == want


def test_a_stored_state_without_a_kind_is_the_fitted_head(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    texts = [t for r in ROUTES for t in r.utterances] * 2
    labels = [r.name for r in ROUTES for _ in r.utterances] * 2
    with SemanticRouter(encoder=HashEncoder(), store=db) as router:
        router.add_many(ROUTES)
        router.fit(texts, labels)
        head = router.policy
        assert isinstance(head, FittedPolicy) and head.kind == "fitted"
        # what a store written before kinds were recorded holds: the head's bare bytes
        router.store.save_fitted(POLICY_KEY, head.to_bytes(), router.encoder.model_id)
    with SemanticRouter(encoder=HashEncoder(), store=db) as again:
        assert isinstance(again.policy, FittedPolicy) and again.policy.routes == head.routes


def test_unknown_kinds_are_typed_errors() -> None:
    with SemanticRouter(encoder=HashEncoder()) as router:
        router.add_many(ROUTES)
        with pytest.raises(InvalidInputError, match="no policy kind"):
            router.fit(["show my last invoice"], ["billing"], policy="no-such-kind")
    blob = dump_policy(NearestRoutePolicy())
    with pytest.raises(NotFittedError, match="not registered"):
        load_policy(blob.replace(b"test-nearest", b"test-missing"))
    with pytest.raises(InvalidInputError):
        register_policy("bad kind!", NearestRoutePolicy.from_bytes)
