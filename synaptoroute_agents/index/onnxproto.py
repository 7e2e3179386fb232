"""Just enough of the ONNX protobuf wire format to write small graphs and to expose tensors.

ONNX models are protobuf messages with a stable schema, so a few varint and length-delimited
helpers replace the ``onnx`` package at run time (it is large and not needed for inference).
"""

from __future__ import annotations

from typing import Any

import numpy as np

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
    out = bytearray()
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
                out += ld(7, model[body_at:pos] + extra)
                found = True
                continue
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out += model[start:pos]
    if not found:
        raise ValueError("the model has no graph")
    return bytes(out)
