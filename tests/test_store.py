"""The store is the truth: restarts, other encoders, foreign files, replicas. SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pytest
import sqlalchemy as sa

from synaptoroute_agents import (
    DuplicateRouteError,
    EncoderMismatchError,
    NotARouterStoreError,
    Route,
    RouteStore,
    SchemaVersionError,
    SemanticRouter,
)

from .conftest import CountingEncoder

ROUTES = [
    Route("weather", ["will it rain tomorrow", "weekend forecast"], description="forecasts", threshold=0.3),
    Route("billing", ["refund my payment", "I was charged twice"], metadata={"team": "finance", "tier": 2}),
]


def fill(router: SemanticRouter) -> None:
    for r in ROUTES:
        router.add(r)


def test_restart_loads_without_reembedding(store_url: str, encoder) -> None:
    first = CountingEncoder(encoder)
    with SemanticRouter(encoder=first, store=store_url) as r:
        fill(r)
        r.add_utterances("billing", ["where is my invoice"])
        assert first.texts == 5
        before = r.route("sunny on saturday?")

    again = CountingEncoder(encoder)
    with SemanticRouter(encoder=again, store=store_url) as r:
        assert again.texts == 0  # nothing re-embedded at boot
        assert [x.name for x in r.routes()] == ["billing", "weather"]
        assert r.get("weather") == ROUTES[0]
        assert r.get("billing").metadata == {"team": "finance", "tier": 2}
        assert r.get("billing").utterances[-1] == "where is my invoice"
        after = r.route("sunny on saturday?")
        assert after.name == before.name == "weather"
        assert after.score == pytest.approx(before.score, abs=1e-6)


def test_another_encoder_is_detected_and_reembeds_or_refuses(store_url: str, encoder) -> None:
    with SemanticRouter(encoder=encoder, store=store_url) as r:
        fill(r)
    other = CountingEncoder(encoder, model_id="another-model")
    with pytest.raises(EncoderMismatchError):
        SemanticRouter(encoder=other, store=store_url, on_encoder_mismatch="error")
    assert other.texts == 0
    with SemanticRouter(encoder=other, store=store_url) as r:
        assert other.texts == 4  # every utterance re-embedded once
        assert r.route("will it rain tomorrow").name == "weather"
    other2 = CountingEncoder(encoder, model_id="another-model")
    with SemanticRouter(encoder=other2, store=store_url):
        assert other2.texts == 0  # and stored under the new model id


def test_each_mutation_is_one_versioned_transaction(store_url: str, encoder) -> None:
    store = RouteStore(store_url)
    with SemanticRouter(encoder=encoder, store=store) as r:
        v0 = store.current_version()
        fill(r)
        r.add_utterances("weather", ["snow next week?"])
        r.remove_utterances("weather", ["snow next week?"])
        r.delete("billing")
        with pytest.raises(DuplicateRouteError):
            r.add(ROUTES[0])
        changes = store.changes_since(v0)
        assert [c[1] for c in changes] == ["add", "add", "add_utterances", "remove_utterances", "delete"]
        assert [c[0] for c in changes] == sorted(c[0] for c in changes)
        assert r.version == store.current_version()
        assert store.counts() == (1, 2)
    store.close()


def test_a_second_router_catches_up_with_refresh(store_url: str, encoder) -> None:
    a = SemanticRouter(encoder=encoder, store=store_url)
    b = SemanticRouter(encoder=encoder, store=store_url)
    try:
        fill(a)
        assert len(b) == 0
        assert b.refresh() == 2
        assert b.route("will it rain tomorrow").name == "weather"
        a.update(Route("weather", ["is it sunny"], threshold=0.2))
        a.delete("billing")
        b.refresh()
        assert [x.name for x in b.routes()] == ["weather"]
        assert b.get("weather").utterances == ("is it sunny",)
        assert b.route("refund my payment").name != "billing"
        assert b.refresh() == 0
        assert len(b.index) == len(a.index) == 1
    finally:
        a.close()
        b.close()


def test_many_threads_mutate_one_store(store_url: str, encoder) -> None:
    errors: list[BaseException] = []
    with SemanticRouter(encoder=encoder, store=store_url) as r:

        def work(n: int) -> None:
            try:
                for j in range(4):
                    r.add(Route(f"r{n}_{j}", [f"question {n} {j}", f"another {n} {j}"]))
                r.delete(f"r{n}_0")
                r.add_utterances(f"r{n}_1", [f"more {n}"])
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert len(r) == 24 and len(r.index) == 24 * 2 + 8
    with SemanticRouter(encoder=encoder, store=store_url) as again:
        assert sorted(x.name for x in again.routes()) == sorted(x.name for x in r.routes())
        assert len(again.index) == 56


def test_a_text_file_is_not_a_store(tmp_path) -> None:
    p = tmp_path / "notes.db"
    p.write_text("just some notes\n" * 10)
    with pytest.raises(NotARouterStoreError):
        RouteStore(p)
    assert p.read_text().startswith("just some notes")  # untouched


def test_another_sqlite_database_is_not_a_store(tmp_path) -> None:
    p = tmp_path / "app.db"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(NotARouterStoreError):
        RouteStore(p)


def test_a_newer_schema_is_refused(tmp_path) -> None:
    p = tmp_path / "r.db"
    RouteStore(p).close()
    eng = sa.create_engine(f"sqlite:///{p}")
    with eng.begin() as conn:
        conn.execute(sa.text("UPDATE sr_meta SET value='99' WHERE key='schema_version'"))
    eng.dispose()
    with pytest.raises(SchemaVersionError):
        RouteStore(p)


def test_embeddings_are_float32_blobs_tagged_with_the_model(tmp_path, encoder) -> None:
    p = tmp_path / "r.db"
    with SemanticRouter(encoder=encoder, store=p) as r:
        r.add(ROUTES[0])
    con = sqlite3.connect(p)
    rows = con.execute("SELECT model_id, dim, vector FROM sr_utterances").fetchall()
    con.close()
    assert {(m, d) for m, d, _ in rows} == {(encoder.model_id, 384)}
    v = np.frombuffer(rows[0][2], dtype=np.float32)
    assert v.shape == (384,) and abs(float(v @ v) - 1) < 1e-5
