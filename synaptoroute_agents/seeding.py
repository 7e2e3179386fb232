"""Seeding: turn a function, a tool or a tool description into a route, without any LLM.

A route needs example utterances. An agent's tools already describe themselves: a name
(``copy_file``, ``getWeather``), a docstring or description, argument descriptions, sometimes
examples. :func:`seed_route` reads all of that, deterministically, and writes utterances a user
might say. :func:`generate_utterances` optionally asks a chat model for more, and keeps only those
that survive validation (length, duplicates, and closeness to their own route rather than another).

:class:`ToolSelector` is the engine-level tool selection the framework integrations share: one
route per tool, and ``select(query, k)`` returns the names of the ``k`` best tools.

No agent framework is imported at module import time: a chat model is only called through its
``invoke``/``ainvoke`` methods, and ``langchain_core`` is imported lazily when one is given.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .encoders.base import Encoder, embed_in_batches
from .errors import InvalidInputError, InvalidTypeError, RouteNotFoundError
from .router import SemanticRouter
from .routes import Route, RouteMatch, clean_text, validate_route_name, validate_threshold

__all__ = [
    "ParsedDocstring",
    "ToolSelector",
    "generate_utterances",
    "parse_docstring",
    "routes_from_functions",
    "seed_route",
    "split_identifier",
    "looks_like_request",
    "tool_name",
    "validate_generated",
    "parse_generated",
    "utterances_from_description",
]

log = logging.getLogger(__name__)

#: Utterances shorter or longer than this (in characters) are dropped.
MIN_CHARS = 3
MAX_CHARS = 300
#: The whole-description utterance keeps at most this many characters (the bundled model reads
#: 256 tokens, about 1,000 characters of English).
MAX_DESCRIPTION_CHARS = 1200
#: At most this many body sentences (after the summary) go into the whole-description utterance.
MAX_BODY_SENTENCES = 12

# --------------------------------------------------------------------------- identifiers

_CAMEL_1 = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")
_NON_WORD = re.compile(r"[^0-9A-Za-z]+")


def split_identifier(name: str) -> str:
    """``"getHTTPResponse_code"`` -> ``"get http response code"`` (snake_case, camelCase, dots, dashes)."""
    if not isinstance(name, str):
        raise InvalidTypeError(f"name must be a str, not {type(name).__name__}")
    text = _CAMEL_1.sub(r"\1 \2", name)
    text = _CAMEL_2.sub(r"\1 \2", text)
    words = [w.lower() for w in _NON_WORD.split(text) if w]
    return " ".join(words)


# --------------------------------------------------------------------------- docstrings

_GOOGLE_SECTION = re.compile(r"^\s*([A-Z][A-Za-z ]{1,30}):\s*$")
_NUMPY_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")
_SPHINX_FIELD = re.compile(r"^\s*:(\w+)(?:\s+([^:]+?))?:\s*(.*)$")
_ARG_LINE = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_NUMPY_ARG = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::\s*(.*))?$")
#: A quoted example request after "e.g." / "for example": ``e.g. "is it raining in Paris"``.
_EG = re.compile(
    r"\b(?:e\.g\.|for example|for instance|such as)[,:]?\s+[\"\u201c]([^\"\u201d]{3,200})[\"\u201d]", re.I
)
_ROLE = re.compile(r":(?:\w+:)?\w+:`~?([^`<]+?)(?:\s*<[^>]*>)?`")
_BACKTICKS = re.compile(r"`+([^`]*)`+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
_ABBREV = re.compile(r"\b(e\.g|i\.e|etc|vs|cf|approx)\.", re.I)


def _sentences(text: str) -> list[str]:
    """Split prose into sentences, not after "e.g.", "i.e." and the like."""
    protected = _ABBREV.sub(lambda m: m.group(1).replace(".", "\x00") + "\x00", text)
    return [p.replace("\x00", ".") for p in _SENTENCE_END.split(protected) if p.strip()]


_ARG_SECTIONS = {
    "args",
    "arguments",
    "parameters",
    "params",
    "keyword args",
    "keyword arguments",
    "other parameters",
    "attributes",
}
_EXAMPLE_SECTIONS = {"example", "examples", "example usage", "usage", "example queries", "example requests"}
_SKIP_SECTIONS = {
    "returns",
    "return",
    "yields",
    "yield",
    "raises",
    "raise",
    "exceptions",
    "warns",
    "warnings",
    "see also",
    "references",
    "todo",
    "methods",
    "notes",
    "note",
}


@dataclass(slots=True)
class ParsedDocstring:
    """What :func:`parse_docstring` found."""

    summary: str = ""
    body: list[str] = field(default_factory=list)
    args: dict[str, str] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)


def _plain(text: str) -> str:
    """Drop reST roles and backticks, collapse white space."""
    text = _ROLE.sub(r"\1", text)
    text = _BACKTICKS.sub(r"\1", text)
    text = text.replace("**", "").replace("*", "")
    return re.sub(r"\s+", " ", text).strip()


def _section_name(lines: list[str], i: int) -> tuple[str | None, int]:
    """(section name, lines it spans) when a section header starts at line ``i``."""
    line = lines[i]
    if i + 1 < len(lines) and _NUMPY_UNDERLINE.match(lines[i + 1]) and line.strip():
        return "numpy:" + line.strip().rstrip(":").lower(), 2
    m = _GOOGLE_SECTION.match(line)
    if m:
        name = m.group(1).strip().lower()
        if name in _ARG_SECTIONS or name in _EXAMPLE_SECTIONS or name in _SKIP_SECTIONS:
            return name, 1
    return None, 0


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _parse_args(lines: list[str], numpy_style: bool) -> dict[str, str]:
    """Google (``x (int): text``) and NumPy (``x : int`` then indented text) argument blocks."""
    out: dict[str, str] = {}
    nonblank = [ln for ln in lines if ln.strip()]
    if not nonblank:
        return out
    base = min(_indent(ln) for ln in nonblank)
    current: str | None = None
    for ln in lines:
        if not ln.strip():
            continue
        if _indent(ln) == base:
            if numpy_style:
                m = _NUMPY_ARG.match(ln.strip())
                if not m:
                    current = None
                    continue
                names = [n.strip().lstrip("*") for n in m.group(1).split(",")]
                current = names[0]
                for n in names:
                    out.setdefault(n, "")
            else:
                m2 = _ARG_LINE.match(ln)
                if not m2:
                    current = None
                    continue
                current = m2.group(1)
                out[current] = m2.group(3).strip()
        elif current is not None:
            out[current] = (out[current] + " " + ln.strip()).strip()
    return {k: _plain(v) for k, v in out.items()}


_CODE = re.compile(r"[=(){}\[\]<>|`]|^\s*(?:import|from|for|if|while|def|class|return|print|with)\b|:\s*$")
_WORD = re.compile(r"[^\W\d_][\w'-]*")


def looks_like_request(text: str) -> bool:
    """True for prose a user might type (three or more words, no code, mostly letters)."""
    s = text.strip()
    if len(_WORD.findall(s)) < 3 or _CODE.search(s):
        return False
    visible = [ch for ch in s if not ch.isspace()]
    letters = sum(ch.isalpha() for ch in visible)
    return bool(visible) and letters / len(visible) >= 0.7


def _parse_examples(lines: list[str]) -> list[str]:
    """Example lines that read like requests.

    Doctest prompts (``>>>``) and their output, code, paragraphs that introduce code (ending with
    ``:``) and wrapped prose (several sentences) are skipped; one request per line is kept.
    """
    paragraphs: list[list[str]] = [[]]
    in_doctest = False
    for ln in lines:
        s = ln.strip()
        if not s:
            in_doctest = False
            paragraphs.append([])
            continue
        if s.startswith((">>>", "...")):
            in_doctest = True
            paragraphs.append([])
            continue
        if not in_doctest:  # doctest output is skipped
            paragraphs[-1].append(s)
    out: list[str] = []
    for para in paragraphs:
        if not para or para[-1].endswith(":") or _SENTENCE_END.search(" ".join(para)):
            continue
        for s in para:
            s = re.sub(r"^(?:[-*\u2022]|\d+[.)])\s+", "", s).strip().strip("\"'")
            if looks_like_request(s):
                out.append(_plain(s))
    return out


def parse_docstring(doc: str | None) -> ParsedDocstring:
    """Split a docstring into summary, body sentences, argument descriptions and example requests.

    Understands Google (``Args:``), NumPy (``Parameters`` + dashes) and Sphinx (``:param x:``)
    styles. ``Returns``/``Raises``/``Notes`` sections are skipped; lines starting with ``>>>`` and
    their output are never examples.
    """
    parsed = ParsedDocstring()
    if not doc:
        return parsed
    if not isinstance(doc, str):
        raise InvalidTypeError(f"a docstring must be a str, not {type(doc).__name__}")
    lines = inspect.cleandoc(doc).splitlines()
    prose: list[str] = []
    sections: dict[str, list[str]] = {}
    current: str | None = None
    i = 0
    while i < len(lines):
        name, span = _section_name(lines, i)
        if name is not None:
            current = name
            sections.setdefault(current, [])
            i += span
            continue
        line = lines[i]
        m = _SPHINX_FIELD.match(line)
        if m:
            kind, arg, text = m.group(1).lower(), (m.group(2) or "").strip(), m.group(3)
            if kind in ("param", "parameter", "arg", "argument", "key", "keyword") and arg:
                arg_name = arg.split()[-1]
                parsed.args[arg_name] = _plain(text)
                current = f"sphinx:{arg_name}"
            else:
                current = "sphinx:skip"
            i += 1
            continue
        if current is None:
            prose.append(line)
        elif current.startswith("sphinx:"):
            if line.strip() and _indent(line) > 0 and current != "sphinx:skip":
                key = current.split(":", 1)[1]
                parsed.args[key] = (parsed.args[key] + " " + _plain(line)).strip()
            elif not line.strip():
                current = None
        else:
            sections[current].append(line)
        i += 1
    for key, body in sections.items():
        numpy_style = key.startswith("numpy:")
        name = key.removeprefix("numpy:")
        if name in _ARG_SECTIONS:
            for k, v in _parse_args(body, numpy_style).items():
                parsed.args.setdefault(k, v)
        elif name in _EXAMPLE_SECTIONS:
            parsed.examples.extend(_parse_examples(body))
    # Prose: the first paragraph is the summary; later paragraphs split into sentences.
    paragraphs: list[list[str]] = [[]]
    in_doctest = False
    for ln in prose:
        s = ln.strip()
        if s.startswith((">>>", "...")):
            in_doctest = True
            continue
        if not s:
            in_doctest = False
            if paragraphs[-1]:
                paragraphs.append([])
            continue
        if in_doctest:
            continue
        paragraphs[-1].append(s)
    texts = [_plain(" ".join(p)) for p in paragraphs if p]
    if texts:
        first = _sentences(texts[0])
        parsed.summary = first[0]
        rest = first[1:] + [s for t in texts[1:] for s in _sentences(t)]
        parsed.body = [s for s in rest if s and not s.endswith("::")]
    return parsed


# --------------------------------------------------------------------------- utterances


def _strip_summary(text: str) -> str:
    text = text.strip().rstrip(".").strip()
    return re.sub(r"^(?:Return|Returns|Get|Gets)\s+", "get ", text)


def _keep(text: str, limit: int = MAX_CHARS) -> str | None:
    try:
        cleaned = clean_text(text, what="utterance")
    except InvalidInputError:
        return None
    if len(cleaned) < MIN_CHARS:
        return None
    if len(cleaned) > limit:
        cut = cleaned[:limit].rsplit(" ", 1)[0]
        cleaned = cut or cleaned[:limit]
    return cleaned


def utterances_from_description(
    name: str,
    description: str = "",
    *,
    args: Mapping[str, str] | None = None,
    examples: Sequence[str] = (),
) -> list[str]:
    """Utterances for a tool from its name, description, argument descriptions and examples.

    Deterministic: the same input always gives the same list, in the same order. The description
    is parsed as a docstring (summary, body sentences, ``Args``/``Parameters``/``:param`` blocks,
    ``Examples`` sections and "e.g." phrases; ``>>>`` lines are skipped).

    Args:
        name: the tool or function name; split into words (``get_weather`` -> "get weather").
        description: its description or docstring.
        args: argument name -> description (merged over those found in the description).
        examples: example requests, kept first and as given.

    Returns:
        De-duplicated utterances, explicit examples first.
    """
    if not isinstance(name, str):
        raise InvalidTypeError(f"name must be a str, not {type(name).__name__}")
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise InvalidTypeError(f"description must be a str, not {type(description).__name__}")
    if isinstance(examples, str):
        raise InvalidTypeError("examples must be a list of strings, not a single string")
    parsed = parse_docstring(description)
    all_args: dict[str, str] = dict(parsed.args)
    if args:
        if not isinstance(args, Mapping):
            raise InvalidTypeError("args must be a mapping of argument name to description")
        for k, v in args.items():
            if v or k not in all_args:
                all_args[str(k)] = "" if v is None else str(v)
    words = split_identifier(name)
    summary = _strip_summary(parsed.summary)
    # 1. Requests written by people: explicit examples, "Examples:" lines, "e.g." phrases.
    candidates: list[tuple[str, int]] = [(str(e), MAX_CHARS) for e in examples]
    candidates.extend((e, MAX_CHARS) for e in parsed.examples)
    for sentence in [parsed.summary, *parsed.body]:
        for m in _EG.finditer(sentence):
            phrase = m.group(1).strip()
            if looks_like_request(phrase):
                candidates.append((phrase, MAX_CHARS))
    # 2. What the tool does, in one line: "name words: summary" (the name alone without one).
    head = f"{words}: {summary}" if words and summary else (summary or words)
    candidates.append((head, MAX_CHARS))
    # 3. The whole description as one utterance: summary, body and argument descriptions.
    #    Measured on the tool-selection benchmark, one whole-description utterance beats one
    #    utterance per body sentence: detail sentences ("If x is false, ...") match unrelated
    #    requests when they stand alone.
    described = [(k, v) for k, v in all_args.items() if v and len(k) > 1]
    body = [parsed.summary, *parsed.body[:MAX_BODY_SENTENCES]]
    body += [f"{split_identifier(k)}: {v}" for k, v in described]
    whole = " ".join(b for b in body if b)
    if whole and whole.rstrip(".") != summary:
        candidates.append((f"{words}: {whole}" if words else whole, MAX_DESCRIPTION_CHARS))
    # 4. One utterance per described argument: "name words arg: description".
    for arg, text in described:
        line = f"{words} {split_identifier(arg)}: {_strip_summary(text)}" if words else text
        candidates.append((line, MAX_CHARS))
    out: dict[str, None] = {}
    for c, limit in candidates:
        kept = _keep(c, limit)
        if kept is not None:
            out.setdefault(kept, None)
    if not out and name:
        kept = _keep(name.replace("_", " "))
        if kept:
            out[kept] = None
    return list(out)


# --------------------------------------------------------------------------- objects -> routes


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
    model: Any = None,
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
        model: optional chat model: also generate ``n`` utterances (see :func:`generate_utterances`).
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
    meta = {"seeded_from": info.kind, **dict(metadata or {})}
    route = Route(
        route_name,
        tuple(utterances),
        description=(parsed.summary or desc.strip() or None),
        threshold=validate_threshold(threshold),
        metadata=meta,
    )
    if model is not None:
        extra = generate_utterances(route, model, n=n, encoder=encoder, others=others)
        if extra:
            route = Route(
                route.name, (*route.utterances, *extra), route.description, route.threshold, route.metadata
            )
    return route


def routes_from_functions(
    objs: Iterable[Any],
    *,
    model: Any = None,
    n: int = 10,
    encoder: Encoder | None = None,
) -> list[Route]:
    """One seeded route per object (see :func:`seed_route`); names must be unique.

    With ``model``, each route also gets up to ``n`` generated utterances, validated against all
    the other routes with ``encoder`` (the bundled model by default).

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
    if model is None:
        return routes
    if encoder is None:
        from .encoders.bundled import BundledEncoder

        encoder = BundledEncoder()
    out: list[Route] = []
    for route in routes:
        others = [r for r in routes if r.name != route.name]
        extra = generate_utterances(route, model, n=n, encoder=encoder, others=others)
        out.append(
            Route(route.name, (*route.utterances, *extra), route.description, route.threshold, route.metadata)
            if extra
            else route
        )
    return out


