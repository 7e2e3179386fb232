"""Bounds and types on the Python API: bad input is a typed error, never a crash or a silent change."""

from __future__ import annotations

import math

import pytest

from synaptoroute_agents import (
    InvalidInputError,
    InvalidTypeError,
    NotARouterStoreError,
    Route,
    SemanticRouter,
)
from synaptoroute_agents.router import MAX_TOP_K
from synaptoroute_agents.store import RouteStore
from synaptoroute_agents.sync import ReplicaSync
from synaptoroute_agents.testing import HashEncoder


@pytest.fixture
def router():  # type: ignore[no-untyped-def]
    with SemanticRouter(encoder=HashEncoder()) as r:
        r.add(Route("billing", ["refund my payment", "I was charged twice"]))
        r.add(Route("weather", ["will it rain tomorrow"]))
        yield r


@pytest.mark.parametrize("top_k", [MAX_TOP_K + 1, 10**9, 2**63])
async def test_top_k_beyond_the_maximum_is_a_typed_error(router: SemanticRouter, top_k: int) -> None:
    # 10**9 used to reach Faiss as k = 4e9 and die with numpy's MemoryError (29.8 GiB)
    for call in (
        lambda: router.route("refund", top_k=top_k),
        lambda: router.route_batch(["refund", "rain"], top_k=top_k),
        lambda: router.decide(router.embed(["refund"]), top_k=top_k),
    ):
        with pytest.raises(InvalidInputError, match=f"at most {MAX_TOP_K}"):
            call()
    with pytest.raises(InvalidInputError, match=f"at most {MAX_TOP_K}"):
        await router.aroute("refund", top_k=top_k)
    with pytest.raises(InvalidInputError, match=f"at most {MAX_TOP_K}"):
        await router.aroute_batch(["refund"], top_k=top_k)


async def test_top_k_up_to_the_maximum_returns_at_most_every_route(router: SemanticRouter) -> None:
    m = router.route("refund my payment", top_k=MAX_TOP_K)
    assert m.name == "billing" and {c.name for c in m.candidates} == {"billing", "weather"}
    assert len(m.selected) <= 2
    assert (await router.aroute("refund my payment", top_k=MAX_TOP_K)).name == "billing"


@pytest.mark.parametrize("bad", [{"name": "vpn", "utterances": ["vpn is down"]}, "vpn", ("vpn", ["x"]), None])
def test_a_non_route_argument_is_a_type_error(router: SemanticRouter, bad: object) -> None:
    for call in (
        lambda: router.add(bad),  # type: ignore[arg-type]
        lambda: router.add(bad, replace=True),  # type: ignore[arg-type]
        lambda: router.add_many([bad]),  # type: ignore[list-item]
        lambda: router.add_many([Route("vpn", ["vpn is down"]), bad], replace=True),  # type: ignore[list-item]
        lambda: router.update(bad),  # type: ignore[arg-type]
        lambda: router.upsert(bad),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidTypeError, match="Route"):
            call()
    assert "vpn" not in router and len(router) == 2 and router.verify() == []


@pytest.mark.parametrize("interval", [-1, -0.001, math.nan, math.inf, "1", True])
def test_replica_sync_refuses_a_bad_poll_interval(router: SemanticRouter, interval: object) -> None:
    # -1 used to turn catch-up off without a word
    with pytest.raises(InvalidInputError, match="poll_interval"):
        ReplicaSync(router, poll_interval=interval)  # type: ignore[arg-type]


@pytest.mark.parametrize("interval", [None, 0, 0.0, 0.5, 2])
def test_replica_sync_accepts_off_and_positive_intervals(
    router: SemanticRouter, interval: float | None
) -> None:
    sync = ReplicaSync(router, poll_interval=interval)
    assert sync.poll_interval == float(interval or 0.0)


def test_a_store_opened_with_create_false_must_exist(tmp_path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(NotARouterStoreError, match="no store at"):
        RouteStore(str(missing), create=False)
    with pytest.raises(NotARouterStoreError, match="no store at"):
        SemanticRouter(encoder=HashEncoder(), store=RouteStore(missing, create=False))
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(NotARouterStoreError):
        RouteStore(str(empty), create=False)
    assert empty.stat().st_size == 0
    made = tmp_path / "made.db"
    RouteStore(str(made)).close()  # the default creates it
    store = RouteStore(str(made), create=False)
    assert store.counts() == (0, 0)
    store.close()


@pytest.mark.postgres
def test_a_postgres_database_without_a_store_is_not_given_tables(postgres_url: str) -> None:
    import sqlalchemy as sa

    with pytest.raises(NotARouterStoreError, match="holds no router store"):
        RouteStore(postgres_url, create=False)
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
    engine.dispose()
    RouteStore(postgres_url).close()
    store = RouteStore(postgres_url, create=False)
    assert store.counts() == (0, 0)
    store.close()
