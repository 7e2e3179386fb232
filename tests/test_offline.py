"""The package never touches the network: unit tests run with only loopback allowed."""

from __future__ import annotations

import os
import socket

import pytest
from pytest_socket import SocketConnectBlockedError

from synaptoroute_agents import BundledEncoder, SemanticRouter


def test_outside_connections_are_blocked_in_tests() -> None:
    # The guard is active for the whole suite, so every test below ran without network.
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("93.184.216.34", 80), timeout=1)


def test_bundled_encoder_loads_offline(encoder: BundledEncoder) -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    vecs = encoder.embed(["reset my password", "I forgot my password", "weather in Paris"])
    assert vecs.shape == (3, 384)
    assert vecs.dtype.name == "float32"
    assert abs(float((vecs * vecs).sum(axis=1).max()) - 1.0) < 1e-5
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.3


def test_router_with_default_encoder_needs_no_network() -> None:
    with SemanticRouter() as router:  # loads the bundled model: no download possible here
        assert router.encoder.model_id.startswith("sentence-transformers/all-MiniLM-L6-v2")
        assert router.route("hello").reason == "empty_router"
