"""Mutations: add, replace and delete routes and utterances, in the store first, then in memory.

Each function is the body of the :class:`SemanticRouter` method of the same name: it writes
the store (the truth) in one transaction under the router's write lock and mirrors the
committed change in the index and the id tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DuplicateRouteError, InvalidInputError, InvalidTypeError, RouteNotFoundError, StoreError
from ..routes import Route, clean_text, validate_route_name
from . import boot

if TYPE_CHECKING:
    from .core import SemanticRouter

__all__ = [
    "add",
    "add_embedded",
    "add_many",
    "add_utterances",
    "clean_many",
    "delete",
    "remove_utterances",
    "update",
    "upsert",
]


def clean_many(texts: Iterable[str]) -> list[str]:
    """Cleaned, de-duplicated utterances (in order); raises a typed error for bad input."""
    if isinstance(texts, str | bytes) or not isinstance(texts, Iterable):
        raise InvalidTypeError("texts must be a list of strings")
    cleaned: dict[str, None] = {}
    for t in texts:
        cleaned.setdefault(clean_text(t, what="utterance"), None)
    if not cleaned:
        raise InvalidInputError("no texts given")
    return list(cleaned)


def add(router: SemanticRouter, route: Route, *, replace: bool = False) -> None:
    """See :meth:`SemanticRouter.add`."""
    router._check_open()
    route = router._as_route(route)
    if replace:
        router.upsert(route)
        return
    vecs = router.embed(route.utterances)
    with router._write_lock:
        ids, version = router.store.add_route(route, vecs, router.encoder.model_id)
        router._tables.set_route(route)
        router._apply(route.name, (), ids, route.utterances, vecs)
        router._note_version(version, "add", route.name)


def upsert(router: SemanticRouter, route: Route) -> bool:
    """See :meth:`SemanticRouter.upsert`."""
    router._check_open()
    route = router._as_route(route)
    exists = route.name in router._tables.routes
    for _attempt in range(3):
        try:
            if exists:
                router.update(route)
                return False
            router.add(route)
            return True
        except RouteNotFoundError:  # deleted elsewhere since we last looked
            exists = False
        except DuplicateRouteError:  # added elsewhere since we last looked
            exists = True
    raise StoreError(f"route {route.name!r} kept changing concurrently; try again")


def add_many(router: SemanticRouter, routes: Iterable[Route], *, replace: bool = False) -> None:
    """See :meth:`SemanticRouter.add_many`."""
    router._check_open()
    items = [router._as_route(r) for r in routes]
    names = [r.name for r in items]
    if len(set(names)) != len(names):
        raise InvalidInputError("route names must be unique")
    if replace:
        existing = {r.name for r in items if r.name in router._tables.routes}
        for route in items:
            if route.name in existing:
                router.upsert(route)
        items = [r for r in items if r.name not in existing]
    if not items:
        return
    flat = [t for r in items for t in r.utterances]
    vecs = router.embed(flat)
    add_embedded(router, items, vecs)
    if (
        router._snapshot_mode == "auto"
        and len(router.index) >= boot.SNAPSHOT_MIN_VECTORS
        and len(flat) >= max(boot.SNAPSHOT_MIN_VECTORS // 2, len(router.index) // 10)
    ):
        router._snapshots.start(lambda: boot.save_snapshot_from_store(router))  # a bulk import


def add_embedded(router: SemanticRouter, items: Sequence[Route], vecs: np.ndarray) -> None:
    """Add routes whose utterances are embedded already (``vecs``: all their rows, in order)."""
    parts, pos = [], 0
    for r in items:
        parts.append(vecs[pos : pos + len(r.utterances)])
        pos += len(r.utterances)
    with router._write_lock:
        added = router.store.add_routes(items, parts, router.encoder.model_id)
        for route, (ids, version), v in zip(items, added, parts, strict=True):
            router._tables.set_route(route)
            router._apply(route.name, (), ids, route.utterances, v)
            router._note_version(version, "add", route.name)


def update(router: SemanticRouter, route: Route) -> None:
    """See :meth:`SemanticRouter.update`."""
    router._check_open()
    route = router._as_route(route)
    old = router._tables.routes.get(route.name)
    known = set(old.utterances) if old else set()
    for _attempt in range(3):
        new = [t for t in route.utterances if t not in known]
        vecs = router.embed(new) if new else np.empty((0, router.encoder.dim), np.float32)
        mapping = {t: vecs[i] for i, t in enumerate(new)}
        try:
            with router._write_lock:
                removed, added, texts, version = router.store.update_route(
                    route, mapping, router.encoder.model_id
                )
                router._tables.set_route(route)
                router._apply(
                    route.name,
                    removed,
                    added,
                    texts,
                    np.stack([mapping[t] for t in texts]) if texts else vecs,
                )
                router._note_version(version, "update", route.name)
                return
        except StoreError as exc:
            if "changed concurrently" not in str(exc):
                raise
            known = set()
    raise StoreError(f"route {route.name!r} kept changing concurrently; update not applied")


def delete(router: SemanticRouter, name: str) -> None:
    """See :meth:`SemanticRouter.delete`."""
    router._check_open()
    validate_route_name(name)
    with router._write_lock:
        removed, version = router.store.delete_route(name)
        router._apply(name, removed, (), (), np.empty((0, router.encoder.dim), np.float32))
        router._tables.drop_route(name)
        router._note_version(version, "delete", name)


def add_utterances(router: SemanticRouter, name: str, texts: Iterable[str]) -> int:
    """See :meth:`SemanticRouter.add_utterances`."""
    router._check_open()
    validate_route_name(name)
    cleaned = clean_many(texts)
    vecs = router.embed(cleaned)
    with router._write_lock:
        ids, new_texts, version = router.store.add_utterances(name, cleaned, vecs, router.encoder.model_id)
        keep = [cleaned.index(t) for t in new_texts]
        router._apply(name, (), ids, new_texts, vecs[keep] if keep else vecs[:0])
        old = router._tables.routes.get(name)
        if old is not None and new_texts:
            router._tables.routes[name] = Route.trusted(
                old.name,
                tuple(old.utterances) + tuple(new_texts),
                old.description,
                old.threshold,
                old.metadata,
            )
        router._note_version(version, "add_utterances", name)
        return len(ids)


def remove_utterances(router: SemanticRouter, name: str, texts: Iterable[str]) -> int:
    """See :meth:`SemanticRouter.remove_utterances`."""
    router._check_open()
    validate_route_name(name)
    cleaned = clean_many(texts)
    with router._write_lock:
        removed, version = router.store.remove_utterances(name, cleaned)
        router._apply(name, removed, (), (), np.empty((0, router.encoder.dim), np.float32))
        old = router._tables.routes.get(name)
        if old is not None and removed:
            gone = set(cleaned)
            router._tables.routes[name] = Route.trusted(
                old.name,
                tuple(t for t in old.utterances if t not in gone),
                old.description,
                old.threshold,
                old.metadata,
            )
        router._note_version(version, "remove_utterances", name)
        return len(removed)
