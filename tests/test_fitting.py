"""fit: learning from labelled examples (a small attributed CLINC150 sample, see fixtures/clinc10/NOTICE)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synaptoroute_agents import (
    InvalidInputError,
    NotFittedError,
    Reason,
    Route,
    RouteNotFoundError,
    SemanticRouter,
)
from synaptoroute_agents.evaluation import read_labelled
from synaptoroute_agents.fitting import FittedPolicy, fit_policy

DATA = Path(__file__).parent / "fixtures" / "clinc10"


@pytest.fixture(scope="module")
def data() -> dict[str, tuple[list[str], list[str]]]:
    return {s: read_labelled(DATA / f"{s}.jsonl") for s in ("train", "val", "test")}


def routes_from(texts: list[str], labels: list[str]) -> list[Route]:
    by: dict[str, list[str]] = {}
    for t, lab in zip(texts, labels, strict=True):
        if lab != "oos":
            by.setdefault(lab, []).append(t)
    return [Route(lab, ts) for lab, ts in sorted(by.items())]


def test_fit_improves_a_deliberately_hard_case_and_refuses_out_of_scope(encoder, data, tmp_path) -> None:
    # ten intents in confusable pairs (pto_balance / pto_used, reminder / reminder_update, ...)
    with SemanticRouter(encoder=encoder, store=tmp_path / "r.db") as router:
        router.add_many(routes_from(*data["train"]))
        before = router.evaluate(*data["test"], out_of_scope_label="oos")
        summary = router.fit(*data["train"], out_of_scope_label="oos", validation=data["val"])
        after = router.evaluate(*data["test"], out_of_scope_label="oos")
    assert summary.n_routes == 10 and summary.n_out_of_scope == 20
    assert after.in_scope_accuracy is not None and before.in_scope_accuracy is not None
    assert after.in_scope_accuracy >= before.in_scope_accuracy + 0.05
    assert after.accuracy > before.accuracy
    assert after.oos_recall is not None and after.oos_recall >= 0.5  # out-of-scope queries are refused
    refused = [e for e in after.examples if e.label == "oos" and e.predicted is None]
    assert refused and {e.reason for e in refused} <= {"below_threshold", "out_of_scope"}


def test_fitted_state_survives_a_restart_without_refitting(encoder, data, tmp_path) -> None:
    db = tmp_path / "r.db"
    with SemanticRouter(encoder=encoder, store=db) as router:
        router.fit(*data["train"], out_of_scope_label="oos", create_routes=True)
        queries = data["test"][0][:40]
        first = [(m.name, round(m.score, 5)) for m in router.route_batch(queries)]
        settings = router.policy.settings  # type: ignore[attr-defined]
    with SemanticRouter(encoder=encoder, store=db) as again:
        assert again.fitted and again.stats()["fitted"]
        assert again.policy.settings == settings  # type: ignore[attr-defined]
        assert [(m.name, round(m.score, 5)) for m in again.route_batch(queries)] == first


def test_routes_added_or_deleted_after_fit_take_part_at_once(encoder, data) -> None:
    with SemanticRouter(encoder=encoder) as router:
        router.fit(*data["train"], out_of_scope_label="oos", create_routes=True)
        q = "book me a flight to Lisbon next friday"
        assert router.route(q).name != "book_flight"
        router.add(
            Route(
                "book_flight", ["book a flight", "reserve a plane ticket to Rome", "I need a flight to Paris"]
            )
        )
        m = router.route(q)
        assert m.name == "book_flight" and m.reason == Reason.MATCHED
        router.delete("pto_used")
        assert all(
            c.name != "pto_used"
            for c in router.route("how many vacation days have I used", top_k=5).candidates
        )


def test_unfit_goes_back_to_cosine(encoder, data) -> None:
    with SemanticRouter(encoder=encoder) as router:
        router.fit(*data["train"], out_of_scope_label="oos", create_routes=True)
        assert router.fitted
        router.unfit()
        assert not router.fitted
        m = router.route("what is my credit limit")
        assert -1.0 <= m.score <= 1.0


def test_fit_rejects_bad_input(encoder, data) -> None:
    with SemanticRouter(encoder=encoder) as router:
        with pytest.raises(InvalidInputError):
            router.fit(["a", "b"], ["x"])
        with pytest.raises(InvalidInputError):
            router.fit([], [])
        with pytest.raises(RouteNotFoundError):
            router.fit(["hello"], ["greeting"])
        with pytest.raises(InvalidInputError):
            router.fit(["only refuse me"], ["oos"], out_of_scope_label="oos")


def test_policy_round_trips_without_pickle_and_rejects_garbage() -> None:
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 16)).astype(np.float32)
    X = np.repeat(centers, 30, axis=0) + 0.3 * rng.standard_normal((90, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    labels = [f"r{i // 30}" for i in range(90)]
    pol = fit_policy(X, labels)
    again = FittedPolicy.from_bytes(pol.to_bytes())
    np.testing.assert_array_equal(again.head_probs(X[:5]), pol.head_probs(X[:5]))
    assert again.routes == ["r0", "r1", "r2"] and again.threshold == pol.threshold
    with pytest.raises(NotFittedError):
        FittedPolicy.from_bytes(b"not a policy")


def test_eval_cli_contract_with_labels_that_are_not_route_names(tmp_path, capsys, data) -> None:
    import json

    from synaptoroute_agents.cli import main

    def write(name: str, split: str) -> str:
        p = tmp_path / name
        texts, labels = data[split]
        odd = {lab: (lab if lab == "oos" else lab.replace("_", " ") + "?") for lab in set(labels)}
        p.write_text(
            "".join(
                json.dumps({"text": t, "label": odd[lab]}) + "\n"
                for t, lab in zip(texts, labels, strict=True)
            )
        )
        return str(p)

    train, test = write("train.jsonl", "train"), write("test.jsonl", "test")
    assert (
        main(["eval", "--train", train, "--test", test, "--oos-label", "oos", "--json", "--shots", "5"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    for key in (
        "accuracy",
        "in_scope_accuracy",
        "oos_recall",
        "macro_f1",
        "fit_seconds",
        "n_train",
        "n_test",
    ):
        assert key in out
    assert out["n_test"] == 130 and out["n_train"] == 5 * 11 and out["n_routes"] == 10
    assert 0.3 < out["accuracy"] <= 1.0


def test_refusal_budget_is_validated_and_moves_the_threshold(encoder, data) -> None:
    with SemanticRouter(encoder=encoder) as router:
        for bad in (-0.1, 1.5, float("nan"), "0.1", True):
            with pytest.raises(InvalidInputError):
                router.fit(*data["train"], out_of_scope_label="oos", create_routes=True, refusal_budget=bad)  # type: ignore[arg-type]
    # Out-of-scope examples scattered everywhere: catching more of them costs in-scope answers.
    rng = np.random.default_rng(1)
    centers = rng.standard_normal((3, 16)).astype(np.float32)
    X = np.repeat(centers, 60, axis=0) + rng.standard_normal((180, 16)).astype(np.float32)
    X = np.vstack([X, rng.standard_normal((30, 16)).astype(np.float32)])
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    labels = [f"r{i // 60}" for i in range(180)] + ["oos"] * 30
    strict = fit_policy(X, labels, oos_label="oos", refusal_budget=0.0)
    loose = fit_policy(X, labels, oos_label="oos", refusal_budget=0.3)
    # new queries like them: a larger budget lets the thresholds (probability and refusal score,
    # chosen together) refuse more of both kinds
    Xq = np.vstack(
        [np.repeat(centers, 40, axis=0) + rng.standard_normal((120, 16)), rng.standard_normal((60, 16))]
    )
    Xq = (Xq / np.linalg.norm(Xq, axis=1, keepdims=True)).astype(np.float32)
    oos = np.arange(len(Xq)) >= 120
    a, b = refused_by(strict, Xq, X[:180], labels[:180]), refused_by(loose, Xq, X[:180], labels[:180])
    assert b[oos].mean() > a[oos].mean() + 0.1 and b[~oos].mean() >= a[~oos].mean()


def refused_by(pol: FittedPolicy, Xq: np.ndarray, Xs: np.ndarray, ys: list[str]) -> np.ndarray:
    """Which query rows the policy refuses, with the stored utterances ``(Xs, ys)`` as its index."""
    from synaptoroute_agents.scoring import QueryBatch

    S = Xq @ Xs.T
    order = np.argsort(-S, axis=1)[:, :32]
    pairs = [[(ys[j], float(S[i, j])) for j in row] for i, row in enumerate(order)]
    live: dict[str, float | None] = {r: None for r in pol.routes}
    return np.array([d.chosen is None for d in pol.decide(QueryBatch(Xq), pairs, live)])


def test_a_few_out_of_scope_examples_join_the_simulated_unseen_queries() -> None:
    # Fewer than ten out-of-scope examples: no reject class; they join the queries for which
    # no route exists that choose the refusal score, and queries like them are refused.
    def sample(n_per: int, n_oos: int, seed: int) -> tuple[np.ndarray, list[str]]:
        rng = np.random.default_rng(seed)
        centers = np.random.default_rng(7).standard_normal((3, 16)).astype(np.float32)
        X = np.repeat(centers, n_per, axis=0) + rng.standard_normal((3 * n_per, 16)).astype(np.float32)
        X = np.vstack([X, 1.5 * rng.standard_normal((n_oos, 16)).astype(np.float32)])
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        return X, [f"r{i // n_per}" for i in range(3 * n_per)] + ["oos"] * n_oos

    X, labels = sample(30, 6, seed=1)
    taught = fit_policy(X, labels, oos_label="oos")
    assert not taught.reject and taught.refusal is not None
    Xq, yq = sample(100, 200, seed=2)
    oos_rows = np.array(yq) == "oos"
    refused = refused_by(taught, Xq, X[:90], labels[:90])
    assert refused[oos_rows].mean() > 0.5  # most queries that fit no route are refused
    assert refused[~oos_rows].mean() <= 0.10  # about the promised share of in-scope queries (5%)
