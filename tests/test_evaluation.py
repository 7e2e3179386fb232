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


def _vertical_lines(ax) -> list[float]:
    """x of every vertical line (axvline: two points with the same x spanning the axes)."""
    out = []
    for line in ax.get_lines():
        xs, ys = line.get_xdata(), line.get_ydata()
        if len(xs) == 2 and xs[0] == xs[1] and list(ys) == [0, 1]:
            out.append(float(xs[0]))
    return out


def _markers(ax) -> list[tuple[float, float, str]]:
    """(x, y, marker) of every single-point line drawn with a marker."""
    return [
        (float(line.get_xdata()[0]), float(line.get_ydata()[0]), line.get_marker())
        for line in ax.get_lines()
        if len(line.get_xdata()) == 1 and line.get_marker() not in (None, "None", "")
    ]


def test_sweep_marks_the_threshold_and_the_operating_point() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    report = EvalReport.from_examples(hand_case(), out_of_scope_label="oos")
    figures = report.figures(threshold=0.5)
    try:
        assert set(figures) == {"threshold_sweep", "reliability"}
        (ax,) = figures["threshold_sweep"].axes
        assert _vertical_lines(ax) == [pytest.approx(0.5)]
        points = _markers(ax)
        # The router's own figures at its threshold: accuracy 5/8 (circle), oos recall 2/3 (square).
        assert (pytest.approx(0.5), pytest.approx(5 / 8), "o") in points
        assert (pytest.approx(0.5), pytest.approx(2 / 3), "s") in points
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "threshold 0.500" in legend
        assert any("in-scope 0.60" in t and "oos recall 0.67" in t for t in legend)
    finally:
        for fig in figures.values():
            plt.close(fig)


def test_without_a_threshold_the_effective_one_is_marked() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    report = EvalReport.from_examples(hand_case(), out_of_scope_label="oos")
    # Refused scores 0.1, 0.2, 0.3; answered 0.6 and 0.9: the threshold between them explains every refusal.
    assert report.operating_threshold() == pytest.approx(0.45)
    figures = report.figures()
    try:
        (ax,) = figures["threshold_sweep"].axes
        assert _vertical_lines(ax) == [pytest.approx(0.45)]
        assert "effective threshold 0.450" in [t.get_text() for t in ax.get_legend().get_texts()]
    finally:
        for fig in figures.values():
            plt.close(fig)


def test_operating_threshold_edges() -> None:
    # Nothing refused: the lowest score; everything refused: just above the highest.
    assert EvalReport.from_examples([ex("a", "a", 0.4), ex("b", "b", 0.7)]).operating_threshold() == 0.4
    refused_all = EvalReport.from_examples([ex("a", None, 0.4, "a"), ex("b", None, 0.7, "b")])
    assert refused_all.operating_threshold() > 0.7
