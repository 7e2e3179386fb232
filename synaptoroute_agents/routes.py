"""Plain data: routes, decisions and the text rules they share. No I/O here."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .errors import (
    InvalidInputError,
    InvalidQueryError,
    InvalidRouteError,
    InvalidThresholdError,
    InvalidTypeError,
)

__all__ = [
    "MAX_TEXT_CHARS",
    "Reason",
    "Route",
    "RouteCandidate",
    "RouteMatch",
    "Evidence",
    "clean_text",
    "validate_positive_int",
    "validate_route_name",
    "validate_threshold",
]

#: Texts longer than this many characters are cut before tokenization. The tokenizer keeps at most
#: 256 tokens anyway; cutting first keeps a 1 MB query from costing a 1 MB tokenization.
MAX_TEXT_CHARS = 8192

#: Route names: a letter, digit or underscore first, then word characters, '.', '-' or ':'.
_NAME_RE = re.compile(r"\w[\w.:\-]{0,127}")
#: Control characters (category Cc: U+0000-U+001F and U+007F-U+009F, fixed by Unicode's stability
#: policy) to a space, as one ``str.translate`` table: a per-character Python loop cost a single
#: query about 0.05 ms.
_CONTROL_TO_SPACE = {c: " " for c in range(0xA0) if unicodedata.category(chr(c)) == "Cc"}


class Reason(StrEnum):
    """Why a decision came out the way it did."""

    MATCHED = "matched"
    BELOW_THRESHOLD = "below_threshold"
    AMBIGUOUS = "ambiguous"
    OUT_OF_SCOPE = "out_of_scope"
    EMPTY_ROUTER = "empty_router"


def clean_text(text: Any, *, what: str = "query") -> str:
    """Return the text a route or query is matched on, or raise a typed error.

    Rules: ``bytes`` must be valid UTF-8; unpaired surrogates become U+FFFD; control characters
    become spaces; the text is NFC-normalized, white space is collapsed, and anything past
    :data:`MAX_TEXT_CHARS` is cut. Emoji, right-to-left scripts and format characters are kept.

    Raises:
        InvalidTypeError: ``text`` is neither ``str`` nor ``bytes``.
        InvalidQueryError: (for queries) the text is empty once cleaned, or bytes are not UTF-8.
        InvalidRouteError: (for utterances) the same, about a route's text.
    """
    error = InvalidQueryError if what == "query" else InvalidRouteError
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{what} bytes are not valid UTF-8 (at byte {exc.start})") from None
    if not isinstance(text, str):
        raise InvalidTypeError(f"{what} must be a str, not {type(text).__name__}")
    out: str = text[: 4 * MAX_TEXT_CHARS]
    if not (out.isascii() and out.isprintable()):
        # (printable ASCII has no surrogates, no control characters and is NFC already: the
        # three steps below leave it as it is, and skipping them saves a routed query ~0.02 ms)
        # Lone surrogates (e.g. from surrogateescape decoding) cannot be encoded: replace them.
        out = out.encode("utf-8", "replace").decode("utf-8")
        out = out.translate(_CONTROL_TO_SPACE)
        out = unicodedata.normalize("NFC", out)
    out = " ".join(out.split())  # runs of white space (str.isspace, as the regex \s) to one space
    if not out:
        raise error(f"{what} is empty")
    return out[:MAX_TEXT_CHARS]


def validate_positive_int(value: Any, what: str, *, maximum: int | None = None) -> int:
    """``value`` as an int when it is an integer >= 1 (and <= ``maximum``), else a typed error.

    Raises :class:`InvalidInputError` (bools are not integers here).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{what} must be a positive integer, got {value!r}")
    if maximum is not None and value > maximum:
        raise InvalidInputError(f"{what} must be at most {maximum}, got {value!r}")
    return int(value)


def validate_route_name(name: Any) -> str:
    """Return ``name`` if it is a valid route name, else raise :class:`InvalidRouteError`."""
    if not isinstance(name, str):
        raise InvalidTypeError(f"route name must be a str, not {type(name).__name__}")
    if not _NAME_RE.fullmatch(name):
        raise InvalidRouteError(
            f"invalid route name {name!r}: use 1-128 letters, digits, '_', '.', '-' or ':', "
            "not starting with a punctuation mark"
        )
    return str(name)


