"""Learning from labelled examples: a calibrated softmax head blended with a neighbour vote.

Method (every setting chosen inside :func:`fit` on held-out data, nothing by hand):

* **Head**: multinomial logistic regression on the embeddings (or on the encoder's head
  features when it has them, and on the words of the text when given), L2-regularized (strength
  chosen on held-out data along a warm-started path), temperature-calibrated (NLL on held-out
  data).
  Examples labelled out-of-scope form an extra *reject* class when there are enough of them.
* **Neighbour vote**: the query's nearest stored utterances vote for their routes with weights
  ``exp(cosine / tau)``; the head and the vote are mixed ``(1 - a) * head + a * vote``.
* **Refusing** (:mod:`.oos`): *which route* and *whether any route* are separate questions.
  Without a reject class, a refusal score (the head's probability, the nearest-utterance or
  nearest-centroid cosine, kNN density, or a blend of two) is chosen by simulating unseen
  routes inside ``fit`` (folds of routes play the queries no route fits), and refuses at an
  operating point that promises the share of in-scope queries refused (``refusal=``).
  With enough out-of-scope examples they form a reject class; its winning gives
  ``out_of_scope``, and the head's threshold maximizes ``in-scope accuracy + out-of-scope
  recall`` on held-out data within a budget of in-scope refusals.
* **Held-out data**: the ``validation`` set when given; otherwise a stratified 20% split for
  large sets and stratified k-fold cross-validation for small ones.

Modules: :mod:`.data` (labelled sets, fit-data preparation, :class:`FitSummary`),
:mod:`.numerics` (softmax, L-BFGS, neighbour vote), :mod:`.lexicon` (TF-IDF terms),
:mod:`.head` (:class:`FittedPolicy` and its stored format), :mod:`.train` (model selection).
Importing this package registers the ``"fitted"`` policy kind
(:func:`~synaptoroute_agents.scoring.register_policy`).
"""

from __future__ import annotations

from ..scoring.registry import load_policy, register_policy
from .data import (
    FitData,
    FitSummary,
    LabelledSet,
    PreparedFit,
    labelled,
    name_examples,
    prepare_fit,
    route_names_for,
)
from .head import KIND, FittedPolicy
from .lexicon import Lexicon
from .numerics import design_logits as _design_logits  # noqa: F401  (its former private name)
from .oos import DEFAULT_POINT, OPERATING_POINTS, Refusal
from .train import fit, fit_policy

__all__ = [
    "DEFAULT_POINT",
    "OPERATING_POINTS",
    "FitData",
    "FitSummary",
    "FittedPolicy",
    "LabelledSet",
    "Lexicon",
    "PreparedFit",
    "Refusal",
    "fit",
    "fit_policy",
    "labelled",
    "load_policy",
    "name_examples",
    "prepare_fit",
    "route_names_for",
]

register_policy(KIND, FittedPolicy.from_bytes, fit)
