"""Labelled sets and fit-data preparation: checked, cleaned, embedded examples for a fitter.

:func:`prepare_fit` turns what a user passes to ``SemanticRouter.fit`` into a :class:`FitData`
(embeddings, head features, texts and labels of the training and validation examples, plus
each route's name and description as one more example), and says which routes the fit must
create. It embeds through a callable, so it needs no router.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidInputError, InvalidTypeError, RouteNotFoundError
from ..routes import Route, clean_text

__all__ = [
    "FitData",
    "FitSummary",
    "LabelledSet",
    "PreparedFit",
    "labelled",
    "name_examples",
    "prepare_fit",
    "route_names_for",
]

#: Embeds cleaned texts: ``(unit embeddings, head features or None)``.
EmbedFn = Callable[[Sequence[str]], tuple[np.ndarray, "np.ndarray | None"]]


@dataclass(frozen=True, slots=True)
class FitSummary:
    """What :meth:`SemanticRouter.fit` did."""

    n_examples: int
    n_routes: int
    n_out_of_scope: int
    embed_seconds: float
    fit_seconds: float
    total_seconds: float
    settings: dict[str, Any]
    route_names: dict[str, str] = field(default_factory=dict)
    """Labels that were not valid route names, mapped to the route created for them."""

    @property
    def operating_point(self) -> dict[str, Any] | None:
        """The refusal's chosen operating point, score, threshold and the simulated frontier
        it was chosen from (``(in-scope refused, out-of-scope recall)`` pairs), or None."""
        ref = self.settings.get("refusal")
        return dict(ref) if isinstance(ref, dict) else None


@dataclass(frozen=True)
class LabelledSet:
    """Embedded, labelled examples.

    Attributes:
        embeddings: ``(n, d)`` unit embeddings (what the index and the neighbour vote read).
        labels: the route of each row, or the out-of-scope label.
        texts: the cleaned text of each row (for lexical features), when known.
        features: the encoder's head features of the rows (``(n, d')``), when it has them.
    """

    embeddings: np.ndarray
    labels: list[str]
    texts: list[str] | None = None
    features: np.ndarray | None = None

    def __post_init__(self) -> None:
        if np.ndim(self.embeddings) != 2 or len(self.embeddings) != len(self.labels):
            raise InvalidInputError("X must be (n, d) with one label per row")
        if self.texts is not None and len(self.texts) != len(self.labels):
            raise InvalidInputError("texts must have one entry per row of X")
        if self.features is not None and len(self.features) != len(self.labels):
            raise InvalidInputError("H must have one row per row of X")


@dataclass(frozen=True)
class FitData:
    """Everything a fitter reads (see :func:`~synaptoroute_agents.fitting.fit`).

    Attributes:
        train: the training examples.
        validation: held-out examples used to choose settings (None: cross-validation).
        oos_label: the label of examples that must be refused.
        features: the id of the head features in ``train.features`` (None: none).
        seed: seed of the held-out splits.
        refusal_budget: with out-of-scope examples, the most in-scope held-out queries the
            threshold may refuse beyond those the head already gets wrong.
        abstain_quantile: without out-of-scope examples, the share of held-out in-scope queries
            the threshold may refuse.
        lexical: False fits on the embeddings alone even when texts are given.
        refusal: the refusal's operating point: ``"permissive"``, ``"balanced"``, ``"cautious"``
            or the share of in-scope queries it may refuse (see :mod:`~synaptoroute_agents.fitting.oos`).
        options: settings of a fitter other than the built-in one (plain data).
    """

    train: LabelledSet
    validation: LabelledSet | None = None
    oos_label: str | None = None
    features: str | None = None
    seed: int = 0
    refusal_budget: float = 0.01
    abstain_quantile: float = 0.01
    lexical: bool = True
    refusal: str | float = "balanced"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        val = self.validation
        has_features = self.train.features is not None
        if has_features != (self.features is not None) or (
            val is not None and (val.features is not None) != has_features
        ):
            raise InvalidInputError("head features need H (and H_val with X_val) and their id")


@dataclass(frozen=True)
class PreparedFit:
    """:func:`prepare_fit`'s result: the data, the routes to create first, and counts."""

    data: FitData
    route_names: dict[str, str]
    new_routes: list[Route]
    new_route_vectors: np.ndarray
    n_examples: int
    n_routes: int
    n_out_of_scope: int
    embed_seconds: float


