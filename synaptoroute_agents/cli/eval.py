"""``synaptoroute eval``: fit a fresh router on labelled data and evaluate it on held-out data.

:func:`run_eval` is the whole evaluation (benchmarks/accuracy.py calls it for every figure it
reports); :func:`cmd_eval` is the sub-command around it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..encoders.base import Encoder
from ..errors import InvalidInputError
from ..evaluation import EvalExample, EvalReport, read_labelled, sample_shots
from ..fitting.data import route_names_for
from ..router import SemanticRouter
from ..routes import Route
from .output import ExitCode, emit

__all__ = ["HOLDOUT_OOS", "cmd_eval", "hold_out_routes", "route_names_for", "run_eval"]

Labelled = tuple[list[str], list[str]]


def _renamed(
    train: Labelled, test: Labelled, val: Labelled | None, oos_label: str | None
) -> tuple[Labelled, Labelled, Labelled | None, dict[str, str]]:
    names = route_names_for([*train[1], *test[1], *(val[1] if val else [])])
    if oos_label is not None:
        names[oos_label] = oos_label

    def rename(part: Labelled) -> Labelled:
        return part[0], [names[lab] for lab in part[1]]

    return rename(train), rename(test), None if val is None else rename(val), names


HOLDOUT_OOS = "<out of scope>"  # the label of held-out routes' test rows when no --oos-label is given


def hold_out_routes(
    train: Labelled, test: Labelled, val: Labelled | None, fraction: float, seed: int, oos_label: str | None
) -> tuple[Labelled, Labelled, Labelled | None, list[str], str]:
    """Remove a random ``fraction`` of the in-scope labels from training (and validation); their
    test rows become out-of-scope queries. Returns the new sets, the held-out labels and the
    out-of-scope label."""
    if isinstance(fraction, bool) or not 0.0 < fraction < 1.0:
        raise InvalidInputError("--holdout-routes must be a share in (0, 1)")
    oos = oos_label if oos_label is not None else HOLDOUT_OOS
    labels = sorted({lab for lab in train[1] if lab != oos})
    n_held = int(round(fraction * len(labels)))
    if not 0 < n_held < len(labels):
        raise InvalidInputError(f"--holdout-routes {fraction} holds out {n_held} of {len(labels)} labels")
    rng = np.random.default_rng(seed)
    held = sorted(rng.choice(labels, n_held, replace=False).tolist())
    gone = set(held)

    def drop(part: Labelled) -> Labelled:
        keep = [i for i, lab in enumerate(part[1]) if lab not in gone]
        return [part[0][i] for i in keep], [part[1][i] for i in keep]

    test_labels = [oos if lab in gone else lab for lab in test[1]]
    return drop(train), (test[0], test_labels), None if val is None else drop(val), held, oos


def _as_given(report: EvalReport, names: dict[str, str]) -> EvalReport:
    """The report in the labels as the data gave them (route names mapped back)."""
    back = {n: lab for lab, n in names.items() if n != lab}
    if not back:
        return report

    def g(x: str | None) -> str | None:
        return None if x is None else back.get(x, x)

    examples = [
        EvalExample(e.text, back.get(e.label, e.label), g(e.predicted), g(e.top), e.score, e.reason)
        for e in report.examples
    ]
    return EvalReport.from_examples(examples, out_of_scope_label=report.out_of_scope_label)


def run_eval(
    train: Labelled,
    test: Labelled,
    *,
    val: Labelled | None = None,
    oos_label: str | None = None,
    shots: int = 0,
    seed: int = 0,
    fit: bool = True,
    encoder: Encoder | str | None = None,
    plots: str | None = None,
    refusal_budget: float = 0.01,
    refusal: str | float = "balanced",
    holdout_routes: float = 0.0,
    on_stage: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build a fresh router with one route per training label, fit it, evaluate it on ``test``.

    Args:
        train: ``(texts, labels)`` to learn from; each label becomes a route.
        test: held-out ``(texts, labels)``: never used to choose anything.
        val: optional held-out ``(texts, labels)`` that ``fit`` uses to choose its settings.
        oos_label: the label of out-of-scope examples the router must refuse.
        shots: keep this many training (and validation) examples per label; 0 keeps all.
        seed: random seed of the sampling and of the fit.
        fit: ``False`` evaluates the plain nearest-utterance cosine router instead.
        encoder: an encoder or an encoder name (default: the bundled model).
        plots: a folder for the threshold-sweep and reliability plots.
        refusal_budget: the share of in-scope held-out queries the threshold may refuse.
        refusal: the refusal's operating point (see ``SemanticRouter.fit``).
        holdout_routes: remove this share of the labels (chosen with ``seed``) from training;
            their test rows become out-of-scope queries (unseen routes of the same domain).
        on_stage: called with a short message as each stage starts (progress for a terminal).

    Returns:
        The report's figures, timings and sizes, with the report itself under ``"report"``.
    """
    stage = on_stage or (lambda _msg: None)
    held: list[str] = []
    if holdout_routes:
        train, test, val, held, oos_label = hold_out_routes(train, test, val, holdout_routes, seed, oos_label)
    train, test, val, names = _renamed(train, test, val, oos_label)
    train_texts, train_labels = train
    if shots:
        train_texts, train_labels = sample_shots(train_texts, train_labels, shots, seed)
        if val is not None:
            val = sample_shots(val[0], val[1], shots, seed + 1)
    t0 = time.perf_counter()
    with SemanticRouter(encoder=encoder) as router:
        if fit:
            stage(f"fitting on {len(train_texts):,} examples ({len(set(train_labels)):,} labels)")
            summary = router.fit(
                train_texts,
                train_labels,
                out_of_scope_label=oos_label,
                validation=val,
                create_routes=True,
                seed=seed,
                refusal_budget=refusal_budget,
                refusal=refusal,
            )
            fit_seconds, embed_seconds, settings = (
                summary.fit_seconds,
                summary.embed_seconds,
                summary.settings,
            )
        else:
            stage(f"adding {len(train_texts):,} examples as utterances")
            by_label: dict[str, list[str]] = {}
            for t, lab in zip(train_texts, train_labels, strict=True):
                if lab != oos_label:
                    by_label.setdefault(lab, []).append(t)
            router.add_many([Route(lab, texts) for lab, texts in sorted(by_label.items())])
            fit_seconds, embed_seconds, settings = 0.0, time.perf_counter() - t0, {}
        stage(f"evaluating on {len(test[0]):,} queries")
        t1 = time.perf_counter()
        report = _as_given(router.evaluate(test[0], test[1], out_of_scope_label=oos_label), names)
        eval_seconds = time.perf_counter() - t1
        n_routes = len(router)
    operating_point = settings.get("refusal") if isinstance(settings, dict) else None
    report.operating_point = operating_point
    if plots:
        stage(f"writing plots to {plots}")
        report.save_plots(plots)
    return {
        "accuracy": report.accuracy,
        "in_scope_accuracy": report.in_scope_accuracy,
        "oos_recall": report.oos_recall,
        "oos_precision": report.oos_precision,
        "macro_f1": report.macro_f1,
        "refused": report.refused,
        "wrong_route": report.wrong_route,
        "top1": report.top1,
        "accuracy_refusals_as_errors": report.in_scope_accuracy,
        "operating_point": operating_point,
        "holdout_routes": holdout_routes,
        "held_out_labels": held,
        "fit_seconds": fit_seconds,
        "embed_seconds": embed_seconds,
        "eval_seconds": eval_seconds,
        "n_train": len(train_texts),
        "n_val": 0 if val is None else len(val[0]),
        "n_test": report.n,
        "n_routes": n_routes,
        "shots": shots,
        "seed": seed,
        "fitted": fit,
        "settings": settings,
        "report": report,
    }


