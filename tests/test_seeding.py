from __future__ import annotations

import json
import os.path
import shutil
import statistics
import subprocess
import sys
import textwrap

import pytest

from synaptoroute_agents import (
    InvalidInputError,
    InvalidRouteError,
    InvalidTypeError,
    Route,
    SemanticRouter,
    ToolSelector,
    generate_utterances,
    parse_docstring,
    routes_from_functions,
    seed_route,
    utterances_from_description,
)
from synaptoroute_agents.seeding import split_identifier, validate_generated


def test_split_identifier() -> None:
    assert split_identifier("get_weather") == "get weather"
    assert split_identifier("getHTTPResponseCode") == "get http response code"
    assert split_identifier("os.path.join") == "os path join"
    assert split_identifier("send-email2User") == "send email2 user"


def test_google_docstring() -> None:
    doc = """Get the current weather for a city.

    Use it for temperature or rain questions, e.g. "is it raining in Paris".

    Args:
        city (str): the city name,
            in English.
        unit: celsius or fahrenheit.

    Returns:
        dict: the report.

    Examples:
        what's the weather like in Rome
        >>> get_weather("Rome")
        {'temp': 21}
    """
    p = parse_docstring(doc)
    assert p.summary == "Get the current weather for a city."
    assert p.args == {"city": "the city name, in English.", "unit": "celsius or fahrenheit."}
    assert p.examples == ["what's the weather like in Rome"]
    assert not any("report" in s for s in p.body)  # the Returns section is not prose
    utts = utterances_from_description("get_weather", doc)
    assert utts[0] == "what's the weather like in Rome"
    assert "get weather: get the current weather for a city" in utts  # name words + summary
    assert "is it raining in Paris" in utts  # the quoted e.g. phrase
    whole = [u for u in utts if "celsius or fahrenheit" in u and "temperature or rain" in u]
    assert whole  # one utterance holds the whole description, arguments included
    assert "get weather unit: celsius or fahrenheit" in utts
    assert not any(">>>" in u or "get_weather(" in u or "{'temp'" in u for u in utts)


def test_code_in_examples_is_not_a_request() -> None:
    doc = """Directory tree generator.

    Example:

    import os
    for root, dirs, files in os.walk('python/Lib'):
        print(root, "consumes", end="")
    If you have already calculated the mean, you can pass it as
    the optional second argument to avoid recomputing it:

    >>> walk('.')
    <generator object>

    Values such as e.g. 'Linux' or plain words are not requests.
    """
    p = parse_docstring(doc)
    assert p.examples == []
    assert utterances_from_description("walk", doc) == ["walk: Directory tree generator"]


def test_numpy_and_sphinx_docstrings() -> None:
    numpy_doc = """Compute the median.

    Parameters
    ----------
    data : list of float
        The numbers to summarize.
    low, high : bool
        Use the low or high median.

    Returns
    -------
    float
    """
    p = parse_docstring(numpy_doc)
    assert p.args["data"] == "The numbers to summarize."
    assert p.args["low"] == "Use the low or high median."
    assert "high" in p.args
    sphinx_doc = """Copy a file.

    :param src: the file to copy
    :param dst: where to put the copy,
        a folder or a file name
    :type src: str
    :returns: the destination
    """
    p = parse_docstring(sphinx_doc)
    assert p.summary == "Copy a file."
    assert p.args == {"src": "the file to copy", "dst": "where to put the copy, a folder or a file name"}
    assert p.body == []


def test_seed_route_from_stdlib_callables() -> None:
    route = seed_route(os.path.join)
    assert route.name == "join" and route.metadata["seeded_from"] == "callable"
    assert any("pathname components" in u for u in route.utterances)
    assert seed_route(shutil.copy, name="copy_file").name == "copy_file"
    with pytest.raises(InvalidRouteError):
        seed_route(lambda x: x)  # "<lambda>" is not a route name: pass name=
    assert seed_route(lambda x: x, name="identity").utterances == ("identity",)


def test_seed_route_is_deterministic_in_a_fresh_process() -> None:
    code = "import json, statistics; from synaptoroute_agents import seed_route; print(json.dumps(seed_route(statistics.median).to_dict()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == seed_route(statistics.median).to_dict()


