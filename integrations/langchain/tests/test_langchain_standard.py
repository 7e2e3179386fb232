"""LangChain's own standard tests (``langchain-tests``) for the embeddings and the routing tool.

These are the conformance suites LangChain asks every integration package to pass: construction,
the input schema, invoking with and without a tool call, sync and async embeddings of queries and
documents. They run offline on the real bundled model, loaded once for the module.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.tools import BaseTool
from langchain_synaptoroute import SynaptoRouteEmbeddings, SynaptoRouteTool
from langchain_tests.integration_tests import EmbeddingsIntegrationTests, ToolsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests, ToolsUnitTests

from synaptoroute_agents import BundledEncoder, Route, SemanticRouter


@cache
def _encoder() -> BundledEncoder:
    return BundledEncoder(threads=2)


@cache
def _router() -> SemanticRouter:
    router = SemanticRouter(_encoder(), threshold=0.45)
    router.add(Route("billing", ["I was charged twice", "where is my invoice", "refund my payment"]))
    router.add(Route("shipping", ["where is my parcel", "track my order", "when will my package arrive"]))
    return router


@pytest.fixture(scope="module", autouse=True)
def _close_router():
    yield
    if _router.cache_info().currsize:
        _router().close()
        _router.cache_clear()


class _Embeddings:
    @property
    def embeddings_class(self) -> type[Embeddings]:
        return SynaptoRouteEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"encoder": _encoder()}


class TestSynaptoRouteEmbeddingsUnit(_Embeddings, EmbeddingsUnitTests):
    pass


class TestSynaptoRouteEmbeddingsIntegration(_Embeddings, EmbeddingsIntegrationTests):
    pass


class _Tool:
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return SynaptoRouteTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"router": _router()}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "I was billed two times for one order"}


class TestSynaptoRouteToolUnit(_Tool, ToolsUnitTests):
    pass


class TestSynaptoRouteToolIntegration(_Tool, ToolsIntegrationTests):
    pass
