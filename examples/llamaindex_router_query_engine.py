"""A LlamaIndex RouterQueryEngine whose selector is a local semantic router.

Three query engines (billing, shipping, HR), each a SummaryIndex over a few documents. The
selector picks one per question from the engines' descriptions, with no LLM call; a question no
engine fits goes to the fallback (the HR desk here, standing in for a general help desk).
MockLLM stands in for a chat model, so the example runs offline. Run it with:

    uv run python examples/llamaindex_router_query_engine.py
"""

from __future__ import annotations

from typing import Any

from llama_index.core import Document, SummaryIndex
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RouterQueryEngine
from llama_index.core.tools import QueryEngineTool
from llama_index.selectors.synaptoroute import SynaptoRouteSelector

DOCS = {
    "billing": (
        "Questions about invoices, payments, refunds, double charges and declined cards.",
        ["Refunds are issued within five business days.", "Invoices are emailed on the first of the month."],
    ),
    "shipping": (
        "Questions about deliveries, parcels, package tracking and shipping times.",
        ["Parcels ship within 24 hours.", "Track a package with the link in your confirmation email."],
    ),
    "hr": (
        "Questions about vacation days, sick leave, salaries and employee benefits.",
        ["Employees get 25 vacation days a year.", "Sick leave needs a note after three days."],
    ),
}

QUESTIONS = [
    "I was charged twice for my order, can I get a refund?",
    "where is my package? it has not arrived yet",
    "how many vacation days do I have left this year?",
    "what is the airspeed velocity of an unladen swallow?",
]


def build(encoder: Any = None) -> RouterQueryEngine:
    """The router query engine (``encoder``: any synaptoroute encoder; None loads the bundled one)."""
    llm = MockLLM(max_tokens=24)
    tools = [
        QueryEngineTool.from_defaults(
            SummaryIndex.from_documents([Document(text=t) for t in texts]).as_query_engine(llm=llm),
            name=name,
            description=description,
        )
        for name, (description, texts) in DOCS.items()
    ]
    selector = SynaptoRouteSelector(
        fallback="hr",
        # A few real example queries per choice sharpen routes seeded from short descriptions.
        examples={
            "billing": ["I was charged twice", "my card was declined"],
            "shipping": ["when will my order arrive", "track my parcel"],
            "hr": ["how much paid leave do I get"],
        },
        encoder=encoder,
    )
    return RouterQueryEngine(selector=selector, query_engine_tools=tools, llm=llm)


def main(encoder: Any = None) -> list[tuple[str, str, str]]:
    """Route every question; returns (question, chosen engine, the selector's reason)."""
    engine = build(encoder)
    names = list(DOCS)
    out = []
    for question in QUESTIONS:
        response = engine.query(question)
        selection = response.metadata["selector_result"].selections[0]
        out.append((question, names[selection.index], selection.reason))
    return out


if __name__ == "__main__":
    for question, engine, reason in main():
        print(f"{question!r}\n  -> {engine}: {reason}")
