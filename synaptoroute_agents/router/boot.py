"""Boot, boot snapshots, the saved approximate index, catching up on the change log, verifying.

These are the router's steps that bring its memory in line with the store (the truth): at
boot (from the packed snapshot plus the change log after it, or from the rows), and later on
:meth:`SemanticRouter.refresh`. They act on the router's state under its write lock (or
before the router is shared, at boot).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..encoders.base import embed_in_batches, head_features_of
from ..errors import EncoderMismatchError
from ..index import SavedBase, VectorIndex
from ..scoring import ScoringPolicy
from ..store import LoadedStore, RouteStore, StoredUtterances

if TYPE_CHECKING:
    from .core import SemanticRouter

__all__ = [
    "POLICY_KEY",
    "SNAPSHOT_MAX_BEHIND",
    "SNAPSHOT_MIN_VECTORS",
    "SavedIndex",
    "SnapshotWriter",
    "boot",
    "load_stored_policy",
    "refresh",
    "save_index",
    "save_snapshot_from_store",
    "verify",
]

log = logging.getLogger(__name__)

#: The store key of the fitted scoring policy.
POLICY_KEY = "policy"

#: A router keeps a boot snapshot of its store by itself (``snapshot="auto"``) from this many
#: stored utterances on; below it, reading the rows is about as fast.
SNAPSHOT_MIN_VECTORS = 20_000
#: A snapshot more change-log entries behind than this (or than a tenth of its rows, if more)
#: is not used: reading the rows is then as fast as catching up.
SNAPSHOT_MAX_BEHIND = 5_000

REFRESH_PAGE = 10_000  # change-log entries applied by one refresh()

#: A saved approximate index read back from the store, with the version it was saved at.
SavedCopy = tuple[SavedBase, int] | None


class SnapshotWriter:
    """Writes boot snapshots in a background thread, one at a time."""

    def __init__(self, store: RouteStore) -> None:
        self._store = store
        self._thread: threading.Thread | None = None

    def start(self, write: Callable[[], Any]) -> None:
        """Run ``write`` in the background unless one is running (or the store is in memory)."""
        if self._store.in_memory:  # nothing boots from an in-memory store later
            return
        running = self._thread
        if running is not None and running.is_alive():
            return

        def run() -> None:
            try:
                write()
            except Exception:  # a cache that could not be written: the next boot reads the rows
                log.exception("writing the boot snapshot failed")

        t = threading.Thread(target=run, name="synaptoroute-snapshot", daemon=True)
        self._thread = t
        t.start()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the write running in the background, if any."""
        t = self._thread
        if t is not None:
            t.join(timeout)


class SavedIndex:
    """The copy of an approximate index (hnsw/ivf) kept in the store by ``save_index``."""

    def __init__(self, store: RouteStore, index: VectorIndex, model_id: str) -> None:
        self._store = store
        self._index = index
        self._model_id = model_id

    def read(self) -> SavedCopy:
        """The saved copy, parsed, with its version (None: none of this encoder, or one that
        does not fit this index; the latter is logged)."""
        saved = self._store.load_fitted(self._index.cache_key())
        if saved is None or saved[1] != self._model_id:
            return None
        parsed = self._index.read_serialized(saved[0])
        return None if parsed is None else (parsed, saved[2])

    def prefetch(self) -> Callable[[], SavedCopy] | None:
        """Read and parse the saved copy in a thread while the snapshot is read (the two are
        independent reads of the store); returns what waits for it (None for a flat index)."""
        if self._index.kind == "flat":
            return None
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["saved"] = self.read()
            except Exception as exc:  # reported (and read again) by whoever waits
                box["error"] = exc

        t = threading.Thread(target=run, name="synaptoroute-saved-index", daemon=True)
        t.start()

        def wait() -> SavedCopy:
            t.join()
            if "error" in box:
                log.warning(
                    "reading the saved index beside the snapshot failed (%s); reading it again", box["error"]
                )
                return self.read()
            saved: SavedCopy = box["saved"]
            return saved

        return wait

    def load(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        version: int,
        prefetched: Callable[[], SavedCopy] | None = None,
    ) -> bool:
        """Boot the approximate index from the saved copy, if any. True when it was used.

        ``ids``/``vectors`` are the store's rows at ``version``. A copy saved at a later version
        holds rows they lack (added after it): it is not used, the index is built instead.
        ``prefetched`` waits for the copy read beside the snapshot (:meth:`prefetch`).
        """
        got = prefetched() if prefetched is not None else self.read()
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
        ok = self._index.load_serialized(saved, ids, vectors)
        if ok:
            log.info("approximate index loaded from the store (saved at version %d)", saved_version)
        return ok


def boot(router: SemanticRouter, on_mismatch: str) -> None:
    """Fill a new router from its store (snapshot when it can, rows otherwise)."""
    # Boot allocates a few objects per stored utterance; the cyclic GC would rescan them all
    # several times over (none of them form cycles), so it pauses meanwhile.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        _boot(router, on_mismatch)
    finally:
        if was_enabled:
            gc.enable()


