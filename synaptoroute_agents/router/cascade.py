"""The cascade's static tier inside the router (for encoders with the ``TieredEncoder`` capability).

The tier keeps a second index, of the stored utterances' static embeddings (recomputed from their
texts at boot and on every change, 0.1-0.3 ms each on a busy 2-core machine; the store is unchanged). A query's
static embedding is searched there and ranked by nearest utterance per route; the tier answers
when its best route's static score is at least the gate's ``floor`` and leads the runner-up by at
least the gate's ``margin`` (and the route has no threshold of its own, which is on the
transformer's scale). Every other query goes to the transformer and the router's policy, as
without the cascade.

The gate: :data:`DEFAULT_GATE` for an unfitted router (measured on public intent sets, see its
comment); ``fit`` chooses one by cross-validation (:func:`fit_gate`) and the store keeps it
under :data:`GATE_KEY`, so every replica and every boot uses it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ..encoders.base import TieredEncoder
from ..errors import InvalidInputError
from ..index import VectorIndex
from ..routes import RouteMatch
from ..scoring import CosinePolicy, QueryBatch
from .decide import decide
from .tables import IdTables

if TYPE_CHECKING:
    from ..fitting.data import PreparedFit
    from ..store import RouteStore
    from .core import SemanticRouter

__all__ = [
    "DEFAULT_GATE",
    "GATE_KEY",
    "Gate",
    "StaticTier",
    "choose_gate",
    "fit_cascade_gate",
    "fit_gate",
    "route_cascade",
]

log = logging.getLogger(__name__)

#: The store key of the fitted gate.
GATE_KEY = "cascade"


@dataclass(frozen=True)
class Gate:
    """When the static tier answers: best static score >= ``floor`` and lead >= ``margin``."""

    floor: float
    margin: float
    source: str = "default"

    def to_json(self) -> bytes:
        return json.dumps({"floor": self.floor, "margin": self.margin, "source": self.source}).encode()

    @staticmethod
    def from_json(blob: bytes) -> Gate:
        d = json.loads(blob.decode())
        return Gate(float(d["floor"]), float(d["margin"]), str(d.get("source", "fitted")))


#: The gate of an unfitted router, measured on the train/validation splits of CLINC150 (with its
#: out-of-scope queries), Banking77 and HWU64 with the cosine policy (train stored, validation as
#: queries; Banking77 keeps a seeded 20% of train as queries; test never read): of the gates on a
#: 0.01 grid that kept the static tier's disagreement with the transformer-only decision within
#: 0.2% of each set's queries and let none of CLINC150's out-of-scope queries through, the one
#: answering the most queries statically (Banking77 26%, CLINC150 31%, HWU64 32%)
#: (``uv run --group bench python -m benchmarks.cascade --calibrate``).
DEFAULT_GATE = Gate(floor=0.87, margin=0.10, source="default")

#: The share of queries the fitted gate may answer differently from the transformer-only decision
#: (estimated by cross-validation inside ``fit``).
DISAGREEMENT_BUDGET = 0.002


class StaticTier:
    """The static index beside the router's index, and the gate.

    Args:
        encoder: the router's encoder (with the ``TieredEncoder`` capability).
    """

    def __init__(self, encoder: TieredEncoder) -> None:
        self.encoder = encoder
        self.index = VectorIndex(encoder.static_dim)
        self._gate = DEFAULT_GATE
        self._policy = CosinePolicy(DEFAULT_GATE.floor, DEFAULT_GATE.margin)
        #: queries answered by the static tier and by the transformer since the router started
        self.answered = {"static": 0, "transformer": 0}

    # -- the static index follows the router's index (the caller holds the write lock)
    def load(self, ids: np.ndarray, texts: Sequence[str]) -> None:
        """Make the static index hold ``texts`` under ``ids`` (the router's whole content)."""
        self.index.load(ids, self.encoder.static_embed(list(texts)))

    def apply(self, removed: Sequence[int], added: Sequence[int], texts: Sequence[str]) -> None:
        """Mirror a committed change (ids removed, ids added with their texts)."""
        vecs = (
            self.encoder.static_embed(list(texts))
            if len(added)
            else np.empty((0, self.index.dim), np.float32)
        )
        self.index.apply(
            np.asarray(list(removed), dtype=np.int64), np.asarray(list(added), dtype=np.int64), vecs
        )

    # -- the gate
    @property
    def gate(self) -> Gate:
        """The gate in use."""
        return self._gate

    @gate.setter
    def gate(self, gate: Gate) -> None:
        # one policy object per gate: a query running meanwhile keeps the one it read
        self._policy = CosinePolicy(gate.floor, gate.margin)
        self._gate = gate

    def load_gate(self, store: RouteStore, model_id: str) -> None:
        """The store's fitted gate when it was chosen for this encoder, else the default."""
        saved = store.load_fitted(GATE_KEY)
        gate = DEFAULT_GATE
        if saved is not None:
            blob, mid, _version = saved
            if mid == self._gate_model_id(model_id):
                gate = Gate.from_json(blob)
            else:
                log.warning("the stored cascade gate was chosen with %r; using the default", mid)
        self.gate = gate

    def gate_model_id(self, model_id: str) -> str:
        """The id a fitted gate is stored under: the transformer's and the static table's."""
        return self._gate_model_id(model_id)

    def _gate_model_id(self, model_id: str) -> str:
        return f"{model_id}+{self.encoder.static_id}"

    # -- queries
    def split(
        self, tables: IdTables, texts: Sequence[str], top_k: int, neighbors: int
    ) -> tuple[list[RouteMatch | None], list[int]]:
        """The static tier's answers (None where it defers) and the positions it defers.

        The caller has registered as a reader of ``tables``.
        """
        S = self.encoder.static_embed(list(texts))
        gate = self._gate
        out: list[RouteMatch | None] = [None] * len(texts)
        rest: list[int] = list(range(len(texts)))
        if not tables.thresholds:
            return out, rest
        scores, ids = self.index.search(S, max(neighbors, 4 * top_k))
        names, best, lead = leads(scores, ids, tables.id_route)
        own = tables.thresholds
        # a route's own threshold is on the transformer's scale: the transformer decides it
        sure = [
            i
            for i, n in enumerate(names)
            if n is not None and own.get(n, 0.0) is None and best[i] >= gate.floor and lead[i] >= gate.margin
        ]
        if sure:
            matches = decide(
                tables,
                self.index,
                self._policy,
                QueryBatch(S[sure], None, None),
                top_k,
                neighbors,
                found=(scores[sure], ids[sure]),
            )
            for i, m in zip(sure, matches, strict=True):
                if m.name == names[i]:  # the same search: always, unless the index changed meanwhile
                    out[i] = replace(m, margin=float(lead[i]), tier="static")
            rest = [i for i, m in enumerate(out) if m is None]
        self.answered["static"] += len(texts) - len(rest)
        self.answered["transformer"] += len(rest)
        return out, rest


def leads(
    scores: np.ndarray, ids: np.ndarray, id_route: dict[int, str]
) -> tuple[list[str | None], np.ndarray, np.ndarray]:
    """Each query's best route, its score and its lead from its nearest rows (best first).

    The lead is the best score minus the best score of another route among the rows; when the
    rows hold no other route, minus the last row's score (no other route scores higher: a lower
    bound of the lead), or 1 when the rows are all the index has.
    """
    n, k = scores.shape
    names: list[str | None] = []
    best = np.zeros(n)
    lead = np.zeros(n)
    for q, (srow, irow) in enumerate(zip(scores.tolist(), ids.tolist(), strict=True)):
        r1: str | None = None
        b1 = b2 = last = 0.0
        seen = 0
        other = False
        for sc, i in zip(srow, irow, strict=True):
            if i < 0:
                break
            name = id_route.get(i)
            if name is None:
                continue
            seen += 1
            last = sc
            if r1 is None:
                r1, b1 = name, sc
            elif name != r1:
                b2, other = sc, True
                break
        names.append(r1)
        if r1 is None:
            continue
        best[q] = b1
        full = irow[-1] >= 0 and seen > 0
        lead[q] = b1 - b2 if other else (b1 - last if full else 1.0)
    return names, best, lead


# --------------------------------------------------------------------------- choosing the gate
def choose_gate(
    best: np.ndarray,
    lead: np.ndarray,
    agree: np.ndarray,
    oos: np.ndarray,
    budget: float = DISAGREEMENT_BUDGET,
) -> Gate | None:
    """The gate that answers the most in-scope queries statically within the rules, or None.

    Args:
        best: each held-out query's best static route score.
        lead: its lead over the runner-up route.
        agree: whether the static best route is the transformer-only decision (in-scope rows).
        oos: the rows that are (simulated or real) out-of-scope queries: none may pass.
        budget: the most disagreements allowed, as a share of the in-scope rows.
    """
    best, lead = np.asarray(best, np.float64), np.asarray(lead, np.float64)
    agree, oos = np.asarray(agree, bool), np.asarray(oos, bool)
    ins = ~oos
    n_in = int(ins.sum())
    if n_in == 0:
        return None
    qs = np.linspace(0.0, 1.0, 41)
    floors = np.unique(np.quantile(best[ins], qs))
    margins = np.unique(np.concatenate(([0.0], np.quantile(lead[ins], qs))))
    allowed = budget * n_in
    found: tuple[float, float, float] | None = None  # (share, floor, margin)
    for f in floors:
        over = best >= f
        if not over[ins].any():
            continue
        for m in margins:
            passes = over & (lead >= m)
            if (passes & oos).any():
                continue
            p_in = passes & ins
            if int((p_in & ~agree).sum()) > allowed:
                continue
            share = p_in.sum() / n_in
            if found is None or share > found[0]:
                found = (float(share), float(f), float(m))
            break  # a larger margin at this floor passes fewer
    if found is None or found[0] == 0.0:
        return None
    return Gate(found[1], found[2], source="fitted")


def held_out_static(
    rows: np.ndarray,
    row_route: np.ndarray,
    row_fold: np.ndarray,
    queries: np.ndarray,
    query_fold: np.ndarray,
    neighbors: int,
    hide_routes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best static route, its score and its lead for each query, out of fold, as the router sees
    them: among the query's ``neighbors`` nearest rows (no runner-up among them: lead 1).

    A query does not see rows of its own fold; with ``hide_routes`` (a route per query, -1 for
    none) it does not see that route's rows either (the query then simulates an unseen route).
    """
    n = len(queries)
    best_route = np.full(n, -1, dtype=np.int64)
    best = np.zeros(n)
    lead = np.zeros(n)
    k = max(1, min(neighbors, len(rows)))
    for s in range(0, n, 512):
        sc = queries[s : s + 512] @ rows.T
        sc[query_fold[s : s + 512, None] == row_fold[None, :]] = -np.inf
        if hide_routes is not None:
            sc[hide_routes[s : s + 512, None] == row_route[None, :]] = -np.inf
        top = (
            np.argpartition(-sc, k - 1, axis=1)[:, :k]
            if k < sc.shape[1]
            else np.arange(sc.shape[1])[None, :].repeat(len(sc), 0)
        )
        tsc = np.take_along_axis(sc, top, axis=1)
        order = np.argsort(-tsc, axis=1)
        tsc = np.take_along_axis(tsc, order, axis=1)
        troute = row_route[np.take_along_axis(top, order, axis=1)]
        b1, r1 = tsc[:, 0], troute[:, 0]
        valid = np.isfinite(tsc)
        other = valid & (troute != r1[:, None])
        has_other = other.any(axis=1)
        b2 = np.where(other, tsc, -np.inf).max(axis=1)
        full = valid[:, -1] if k < sc.shape[1] else np.zeros(len(sc), bool)
        last = np.where(valid, tsc, np.inf).min(axis=1)
        ok = valid[:, 0]
        ld = np.where(has_other, b1 - b2, np.where(full, b1 - last, 1.0))
        best[s : s + 512] = np.where(ok, b1, 0.0)
        lead[s : s + 512] = np.where(ok, ld, 0.0)
        best_route[s : s + 512] = np.where(ok, r1, -1)
    return best_route, best, lead


def fit_gate(
    tier: StaticTier,
    tables: IdTables,
    prepared: PreparedFit,
    transformer_decisions: Sequence[str | None],
    seed: int = 0,
    folds: int = 5,
    neighbors: int = 32,
    refused_unseen: Sequence[bool] | None = None,
) -> Gate | None:
    """Choose the gate by cross-validation on the fit examples.

    Each fit example is scored by the static tier out of fold (rows with the same words, case and
    punctuation aside, in the same fold, so an example never finds itself or a near copy of
    itself, which a data set may hold under another label); it agrees when the static best route is the
    transformer-only decision of the fitted router. The gate may let through none of the fit's
    out-of-scope examples, and none of the route-holdout simulation's queries (each in-scope
    example scored again with its own route hidden) that the transformer would refuse:
    ``refused_unseen`` says which (one flag per in-scope example, in order; None: all).
    """
    data = prepared.data
    texts = data.train.texts
    if texts is None or len(texts) != len(transformer_decisions):
        raise InvalidInputError("the cascade gate needs the fit examples' texts")
    labels = list(data.train.labels)
    ids = sorted(tables.id_route)
    route_names = sorted(set(tables.id_route.values()))
    if len(ids) < 2 or len(route_names) < 2:
        return None
    pos = {n: i for i, n in enumerate(route_names)}
    row_texts = [tables.id_text[i] for i in ids]
    rows = tier.encoder.static_embed(row_texts).astype(np.float64)
    row_route = np.array([pos[tables.id_route[i]] for i in ids], dtype=np.int64)
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    for t in dict.fromkeys(_words(x) for x in [*row_texts, *texts]):
        fold_of[t] = int(rng.integers(folds))
    row_fold = np.array([fold_of[_words(t)] for t in row_texts], dtype=np.int64)
    q = tier.encoder.static_embed(list(texts)).astype(np.float64)
    q_fold = np.array([fold_of[_words(t)] for t in texts], dtype=np.int64)
    is_oos = np.array([lab == data.oos_label or lab not in pos for lab in labels])
    route_ids, best, lead = held_out_static(rows, row_route, row_fold, q, q_fold, neighbors)
    want = np.array([pos.get(d, -1) if d is not None else -1 for d in transformer_decisions])
    agree = route_ids == want
    # the route-holdout simulation: each in-scope example with its own route's rows hidden
    ins = np.flatnonzero(~is_oos)
    hide = np.array([pos[labels[i]] for i in ins], dtype=np.int64)
    _, sim_best, sim_lead = held_out_static(rows, row_route, row_fold, q[ins], q_fold[ins], neighbors, hide)
    # a simulated query the transformer would route somewhere wrong anyway changes nothing
    keep = np.ones(len(ins), bool) if refused_unseen is None else np.asarray(refused_unseen, bool)
    if len(keep) != len(ins):
        raise InvalidInputError("refused_unseen needs one flag per in-scope example")
    all_best = np.concatenate([best, sim_best[keep]])
    all_lead = np.concatenate([lead, sim_lead[keep]])
    all_agree = np.concatenate([agree, np.zeros(int(keep.sum()), bool)])
    all_oos = np.concatenate([is_oos, np.ones(int(keep.sum()), bool)])
    log.info(
        "cascade gate: %d in-scope examples (static agrees on %.3f), %d out-of-scope, %d of %d unseen-route "
        "queries refused by the transformer (static best of those: 99th pct %.3f, max %.3f)",
        int((~is_oos).sum()),
        float(agree[~is_oos].mean()) if (~is_oos).any() else 0.0,
        int(is_oos.sum()),
        int(keep.sum()),
        len(keep),
        float(np.quantile(sim_best[keep], 0.99)) if keep.any() else 0.0,
        float(sim_best[keep].max()) if keep.any() else 0.0,
    )
    return choose_gate(all_best, all_lead, all_agree, all_oos)


def _words(text: str) -> str:
    """A text's words, lower-cased (what the fold of a text is drawn by)."""
    return " ".join(_WORD.findall(text.lower()))


_WORD = re.compile(r"\w+")


def refused_unseen(router: SemanticRouter, prepared: PreparedFit) -> list[bool]:
    """The route-holdout simulation on the transformer's side: for each in-scope fit example,
    whether the fitted router would refuse it if its own route were not there (its route's
    utterances dropped from the neighbours and the route from the live routes)."""
    data = prepared.data
    train, oos_label = data.train, data.oos_label
    tables, policy = router._tables, router._policy
    live = tables.thresholds
    labels = list(train.labels)
    have = set(tables.id_route.values())
    ins = [i for i, lab in enumerate(labels) if lab != oos_label and lab in have]
    if not ins:
        return []
    E = train.embeddings[ins]
    F = train.features[ins] if train.features is not None else None
    T = [train.texts[i] for i in ins] if train.texts is not None else None
    k = max(router.neighbors, 4)
    scores, ids = router.index.search(E, 2 * k)
    by_route: dict[str, list[int]] = {}
    for j, i in enumerate(ins):
        by_route.setdefault(labels[i], []).append(j)
    out = [False] * len(ins)
    id_route = tables.id_route
    for route, js in by_route.items():
        pairs: list[list[tuple[str, float]]] = []
        for j in js:
            row = [(id_route.get(int(x)), float(sc)) for sc, x in zip(scores[j], ids[j], strict=True)]
            pairs.append([(n, sc) for n, sc in row if n is not None and n != route][:k])
        others = {n: t for n, t in live.items() if n != route}
        sub = QueryBatch(
            E[js], [T[j] for j in js] if T is not None else None, F[js] if F is not None else None
        )
        for j, (_ranked, chosen, _reason) in zip(js, policy.decide(sub, pairs, others, 1), strict=True):
            out[j] = chosen is None
    return out


# --------------------------------------------------------------------------- the router's side
def route_cascade(router: SemanticRouter, tier: StaticTier, texts: list[str], top_k: int) -> list[RouteMatch]:
    """Route cleaned queries: the static tier's confident answers, the transformer for the rest."""
    tables = router._tables
    token = tables.enter()
    try:
        static, rest = tier.split(tables, texts, top_k, router.neighbors)
    finally:
        tables.leave(token)
    if rest:
        sub = [texts[i] for i in rest]
        Q, H = router._embed_queries(sub)
        for i, m in zip(rest, router.decide(Q, top_k=top_k, texts=sub, features=H), strict=True):
            static[i] = replace(m, tier="transformer")
    return [m for m in static if m is not None]


def fit_cascade_gate(
    router: SemanticRouter, tier: StaticTier, prepared: PreparedFit, seed: int
) -> dict[str, float]:
    """Choose the fitted router's gate (:func:`fit_gate`), keep it in the store and use it.

    Returns the settings it reports in :class:`~synaptoroute_agents.fitting.FitSummary`.
    """
    train = prepared.data.train
    decided = router.decide(train.embeddings, texts=train.texts, features=train.features)
    gate = fit_gate(
        tier,
        router._tables,
        prepared,
        [m.name for m in decided],
        seed=seed,
        neighbors=router.neighbors,
        refused_unseen=refused_unseen(router, prepared),
    )
    if gate is None:  # nothing is safe to answer statically: every query goes to the transformer
        gate = Gate(2.0, 2.0, source="fitted")
    with router._write_lock:
        version = router.store.save_fitted(
            GATE_KEY, gate.to_json(), tier.gate_model_id(router.encoder.model_id)
        )
        tier.gate = gate
        router._note_version(version, "fit", None)
    return {"cascade_floor": gate.floor, "cascade_margin": gate.margin}
