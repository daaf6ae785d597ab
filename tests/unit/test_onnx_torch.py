"""The small ONNX-to-PyTorch runner (YuNet's GPU path) on tiny graphs made here: it computes what
ONNX Runtime computes, frees the batch, and refuses what it cannot follow, naming the node."""

import numpy as np
import pytest

from facerec.errors import WeightsError
from facerec.runtime.onnx_torch import convert, load_module

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def graph(nodes, inits, out_shape=(1, -1, 4)):
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "b"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        numpy_helper.from_array(np.array([], np.float32), "roi"),
        numpy_helper.from_array(np.array(out_shape, np.int64), "shape"),
        *inits,
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        weights,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)])


SUPPORTED = [
    helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
    helper.make_node("Relu", ["c"], ["r"]),
    helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node(
        "Resize",
        ["m", "roi", "scales"],
        ["u"],
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    ),
    helper.make_node("Add", ["u", "r"], ["a"]),
    helper.make_node("Sigmoid", ["a"], ["s"]),
    helper.make_node("Transpose", ["s"], ["t"], perm=[0, 2, 3, 1]),
    helper.make_node("Reshape", ["t", "shape"], ["y"]),
]


def test_the_runner_computes_what_onnx_runtime_does_for_any_batch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = graph(SUPPORTED, [])
    onnx.save(model, tmp_path / "g.onnx")
    (tmp_path / "g.npz").write_bytes(convert(tmp_path / "g.onnx"))
    net = load_module(tmp_path / "g.npz")
    x = np.random.default_rng(1).uniform(0, 255, (3, 3, 8, 8)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    want = np.concatenate([session.run(None, {"x": x[i : i + 1]})[0] for i in range(3)])
    with torch.no_grad():
        got = net(torch.from_numpy(x))["y"].numpy()
    assert got.shape == (3, 16, 4)  # the graph fixed the batch at 1; three images went through at once
    assert np.abs(got - want).max() < 1e-5


def test_what_the_runner_cannot_follow_is_refused_by_name(tmp_path):
    unknown = graph([helper.make_node("Softmax", ["x"], ["y"], name="head_softmax")], [])
    onnx.save(unknown, tmp_path / "u.onnx")
    with pytest.raises(WeightsError, match="head_softmax.*Softmax"):
        convert(tmp_path / "u.onnx")
    linear = graph([helper.make_node("Resize", ["x", "roi", "scales"], ["y"], mode="linear", name="up")], [])
    onnx.save(linear, tmp_path / "l.onnx")
    with pytest.raises(WeightsError, match="up .Resize.*nearest"):
        convert(tmp_path / "l.onnx")
    # a Constant node (a tensor-valued attribute) is refused by name too, not by a TypeError
    const = graph([helper.make_node("Constant", [], ["y"], value=numpy_helper.from_array(np.ones(2, np.float32)))], [])
    onnx.save(const, tmp_path / "c.onnx")
    with pytest.raises(WeightsError, match="Constant"):
        convert(tmp_path / "c.onnx")


def test_a_damaged_conversion_or_graph_says_so(tmp_path):
    bad = tmp_path / "g.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match="g.npz: not a converted graph.*delete it"):
        load_module(bad)
    (tmp_path / "g.onnx").write_bytes(b"not a graph")
    with pytest.raises(WeightsError, match="g.onnx: not an ONNX graph"):
        convert(tmp_path / "g.onnx")
