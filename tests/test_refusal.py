"""Refusing without out-of-scope examples: the refusal score chosen inside fit by simulating unseen
routes, its operating points, labels as users write them (fixtures/clinc10, see its NOTICE)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from synaptoroute_agents import InvalidInputError, Reason, SemanticRouter
from synaptoroute_agents.errors import RouteFileError
from synaptoroute_agents.evaluation import read_labelled
from synaptoroute_agents.fitting import OPERATING_POINTS, FitSummary, FittedPolicy

DATA = Path(__file__).parent / "fixtures" / "clinc10"

FOREIGN = [
    "what is the capital of mongolia",
    "write me a poem about frogs",
    "how many calories are in a banana",
    "who won the world cup in 1998",
    "translate good morning into german",
    "recommend a good science fiction novel",
]


@pytest.fixture(scope="module")
def data() -> dict[str, tuple[list[str], list[str]]]:
    return {s: read_labelled(DATA / f"{s}.jsonl") for s in ("train", "test")}


def in_scope(part: tuple[list[str], list[str]]) -> tuple[list[str], list[str]]:
    rows = [(t, lab) for t, lab in zip(*part, strict=True) if lab != "oos"]
    return [t for t, _ in rows], [lab for _, lab in rows]


@pytest.fixture(scope="module")
def fitted(encoder, data, tmp_path_factory) -> tuple[Path, FitSummary]:
    db = tmp_path_factory.mktemp("refusal") / "r.db"
    with SemanticRouter(encoder=encoder, store=db) as router:
        summary = router.fit(*in_scope(data["train"]), create_routes=True)
    return db, summary


def test_fitted_without_out_of_scope_examples_refuses_foreign_queries(encoder, data, fitted) -> None:
    db, summary = fitted
    assert summary.n_out_of_scope == 0
    op = summary.operating_point
    assert op is not None and op["point"] == "balanced" and op["frontier"]
    with SemanticRouter(encoder=encoder, store=db) as router:  # reloaded from the store
        assert isinstance(router.policy, FittedPolicy) and router.policy.refusal is not None
        matches = router.route_batch(FOREIGN)
        report = router.evaluate(*data["test"], out_of_scope_label="oos")
    assert all(m.name is None and m.reason == Reason.OUT_OF_SCOPE for m in matches)
    assert report.oos_recall is not None and report.oos_recall >= 0.7
    assert report.in_scope_accuracy is not None and report.in_scope_accuracy >= 0.75
    assert report.top1 is not None and report.top1 >= report.in_scope_accuracy
    assert report.refused is not None and report.refused <= 0.15


def test_the_operating_point_moves_recall_the_documented_way(encoder, data, fitted) -> None:
    db, _ = fitted
    with SemanticRouter(encoder=encoder, store=db) as router:
        base = router.policy
        assert isinstance(base, FittedPolicy)
        Q = router.encoder.embed(data["test"][0])
        oos = np.array([lab == "oos" for lab in data["test"][1]])
        refused: dict[str, tuple[float, float]] = {}
        for point in ("permissive", "balanced", "cautious", 0.3):
            router._policy = base.with_operating_point(point)  # what a refit at that point sets
            out = np.array([m.name is None for m in router.decide(Q, texts=data["test"][0])])
            refused[str(point)] = (float(out[~oos].mean()), float(out[oos].mean()))
    # more cautious: more out-of-scope queries refused, and more in-scope ones too
    order = ["permissive", "balanced", "cautious", "0.3"]
    for a, b in zip(order, order[1:], strict=False):
        assert refused[a][1] <= refused[b][1] and refused[a][0] <= refused[b][0]
    assert refused["0.3"][1] > refused["permissive"][1]
    assert OPERATING_POINTS["permissive"] < OPERATING_POINTS["balanced"] < OPERATING_POINTS["cautious"]
    with pytest.raises(InvalidInputError):
        base.with_operating_point("reckless")
    with SemanticRouter(encoder=encoder) as router:
        with pytest.raises(InvalidInputError):
            router.fit(*in_scope(data["train"]), create_routes=True, refusal=0.9)
        s = router.fit(*in_scope(data["train"]), create_routes=True, refusal="cautious")
        assert s.settings["refusal"]["point"] == "cautious"
        off = router.fit(*in_scope(data["train"]), create_routes=True, refusal=0)
        assert off.settings["refusal"]["point"] == "0"  # refusal switched off: nothing is refused
        assert all(m.name is not None for m in router.route_batch(FOREIGN))


def test_labels_with_punctuation_become_route_names(encoder, data) -> None:
    texts, labels = in_scope(data["train"])
    odd = {"bill_due": "bill_due?", "todo_list": "todo_list#update", "pto_used": "pto used"}
    with SemanticRouter(encoder=encoder) as router:
        summary = router.fit(texts, [odd.get(lab, lab) for lab in labels], create_routes=True)
        names = summary.route_names
        assert names["bill_due?"] == "bill_due" and names["pto used"] == "pto_used"
        # "todo_list_update" is another label of the data: the mapped name must not merge with it
        assert names["todo_list#update"].startswith("todo_list_update_") and len(names) == 3
        assert all(name in router for name in summary.route_names.values())
        assert router.route("when is my electricity bill due").name == "bill_due"


def test_eval_reports_labels_as_given_and_holds_out_routes(tmp_path, capsys, data) -> None:
    from synaptoroute_agents.cli import main

    def write(name: str, split: str) -> str:
        p = tmp_path / name
        texts, labels = in_scope(data[split])
        p.write_text(
            "".join(
                json.dumps({"text": t, "label": lab + "?"}) + "\n"
                for t, lab in zip(texts, labels, strict=True)
            )
        )
        return str(p)

    train, test = write("train.jsonl", "train"), write("test.jsonl", "test")
    args = ["eval", "--train", train, "--test", test, "--json", "--holdout-routes", "0.25", "--seed", "1"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    held = out["held_out_labels"]
    assert len(held) == 2 and all(lab.endswith("?") for lab in held)  # labels as the data gave them
    for key in (
        "refused",
        "wrong_route",
        "top1",
        "accuracy_refusals_as_errors",
        "operating_point",
        "oos_recall",
    ):
        assert key in out
    assert out["operating_point"]["point"] == "balanced"
    assert out["n_routes"] == 8 and out["oos_recall"] is not None
    assert 0.0 <= out["refused"] <= 1.0 and 0.0 <= out["wrong_route"] <= 1.0
    assert out["top1"] >= out["accuracy_refusals_as_errors"]


def test_an_empty_text_line_in_a_data_file_names_the_line(tmp_path, capsys) -> None:
    from synaptoroute_agents.cli import main

    p = tmp_path / "train.jsonl"
    p.write_text('{"text": "hello", "label": "greet"}\n{"text": "  ", "label": "greet"}\n')
    with pytest.raises(RouteFileError, match=r"train.jsonl:2: the text is empty"):
        read_labelled(p)
    assert main(["eval", "--train", str(p), "--test", str(p)]) != 0
    assert "train.jsonl:2" in capsys.readouterr().err


def test_one_example_per_label_works_or_names_the_labels(encoder) -> None:
    with SemanticRouter(encoder=encoder) as router:
        with pytest.raises(InvalidInputError, match=r"r1"):
            router.fit(
                ["refund my payment", "is it sunny", "play music"],
                ["r1", "r2", "r3"],
                create_routes=True,
                name_examples=False,
            )
        # some routes with one example, others with more: the fit works
        s = router.fit(
            ["refund my payment", "charged twice", "money back please", "is it sunny", "play music"],
            ["billing", "billing", "billing", "weather", "music"],
            create_routes=True,
        )
        assert s.n_routes == 3
        assert router.route("refund my payment please").name == "billing"


def test_a_tiny_fit_never_refuses_everything(encoder) -> None:
    with SemanticRouter(encoder=encoder) as router:
        router.fit(
            ["refund my payment", "charged twice", "is it sunny", "will it rain"],
            ["billing", "billing", "weather", "weather"],
            validation=(["my bill is wrong", "storm coming", "tell a joke"], ["billing", "weather", "oos"]),
            out_of_scope_label="oos",
            create_routes=True,
        )
        assert router.policy.settings["threshold"] < 0.99
        names = [m.name for m in router.route_batch(["refund my payment please", "is it sunny today"])]
    assert names == ["billing", "weather"]


def test_save_plots_draws_the_refusal_frontier_with_the_chosen_point(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from synaptoroute_agents.evaluation import EvalExample, EvalReport

    examples = [
        EvalExample("a", "r1", "r1", "r1", 0.9, "matched"),
        EvalExample("b", "r1", None, "r1", 0.4, "out_of_scope"),
        EvalExample("c", "oos", None, "r1", 0.2, "out_of_scope"),
        EvalExample("d", "oos", "r1", "r1", 0.7, "matched"),
    ]
    report = EvalReport.from_examples(examples, out_of_scope_label="oos")
    assert (report.top1, report.refused, report.wrong_route) == (1.0, 0.5, 0.25)
    assert {p.name for p in report.save_plots(tmp_path / "a")} == {"threshold_sweep.png", "reliability.png"}
    report.operating_point = {
        "point": "balanced",
        "score": "centroid+head",
        "frontier": [[0.02, 0.4], [0.05, 0.6], [0.1, 0.8]],
    }
    paths = report.save_plots(tmp_path / "b")
    assert "refusal_frontier.png" in {p.name for p in paths}
    assert (tmp_path / "b" / "refusal_frontier.png").stat().st_size > 1000
    assert report.to_dict()["operating_point"]["point"] == "balanced"


def test_an_operating_point_promises_the_share_of_correctly_routed_queries_it_refuses() -> None:
    # What refusing costs the user is the in-scope queries the ranking would have routed
    # correctly: queries it would misroute (here the least confident tenth) may be refused on top.
    from synaptoroute_agents.fitting.oos import RefusalModel, choose_refusal

    rng = np.random.default_rng(0)
    pos = rng.normal(0.0, 1.0, 1000)
    right = pos > np.quantile(pos, 0.1)  # the ranking misroutes the least confident 10%
    neg = rng.normal(-2.0, 1.0, 500)
    model = RefusalModel(np.eye(3, dtype=np.float32))
    ref = choose_refusal({"head": pos}, {"head": neg}, model, "balanced", right=right)
    refused = pos < ref.threshold
    assert refused[right].mean() == pytest.approx(OPERATING_POINTS["balanced"], abs=0.005)
    assert refused[~right].all()  # every misrouted query is refused, at no cost
    # without knowing which are right, every in-scope query counts against the promise
    plain = choose_refusal({"head": pos}, {"head": neg}, model, "balanced")
    assert (pos < plain.threshold).mean() == pytest.approx(OPERATING_POINTS["balanced"], abs=0.005)
    assert ref.threshold > plain.threshold


def test_real_out_of_scope_examples_and_the_refusal_score_decide_together() -> None:
    # With a reject class (ten or more out-of-scope examples) the refusal score is chosen too;
    # its threshold is chosen on the held-out rows together with the probability threshold (one
    # in-scope budget), and it refuses out-of-scope queries the reject class lets through.
    from synaptoroute_agents.fitting import fit_policy
    from synaptoroute_agents.fitting.oos import WITH_OOS_EXAMPLES
    from synaptoroute_agents.scoring import QueryBatch

    rng = np.random.default_rng(1)
    centers = rng.standard_normal((3, 16))
    X = np.vstack(
        [np.repeat(centers, 60, axis=0) + rng.standard_normal((180, 16)), rng.standard_normal((30, 16))]
    )
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    labels = [f"r{i // 60}" for i in range(180)] + ["oos"] * 30
    pol = fit_policy(X, labels, oos_label="oos", refusal_budget=0.05)
    assert pol.reject and pol.refusal is not None and pol.refusal.point == WITH_OOS_EXAMPLES
    Xq = np.vstack(
        [np.repeat(centers, 40, axis=0) + rng.standard_normal((120, 16)), rng.standard_normal((200, 16))]
    )
    Xq = (Xq / np.linalg.norm(Xq, axis=1, keepdims=True)).astype(np.float32)
    oos = np.arange(len(Xq)) >= 120

    def refused(p: FittedPolicy) -> np.ndarray:
        S = Xq @ X[:180].T
        order = np.argsort(-S, axis=1)[:, :32]
        pairs = [[(labels[j], float(S[i, j])) for j in row] for i, row in enumerate(order)]
        live: dict[str, float | None] = {r: None for r in p.routes}
        return np.array([d.chosen is None for d in p.decide(QueryBatch(Xq), pairs, live)])

    both, alone = refused(pol), refused(replace(pol, refusal=None))
    assert both[oos].mean() > alone[oos].mean()
    assert both[~oos].mean() <= alone[~oos].mean() + 0.05
    restored = FittedPolicy.from_bytes(pol.to_bytes())  # stored with the policy
    assert restored.refusal is not None and restored.refusal.threshold == pol.refusal.threshold
    assert (refused(restored) == both).all()
    off = fit_policy(X, labels, oos_label="oos", refusal_budget=0.05, refusal=0)
    assert off.reject and off.refusal is None  # refusal=0: the reject class alone


def test_open_intent_metrics_follow_textoir() -> None:
    from benchmarks.oos import open_metrics

    truth = np.array([0, 0, 1, 1, -1, -1, -1, -1])
    pred = np.array([0, -1, 1, 0, -1, -1, 1, -1])
    m = open_metrics(pred, truth)
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["oos_precision"] == pytest.approx(3 / 4) and m["oos_recall"] == pytest.approx(3 / 4)
    assert m["f1_open"] == pytest.approx(0.75)
    # known classes: class 0 P=1/2 R=1/2 -> F1 0.5; class 1 P=1/2 R=1/2 -> 0.5
    assert m["f1_known"] == pytest.approx(0.5)
