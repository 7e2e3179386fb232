"""Just enough of the ONNX protobuf wire format to write small graphs and to expose tensors.

ONNX models are protobuf messages with a stable schema, so a few varint and length-delimited
helpers replace the ``onnx`` package at run time (it is large and not needed for inference; the
measurement behind that choice is ``benchmarks/hand_written.py``). The lower half writes the
parts of a graph (nodes, attributes, initializers, external data, the model around them) that
the screen and the float32 scan are made of.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = [
    "FLOAT",
    "INT8",
    "ExternalData",
    "attr_int",
    "attr_ints",
    "model",
    "node",
    "tensor",
    "INT64",
    "UINT8",
    "Message",
    "assemble",
    "ld",
    "value_info",
    "vi",
    "with_graph_outputs",
]

# ONNX TensorProto.DataType
FLOAT, UINT8, INT8, INT64 = 1, 2, 3, 7


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or malformed protobuf varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _key(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def vi(field: int, n: int) -> bytes:
    """A varint field."""
    return _key(field, 0) + _varint(n)


def ld(field: int, payload: bytes | str) -> bytes:
    """A length-delimited field (bytes, string or embedded message)."""
    data = payload.encode() if isinstance(payload, str) else payload
    return _key(field, 2) + _varint(len(data)) + data


class Message:
    """A length-delimited field whose payload is assembled later (see :func:`assemble`).

    Parts are ``bytes``, NumPy arrays (their raw bytes) or nested messages. Large tensors stay
    NumPy arrays until :func:`assemble` copies each once into the final buffer: building a model
    of many megabytes by concatenating ``bytes`` copies it at every level, holding the GIL all the
    while (other threads of the process stall).
    """

    def __init__(self, field: int, parts: list[Any]) -> None:
        self.parts = parts
        self.payload = sum(_size(p) for p in parts)
        self.header = _key(field, 2) + _varint(self.payload)


def _size(part: Any) -> int:
    if isinstance(part, Message):
        return len(part.header) + part.payload
    if isinstance(part, np.ndarray):
        return int(part.nbytes)
    return len(part)


def _write(parts: list[Any], buf: np.ndarray, pos: int) -> int:
    for part in parts:
        if isinstance(part, Message):
            pos = _write([part.header, *part.parts], buf, pos)
        elif isinstance(part, np.ndarray):
            n = int(part.nbytes)
            buf[pos : pos + n] = np.ascontiguousarray(part).reshape(-1).view(np.uint8)  # no GIL held
            pos += n
        else:
            buf[pos : pos + len(part)] = np.frombuffer(part, dtype=np.uint8)
            pos += len(part)
    return pos


def assemble(parts: list[Any]) -> bytes:
    """The bytes of ``parts`` (see :class:`Message`), each large array copied once."""
    buf = np.empty(sum(_size(p) for p in parts), dtype=np.uint8)
    end = _write(parts, buf, 0)
    assert end == len(buf)
    return buf.tobytes()


def value_info(name: str, dtype: int, dims: list[int | str]) -> bytes:
    """ValueInfoProto{name=1, type=2: TypeProto{tensor_type=1: {elem_type=1, shape=2}}}."""
    shape = b"".join(ld(1, vi(1, d) if isinstance(d, int) else ld(2, d)) for d in dims)
    return ld(1, name) + ld(2, ld(1, vi(1, dtype) + ld(2, shape)))


def with_graph_outputs(model: bytes, outputs: list[tuple[str, int, list[int | str]]]) -> bytes:
    """Return ``model`` (a serialized ModelProto) with more graph outputs.

    Each output is ``(tensor name, element type, dims)``: an intermediate tensor of the graph
    becomes something a session can return. Nothing else in the model changes.
    """
    extra = b"".join(
        ld(12, value_info(name, dtype, dims)) for name, dtype, dims in outputs
    )  # GraphProto.output
    view = memoryview(model)
    pieces: list[bytes | memoryview] = []  # slices of the model, joined (copied) once at the end
    pos = 0
    found = False
    while pos < len(model):
        start = pos
        key, pos = _read_varint(model, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _read_varint(model, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, body_at = _read_varint(model, pos)
            pos = body_at + length
            if pos > len(model):
                raise ValueError("truncated protobuf field")
            if field == 7:  # ModelProto.graph: append to the embedded message
                pieces += [_key(7, 2) + _varint(length + len(extra)), view[body_at:pos], extra]
                found = True
                continue
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        pieces.append(view[start:pos])
    if not found:
        raise ValueError("the model has no graph")
    return b"".join(pieces)


# --------------------------------------------------------------------------- graph parts
class ExternalData:
    """Large initializers written to one file beside the model (ONNX external data).

    The model's protobuf then holds only the graph, and onnxruntime reads the rows from the file
    while it builds the session. Given the rows inside the protobuf instead, it parses all of them
    while holding the GIL: at 250k rows that stalled every other thread of the process (queries
    among them) for about a quarter of a second.
    """

    def __init__(self, path: str) -> None:
        self.location = os.path.basename(path)
        self._file = open(path, "wb")  # noqa: SIM115 - closed by __exit__

    def __enter__(self) -> ExternalData:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def add(self, data: np.ndarray) -> bytes:
        """Write ``data`` (page-aligned) and return the TensorProto fields that point at it:
        external_data=13 (StringStringEntryProto key=1, value=2), data_location=14 (EXTERNAL)."""
        offset = -(-self._file.tell() // 4096) * 4096
        self._file.seek(offset)
        self._file.write(np.ascontiguousarray(data).reshape(-1).view(np.uint8).data)
        entries = (("location", self.location), ("offset", str(offset)), ("length", str(data.nbytes)))
        return b"".join(ld(13, ld(1, k) + ld(2, v)) for k, v in entries) + vi(14, 1)


def tensor(
    name: str,
    dtype: int,
    dims: list[int],
    raw: bytes | np.ndarray,
    external: ExternalData | None = None,
) -> Message:
    """An initializer (graph field 5): TensorProto dims=1, data_type=2, name=8, raw_data=9.

    ``raw`` is the little-endian data, as bytes or as a contiguous array (copied only once, when
    the model is assembled); with ``external``, an array is written to that file instead."""
    head = b"".join(vi(1, d) for d in dims) + vi(2, dtype) + ld(8, name)
    if external is not None and isinstance(raw, np.ndarray):
        return Message(5, [head + external.add(raw)])
    return Message(5, [head, Message(9, [raw])])


def attr_int(name: str, value: int) -> bytes:
    """AttributeProto: name=1, i=3, type=20 (INT=2)."""
    return ld(1, name) + vi(3, value) + vi(20, 2)


def attr_ints(name: str, values: list[int]) -> bytes:
    """AttributeProto: name=1, ints=8, type=20 (INTS=7)."""
    return ld(1, name) + b"".join(vi(8, v) for v in values) + vi(20, 7)


def node(op: str, inputs: list[str], outputs: list[str], *attrs: bytes, domain: str = "") -> bytes:
    """NodeProto: input=1, output=2, op_type=4, attribute=5, domain=7."""
    body = b"".join(ld(1, i) for i in inputs) + b"".join(ld(2, o) for o in outputs) + ld(4, op)
    body += b"".join(ld(5, a) for a in attrs)
    if domain:
        body += ld(7, domain)
    return body


def model(
    name: str,
    nodes: list[bytes],
    inputs: list[bytes],
    outputs: list[bytes],
    inits: list[Message] | None = None,
) -> bytes:
    """ModelProto (ir_version=1, producer_name=2, graph=7, opset_import=8) around GraphProto
    (node=1, name=2, initializer=5, input=11, output=12); ``inputs`` and ``outputs`` are
    ValueInfoProtos. Initializers are copied once, without holding the GIL (see
    :func:`assemble`): the screen of a new base is built in a background thread while the
    router keeps answering."""
    graph: list[Any] = [b"".join(ld(1, n) for n in nodes) + ld(2, name), *(inits or [])]
    graph.append(b"".join(ld(11, i) for i in inputs) + b"".join(ld(12, o) for o in outputs))
    opsets = ld(8, ld(1, "") + vi(2, 13)) + ld(8, ld(1, "com.microsoft") + vi(2, 1))
    return assemble([vi(1, 7) + ld(2, "synaptoroute-agents"), Message(7, graph), opsets])
