"""Former home of the ONNX protobuf writer: it lives in :mod:`synaptoroute_agents.index.onnxproto`.
The names stay importable from here."""

from __future__ import annotations

from .index.onnxproto import (
    FLOAT,
    INT8,
    INT64,
    UINT8,
    Message,
    assemble,
    ld,
    value_info,
    vi,
    with_graph_outputs,
)

__all__ = [
    "FLOAT",
    "INT8",
    "INT64",
    "UINT8",
    "Message",
    "assemble",
    "ld",
    "value_info",
    "vi",
    "with_graph_outputs",
]
