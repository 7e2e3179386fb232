"""The single-query route path's shortcuts give exactly what the general code gives."""

from __future__ import annotations

import random
import unicodedata

import numpy as np
import pytest

from synaptoroute_agents import (
    InvalidInputError,
    InvalidQueryError,
    InvalidTypeError,
    Reason,
    Route,
    RouterClosedError,
    SemanticRouter,
)
from synaptoroute_agents.router.decide import decide
from synaptoroute_agents.routes import MAX_TEXT_CHARS, clean_text
from synaptoroute_agents.scoring import CosinePolicy, QueryBatch
from synaptoroute_agents.scoring.base import Decision

ROUTES = [
    Route("weather", ["what's the weather like today", "will it rain tomorrow", "forecast for the weekend"]),
    Route("billing", ["I was charged twice", "where is my invoice", "refund my last payment"]),
    Route("password", ["I forgot my password", "reset my login", "my account is locked"]),
    Route("music", ["play some jazz", "skip this song", "turn the volume up"]),
]
QUERIES = ["will it snow on sunday", "I need my money back", "locked out of my account", "next track"]


def _full_clean(text: str) -> str:
    """The four cleaning steps, always all of them (what clean_text did before its ASCII shortcut)."""
    out = text[: 4 * MAX_TEXT_CHARS].encode("utf-8", "replace").decode("utf-8")
    out = out.translate({c: " " for c in range(0xA0) if unicodedata.category(chr(c)) == "Cc"})
    out = " ".join(unicodedata.normalize("NFC", out).split())
    if not out:
        raise InvalidQueryError("query is empty")
    return out[:MAX_TEXT_CHARS]


def test_clean_text_on_ascii_equals_the_full_cleaning() -> None:
    rng = random.Random(7)
    alphabet = [chr(c) for c in range(128)]
    texts = ["  refund\tmy  payment\n", "a\x00b\x7fc", "x\x1cy\x1fz", " ", "\x0b\x0c", "plain words"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    texts += ["e\u0301 caf\u00e9", "\ud800 lone", "a\u0085b\u00a0c", "x" * (5 * MAX_TEXT_CHARS)]
    for text in texts:
        try:
            want = _full_clean(text)
        except InvalidQueryError:
            with pytest.raises(InvalidQueryError):
                clean_text(text)
            continue
        assert clean_text(text) == want, repr(text)


@pytest.fixture
def router(encoder) -> SemanticRouter:
    r = SemanticRouter(encoder=encoder)
    r.add_many(ROUTES)
    yield r
    r.close()


def test_removed_rows_and_empty_slots_decide_as_if_absent(router: SemanticRouter) -> None:
    """Slots whose id is no longer a row (removed) are skipped and an empty slot (-1) ends the list,
    the general loop; a query whose slots are all rows takes the shortcut: both decide the same."""
    Q = router.embed(QUERIES)
    scores, ids = router.index.search(Q, 12)
    tables, policy = router._tables, router.policy
    for top_k in (1, 2, 3):
        want = decide(tables, router.index, policy, QueryBatch(Q, QUERIES), top_k, 12, (scores, ids))
        # a removed row's id between the best two, then the same rows, then two empty slots
        s2 = np.concatenate([scores[:, :1], scores[:, :1], scores[:, 1:], np.full((len(Q), 2), -np.inf)], 1)
        i2 = np.concatenate(
            [ids[:, :1], np.full((len(Q), 1), 10**12), ids[:, 1:], np.full((len(Q), 2), -1)], 1
        )
        got = decide(tables, router.index, policy, QueryBatch(Q, QUERIES), top_k, 12, (s2, i2))
        assert got == want
        assert [len(m.evidence) for m in got] == [3] * len(QUERIES)
        assert all(m.evidence[0].utterance for m in got)


def test_route_is_route_batch_of_one_with_the_same_errors(router: SemanticRouter) -> None:
    for q in [*QUERIES, "  play\tsome   jazz ", "café au lait", b"skip this song"]:
        for top_k in (1, 3):
            assert router.route(q, top_k=top_k) == router.route_batch([q], top_k=top_k)[0]
    for bad, err in [("", InvalidQueryError), ("  \x00 ", InvalidQueryError), (3, InvalidTypeError)]:
        with pytest.raises(err):
            router.route(bad)  # type: ignore[arg-type]
    for top_k in (0, True, 1001):
        with pytest.raises(InvalidInputError):
            router.route("play some jazz", top_k=top_k)
    router.close()
    with pytest.raises(RouterClosedError):
        router.route("play some jazz")


class _StringReasons(CosinePolicy):
    """A policy that gives its reasons as plain strings."""

    def decide(self, queries, neighbors, live_routes, top_k=1):  # type: ignore[no-untyped-def]
        return [
            Decision(d.ranked, d.chosen, str(d.reason))
            for d in super().decide(queries, neighbors, live_routes, top_k)
        ]  # type: ignore[arg-type]


def test_a_policy_reason_given_as_a_string_becomes_a_reason(router: SemanticRouter) -> None:
    Q = router.embed(QUERIES)
    got = decide(router._tables, router.index, _StringReasons(), QueryBatch(Q, QUERIES), 1, 12)
    want = decide(router._tables, router.index, CosinePolicy(), QueryBatch(Q, QUERIES), 1, 12)
    assert got == want
    assert all(type(m.reason) is Reason for m in got)
