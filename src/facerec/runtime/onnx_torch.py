"""A small ONNX graph run by PyTorch: the few operators a convolutional detector like YuNet uses,
so that it runs batched on a GPU (this project's ONNX Runtime is the CPU build).

A graph is first *converted* (:func:`convert`, needs the ``onnx`` package): its nodes become a JSON
list and its weights numpy arrays, saved together in one ``.npz`` (no pickles) that
:class:`GraphModule` loads without ``onnx``. An operator outside :data:`OPERATORS`, or one used
with attributes this runner does not follow, is refused at conversion with its name.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from facerec.errors import WeightsError

GRAPH_KEY = "__graph__"  # the npz entry holding the nodes, as UTF-8 JSON bytes
OPERATORS = ("Conv", "Relu", "Sigmoid", "MaxPool", "Resize", "Add", "Transpose", "Reshape")


def _attributes(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else (list(v) if not isinstance(v, int | float) else v)
    return out


def _check(node, attrs: dict, constants: dict) -> None:
    """Refuse what :class:`GraphModule` would run differently from ONNX."""
    problem = None
    if node.op_type in ("Conv", "MaxPool"):
        pads = attrs.get("pads", [0, 0, 0, 0])
        if pads[:2] != pads[2:] or attrs.get("auto_pad", "NOTSET") != "NOTSET" or attrs.get("ceil_mode", 0):
            problem = f"padding {pads} / auto_pad / ceil_mode"
    elif node.op_type == "Resize":
        scales = constants.get(node.input[2]) if len(node.input) > 2 else None
        if (
            attrs.get("mode") != "nearest"
            or attrs.get("coordinate_transformation_mode") != "asymmetric"
            or attrs.get("nearest_mode") != "floor"
            or scales is None
            or list(scales[:2]) != [1, 1]
        ):
            problem = "only nearest (asymmetric, floor) resizing by constant scales"
    elif node.op_type == "Reshape" and node.input[1] not in constants:
        problem = "a shape that is not a constant"
    if problem:
        _refuse(node, problem)


def _refuse(node, problem: str):
    raise WeightsError(f"cannot run ONNX node {node.name or node.op_type} ({node.op_type}) in PyTorch: {problem}")


def convert(onnx_path: Path) -> bytes:
    """The graph at ``onnx_path`` as an ``.npz`` file's bytes: nodes (JSON) and weights (arrays)."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:
        raise WeightsError(f"{onnx_path}: not an ONNX graph onnx can read ({exc})") from None
    constants = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes, host_values = [], set()
    for node in model.graph.node:
        if node.op_type not in OPERATORS:
            _refuse(node, "an operator this runner lacks")
        attrs = _attributes(node)
        _check(node, attrs, constants)
        nodes.append({"op": node.op_type, "inputs": list(node.input), "outputs": list(node.output), "attrs": attrs})
        if node.op_type in ("Resize", "Reshape"):  # sizes and scales, read on the host
            host_values.update(node.input[1:])
    keys = {name: f"w{i}" for i, name in enumerate(constants)}
    graph = {
        "input": model.graph.input[0].name,
        "outputs": [o.name for o in model.graph.output],
        "nodes": nodes,
        "tensors": {name: keys[name] for name in constants if name not in host_values},
        "host": {name: keys[name] for name in constants if name in host_values},
    }
    buf = io.BytesIO()
    np.savez(
        buf,
        **{keys[name]: value for name, value in constants.items()},
        **{GRAPH_KEY: np.frombuffer(json.dumps(graph).encode(), np.uint8)},
    )
    return buf.getvalue()


