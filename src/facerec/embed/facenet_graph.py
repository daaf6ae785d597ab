"""FaceNet's ONNX graph built from a facenet-pytorch state dict with ``onnx.helper``, without torch.

The graph is the one FaceNet runs through ONNX Runtime on a CPU: float (n, 3, S, S) crops 0..255 in
(``crops``), FaceNet's fixed standardisation ((x - 127.5) / 128), InceptionResnetV1 with every batch
norm folded into the layer before it (in float64, as :mod:`.fold` folds PyTorch's module), L2-normalised
(n, 512) rows out (``embedding``).

Its nodes and tensors are named as PyTorch's TorchScript exporter named them in the graph facerec
exported before (``/net/repeat_1/repeat_1.0/branch1/branch1.0/conv/Conv_output_0``...): the shipped
int8 activation ranges are keyed by those names. Only the end differs: a Flatten where the exporter
wrote ``x.view(n, -1)`` as five shape nodes, and one L2 normalisation where it wrote two
(facenet-pytorch's and the wrapper's, the second a no-op to float rounding).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from facerec.embed.inception_resnet_v1 import BN_EPS, pair, walk

INPUT, OUTPUT = "crops", "embedding"
OPSET = 17
IR_VERSION = 8  # what the exporter wrote: ONNX Runtime builds as old as 1.10 read it
MEAN, STD = 127.5, 128.0  # FaceNet's fixed standardisation, as trained


def fold(weight: np.ndarray, bias: np.ndarray | None, bn: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``weight`` and ``bias`` (None: none) of a layer followed by the eval-mode batch norm ``bn``
    (its ``weight``, ``bias``, ``running_mean``, ``running_var``), merged into one layer: computed in
    float64 and rounded once to float32, as :func:`.fold.fold_batchnorm` does in PyTorch."""
    f64 = np.float64
    scale = np.asarray(bn["weight"], f64) / np.sqrt(np.asarray(bn["running_var"], f64) + BN_EPS)
    b = np.zeros_like(scale) if bias is None else np.asarray(bias, f64)
    w = np.asarray(weight, f64) * scale.reshape(-1, *([1] * (np.ndim(weight) - 1)))
    b = (b - np.asarray(bn["running_mean"], f64)) * scale + np.asarray(bn["bias"], f64)
    return w.astype(np.float32), b.astype(np.float32)


def _scope(path: str) -> str:
    """A module path as the exporter scoped its nodes: ``repeat_1.0.branch1.0.conv`` ->
    ``/net/repeat_1/repeat_1.0/branch1/branch1.0/conv`` (a Sequential's child keeps its parent's name)."""
    parts: list[str] = []
    for part in path.split("."):
        parts.append(f"{parts[-1]}.{part}" if part.isdigit() else part)
    return "/net/" + "/".join(parts)