def test_seed_route_from_mapping_and_tool_like() -> None:
    route = seed_route(
        {
            "name": "open_ticket",
            "description": "Open a support ticket.",
            "args": {"title": "a one-line summary of the problem"},
            "examples": ["my laptop will not boot"],
        },
        threshold=0.4,
        metadata={"team": "it"},
    )
    assert route.utterances[0] == "my laptop will not boot"
    assert any("one-line summary" in u for u in route.utterances)
    assert route.threshold == 0.4
    assert {k: v for k, v in route.metadata.items() if k != "seed_fingerprint"} == {
        "seeded_from": "mapping",
        "team": "it",
    }

    class FakeTool:  # duck-typed like a LangChain BaseTool
        name = "translate_text"
        description = "Translate text into another language."
        args_schema = {"properties": {"target_language": {"description": "the language to translate into"}}}

    tool_route = seed_route(FakeTool())
    assert tool_route.metadata["seeded_from"] == "tool"
    assert any("language to translate into" in u for u in tool_route.utterances)
    with pytest.raises(InvalidTypeError):
        seed_route(42)
    with pytest.raises(InvalidInputError):
        seed_route({"description": "no name"})


def test_langchain_tool_args_schema() -> None:
    tool = pytest.importorskip("langchain_core.tools").tool

    @tool
    def search_flights(origin: str, destination: str) -> str:
        """Find flights between two airports.

        Args:
            origin: departure airport code.
            destination: arrival airport code.
        """
        return ""

    route = seed_route(search_flights)
    assert route.name == "search_flights"
    assert any("departure airport" in u for u in route.utterances)
    assert any("arrival airport" in u for u in route.utterances)


def test_routes_from_functions_rejects_duplicates() -> None:
    routes = routes_from_functions([os.path.join, shutil.copy, statistics.median])
    assert [r.name for r in routes] == ["join", "copy", "median"]
    with pytest.raises(InvalidInputError, match="unique"):
        routes_from_functions([os.path.join, os.path.join])
    with pytest.raises(InvalidTypeError):
        routes_from_functions("join")


def _complete(model):
    """A LangChain chat model as the engine's ``complete(prompt) -> text``."""
    return pytest.importorskip("langchain_synaptoroute").chat_completion(model)


def _fake_model(text: str):
    fakes = pytest.importorskip("langchain_core.language_models.fake_chat_models")
    FakeListChatModel = fakes.FakeListChatModel
    return _complete(FakeListChatModel(responses=[text]))


def test_generate_utterances_validates_model_output(encoder) -> None:
    weather = Route("get_weather", ["what's the weather", "will it rain"], description="Weather forecast")
    money = Route("convert_currency", ["convert dollars to euros", "exchange rate"])
    reply = textwrap.dedent(
        """\
        1. Is it going to snow in Oslo tonight?
        - is it going to snow in oslo tonight?
        2) ok
        * How many yen do I get for 50 dollars?
        "Do I need an umbrella in London tomorrow?"
        """
        + "x" * 400
    )
    out = generate_utterances(weather, _fake_model(reply), n=10, encoder=encoder, others=[money])
    assert out == ["Is it going to snow in Oslo tonight?", "Do I need an umbrella in London tomorrow?"]
    # without competitors only the length and duplicate rules apply
    assert validate_generated(weather, ["will it rain", "How many yen for 50 dollars?"]) == [
        "How many yen for 50 dollars?"
    ]
    with pytest.raises(InvalidInputError):
        generate_utterances(weather, _fake_model("x"), n=0)
    with pytest.raises(InvalidTypeError):
        generate_utterances(weather, object())


def test_routes_from_functions_with_model(encoder) -> None:
    def get_weather(city: str) -> str:
        """Weather forecast for a city."""
        return ""

    def convert_currency(amount: float) -> str:
        """Convert money between currencies."""
        return ""

    fakes = pytest.importorskip("langchain_core.language_models.fake_chat_models")
    model = fakes.FakeListChatModel(
        responses=[
            "Will it be sunny in Madrid on Sunday?\nHow many euros is 10 dollars?",
            "What is 30 pounds in yen?\nIs it cold in Helsinki?",
        ]
    )
    weather, money = routes_from_functions(
        [get_weather, convert_currency], complete=_complete(model), encoder=encoder
    )
    assert "Will it be sunny in Madrid on Sunday?" in weather.utterances
    assert "How many euros is 10 dollars?" not in weather.utterances  # nearer the other route
    assert "What is 30 pounds in yen?" in money.utterances
    assert "Is it cold in Helsinki?" not in money.utterances


