"""ToolSelector: pick the few tools that fit a request out of many, one route per tool.

The engine-level tool selection the framework integrations share (LangGraph's tool node, the
LangChain middleware, the LlamaIndex tool retriever). Routes are seeded from the tools with
:func:`~synaptoroute_agents.seeding.seed_route`; no framework is imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .encoders.base import Encoder
from .errors import InvalidInputError, InvalidTypeError, RouteNotFoundError
from .router import SemanticRouter
from .routes import Route, RouteMatch, validate_positive_int, validate_threshold
from .seeding.seed import seed_route

__all__ = ["ToolSelector"]


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
        self.k = validate_positive_int(k, "k")
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
        k = self.k if k is None else validate_positive_int(k, "k")
        return self.router.route(query, top_k=k)

    async def amatch(self, query: str, k: int | None = None) -> RouteMatch:
        """Async twin of :meth:`match` (the encoder runs in a worker thread)."""
        k = self.k if k is None else validate_positive_int(k, "k")
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
        k = self.k if k is None else validate_positive_int(k, "k")
        return self._pick(self.match(query, k), k)

    async def aselect(self, query: str, k: int | None = None) -> list[str]:
        """Async twin of :meth:`select`; never blocks the event loop."""
        k = self.k if k is None else validate_positive_int(k, "k")
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
