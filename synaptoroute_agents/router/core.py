"""SemanticRouter: the one object users hold. Composes encoder, index, store and scoring policy.

The surface lives here: the constructor, the mutations, fit, and the public reads and queries.
The steps behind it have their own modules: :mod:`.tables` (id tables, epoch readers),
:mod:`.boot` (boot, snapshots, the saved index, catching up on the change log) and
:mod:`.decide` (RouteMatch decisions from index hits and the policy).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..encoders.base import (
    Encoder,
    TieredEncoder,
    as_unit_rows,
    embed_in_batches,
    embed_with_features_in_batches,
    head_features_of,
)
from ..errors import (
    InvalidInputError,
    InvalidTypeError,
    RouteNotFoundError,
    RouterClosedError,
)
from ..fitting.data import FitSummary, labelled
from ..index import IndexKind, VectorIndex
from ..routes import Route, RouteMatch, clean_text, validate_route_name, validate_threshold
from ..scoring import DEFAULT_KIND, CosinePolicy, QueryBatch, ScoringPolicy
from ..store import RouteStore
from . import boot, mutations
from .boot import POLICY_KEY
from .cascade import GATE_KEY, StaticTier
from .decide import check_features, check_top_k, decide
from .tables import IdTables

if TYPE_CHECKING:
    from ..batching import BatchingConfig, MicroBatcher
    from ..clauses import ClauseMatch
    from ..evaluation import EvalReport

__all__ = ["Listener", "SemanticRouter"]

log = logging.getLogger(__name__)

#: A mutation listener: (change version, operation, route name or None).
Listener = Callable[[int, str, "str | None"], None]


class SemanticRouter:
    """A local semantic router: routes, an index of their utterances, and decisions.

    Args:
        encoder: any :class:`~synaptoroute_agents.Encoder`, or a registered name (``"bundled"``,
            ``"bundled-int8"``, ``"fastembed:<model>"``, ``"remote:<model>@<url>"``; see
            :func:`~synaptoroute_agents.resolve_encoder`); None loads the bundled offline model.
        store: None (in memory), a SQLite file path, a SQLAlchemy URL, or a :class:`RouteStore`.
        threshold: default minimum score for a match (a route's own threshold wins).
        ambiguity_margin: abstain as ``ambiguous`` when the best two routes are closer than this.
        index: ``"flat"`` (exact, default), ``"hnsw"`` or ``"ivf"`` (approximate, for millions).
        index_options: extra keyword arguments for :class:`VectorIndex`.
        neighbors: how many nearest utterances a decision looks at.
        on_encoder_mismatch: ``"reembed"`` (default) re-embeds a store made by another encoder;
            ``"error"`` raises :class:`EncoderMismatchError` instead.
        origin: this replica's id in the store's change log.
        batching: how :meth:`aroute` serves concurrent queries: ``"latency"`` (default: each query
            on its own), ``"throughput"`` (micro-batches) or a :class:`BatchingConfig`.
        snapshot: the store's packed boot snapshot. ``"auto"`` (default) boots from it when it
            fits this encoder and keeps it up to date in the background for stores of
            :data:`SNAPSHOT_MIN_VECTORS` utterances and more; ``"read"`` boots from it but never
            writes one; ``"off"`` always reads the utterance rows. See :meth:`save_snapshot`.
    """

    def __init__(
        self,
        encoder: Encoder | str | None = None,
        store: str | os.PathLike[str] | RouteStore | None = None,
        *,
        threshold: float = 0.5,
        ambiguity_margin: float = 0.0,
        index: IndexKind = "flat",
        index_options: Mapping[str, Any] | None = None,
        neighbors: int = 32,
        on_encoder_mismatch: Literal["reembed", "error"] = "reembed",
        origin: str | None = None,
        batching: str | BatchingConfig | None = None,
        snapshot: Literal["auto", "read", "off"] = "auto",
    ) -> None:
        from ..batching import resolve_batching

        if snapshot not in ("auto", "read", "off"):
            raise InvalidInputError("snapshot must be 'auto', 'read' or 'off'")
        self._snapshot_mode = snapshot
        #: How the last boot went: ``source`` ("snapshot" or "rows"), the versions, how many
        #: change-log entries were applied after the snapshot, and the seconds it took.
        self.boot_info: dict[str, Any] = {}

        self.batching = resolve_batching(batching)
        self._batcher: MicroBatcher | None = None
        self._batcher_lock = threading.Lock()
        threshold_value = validate_threshold(threshold, what="threshold")
        assert threshold_value is not None
        if not isinstance(ambiguity_margin, int | float) or not 0.0 <= float(ambiguity_margin) <= 2.0:
            raise InvalidInputError("ambiguity_margin must be a number in [0, 2]")
        if on_encoder_mismatch not in ("reembed", "error"):
            raise InvalidInputError("on_encoder_mismatch must be 'reembed' or 'error'")
        from ..encoders.registry import resolve_encoder

        encoder = resolve_encoder(encoder)  # a name, an Encoder or None; anything else: InvalidTypeError
        self.encoder: Encoder = encoder
        self.neighbors = max(1, int(neighbors))
        self.cosine_policy = CosinePolicy(threshold_value, float(ambiguity_margin))
        self._policy: ScoringPolicy = self.cosine_policy
        self._closed = False
        self._write_lock = threading.RLock()
        self.store = store if isinstance(store, RouteStore) else RouteStore(store, origin=origin)
        self._owns_store = not isinstance(store, RouteStore)
        self.index = VectorIndex(encoder.dim, kind=index, **dict(index_options or {}))
        #: the cascade's static tier, for encoders that have one (``encoder="cascade"``)
        self._cascade: StaticTier | None = StaticTier(encoder) if isinstance(encoder, TieredEncoder) else None
        # Readers never take a lock; see IdTables for how removed ids stay resolvable.
        self._tables = IdTables()
        self._snapshots = boot.SnapshotWriter(self.store)
        self._saved_index = boot.SavedIndex(self.store, self.index, encoder.model_id)
        self._seen_version = 0
        self._listeners: list[Listener] = []
        # >= 0 while a boot catches up after a snapshot: counts routes with another encoder's rows
        self._stale_reloads = -1
        boot.boot(self, on_encoder_mismatch)

    def save_snapshot(self) -> bool:
        """Write the store's packed boot snapshot now (it replaces the previous one).

        A boot then reads every vector, text and route from a few large rows and applies only
        the changes committed after it, instead of reading one row per utterance. The snapshot
        is read from the store (the truth) in one consistent read and written in one
        transaction; queries are never blocked. With ``snapshot="auto"`` a router does this by
        itself for large stores. Returns False when nothing was written (an equally recent
        snapshot exists, or stored embeddings are another encoder's).
        """
        self._check_open()
        return boot.save_snapshot_from_store(self)

    def wait_snapshot(self, timeout: float | None = None) -> None:
        """Wait for a boot snapshot being written in the background (for tests and benchmarks)."""
        self._snapshots.wait(timeout)

    def save_index(self) -> bool:
        """Keep the built approximate index (hnsw/ivf) in the store so the next boot skips the build.

        Building HNSW over hundreds of thousands of vectors takes a while (about 30 s for 250,000
        on 2 cores); loading it takes a fraction of a second. An HNSW copy holds the graph and
        the ids, not the vectors: a boot takes those from the store's snapshot. So with
        ``snapshot="auto"`` this also writes the snapshot, as new as the copy. The copy is a
        cache: a later boot brings it up to date with the store (removed and added utterances)
        and rebuilds when it does not fit or is newer than the snapshot it boots from. Returns
        False for the flat index (nothing to save) or an empty router.
        """
        return boot.save_index(self)

    # ------------------------------------------------------------------ helpers
    def _check_open(self) -> None:
        if self._closed:
            raise RouterClosedError("the router is closed")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed already-cleaned texts with the router's encoder (batched, unit rows)."""
        if len(texts) == 1:  # a routed query: what embed_in_batches does for one text, directly
            return as_unit_rows(self.encoder.embed(list(texts)), 1, self.encoder.dim)
        return embed_in_batches(self.encoder, list(texts))

    def _head_features(self) -> str | None:
        """The head features the fitted policy reads, when this router's encoder provides them."""
        want = self._policy.features
        return want if want is not None and head_features_of(self.encoder) == want else None

    def _embed_queries(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """Embeddings of cleaned queries, with the head features when the fitted head reads them."""
        if self._head_features() is not None:
            return embed_with_features_in_batches(self.encoder, list(texts))
        return self.embed(texts), None

    @staticmethod
    def _as_route(route: Any) -> Route:
        """``route`` when it is a :class:`Route`; anything else (a dict included) is an
        :class:`InvalidTypeError`: ``Route.from_dict(d)`` turns a mapping into a route."""
        if isinstance(route, Route):
            return route
        hint = "; use Route.from_dict() for a mapping" if isinstance(route, Mapping) else ""
        raise InvalidTypeError(f"expected a Route, not {type(route).__name__}{hint}")

    def _apply(
        self, name: str, removed: Iterable[int], added: Sequence[int], texts: Sequence[str], vecs: np.ndarray
    ) -> None:
        """Mirror a committed change in memory (caller holds the write lock).

        The index publishes removals and additions as one snapshot, so a query sees a route either
        before or after the change, never half-way.
        """
        known = self._tables.known(removed)
        self._tables.add_ids(name, added, texts)
        self.index.apply(known, np.asarray(added, dtype=np.int64), vecs)
        if self._cascade is not None:
            self._cascade.apply(known, added, texts)
        self._tables.retire(name, known)

    def _note_version(self, version: int, op: str, name: str | None) -> None:
        if version == self._seen_version + 1:
            self._seen_version = version
        for listener in list(self._listeners):
            try:
                listener(version, op, name)
            except Exception:  # a listener never undoes an acknowledged mutation
                log.exception("mutation listener %r failed", listener)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(version, op, route)`` after each committed mutation made through this router.

        Listeners run in the writer's thread right after the commit; keep them quick. Returns a
        function that unsubscribes.
        """
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    # ------------------------------------------------------------------ mutations
    def add(self, route: Route, *, replace: bool = False) -> None:
        """Add a new route.

        Raises :class:`DuplicateRouteError` when the name exists, unless ``replace=True``, which
        replaces it (as :meth:`upsert`): set-up code that runs again on the same store then works.
        """
        mutations.add(self, route, replace=replace)

    def upsert(self, route: Route) -> bool:
        """Add the route, or replace the one of the same name. Returns True when it was created.

        Safe against another process adding or deleting the same name at the same moment: the
        store decides, and a lost race is retried a few times before a :class:`StoreError`.
        """
        return mutations.upsert(self, route)

    def add_many(self, routes: Iterable[Route], *, replace: bool = False) -> None:
        """Add many new routes with one encoder pass and one transaction (all or nothing).

        With ``replace=True`` routes whose name exists are replaced (one transaction each, as
        :meth:`update`) and the new ones are added together as above.
        """
        mutations.add_many(self, routes, replace=replace)

    def update(self, route: Route) -> None:
        """Replace an existing route (fields and utterances). Unchanged utterances keep their embeddings."""
        mutations.update(self, route)

    def delete(self, name: str) -> None:
        """Delete a route. Raises :class:`RouteNotFoundError` when it does not exist."""
        mutations.delete(self, name)

    def add_utterances(self, name: str, texts: Iterable[str]) -> int:
        """Teach a route more examples. Returns how many were new."""
        return mutations.add_utterances(self, name, texts)

    def remove_utterances(self, name: str, texts: Iterable[str]) -> int:
        """Remove examples from a route (it keeps at least one). Returns how many were removed."""
        return mutations.remove_utterances(self, name, texts)

    # ------------------------------------------------------------------ learning
    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        out_of_scope_label: str | None = None,
        validation: tuple[Sequence[str], Sequence[str]] | None = None,
        create_routes: bool = False,
        seed: int = 0,
        name_examples: bool = True,
        refusal_budget: float = 0.01,
        refusal: str | float = "balanced",
        policy: str = DEFAULT_KIND,
        options: Mapping[str, Any] | None = None,
    ) -> FitSummary:
        """Learn thresholds, the abstain policy and a scoring head from labelled examples.

        Every setting is chosen inside ``fit`` by cross-validation on ``texts`` (or on
        ``validation`` when given); nothing is tuned by hand. Examples labelled
        ``out_of_scope_label`` teach the router what to refuse. The fitted state is saved in the
        store, so a restart does not fit again. Routes added later take part at once (scored by
        calibrated similarity until the next ``fit``); deleted routes are never returned.

        Args:
            texts: example queries.
            labels: the route of each example, or ``out_of_scope_label``.
            out_of_scope_label: the label of examples the router must refuse.
            validation: optional held-out ``(texts, labels)`` used to choose settings.
            create_routes: add a route (with these texts as utterances) for each label the
                router does not have yet; otherwise unknown labels are an error.
            seed: random seed of the cross-validation splits.
            name_examples: also learn from each route's name (``card_arrival`` reads "card
                arrival") and description as one more example of it: worth about half a point
                of accuracy with ten examples per route, nothing measurable with hundreds.
            refusal_budget: with out-of-scope examples, the share of in-scope held-out queries
                (beyond those the head gets wrong anyway) the fitted threshold may refuse to
                catch more out-of-scope ones. Lower keeps more in-scope answers, higher sends
                more doubtful queries to the abstention branch.
            refusal: without (enough) out-of-scope examples, the operating point of the
                refusal: the share of the queries it would route correctly that it may refuse:
                ``"permissive"`` (about 0.5%), ``"balanced"`` (2%), ``"cautious"`` (5%) or a share
                in [0, 0.5] (misrouted queries may be refused on top). Which score
                decides and its threshold are chosen by simulating unseen routes (docs/fitting.md).
                Labels that are not valid route names (``card_payment?``) become valid ones
                with ``create_routes``; :attr:`FitSummary.route_names` lists them.
            policy: the registered kind of policy to fit (see
                :func:`~synaptoroute_agents.scoring.register_policy`); ``"fitted"`` is the
                built-in head.
            options: settings for a fitter other than the built-in one
                (:attr:`~synaptoroute_agents.fitting.FitData.options`).

        Returns:
            A :class:`FitSummary` (timings and what was chosen).
        """
        from ..fitting import prepare_fit
        from ..scoring import dump_policy, policy_fitter

        self._check_open()
        t_all = time.perf_counter()
        fitter = policy_fitter(policy)
        features = head_features_of(self.encoder)

        def embed(batch: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
            # the head reads the encoder's head features when it has them (one pass for both)
            if features is not None:
                return embed_with_features_in_batches(self.encoder, list(batch))
            return self.embed(batch), None

        prepared = prepare_fit(
            texts,
            labels,
            routes=self._tables.routes,
            embed=embed,
            features=features,
            out_of_scope_label=out_of_scope_label,
            validation=validation,
            create_routes=create_routes,
            with_name_examples=name_examples,
            seed=seed,
            refusal_budget=refusal_budget,
            refusal=refusal,
            options=options,
        )
        if prepared.new_routes:
            mutations.add_embedded(self, prepared.new_routes, prepared.new_route_vectors)
        t0 = time.perf_counter()
        fitted = fitter(prepared.data)
        fit_seconds = time.perf_counter() - t0
        with self._write_lock:
            version = self.store.save_fitted(POLICY_KEY, dump_policy(fitted), self.encoder.model_id)
            self._policy = fitted
            self._note_version(version, "fit", None)
        settings = dict(fitted.settings)
        if self._cascade is not None:
            from .cascade import fit_cascade_gate

            settings.update(fit_cascade_gate(self, self._cascade, prepared, seed))
        return FitSummary(
            n_examples=prepared.n_examples,
            n_routes=prepared.n_routes,
            n_out_of_scope=prepared.n_out_of_scope,
            embed_seconds=prepared.embed_seconds,
            fit_seconds=fit_seconds,
            total_seconds=time.perf_counter() - t_all,
            settings=settings,
            route_names=prepared.route_names,
        )

    def unfit(self) -> None:
        """Forget the fitted state and go back to plain cosine scoring."""
        self._check_open()
        with self._write_lock:
            if self._cascade is not None and self.store.load_fitted(GATE_KEY) is not None:
                self._note_version(self.store.delete_fitted(GATE_KEY), "unfit", None)
                self._cascade.load_gate(self.store, self.encoder.model_id)
            version = self.store.delete_fitted(POLICY_KEY)
            self._policy = self.cosine_policy
            self._note_version(version, "unfit", None)

    @property
    def fitted(self) -> bool:
        """True when a learned policy is active."""
        return self._policy is not self.cosine_policy

    def evaluate(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        out_of_scope_label: str | None = None,
        batch_size: int = 512,
    ) -> EvalReport:
        """Route labelled queries and report accuracy, out-of-scope recall, F1 and mistakes."""
        from ..evaluation import EvalExample, EvalReport

        self._check_open()
        clean, labs = labelled(texts, labels, "texts")
        examples: list[EvalExample] = []
        for start in range(0, len(clean), batch_size):
            chunk = clean[start : start + batch_size]
            for text, lab, m in zip(
                chunk, labs[start : start + batch_size], self.route_batch(chunk), strict=True
            ):
                top = m.candidates[0].name if m.candidates else None
                examples.append(EvalExample(text, lab, m.name, top, m.score, str(m.reason)))
        return EvalReport.from_examples(examples, out_of_scope_label=out_of_scope_label)

    # ------------------------------------------------------------------ catching up
    def refresh(self) -> int:
        """Apply changes other processes committed to the store since this router last looked.

        Returns how many change-log entries were applied. Safe to call at any time.
        """
        self._check_open()
        return boot.refresh(self)

    @property
    def version(self) -> int:
        """The store change version this router has applied."""
        return self._seen_version

    # ------------------------------------------------------------------ reads
    def get(self, name: str) -> Route:
        """The route called ``name``. Raises :class:`RouteNotFoundError`."""
        validate_route_name(name)
        route = self._tables.routes.get(name)
        if route is None:
            raise RouteNotFoundError(name)
        return route

    def routes(self) -> list[Route]:
        """All routes, sorted by name."""
        return [self._tables.routes[n] for n in sorted(self._tables.routes)]

    def __len__(self) -> int:
        return len(self._tables.routes)

    def __contains__(self, name: object) -> bool:
        return name in self._tables.routes

    def stats(self) -> dict[str, Any]:
        """Plain numbers about the router (for metrics endpoints and benchmarks).

        Besides the sizes: ``queue_depth``, ``batches_total``, ``batched_queries_total``,
        ``overloaded_total`` and ``batch_size_histogram`` (bucket upper bound as a Prometheus
        ``le`` label -> cumulative count of batches) from the async micro-batcher.
        """
        out: dict[str, Any] = {
            "routes": len(self._tables.routes),
            "vectors": len(self.index),
            "version": self._seen_version,
            "fitted": self._policy is not self.cosine_policy,
            "model_id": self.encoder.model_id,
            "batching": {
                "max_batch_size": self.batching.max_batch_size,
                "max_wait": self.batching.max_wait,
                "max_queue": self.batching.max_queue,
                "workers": self.batching.workers,
            },
        }
        if self._cascade is not None:
            gate = self._cascade.gate
            out["cascade"] = {
                **self._cascade.answered,
                "gate": {
                    "floor": gate.floor,
                    "margin": gate.margin,
                    "source": gate.source,
                    "in_scope": gate.in_scope,
                },
                "head": gate.head is not None,
                "rows_reused": self._cascade.rows_reused,
            }
        batcher = self._batcher
        if batcher is not None:
            out.update(batcher.stats())
        else:
            from ..batching import HISTOGRAM_BOUNDS

            out.update(
                queue_depth=0,
                queue_capacity=self.batching.max_queue,
                batches_total=0,
                batched_queries_total=0,
                overloaded_total=0,
                batch_size_histogram={**{str(b): 0 for b in HISTOGRAM_BOUNDS}, "+Inf": 0},
            )
        return out

    def verify(self) -> list[str]:
        """Compare the in-memory index with the store; returns the problems found (empty: in sync).

        Checks that every stored utterance is in the index exactly once, under its route, and that
        nothing else (a deleted utterance) is. Reads the whole store: an operator's check, O(N).
        """
        return boot.verify(self)

    @property
    def policy(self) -> ScoringPolicy:
        """The active scoring policy (cosine, or the fitted one)."""
        return self._policy

    @property
    def threshold(self) -> float:
        """The default threshold of the cosine policy."""
        return self.cosine_policy.threshold

    # ------------------------------------------------------------------ routing
    def route(self, query: str, top_k: int = 1) -> RouteMatch:
        """Route one query. Raises :class:`InvalidQueryError` for empty or unusable input.

        ``top_k`` (how many routes may be selected) is an int from 1 to :data:`MAX_TOP_K`
        (1000); anything else is an :class:`InvalidInputError`.
        """
        # route_batch([query]) without the list checks a one-item list passes anyway
        self._check_open()
        check_top_k(top_k)
        return self._route_texts([clean_text(query)], top_k)[0]

    def __call__(self, query: str, top_k: int = 1) -> RouteMatch:
        """``router(q)`` is :meth:`route`: what users of other semantic routers write."""
        return self.route(query, top_k=top_k)

    def route_multi(
        self, query: str, top_k: int = 2, *, whole: RouteMatch | None = None
    ) -> list[ClauseMatch]:
        """Multi-intent: route ``query`` and each of its clauses ("... and ...", "...; ...") in one
        encoder call; every route chosen by the whole or by a clause, with the text that chose it
        (see :mod:`synaptoroute_agents.clauses`). ``whole``: ``route(query, top_k)`` when the
        caller already has it (only the clauses are routed then)."""
        from ..clauses import route_clauses

        return route_clauses(self, query, top_k, whole)

    async def aroute_multi(
        self, query: str, top_k: int = 2, *, whole: RouteMatch | None = None
    ) -> list[ClauseMatch]:
        """Async twin of :meth:`route_multi`."""
        from ..clauses import aroute_clauses

        return await aroute_clauses(self, query, top_k, whole)

    def route_batch(self, queries: Sequence[str], top_k: int = 1) -> list[RouteMatch]:
        """Route many queries with one encoder call."""
        self._check_open()
        check_top_k(top_k)  # before the encoder runs
        if isinstance(queries, str | bytes) or not isinstance(queries, Sequence):
            raise InvalidTypeError("queries must be a list of strings")
        texts = [clean_text(q) for q in queries]
        if not texts:
            return []
        return self._route_texts(texts, top_k)

    def decide(
        self,
        Q: np.ndarray,
        top_k: int = 1,
        *,
        texts: Sequence[str] | None = None,
        features: np.ndarray | None = None,
    ) -> list[RouteMatch]:
        """Decide for already-embedded queries (``(b, dim)`` unit rows).

        ``texts`` (the cleaned query texts, one per row) let a fitted head read their words too;
        ``features`` (from the encoder's ``embed_with_features``, when the head was fitted on
        them) give it the representation it was fitted on. Without them the head reads the
        embeddings in their place: it still decides, less accurately.
        """
        check_top_k(top_k)
        check_features(Q, texts, features)
        return self._decide(Q, top_k, texts, features)

    def _decide(
        self, Q: np.ndarray, top_k: int, texts: Sequence[str] | None, features: np.ndarray | None
    ) -> list[RouteMatch]:
        """:meth:`decide` for arguments already checked (the router's own embedded queries)."""
        tables = self._tables
        token = tables.enter()  # registered before the index snapshot is taken
        try:
            return decide(
                tables, self.index, self._policy, QueryBatch(Q, texts, features), top_k, self.neighbors
            )
        finally:
            tables.leave(token)

    async def aroute(self, query: str, top_k: int = 1) -> RouteMatch:
        """Async twin of :meth:`route`: joins a micro-batch; the encoder runs in a worker thread.

        Raises:
            RouterOverloadedError: the query queue is full (retry later; a server answers 429).
            RouterClosedError: the router is closed (also for queries still waiting at close).
        """
        self._check_open()
        check_top_k(top_k)
        text = clean_text(query)
        match: RouteMatch = await self._get_batcher().submit(text, top_k)
        return match

    async def aroute_batch(self, queries: Sequence[str], top_k: int = 1) -> list[RouteMatch]:
        """Async twin of :meth:`route_batch`."""
        self._check_open()
        check_top_k(top_k)
        if isinstance(queries, str | bytes) or not isinstance(queries, Sequence):
            raise InvalidTypeError("queries must be a list of strings")
        texts = [clean_text(q) for q in queries]
        if not texts:
            return []
        return await self._get_batcher().submit_many(texts, top_k)

    def _route_clean(self, texts: list[str], top_k: int) -> list[RouteMatch]:
        self._check_open()
        return self._route_texts(texts, top_k)

    def _route_texts(self, texts: list[str], top_k: int) -> list[RouteMatch]:
        """Embed cleaned queries and decide; with a cascade, the static tier answers first."""
        if self._cascade is not None:
            from .cascade import route_cascade

            return route_cascade(self, self._cascade, texts, top_k)
        Q, H = self._embed_queries(texts)
        # top_k was checked by the caller; texts and features have one row per query by construction
        return self._decide(Q, top_k, texts, H)

    def _get_batcher(self) -> MicroBatcher:
        batcher = self._batcher
        if batcher is None:
            with self._batcher_lock:
                self._check_open()
                if self._batcher is None:
                    from ..batching import MicroBatcher

                    self._batcher = MicroBatcher(self._route_clean, self.batching)
                batcher = self._batcher
        return batcher

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Release the store's connections. Further calls raise :class:`RouterClosedError`."""
        if self._closed:
            return
        with self._batcher_lock:
            self._closed = True
            batcher = self._batcher
        if batcher is not None:
            batcher.close()
        self.index.wait_idle(5)
        if self._cascade is not None:
            self._cascade.index.wait_idle(5)
            self._cascade.wait()
        self.wait_snapshot()  # a snapshot write is one transaction: let it finish or fail whole
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> SemanticRouter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SemanticRouter(routes={len(self._tables.routes)}, vectors={len(self.index)}, encoder={self.encoder.model_id!r})"

    # -- the id tables, for tests and operators' checks (read-only views)
    @property
    def _routes(self) -> dict[str, Route]:
        return self._tables.routes

    @property
    def _route_ids(self) -> dict[str, set[int]]:
        return self._tables.route_ids

    @property
    def _id_route(self) -> dict[int, str]:
        return self._tables.id_route
