"""Multi-intent by clauses: a message joining two requests finds both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synaptoroute_agents import BundledEncoder, Route, SemanticRouter
from synaptoroute_agents.clauses import split_clauses

FIXTURE = Path(__file__).parent / "fixtures" / "clinc10" / "train.jsonl"
TWO_INTENTS = Path(__file__).parent.parent / "benchmarks" / "data" / "two_intents.jsonl"


@pytest.fixture(scope="module")
def router() -> SemanticRouter:
    by_label: dict[str, list[str]] = {}
    for line in FIXTURE.read_text().splitlines():
        row = json.loads(line)
        if row["label"] != "oos":
            by_label.setdefault(row["label"], []).append(row["text"])
    r = SemanticRouter(BundledEncoder(threads=2))
    r.add_many([Route(name, texts) for name, texts in by_label.items()])
    return r


def test_split_clauses_at_punctuation_and_joining_words() -> None:
    assert split_clauses("Cancel my order and tell me tomorrow's weather") == [
        "Cancel my order",
        "tell me tomorrow's weather",
    ]
    assert split_clauses("add milk to my list, then remind me to call mom") == [
        "add milk to my list",
        "remind me to call mom",
    ]
    assert split_clauses("what is my limit? also when is the bill due") == [
        "what is my limit",
        "also when is the bill due",
    ]
    assert split_clauses("rock and roll") == ["rock and roll"]  # one-word halves are no clauses


def test_route_multi_finds_both_intents_with_the_clause_that_chose_each(router: SemanticRouter) -> None:
    text = "what's my credit limit and when is my water bill due"
    whole = router.route(text, top_k=2)
    assert set(whole.selected) != {"credit_limit", "bill_due"}  # one embedding misses one of them
    found = {m.name: m.clause for m in router.route_multi(text, top_k=2)}
    assert found == {"credit_limit": "what's my credit limit", "bill_due": "when is my water bill due"}


def test_two_intent_set_recall_by_clauses(router: SemanticRouter) -> None:
    rows = [json.loads(line) for line in TWO_INTENTS.read_text().splitlines() if line.strip()]
    fixture_rows = [r for r in rows if set(r["routes"]) <= {route.name for route in router.routes()}]
    assert len(rows) >= 40 and len(fixture_rows) >= 20
    both = sum(set(r["routes"]) <= {m.name for m in router.route_multi(r["text"])} for r in fixture_rows)
    whole = sum(set(r["routes"]) <= set(router.route(r["text"], top_k=2).selected) for r in fixture_rows)
    assert both >= 0.85 * len(fixture_rows)
    assert both > whole


def test_a_given_whole_decision_routes_only_the_clauses(router: SemanticRouter) -> None:
    calls: list[int] = []
    encoder = router.encoder
    real = encoder.embed

    def counting(texts):  # type: ignore[no-untyped-def]
        calls.append(len(texts))
        return real(texts)

    for text in ("cancel my order and tell me tomorrow's weather", "what is my credit limit"):
        expected = router.route_multi(text, top_k=2)
        whole = router.route(text, top_k=2)
        encoder.embed = counting  # type: ignore[method-assign]
        try:
            found = router.route_multi(text, top_k=2, whole=whole)
        finally:
            del encoder.embed
        assert [(m.name, m.clause) for m in found] == [(m.name, m.clause) for m in expected]
    assert calls == [2]  # the two clauses of the first message; nothing for a one-clause message
