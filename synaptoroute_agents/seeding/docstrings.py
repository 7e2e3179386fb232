"""Docstrings and descriptions to utterances, deterministically and without any model.

A route needs example utterances. An agent's tools already describe themselves: a name
(``copy_file``, ``getWeather``), a docstring or description, argument descriptions, sometimes
examples. This module splits identifiers into words, parses Google, NumPy and Sphinx docstrings
(:func:`parse_docstring`) and writes the utterances a user might say
(:func:`utterances_from_description`).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import InvalidInputError, InvalidTypeError
from ..routes import clean_text

__all__ = [
    "MAX_BODY_SENTENCES",
    "MAX_CHARS",
    "MAX_DESCRIPTION_CHARS",
    "MIN_CHARS",
    "ParsedDocstring",
    "looks_like_request",
    "parse_docstring",
    "split_identifier",
    "utterances_from_description",
]


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


#: A call signature line, as builtins' docstrings start with: ``log(x, [base=math.e])``,
#: ``max(iterable, *[, default=obj, key=func]) -> value``.
_SIGNATURE_LINE = re.compile(r"^[A-Za-z_][\w.]*\(.*\)\s*(->\s*\S.*)?$")


def _drop_signature_lines(lines: list[str]) -> list[str]:
    """``lines`` without the call signatures (and the blank line after them) at their start."""
    i = 0
    while i < len(lines) and _SIGNATURE_LINE.match(lines[i].strip()):
        i += 1
    while i and i < len(lines) and not lines[i].strip():
        i += 1
    return lines[i:]


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
    lines = _drop_signature_lines(inspect.cleandoc(doc).splitlines())
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


_CLAUSE_END = re.compile(r",\s|;\s|\s\(|:\s|\.\s")


def request_forms(summary: str) -> list[str]:
    """A request-shaped form of a summary that reads "get ..." (docstrings saying "Return ..."
    or "Get ..."): the question a user asks, on its first clause ("Return the weather for a city,
    in degrees" -> "what is the weather for a city?").

    Measured on the tool-selection benchmark (docs/BENCHMARKS.md): this question alone raised
    top-1 and top-5 a little; a "how do I ...?" question for every summary and the first clause
    alone each raised one figure and lowered the other, and read wrongly for summaries that are
    noun phrases ("how do I directory tree generator?"), so they are not made.
    """
    text = summary.strip().rstrip(".")
    first = _CLAUSE_END.split(text, maxsplit=1)[0].strip() if text else ""
    first = first[:1].lower() + first[1:]
    if len(first.split()) < 2:
        return []
    if first.startswith("get ") and len(first.split()) > 2:
        return [f"what is {first[4:]}?"]
    return []


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
    # 2b. The same, shaped like a request people type: "what is ...?" for "get ..." summaries.
    candidates.extend((r, MAX_CHARS) for r in request_forms(summary))
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
