from __future__ import annotations

import pytest

from synaptoroute_agents import BundledEncoder, Route, SemanticRouter


@pytest.fixture(scope="session")
def lg_encoder() -> BundledEncoder:
    return BundledEncoder(threads=2)


@pytest.fixture
def helpdesk_router(lg_encoder: BundledEncoder) -> SemanticRouter:
    router = SemanticRouter(lg_encoder, threshold=0.55)
    router.add(Route("billing", ["I was charged twice", "where is my invoice", "refund my payment"]))
    router.add(Route("weather", ["will it rain tomorrow", "weekend forecast", "how hot is it today"]))
    router.add(Route("network", ["the wifi keeps dropping", "I cannot reach the VPN", "ping is very slow"]))
    return router
