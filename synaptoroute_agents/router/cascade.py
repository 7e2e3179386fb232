"""The cascade's static tier inside the router (for encoders with the ``TieredEncoder`` capability).

The tier keeps a second index, of the stored utterances' static embeddings (computed from their
texts at boot and on every change, about 15 microseconds a text in batches; from
:data:`ROWS_MIN` utterances on, a boot keeps them in the store as a cache and the next boot reads
them). Every query the tier is unsure of goes to the transformer and the router's policy, as
without the cascade; so does every query for a route with its own threshold (on the
transformer's scale).

Unfitted, a query's static embedding is searched in that index and ranked by nearest utterance per
route; the tier answers when its best route's static score is at least the gate's ``floor`` and
leads the runner-up by at least its ``margin`` (:data:`DEFAULT_GATE`, measured on public intent
sets, see its comment).

Fitted, ``fit`` also fits a :class:`StaticHead` (softmax on the static embedding and the lexical
terms) and chooses its gate by cross-validation (:func:`fit_head_gate`): the head's probability of
its best route, its lead over the next class and the query's cosine to that route's centroid. The
store keeps both under :data:`GATE_KEY`, so every replica and every boot uses them.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ..encoders.base import TieredEncoder
from ..errors import InvalidInputError
from ..fitting.head import query_logits
from ..fitting.lexicon import Lexicon
from ..fitting.numerics import design_logits, fit_softmax, softmax
from ..index import VectorIndex
from ..routes import Reason, RouteCandidate, RouteMatch
from ..scoring import CosinePolicy, QueryBatch
from .decide import decide
from .tables import IdTables

if TYPE_CHECKING:
    from ..fitting.data import PreparedFit
    from ..store import RouteStore
    from .boot import SnapshotWriter
    from .core import SemanticRouter

__all__ = [
    "DEFAULT_GATE",
    "GATE_KEY",
    "Gate",
    "StaticTier",
    "StaticHead",
    "choose_gate",
    "fit_cascade_gate",
    "fit_head_gate",
    "route_cascade",
]

log = logging.getLogger(__name__)

#: The store key of the fitted gate.
GATE_KEY = "cascade"
#: The store key of the static rows kept for boot (a rebuildable cache, not a change).
ROWS_KEY = "cascade-rows"
#: From this many stored utterances on, a boot keeps and reuses the static rows in the store.
ROWS_MIN = 20_000
_ROWS_MAGIC = b"SRSTATIC"


def pack_rows(ids: np.ndarray, rows: np.ndarray) -> bytes:
    """Static rows by id (sorted by id) as bytes: a magic, the count, ids int64, rows float32."""
    order = np.argsort(ids, kind="stable")
    n = np.array([len(ids)], dtype=np.int64)
    return b"".join(
        (
            _ROWS_MAGIC,
            n.tobytes(),
            np.ascontiguousarray(ids[order], dtype=np.int64).tobytes(),
            np.ascontiguousarray(rows[order], dtype=np.float32).tobytes(),
        )
    )


def unpack_rows(blob: bytes, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted ids, rows) of :func:`pack_rows`.

    Raises:
        InvalidInputError: not a static rows blob of this width.
    """
    if blob[:8] != _ROWS_MAGIC or len(blob) < 16:
        raise InvalidInputError("not a static rows blob")
    n = int(np.frombuffer(blob, dtype=np.int64, count=1, offset=8)[0])
    if len(blob) != 16 + n * 8 + n * dim * 4:
        raise InvalidInputError("the static rows blob has the wrong size")
    ids = np.frombuffer(blob, dtype=np.int64, count=n, offset=16)
    rows = np.frombuffer(blob, dtype=np.float32, count=n * dim, offset=16 + 8 * n).reshape(n, dim)
    return ids, rows


#: The head's reject class (out-of-scope examples), last among its classes.
REJECT = "\x00out_of_scope"