def _stage_to_stderr(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message} ...", file=sys.stderr, flush=True)


def _refusal_arg(value: str) -> str | float:
    try:
        return float(value)
    except ValueError:
        return value


def cmd_eval(args: argparse.Namespace) -> int:
    """Read the labelled files, check optional needs first, then run :func:`run_eval` and print it."""
    if args.plots:
        from ..deps import require

        require("matplotlib", "synaptoroute-agents[plots]")  # before minutes of fitting, not after
    train, test = read_labelled(args.train), read_labelled(args.test)
    val = read_labelled(args.val) if args.val else None
    res = run_eval(
        train,
        test,
        val=val,
        oos_label=args.oos_label,
        shots=args.shots,
        seed=args.seed,
        fit=not args.no_fit,
        encoder=args.encoder,
        plots=args.plots,
        refusal_budget=args.refusal_budget,
        refusal=_refusal_arg(args.refusal),
        holdout_routes=args.holdout_routes,
        on_stage=None if args.json else _stage_to_stderr,
    )
    report = res.pop("report")
    text = (
        f"{report.summary()}\n"
        f"fit {res['fit_seconds']:.1f} s (+ embedding {res['embed_seconds']:.1f} s) "
        f"on {res['n_train']} examples, {res['n_routes']} routes"
    )
    emit(args.json, res, text)
    return ExitCode.OK