def test_tool_selector(encoder, tmp_path) -> None:
    tools = [os.path.join, shutil.copy, json.dumps, statistics.median, shutil.rmtree]
    selector = ToolSelector(tools, k=3, encoder=encoder)
    picked = selector.select("combine a folder name and a file name into one path")
    assert picked[0] == "join" and len(picked) == 3
    assert selector.select("delete this directory and everything inside it", k=1) == ["rmtree"]
    assert selector.match("serialize this dict to a JSON string").name == "dumps"
    strict = ToolSelector(tools, k=3, threshold=0.99, encoder=encoder)
    assert strict.select("combine a folder name and a file name into one path") == []
    with pytest.raises(InvalidInputError):
        selector.select("x", k=0)
    with pytest.raises(InvalidInputError, match="unique"):
        ToolSelector([os.path.join, os.path.join], encoder=encoder)
    # a shared router: existing routes are kept, other routes are never returned
    router = SemanticRouter(encoder, store=tmp_path / "tools.db")
    router.add(Route("unrelated", ["combine a folder name and a file name into one path"]))
    shared = ToolSelector(tools, router=router, encoder=encoder)
    assert "unrelated" not in shared.select("combine a folder name and a file name into one path")
    router.close()
    reopened = SemanticRouter(encoder, store=tmp_path / "tools.db")
    assert {"join", "rmtree", "unrelated"} <= {r.name for r in reopened.routes()}
    reopened.close()


async def test_tool_selector_async(encoder) -> None:
    selector = ToolSelector([os.path.join, statistics.median], k=1, encoder=encoder)
    assert await selector.aselect("the middle value of these numbers") == ["median"]


def test_tool_selection_benchmark_data() -> None:
    from benchmarks.tool_selection import load, resolve

    tools, pairs = load()
    assert len(tools) >= 100 and len(pairs) >= 300
    assert len({q for q, _ in pairs}) == len(pairs)  # every request is distinct
    for name in tools:
        assert (resolve(name).__doc__ or "").strip(), name  # real docstrings only
    assert {t for _, t in pairs} == set(tools)


def test_tool_selection_benchmark_runs(tmp_path, encoder) -> None:
    from benchmarks import tool_selection

    out = tool_selection.run(["name"], encoder=encoder, limit=30)
    res = out["variants"]["name"]
    assert out["tools"] >= 100 and out["requests"] == 30 and 0.0 <= res["top1"] <= res["top5"] <= 1.0
    doc = tmp_path / "B.md"
    tool_selection.update_section("tool-selection", tool_selection.markdown(out), doc=doc)
    assert "| name words only |" in doc.read_text()


def test_seed_route_with_model_option(encoder) -> None:
    fakes = pytest.importorskip("langchain_core.language_models.fake_chat_models")
    model = fakes.FakeListChatModel(responses=["- what is the middle value of 3, 9 and 4?\n- hi"])
    route = seed_route(statistics.median, complete=_complete(model), n=5, encoder=encoder)
    assert route.utterances[-1] == "what is the middle value of 3, 9 and 4?"
    assert "hi" not in route.utterances  # too short


def test_signature_lines_of_builtins_are_not_seeded() -> None:
    """Builtins' docstrings start with their call signature ("log(x, [base=math.e])",
    "max(iterable, *[, default=obj, key=func]) -> value"); it is no request, so it is dropped."""
    import builtins
    import math

    for fn, signature in (
        (math.log, "log(x, [base=math.e])"),
        (builtins.max, "max(iterable"),
        (builtins.getattr, "getattr(object, name[, default])"),
    ):
        utterances = seed_route(fn).utterances
        assert not any(signature in u for u in utterances), utterances
        assert utterances
    parsed = parse_docstring(
        "max(iterable, *[, key=func]) -> value\nmax(a, b) -> value\n\nReturn the largest item."
    )
    assert parsed.summary == "Return the largest item."
    # a first line that is a sentence mentioning a call is kept
    assert parse_docstring("Return f(x) for every x.").summary == "Return f(x) for every x."