def _boot(router: SemanticRouter, on_mismatch: str) -> None:
    t_start = t0 = time.perf_counter()
    bad_snapshot: str | None = None
    if router._snapshot_mode != "off":
        done, bad_snapshot = _boot_from_snapshot(router)
        if done:
            router._policy = load_stored_policy(router)
            router.boot_info["seconds"] = time.perf_counter() - t_start
            return
        t0 = time.perf_counter()  # the phases below are the rows path's own
    encoder, store = router.encoder, router.store
    loaded = store.load_all(encoder.model_id, encoder.dim)
    t_read = time.perf_counter()
    vectors = loaded.vectors
    if loaded.stale.any():
        stale_idx = np.flatnonzero(loaded.stale)
        if on_mismatch == "error":
            raise EncoderMismatchError(
                f"{len(stale_idx)} stored embeddings were made by another encoder than "
                f"{encoder.model_id!r}; open with on_encoder_mismatch='reembed' to re-embed them"
            )
        log.info("re-embedding %d utterances made by another encoder", len(stale_idx))
        fresh = embed_in_batches(encoder, [loaded.texts[i] for i in stale_idx])
        store.set_vectors(loaded.ids[stale_idx].tolist(), fresh, encoder.model_id)
        vectors = np.array(vectors, copy=True)
        vectors[stale_idx] = fresh
    t_embed = time.perf_counter()
    install(router, loaded, vectors)
    router._policy = load_stored_policy(router)
    t_end = time.perf_counter()
    router.boot_info = {
        "source": "rows",
        "version": loaded.version,
        "changes_applied": 0,
        "seconds": t_end - t_start,
        "phases": {"read": t_read - t0, "reembed": t_embed - t_read, "install": t_end - t_embed},
    }
    if router._snapshot_mode == "auto" and len(loaded.ids) >= SNAPSHOT_MIN_VECTORS:
        # What was just read is the store's content at loaded.version: pack it beside the
        # live router so the next boot reads a few large rows instead.
        model_id = encoder.model_id

        def write() -> None:
            store.save_snapshot(
                model_id,
                loaded.version,
                loaded.routes,
                loaded.ids,
                loaded.route_names,
                loaded.texts,
                vectors,
                replacing=bad_snapshot,
            )

        router._snapshots.start(write)


