"""Generic negatives measured as out-of-scope examples (benchmarks.oos --negatives): the list, the
per-fit filter that drops negatives close to a route, and the variants' measurement on the
shipped fixture (fixtures/clinc10, see its NOTICE)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks import oos_negatives
from benchmarks.negatives import GENERIC_NEGATIVES, far_from_routes
from synaptoroute_agents.evaluation import read_labelled
from synaptoroute_agents.routes import clean_text

DATA = Path(__file__).parent / "fixtures" / "clinc10"


def test_negatives_are_many_varied_and_unique() -> None:
    assert len(GENERIC_NEGATIVES) >= 300
    assert len(set(GENERIC_NEGATIVES)) == len(GENERIC_NEGATIVES)
    assert len({t.split()[0] for t in GENERIC_NEGATIVES}) >= 50  # many phrasings, not one template


def test_a_negative_that_matches_a_route_is_dropped(encoder) -> None:
    jokes = [
        "tell me a joke",
        "say something funny",
        "make me laugh",
        "do you know any jokes",
        "i want to hear a joke",
        "tell me something hilarious",
        "got any funny stories",
        "cheer me up with a joke",
    ]
    texts, labels = read_labelled(DATA / "train.jsonl")
    rows = [(t, lab) for t, lab in zip(texts, labels, strict=True) if lab != "oos"]
    texts = [t for t, _ in rows] + jokes
    labels = [lab for _, lab in rows] + ["jokes"] * len(jokes)
    routes = sorted(set(labels))
    y = np.array([routes.index(lab) for lab in labels])
    X = encoder.embed(texts)
    N = encoder.embed(list(GENERIC_NEGATIVES))
    keep = dict(zip(GENERIC_NEGATIVES, far_from_routes(N, X, y, len(routes)), strict=True))
    for generic_joke in ("tell me a joke", "make me laugh", "say something funny"):
        assert not keep[generic_joke], generic_joke
    assert sum(not k for k in keep.values()) <= 10  # a tight route takes only its own kind
    for foreign in (
        "who painted the mona lisa",
        "how do i reverse a string in python",
        "how do i unclog a sink",
    ):
        assert keep[foreign], foreign
    # without the jokes route the same negatives are kept: the drop is the route's doing
    plain = far_from_routes(N, X[: len(rows)], y[: len(rows)], len(routes))
    assert plain[GENERIC_NEGATIVES.index("tell me a joke")]
    assert plain.sum() > sum(keep.values())


def test_closeness_is_measured_against_each_routes_own_spread() -> None:
    rng = np.random.default_rng(0)
    d = 16
    e = np.eye(d)

    def route(axis: int, spread: float, n: int = 10) -> np.ndarray:
        R = e[axis] + spread * rng.normal(size=(n, d))
        return R / np.linalg.norm(R, axis=1, keepdims=True)

    X = np.vstack([route(0, 0.05), route(1, 0.6)]).astype(np.float32)
    y = np.repeat([0, 1], 10)
    # each negative at cosine 0.8 to one route's axis
    n0 = 0.8 * e[0] + 0.6 * e[5]
    n1 = 0.8 * e[1] + 0.6 * e[5]
    keep = far_from_routes(np.vstack([n0, n1]).astype(np.float32), X, y, 2)
    assert keep[0] and not keep[1]  # too far for the tight route, close enough for the loose one


def test_a_gain_counts_only_at_equal_in_scope_accuracy() -> None:
    off = {"permissive": (0.90, 0.50, 0.005), "balanced": (0.88, 0.70, 0.02), "cautious": (0.84, 0.80, 0.05)}
    # further along off's own frontier: no gain
    assert abs(oos_negatives.gain_at_equal_accuracy(off, (0.86, 0.75, 0.03))) < 1e-9
    assert oos_negatives.gain_at_equal_accuracy(off, (0.88, 0.76, 0.02)) > 0.05
    assert oos_negatives.gain_at_equal_accuracy(off, (0.88, 0.60, 0.02)) < -0.05


def test_every_variant_is_measured_on_the_fixture(encoder) -> None:
    def embedded(name: str) -> oos_negatives.Embedded:
        texts, labels = read_labelled(DATA / f"{name}.jsonl")
        texts = [clean_text(t) for t in texts]
        X, H = encoder.embed_with_features(texts)
        return texts, labels, X, H

    texts = [clean_text(t) for t in GENERIC_NEGATIVES]
    NX, NH = encoder.embed_with_features(texts)
    r = oos_negatives.one_seed(embedded("train"), embedded("test"), (texts, NX, NH), holdout=0.0, seed=0)
    assert set(r["variants"]) == set(oos_negatives.VARIANTS)
    assert 10 <= r["kept"] < r["offered"] == len(GENERIC_NEGATIVES)
    off = r["variants"]["off"]
    assert off["balanced"][1] >= 0.5  # the fixture's out-of-scope queries are mostly refused
    # without a reject class, every variant keeps the promise's thresholds: the share of
    # correctly routed queries refused rises with the point
    assert off["permissive"][2] <= off["balanced"][2] <= off["cautious"][2]
    within = r["variants"]["reject class within the promise"]
    assert r["within_promise_used"] or within == off
