"""Just enough of the ONNX protobuf wire format to write small graphs and to expose tensors.

ONNX models are protobuf messages with a stable schema, so a few varint and length-delimited
helpers replace the ``onnx`` package at run time (it is large and not needed for inference).
"""

from __future__ import annotations

__all__ = ["FLOAT", "INT8", "INT64", "UINT8", "ld", "value_info", "vi", "with_graph_outputs"]

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
