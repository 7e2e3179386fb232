"""The router's id tables (route -> ids, id -> route and text) and the epoch scheme for readers.

Readers never take a lock. A query registers the current epoch before it takes the index's
snapshot; a removed id stays resolvable (route name, text) until no query that may hold an
older snapshot is still running, then it is forgotten. Writers hold the router's write lock.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from ..routes import Route
from ..store import LoadedStore

__all__ = ["IdTables"]


class IdTables:
    """Routes by name, their thresholds, and which stored utterance id belongs to which route."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        #: every live route name -> its own threshold (or None); what policies call live_routes
        self.thresholds: dict[str, float | None] = {}
        self.route_ids: dict[str, set[int]] = {}
        self.id_route: dict[int, str] = {}
        self.id_text: dict[int, str] = {}
        self._epoch = 0
        self._readers: dict[int, int] = {}
        self._reader_seq = itertools.count()
        self._graveyard: list[tuple[int, list[int]]] = []

    # -- readers
    def enter(self) -> int:
        """Register a reader (before it takes an index snapshot); returns its token."""
        token = next(self._reader_seq)
        self._readers[token] = self._epoch
        return token

    def leave(self, token: int) -> None:
        """Unregister the reader ``token``."""
        del self._readers[token]

    # -- writers (under the router's write lock)
    def install(self, loaded: LoadedStore) -> None:
        """Make ``loaded`` (the store's content) the whole state of the tables."""
        self.routes = dict(loaded.routes)
        self.thresholds = {n: r.threshold for n, r in loaded.routes.items()}
        ids = loaded.ids.tolist()
        self.id_route = dict(zip(ids, loaded.route_names, strict=True))
        self.id_text = dict(zip(ids, loaded.texts, strict=True))
        route_ids: dict[str, set[int]]
        if loaded.grouped:  # each route's rows in one run, in the order of loaded.routes
            rows = iter(ids)
            route_ids = {n: set(itertools.islice(rows, len(r.utterances))) for n, r in loaded.routes.items()}
        else:
            route_ids = {n: set() for n in loaded.routes}
            for i, n in zip(ids, loaded.route_names, strict=True):
                route_ids[n].add(i)
        self.route_ids = route_ids

    def set_route(self, route: Route) -> None:
        """Add or replace a route's fields (its ids change through :meth:`add_ids`/:meth:`retire`)."""
        self.routes[route.name] = route
        self.thresholds[route.name] = route.threshold

    def drop_route(self, name: str) -> None:
        """Forget a deleted route (its ids are retired separately)."""
        self.routes.pop(name, None)
        self.thresholds.pop(name, None)
        self.route_ids.pop(name, None)

    def known(self, ids: Iterable[int]) -> list[int]:
        """The ids among ``ids`` the tables still resolve."""
        return [i for i in ids if i in self.id_route]

    def add_ids(self, name: str, added: Sequence[int], texts: Sequence[str]) -> None:
        """Make new ids resolvable (before the index publishes them)."""
        if not len(added):
            return
        for i, t in zip(added, texts, strict=True):
            self.id_text[i] = t
            self.id_route[i] = name
        self.route_ids.setdefault(name, set()).update(added)

    def retire(self, name: str, removed: list[int]) -> None:
        """Take removed ids from their route (after the index stopped returning them); they stay
        resolvable until every reader that may still see them has left."""
        if removed:
            ids = self.route_ids.get(name)
            if ids is not None:
                ids.difference_update(removed)
            self._epoch += 1
            self._graveyard.append((self._epoch, removed))
        self._purge()

    def _purge(self) -> None:
        """Forget removed ids once no running query can still see them in an older snapshot."""
        if not self._graveyard:
            return
        oldest = min(list(self._readers.values()), default=self._epoch)
        keep: list[tuple[int, list[int]]] = []
        for epoch, ids in self._graveyard:
            if epoch <= oldest:
                for i in ids:
                    self.id_route.pop(i, None)
                    self.id_text.pop(i, None)
            else:
                keep.append((epoch, ids))
        self._graveyard = keep
