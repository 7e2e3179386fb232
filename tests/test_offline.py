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


_WITHOUT_FASTEMBED = """
import sys

class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "fastembed" or name.startswith("fastembed."):
            raise ImportError(f"blocked: {name}")
        return None

sys.meta_path.insert(0, _Block())
import synaptoroute_agents as sa
from synaptoroute_agents.encoders.fastembed import FastEmbedEncoder

enc = sa.BundledEncoder(threads=1)
assert enc.embed(["where is my parcel"]).shape == (1, 384)
assert sa.SemanticRouter(enc).route("hello") is not None
try:
    FastEmbedEncoder("BAAI/bge-small-en-v1.5")
except ImportError as exc:
    assert "synaptoroute-agents[fastembed]" in str(exc), exc
else:
    raise AssertionError("FastEmbedEncoder built without fastembed")
assert "fastembed" not in sys.modules
print("ok")
"""


def test_the_bundled_model_needs_no_fastembed_and_the_extra_is_named_when_missing() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _WITHOUT_FASTEMBED], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_importing_the_engine_loads_no_optional_or_framework_package() -> None:
    import subprocess
    import sys

    code = (
        "import sys, synaptoroute_agents\n"
        "heavy = {'fastembed', 'scipy', 'langchain_core', 'langgraph', 'llama_index', 'onnx', 'matplotlib'}\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