# --------------------------------------------------------------------------- generation with a model

_PROMPT = (
    "You write realistic user requests for a tool-using assistant.\n"
    "Tool name: {name}\nWhat the tool does: {description}\n"
    "Known example requests:\n{examples}\n\n"
    "Write {n} different requests a user could type that this tool answers. Vary the wording, "
    "do not mention the tool's name, one request per line, no numbering, no quotes, nothing else."
)
_LIST_PREFIX = re.compile(r"^\s*(?:[-*\u2022]+|\d+[.):]|\(\d+\))\s*")


def _message_text(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
        return "\n".join(parts)
    return str(content)


def parse_generated(text: str) -> list[str]:
    """Model output -> candidate utterances (one per line; bullets, numbers and quotes removed)."""
    out = []
    for line in text.splitlines():
        s = _LIST_PREFIX.sub("", line).strip().strip("\"'`").strip()
        if s:
            out.append(s)
    return out


def _prompt_messages(route: Route, n: int) -> list[Any]:
    try:
        from langchain_core.messages import HumanMessage, SystemMessage
    except ImportError as exc:  # pragma: no cover - exercised only without langchain-core
        raise ImportError(
            "generating utterances with a chat model needs langchain-core: pip install langchain-core"
        ) from exc
    examples = "\n".join(f"- {u}" for u in route.utterances[:8])
    prompt = _PROMPT.format(
        name=route.name, description=route.description or split_identifier(route.name), examples=examples, n=n
    )
    return [SystemMessage("You generate test data. Answer with plain lines only."), HumanMessage(prompt)]


def validate_generated(
    route: Route,
    candidates: Sequence[str],
    *,
    encoder: Encoder | None = None,
    others: Sequence[Route] = (),
    n: int | None = None,
    min_chars: int = 8,
    max_chars: int = 200,
) -> list[str]:
    """Keep generated utterances that are new, of sensible length, and nearer their own route.

    An utterance is dropped when it repeats one already kept (case-insensitively), is shorter than
    ``min_chars`` or longer than ``max_chars``, or (with ``others`` and an encoder) its nearest
    utterance belongs to another route rather than to ``route``.
    """
    seen = {u.lower() for u in route.utterances}
    kept: list[str] = []
    for raw in candidates:
        try:
            text = clean_text(raw, what="utterance")
        except InvalidInputError:
            continue
        if not min_chars <= len(text) <= max_chars or text.lower() in seen:
            continue
        seen.add(text.lower())
        kept.append(text)
    if kept and others:
        if encoder is None:
            from .encoders.bundled import BundledEncoder

            encoder = BundledEncoder()
        own = embed_in_batches(encoder, list(route.utterances))
        other_texts = [u for r in others for u in r.utterances]
        other_vecs = embed_in_batches(encoder, other_texts)
        cand = embed_in_batches(encoder, kept)
        own_best = (cand @ own.T).max(axis=1)
        other_best = (cand @ other_vecs.T).max(axis=1) if len(other_texts) else np.full(len(kept), -1.0)
        kept = [t for t, a, b in zip(kept, own_best, other_best, strict=True) if a >= b]
    return kept[:n] if n is not None else kept


def generate_utterances(
    route_or_obj: Any,
    model: Any,
    n: int = 10,
    *,
    encoder: Encoder | None = None,
    others: Sequence[Route] = (),
    min_chars: int = 8,
    max_chars: int = 200,
) -> list[str]:
    """Ask a chat model for ``n`` user requests for a route, then validate them.

    Args:
        route_or_obj: a :class:`Route`, or anything :func:`seed_route` accepts.
        model: a LangChain chat model (anything with ``invoke(messages)`` returning a message).
        n: how many to ask for; at most ``n`` are returned.
        encoder: validates closeness (bundled by default when ``others`` is given).
        others: competing routes; an utterance nearer one of them than its own route is dropped.

    Returns:
        The surviving utterances (possibly fewer than ``n``; duplicates of the route's own
        utterances are dropped).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInputError("n must be a positive integer")
    route = route_or_obj if isinstance(route_or_obj, Route) else seed_route(route_or_obj)
    invoke = getattr(model, "invoke", None)
    if not callable(invoke):
        raise InvalidTypeError("model must be a chat model with an invoke() method")
    reply = invoke(_prompt_messages(route, n))
    candidates = parse_generated(_message_text(reply))
    return validate_generated(
        route, candidates, encoder=encoder, others=others, n=n, min_chars=min_chars, max_chars=max_chars
    )


# --------------------------------------------------------------------------- tool selection


class ToolSelector:
    """Pick the few tools that fit a request out of many, with one route per tool.

    Args:
        tools: callables, LangChain tools, tool mappings or :class:`Route` objects (names unique).
        router: the router holding the tool routes (it may hold other routes too; only these
            tools are ever returned). Routes already present are kept as they are (so a
            persistent store is not re-seeded); missing ones are added. None: a new in-memory
            router on ``encoder``.
        k: default number of tools to select.
        threshold: when set, only tools scoring at least this are selected; None selects the
            best ``k`` whatever their score.
        encoder: the encoder of a new router (the bundled model by default).
    """

    def __init__(
        self,
        tools: Sequence[Any],
        *,
        router: SemanticRouter | None = None,
        k: int = 5,
        threshold: float | None = None,
        encoder: Encoder | None = None,
    ) -> None:
        if isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Iterable):
            raise InvalidTypeError("tools must be a sequence of callables, tools or mappings")
        self.k = _check_k(k)
        self.threshold = validate_threshold(threshold)
        routes: list[Route] = []
        self.tools: dict[str, Any] = {}
        for obj in tools:
            route = obj if isinstance(obj, Route) else seed_route(obj)
            if route.name in self.tools:
                raise InvalidInputError(f"two tools are named {route.name!r}; tool names must be unique")
            self.tools[route.name] = obj
            routes.append(route)
        if router is None:
            router = SemanticRouter(encoder, threshold=-1.0, neighbors=max(64, 8 * self.k))
        elif not isinstance(router, SemanticRouter):
            raise InvalidTypeError("router must be a SemanticRouter")
        self.router = router
        for route in routes:
            if route.name not in router:
                router.add(route)

    @property
    def names(self) -> list[str]:
        """The tool names, in the order given."""
        return list(self.tools)

    def tool(self, name: str) -> Any:
        """The object given for tool ``name``."""
        try:
            return self.tools[name]
        except KeyError:
            raise RouteNotFoundError(name) from None

    def match(self, query: str, k: int | None = None) -> RouteMatch:
        """The router's full decision for ``query`` with at least ``k`` ranked candidates."""
        k = self.k if k is None else _check_k(k)
        return self.router.route(query, top_k=k)

    async def amatch(self, query: str, k: int | None = None) -> RouteMatch:
        """Async twin of :meth:`match` (the encoder runs in a worker thread)."""
        k = self.k if k is None else _check_k(k)
        return await self.router.aroute(query, top_k=k)

    def _pick(self, match: RouteMatch, k: int) -> list[str]:
        out = []
        for cand in match.candidates:
            if cand.name not in self.tools:
                continue
            if self.threshold is not None and cand.score < self.threshold:
                break
            out.append(cand.name)
            if len(out) >= k:
                break
        return out

    def select(self, query: str, k: int | None = None) -> list[str]:
        """Names of at most ``k`` tools for ``query``, best first."""
        k = self.k if k is None else _check_k(k)
        return self._pick(self.match(query, k), k)

    async def aselect(self, query: str, k: int | None = None) -> list[str]:
        """Async twin of :meth:`select`; never blocks the event loop."""
        k = self.k if k is None else _check_k(k)
        return self._pick(await self.amatch(query, k), k)

    def select_tools(self, query: str, k: int | None = None) -> list[Any]:
        """Like :meth:`select`, returning the tool objects."""
        return [self.tools[n] for n in self.select(query, k)]

    async def aselect_tools(self, query: str, k: int | None = None) -> list[Any]:
        """Async twin of :meth:`select_tools`."""
        return [self.tools[n] for n in await self.aselect(query, k)]

    def __len__(self) -> int:
        return len(self.tools)

    def __contains__(self, name: object) -> bool:
        return name in self.tools

    def __repr__(self) -> str:
        return f"ToolSelector(tools={len(self.tools)}, k={self.k}, threshold={self.threshold})"


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInputError("k must be a positive integer")
    return k
