"""EvalReport: how well a router decides on labelled queries, in numbers and pictures."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidInputError

__all__ = ["EvalReport", "RouteScores", "EvalExample", "read_labelled", "sample_shots"]


@dataclass(frozen=True, slots=True)
class RouteScores:
    """Precision, recall and F1 of one label."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class EvalExample:
    """One query as the router saw it."""

    text: str
    label: str
    predicted: str | None
    top: str | None
    score: float
    reason: str


@dataclass
class EvalReport:
    """Accuracy figures of a router on labelled queries.

    Conventions: a query labelled ``out_of_scope_label`` is correct when the router abstains; any
    other query is correct only when routed to its label. Without an out-of-scope label every
    abstention is an error. ``macro_f1`` averages F1 over the in-scope labels and, when given, the
    out-of-scope label (abstentions count as predicting it).

    Attributes:
        n: number of queries.
        accuracy: share of queries decided correctly.
        in_scope_accuracy: share of in-scope queries routed to their label.
        oos_recall: share of out-of-scope queries refused (None without an out-of-scope label).
        oos_precision: share of refusals that were out of scope (None when nothing was refused or
            there is no out-of-scope label).
        macro_f1: see above.
        per_route: label -> precision/recall/F1/support.
        confused: the most frequent (true label, predicted label, count) mistakes.
        errors: the misrouted queries (at most ``max_errors``).
        examples: every query's outcome (kept for plots; left out of ``to_json``).
        top1: share of in-scope queries whose top candidate is their label (refusal switched off).
        refused: share of in-scope queries refused (sent to the fallback).
        wrong_route: share of all queries sent to a route that is not theirs (in-scope queries
            misrouted and out-of-scope queries routed: the costly mistake in an agent).
        operating_point: the fitted refusal's operating point and the simulated frontier it was
            chosen from (:attr:`FitSummary.operating_point`), when the caller records it.
    """

    n: int
    accuracy: float
    in_scope_accuracy: float | None
    oos_recall: float | None
    oos_precision: float | None
    macro_f1: float
    per_route: dict[str, RouteScores]
    confused: list[tuple[str, str, int]]
    errors: list[EvalExample]
    out_of_scope_label: str | None = None
    examples: list[EvalExample] = field(default_factory=list, repr=False)
    top1: float | None = None
    refused: float | None = None
    wrong_route: float | None = None
    operating_point: dict[str, Any] | None = None

    @classmethod
    def from_examples(
        cls,
        examples: Sequence[EvalExample],
        *,
        out_of_scope_label: str | None = None,
        max_errors: int = 200,
        top_confusions: int = 20,
    ) -> EvalReport:
        """Compute every figure from per-query outcomes."""
        if not examples:
            raise InvalidInputError("nothing to evaluate: no examples")
        oos = out_of_scope_label
        abstain = oos if oos is not None else "<abstain>"
        truth = [e.label for e in examples]
        pred = [e.predicted if e.predicted is not None else abstain for e in examples]
        correct = [t == p for t, p in zip(truth, pred, strict=True)]
        n = len(examples)
        in_idx = [i for i, t in enumerate(truth) if t != oos]
        oos_idx = [i for i, t in enumerate(truth) if oos is not None and t == oos]
        in_acc = sum(correct[i] for i in in_idx) / len(in_idx) if in_idx else None
        oos_recall = sum(correct[i] for i in oos_idx) / len(oos_idx) if oos_idx else None
        refused = [i for i, e in enumerate(examples) if e.predicted is None]
        oos_precision = (
            sum(truth[i] == oos for i in refused) / len(refused) if oos is not None and refused else None
        )
        labels = sorted(set(truth) | {p for p in pred if p != "<abstain>"})
        tp: Counter[str] = Counter()
        fp: Counter[str] = Counter()
        fn: Counter[str] = Counter()
        for t, p in zip(truth, pred, strict=True):
            if t == p:
                tp[t] += 1
            else:
                fn[t] += 1
                fp[p] += 1
        support = Counter(truth)
        per_route: dict[str, RouteScores] = {}
        for lab in labels:
            prec = tp[lab] / (tp[lab] + fp[lab]) if tp[lab] + fp[lab] else 0.0
            rec = tp[lab] / (tp[lab] + fn[lab]) if tp[lab] + fn[lab] else 0.0
            f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
            per_route[lab] = RouteScores(prec, rec, f1, support[lab])
        f1_labels = [lab for lab in labels if support[lab] > 0]
        macro_f1 = float(np.mean([per_route[lab].f1 for lab in f1_labels])) if f1_labels else 0.0
        confusions = Counter((t, p) for t, p in zip(truth, pred, strict=True) if t != p)
        confused = [(t, p, c) for (t, p), c in confusions.most_common(top_confusions)]
        errors = [e for e, ok in zip(examples, correct, strict=True) if not ok][:max_errors]
        top1 = sum(examples[i].top == truth[i] for i in in_idx) / len(in_idx) if in_idx else None
        refused_in = sum(examples[i].predicted is None for i in in_idx) / len(in_idx) if in_idx else None
        wrong = sum(e.predicted is not None and e.predicted != e.label for e in examples) / n
        return cls(
            n=n,
            accuracy=sum(correct) / n,
            in_scope_accuracy=in_acc,
            oos_recall=oos_recall,
            oos_precision=oos_precision,
            macro_f1=macro_f1,
            per_route=per_route,
            confused=confused,
            errors=errors,
            out_of_scope_label=oos,
            examples=list(examples),
            top1=top1,
            refused=refused_in,
            wrong_route=wrong,
        )

    # ------------------------------------------------------------------ output
    def to_dict(self, *, include_examples: bool = False) -> dict[str, Any]:
        """Plain data (examples only when asked)."""
        data: dict[str, Any] = {
            "n": self.n,
            "accuracy": self.accuracy,
            "in_scope_accuracy": self.in_scope_accuracy,
            "oos_recall": self.oos_recall,
            "oos_precision": self.oos_precision,
            "macro_f1": self.macro_f1,
            "out_of_scope_label": self.out_of_scope_label,
            "top1": self.top1,
            "refused": self.refused,
            "wrong_route": self.wrong_route,
            "operating_point": self.operating_point,
            "per_route": {k: asdict(v) for k, v in self.per_route.items()},
            "confused": [{"label": t, "predicted": p, "count": c} for t, p, c in self.confused],
            "errors": [asdict(e) for e in self.errors],
        }
        if include_examples:
            data["examples"] = [asdict(e) for e in self.examples]
        return data

    def to_json(self, *, indent: int | None = 2, include_examples: bool = False) -> str:
        """The report as JSON."""
        return json.dumps(self.to_dict(include_examples=include_examples), indent=indent, ensure_ascii=False)

    def summary(self) -> str:
        """A few human-readable lines."""

        def pct(x: float | None) -> str:
            return "-" if x is None else f"{100 * x:.2f}%"

        lines = [
            f"queries            {self.n}",
            f"accuracy           {pct(self.accuracy)}",
            f"in-scope accuracy  {pct(self.in_scope_accuracy)}",
            f"out-of-scope recall {pct(self.oos_recall)}  precision {pct(self.oos_precision)}",
            f"macro F1           {100 * self.macro_f1:.2f}",
            f"in-scope refused   {pct(self.refused)}  top-1 with refusal off {pct(self.top1)}",
            f"sent to a wrong route {pct(self.wrong_route)}",
        ]
        if self.operating_point:
            op = self.operating_point
            lines.append(f"operating point    {op.get('point')} (refusal score {op.get('score')})")
        if self.confused:
            lines.append("most confused:")
            lines += [f"  {t} -> {p}: {c}" for t, p, c in self.confused[:5]]
        return "\n".join(lines)

    # ------------------------------------------------------------------ sweeps and plots
    def threshold_sweep(self, thresholds: Sequence[float] | None = None) -> dict[str, list[float]]:
        """Accuracy and out-of-scope recall if the router abstained below each threshold.

        Uses each query's top candidate and its score, so it shows what moving the threshold would do.
        """
        scores = np.array([e.score for e in self.examples], dtype=np.float64)
        if thresholds is None:
            lo, hi = (float(scores.min()), float(scores.max())) if len(scores) else (0.0, 1.0)
            thresholds = list(np.linspace(lo, hi, 50))
        oos = self.out_of_scope_label
        truth = [e.label for e in self.examples]
        top = [e.top for e in self.examples]
        is_oos = np.array([oos is not None and t == oos for t in truth])
        right_top = np.array([t == p for t, p in zip(truth, top, strict=True)])
        acc, rec = [], []
        for th in thresholds:
            keep = scores >= th
            ok = np.where(keep, right_top & ~is_oos, is_oos)
            acc.append(float(ok.mean()) if len(ok) else 0.0)
            rec.append(float((~keep[is_oos]).mean()) if is_oos.any() else float("nan"))
        return {"threshold": [float(t) for t in thresholds], "accuracy": acc, "oos_recall": rec}

    def reliability(self, bins: int = 10) -> dict[str, list[float]]:
        """Mean score and share of correct top candidates per score bin (in-scope queries)."""
        oos = self.out_of_scope_label
        rows = [(e.score, e.top == e.label) for e in self.examples if e.label != oos]
        edges = np.linspace(0.0, 1.0, bins + 1)
        conf, acc, count = [], [], []
        s = np.clip(np.array([r[0] for r in rows], dtype=np.float64), 0.0, 1.0)
        ok = np.array([r[1] for r in rows], dtype=np.float64)
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            m = (s >= lo) & ((s < hi) if hi < 1.0 else (s <= hi))
            count.append(int(m.sum()))
            conf.append(float(s[m].mean()) if m.any() else float((lo + hi) / 2))
            acc.append(float(ok[m].mean()) if m.any() else float("nan"))
        return {"confidence": conf, "accuracy": acc, "count": [float(c) for c in count]}

    def operating_threshold(self) -> float | None:
        """The one threshold on the top score that best reproduces the router's own abstentions.

        A router may refuse for other reasons too (per-route thresholds, ambiguity, a fitted
        reject class), so this is the global threshold under which the fewest queries would be
        decided differently: a point to mark on the threshold sweep when the router's threshold
        is not given. None when there are no examples.
        """
        if not self.examples:
            return None
        scores = np.array([e.score for e in self.examples], dtype=np.float64)
        refused = np.array([e.predicted is None for e in self.examples])
        order = np.argsort(scores, kind="stable")
        s, r = scores[order], refused[order]
        # Threshold just above the i lowest scores: they are refused, the rest are answered.
        answered_below = np.concatenate([[0], np.cumsum(~r)])
        refused_above = int(r.sum()) - np.concatenate([[0], np.cumsum(r)])
        disagree = answered_below + refused_above
        best = int(np.argmin(disagree))
        if best == 0:
            return float(s[0])
        if best == len(s):
            return float(np.nextafter(s[-1], np.inf))
        return float((s[best - 1] + s[best]) / 2)

    def figures(self, *, threshold: float | None = None) -> dict[str, Any]:
        """Draw the plots as matplotlib figures, keyed by file stem (needs matplotlib).

        Args:
            threshold: the threshold the router refuses under (for example ``router.threshold``,
                or a fitted policy's ``threshold``); None marks :meth:`operating_threshold`.

        Returns:
            ``{"threshold_sweep": Figure, "reliability": Figure}``; the caller closes them.
        """
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError(
                "save_plots needs matplotlib: pip install 'synaptoroute-agents[plots]'"
            ) from exc
        chosen = self.operating_threshold() if threshold is None else float(threshold)
        figs = {
            "threshold_sweep": self._sweep_figure(plt, chosen, given=threshold is not None),
            "reliability": self._reliability_figure(plt),
        }
        if self.operating_point and self.operating_point.get("frontier"):
            figs["refusal_frontier"] = self._frontier_figure(plt, self.operating_point)
        return figs

    def _frontier_figure(self, plt: Any, op: dict[str, Any]) -> Any:
        """The frontier the refusal's operating point was chosen from (simulated inside ``fit``),
        the chosen point on it, and what this evaluation measured."""
        from .fitting.oos import OPERATING_POINTS

        pts = [(float(a), float(b)) for a, b in op["frontier"]]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([a for a, _ in pts], [b for _, b in pts], "o-", label="simulated in fit (unseen routes)")
        point = str(op.get("point"))
        share = OPERATING_POINTS.get(point)
        if share is None:
            try:
                share = float(point)
            except ValueError:
                share = None
        if share is not None:
            rec = float(np.interp(share, [a for a, _ in pts], [b for _, b in pts]))
            ax.plot(
                [share],
                [rec],
                marker="*",
                markersize=14,
                color="black",
                linestyle="none",
                label=f"chosen: {point} ({100 * share:g}% of in-scope refused)",
            )
        if self.refused is not None and self.oos_recall is not None:
            ax.plot(
                [self.refused],
                [self.oos_recall],
                marker="s",
                color="tab:red",
                linestyle="none",
                label=f"this evaluation: refused {100 * self.refused:.1f}%, recall {100 * self.oos_recall:.1f}%",
            )
        ax.set_xlabel("share of in-scope queries refused")
        ax.set_ylabel("out-of-scope recall")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        ax.set_title(f"Refusal frontier (score: {op.get('score')})")
        fig.tight_layout()
        return fig

    def _sweep_figure(self, plt: Any, chosen: float | None, *, given: bool) -> Any:
        """The threshold sweep, with the chosen threshold and the router's operating point."""
        sweep = self.threshold_sweep()
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(sweep["threshold"], sweep["accuracy"], label="accuracy")
        if self.out_of_scope_label is not None:
            ax.plot(sweep["threshold"], sweep["oos_recall"], label="out-of-scope recall")
        if chosen is not None:
            what = "threshold" if given else "effective threshold"
            ax.axvline(chosen, color="black", linestyle="--", linewidth=1, label=f"{what} {chosen:.3f}")
            # The operating point: what the router actually did (its own decisions, not the sweep's).
            parts = [f"accuracy {self.accuracy:.2f}"]
            if self.in_scope_accuracy is not None:
                parts.append(f"in-scope {self.in_scope_accuracy:.2f}")
            if self.oos_recall is not None:
                parts.append(f"oos recall {self.oos_recall:.2f}")
            ax.plot(
                [chosen],
                [self.accuracy],
                marker="o",
                color="black",
                linestyle="none",
                label="operating point: " + ", ".join(parts),
            )
            if self.oos_recall is not None:
                ax.plot([chosen], [self.oos_recall], marker="s", color="black", linestyle="none")
        ax.set_xlabel("threshold on the top score")
        ax.set_ylabel("share")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        ax.set_title("Abstaining below a threshold")
        fig.tight_layout()
        return fig

    def _reliability_figure(self, plt: Any) -> Any:
        """Mean score against the share routed correctly, per score bin."""
        rel = self.reliability()
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        ax.plot(rel["confidence"], rel["accuracy"], "o-", label="router")
        ax.set_xlabel("score of the top route")
        ax.set_ylabel("share routed correctly")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_title("Reliability (in-scope queries)")
        fig.tight_layout()
        return fig

    def save_plots(self, folder: str | os.PathLike[str], *, threshold: float | None = None) -> list[Path]:
        """Draw the threshold sweep and a reliability diagram as PNG files (needs matplotlib);
        with an :attr:`operating_point`, also ``refusal_frontier.png`` (the frontier it was
        chosen from, the chosen point marked).

        The sweep marks the threshold (a dashed vertical line) and the router's operating point:
        its accuracy (circle) and out-of-scope recall (square) as evaluated, with the in-scope
        accuracy in the legend.

        Args:
            folder: where to write ``threshold_sweep.png`` and ``reliability.png`` (created).
            threshold: the router's threshold; None marks :meth:`operating_threshold`.

        Returns:
            The paths written, sweep first.
        """
        figures = self.figures(threshold=threshold)  # raises ImportError without matplotlib
        import matplotlib.pyplot as plt

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for stem, fig in figures.items():
            p = out / f"{stem}.png"
            fig.savefig(p, dpi=120)
            plt.close(fig)
            paths.append(p)
        return paths


