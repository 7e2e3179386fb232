"""A LangChain Runnable router: three chains and a fallback, chosen by a local semantic router.

Each chain is a prompt, a chat model and a parser. The router picks the chain for a message in a
few milliseconds with no LLM call; a message no route fits goes to the fallback chain.
GenericFakeChatModel stands in for real chat models, so the example runs offline. Run it with:

    uv run python examples/langchain_runnable_router.py
"""

from __future__ import annotations

from itertools import cycle
from typing import Any

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from langchain_synaptoroute import SynaptoRouteRunnable, as_runnable

from synaptoroute_agents import Route, SemanticRouter

ROUTES = [
    Route(
        "billing", ["I was charged twice", "where is my invoice", "refund my payment", "my card was declined"]
    ),
    Route("shipping", ["where is my parcel", "track my order", "when will my package arrive"]),
    Route("tech", ["the app keeps crashing", "I cannot log in", "reset my password"]),
]

MESSAGES = [
    "I got billed two times for the same order",
    "my package still has not arrived",
    "the app crashes every time I open it",
    "what's a good name for a cat?",
]


def chain(role: str, answer: str) -> Runnable[Any, str]:
    """A prompt | chat model | parser chain; the fake model always gives ``answer``."""
    prompt = ChatPromptTemplate.from_messages([("system", f"You are the {role} desk."), ("human", "{input}")])
    model = GenericFakeChatModel(messages=cycle([AIMessage(answer)]))
    return prompt | model | StrOutputParser()


def build(encoder: Any = None) -> SynaptoRouteRunnable:
    """The routed chain (``encoder``: any synaptoroute encoder; None loads the bundled one)."""
    router = SemanticRouter(encoder, threshold=0.45)
    for route in ROUTES:
        router.add(route)
    return as_runnable(
        router,
        {
            "billing": chain("billing", "[billing] A refund for the double charge is on its way."),
            "shipping": chain("shipping", "[shipping] Your parcel is out for delivery."),
            "tech": chain("support", "[tech] Please update the app to the latest version."),
        },
        fallback=chain("general", "[general] Let me connect you with a person."),
    )


def main(encoder: Any = None) -> list[tuple[str, str]]:
    """Answer every message one by one and as a batch; returns (message, answer) pairs."""
    routed = build(encoder)
    answers = [routed.invoke({"input": message}) for message in MESSAGES]
    batch = routed.batch([{"input": message} for message in MESSAGES])
    assert batch == answers, "batch and invoke disagree"
    routed.router.close()
    return list(zip(MESSAGES, answers, strict=True))


if __name__ == "__main__":
    for message, answer in main():
        print(f"{message!r}\n  -> {answer}")