_NAME_SPLIT = re.compile(r"[\W_]+|(?<=[a-z])(?=[A-Z])")


def name_examples(routes: Sequence[Route]) -> list[tuple[str, str]]:
    """``(text, route)`` pairs: each route's name read as words, and its description.

    ``card_arrival`` reads "card arrival". Words every name shares ("intent" in ``intent_17``)
    say nothing about any route and are dropped; a name left without a word of two letters or
    more (``r1``, ``intent_17``) gives no example.
    """
    words = {r.name: [w.lower() for w in _NAME_SPLIT.split(r.name) if w] for r in routes}
    common = set.intersection(*(set(ws) for ws in words.values())) if len(words) > 1 else set()
    out: list[tuple[str, str]] = []
    for r in routes:
        kept = [w for w in words[r.name] if w not in common]
        if any(len(w) >= 2 and w.isalpha() for w in kept):
            out.append((" ".join(kept), r.name))
        if r.description and r.description.strip():
            desc = clean_text(r.description)
            if desc and desc != " ".join(kept):
                out.append((desc, r.name))
    return out


def labelled(texts: Any, labels: Any, what: str) -> tuple[list[str], list[str]]:
    """Check a labelled set given by a caller; returns the cleaned texts and the labels.

    Raises:
        InvalidTypeError: not lists of strings.
        InvalidInputError: empty, or not one label per text.
    """
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise InvalidTypeError(f"{what} must be a list of strings")
    if isinstance(labels, str | bytes) or not isinstance(labels, Sequence):
        raise InvalidTypeError("labels must be a list of strings")
    if len(texts) != len(labels):
        raise InvalidInputError(f"{len(texts)} texts but {len(labels)} labels")
    if not texts:
        raise InvalidInputError(f"{what} are empty")
    for lab in labels:
        if not isinstance(lab, str):
            raise InvalidTypeError(f"labels must be strings, not {type(lab).__name__}")
    return [clean_text(t) for t in texts], list(labels)


def route_names_for(labels: Sequence[str], taken: Sequence[str] = ()) -> dict[str, str]:
    """A valid, unique route name for every label (labels may hold spaces, '?', '#', any text).

    A label that is already a valid name keeps it; another becomes its words joined by ``_``
    (``reverted_card_payment?`` -> ``reverted_card_payment``, ``atis_flight#atis_airfare`` ->
    ``atis_flight_atis_airfare``), with a short hash of the label when that name is taken.
    """
    from ..errors import InvalidRouteError
    from ..routes import validate_route_name

    out: dict[str, str] = {}
    uniq = sorted(set(labels))
    used: set[str] = set(taken)
    for lab in uniq:
        try:
            validate_route_name(lab)
            out[lab] = lab
            used.add(lab)
        except InvalidRouteError:
            pass
    for lab in uniq:
        if lab in out:
            continue
        name = re.sub(r"[^\w.:\-]+", "_", lab).strip("_.:-")[:100] or "label"
        if not re.match(r"\w", name):
            name = "l_" + name
        if name in used:
            name = f"{name[:90]}_{hashlib.sha1(lab.encode()).hexdigest()[:8]}"
        used.add(name)
        out[lab] = name
    return out


def _not_routes(unknown: list[str]) -> Exception:
    if len(unknown) == 1:
        return RouteNotFoundError(unknown[0])
    return InvalidInputError(
        f"{len(unknown)} labels are not routes (e.g. {unknown[:3]}); pass create_routes=True"
    )


def _routes_to_create(
    clean: list[str], labs: list[str], unknown: list[str], X: np.ndarray
) -> tuple[list[Route], np.ndarray]:
    """A route (its examples as utterances) per unknown label, with those utterances' embeddings."""
    if not unknown:
        return [], X[:0]
    by_text: dict[tuple[str, str], int] = {}
    for i, (t, lab) in enumerate(zip(clean, labs, strict=True)):
        by_text.setdefault((lab, t), i)
    new_routes = [Route(lab, [t for t, lb in zip(clean, labs, strict=True) if lb == lab]) for lab in unknown]
    rows = [by_text[(r.name, t)] for r in new_routes for t in r.utterances]
    return new_routes, X[rows]


