from __future__ import annotations

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_synaptoroute import SynaptoRouteEmbeddings

from synaptoroute_agents import InvalidQueryError, InvalidTypeError


def test_embeddings_are_unit_vectors_of_the_encoder_dimension(lc_encoder):
    emb = SynaptoRouteEmbeddings(lc_encoder)
    assert isinstance(emb, Embeddings)
    docs = emb.embed_documents(["the cat sat on the mat", "stock markets fell sharply"])
    assert len(docs) == 2 and all(len(v) == lc_encoder.dim for v in docs)
    assert all(isinstance(x, float) for x in docs[0])
    np.testing.assert_allclose(np.linalg.norm(np.array(docs), axis=1), 1.0, rtol=1e-4)
    query = emb.embed_query("the cat sat on the mat")
    np.testing.assert_allclose(query, docs[0], atol=1e-5)
    assert emb.embed_documents([]) == []


def test_embeddings_batches_give_the_same_vectors(lc_encoder):
    texts = [f"message number {i} about topic {i % 3}" for i in range(7)]
    one = SynaptoRouteEmbeddings(lc_encoder, batch_size=2).embed_documents(texts)
    all_ = SynaptoRouteEmbeddings(lc_encoder, batch_size=64).embed_documents(texts)
    np.testing.assert_allclose(one, all_, atol=1e-5)


async def test_async_embeddings_match_sync(lc_encoder):
    emb = SynaptoRouteEmbeddings(lc_encoder)
    sync = emb.embed_documents(["hello world"])
    assert np.allclose(await emb.aembed_documents(["hello world"]), sync, atol=1e-5)
    assert np.allclose(await emb.aembed_query("hello world"), sync[0], atol=1e-5)


def test_in_memory_vector_store_finds_the_related_document(lc_encoder):
    store = InMemoryVectorStore(SynaptoRouteEmbeddings(lc_encoder))
    store.add_documents(
        [
            Document("Refunds are issued within five business days.", metadata={"topic": "billing"}),
            Document(
                "Parcels are shipped by courier and can be tracked online.", metadata={"topic": "shipping"}
            ),
            Document("Tomorrow will be sunny with a light breeze.", metadata={"topic": "weather"}),
        ]
    )
    hits = store.similarity_search("how long until I get my money back?", k=1)
    assert hits[0].metadata["topic"] == "billing"
    hits = store.similarity_search("where is my package", k=1)
    assert hits[0].metadata["topic"] == "shipping"


def test_default_encoder_loads_lazily():
    emb = SynaptoRouteEmbeddings()
    assert "not loaded" in repr(emb)
    assert not emb._encoder.loaded  # nothing built yet


def test_bad_input_is_a_typed_error(lc_encoder):
    emb = SynaptoRouteEmbeddings(lc_encoder)
    with pytest.raises(InvalidTypeError):
        emb.embed_documents("a single string")
    with pytest.raises(InvalidQueryError):
        emb.embed_query("  ")
    with pytest.raises(InvalidTypeError):
        SynaptoRouteEmbeddings(encoder=object())
    with pytest.raises(ValueError):
        SynaptoRouteEmbeddings(lc_encoder, batch_size=0)


def test_package_imports_without_touching_the_framework():
    import subprocess
    import sys

    code = (
        "import sys, langchain_synaptoroute as m; "
        "assert 'langchain_core' not in sys.modules, 'framework imported eagerly'; "
        "assert set(m.__all__) <= set(dir(m))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
