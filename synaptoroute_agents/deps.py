"""Optional dependencies: an import that fails with a message naming what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, install: str) -> ModuleType:
    """Import ``module`` or raise :class:`ImportError` telling which distribution provides it.

    Args:
        module: the module to import, for example ``"matplotlib.pyplot"``.
        install: what to ``pip install`` for it, for example ``"synaptoroute-agents[plots]"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{module!r} is needed here but is not installed; install it with: pip install {install!r}"
        ) from exc
