"""EvalReport figures against a case computed by hand."""

from __future__ import annotations

import json

import pytest

from synaptoroute_agents import InvalidInputError
from synaptoroute_agents.evaluation import EvalExample, EvalReport


def ex(label: str, predicted: str | None, score: float = 0.9, top: str | None = None) -> EvalExample:
    return EvalExample("q", label, predicted, top if top is not None else predicted, score, "matched")


def hand_case() -> list[EvalExample]:
    return [
        ex("a", "a"),  # right
        ex("a", "a"),  # right
        ex("a", "b"),  # a -> b
        ex("b", "b"),  # right
        ex("b", None, 0.2, "b"),  # b refused: wrong
        ex("oos", None, 0.1, "a"),  # refused: right
        ex("oos", "a", 0.6),  # oos -> a
        ex("oos", None, 0.3, "b"),  # refused: right
    ]


def test_figures_match_hand_computation() -> None:
    r = EvalReport.from_examples(hand_case(), out_of_scope_label="oos")
    assert r.n == 8
    assert r.accuracy == pytest.approx(5 / 8)
    assert r.in_scope_accuracy == pytest.approx(3 / 5)
    assert r.oos_recall == pytest.approx(2 / 3)
    assert r.oos_precision == pytest.approx(2 / 3)  # 3 refusals, 2 of them out of scope
    # a: tp 2, fp 1 (oos->a), fn 1 -> p 2/3 r 2/3 ; b: tp 1, fp 1, fn 1 -> 1/2, 1/2
    # oos: tp 2, fp 1 (b refused), fn 1 -> 2/3, 2/3
    assert r.per_route["a"].f1 == pytest.approx(2 / 3)
    assert r.per_route["b"].precision == pytest.approx(0.5) and r.per_route["b"].recall == pytest.approx(0.5)
    assert r.per_route["oos"].support == 3
    assert r.macro_f1 == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert ("a", "b", 1) in r.confused and ("oos", "a", 1) in r.confused
    assert len(r.errors) == 3


def test_without_out_of_scope_every_refusal_is_wrong() -> None:
    r = EvalReport.from_examples([ex("a", "a"), ex("a", None, 0.1, "a"), ex("b", "b")])
    assert r.accuracy == pytest.approx(2 / 3)
    assert r.oos_recall is None and r.oos_precision is None
    assert r.in_scope_accuracy == pytest.approx(2 / 3)


def test_threshold_sweep_and_reliability() -> None:
    r = EvalReport.from_examples(hand_case(), out_of_scope_label="oos")
    sweep = r.threshold_sweep([0.0, 0.5, 1.0])
    # at 0 nobody is refused: right = top correct among in-scope: a,a,b(top b ok) + b(top b) -> 4 of 8
    assert sweep["accuracy"][0] == pytest.approx(4 / 8)
    assert sweep["oos_recall"][0] == 0.0
    # at 1.0 everything is refused: only the 3 oos are right
    assert sweep["accuracy"][2] == pytest.approx(3 / 8) and sweep["oos_recall"][2] == 1.0
    rel = r.reliability(bins=2)
    assert sum(rel["count"]) == 5


def test_json_and_empty_input() -> None:
    r = EvalReport.from_examples(hand_case(), out_of_scope_label="oos")
    data = json.loads(r.to_json())
    assert data["accuracy"] == pytest.approx(5 / 8) and "examples" not in data
    assert "accuracy" in r.summary()
    with pytest.raises(InvalidInputError):
        EvalReport.from_examples([])


def test_save_plots(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    paths = EvalReport.from_examples(hand_case(), out_of_scope_label="oos").save_plots(tmp_path)
    assert [p.name for p in paths] == ["threshold_sweep.png", "reliability.png"]
    assert all(p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG" for p in paths)