def validate_threshold(value: Any, *, what: str = "threshold") -> float | None:
    """Return ``value`` as a float in [-1, 1] (or None), else raise :class:`InvalidThresholdError`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidThresholdError(f"{what} must be a number, not {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or not -1.0 <= number <= 1.0:
        raise InvalidThresholdError(f"{what} must be a finite number in [-1, 1], got {number!r}")
    return number


def _clean_utterances(utterances: Any) -> tuple[str, ...]:
    if isinstance(utterances, str | bytes) or not isinstance(utterances, Iterable):
        raise InvalidTypeError("utterances must be a list of strings")
    seen: dict[str, None] = {}
    for raw in utterances:
        seen.setdefault(clean_text(raw, what="utterance"), None)
    return tuple(seen)


@dataclass(frozen=True, slots=True)
class Route:
    """A destination and the example utterances that lead to it.

    Args:
        name: unique name (letters, digits, ``_ . - :``; at most 128 characters).
        utterances: example user messages; cleaned with :func:`clean_text` and de-duplicated in
            order. At least one is required.
        description: free text for people (and for seeding); not embedded unless you add it.
        threshold: the route's own minimum score in [-1, 1]; None uses the router's default.
        metadata: any JSON-serializable mapping, stored and returned as is.
    """

    name: str
    utterances: Sequence[str]  # stored as a tuple
    description: str | None = None
    threshold: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", validate_route_name(self.name))
        utterances = _clean_utterances(self.utterances)
        if not utterances:
            raise InvalidRouteError(f"route {self.name!r} needs at least one utterance")
        object.__setattr__(self, "utterances", utterances)
        if self.description is not None and not isinstance(self.description, str):
            raise InvalidTypeError("description must be a str or None")
        object.__setattr__(self, "threshold", validate_threshold(self.threshold))
        if not isinstance(self.metadata, Mapping):
            raise InvalidTypeError("metadata must be a mapping")
        try:
            metadata = json.loads(json.dumps(dict(self.metadata), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise InvalidRouteError(
                f"metadata of route {self.name!r} is not JSON-serializable: {exc}"
            ) from None
        object.__setattr__(self, "metadata", metadata)

    @classmethod
    def trusted(
        cls,
        name: str,
        utterances: tuple[str, ...],
        description: str | None,
        threshold: float | None,
        metadata: Mapping[str, Any],
    ) -> Route:
        """Build a route from values that were validated before (read back from a store)."""
        route = object.__new__(cls)
        setattr_ = object.__setattr__  # unrolled: a boot builds one per stored route
        setattr_(route, "name", name)
        setattr_(route, "utterances", utterances)
        setattr_(route, "description", description)
        setattr_(route, "threshold", threshold)
        setattr_(route, "metadata", metadata)
        return route

    def to_dict(self) -> dict[str, Any]:
        """The route as plain JSON-ready data."""
        return {
            "name": self.name,
            "utterances": list(self.utterances),
            "description": self.description,
            "threshold": self.threshold,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Route:
        """Build a route from :meth:`to_dict`'s shape; unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise InvalidTypeError(f"a route must be a mapping, not {type(data).__name__}")
        unknown = set(data) - {"name", "utterances", "description", "threshold", "metadata"}
        if unknown:
            raise InvalidRouteError(f"unknown route field(s): {', '.join(sorted(map(str, unknown)))}")
        if "name" not in data or "utterances" not in data:
            raise InvalidRouteError("a route needs 'name' and 'utterances'")
        return cls(
            name=data["name"],
            utterances=data["utterances"],
            description=data.get("description"),
            threshold=data.get("threshold"),
            metadata=data.get("metadata") or {},
        )


@dataclass(frozen=True, slots=True)
class RouteCandidate:
    """One ranked route with its aggregated score."""

    name: str
    score: float


@dataclass(frozen=True, slots=True)
class Evidence:
    """A stored utterance that was near the query."""

    route: str
    utterance: str
    score: float


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The decision for one query.

    Attributes:
        name: the chosen route, or None when the router abstains.
        score: the best candidate's score (on the scale of the active scoring policy).
        margin: best score minus the runner-up's (1.0 when there is no runner-up).
        candidates: ranked routes, best first (at least ``top_k`` when the router has them).
        reason: why (see :class:`Reason`).
        evidence: the nearest stored utterances, best first.
        selected: the routes among the top ``top_k`` that pass their thresholds (multi-intent).
        tier: with ``encoder="cascade"``, which tier decided: ``"static"`` (the distilled table;
            score and margin are then static cosines) or ``"transformer"``; None otherwise.
    """

    name: str | None
    score: float
    margin: float
    candidates: tuple[RouteCandidate, ...]
    reason: Reason
    evidence: tuple[Evidence, ...] = ()
    selected: tuple[str, ...] = ()
    tier: str | None = None

    @property
    def matched(self) -> bool:
        """True when a route was chosen."""
        return self.name is not None

    def __bool__(self) -> bool:
        return self.name is not None

    def to_dict(self) -> dict[str, Any]:
        """The decision as plain JSON-ready data."""
        return {
            "name": self.name,
            "score": self.score,
            "margin": self.margin,
            "reason": str(self.reason),
            "candidates": [{"name": c.name, "score": c.score} for c in self.candidates],
            "evidence": [
                {"route": e.route, "utterance": e.utterance, "score": e.score} for e in self.evidence
            ],
            "selected": list(self.selected),
            **({"tier": self.tier} if self.tier is not None else {}),
        }
