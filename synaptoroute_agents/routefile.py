"""Route files: YAML or JSON lists of routes, for import and export."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .errors import RouteFileError, SynaptoRouteError
from .routes import Route

__all__ = ["read_routes", "write_routes", "parse_routes"]

FORMAT_VERSION = 1


def parse_routes(data: Any, *, source: str = "<data>") -> list[Route]:
    """Routes from parsed data: ``{"routes": [...]}`` or a plain list of route mappings."""
    items = data.get("routes") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise RouteFileError(f"{source}: expected a list of routes or a mapping with a 'routes' list")
    routes: list[Route] = []
    seen: set[str] = set()
    for n, item in enumerate(items):
        try:
            route = Route.from_dict(item)
        except SynaptoRouteError as exc:
            raise RouteFileError(f"{source}: route #{n + 1}: {exc}") from None
        if route.name in seen:
            raise RouteFileError(f"{source}: route {route.name!r} appears twice")
        seen.add(route.name)
        routes.append(route)
    return routes


def read_routes(path: str | os.PathLike[str]) -> list[Route]:
    """Read a YAML (.yaml/.yml) or JSON route file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise RouteFileError(f"cannot read {p}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RouteFileError(f"{p} is not UTF-8 text") from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise RouteFileError(
            f"{p} is not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}: {exc}"
        ) from None
    return parse_routes(data, source=str(p))


def write_routes(path: str | os.PathLike[str], routes: list[Route]) -> None:
    """Write routes as YAML or JSON (by the file's suffix), atomically.

    The text goes to a temporary file of its own in the same folder, is flushed to disk, and
    only then renamed over ``path``: a crash or a full disk leaves the old file whole (and no
    temporary file behind). A missing folder is a :class:`RouteFileError`.
    """
    p = Path(path)
    folder = p.parent
    if not folder.is_dir():
        raise RouteFileError(f"cannot write {p}: the folder {folder} does not exist")
    if p.is_dir():
        raise RouteFileError(f"cannot write {p}: it is a folder")
    data = {"version": FORMAT_VERSION, "routes": [r.to_dict() for r in routes]}
    if p.suffix.lower() == ".json":
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    mode = p.stat().st_mode & 0o777 if p.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every system can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
