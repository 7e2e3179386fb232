"""Route validation and the text rules applied to every query and utterance."""

from __future__ import annotations

import math

import pytest

from synaptoroute_agents import (
    InvalidQueryError,
    InvalidRouteError,
    InvalidThresholdError,
    InvalidTypeError,
    Route,
    RouteNotFoundError,
    clean_text,
)
from synaptoroute_agents.routes import MAX_TEXT_CHARS


def test_route_cleans_and_deduplicates_utterances() -> None:
    r = Route("billing", ["  refund please ", "refund   please", "where is my invoice"])
    assert r.utterances == ("refund please", "where is my invoice")


@pytest.mark.parametrize("utterances", [[], ["   "], ["", "\t\n"]])
def test_route_rejects_missing_or_blank_utterances(utterances: list[str]) -> None:
    with pytest.raises(InvalidRouteError):
        Route("x", utterances)


def test_route_rejects_a_bare_string_as_utterances() -> None:
    with pytest.raises(InvalidTypeError):
        Route("x", "hello")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", " x", "-x", "a/b", "a b", "x" * 129, "é\n"])
def test_route_rejects_bad_names(name: str) -> None:
    with pytest.raises(InvalidRouteError):
        Route(name, ["hello"])


def test_route_accepts_unicode_names() -> None:
    assert Route("météo_v2", ["quel temps fait-il"]).name == "météo_v2"


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.5, 1.01])
def test_threshold_must_be_finite_in_range(value: float) -> None:
    with pytest.raises(InvalidThresholdError):
        Route("x", ["hi"], threshold=value)


def test_threshold_rejects_wrong_types() -> None:
    with pytest.raises(InvalidThresholdError):
        Route("x", ["hi"], threshold="0.5")  # type: ignore[arg-type]
    with pytest.raises(InvalidThresholdError):
        Route("x", ["hi"], threshold=True)  # type: ignore[arg-type]


def test_metadata_must_be_json() -> None:
    with pytest.raises(InvalidRouteError):
        Route("x", ["hi"], metadata={"f": object()})
    assert Route("x", ["hi"], metadata={"owner": "ops", "n": 1}).metadata == {"owner": "ops", "n": 1}


def test_from_dict_round_trip_and_unknown_keys() -> None:
    r = Route("x", ["hi", "hello"], description="greeting", threshold=0.4, metadata={"a": [1, 2]})
    assert Route.from_dict(r.to_dict()) == r
    with pytest.raises(InvalidRouteError):
        Route.from_dict({"name": "x", "utterances": ["hi"], "colour": "red"})


def test_route_not_found_message() -> None:
    err = RouteNotFoundError("nope")
    assert "nope" in str(err) and isinstance(err, KeyError)


@pytest.mark.parametrize("bad", ["", "   ", "\n\t", "\x00\x01\x02"])
def test_empty_queries_are_typed_errors(bad: str) -> None:
    with pytest.raises(InvalidQueryError):
        clean_text(bad)


def test_wrong_types_are_typed_errors() -> None:
    for bad in (None, 42, 3.5, ["list"], {"q": 1}):
        with pytest.raises(InvalidTypeError):
            clean_text(bad)


def test_invalid_utf8_bytes_are_typed_errors_and_valid_bytes_decode() -> None:
    with pytest.raises(InvalidQueryError, match="UTF-8"):
        clean_text(b"\xff\xfe\xfa broken")
    assert clean_text("café".encode()) == "café"


def test_control_characters_become_spaces() -> None:
    assert clean_text("reset\x00my\x07password\r\n") == "reset my password"


def test_every_control_and_white_space_character_follows_the_rules() -> None:
    """Each character of category Cc becomes a space and every white-space run (what
    ``str.isspace`` calls white space, the regex ``\\s``) becomes one space, trimmed at the ends,
    checked against the rules written out one character at a time."""
    import random
    import re
    import unicodedata

    def by_the_rules(text: str) -> str:
        out = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
        return re.sub(r"\s+", " ", unicodedata.normalize("NFC", out)).strip()

    special = [chr(c) for c in range(0x250)] + list("\u2028\u2029\u3000\u200b\ufeff\u0301\u1680\U0001f600")
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(special) for _ in range(rng.randint(1, 24)))
        want = by_the_rules(text)
        if want:
            assert clean_text(text) == want, repr(text)
        else:
            with pytest.raises(InvalidQueryError):
                clean_text(text)


def test_lone_surrogates_are_replaced() -> None:
    assert clean_text("abc\udcff def") == "abc? def" or "\ufffd" in clean_text("abc\udcff def")


def test_emoji_and_rtl_text_are_kept() -> None:
    assert clean_text("🔥 فاتورة  الكهرباء 👩‍💻") == "🔥 فاتورة الكهرباء 👩‍💻"


def test_huge_text_is_cut_not_rejected() -> None:
    text = clean_text("word " * 200_000)  # 1 MB
    assert len(text) == MAX_TEXT_CHARS