@dataclass(frozen=True)
class StaticHead:
    """A linear head on the static tier (fitted in ``fit``): softmax over the routes (and a reject
    class, last, when the fit had out-of-scope examples) of the static embedding and the lexical
    terms of the query, divided by a temperature chosen on held-out logits."""

    routes: list[str]
    weights: np.ndarray  # (static dim + lexicon dim + 1, k)
    temperature: float
    lexicon: Lexicon | None
    reject: bool
    centroids: np.ndarray  # (routes, static dim): each route's unit mean static row
    scale: float = 1.0

    @cached_property
    def columns(self) -> frozenset[str]:
        """The routes the head knows."""
        return frozenset(self.routes[: self.n_routes])

    @property
    def n_routes(self) -> int:
        """How many of the head's classes are routes (the reject class, if any, comes after them)."""
        return len(self.routes) - int(self.reject)

    def probs(self, S: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities ``(b, k)`` of static rows ``S`` with their texts."""
        F = self.lexicon.transform(texts) if self.lexicon is not None else None
        Z = query_logits(S, F, self.weights, self.scale, "the static head")
        return softmax(Z / self.temperature)


@dataclass(frozen=True)
class Gate:
    """When the static tier answers.

    Without a head (an unfitted router): the best route's static score (nearest utterance) >=
    ``floor`` and its lead over another route >= ``margin``. With a head (fitted): the head's
    calibrated probability of its best route >= ``floor``, its lead over the next class (the reject
    class too) >= ``margin``, and the best class is a route.
    """

    floor: float
    margin: float
    source: str = "default"
    head: StaticHead | None = field(default=None, compare=False)
    in_scope: float = -1.0  # with a head: the least cosine of the query to its route's centroid

    def to_bytes(self) -> bytes:
        """The stored form: JSON without a head, an ``.npz`` with a JSON header with one (no pickle)."""
        header: dict[str, Any] = {"floor": self.floor, "margin": self.margin, "source": self.source}
        if self.in_scope != -1.0:
            header["in_scope"] = self.in_scope
        h = self.head
        if h is None:
            return json.dumps(header).encode()
        header.update(
            format=_HEAD_FORMAT,
            routes=h.routes,
            temperature=h.temperature,
            reject=h.reject,
            scale=h.scale,
        )
        arrays: dict[str, np.ndarray] = {"weights": h.weights, "centroids": h.centroids}
        if h.lexicon is not None:
            lex_header, lex_arrays = h.lexicon.to_state()
            header["lexicon"] = lex_header
            arrays.update(lex_arrays)
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as ArrayLike | bool
        return buf.getvalue()

    @staticmethod
    def from_bytes(blob: bytes) -> Gate:
        """Read :meth:`to_bytes` (a JSON gate of an earlier version too)."""
        if blob[:1] == b"{":
            d = json.loads(blob.decode())
            return Gate(float(d["floor"]), float(d["margin"]), str(d.get("source", "fitted")))
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            d = json.loads(bytes(z["header"]).decode())
            if d.get("format") != _HEAD_FORMAT:
                raise InvalidInputError("the stored cascade gate has an unknown format")
            lexicon = (
                Lexicon.from_state(d["lexicon"], {n: np.array(z[n]) for n in z.files})
                if "lexicon" in d
                else None
            )
            head = StaticHead(
                list(d["routes"]),
                np.array(z["weights"], dtype=np.float32),
                float(d["temperature"]),
                lexicon,
                bool(d["reject"]),
                np.array(z["centroids"], dtype=np.float32),
                float(d.get("scale", 1.0)),
            )
        return Gate(
            float(d["floor"]),
            float(d["margin"]),
            str(d.get("source", "fitted")),
            head,
            float(d.get("in_scope", -1.0)),
        )


_HEAD_FORMAT = "synaptoroute-static-head-1"


#: The gate of an unfitted router, measured on the train/validation splits of CLINC150 (with its
#: out-of-scope queries), Banking77 and HWU64 with the cosine policy (train stored, validation as
#: queries; Banking77 keeps a seeded 20% of train as queries; test never read): of the gates on a
#: 0.01 grid that cost at most 0.3 points of accuracy against the transformer-only decision on each
#: set (:data:`ACCURACY_BUDGET`) and let none of CLINC150's out-of-scope queries through, the one
#: answering the most queries statically (Banking77 42%, CLINC150 40%, HWU64 41%)
#: (``uv run --group bench python -m benchmarks.cascade --calibrate``).
DEFAULT_GATE = Gate(floor=0.87, margin=0.07, source="default")


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
        #: static rows the last boot read from the store instead of computing them
        self.rows_reused = 0
        self._writer: SnapshotWriter | None = None

    # -- the static index follows the router's index (the caller holds the write lock)
    def load(
        self, ids: np.ndarray, texts: Sequence[str], store: RouteStore | None = None, version: int = 0
    ) -> None:
        """Make the static index hold ``texts`` under ``ids`` (the router's whole content).

        With a ``store`` of at least :data:`ROWS_MIN` utterances, the static rows it keeps (a
        cache under :data:`ROWS_KEY`, written in the background after a boot that had to compute
        many) are reused and only the others computed from their texts.
        """
        ids = np.asarray(ids, dtype=np.int64)
        n = len(ids)
        if store is None or n < ROWS_MIN:
            self.index.load(ids, self.encoder.static_embed(list(texts)))
            self.rows_reused = 0
            return
        rows, found = self._stored_rows(store, ids)
        todo = np.flatnonzero(~found)
        if len(todo):
            rows[todo] = self.encoder.static_embed([texts[i] for i in todo.tolist()])
        self.rows_reused = n - len(todo)
        self.index.load(ids, rows)
        if len(todo) >= max(ROWS_MIN // 20, n // 100, 1):  # enough new rows to be worth a write
            from .boot import SnapshotWriter

            blob = pack_rows(ids, rows)
            static_id = self.encoder.static_id
            writer = self._writer = SnapshotWriter(store)
            writer.start(lambda: store.save_cache_blob(ROWS_KEY, blob, static_id, version))

    def _stored_rows(self, store: RouteStore, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows for ``ids`` from the store's cache (zero where it has none) and which it had."""
        rows = np.zeros((len(ids), self.index.dim), np.float32)
        found = np.zeros(len(ids), bool)
        try:
            saved = store.load_fitted(ROWS_KEY)
            if saved is None or saved[1] != self.encoder.static_id:
                return rows, found
            sids, srows = unpack_rows(saved[0], self.index.dim)
        except Exception as exc:  # a damaged cache: computed from the texts instead
            log.warning("the stored static rows cannot be read (%s); computing them", exc)
            return rows, found
        if len(sids):
            pos = np.minimum(np.searchsorted(sids, ids), len(sids) - 1)
            found = sids[pos] == ids
            rows[found] = srows[pos[found]]
        return rows, found

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the stored rows being written, if any."""
        if self._writer is not None:
            self._writer.wait(timeout)

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
                gate = Gate.from_bytes(blob)
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
        if gate.head is not None:
            out = self._head_answers(gate, gate.head, tables.thresholds, S, texts, top_k)
        else:
            out = self._neighbour_answers(gate, tables, S, top_k, neighbors)
        rest = [i for i, m in enumerate(out) if m is None]
        self.answered["static"] += len(texts) - len(rest)
        self.answered["transformer"] += len(rest)
        return out, rest

    def _head_answers(
        self,
        gate: Gate,
        head: StaticHead,
        live: Mapping[str, float | None],
        S: np.ndarray,
        texts: Sequence[str],
        top_k: int,
    ) -> list[RouteMatch | None]:
        """The fitted head's confident answers. A route the head does not know (added after the
        fit) could be the right one: until the next fit every query goes to the transformer, and
        so do multi-route queries (``top_k`` > 1) and routes with their own threshold."""
        out: list[RouteMatch | None] = [None] * len(S)
        if top_k != 1 or any(n not in head.columns for n in live):
            return out
        P = head.probs(S, texts)
        n_routes = head.n_routes
        dead = [c for c, n in enumerate(head.routes[:n_routes]) if n not in live]
        if dead:  # routes deleted since the fit: never answered, their mass shared by the rest
            P[:, dead] = 0.0
            P /= np.maximum(P.sum(axis=1, keepdims=True), 1e-12)
        k = P.shape[1]
        top2 = np.argpartition(-P, 1, axis=1)[:, :2] if k > 1 else np.zeros((len(P), 2), np.int64)
        p = np.take_along_axis(P, top2, axis=1)
        swap = p[:, 1] > p[:, 0]
        c1 = np.where(swap, top2[:, 1], top2[:, 0])
        p1, p2 = p.max(axis=1), p.min(axis=1) if k > 1 else np.zeros(len(P))
        ok = (c1 < n_routes) & (p1 >= gate.floor) & (p1 - p2 >= gate.margin)
        if ok.any():  # the tier's own in-scope score: the cosine to the route's centroid
            rows = np.flatnonzero(ok)
            cos = np.einsum("ij,ij->i", S[rows], head.centroids[c1[rows]])
            ok[rows[cos < gate.in_scope]] = False
        for i in np.flatnonzero(ok).tolist():
            name = head.routes[int(c1[i])]
            if live.get(name) is not None:  # its own threshold is on the transformer's scale
                continue
            row = P[i, :n_routes]
            order = np.argsort(-row)[:5]
            cands = tuple(RouteCandidate(head.routes[c], float(row[c])) for c in order.tolist())
            out[i] = RouteMatch(
                name, float(p1[i]), float(p1[i] - p2[i]), cands, Reason.MATCHED, (), (name,), "static"
            )
        return out

    def _neighbour_answers(
        self, gate: Gate, tables: IdTables, S: np.ndarray, top_k: int, neighbors: int
    ) -> list[RouteMatch | None]:
        """The nearest-utterance gate's confident answers (an unfitted router)."""
        out: list[RouteMatch | None] = [None] * len(S)
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
        return out


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


# --------------------------------------------------------------------------- fitting the head and its gate
#: The accuracy the fitted gate may cost against the transformer-only decision, estimated by
#: cross-validation inside ``fit`` (a share of the in-scope fit examples: 0.003 is 0.3 points).
ACCURACY_BUDGET = 0.003
#: The share of simulated unseen-route queries the transformer would refuse that the fitted gate
#: may answer statically (0.003: 0.3 points of their refusals; real out-of-scope examples: none).
UNSEEN_BUDGET = 0.003
#: The static head's regularization path (strong to weak, warm-started; cross-validation picks one).
HEAD_LAMBDAS = (3e-5, 1e-5, 3e-6)
HEAD_FOLDS = 4
#: Groups of routes hidden in turn to simulate unseen routes (a head refitted without each group).
HEAD_ROUTE_GROUPS = 5
_LEX_PARAMS = 3_000_000  # at most about this many lexical weights (terms x classes)


def choose_gate(
    p1: np.ndarray,
    lead: np.ndarray,
    eligible: np.ndarray,
    cos: np.ndarray,
    loss: np.ndarray,
    forbidden: np.ndarray,
    budget: float = ACCURACY_BUDGET,
    simulated: np.ndarray | None = None,
    unseen_budget: float = UNSEEN_BUDGET,
) -> Gate | None:
    """The gate (floors on ``p1`` and ``cos``, a margin on ``lead``) that answers the most in-scope
    rows, or None.

    Args:
        p1: each held-out row's best static score (the head's probability).
        lead: its lead over the next class.
        eligible: rows whose best static class is a route (others never pass).
        cos: the static tier's in-scope score of the row (the cosine to its route's centroid).
        loss: per in-scope row, what answering it statically costs against the transformer-only
            decision: 1 when the static route is wrong and the transformer's right, -1 the other
            way round, else 0 (ignored on the other rows).
        forbidden: real out-of-scope rows: none may pass.
        budget: the most total loss, as a share of the in-scope rows.
        simulated: simulated unseen-route rows the transformer would refuse (None: none).
        unseen_budget: the share of them that may pass.
    """
    p1, lead, cos = (np.asarray(a, np.float64) for a in (p1, lead, cos))
    eligible, forbidden = np.asarray(eligible, bool), np.asarray(forbidden, bool)
    sim = np.zeros(len(p1), bool) if simulated is None else np.asarray(simulated, bool)
    loss = np.asarray(loss, np.float64)
    ins = ~forbidden & ~sim
    n_in = int(ins.sum())
    cand = ins & eligible
    if n_in == 0 or not cand.any():
        return None
    qs = np.linspace(0.0, 1.0, 41)
    floors = np.unique(np.quantile(p1[cand], qs))
    margins = np.unique(np.concatenate(([0.0], np.quantile(lead[cand], qs))))
    cos_steps = np.quantile(cos[cand], qs)
    allowed = budget * n_in
    allowed_sim = int(unseen_budget * sim.sum())
    found: tuple[float, float, float, float] | None = None  # (share, floor, margin, cos floor)
    for f in floors:
        over = eligible & (p1 >= f)
        if not over[ins].any():
            continue
        for m in margins:
            passes = over & (lead >= m)
            # the lowest cosine floor that keeps every real out-of-scope row out and lets at most
            # ``allowed_sim`` simulated ones through, then higher ones
            hard = cos[passes & forbidden]
            soft = np.sort(cos[passes & sim])[::-1]
            c0 = float(np.nextafter(hard.max(), np.inf)) if len(hard) else -1.0
            if len(soft) > allowed_sim:
                c0 = max(c0, float(np.nextafter(soft[allowed_sim], np.inf)))
            for c in [c0, *cos_steps[cos_steps > c0].tolist()]:
                ok = passes & (cos >= c) & ins
                if float(loss[ok].sum()) <= allowed:
                    share = ok.sum() / n_in
                    if share > 0 and (found is None or share > found[0]):
                        found = (float(share), float(f), float(m), float(c))
                    break
    if found is None:
        return None
    return Gate(found[1], found[2], source="fitted", in_scope=found[3])


def _centroids(X: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Unit mean static row of each of the ``n`` routes (a zero row for a route without rows)."""
    C = np.zeros((n, X.shape[1]), np.float64)
    ok = y < n
    np.add.at(C, y[ok], X[ok])
    norms = np.linalg.norm(C, axis=1, keepdims=True)
    out: np.ndarray = np.divide(C, norms, out=np.zeros_like(C), where=norms > 0)
    return out


def _top2(P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best class, its probability and its lead over the next class, per row."""
    order = np.argsort(-P, axis=1)[:, :2]
    p = np.take_along_axis(P, order, axis=1)
    return order[:, 0], p[:, 0], p[:, 0] - (p[:, 1] if P.shape[1] > 1 else 0.0)


def fit_head_gate(
    tier: StaticTier,
    routes: Sequence[str],
    prepared: PreparedFit,
    transformer_decisions: Sequence[str | None],
    seed: int = 0,
    refused_unseen: Sequence[bool] | None = None,
    budget: float = ACCURACY_BUDGET,
    unseen_budget: float = UNSEEN_BUDGET,
) -> Gate | None:
    """Fit the static head and choose its gate by cross-validation on the fit examples.

    The head: softmax regression on the static rows and the lexical terms of the fit examples (a
    reject class when there are out-of-scope examples), its regularization picked by held-out
    accuracy and its temperature by held-out log-loss. Folds are drawn by a text's words (case and
    punctuation aside), so an example never finds a near copy of itself.

    The gate, from the held-out probabilities: the one answering the most in-scope examples while
    the accuracy it costs against the transformer-only decision (the fitted router's decisions on
    the fit examples, ``transformer_decisions``) stays within ``budget``, none of the fit's
    out-of-scope examples passes, and at most ``unseen_budget`` of the route-holdout queries the
    transformer would refuse (``refused_unseen``: one flag per in-scope example, in order; None:
    all): the in-scope examples of a group of routes, scored by a head refitted without them.
    The gate's third part, the tier's own in-scope score, is the cosine of the query's static row
    to its route's centroid.
    """
    data = prepared.data
    texts = data.train.texts
    if texts is None or len(texts) != len(transformer_decisions):
        raise InvalidInputError("the cascade gate needs the fit examples' texts")
    labels = list(data.train.labels)
    live = set(routes)
    known = sorted({lab for lab in labels if lab in live})
    if len(known) < 2:
        return None
    is_oos = np.array([lab not in live for lab in labels])
    reject = bool(is_oos.any())
    k = len(known) + int(reject)
    col = {n: i for i, n in enumerate(known)}
    y = np.array([col.get(lab, len(known)) for lab in labels], dtype=np.int64)
    X = tier.encoder.static_embed(list(texts))
    lexicon = Lexicon.fit(list(texts), max_terms=max(1000, _LEX_PARAMS // (2 * k)))
    F = lexicon.transform(list(texts))
    rng = np.random.default_rng(seed)
    fold_of = {t: int(rng.integers(HEAD_FOLDS)) for t in dict.fromkeys(_words(x) for x in texts)}
    fold = np.array([fold_of[_words(t)] for t in texts], dtype=np.int64)
    Z = {lam: np.zeros((len(texts), k)) for lam in HEAD_LAMBDAS}
    fold_cent: dict[int, np.ndarray] = {}
    for f in range(HEAD_FOLDS):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        if not len(te) or len(np.unique(y[tr])) < 2:
            continue
        fold_cent[f] = _centroids(X[tr], y[tr], len(known))
        W = None
        for lam in HEAD_LAMBDAS:
            W = fit_softmax(X[tr], y[tr], k, lam, init=W, maxiter=100, F=F[tr])
            Z[lam][te] = design_logits(X[te], F[te], W, 1.0)
    lam = max(HEAD_LAMBDAS, key=lambda la: float((Z[la].argmax(axis=1) == y).mean()))
    temps = np.exp(np.linspace(np.log(0.05), np.log(5.0), 60))
    nll = [float(-np.log(np.maximum(softmax(Z[lam] / t)[np.arange(len(y)), y], 1e-12)).mean()) for t in temps]
    temp = float(temps[int(np.argmin(nll))])
    P = softmax(Z[lam] / temp)
    c1, p1, lead = _top2(P)
    eligible = c1 < len(known)
    # the static tier's own in-scope score: the cosine to its route's centroid (out of fold)
    cos = np.full(len(y), -1.0)
    for f, C in fold_cent.items():
        rows = np.flatnonzero((fold == f) & eligible)
        cos[rows] = np.einsum("ij,ij->i", X[rows], C[c1[rows]])
    cent = _centroids(X, y, len(known))
    want = np.array([col.get(d, -1) if d is not None else -1 for d in transformer_decisions])
    static_right, trans_right = c1 == y, want == y
    loss = np.where(
        is_oos, 0.0, static_right.astype(float) * -1.0 * (~trans_right) + (~static_right) * trans_right
    )
    # the route-holdout simulation: heads refitted without a group of routes score those routes'
    # examples, which then stand for queries of a route the router does not have
    ins = np.flatnonzero(~is_oos)
    keep = np.ones(len(ins), bool) if refused_unseen is None else np.asarray(refused_unseen, bool)
    if len(keep) != len(ins):
        raise InvalidInputError("refused_unseen needs one flag per in-scope example")
    refused = np.zeros(len(y), bool)
    refused[ins[keep]] = True
    group = rng.permutation(len(known)) % HEAD_ROUTE_GROUPS
    path = HEAD_LAMBDAS[: HEAD_LAMBDAS.index(lam) + 1]
    sim_rows: list[np.ndarray] = []
    sim: list[tuple[np.ndarray, ...]] = []
    for g in range(HEAD_ROUTE_GROUPS):
        hidden = np.flatnonzero(group == g)
        rest = np.setdiff1d(np.arange(k), hidden)
        if len(rest) < 2 or not len(hidden):
            continue
        remap = np.full(k, -1, dtype=np.int64)
        remap[rest] = np.arange(len(rest))
        tr = np.flatnonzero(remap[y] >= 0)
        te = np.flatnonzero((remap[y] < 0) & refused)
        if not len(te):
            continue
        W = None
        for la in path:
            W = fit_softmax(X[tr], remap[y[tr]], len(rest), la, init=W, maxiter=100, F=F[tr])
        assert W is not None
        c, pp, ld = _top2(softmax(design_logits(X[te], F[te], W, 1.0) / temp))
        route = rest[c]
        ok = route < len(known)
        C = _centroids(X[tr], y[tr], len(known))
        cc = np.where(ok, np.einsum("ij,ij->i", X[te], C[np.minimum(route, len(known) - 1)]), -1.0)
        sim_rows.append(te)
        sim.append((ok, pp, ld, cc))
    sim_ok = np.concatenate([e[0] for e in sim]) if sim else np.zeros(0, bool)
    sp1 = np.concatenate([e[1] for e in sim]) if sim else np.zeros(0)
    slead = np.concatenate([e[2] for e in sim]) if sim else np.zeros(0)
    scos = np.concatenate([e[3] for e in sim]) if sim else np.zeros(0)
    n_sim = len(sp1)
    log.info(
        "cascade head: %d in-scope examples (held-out accuracy %.3f, lambda %g, temperature %.2f), "
        "%d out-of-scope, %d of %d unseen-route queries refused by the transformer",
        int((~is_oos).sum()),
        float(static_right[~is_oos].mean()),
        lam,
        temp,
        int(is_oos.sum()),
        n_sim,
        len(keep),
    )
    if n_sim:
        log.info(
            "cascade head: unseen-route simulation, best probability 99th pct %.3f, centroid cosine "
            "99th pct %.3f (in-scope median %.3f)",
            float(np.quantile(sp1[sim_ok], 0.99)) if sim_ok.any() else 0.0,
            float(np.quantile(scos[sim_ok], 0.99)) if sim_ok.any() else 0.0,
            float(np.median(cos[eligible])) if eligible.any() else 0.0,
        )
    gate = choose_gate(
        np.concatenate([p1, sp1]),
        np.concatenate([lead, slead]),
        np.concatenate([eligible, sim_ok]),
        np.concatenate([cos, scos]),
        np.concatenate([loss, np.zeros(n_sim)]),
        np.concatenate([is_oos, np.zeros(n_sim, bool)]),
        budget,
        np.concatenate([np.zeros(len(y), bool), np.ones(n_sim, bool)]),
        unseen_budget,
    )
    if gate is None:
        return None
    W = None
    for la in path:
        W = fit_softmax(X, y, k, la, init=W, maxiter=100, F=F)
    assert W is not None
    head = StaticHead(known + ([REJECT] if reject else []), W, temp, lexicon, reject, cent.astype(np.float32))
    return replace(gate, head=head)


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
    """Fit the static head and its gate (:func:`fit_head_gate`), keep them in the store and use them.

    Returns the settings it reports in :class:`~synaptoroute_agents.fitting.FitSummary`.
    """
    train = prepared.data.train
    decided = router.decide(train.embeddings, texts=train.texts, features=train.features)
    gate = fit_head_gate(
        tier,
        sorted(router._tables.thresholds),
        prepared,
        [m.name for m in decided],
        seed=seed,
        refused_unseen=refused_unseen(router, prepared),
    )
    if gate is None:  # nothing is safe to answer statically: every query goes to the transformer
        gate = Gate(2.0, 2.0, source="fitted")
    with router._write_lock:
        version = router.store.save_fitted(
            GATE_KEY, gate.to_bytes(), tier.gate_model_id(router.encoder.model_id)
        )
        tier.gate = gate
        router._note_version(version, "fit", None)
    return {"cascade_floor": gate.floor, "cascade_margin": gate.margin}
