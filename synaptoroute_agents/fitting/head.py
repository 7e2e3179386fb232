"""The fitted head as a scoring policy, and its stored format (an ``.npz`` with a JSON header, no pickle).

See :mod:`synaptoroute_agents.fitting` for the method. Routes added after a fit take part at
once: the head does not know them, so they are scored by the neighbour vote alone (and a stale
head never outvotes a route whose neighbours all agree). Routes deleted after a fit are never
returned. A route's own threshold (a cosine) still applies: its nearest utterance must reach it.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from ..errors import NotFittedError
from ..index.exact import FloatScan
from ..routes import Reason
from ..scoring.base import Decision, Neighbors, QueryBatch
from .lexicon import Lexicon
from .numerics import design_logits, softmax
from .oos import Refusal, RefusalModel, check_refusal

__all__ = ["KIND", "REJECT", "FittedPolicy"]

log = logging.getLogger(__name__)


def query_logits(X: np.ndarray, F: Any, W: np.ndarray, scale: float, what: str) -> np.ndarray:
    """:func:`design_logits` at query time, as float64.

    The dense product runs in onnxruntime, whose threads do not spin afterwards for the CPU the
    encoder's next batch needs (NumPy's BLAS threads do; see FloatScan); if onnxruntime fails on
    this input, NumPy answers (``what`` names the head in the warning).
    """
    scan = FloatScan.shared()
    try:
        Z = design_logits(X, F, W, scale, None if scan is None else scan.matmul)
    except Exception as exc:  # onnxruntime failing on this input: NumPy answers
        log.warning("%s's product failed in onnxruntime (%s); using NumPy", what, exc)
        Z = design_logits(X, F, W, scale)
    return np.asarray(Z, dtype=np.float64)


#: The registered kind of :class:`FittedPolicy`.
KIND = "fitted"
#: The label of the reject class (out-of-scope examples) among the head's classes.
REJECT = "\x00out_of_scope"

_FORMAT = "synaptoroute-policy"
_VERSION = 4
_READABLE = (1, 2, 3, 4)  # 1: embeddings only, no lexicon; 2: no head features; 3: no refusal score


@dataclass
class FittedPolicy:
    """A learned scoring policy (see :mod:`synaptoroute_agents.fitting`). Safe to share between threads."""

    routes: list[str]
    weights: np.ndarray  # (d + 1, k) with the reject class last when `reject`
    temperature: float
    alpha: float
    tau: float
    threshold: float
    reject: bool
    settings: dict[str, Any] = field(default_factory=dict)
    lexicon: Lexicon | None = None  # lexical features of the query text (None: embeddings only)
    scale: float = 1.0  # weight of the embedding block against the unit-norm lexical block
    features: str | None = None  # the encoder's head features the head reads (None: the embeddings)
    refusal: Refusal | None = None  # whether any route fits (None: the head's threshold alone)

    kind: ClassVar[str] = KIND

    def __post_init__(self) -> None:
        self._col = {r: i for i, r in enumerate(self.routes)}

    def with_operating_point(self, refusal: str | float) -> FittedPolicy:
        """The same policy refusing at another operating point (no refit: every point's
        threshold was computed by ``fit``; a share not computed there is interpolated on the
        simulated in-scope scores' quantiles it kept).

        Raises:
            InvalidInputError: an unknown operating point.
        """
        share = check_refusal(refusal)
        if self.refusal is None:
            return self
        key = refusal if isinstance(refusal, str) else f"{share:g}"
        thresholds = dict(self.refusal.thresholds)
        if key not in thresholds:
            thresholds[key] = self.refusal.interpolate(share)
        settings = dict(self.settings)
        settings["refusal"] = {  # the rest (score, frontier) stays as fitted
            **dict(settings.get("refusal", {})),
            "point": key,
            "threshold": round(thresholds[key], 4),
        }
        return replace(
            self, refusal=replace(self.refusal, thresholds=thresholds, point=key), settings=settings
        )

    def refusal_values(
        self,
        Q: np.ndarray,
        neighbors: Neighbors,
        live: Mapping[str, float | None],
        head: np.ndarray,
        energy: np.ndarray | None = None,
    ) -> np.ndarray:
        """The refusal score of each query (higher: more in scope); needs :attr:`refusal`.

        ``head`` is each query's top blended probability (its decision's best score),
        ``energy`` the log-sum-exp of its head logits (:func:`.numerics.logsumexp`).
        """
        assert self.refusal is not None
        m = max((len(p) for p in neighbors), default=0)
        S = np.full((len(Q), max(m, 1)), -np.inf)
        for i, pairs in enumerate(neighbors):
            sims = [s for n, s in pairs if n in live]
            S[i, : len(sims)] = sims
        mask = np.array([r in live for r in self.routes], bool)
        return self.refusal.values(np.asarray(Q, dtype=np.float64), S, head, mask, energy)

    # -- scoring
    def head_probs(
        self, Q: np.ndarray, texts: Sequence[str] | None = None, features: np.ndarray | None = None
    ) -> np.ndarray:
        """Calibrated head probabilities ``(b, k)`` (reject class last when present); see
        :meth:`head_logits`."""
        return softmax(self.head_logits(Q, texts, features))

    def head_logits(
        self, Q: np.ndarray, texts: Sequence[str] | None = None, features: np.ndarray | None = None
    ) -> np.ndarray:
        """The head's logits divided by its temperature, ``(b, k)`` (float64).

        ``features`` are the encoder's head features of the queries (when the head was fitted on
        them); without them the head reads the embeddings ``Q`` in their place, and without
        ``texts`` a lexical head leaves the words out (both less accurate).
        """
        if self.features is not None and features is not None and len(features) == len(Q):
            Q = np.asarray(features, dtype=np.float32)
        F = None
        if self.lexicon is not None:
            if texts is not None and len(texts) == len(Q):
                F = self.lexicon.transform(texts)
            else:
                log.debug("no query texts: the lexical features are left out")
        return query_logits(Q, F, self.weights, self.scale, "the head") / self.temperature

    def decide(
        self,
        queries: QueryBatch,
        neighbors: Neighbors,
        live_routes: Mapping[str, float | None],
        top_k: int = 1,
    ) -> list[Decision]:
        """Rank live routes by blended probability and decide (see :class:`ScoringPolicy`).

        The head reads the queries' texts (lexical features) and head features when the batch
        carries them (see :meth:`head_probs`).
        """
        Q = np.asarray(queries.embeddings, dtype=np.float32)
        Z = self.head_logits(Q, queries.texts, queries.features)
        P = softmax(Z)
        out = [self._decide_one(P[qi], pairs, live_routes, top_k) for qi, pairs in enumerate(neighbors)]
        if self.refusal is None:
            return out
        head = np.array([d.ranked[0][1] if d.ranked else 0.0 for d in out])
        refuse = self.refusal_values(Q, neighbors, live_routes, head) < self.refusal.threshold
        for qi, d in enumerate(out):
            # a route added after the fit has no refusal score yet: its own threshold decides
            if refuse[qi] and d.chosen is not None and d.chosen in self._col:
                out[qi] = Decision(d.ranked, None, Reason.OUT_OF_SCOPE)
        return out

    def _decide_one(
        self,
        head: np.ndarray,
        pairs: Sequence[tuple[str, float]],
        live_routes: Mapping[str, float | None],
        top_k: int,
    ) -> Decision:
        n_routes = len(self.routes)
        vote: dict[str, float] = {}
        nearest: dict[str, float] = {}
        live_pairs = [(n, s) for n, s in pairs if n in live_routes]
        if live_pairs:
            top = max(s for _, s in live_pairs)
            for name, s in live_pairs:
                vote[name] = vote.get(name, 0.0) + float(np.exp((s - top) / self.tau))
                if name not in nearest:
                    nearest[name] = s
            total = sum(vote.values())
            for name in vote:
                vote[name] /= total
        cand = set(vote)
        if n_routes:
            kk = min(n_routes, max(top_k, 5))
            for c in np.argpartition(-head[:n_routes], kk - 1)[:kk].tolist():
                if self.routes[c] in live_routes:
                    cand.add(self.routes[c])
        scores: dict[str, float] = {}
        for name in cand:
            col = self._col.get(name)
            v = vote.get(name, 0.0)
            # a route the head has never seen (added after the fit) is scored by its vote alone
            scores[name] = v if col is None else (1 - self.alpha) * float(head[col]) + self.alpha * v
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        if not ranked:
            return Decision([], None, Reason.BELOW_THRESHOLD)
        name, score = ranked[0]
        p_reject = float(head[n_routes]) if self.reject else 0.0
        own = live_routes.get(name)
        if self.reject and (1 - self.alpha) * p_reject > score:
            return Decision(ranked, None, Reason.OUT_OF_SCOPE)
        if score < self.threshold or (own is not None and nearest.get(name, -1.0) < own):
            return Decision(ranked, None, Reason.BELOW_THRESHOLD)
        return Decision(ranked, name, Reason.MATCHED)

    def passes(self, name: str, score: float, live_routes: Mapping[str, float | None]) -> bool:
        """True when a candidate's blended probability reaches the fitted threshold."""
        return name in live_routes and score >= self.threshold

    # -- persistence (no pickle)
    def to_bytes(self) -> bytes:
        """The head's state: an ``.npz`` of its arrays with a JSON header (see :meth:`from_bytes`)."""
        header = {
            "format": _FORMAT,
            "version": _VERSION,
            "routes": self.routes,
            "temperature": self.temperature,
            "alpha": self.alpha,
            "tau": self.tau,
            "threshold": self.threshold,
            "reject": self.reject,
            "settings": self.settings,
            "scale": self.scale,
            "features": self.features,
        }
        arrays: dict[str, np.ndarray] = {"weights": self.weights}
        if self.refusal is not None:
            header["refusal"] = self.refusal.header()
            m = self.refusal.model
            arrays["refusal_centroids"] = m.centroids
        if self.lexicon is not None:
            lex_header, lex_arrays = self.lexicon.to_state()
            header["lexicon"] = lex_header
            arrays.update(lex_arrays)
        buf = io.BytesIO()
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as ArrayLike | bool
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> FittedPolicy:
        """Read a state written by :meth:`to_bytes` (every earlier version too).

        Raises:
            NotFittedError: the bytes are not a readable fitted state.
        """
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                header = json.loads(bytes(z["header"]).decode())
                weights = np.array(z["weights"], dtype=np.float32)
                lexicon = (
                    Lexicon.from_state(header["lexicon"], {n: np.array(z[n]) for n in z.files})
                    if "lexicon" in header
                    else None
                )
                refusal = (
                    Refusal.from_header(
                        header["refusal"],
                        RefusalModel(np.array(z["refusal_centroids"], dtype=np.float32)),
                    )
                    if "refusal" in header and header.get("version", 0) >= 4
                    else None
                )
        except Exception as exc:
            raise NotFittedError(f"the stored fitted state cannot be read: {exc}") from exc
        if header.get("format") != _FORMAT or header.get("version") not in _READABLE:
            raise NotFittedError("the stored fitted state has an unknown format; fit again")
        return cls(
            routes=list(header["routes"]),
            weights=weights,
            temperature=float(header["temperature"]),
            alpha=float(header["alpha"]),
            tau=float(header["tau"]),
            threshold=float(header["threshold"]),
            reject=bool(header["reject"]),
            settings=dict(header.get("settings", {})),
            lexicon=lexicon,
            scale=float(header.get("scale", 1.0)),
            features=header.get("features"),
            refusal=refusal,
        )
