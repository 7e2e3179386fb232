"""An IT help-desk graph: a zero-token router picks the team; low confidence goes to a read-only RAG branch.

Runs offline: the bundled embedding model routes, and scripted chat models stand in for real ones
(swap in any LangChain chat model, e.g. ``ChatOpenAI``, to use an LLM).

    uv run python examples/helpdesk_graph.py
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph_synaptoroute import RouterNode, create_rag_fallback

from synaptoroute_agents import DocumentIndex, Route, SemanticRouter

ROUTES = [
    Route(
        "network_diagnostics",
        [
            "the wifi keeps dropping",
            "I cannot reach the VPN",
            "ping to the server is very slow",
            "DNS does not resolve our intranet",
            "my ethernet cable is plugged in but there is no connection",
            "packet loss on the office network",
        ],
        description="Connectivity problems: wifi, VPN, DNS, latency.",
    ),
    Route(
        "cloud_integrations",
        [
            "connect our Salesforce account to the data warehouse",
            "the S3 bucket sync job failed",
            "set up a webhook from GitHub to Slack",
            "rotate the API key of the Azure integration",
            "the Google Drive connector stopped syncing",
        ],
        description="SaaS and cloud connectors, webhooks, API keys.",
    ),
    Route(
        "web_scraping",
        [
            "scrape the prices from this product page",
            "extract all links from a website",
            "the crawler gets blocked by a captcha",
            "download every table from these web pages",
            "parse the HTML of a competitor's catalogue",
        ],
        description="Collecting data from web pages.",
    ),
]

DOCUMENTS = [
    "Password resets: open https://selfservice.example.com, choose 'Forgot password' and follow the e-mail link. "
    "Resets take effect within five minutes.",
    "New laptops: every employee gets a new laptop every four years. Request one early through the IT portal "
    "if yours is broken.",
    "Printers: the printer on floor 3 is serviced every Monday morning. Report paper jams to facilities.",
    "Office hours of the IT desk: Monday to Friday, 8:00 to 18:00. Outside these hours call the on-call number.",
]


class ScriptedChatModel(GenericFakeChatModel):
    """A stand-in chat model: answers from a script and accepts ``bind_tools``."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self


def specialist(team: str) -> Any:
    def node(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(f"[{team}] A specialist picks up your request.")]}

    return node


def build(router: SemanticRouter | None = None, model: Any = None) -> Any:
    """The compiled help-desk graph."""
    if router is None:
        router = SemanticRouter(threshold=0.5)
        for route in ROUTES:
            router.add(route)
    documents = DocumentIndex(router=router)  # same encoder; in memory like the router
    documents.add(DOCUMENTS)
    if model is None:
        model = ScriptedChatModel(
            messages=iter(
                [AIMessage("From the help-desk notes: request a new laptop early through the IT portal.")]
                * 10
            )
        )
    edge = RouterNode(router, fallback="knowledge_base")
    graph = StateGraph(MessagesState)
    graph.add_node("triage", lambda state: {})
    for route in ROUTES:
        graph.add_node(route.name, specialist(route.name))
        graph.add_edge(route.name, END)
    graph.add_node("knowledge_base", create_rag_fallback(documents, model=model, k=2))
    graph.add_edge("knowledge_base", END)
    graph.add_edge(START, "triage")
    graph.add_conditional_edges("triage", edge, edge.path_map)
    return graph.compile()


QUESTIONS = [
    "the VPN drops every ten minutes",
    "our GitHub to Slack webhook stopped firing",
    "pull all product prices from this online shop",
    "my laptop is broken, can I get a new one?",
]


def main() -> list[AIMessage]:
    app = build()
    answers = []
    for question in QUESTIONS:
        out = app.invoke({"messages": [("user", question)]})
        answers.append(out["messages"][-1])
        print(f"> {question}\n  {answers[-1].content}")
    print(app.get_graph().draw_mermaid())
    return answers


if __name__ == "__main__":
    main()
