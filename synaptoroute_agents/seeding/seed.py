"""Functions, tools and tool descriptions to routes: one route per object, without any model.

:func:`seed_route` reads a Python callable (name, docstring, parameters), a tool with ``.name``,
``.description`` and an argument schema (a LangChain ``BaseTool``, read by duck typing), or a
mapping, and writes its utterances with :mod:`.docstrings`. With a ``complete(prompt) -> text``
language model it also asks for more (:mod:`.generate`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..encoders.base import Encoder
from ..encoders.lazy import LazyEncoder
from ..errors import InvalidInputError, InvalidTypeError
from ..routes import Route, validate_route_name, validate_threshold
from .docstrings import parse_docstring, utterances_from_description
from .generate import Complete, generate_for_route

__all__ = [
    "FINGERPRINT_KEY",
    "SEEDING_VERSION",
    "generate_utterances",
    "routes_from_functions",
    "seed_fingerprint",
    "seed_route",
    "tool_name",
]

#: Changes whenever the seeding method changes what it makes of the same docstring, so stored
#: routes seeded by an older method are re-seeded too.
SEEDING_VERSION = 3  # 3: call-signature lines at the start of a docstring are dropped


@dataclass(slots=True)
class _ToolInfo:
    name: str
    description: str
    args: dict[str, str]
    examples: list[str]
    kind: str


def _schema_args(schema: Any) -> dict[str, str]:
    """Field descriptions of a pydantic model class / instance or a JSON schema dict."""
    props: Any = None
    if isinstance(schema, Mapping):
        props = schema.get("properties", schema)
    else:
        for attr in ("model_json_schema", "schema"):
            fn = getattr(schema, attr, None)
            if callable(fn):
                try:
                    js = fn()
                except Exception:  # a schema we cannot render is simply not used
                    continue
                if isinstance(js, Mapping):
                    props = js.get("properties", {})
                    break
    out: dict[str, str] = {}
    if isinstance(props, Mapping):
        for k, v in props.items():
            desc = v.get("description", "") if isinstance(v, Mapping) else ""
            out[str(k)] = str(desc or "")
    return out


def _signature_args(fn: Callable[..., Any]) -> list[str]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in sig.parameters.values()
        if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _describe(obj: Any) -> _ToolInfo:
    if isinstance(obj, Route):
        return _ToolInfo(obj.name, obj.description or "", {}, list(obj.utterances), "route")
    if isinstance(obj, Mapping):
        name = obj.get("name")
        if not isinstance(name, str):
            raise InvalidInputError("a tool mapping needs a 'name' string")
        desc = obj.get("description") or ""
        args = obj.get("args") or {}
        if not isinstance(args, Mapping):
            raise InvalidTypeError("'args' must map argument names to descriptions")
        examples = obj.get("examples") or []
        if isinstance(examples, str):
            raise InvalidTypeError("'examples' must be a list of strings")
        return _ToolInfo(
            name,
            str(desc),
            {str(k): str(v or "") for k, v in args.items()},
            [str(e) for e in examples],
            "mapping",
        )
    # A LangChain BaseTool (duck-typed): .name, .description, .args_schema / .args
    tool_name = getattr(obj, "name", None)
    tool_desc = getattr(obj, "description", None)
    if isinstance(tool_name, str) and isinstance(tool_desc, str) and not inspect.isroutine(obj):
        schema_args: dict[str, str] = {}
        schema = getattr(obj, "args_schema", None)
        if schema is not None:
            schema_args = _schema_args(schema)
        if not schema_args:
            try:
                raw = obj.args
            except Exception:  # some tools compute .args lazily and may fail; descriptions suffice
                raw = None
            if isinstance(raw, Mapping):
                schema_args = _schema_args({"properties": raw})
        fn = getattr(obj, "func", None) or getattr(obj, "coroutine", None)
        doc = tool_desc
        if fn is not None and not tool_desc.strip():
            doc = inspect.getdoc(fn) or ""
        return _ToolInfo(tool_name, doc, schema_args, [], "tool")
    if callable(obj):
        fn_name = getattr(obj, "__name__", None) or type(obj).__name__
        doc = inspect.getdoc(obj) or ""
        sig_args = {a: "" for a in _signature_args(obj)}
        return _ToolInfo(str(fn_name), doc, sig_args, [], "callable")
    raise InvalidTypeError(
        f"cannot seed a route from {type(obj).__name__}: give a callable, a tool "
        "(with .name and .description) or a mapping with 'name' and 'description'"
    )


#: Route metadata key holding :func:`seed_fingerprint` of what a seeded route was built from.
FINGERPRINT_KEY = "seed_fingerprint"


def seed_fingerprint(name: str, description: str, args: Mapping[str, str], examples: Sequence[str]) -> str:
    """A digest of what seeding reads (name, description or docstring, argument descriptions,
    examples): a changed docstring gives a new fingerprint, so a stored route can be re-seeded."""
    data = json.dumps(
        [SEEDING_VERSION, name, description, sorted(args.items()), list(examples)], ensure_ascii=False
    )
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]


def tool_name(obj: Any) -> str:
    """The name a tool, callable, mapping or route is known by (its route name)."""
    return _describe(obj).name


def seed_route(
    obj: Any,
    *,
    name: str | None = None,
    examples: Sequence[str] = (),
    description: str | None = None,
    threshold: float | None = None,
    metadata: Mapping[str, Any] | None = None,
    complete: Complete | None = None,
    n: int = 10,
    encoder: Encoder | None = None,
    others: Sequence[Route] = (),
) -> Route:
    """Build a :class:`Route` for a callable, a LangChain tool or a tool mapping.

    Args:
        obj: a Python callable (its ``__name__``, docstring and parameters are used), a tool with
            ``.name``, ``.description`` and ``.args_schema``/``.args`` (a LangChain ``BaseTool``),
            or a mapping ``{"name", "description", "args": {arg: description}, "examples": [...]}``.
        name: the route name (default: the object's name).
        examples: extra example requests, kept first.
        description: overrides the object's own description or docstring.
        threshold: the route's own threshold.
        metadata: stored with the route (``seeded_from`` is added).
        complete: optional language model as ``complete(prompt) -> text``: also generate ``n``
            utterances (see :func:`generate_utterances`).
        n: how many utterances to ask the model for.
        encoder: the encoder that validates generated utterances against ``others``.
        others: the competing routes generated utterances must not be closer to.

    Raises:
        InvalidTypeError: ``obj`` is none of the supported kinds.
        InvalidRouteError: the name is not a valid route name (pass ``name=``).
    """
    info = _describe(obj)
    route_name = validate_route_name(name if name is not None else info.name)
    desc = info.description if description is None else description
    if isinstance(examples, str):
        raise InvalidTypeError("examples must be a list of strings, not a single string")
    utterances = utterances_from_description(
        route_name if name is not None else info.name,
        desc,
        args=info.args,
        examples=[*examples, *info.examples],
    )
    parsed = parse_docstring(desc)
    meta = {
        "seeded_from": info.kind,
        FINGERPRINT_KEY: seed_fingerprint(info.name, desc, info.args, [*examples, *info.examples]),
        **dict(metadata or {}),
    }
    route = Route(
        route_name,
        tuple(utterances),
        description=(parsed.summary or desc.strip() or None),
        threshold=validate_threshold(threshold),
        metadata=meta,
    )
    if complete is not None:
        extra = generate_for_route(route, complete, n=n, encoder=encoder, others=others)
        if extra:
            route = Route(
                route.name, (*route.utterances, *extra), route.description, route.threshold, route.metadata
            )
    return route


def routes_from_functions(
    objs: Iterable[Any],
    *,
    complete: Complete | None = None,
    n: int = 10,
    encoder: Encoder | None = None,
) -> list[Route]:
    """One seeded route per object (see :func:`seed_route`); names must be unique.

    With ``complete`` (a ``complete(prompt) -> text`` language model), each route also gets up to
    ``n`` generated utterances, validated against all the other routes with ``encoder`` (the bundled model by default).

    Raises:
        InvalidInputError: two objects have the same name.
    """
    if isinstance(objs, str | bytes | Mapping) or not isinstance(objs, Iterable):
        raise InvalidTypeError("expected an iterable of callables, tools or mappings")
    routes: list[Route] = []
    seen: set[str] = set()
    for obj in objs:
        route = seed_route(obj)
        if route.name in seen:
            raise InvalidInputError(f"two tools are named {route.name!r}; tool names must be unique")
        seen.add(route.name)
        routes.append(route)
    if complete is None:
        return routes
    encoder = LazyEncoder(encoder).get()
    out: list[Route] = []
    for route in routes:
        others = [r for r in routes if r.name != route.name]
        extra = generate_for_route(route, complete, n=n, encoder=encoder, others=others)
        out.append(
            Route(route.name, (*route.utterances, *extra), route.description, route.threshold, route.metadata)
            if extra
            else route
        )
    return out


def generate_utterances(
    route_or_obj: Any,
    complete: Complete,
    n: int = 10,
    *,
    encoder: Encoder | None = None,
    others: Sequence[Route] = (),
    min_chars: int = 8,
    max_chars: int = 200,
) -> list[str]:
    """Ask a language model for ``n`` user requests for a route, then validate them.

    Args:
        route_or_obj: a :class:`Route`, or anything :func:`seed_route` accepts.
        complete: the model as a function, ``complete(prompt) -> text`` (for a LangChain chat
            model: ``langchain_synaptoroute.chat_completion(model)``).
        n: how many to ask for; at most ``n`` are returned.
        encoder: validates closeness (bundled by default when ``others`` is given).
        others: competing routes; an utterance nearer one of them than its own route is dropped.
        min_chars: shorter utterances are dropped.
        max_chars: longer utterances are dropped.

    Returns:
        The surviving utterances (possibly fewer than ``n``; duplicates of the route's own
        utterances are dropped).

    Raises:
        InvalidInputError: ``n`` is not a positive integer.
        InvalidTypeError: ``complete`` is not callable or does not return a str.
    """
    route = route_or_obj if isinstance(route_or_obj, Route) else seed_route(route_or_obj)
    return generate_for_route(
        route, complete, n, encoder=encoder, others=others, min_chars=min_chars, max_chars=max_chars
    )
