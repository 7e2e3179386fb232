from __future__ import annotations

from collections.abc import Iterator

import pytest

from synaptoroute_agents import BundledEncoder, Route, SemanticRouter


@pytest.fixture(scope="session")
def lc_encoder() -> BundledEncoder:
    """The real bundled model, loaded once for the LangChain tests."""
    return BundledEncoder(threads=2)


@pytest.fixture
def lc_router(lc_encoder: BundledEncoder) -> Iterator[SemanticRouter]:
    """A real in-memory router with three routes."""
    router = SemanticRouter(lc_encoder, threshold=0.45)
    router.add(Route("billing", ["I was charged twice", "where is my invoice", "refund my payment"]))
    router.add(Route("weather", ["will it rain tomorrow", "weekend forecast", "how hot is it outside"]))
    router.add(Route("shipping", ["where is my parcel", "track my order", "when will my package arrive"]))
    yield router
    router.close()