def _extended(train: LabelledSet, extra: list[tuple[str, str]], embed: EmbedFn) -> LabelledSet:
    """``train`` with the ``(text, route)`` examples ``extra`` embedded and appended."""
    X_extra, H_extra = embed([t for t, _ in extra])
    H = train.features
    if H is not None and H_extra is not None:
        H = np.vstack([H, H_extra])
    return LabelledSet(
        np.vstack([train.embeddings, X_extra]),
        train.labels + [lab for _, lab in extra],
        (train.texts or []) + [t for t, _ in extra],
        H,
    )


def prepare_fit(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    routes: Mapping[str, Route],
    embed: EmbedFn,
    features: str | None,
    out_of_scope_label: str | None = None,
    validation: tuple[Sequence[str], Sequence[str]] | None = None,
    create_routes: bool = False,
    with_name_examples: bool = True,
    seed: int = 0,
    refusal_budget: float = 0.01,
    refusal: str | float = "balanced",
    options: Mapping[str, Any] | None = None,
) -> PreparedFit:
    """Check and embed the arguments of ``SemanticRouter.fit`` (see there).

    Args:
        routes: the router's routes by name.
        embed: embeds cleaned texts (with head features when ``features`` is not None).
        features: the id of the encoder's head features, or None.

    Raises:
        InvalidInputError, InvalidTypeError: bad arguments.
        RouteNotFoundError: one label is not a route and ``create_routes`` is False.
    """
    clean, labs = labelled(texts, labels, "texts")
    oos = out_of_scope_label
    if oos is not None and not isinstance(oos, str):
        raise InvalidTypeError("out_of_scope_label must be a str")
    if (
        isinstance(refusal_budget, bool)
        or not isinstance(refusal_budget, int | float)
        or not 0.0 <= refusal_budget <= 1.0
    ):
        raise InvalidInputError("refusal_budget must be a number in [0, 1]")
    from .oos import check_refusal

    check_refusal(refusal)
    in_labels = sorted({lab for lab in labs if lab != oos})
    if not in_labels:
        raise InvalidInputError("fit needs examples of at least one route")
    names: dict[str, str] = {}
    if create_routes:  # labels as users write them: each becomes a valid route name
        names = route_names_for([lab for lab in in_labels if lab not in routes], list(routes))
        names = {lab: n for lab, n in names.items() if n != lab}
        if names:
            labs = [names.get(lab, lab) for lab in labs]
            in_labels = sorted({lab for lab in labs if lab != oos})
    unknown = [lab for lab in in_labels if lab not in routes]
    if unknown and not create_routes:
        raise _not_routes(unknown)
    t0 = time.perf_counter()
    X, H = embed(clean)
    embed_seconds = time.perf_counter() - t0
    new_routes, new_vectors = _routes_to_create(clean, labs, unknown, X)
    val_set: LabelledSet | None = None
    if validation is not None:
        if not isinstance(validation, tuple | list) or len(validation) != 2:
            raise InvalidTypeError("validation must be a (texts, labels) pair")
        v_texts, labs_val = labelled(validation[0], validation[1], "validation texts")
        labs_val = [names.get(lab, lab) for lab in labs_val]
        t0 = time.perf_counter()
        X_val, H_val = embed(v_texts)
        embed_seconds += time.perf_counter() - t0
        val_set = LabelledSet(X_val, labs_val, v_texts, H_val)
    train = LabelledSet(X, labs, clean, H)
    if with_name_examples:
        by_name = {**routes, **{r.name: r for r in new_routes}}
        extra = name_examples([by_name[lab] for lab in in_labels if lab in by_name])
        if extra:
            t0 = time.perf_counter()
            train = _extended(train, extra, embed)
            embed_seconds += time.perf_counter() - t0
    data = FitData(
        train=train,
        validation=val_set,
        oos_label=oos,
        features=features,
        seed=seed,
        refusal_budget=float(refusal_budget),
        refusal=refusal,
        options=dict(options or {}),
    )
    return PreparedFit(
        data=data,
        route_names=names,
        new_routes=new_routes,
        new_route_vectors=new_vectors,
        n_examples=len(clean),
        n_routes=len(in_labels),
        n_out_of_scope=sum(1 for lab in labs if lab == oos),
        embed_seconds=embed_seconds,
    )
