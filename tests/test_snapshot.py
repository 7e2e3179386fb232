"""Boot snapshots: a packed copy of the store's vectors that a boot reads instead of one row per
utterance, brought up to date with the change log. The utterance rows stay the truth: every stale,
foreign or damaged snapshot falls back to them. SQLite file and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sqlalchemy as sa

from synaptoroute_agents import EncoderMismatchError, Route, RouteStore, SemanticRouter
from synaptoroute_agents.router import boot as router_module
from synaptoroute_agents.testing import HashEncoder

from .conftest import CountingEncoder

ROUTES = [
    Route("weather", ["will it rain tomorrow", "weekend forecast", "is it cold outside"], threshold=0.3),
    Route(
        "billing",
        ["refund my payment", "I was charged twice", "update my credit card"],
        description="money",
        metadata={"team": "finance", "tier": 2},
    ),
    Route("greeting", ["hello there", "good morning", "hi, how are you"]),
]
QUERIES = ["sunny on saturday?", "I want my money back", "hey, good evening", "refund my payment"]


def decisions(r: SemanticRouter) -> list[tuple[str | None, float, tuple[str, ...]]]:
    out = []
    for q in QUERIES:
        m = r.route(q)
        out.append((m.name, round(m.score, 5), tuple(e.utterance for e in m.evidence)))
    return out


def state(r: SemanticRouter) -> list[dict]:
    return [x.to_dict() for x in r.routes()]


def build(store_url: str, encoder) -> tuple[list, list]:
    with SemanticRouter(encoder=encoder, store=store_url) as r:
        r.add_many(ROUTES)
        assert r.save_snapshot()
        assert not r.save_snapshot()  # an equally recent one exists: nothing to write
        return decisions(r), state(r)


def test_boot_reads_the_snapshot_and_serves_the_same(store_url: str, encoder) -> None:
    want_decisions, want_state = build(store_url, encoder)
    again = CountingEncoder(encoder)
    with SemanticRouter(encoder=again, store=store_url) as r:
        assert r.boot_info["source"] == "snapshot"
        assert r.boot_info["changes_applied"] == 0
        assert again.texts == 0  # nothing embedded at boot
        assert state(r) == want_state
        assert r.get("billing").metadata == {"team": "finance", "tier": 2}
        assert decisions(r) == want_decisions
        assert r.verify() == []
        assert r.stats()["vectors"] == 9
    # the vectors are read straight into an array the caller gives (the index's own storage)
    store = RouteStore(store_url)
    info = store.snapshot_info(encoder.model_id, encoder.dim)
    assert info is not None
    plain = store.load_snapshot(info)
    given: list[np.ndarray] = []

    def into(n: int, dim: int) -> np.ndarray:
        given.append(np.full((n, dim), np.nan, dtype=np.float32))
        return given[-1]

    read = store.load_snapshot(info, into)
    assert plain is not None and read is not None and len(given) == 1
    assert read.vectors.ctypes.data == given[0].ctypes.data
    np.testing.assert_array_equal(read.vectors, plain.vectors)
    assert read.ids.tolist() == plain.ids.tolist() and read.texts == plain.texts
    assert read.routes == plain.routes and read.route_names == plain.route_names
    # an array that does not fit is refused: the caller reads the rows instead
    assert store.load_snapshot(info, lambda n, d: np.zeros((n, d + 1), dtype=np.float32)) is None
    store.close()
    with SemanticRouter(encoder=encoder, store=store_url, snapshot="off") as r:
        assert r.boot_info["source"] == "rows"
        assert state(r) == want_state and decisions(r) == want_decisions


def test_changes_after_the_snapshot_are_applied_and_deletions_stay_deleted(store_url: str, encoder) -> None:
    build(store_url, encoder)
    with SemanticRouter(encoder=encoder, store=store_url, snapshot="off") as w:
        w.delete("billing")
        w.remove_utterances("weather", ["weekend forecast"])
        w.add_utterances("weather", ["do I need an umbrella"])
        w.update(Route("greeting", ["hello there", "good night"], threshold=0.2, description="hi"))
        w.add(Route("refunds", ["give me my money back", "refund please"]))
        want_state, want_decisions = state(w), decisions(w)
    with SemanticRouter(encoder=encoder, store=store_url, snapshot="read") as r:
        assert r.boot_info["source"] == "snapshot"
        assert r.boot_info["changes_applied"] == 5
        store = RouteStore(store_url)
        assert r.version == store.current_version()
        store.close()
        assert state(r) == want_state
        assert decisions(r) == want_decisions
        assert r.verify() == []
        assert "billing" not in r
        for q in ["refund my payment", "weekend forecast", "good morning"]:
            m = r.route(q, top_k=3)
            assert "billing" not in [c.name for c in m.candidates]
            gone = {"refund my payment", "I was charged twice", "update my credit card", "weekend forecast"}
            assert not gone & {e.utterance for e in m.evidence}  # removed utterances never explain
        assert r.get("greeting").threshold == 0.2 and r.get("greeting").description == "hi"
        assert len(r.index) == 3 + 2 + 2  # weather, greeting, refunds


def test_a_snapshot_of_another_encoder_is_not_used(store_url: str, encoder) -> None:
    build(store_url, encoder)
    store = RouteStore(store_url)
    assert store.snapshot_info(encoder.model_id, encoder.dim) is not None
    other = CountingEncoder(encoder, model_id="another-model")
    with SemanticRouter(encoder=other, store=store_url) as r:
        assert r.boot_info["source"] == "rows"
        assert other.texts == 9  # its rows were re-embedded...
    assert store.snapshot_info() is None  # ...which made the snapshot stale: it is gone
    back = CountingEncoder(encoder)
    with SemanticRouter(encoder=back, store=store_url) as r:
        assert r.boot_info["source"] == "rows" and back.texts == 9
        assert r.verify() == []
    store.close()


DAMAGES = ["flipped_byte", "missing_chunk", "truncated_chunk", "unknown_format", "bad_layout"]


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_snapshot_falls_back_to_the_rows(store_url: str, encoder, damage: str, caplog) -> None:
    want_decisions, want_state = build(store_url, encoder)
    store = RouteStore(store_url)
    info = store.snapshot_info()
    assert info is not None
    with store.engine.begin() as conn:
        chunk = sa.text("SELECT data FROM sr_snapshot_chunks WHERE snapshot_id = :i AND seq = 0")
        data = bytes(conn.execute(chunk, {"i": info.id}).scalar_one())
        update = sa.text("UPDATE sr_snapshot_chunks SET data = :d WHERE snapshot_id = :i AND seq = 0")
        if damage == "flipped_byte":
            pos = len(data) - 100  # inside the vectors
            conn.execute(
                update, {"d": data[:pos] + bytes([data[pos] ^ 0x40]) + data[pos + 1 :], "i": info.id}
            )
        elif damage == "missing_chunk":
            conn.execute(sa.text("DELETE FROM sr_snapshot_chunks WHERE snapshot_id = :i"), {"i": info.id})
        elif damage == "truncated_chunk":
            conn.execute(update, {"d": data[:-8], "i": info.id})
        else:
            layout = json.loads(info.layout)
            if damage == "unknown_format":
                layout["format"] = 99
            else:
                layout["sections"]["texts"][1] += 10**9
            conn.execute(
                sa.text("UPDATE sr_snapshots SET layout = :l WHERE id = :i"),
                {"l": json.dumps(layout), "i": info.id},
            )
    with SemanticRouter(encoder=encoder, store=store_url, snapshot="read") as r:
        assert r.boot_info["source"] == "rows"
        assert state(r) == want_state and decisions(r) == want_decisions
        assert r.verify() == []
    assert "boot snapshot" in caplog.text
    store.close()


def test_a_damaged_snapshot_is_replaced_in_auto_mode(store_url: str, encoder, monkeypatch) -> None:
    build(store_url, encoder)
    store = RouteStore(store_url)
    info = store.snapshot_info()
    assert info is not None
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM sr_snapshot_chunks WHERE seq = 1 OR seq = 0"))
    monkeypatch.setattr(router_module, "SNAPSHOT_MIN_VECTORS", 5)
    with SemanticRouter(encoder=encoder, store=store_url) as r:
        assert r.boot_info["source"] == "rows"
        r.wait_snapshot()
    fresh = store.snapshot_info()
    assert fresh is not None and fresh.id != info.id and fresh.version == info.version
    with SemanticRouter(encoder=encoder, store=store_url, snapshot="read") as r:
        assert r.boot_info["source"] == "snapshot" and r.verify() == []
    store.close()


def test_large_stores_get_a_snapshot_by_themselves(store_url: str, monkeypatch) -> None:
    enc = HashEncoder()
    store = RouteStore(store_url)
    routes = [Route(f"r{i}", [f"utterance {j} of route {i}" for j in range(3)]) for i in range(40)]
    store.add_routes(routes, [enc.embed(r.utterances) for r in routes], enc.model_id)  # a bulk import
    monkeypatch.setattr(router_module, "SNAPSHOT_MIN_VECTORS", 100)
    with SemanticRouter(encoder=enc, store=store, snapshot="read") as r:
        assert r.boot_info["source"] == "rows"
        r.wait_snapshot()
    assert store.snapshot_info() is None  # "read" never writes
    with SemanticRouter(encoder=enc, store=store) as r:
        assert r.boot_info["source"] == "rows"
        r.wait_snapshot()
    info = store.snapshot_info(enc.model_id, enc.dim)
    assert info is not None and info.rows == 120 and info.routes == 40 and info.version == 40
    with SemanticRouter(encoder=enc, store=store) as r:
        assert r.boot_info["source"] == "snapshot"
        assert r.route("utterance 2 of route 17").evidence[0].route == "r17"
        assert r.verify() == []
    store.close()


def test_a_snapshot_far_behind_the_store_is_not_used(store_url: str, encoder, monkeypatch) -> None:
    build(store_url, encoder)
    monkeypatch.setattr(router_module, "SNAPSHOT_MAX_BEHIND", 2)
    with SemanticRouter(encoder=encoder, store=store_url, snapshot="off") as w:
        w.add_utterances("weather", ["snow next week"])
        w.add_utterances("greeting", ["good evening"])
        assert len(w.store.changes_since(w.store.snapshot_info().version)) == 2
    with SemanticRouter(encoder=encoder, store=store_url, snapshot="read") as r:
        assert r.boot_info["source"] == "snapshot"  # 2 behind: caught up
    with SemanticRouter(encoder=encoder, store=store_url, snapshot="off") as w:
        w.remove_utterances("weather", ["snow next week"])
    with SemanticRouter(encoder=encoder, store=store_url, snapshot="read") as r:
        assert r.boot_info["source"] == "rows"  # 3 behind: the rows are read instead
        assert "snow next week" not in r.get("weather").utterances
        assert r.verify() == []


def test_a_store_from_before_snapshots_gains_the_tables(tmp_path, encoder) -> None:
    db = tmp_path / "old.db"
    with SemanticRouter(encoder=encoder, store=db) as r:
        r.add_many(ROUTES)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE sr_snapshot_chunks"))
        conn.execute(sa.text("DROP TABLE sr_snapshots"))
    engine.dispose()
    with SemanticRouter(encoder=encoder, store=db) as r:
        assert r.store.snapshots_enabled
        assert r.save_snapshot()
    with SemanticRouter(encoder=encoder, store=db) as r:
        assert r.boot_info["source"] == "snapshot" and r.verify() == []


WRITER = textwrap.dedent(
    """
    import sys
    from synaptoroute_agents import Route, SemanticRouter
    from synaptoroute_agents.testing import HashEncoder

    r = SemanticRouter(encoder=HashEncoder(), store=sys.argv[1], snapshot="off")
    print("READY", flush=True)
    for k in range(int(sys.argv[2])):
        r.add(Route(f"w{k}", [f"writer route {k} a", f"writer route {k} b"]))
        r.add_utterances(f"r{k % 30}", [f"taught {k}"])
        if k % 3 == 0:
            r.remove_utterances(f"r{k % 30}", [f"utterance 0 of route {k % 30}"])
        if k % 4 == 0 and k:
            r.delete(f"w{k - 1}")
        if k % 5 == 0:
            r.delete(f"r{30 + k // 5}")
    r.close()
    """
)


def test_booting_while_another_process_writes(store_url: str) -> None:
    enc = HashEncoder()
    with SemanticRouter(encoder=enc, store=store_url) as r:
        r.add_many([Route(f"r{i}", [f"utterance {j} of route {i}" for j in range(4)]) for i in range(60)])
        assert r.save_snapshot()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, store_url, "40"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "READY"
        boots = []
        while writer.poll() is None or not boots:
            r = SemanticRouter(encoder=enc, store=store_url, snapshot="read")
            boots.append(r.boot_info)
            assert r.boot_info["source"] == "snapshot"
            # the index and the id maps agree, whatever the writer did meanwhile
            live = set(r.index.live_id_array().tolist())
            assert live == set().union(*r._route_ids.values()) == set(r._id_route)
            assert set(r._routes) == {n for n, ids in r._route_ids.items() if ids}
            r.close()
        assert writer.wait(120) == 0, writer.stderr.read() if writer.stderr else ""
    finally:
        if writer.poll() is None:
            writer.kill()
    with SemanticRouter(encoder=enc, store=store_url, snapshot="read") as r:
        assert r.boot_info["source"] == "snapshot" and r.boot_info["changes_applied"] > 100
        assert r.verify() == []
        with SemanticRouter(encoder=enc, store=store_url, snapshot="off") as rows:
            assert state(r) == state(rows)
            removed = {"utterance 0 of route 0", "utterance 0 of route 3"}
            for q in sorted(removed):
                ev = r.route(q, top_k=3).evidence
                assert not removed & {e.utterance for e in ev if e.route in ("r0", "r3")}
            assert "r35" not in r and "w35" not in r and "w39" in r
        ids = np.sort(r.index.live_id_array())
        assert len(ids) == len(np.unique(ids)) == len(r.index)


def test_embeddings_of_another_encoder_after_the_snapshot_are_not_served_as_is(
    store_url: str, encoder
) -> None:
    build(store_url, encoder)
    store = RouteStore(store_url)
    other = HashEncoder(dim=encoder.dim, model_id="another-model")
    late = Route("late", ["a route written by another encoder"])
    store.add_route(late, other.embed(late.utterances), other.model_id)
    with pytest.raises(EncoderMismatchError):
        SemanticRouter(encoder=encoder, store=store_url, on_encoder_mismatch="error")
    again = CountingEncoder(encoder)
    with SemanticRouter(encoder=again, store=store_url) as r:
        assert r.boot_info["source"] == "rows" and again.texts == 1  # re-embedded, as without a snapshot
        assert r.route("a route written by another encoder").name == "late"
        assert r.verify() == []
    store.close()


def test_a_bulk_import_writes_a_snapshot_but_not_in_memory(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(router_module, "SNAPSHOT_MIN_VECTORS", 20)
    enc = HashEncoder()
    routes = [Route(f"r{i}", [f"utterance {j} of route {i}" for j in range(3)]) for i in range(10)]
    with SemanticRouter(encoder=enc, store=None) as mem:
        mem.add_many(routes)
        mem.wait_snapshot()
        assert mem.store.snapshot_info() is None  # an in-memory store never boots again
    with SemanticRouter(encoder=enc, store=tmp_path / "bulk.db") as r:
        r.add_many(routes)
        r.wait_snapshot()
        info = r.store.snapshot_info(enc.model_id, enc.dim)
        assert info is not None and info.rows == 30 and info.version == r.version
    with SemanticRouter(encoder=enc, store=tmp_path / "bulk.db") as r:
        assert r.boot_info["source"] == "snapshot" and r.boot_info["changes_applied"] == 0


def test_an_approximate_index_boots_from_the_snapshot_and_its_saved_copy(tmp_path, encoder, caplog) -> None:
    db = tmp_path / "hnsw.db"
    with SemanticRouter(encoder=encoder, store=db, index="hnsw") as r:
        r.add_many(ROUTES)
        assert r.save_index()
        assert not r.save_snapshot()  # save_index wrote one as recent (snapshot="auto")
        want = decisions(r)
        r.add_utterances("greeting", ["good evening"])  # after both copies
    caplog.set_level("INFO", logger="synaptoroute_agents.router")
    with SemanticRouter(encoder=encoder, store=db, index="hnsw") as r:
        assert r.boot_info["source"] == "snapshot" and r.boot_info["changes_applied"] == 1
        assert "approximate index loaded from the store" in caplog.text
        assert r.verify() == []
        assert decisions(r)[:2] == want[:2]
        assert r.route("good evening").evidence[0].utterance == "good evening"


def test_a_saved_hnsw_copy_newer_than_the_snapshot_is_used_or_rebuilt_never_a_failed_boot(
    store_url: str, encoder, caplog
) -> None:
    late = Route("late", ["a route added after the snapshot", "another late example"])
    # snapshot="read" never writes a snapshot by itself: the one below stays older than the copy
    with SemanticRouter(encoder=encoder, store=store_url, index="hnsw", snapshot="read") as r:
        r.add_many(ROUTES)
        assert r.save_snapshot()
        r.add(late)
        assert r.save_index()
        want = decisions(r)
    caplog.set_level("INFO", logger="synaptoroute_agents.router")
    with SemanticRouter(encoder=encoder, store=store_url, index="hnsw") as r:
        assert "newer than the boot snapshot" in caplog.text
        assert "approximate index loaded from the store" not in caplog.text
        assert r.boot_info["source"] == "snapshot" and r.boot_info["changes_applied"] >= 1
        assert r.verify() == [] and len(r.index) == sum(len(x.utterances) for x in ROUTES) + 2
        assert decisions(r) == want
        assert r.route("another late example").name == "late"
        # with snapshot="auto", saving the copy writes a snapshot as new as it: the copy is used
        r.add_utterances("late", ["one more late example"])
        assert r.save_index()
        want = decisions(r)
    caplog.clear()
    with SemanticRouter(encoder=encoder, store=store_url, index="hnsw") as r:
        assert "approximate index loaded from the store" in caplog.text
        assert "newer than the boot snapshot" not in caplog.text
        assert r.boot_info["changes_applied"] == 0
        assert r.verify() == [] and decisions(r) == want
        assert r.route("one more late example").evidence[0].utterance == "one more late example"


def test_the_saved_hnsw_copy_is_read_beside_the_snapshot_and_a_failed_read_is_retried(
    tmp_path, encoder, caplog, monkeypatch
) -> None:
    db = tmp_path / "prefetch.db"
    with SemanticRouter(encoder=encoder, store=db, index="hnsw") as r:
        r.add_many(ROUTES)
        assert r.save_index()
        want = decisions(r)
    caplog.set_level("INFO", logger="synaptoroute_agents.router")
    threads: list[str] = []
    from synaptoroute_agents.router.boot import SavedIndex

    real = SavedIndex.read
    calls = {"n": 0}

    def flaky(self):  # the first read (in the prefetch thread) fails like a dropped connection
        import threading

        threads.append(threading.current_thread().name)
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("connection reset")
        return real(self)

    monkeypatch.setattr(SavedIndex, "read", flaky)
    with SemanticRouter(encoder=encoder, store=db, index="hnsw") as r:
        assert threads[0] == "synaptoroute-saved-index"  # read beside the snapshot, not after it
        assert "reading it again" in caplog.text and "approximate index loaded from the store" in caplog.text
        assert r.boot_info["source"] == "snapshot" and r.verify() == [] and decisions(r) == want
