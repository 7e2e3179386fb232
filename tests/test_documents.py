from __future__ import annotations

import pytest

from synaptoroute_agents import (
    DocumentIndex,
    InvalidInputError,
    InvalidQueryError,
    InvalidTypeError,
    Route,
    RouteStore,
    SemanticRouter,
    chunk_text,
)

from .conftest import CountingEncoder

DOCS = [
    "To reset your VPN password, open the self-service portal and choose 'forgot password'.",
    "The office printer on floor 3 is serviced every Monday.",
    {"text": "Laptops are replaced every four years.", "metadata": {"src": "policy"}},
]


def test_add_search_delete_and_restart(store_url: str, counting: CountingEncoder) -> None:
    index = DocumentIndex(counting, store_url, name="kb")
    ids = index.add(DOCS, metadatas=[{"n": 1}, {"n": 2}, {"n": 3}])
    assert len(ids) == 3 and len(index) == 3
    hits = index.search("I forgot my vpn password", k=2)
    assert hits[0].id == ids[0] and hits[0].score > hits[1].score
    assert index.search("when do we get new laptops", k=1)[0].metadata == {"src": "policy", "n": 3, "doc": 2}
    index.close()
    embedded = counting.texts
    again = DocumentIndex(counting, store_url, name="kb")
    assert len(again) == 3
    assert counting.texts == embedded  # reopening did not re-embed the passages
    assert again.search("printer maintenance day", k=1)[0].id == ids[1]
    assert again.delete([ids[1], 999_999]) == 1
    assert sorted(h.id for h in again.search("printer maintenance day", k=5)) == [ids[0], ids[2]]
    other = DocumentIndex(counting, again.store, name="other")  # collections are separate
    assert len(other) == 0 and other.search("vpn", k=3) == []
    again.close()
    third = DocumentIndex(counting, store_url, name="kb")
    assert len(third) == 2
    third.close()


def test_shares_a_router_database(tmp_path, encoder) -> None:
    router = SemanticRouter(encoder, store=tmp_path / "r.db")
    router.add(Route("billing", ["refund please"]))
    index = DocumentIndex(router=router)
    index.add(["Refunds take five business days."])
    assert index.encoder is router.encoder and index.store is router.store
    router.close()
    store = RouteStore(tmp_path / "r.db")
    assert store.counts() == (1, 1)
    assert len(DocumentIndex(encoder, store)) == 1


def test_other_encoder_reembeds_once(tmp_path, encoder) -> None:
    first = CountingEncoder(encoder, model_id="old-model")
    index = DocumentIndex(first, tmp_path / "d.db")
    index.add(["alpha beta", "gamma delta"])
    index.close()
    second = CountingEncoder(encoder)
    DocumentIndex(second, tmp_path / "d.db").close()
    assert second.texts == 2
    third = CountingEncoder(encoder)
    DocumentIndex(third, tmp_path / "d.db").close()
    assert third.texts == 0


def test_chunking_long_documents(encoder) -> None:
    long_text = "\n\n".join(
        [f"Paragraph {i} about topic {i}. " + " ".join(["filler"] * 60) for i in range(8)]
        + ["The secret launch code is kept in the blue binder. " + " ".join(["more"] * 400)]
    )
    chunks = chunk_text(long_text, chunk_size=600, chunk_overlap=80)
    assert all(len(c) <= 600 for c in chunks) and len(chunks) > 5
    joined = " ".join(chunks)
    assert "blue binder" in joined and "Paragraph 7" in joined
    index = DocumentIndex(encoder, chunk_size=600, chunk_overlap=80)
    ids = index.add([long_text])
    assert len(ids) == len(chunks)
    hit = index.search("where is the launch code kept", k=1)[0]
    assert "blue binder" in hit.text and hit.metadata["chunk"] >= 1
    assert chunk_text("short") == ["short"]


async def test_asearch(encoder) -> None:
    index = DocumentIndex(encoder)
    await index.aadd(DOCS)
    hits = await index.asearch("new laptop policy", k=1)
    assert "four years" in hits[0].text


def test_bad_input(encoder) -> None:
    index = DocumentIndex(encoder)
    with pytest.raises(InvalidTypeError):
        index.add("a single string")
    with pytest.raises(InvalidInputError):
        index.add(["ok", "   "])
    assert len(index) == 0  # nothing stored when one document is bad
    with pytest.raises(InvalidTypeError):
        index.add([42])
    with pytest.raises(InvalidInputError):
        index.add(["a", "b"], metadatas=[{}])
    with pytest.raises(InvalidInputError):
        index.add(["a"], metadatas=[{"x": object()}])
    with pytest.raises(InvalidQueryError):
        index.search("   ")
    with pytest.raises(InvalidInputError):
        index.search("ok", k=0)
    with pytest.raises(InvalidTypeError):
        index.delete(["1"])
    with pytest.raises(InvalidInputError):
        DocumentIndex(encoder, name="bad name!")
    with pytest.raises(InvalidInputError):
        chunk_text("x", chunk_size=10)
    assert index.search("anything") == []
