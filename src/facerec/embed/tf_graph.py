"""A minimal reader for TensorFlow frozen graphs (GraphDef protobufs).

It decodes the protobuf wire format by hand so that converting the CASIA FaceNet
needs neither TensorFlow nor the protobuf package. Only the fields a frozen
inference graph uses are read: node name, op, inputs and attributes, and the
constant tensors stored in ``Const`` nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# TensorFlow DataType enum values we understand -> numpy dtypes.
_TF_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 4: np.uint8, 10: np.bool_}


class GraphFormatError(ValueError):
    """The bytes are not a GraphDef this reader understands."""


@dataclass
class TFNode:
    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, object] = field(default_factory=dict)


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise GraphFormatError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview):
    """Yield (field_number, wire_type, value) for one protobuf message."""
    pos = 0
    n = len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 1:
            val, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            val, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            val, pos = buf[pos : pos + 4], pos + 4
        else:
            raise GraphFormatError(f"unsupported wire type {wire}")
        if pos > n:
            raise GraphFormatError("truncated message")
        yield num, wire, val


def _shape(buf: memoryview) -> list[int]:
    dims = []
    for num, _, val in _fields(buf):
        if num == 2:  # TensorShapeProto.dim
            size = 0
            for dnum, _, dval in _fields(val):
                if dnum == 1:
                    size = dval if dval < (1 << 63) else dval - (1 << 64)
            dims.append(size)
    return dims


def _tensor(buf: memoryview) -> np.ndarray:
    dtype, shape, content, floats, ints = None, [], None, [], []
    for num, wire, val in _fields(buf):
        if num == 1:
            dtype = _TF_DTYPES.get(val)
            if dtype is None:
                raise GraphFormatError(f"unsupported tensor dtype {val}")
        elif num == 2:
            shape = _shape(val)
        elif num == 4:
            content = bytes(val)
        elif num == 5:  # float_val, packed or not
            floats.extend(np.frombuffer(bytes(val), "<f4") if wire == 2 else np.frombuffer(bytes(val), "<f4"))
        elif num == 7:  # int_val
            if wire == 2:
                pos, sub = 0, val
                while pos < len(sub):
                    v, pos = _varint(sub, pos)
                    ints.append(v if v < (1 << 63) else v - (1 << 64))
            else:
                ints.append(val if val < (1 << 63) else val - (1 << 64))
    if dtype is None:
        raise GraphFormatError("tensor without dtype")
    count = int(np.prod(shape)) if shape else 1
    if content is not None:
        arr = np.frombuffer(content, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
    else:
        vals = floats if floats else ints
        arr = np.array(vals, dtype=dtype)
        if arr.size == 1 and count > 1:  # a splat constant
            arr = np.full(count, arr[0], dtype=dtype)
    return arr.reshape(shape) if shape else arr.reshape(())


def _attr_value(buf: memoryview) -> object:
    for num, _wire, val in _fields(buf):
        if num == 2:
            return bytes(val).decode("utf-8", "replace")  # s
        if num == 3:
            return val  # i
        if num == 4:
            return float(np.frombuffer(bytes(val), "<f4")[0])  # f
        if num == 5:
            return bool(val)  # b
        if num == 6:
            return ("dtype", val)  # type
        if num == 8:
            return _tensor(val)  # tensor
        if num == 1:  # list
            items: list = []
            for lnum, lwire, lval in _fields(val):
                if lnum == 3:  # ints
                    if lwire == 2:
                        pos = 0
                        while pos < len(lval):
                            v, pos = _varint(lval, pos)
                            items.append(v)
                    else:
                        items.append(lval)
                elif lnum == 2:
                    items.append(bytes(lval).decode("utf-8", "replace"))
            return items
    return None


def read_graph(data: bytes) -> dict[str, TFNode]:
    """Parse a frozen GraphDef; returns its nodes by name, in file order."""
    nodes: dict[str, TFNode] = {}
    for num, _, val in _fields(memoryview(data)):
        if num != 1:
            continue
        node = TFNode(name="", op="")
        for nnum, _, nval in _fields(val):
            if nnum == 1:
                node.name = bytes(nval).decode()
            elif nnum == 2:
                node.op = bytes(nval).decode()
            elif nnum == 3:
                node.inputs.append(bytes(nval).decode())
            elif nnum == 5:  # map<string, AttrValue> entry
                key, value = "", None
                for enum, _, evar in _fields(nval):
                    if enum == 1:
                        key = bytes(evar).decode()
                    elif enum == 2:
                        value = _attr_value(evar)
                node.attrs[key] = value
        if not node.name or not node.op:
            raise GraphFormatError("node without name or op")
        nodes[node.name] = node
    if not nodes:
        raise GraphFormatError("no nodes found")
    return nodes