def _boot_from_snapshot(router: SemanticRouter) -> tuple[bool, str | None]:
    """Boot from the store's snapshot plus the change log after it. Returns (booted, the id of
    a snapshot found damaged); False leaves the router empty for reading the rows."""
    t0 = time.perf_counter()
    encoder, store, index = router.encoder, router.store, router.index
    info = store.snapshot_info(encoder.model_id, encoder.dim)
    if info is None:
        return False, None
    behind = store.count_changes_since(info.version)
    if behind > max(SNAPSHOT_MAX_BEHIND, info.rows // 10):
        log.info("the boot snapshot is %d changes behind the store; reading the rows", behind)
        return False, None
    saved_index = router._saved_index.prefetch()  # an approximate index's saved copy, meanwhile
    # the vectors are read straight into the index's storage (no second copy of them)
    loaded = store.load_snapshot(info, index.reserve)
    if loaded is None:
        newer = store.snapshot_info(encoder.model_id, encoder.dim)
        if newer is None or newer.id == info.id:
            return False, info.id
        loaded = store.load_snapshot(newer, index.reserve)  # replaced meanwhile: again
        if loaded is None:
            return False, newer.id
        info = newer
    t_read = time.perf_counter()
    install(router, loaded, loaded.vectors, saved_index)
    del loaded  # the small sections' buffer (the vectors are the index's storage now)
    t_install = time.perf_counter()
    applied = 0
    router._stale_reloads = 0
    try:
        while True:  # the change log after the snapshot, as a replica catches up
            n = refresh(router)
            applied += n
            if n < REFRESH_PAGE:
                break
        stale = router._stale_reloads
    finally:
        router._stale_reloads = -1
    if stale:
        # Another encoder wrote since: the rows path re-embeds (or refuses) as it always has.
        log.info("utterances of another encoder were added after the boot snapshot; reading the rows")
        return False, None
    router.boot_info = {
        "source": "snapshot",
        "snapshot_version": info.version,
        "version": router._seen_version,
        "changes_applied": applied,
        "phases": {
            "read": t_read - t0,
            "install": t_install - t_read,
            "catch_up": time.perf_counter() - t_install,
        },
    }
    if router._snapshot_mode == "auto" and applied >= max(1_000, info.rows // 100):
        router._snapshots.start(lambda: save_snapshot_from_store(router))
    return True, None


def install(
    router: SemanticRouter,
    loaded: LoadedStore,
    vectors: np.ndarray,
    saved_index: Callable[[], SavedCopy] | None = None,
) -> None:
    """Make ``loaded`` (the store's content at ``loaded.version``) the router's whole state."""
    index = router.index
    if not (
        index.kind != "flat" and router._saved_index.load(loaded.ids, vectors, loaded.version, saved_index)
    ):
        index.load(loaded.ids, vectors)
    if router._cascade is not None:  # static rows from the texts: the store is unchanged
        router._cascade.load(loaded.ids, loaded.texts, router.store, loaded.version)
    router._tables.install(loaded)
    router._seen_version = loaded.version


def save_snapshot_from_store(router: SemanticRouter) -> bool:
    """Write the store's boot snapshot from one consistent read of the store (see
    :meth:`SemanticRouter.save_snapshot`)."""
    encoder, store = router.encoder, router.store
    loaded = store.load_all(encoder.model_id, encoder.dim)
    if loaded.stale.any():
        return False
    info = store.save_snapshot(
        encoder.model_id,
        loaded.version,
        loaded.routes,
        loaded.ids,
        loaded.route_names,
        loaded.texts,
        loaded.vectors,
    )
    return info is not None


def load_stored_policy(router: SemanticRouter) -> ScoringPolicy:
    """The policy the store keeps (fitted with this encoder), else the router's cosine policy."""
    if router._cascade is not None:
        router._cascade.load_gate(router.store, router.encoder.model_id)
    stored = router.store.load_fitted(POLICY_KEY)
    if stored is None:
        return router.cosine_policy
    blob, model_id, _version = stored
    if model_id != router.encoder.model_id:
        log.warning(
            "the stored fitted state was made with encoder %r; ignoring it until the next fit", model_id
        )
        return router.cosine_policy
    from .. import fitting  # noqa: F401  (registers the built-in "fitted" kind)
    from ..scoring import load_policy

    policy = load_policy(blob)
    if policy.features is not None and head_features_of(router.encoder) != policy.features:
        log.warning(
            "the fitted head reads head features %r that this encoder does not provide; it reads "
            "the embeddings instead (less accurate) until the next fit",
            policy.features,
        )
    return policy


def refresh(router: SemanticRouter) -> int:
    """Apply the change-log entries after the router's version (one page); returns how many."""
    with router._write_lock:
        changes = router.store.changes_since(router._seen_version, limit=REFRESH_PAGE)
        if not changes:
            return 0
        names: dict[str, None] = {}
        refit = False
        for _v, op, route, _origin in changes:
            if route is not None:
                names.setdefault(route, None)
            if op in ("fit", "unfit"):
                refit = True
        states = router.store.route_states(list(names), router.encoder.model_id)
        for name in names:
            _reload_route(router, name, states[name])
        if refit:
            router._policy = load_stored_policy(router)
        router._seen_version = changes[-1][0]
        return len(changes)


def _reload_route(router: SemanticRouter, name: str, state: StoredUtterances | None) -> None:
    tables, dim = router._tables, router.encoder.dim
    have = set(tables.route_ids.get(name, ()))
    if state is None:
        router._apply(name, have, (), (), np.empty((0, dim), np.float32))
        tables.drop_route(name)
        return
    want = {int(i): j for j, i in enumerate(state.ids.tolist())}
    removed = have - want.keys()
    add_pos = [j for i, j in want.items() if i not in have]
    vecs = state.vectors[add_pos] if add_pos else np.empty((0, dim), np.float32)
    if add_pos and state.stale[add_pos].any():
        if router._stale_reloads >= 0:  # booting from a snapshot: the rows path takes over
            router._stale_reloads += 1
            return
        vecs = router.embed([state.texts[j] for j in add_pos])
    tables.set_route(state.route)
    router._apply(
        name, removed, [int(state.ids[j]) for j in add_pos], [state.texts[j] for j in add_pos], vecs
    )


def verify(router: SemanticRouter) -> list[str]:
    """See :meth:`SemanticRouter.verify`."""
    problems: list[str] = []
    with router._write_lock:
        loaded = router.store.load_all(router.encoder.model_id, router.encoder.dim)
        physical = router.index.live_id_array()
        id_route = dict(router._tables.id_route)
        routes = {n: set(r.utterances) for n, r in router._tables.routes.items()}
        seen_version = router._seen_version
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


def save_index(router: SemanticRouter) -> bool:
    """See :meth:`SemanticRouter.save_index`."""
    router._check_open()
    if router.index.kind == "flat":
        return False
    with router._write_lock:
        router.index.wait_idle(None)
        if router.index.pending():  # fold the delta and tombstones in first (a rebuild)
            router.index.compact()
        blob = router.index.serialize()
        if blob is None:
            return False
        router.store.save_cache_blob(
            router.index.cache_key(), blob, router.encoder.model_id, router._seen_version
        )
    if router._snapshot_mode == "auto" and not router.store.in_memory:
        router.wait_snapshot()  # one being written in the background may be older than the copy
        save_snapshot_from_store(router)
    return True
