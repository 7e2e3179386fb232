from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from synaptoroute_agents import BundledEncoder

from . import services

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def encoder() -> BundledEncoder:
    """The real bundled model, loaded once."""
    return BundledEncoder(threads=2)


class CountingEncoder:
    """Wraps an encoder and counts the texts it embeds (to prove a restart does not re-embed)."""

    def __init__(self, inner: BundledEncoder, model_id: str | None = None) -> None:
        self.inner = inner
        self.calls = 0
        self.texts = 0
        self._model_id = model_id or inner.model_id

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        return self.inner.embed(texts)


@pytest.fixture
def counting(encoder: BundledEncoder) -> CountingEncoder:
    return CountingEncoder(encoder)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[services.Postgres]:
    server = services.start_postgres()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: services.Postgres) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return postgres_server.create_database(f"sr_test_{next(_db_counter)}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Each store test runs against a real SQLite file and a real PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "routes.db")
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[services.Redis]:
    server = services.start_redis()
    yield server
    server.stop()