class _Graph:
    """Reads the architecture (:func:`.inception_resnet_v1.walk`) as ONNX nodes; ``x`` is a tensor's name."""

    def __init__(self, state: Mapping[str, np.ndarray]):
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        self.state = state
        self.nodes: list = []
        self.initializers: list = []
        self._taken: dict[str, int] = {}

    def node(self, scope: str, op: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        """Adds ``op`` under ``scope``, named as the exporter names it (``{scope}/{op}``, then ``_1``,
        ``_2``... for the same op again in the same scope); returns its output's name."""
        base = f"{scope}/{op}"
        count = self._taken.get(base, 0)
        self._taken[base] = count + 1
        name = base if count == 0 else f"{base}_{count}"
        output = output or f"{name}_output_0"
        self.nodes.append(self._helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def constant(self, scope: str, value: float) -> str:
        tensor = self._numpy_helper.from_array(np.array(value, np.float32))
        return self.node(scope, "Constant", [], value=tensor)

    def weight(self, name: str, value: np.ndarray) -> str:
        """An initializer named as the exporter named the wrapped module's parameters (``net.``...)."""
        name = f"net.{name}"
        self.initializers.append(self._numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name))
        return name

    def _conv(self, scope: str, x: str, weight: str, bias: str, kernel, stride, padding) -> str:
        ph, pw = pair(padding)
        return self.node(
            scope,
            "Conv",
            [x, weight, bias],
            dilations=[1, 1],
            group=1,
            kernel_shape=list(pair(kernel)),
            pads=[ph, pw, ph, pw],
            strides=list(pair(stride)),
        )

    def basic(self, at, x, cin, cout, kernel, stride=1, padding=0):
        bn = {k: self.state[f"{at}.bn.{k}"] for k in ("weight", "bias", "running_mean", "running_var")}
        w, b = fold(self.state[f"{at}.conv.weight"], None, bn)
        weight, bias = self.weight(f"{at}.conv.weight", w), self.weight(f"{at}.conv.bias", b)
        y = self._conv(f"{_scope(at)}/conv", x, weight, bias, kernel, stride, padding)
        return self.node(f"{_scope(at)}/relu", "Relu", [y])

    def maxpool(self, at, x):
        return self.node(
            _scope(at),
            "MaxPool",
            [x],
            ceil_mode=0,
            dilations=[1, 1],
            kernel_shape=[3, 3],
            pads=[0, 0, 0, 0],
            strides=[2, 2],
        )

    def concat(self, at, xs):
        return self.node(_scope(at), "Concat", xs, axis=1)

    def residual(self, at, x, joined, cin, cout, scale, relu):
        weight = self.weight(f"{at}.conv2d.weight", self.state[f"{at}.conv2d.weight"])
        bias = self.weight(f"{at}.conv2d.bias", self.state[f"{at}.conv2d.bias"])
        y = self._conv(f"{_scope(at)}/conv2d", joined, weight, bias, 1, 1, 0)
        y = self.node(_scope(at), "Mul", [y, self.constant(_scope(at), scale)])
        y = self.node(_scope(at), "Add", [y, x])
        return self.node(f"{_scope(at)}/relu", "Relu", [y]) if relu else y

    def head(self, x, cin, cout):
        bn = {k: self.state[f"last_bn.{k}"] for k in ("weight", "bias", "running_mean", "running_var")}
        w, b = fold(self.state["last_linear.weight"], None, bn)
        y = self.node("/net/avgpool_1a", "GlobalAveragePool", [x])
        y = self.node("/net", "Flatten", [y], axis=1)
        y = self.node(
            "/net/last_linear",
            "Gemm",
            [y, self.weight("last_linear.weight", w), self.weight("last_linear.bias", b)],
            alpha=1.0,
            beta=1.0,
            transB=1,
        )
        # F.normalize: x / max(|x|, 1e-12)
        norm = self.node("", "ReduceL2", [y], axes=[1], keepdims=1)
        norm = self.node("", "Clip", [norm, self.constant("", 1e-12), ""])
        return self.node("", "Div", [y, norm], output=OUTPUT)


def build_graph(state: Mapping[str, np.ndarray], input_size: int = 160):
    """The ``onnx.ModelProto`` of FaceNet with the weights ``state`` (facenet-pytorch's names, batch
    norms unfolded; numpy arrays or anything ``np.asarray`` reads)."""
    from onnx import TensorProto, checker, helper

    graph = _Graph({k: np.asarray(v) for k, v in state.items()})
    x = graph.node("", "Sub", [INPUT, graph.constant("", MEAN)])
    x = graph.node("", "Div", [x, graph.constant("", STD)])
    y = walk(graph, x)
    crops = helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["n", 3, input_size, input_size])
    out = helper.make_tensor_value_info(y, TensorProto.FLOAT, ["n", graph.state["last_linear.weight"].shape[0]])
    model = helper.make_model(
        helper.make_graph(graph.nodes, "facenet", [crops], [out], graph.initializers),
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="facerec",
    )
    checker.check_model(model)
    return model
