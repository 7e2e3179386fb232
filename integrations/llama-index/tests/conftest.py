from __future__ import annotations

import pytest

from synaptoroute_agents import BundledEncoder


@pytest.fixture(scope="session")
def li_encoder() -> BundledEncoder:
    """The real bundled model, loaded once for the LlamaIndex tests."""
    return BundledEncoder(threads=2)