def read_labelled(path: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """Read a JSON-lines file of ``{"text": ..., "label": ...}`` objects."""
    from .errors import RouteFileError

    texts: list[str] = []
    labels: list[str] = []
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RouteFileError(f"cannot read {p}: {exc}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text, label = row["text"], row["label"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise RouteFileError(f"{p}:{n}: expected a JSON object with 'text' and 'label'") from None
        if not isinstance(text, str) or not isinstance(label, str):
            raise RouteFileError(f"{p}:{n}: 'text' and 'label' must be strings")
        if not text.strip():
            raise RouteFileError(f"{p}:{n}: the text is empty")
        if not label.strip():
            raise RouteFileError(f"{p}:{n}: the label is empty")
        texts.append(text)
        labels.append(label)
    if not texts:
        raise RouteFileError(f"{p} holds no examples")
    return texts, labels


def sample_shots(
    texts: Sequence[str], labels: Sequence[str], shots: int, seed: int
) -> tuple[list[str], list[str]]:
    """Keep ``shots`` random examples per label (all of a label that has fewer)."""
    if shots < 1:
        raise InvalidInputError("shots must be at least 1")
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_label.setdefault(lab, []).append(i)
    keep: list[int] = []
    for lab in sorted(by_label):
        idx = by_label[lab]
        keep.extend(idx if len(idx) <= shots else sorted(rng.choice(idx, shots, replace=False).tolist()))
    keep.sort()
    return [texts[i] for i in keep], [labels[i] for i in keep]
