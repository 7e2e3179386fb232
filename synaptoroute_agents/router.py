"""SemanticRouter: the one object users hold. Composes encoder, index, store and scoring policy."""

from __future__ import annotations

import gc
import itertools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .encoders.base import Encoder, embed_in_batches, embed_with_features_in_batches, head_features_of
from .errors import (
    DuplicateRouteError,
    EncoderMismatchError,
    InvalidInputError,
    InvalidTypeError,
    RouteNotFoundError,
    RouterClosedError,
    StoreError,
)
from .index import IndexKind, SavedBase, VectorIndex

if TYPE_CHECKING:
    from .batching import BatchingConfig, MicroBatcher

from .policy import CosinePolicy, ScoringPolicy
from .routes import (
    Evidence,
    Reason,
    Route,
    RouteCandidate,
    RouteMatch,
    clean_text,
    validate_route_name,
    validate_threshold,
)
from .store import LoadedStore, RouteStore, StoredUtterances

if TYPE_CHECKING:
    from .evaluation import EvalReport

__all__ = ["SemanticRouter", "FitSummary"]

#: A saved approximate index read back from the store, with the version it was saved at.
_SavedCopy = tuple[SavedBase, int] | None

log = logging.getLogger(__name__)

POLICY_KEY = "policy"

#: A router keeps a boot snapshot of its store by itself (``snapshot="auto"``) from this many
#: stored utterances on; below it, reading the rows is about as fast.
SNAPSHOT_MIN_VECTORS = 20_000
#: A snapshot more change-log entries behind than this (or than a tenth of its rows, if more)
#: is not used: reading the rows is then as fast as catching up.
SNAPSHOT_MAX_BEHIND = 5_000

