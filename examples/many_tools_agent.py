"""An agent with 300 tools: each turn binds only the 5 that fit the request (ToolInjector).

The tools are described in plain words; ``ToolInjector`` seeds one route per tool from its name,
description and argument descriptions, selects at most ``k`` per turn on the local CPU (no tokens
spent on 300 tool schemas), and refuses calls to tools that were not selected.

Runs offline with a scripted chat model that calls the first tool it is given; swap in any
LangChain chat model with ``bind_tools`` to use a real LLM.

    uv run python examples/many_tools_agent.py
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import StructuredTool
from langgraph_synaptoroute import ToolInjector, create_routed_agent

SERVICES = {
    "github": ("GitHub", "repository"),
    "gitlab": ("GitLab", "project"),
    "jira": ("Jira", "issue"),
    "slack": ("Slack", "channel"),
    "teams": ("Microsoft Teams", "team chat"),
    "zoom": ("Zoom", "meeting"),
    "calendar": ("the shared calendar", "event"),
    "email": ("the mail server", "mailbox"),
    "vpn": ("the VPN gateway", "VPN user"),
    "dns": ("the DNS service", "DNS record"),
    "firewall": ("the firewall", "firewall rule"),
    "kubernetes": ("the Kubernetes cluster", "deployment"),
    "docker": ("the Docker registry", "container image"),
    "postgres": ("the PostgreSQL database", "database"),
    "redis": ("the Redis cache", "cache key"),
    "s3": ("Amazon S3", "bucket"),
    "backup": ("the backup system", "backup job"),
    "printer": ("the office printers", "print queue"),
    "laptop": ("the laptop fleet", "laptop"),
    "phone": ("the company phones", "phone line"),
    "wifi": ("the office wifi", "access point"),
    "crm": ("the CRM", "customer account"),
    "billing": ("the billing system", "invoice"),
    "payroll": ("payroll", "payslip"),
    "hr": ("the HR system", "employee record"),
    "wiki": ("the internal wiki", "wiki page"),
    "monitoring": ("the monitoring system", "alert"),
    "ssl": ("the certificate store", "TLS certificate"),
    "sso": ("single sign-on", "user login"),
    "analytics": ("the analytics dashboards", "report"),
}
ACTIONS = {
    "list": "List every {obj} in {svc}.",
    "create": "Create a new {obj} in {svc}.",
    "delete": "Permanently delete a {obj} from {svc}.",
    "status": "Show the health and current status of a {obj} in {svc}.",
    "restart": "Restart or reboot a {obj} in {svc} that is stuck or not responding.",
    "grant": "Give a person access or permissions to a {obj} in {svc}.",
    "revoke": "Remove a person's access to a {obj} in {svc}.",
    "search": "Search {svc} for a {obj} by keyword.",
    "export": "Export the data of a {obj} from {svc} as a CSV file.",
    "logs": "Read the recent logs and error messages of a {obj} in {svc}.",
}


def make_tools() -> list[StructuredTool]:
    """300 tools: 10 actions on 30 services."""
    tools = []
    for key, (svc, obj) in SERVICES.items():
        for action, template in ACTIONS.items():
            name = f"{action}_{key}"

            def run(target: str, _name: str = name) -> str:
                return f"{_name} done for {target!r}"

            description = template.format(obj=obj, svc=svc) + f"\n\nArgs:\n    target: the {obj} to act on."
            tools.append(StructuredTool.from_function(run, name=name, description=description))
    return tools


class ToolCallingFakeModel(GenericFakeChatModel):
    """A stand-in chat model: calls the first tool it was bound to, then reports the tool's result."""

    bound: list[str] = []

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ToolCallingFakeModel:
        return self.model_copy(update={"bound": [t.name for t in tools]})

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            reply = AIMessage(f"Done: {last.content}")
        elif self.bound:
            call = {
                "name": self.bound[0],
                "args": {"target": str(last.content)},
                "id": f"call_{len(messages)}",
            }
            reply = AIMessage("", tool_calls=[call])
        else:
            reply = AIMessage("I have no tool for that.")
        return ChatResult(generations=[ChatGeneration(message=reply)])


REQUESTS = [
    "the staging deployment on kubernetes is stuck, please reboot it",
    "give Maria access to the payroll payslips",
    "which TLS certificates do we have?",
]


def main() -> list[dict[str, Any]]:
    tools = make_tools()
    injector = ToolInjector(tools, k=5)
    agent = create_routed_agent(ToolCallingFakeModel(messages=iter([])), injector)
    results = []
    for request in REQUESTS:
        out = agent.invoke({"messages": [("user", request)]})
        ran = [m.name for m in out["messages"] if isinstance(m, ToolMessage)]
        results.append({"request": request, "selected": out["selected_tools"], "ran": ran})
        print(
            f"> {request}\n  bound {len(out['selected_tools'])} of {len(tools)} tools: {out['selected_tools']}"
        )
        print(f"  {out['messages'][-1].content}")
    return results


if __name__ == "__main__":
    main()