def _torch_module_class():
    import torch
    import torch.nn.functional as F

    class GraphModule(torch.nn.Module):
        """Runs a converted graph; ``forward(x)`` -> {output name: tensor}. The first dimension of
        every tensor is the batch, of any size (published detectors often fix it to 1)."""

        def __init__(self, source: Path | bytes):
            super().__init__()
            label = "the converted graph made in memory" if isinstance(source, bytes) else str(source)
            try:
                with np.load(io.BytesIO(source) if isinstance(source, bytes) else source, allow_pickle=False) as data:
                    graph = json.loads(bytes(data[GRAPH_KEY]).decode())
                    tensors = {name: data[key] for name, key in graph["tensors"].items()}
                    self.host = {name: data[key] for name, key in graph["host"].items()}
            except Exception as exc:
                raise WeightsError(f"{label}: not a converted graph ({exc}); delete it to convert again") from None
            self.graph = graph
            # each node's inputs that no later node reads: dropped as soon as it has run, so that a
            # large batch holds a few layers' activations at a time, not the whole network's
            last_use = {}
            for i, node in enumerate(graph["nodes"]):
                for name in node["inputs"]:
                    last_use[name] = i
            kept = set(graph["outputs"])
            self._done_with = [
                [n for n in set(node["inputs"]) if last_use.get(n) == i and n not in kept]
                for i, node in enumerate(graph["nodes"])
            ]
            self.tensors = torch.nn.ParameterList(
                torch.nn.Parameter(torch.from_numpy(v.copy()), requires_grad=False) for v in tensors.values()
            )
            self._index = {name: i for i, name in enumerate(tensors)}

        def _value(self, env, name):
            if name in env:
                return env[name]
            return self.tensors[self._index[name]]

        def forward(self, x):
            env = {self.graph["input"]: x}
            for node, done in zip(self.graph["nodes"], self._done_with):
                op, a, ins = node["op"], node["attrs"], node["inputs"]
                if op == "Conv":
                    w = self._value(env, ins[1])
                    b = self._value(env, ins[2]) if len(ins) > 2 and ins[2] else None
                    pads = a.get("pads", [0, 0, 0, 0])
                    y = F.conv2d(
                        env[ins[0]],
                        w,
                        b,
                        stride=tuple(a.get("strides", [1, 1])),
                        padding=tuple(pads[:2]),
                        dilation=tuple(a.get("dilations", [1, 1])),
                        groups=a.get("group", 1),
                    )
                elif op == "Relu":
                    y = F.relu(env[ins[0]])
                elif op == "Sigmoid":
                    y = torch.sigmoid(env[ins[0]])
                elif op == "MaxPool":
                    pads = a.get("pads", [0, 0, 0, 0])
                    y = F.max_pool2d(
                        env[ins[0]], tuple(a["kernel_shape"]), tuple(a.get("strides", [1, 1])), tuple(pads[:2])
                    )
                elif op == "Resize":
                    scales = self.host[ins[2]]
                    # nearest, asymmetric, floor: what F.interpolate's "nearest" computes
                    y = F.interpolate(env[ins[0]], scale_factor=tuple(float(s) for s in scales[2:]), mode="nearest")
                elif op == "Add":
                    y = self._value(env, ins[0]) + self._value(env, ins[1])
                elif op == "Transpose":
                    y = env[ins[0]].permute(*a["perm"])
                else:  # Reshape; 0 copies the input's dimension (ONNX's default, allowzero=0)
                    src = env[ins[0]]
                    shape = [int(s) for s in self.host[ins[1]]]
                    shape[0] = 0  # the first dimension is the batch, whatever the graph fixed it to
                    y = src.reshape(*[src.shape[i] if s == 0 else s for i, s in enumerate(shape)])
                env[node["outputs"][0]] = y
                for name in done:
                    env.pop(name, None)
            return {name: env[name] for name in self.graph["outputs"]}

    return GraphModule


def load_module(source: Path | bytes, device: str = "cpu"):
    """A converted graph (its file, or the bytes :func:`convert` gave) as a torch module on
    ``device``, in eval mode."""
    return _torch_module_class()(source if isinstance(source, bytes) else Path(source)).to(device).eval()