_REFRESH_PAGE = 10_000  # change-log entries applied by one refresh()

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
        from .batching import resolve_batching

        if snapshot not in ("auto", "read", "off"):
            raise InvalidInputError("snapshot must be 'auto', 'read' or 'off'")
        self._snapshot_mode = snapshot
        self._snapshot_thread: threading.Thread | None = None
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
        if encoder is not None and not isinstance(encoder, str | Encoder):
            raise InvalidTypeError(
                "encoder must be a name such as 'bundled-int8' or implement the Encoder protocol"
                " (model_id, dim, embed)"
            )
        from .encoders.registry import resolve_encoder

        encoder = resolve_encoder(encoder)
        self.encoder: Encoder = encoder
        self.neighbors = max(1, int(neighbors))
        self.cosine_policy = CosinePolicy(threshold_value, float(ambiguity_margin))
        self._policy: ScoringPolicy = self.cosine_policy
        self._closed = False
        self._write_lock = threading.RLock()
        self.store = store if isinstance(store, RouteStore) else RouteStore(store, origin=origin)
        self._owns_store = not isinstance(store, RouteStore)
        self.index = VectorIndex(encoder.dim, kind=index, **dict(index_options or {}))
        self._routes: dict[str, Route] = {}
        self._thresholds: dict[str, float | None] = {}
        self._route_ids: dict[str, set[int]] = {}
        self._id_route: dict[int, str] = {}
        self._id_text: dict[int, str] = {}
        self._seen_version = 0
        self._listeners: list[Listener] = []
        # Readers never take a lock. Removed ids stay resolvable (route name, text) until no query
        # that may hold an older index snapshot is still running: a tiny epoch scheme.
        self._epoch = 0
        self._readers: dict[int, int] = {}
        self._reader_seq = itertools.count()
        self._graveyard: list[tuple[int, list[int]]] = []
        # >= 0 while a boot catches up after a snapshot: counts routes with another encoder's rows
        self._stale_reloads = -1
        self._boot(on_encoder_mismatch)

    # ------------------------------------------------------------------ boot
    def _boot(self, on_mismatch: str) -> None:
        # Boot allocates a few objects per stored utterance; the cyclic GC would rescan them all
        # several times over (none of them form cycles), so it pauses meanwhile.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            self._boot_inner(on_mismatch)
        finally:
            if was_enabled:
                gc.enable()

    def _boot_inner(self, on_mismatch: str) -> None:
        t_start = t0 = time.perf_counter()
        bad_snapshot: str | None = None
        if self._snapshot_mode != "off":
            done, bad_snapshot = self._boot_from_snapshot()
            if done:
                self._load_policy()
                self.boot_info["seconds"] = time.perf_counter() - t_start
                return
            t0 = time.perf_counter()  # the phases below are the rows path's own
        loaded = self.store.load_all(self.encoder.model_id, self.encoder.dim)
        t_read = time.perf_counter()
        vectors = loaded.vectors
        if loaded.stale.any():
            stale_idx = np.flatnonzero(loaded.stale)
            if on_mismatch == "error":
                raise EncoderMismatchError(
                    f"{len(stale_idx)} stored embeddings were made by another encoder than "
                    f"{self.encoder.model_id!r}; open with on_encoder_mismatch='reembed' to re-embed them"
                )
            log.info("re-embedding %d utterances made by another encoder", len(stale_idx))
            fresh = embed_in_batches(self.encoder, [loaded.texts[i] for i in stale_idx])
            self.store.set_vectors(loaded.ids[stale_idx].tolist(), fresh, self.encoder.model_id)
            vectors = np.array(vectors, copy=True)
            vectors[stale_idx] = fresh
        t_embed = time.perf_counter()
        self._install(loaded, vectors)
        self._load_policy()
        t_end = time.perf_counter()
        self.boot_info = {
            "source": "rows",
            "version": loaded.version,
            "changes_applied": 0,
            "seconds": t_end - t_start,
            "phases": {"read": t_read - t0, "reembed": t_embed - t_read, "install": t_end - t_embed},
        }
        if self._snapshot_mode == "auto" and len(loaded.ids) >= SNAPSHOT_MIN_VECTORS:
            # What was just read is the store's content at loaded.version: pack it beside the
            # live router so the next boot reads a few large rows instead.
            model_id = self.encoder.model_id

            def write() -> None:
                self.store.save_snapshot(
                    model_id,
                    loaded.version,
                    loaded.routes,
                    loaded.ids,
                    loaded.route_names,
                    loaded.texts,
                    vectors,
                    replacing=bad_snapshot,
                )

            self._snapshot_in_background(write)

    def _boot_from_snapshot(self) -> tuple[bool, str | None]:
        """Boot from the store's snapshot plus the change log after it. Returns (booted, the id of
        a snapshot found damaged); False leaves the router empty for reading the rows."""
        t0 = time.perf_counter()
        info = self.store.snapshot_info(self.encoder.model_id, self.encoder.dim)
        if info is None:
            return False, None
        behind = self.store.count_changes_since(info.version)
        if behind > max(SNAPSHOT_MAX_BEHIND, info.rows // 10):
            log.info("the boot snapshot is %d changes behind the store; reading the rows", behind)
            return False, None
        saved_index = self._prefetch_saved_index()  # an approximate index's saved copy, meanwhile
        # the vectors are read straight into the index's storage (no second copy of them)
        loaded = self.store.load_snapshot(info, self.index.reserve)
        if loaded is None:
            newer = self.store.snapshot_info(self.encoder.model_id, self.encoder.dim)
            if newer is None or newer.id == info.id:
                return False, info.id
            loaded = self.store.load_snapshot(newer, self.index.reserve)  # replaced meanwhile: again
            if loaded is None:
                return False, newer.id
            info = newer
        t_read = time.perf_counter()
        self._install(loaded, loaded.vectors, saved_index)
        del loaded  # the small sections' buffer (the vectors are the index's storage now)
        t_install = time.perf_counter()
        applied = 0
        self._stale_reloads = 0
        try:
            while True:  # the change log after the snapshot, as a replica catches up
                n = self.refresh()
                applied += n
                if n < _REFRESH_PAGE:
                    break
            stale = self._stale_reloads
        finally:
            self._stale_reloads = -1
        if stale:
            # Another encoder wrote since: the rows path re-embeds (or refuses) as it always has.
            log.info("utterances of another encoder were added after the boot snapshot; reading the rows")
            return False, None
        self.boot_info = {
            "source": "snapshot",
            "snapshot_version": info.version,
            "version": self._seen_version,
            "changes_applied": applied,
            "phases": {
                "read": t_read - t0,
                "install": t_install - t_read,
                "catch_up": time.perf_counter() - t_install,
            },
        }
        if self._snapshot_mode == "auto" and applied >= max(1_000, info.rows // 100):
            self._snapshot_in_background(self._save_snapshot_from_store)
        return True, None

    def _install(
        self,
        loaded: LoadedStore,
        vectors: np.ndarray,
        saved_index: Callable[[], _SavedCopy] | None = None,
    ) -> None:
        """Make ``loaded`` (the store's content at ``loaded.version``) the router's whole state."""
        if not (
            self.index.kind != "flat"
            and self._load_saved_index(loaded.ids, vectors, loaded.version, saved_index)
        ):
            self.index.load(loaded.ids, vectors)
        self._routes = dict(loaded.routes)
        self._thresholds = {n: r.threshold for n, r in loaded.routes.items()}
        ids = loaded.ids.tolist()
        self._id_route = dict(zip(ids, loaded.route_names, strict=True))
        self._id_text = dict(zip(ids, loaded.texts, strict=True))
        route_ids: dict[str, set[int]]
        if loaded.grouped:  # each route's rows in one run, in the order of loaded.routes
            rows = iter(ids)
            route_ids = {n: set(itertools.islice(rows, len(r.utterances))) for n, r in loaded.routes.items()}
        else:
            route_ids = {n: set() for n in loaded.routes}
            for i, n in zip(ids, loaded.route_names, strict=True):
                route_ids[n].add(i)
        self._route_ids = route_ids
        self._seen_version = loaded.version

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
        return self._save_snapshot_from_store()

    def _save_snapshot_from_store(self) -> bool:
        loaded = self.store.load_all(self.encoder.model_id, self.encoder.dim)
        if loaded.stale.any():
            return False
        info = self.store.save_snapshot(
            self.encoder.model_id,
            loaded.version,
            loaded.routes,
            loaded.ids,
            loaded.route_names,
            loaded.texts,
            loaded.vectors,
        )
        return info is not None

    def _snapshot_in_background(self, write: Callable[[], Any]) -> None:
        if self.store.in_memory:  # nothing boots from an in-memory store later
            return
        running = self._snapshot_thread
        if running is not None and running.is_alive():
            return

        def run() -> None:
            try:
                write()
            except Exception:  # a cache that could not be written: the next boot reads the rows
                log.exception("writing the boot snapshot failed")

        t = threading.Thread(target=run, name="synaptoroute-snapshot", daemon=True)
        self._snapshot_thread = t
        t.start()

    def wait_snapshot(self, timeout: float | None = None) -> None:
        """Wait for a boot snapshot being written in the background (for tests and benchmarks)."""
        t = self._snapshot_thread
        if t is not None:
            t.join(timeout)

    def _read_saved_index(self) -> _SavedCopy:
        """The copy :meth:`save_index` kept in the store, parsed, with its version (None: none of
        this encoder, or one that does not fit this index; the latter is logged)."""
        saved = self.store.load_fitted(self.index.cache_key())
        if saved is None or saved[1] != self.encoder.model_id:
            return None
        parsed = self.index.read_serialized(saved[0])
        return None if parsed is None else (parsed, saved[2])

    def _prefetch_saved_index(self) -> Callable[[], _SavedCopy] | None:
        """Read and parse the saved approximate index in a thread while the snapshot is read (the
        two are independent reads of the store); returns what waits for it."""
        if self.index.kind == "flat":
            return None
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["saved"] = self._read_saved_index()
            except Exception as exc:  # reported (and read again) by whoever waits
                box["error"] = exc

        t = threading.Thread(target=run, name="synaptoroute-saved-index", daemon=True)
        t.start()

        def wait() -> _SavedCopy:
            t.join()
            if "error" in box:
                log.warning(
                    "reading the saved index beside the snapshot failed (%s); reading it again", box["error"]
                )
                return self._read_saved_index()
            return box["saved"]

        return wait

    def _load_saved_index(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        version: int,
        prefetched: Callable[[], _SavedCopy] | None = None,
    ) -> bool:
        """Boot an approximate index from the copy :meth:`save_index` kept in the store, if any.

        ``ids``/``vectors`` are the store's rows at ``version``. A copy saved at a later version
        holds rows they lack (added after it): it is not used, the index is built instead.
        ``prefetched`` waits for the copy read beside the snapshot (:meth:`_prefetch_saved_index`).
        """
        got = prefetched() if prefetched is not None else self._read_saved_index()
        if got is None:
            return False
        saved, saved_version = got
        if saved_version > version:
            log.info(
                "the saved approximate index (version %d) is newer than the boot snapshot (version %d); "
                "building the index instead",
                saved_version,
                version,
            )
            return False
        ok = self.index.load_serialized(saved, ids, vectors)
        if ok:
            log.info("approximate index loaded from the store (saved at version %d)", saved_version)
        return ok

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
        self._check_open()
        if self.index.kind == "flat":
            return False
        with self._write_lock:
            self.index.wait_idle(None)
            if self.index.pending():  # fold the delta and tombstones in first (a rebuild)
                self.index.compact()
            blob = self.index.serialize()
            if blob is None:
                return False
            self.store.save_cache_blob(
                self.index.cache_key(), blob, self.encoder.model_id, self._seen_version
            )
        if self._snapshot_mode == "auto" and not self.store.in_memory:
            self.wait_snapshot()  # one being written in the background may be older than the copy
            self._save_snapshot_from_store()
        return True

    def _load_policy(self) -> None:
        stored = self.store.load_fitted(POLICY_KEY)
        if stored is None:
            self._policy = self.cosine_policy
            return
        blob, model_id, _version = stored
        if model_id != self.encoder.model_id:
            log.warning(
                "the stored fitted state was made with encoder %r; ignoring it until the next fit", model_id
            )
            self._policy = self.cosine_policy
            return
        from .fitting import load_policy

        policy = load_policy(blob)
        if policy.features is not None and head_features_of(self.encoder) != policy.features:
            log.warning(
                "the fitted head reads head features %r that this encoder does not provide; it reads "
                "the embeddings instead (less accurate) until the next fit",
                policy.features,
            )
        self._policy = policy

    # ------------------------------------------------------------------ helpers
    def _check_open(self) -> None:
        if self._closed:
            raise RouterClosedError("the router is closed")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed already-cleaned texts with the router's encoder (batched, unit rows)."""
        return embed_in_batches(self.encoder, list(texts))

    def _head_features(self) -> str | None:
        """The head features the fitted policy reads, when this router's encoder provides them."""
        want = getattr(self._policy, "features", None)
        return want if want is not None and head_features_of(self.encoder) == want else None

    def _embed_queries(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """Embeddings of cleaned queries, with the head features when the fitted head reads them."""
        if self._head_features() is not None:
            return embed_with_features_in_batches(self.encoder, list(texts))
        return self.embed(texts), None

    @staticmethod
    def _as_route(route: Any) -> Route:
        if isinstance(route, Route):
            return route
        if isinstance(route, Mapping):
            return Route.from_dict(route)
        raise InvalidTypeError(f"expected a Route, not {type(route).__name__}")

    def _apply(
        self, name: str, removed: Iterable[int], added: Sequence[int], texts: Sequence[str], vecs: np.ndarray
    ) -> None:
        """Mirror a committed change in memory (caller holds the write lock).

        The index publishes removals and additions as one snapshot, so a query sees a route either
        before or after the change, never half-way.
        """
        removed = [i for i in removed if i in self._id_route]
        if len(added):
            for i, t in zip(added, texts, strict=True):
                self._id_text[i] = t
                self._id_route[i] = name
            self._route_ids.setdefault(name, set()).update(added)
        self.index.apply(removed, np.asarray(added, dtype=np.int64), vecs)
        if removed:
            ids = self._route_ids.get(name)
            if ids is not None:
                ids.difference_update(removed)
            self._epoch += 1
            self._graveyard.append((self._epoch, removed))
        self._purge_graveyard()

    def _purge_graveyard(self) -> None:
        """Forget removed ids once no running query can still see them in an older snapshot."""
        if not self._graveyard:
            return
        oldest = min(list(self._readers.values()), default=self._epoch)
        keep: list[tuple[int, list[int]]] = []
        for epoch, ids in self._graveyard:
            if epoch <= oldest:
                for i in ids:
                    self._id_route.pop(i, None)
                    self._id_text.pop(i, None)
            else:
                keep.append((epoch, ids))
        self._graveyard = keep

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
        self._check_open()
        route = self._as_route(route)
        if replace:
            self.upsert(route)
            return
        vecs = self.embed(route.utterances)
        with self._write_lock:
            ids, version = self.store.add_route(route, vecs, self.encoder.model_id)
            self._routes[route.name] = route
            self._thresholds[route.name] = route.threshold
            self._apply(route.name, (), ids, route.utterances, vecs)
            self._note_version(version, "add", route.name)

    def upsert(self, route: Route) -> bool:
        """Add the route, or replace the one of the same name. Returns True when it was created.

        Safe against another process adding or deleting the same name at the same moment: the
        store decides, and a lost race is retried a few times before a :class:`StoreError`.
        """
        self._check_open()
        route = self._as_route(route)
        for _attempt in range(3):
            if route.name in self._routes:
                try:
                    self.update(route)
                    return False
                except RouteNotFoundError:  # deleted elsewhere since we last looked
                    self._routes.pop(route.name, None)
            try:
                self.add(route)
                return True
            except DuplicateRouteError:  # added elsewhere since we last looked
                try:
                    self.update(route)
                    return False
                except RouteNotFoundError:
                    continue
        raise StoreError(f"route {route.name!r} kept changing concurrently; try again")

    def add_many(self, routes: Iterable[Route], *, replace: bool = False) -> None:
        """Add many new routes with one encoder pass and one transaction (all or nothing).

        With ``replace=True`` routes whose name exists are replaced (one transaction each, as
        :meth:`update`) and the new ones are added together as above.
        """
        self._check_open()
        items = [self._as_route(r) for r in routes]
        names = [r.name for r in items]
        if len(set(names)) != len(names):
            raise InvalidInputError("route names must be unique")
        if replace:
            existing = [r for r in items if r.name in self._routes]
            for route in existing:
                self.upsert(route)
            items = [r for r in items if r.name not in {e.name for e in existing}]
        if not items:
            return
        flat = [t for r in items for t in r.utterances]
        vecs = self.embed(flat)
        self._add_embedded(items, vecs)
        if (
            self._snapshot_mode == "auto"
            and len(self.index) >= SNAPSHOT_MIN_VECTORS
            and len(flat) >= max(SNAPSHOT_MIN_VECTORS // 2, len(self.index) // 10)
        ):
            self._snapshot_in_background(self._save_snapshot_from_store)  # a bulk import

    def _add_embedded(self, items: Sequence[Route], vecs: np.ndarray) -> None:
        parts, pos = [], 0
        for r in items:
            parts.append(vecs[pos : pos + len(r.utterances)])
            pos += len(r.utterances)
        with self._write_lock:
            added = self.store.add_routes(items, parts, self.encoder.model_id)
            for route, (ids, version), v in zip(items, added, parts, strict=True):
                self._routes[route.name] = route
                self._thresholds[route.name] = route.threshold
                self._apply(route.name, (), ids, route.utterances, v)
                self._note_version(version, "add", route.name)

    def update(self, route: Route) -> None:
        """Replace an existing route (fields and utterances). Unchanged utterances keep their embeddings."""
        self._check_open()
        route = self._as_route(route)
        old = self._routes.get(route.name)
        known = set(old.utterances) if old else set()
        for _attempt in range(3):
            new = [t for t in route.utterances if t not in known]
            vecs = self.embed(new) if new else np.empty((0, self.encoder.dim), np.float32)
            mapping = {t: vecs[i] for i, t in enumerate(new)}
            try:
                with self._write_lock:
                    removed, added, texts, version = self.store.update_route(
                        route, mapping, self.encoder.model_id
                    )
                    self._routes[route.name] = route
                    self._thresholds[route.name] = route.threshold
                    self._apply(
                        route.name,
                        removed,
                        added,
                        texts,
                        np.stack([mapping[t] for t in texts]) if texts else vecs,
                    )
                    self._note_version(version, "update", route.name)
                    return
            except StoreError as exc:
                if "changed concurrently" not in str(exc):
                    raise
                known = set()
        raise StoreError(f"route {route.name!r} kept changing concurrently; update not applied")

    def delete(self, name: str) -> None:
        """Delete a route. Raises :class:`RouteNotFoundError` when it does not exist."""
        self._check_open()
        validate_route_name(name)
        with self._write_lock:
            removed, version = self.store.delete_route(name)
            self._apply(name, removed, (), (), np.empty((0, self.encoder.dim), np.float32))
            self._routes.pop(name, None)
            self._thresholds.pop(name, None)
            self._route_ids.pop(name, None)
            self._note_version(version, "delete", name)

    def add_utterances(self, name: str, texts: Iterable[str]) -> int:
        """Teach a route more examples. Returns how many were new."""
        self._check_open()
        validate_route_name(name)
        cleaned = _clean_many(texts)
        vecs = self.embed(cleaned)
        with self._write_lock:
            ids, new_texts, version = self.store.add_utterances(name, cleaned, vecs, self.encoder.model_id)
            keep = [cleaned.index(t) for t in new_texts]
            self._apply(name, (), ids, new_texts, vecs[keep] if keep else vecs[:0])
            old = self._routes.get(name)
            if old is not None and new_texts:
                self._routes[name] = Route.trusted(
                    old.name,
                    tuple(old.utterances) + tuple(new_texts),
                    old.description,
                    old.threshold,
                    old.metadata,
                )
            self._note_version(version, "add_utterances", name)
            return len(ids)

    def remove_utterances(self, name: str, texts: Iterable[str]) -> int:
        """Remove examples from a route (it keeps at least one). Returns how many were removed."""
        self._check_open()
        validate_route_name(name)
        cleaned = _clean_many(texts)
        with self._write_lock:
            removed, version = self.store.remove_utterances(name, cleaned)
            self._apply(name, removed, (), (), np.empty((0, self.encoder.dim), np.float32))
            old = self._routes.get(name)
            if old is not None and removed:
                gone = set(cleaned)
                self._routes[name] = Route.trusted(
                    old.name,
                    tuple(t for t in old.utterances if t not in gone),
                    old.description,
                    old.threshold,
                    old.metadata,
                )
            self._note_version(version, "remove_utterances", name)
            return len(removed)

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

        Returns:
            A :class:`FitSummary` (timings and what was chosen).
        """
        import time

        from .fitting import fit_policy

        self._check_open()
        t_all = time.perf_counter()
        clean, labs = _labelled(texts, labels, "texts")
        oos = out_of_scope_label
        if oos is not None and not isinstance(oos, str):
            raise InvalidTypeError("out_of_scope_label must be a str")
        if (
            isinstance(refusal_budget, bool)
            or not isinstance(refusal_budget, int | float)
            or not 0.0 <= refusal_budget <= 1.0
        ):
            raise InvalidInputError("refusal_budget must be a number in [0, 1]")
        in_labels = sorted({lab for lab in labs if lab != oos})
        if not in_labels:
            raise InvalidInputError("fit needs examples of at least one route")
        unknown = [lab for lab in in_labels if lab not in self._routes]
        features = head_features_of(self.encoder)

        def embed(batch: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
            # the head reads the encoder's head features when it has them (one pass for both)
            if features is not None:
                return embed_with_features_in_batches(self.encoder, list(batch))
            return self.embed(batch), None

        t0 = time.perf_counter()
        X, H = embed(clean)
        embed_seconds = time.perf_counter() - t0
        if unknown:
            if not create_routes:
                raise (
                    RouteNotFoundError(unknown[0])
                    if len(unknown) == 1
                    else InvalidInputError(
                        f"{len(unknown)} labels are not routes (e.g. {unknown[:3]}); pass create_routes=True"
                    )
                )
            by_text: dict[tuple[str, str], int] = {}
            for i, (t, lab) in enumerate(zip(clean, labs, strict=True)):
                by_text.setdefault((lab, t), i)
            new_routes = []
            for lab in unknown:
                new_routes.append(Route(lab, [t for t, lb in zip(clean, labs, strict=True) if lb == lab]))
            rows = [by_text[(r.name, t)] for r in new_routes for t in r.utterances]
            self._add_embedded(new_routes, X[rows])
        X_val = H_val = labs_val = None
        if validation is not None:
            if not isinstance(validation, tuple | list) or len(validation) != 2:
                raise InvalidTypeError("validation must be a (texts, labels) pair")
            v_texts, labs_val = _labelled(validation[0], validation[1], "validation texts")
            t0 = time.perf_counter()
            X_val, H_val = embed(v_texts)
            embed_seconds += time.perf_counter() - t0
        fit_texts, fit_labs = clean, labs
        if name_examples:
            extra = _name_examples([self._routes[lab] for lab in in_labels if lab in self._routes])
            if extra:
                t0 = time.perf_counter()
                X_extra, H_extra = embed([t for t, _ in extra])
                X = np.vstack([X, X_extra])
                if H is not None and H_extra is not None:
                    H = np.vstack([H, H_extra])
                embed_seconds += time.perf_counter() - t0
                fit_texts = clean + [t for t, _ in extra]
                fit_labs = labs + [lab for _, lab in extra]
        t0 = time.perf_counter()
        policy = fit_policy(
            X,
            fit_labs,
            oos_label=oos,
            X_val=X_val,
            labels_val=labs_val,
            seed=seed,
            refusal_budget=float(refusal_budget),
            texts=fit_texts,
            texts_val=None if validation is None else v_texts,
            H=H,
            H_val=H_val,
            features=features,
        )
        fit_seconds = time.perf_counter() - t0
        with self._write_lock:
            version = self.store.save_fitted(POLICY_KEY, policy.to_bytes(), self.encoder.model_id)
            self._policy = policy
            self._note_version(version, "fit", None)
        return FitSummary(
            n_examples=len(clean),
            n_routes=len(in_labels),
            n_out_of_scope=sum(1 for lab in labs if lab == oos),
            embed_seconds=embed_seconds,
            fit_seconds=fit_seconds,
            total_seconds=time.perf_counter() - t_all,
            settings=dict(getattr(policy, "settings", {})),
        )

    def unfit(self) -> None:
        """Forget the fitted state and go back to plain cosine scoring."""
        self._check_open()
        with self._write_lock:
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
        from .evaluation import EvalExample, EvalReport

        self._check_open()
        clean, labs = _labelled(texts, labels, "texts")
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
        with self._write_lock:
            changes = self.store.changes_since(self._seen_version, limit=_REFRESH_PAGE)
            if not changes:
                return 0
            names: dict[str, None] = {}
            refit = False
            for _v, op, route, _origin in changes:
                if route is not None:
                    names.setdefault(route, None)
                if op in ("fit", "unfit"):
                    refit = True
            states = self.store.route_states(list(names), self.encoder.model_id)
            for name in names:
                self._reload_route(name, states[name])
            if refit:
                self._load_policy()
            self._seen_version = changes[-1][0]
            return len(changes)

    def _reload_route(self, name: str, state: StoredUtterances | None) -> None:
        have = set(self._route_ids.get(name, ()))
        if state is None:
            self._apply(name, have, (), (), np.empty((0, self.encoder.dim), np.float32))
            self._routes.pop(name, None)
            self._thresholds.pop(name, None)
            self._route_ids.pop(name, None)
            return
        want = {int(i): j for j, i in enumerate(state.ids.tolist())}
        removed = have - want.keys()
        add_pos = [j for i, j in want.items() if i not in have]
        vecs = state.vectors[add_pos] if add_pos else np.empty((0, self.encoder.dim), np.float32)
        if add_pos and state.stale[add_pos].any():
            if self._stale_reloads >= 0:  # booting from a snapshot: the rows path takes over
                self._stale_reloads += 1
                return
            vecs = self.embed([state.texts[j] for j in add_pos])
        self._routes[name] = state.route
        self._thresholds[name] = state.route.threshold
        self._apply(
            name, removed, [int(state.ids[j]) for j in add_pos], [state.texts[j] for j in add_pos], vecs
        )

    @property
    def version(self) -> int:
        """The store change version this router has applied."""
        return self._seen_version

    # ------------------------------------------------------------------ reads
    def get(self, name: str) -> Route:
        """The route called ``name``. Raises :class:`RouteNotFoundError`."""
        validate_route_name(name)
        route = self._routes.get(name)
        if route is None:
            raise RouteNotFoundError(name)
        return route

    def routes(self) -> list[Route]:
        """All routes, sorted by name."""
        return [self._routes[n] for n in sorted(self._routes)]

    def __len__(self) -> int:
        return len(self._routes)

    def __contains__(self, name: object) -> bool:
        return name in self._routes

    def stats(self) -> dict[str, Any]:
        """Plain numbers about the router (for metrics endpoints and benchmarks).

        Besides the sizes: ``queue_depth``, ``batches_total``, ``batched_queries_total``,
        ``overloaded_total`` and ``batch_size_histogram`` (bucket upper bound as a Prometheus
        ``le`` label -> cumulative count of batches) from the async micro-batcher.
        """
        out: dict[str, Any] = {
            "routes": len(self._routes),
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
        batcher = self._batcher
        if batcher is not None:
            out.update(batcher.stats())
        else:
            from .batching import HISTOGRAM_BOUNDS

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
        problems: list[str] = []
        with self._write_lock:
            loaded = self.store.load_all(self.encoder.model_id, self.encoder.dim)
            physical = self.index.live_id_array()
            id_route = dict(self._id_route)
            routes = {n: set(r.utterances) for n, r in self._routes.items()}
            seen_version = self._seen_version
        if loaded.version != seen_version:
            problems.append(f"the store is at version {loaded.version}, the router at {seen_version}")
        uniq, counts = np.unique(physical, return_counts=True)
        dups = uniq[counts > 1]
        if len(dups):
            problems.append(f"{len(dups)} ids are in the index more than once, e.g. {dups[:5].tolist()}")
        stored = dict(zip(loaded.ids.tolist(), loaded.route_names, strict=True))
        in_index = set(uniq.tolist())
        missing = stored.keys() - in_index
        extra = in_index - stored.keys()
        if missing:
            problems.append(f"{len(missing)} stored utterances are missing from the index")
        if extra:
            problems.append(f"{len(extra)} ids in the index are not in the store (deleted utterances)")
        wrong = [i for i, n in stored.items() if i in in_index and id_route.get(i) != n]
        if wrong:
            problems.append(f"{len(wrong)} indexed utterances map to the wrong route")
        want = {n: set(r.utterances) for n, r in loaded.routes.items()}
        if want != routes:
            diff = sorted(set(want) ^ set(routes)) or sorted(n for n in want if want[n] != routes.get(n))
            problems.append(f"the router's routes differ from the store's, e.g. {diff[:5]}")
        return problems

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
        """Route one query. Raises :class:`InvalidQueryError` for empty or unusable input."""
        return self.route_batch([query], top_k=top_k)[0]

    def route_batch(self, queries: Sequence[str], top_k: int = 1) -> list[RouteMatch]:
        """Route many queries with one encoder call."""
        self._check_open()
        if isinstance(queries, str | bytes) or not isinstance(queries, Sequence):
            raise InvalidTypeError("queries must be a list of strings")
        texts = [clean_text(q) for q in queries]
        if not texts:
            return []
        Q, H = self._embed_queries(texts)
        return self.decide(Q, top_k=top_k, texts=texts, features=H)

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
        _check_top_k(top_k)
        if texts is not None and len(texts) != len(Q):
            raise InvalidInputError("texts must have one entry per query row")
        if features is not None and (not isinstance(features, np.ndarray) or features.shape != np.shape(Q)):
            raise InvalidInputError("features must be an array of the same shape as the embeddings")
        token = next(self._reader_seq)
        self._readers[token] = self._epoch  # registered before the index snapshot is taken
        try:
            return self._decide(Q, top_k, texts, features)
        finally:
            del self._readers[token]

    def _decide(
        self,
        Q: np.ndarray,
        top_k: int,
        texts: Sequence[str] | None = None,
        features: np.ndarray | None = None,
    ) -> list[RouteMatch]:
        live = self._thresholds
        if not live:
            return [_empty_match() for _ in range(len(Q))]
        k = max(self.neighbors, 4 * top_k)
        scores, ids = self.index.search(Q, k)
        id_route, id_text = self._id_route, self._id_text
        neighbors: list[list[tuple[str, float]]] = []
        evidence_ids: list[list[tuple[int, str, float]]] = []
        for srow, irow in zip(scores.tolist(), ids.tolist(), strict=True):
            pairs: list[tuple[str, float]] = []
            ev: list[tuple[int, str, float]] = []
            for s, i in zip(srow, irow, strict=True):
                if i < 0:
                    break
                name = id_route.get(i)
                if name is None:
                    continue
                pairs.append((name, s))
                if len(ev) < 3:
                    ev.append((i, name, s))
            neighbors.append(pairs)
            evidence_ids.append(ev)
        policy = self._policy
        if getattr(policy, "features", None) is not None:
            decisions = policy.decide(Q, neighbors, live, top_k, texts=texts, features=features)  # type: ignore[call-arg]
        elif texts is not None and getattr(policy, "uses_texts", False):
            decisions = policy.decide(Q, neighbors, live, top_k, texts=texts)  # type: ignore[call-arg]
        else:
            decisions = policy.decide(Q, neighbors, live, top_k)
        passes = getattr(policy, "passes", None)
        out: list[RouteMatch] = []
        for (ranked, chosen, reason), ev in zip(decisions, evidence_ids, strict=True):
            cands = tuple(RouteCandidate(n, float(s)) for n, s in ranked[: max(top_k, 5)])
            best = float(ranked[0][1]) if ranked else 0.0
            margin = best - float(ranked[1][1]) if len(ranked) > 1 else 1.0
            if passes is not None:
                selected = tuple(n for n, s in ranked[:top_k] if passes(n, s, live))
            else:
                selected = (chosen,) if chosen else ()
            if chosen is not None and chosen not in selected:
                selected = (chosen, *selected[: top_k - 1])
            evidence = tuple(
                Evidence(name, id_text.get(i, ""), float(s)) for i, name, s in ev if i in id_text
            )
            out.append(RouteMatch(chosen, best, margin, cands, Reason(reason), evidence, selected))
        return out

    async def aroute(self, query: str, top_k: int = 1) -> RouteMatch:
        """Async twin of :meth:`route`: joins a micro-batch; the encoder runs in a worker thread.

        Raises:
            RouterOverloadedError: the query queue is full (retry later; a server answers 429).
            RouterClosedError: the router is closed (also for queries still waiting at close).
        """
        self._check_open()
        _check_top_k(top_k)
        text = clean_text(query)
        return await self._get_batcher().submit(text, top_k)

    async def aroute_batch(self, queries: Sequence[str], top_k: int = 1) -> list[RouteMatch]:
        """Async twin of :meth:`route_batch`."""
        self._check_open()
        _check_top_k(top_k)
        if isinstance(queries, str | bytes) or not isinstance(queries, Sequence):
            raise InvalidTypeError("queries must be a list of strings")
        texts = [clean_text(q) for q in queries]
        if not texts:
            return []
        return await self._get_batcher().submit_many(texts, top_k)

    def _route_clean(self, texts: list[str], top_k: int) -> list[RouteMatch]:
        self._check_open()
        Q, H = self._embed_queries(texts)
        return self.decide(Q, top_k=top_k, texts=texts, features=H)

    def _get_batcher(self) -> MicroBatcher:
        batcher = self._batcher
        if batcher is None:
            with self._batcher_lock:
                self._check_open()
                if self._batcher is None:
                    from .batching import MicroBatcher

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
        self.wait_snapshot()  # a snapshot write is one transaction: let it finish or fail whole
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> SemanticRouter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SemanticRouter(routes={len(self._routes)}, vectors={len(self.index)}, encoder={self.encoder.model_id!r})"


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


_NAME_SPLIT = re.compile(r"[\W_]+|(?<=[a-z])(?=[A-Z])")


def _name_examples(routes: Sequence[Route]) -> list[tuple[str, str]]:
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


def _labelled(texts: Any, labels: Any, what: str) -> tuple[list[str], list[str]]:
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


def _clean_many(texts: Iterable[str]) -> list[str]:
    if isinstance(texts, str | bytes) or not isinstance(texts, Iterable):
        raise InvalidTypeError("texts must be a list of strings")
    cleaned: dict[str, None] = {}
    for t in texts:
        cleaned.setdefault(clean_text(t, what="utterance"), None)
    if not cleaned:
        raise InvalidInputError("no texts given")
    return list(cleaned)


def _check_top_k(top_k: Any) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InvalidInputError("top_k must be a positive integer")


def _empty_match() -> RouteMatch:
    return RouteMatch(None, 0.0, 0.0, (), Reason.EMPTY_ROUTER, (), ())
