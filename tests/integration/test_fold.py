"""Batch-norm folding: the folded network computes the same function, and its weights still load
into an unfolded facenet-pytorch InceptionResnetV1. (An integration test: it builds the whole
network several times, about a minute on 2 cores.)"""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("facenet_pytorch")

from facenet_pytorch import InceptionResnetV1  # noqa: E402

from facerec.embed.fold import fold_batchnorm, unfolded_state  # noqa: E402


@pytest.fixture(scope="module")
def network():
    """Random weights with non-trivial BN statistics (identity BNs would hide a wrong fold)."""
    torch.manual_seed(0)
    net = InceptionResnetV1().eval()
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return net


def test_folding_keeps_the_function_and_removes_every_bn(network):
    folded = fold_batchnorm(copy.deepcopy(network))
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in folded.modules())
    x = torch.randn(3, 3, 160, 160)
    with torch.inference_mode():
        want, got = network(x), folded(x)
    # outputs are unit vectors: 1e-5 is far below what changes a nearest neighbour
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_unfolded_state_loads_into_the_original_layout(network):
    folded = fold_batchnorm(copy.deepcopy(network))
    state = unfolded_state(folded)
    assert set(state) == set(network.state_dict())
    original = InceptionResnetV1().eval()
    original.load_state_dict(state)  # strict: every key, every shape
    x = torch.randn(2, 3, 160, 160)
    with torch.inference_mode():
        torch.testing.assert_close(original(x), network(x), atol=1e-5, rtol=0)


def test_training_mode_is_refused():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(InceptionResnetV1().train())


def test_unfolded_state_of_a_bf16_model_keeps_its_function(network):
    """The identity batch norms are written in float32: in bf16, 1 - eps rounds to 1."""
    folded = fold_batchnorm(copy.deepcopy(network)).to(torch.bfloat16)
    original = InceptionResnetV1().eval()
    original.load_state_dict(unfolded_state(folded))
    x = torch.randn(2, 3, 160, 160)
    with torch.inference_mode():
        torch.testing.assert_close(original(x), folded.float()(x), atol=1e-5, rtol=0)


def test_fused_cpu_network_keeps_the_function_and_the_state(network):
    """The oneDNN-fused network (each conv with its ReLU, each block's residual sum) computes the
    folded network's embeddings, shares its state dict, and leaves it untouched."""
    from facerec.embed.onednn import fuse_for_cpu

    folded = fold_batchnorm(copy.deepcopy(network)).to(memory_format=torch.channels_last)
    before = {k: v.clone() for k, v in folded.state_dict().items()}
    fused = fuse_for_cpu(folded)
    if fused is None:
        pytest.skip("this PyTorch has no oneDNN pointwise convolution")
    assert fused.state_dict().keys() == folded.state_dict().keys()
    assert all(torch.equal(v, before[k]) for k, v in folded.state_dict().items())
    assert any(type(m).__name__ == "BasicConv2d" for m in folded.modules())  # not replaced in place
    for n in (1, 5):
        x = torch.randn(n, 3, 160, 160).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            torch.testing.assert_close(fused(x), folded(x), atol=1e-5, rtol=0)


def test_an_unfolded_network_is_not_fused(network):
    from facerec.embed.onednn import fuse_for_cpu

    assert fuse_for_cpu(copy.deepcopy(network)) is None  # its BNs sit between conv and ReLU


def test_the_graph_built_without_torch_is_the_folded_network(network):
    """facenet_graph folds in NumPy what fold_batchnorm folds in PyTorch, with real batch-norm
    statistics here (CASIA's are identities): the same embeddings, the same folded weights, and
    every tensor named as PyTorch's exporter names it (the int8 ranges' keys)."""
    pytest.importorskip("onnxruntime")
    from onnx import numpy_helper

    from facerec.embed.facenet_graph import build_graph
    from facerec.embed.inception_resnet_v1 import parameter_shapes
    from facerec.runtime.onnx_runner import OnnxRunner

    assert {k: tuple(v.shape) for k, v in network.state_dict().items() if "num_batches" not in k} == parameter_shapes()
    graph = build_graph({k: v.numpy() for k, v in network.state_dict().items()})
    folded = fold_batchnorm(copy.deepcopy(network))
    weights = {t.name: numpy_helper.to_array(t) for t in graph.graph.initializer}
    assert weights.keys() == {f"net.{k}" for k in folded.state_dict()}
    assert all(np.array_equal(weights[f"net.{k}"], v.numpy()) for k, v in folded.state_dict().items())
    x = torch.rand(3, 3, 160, 160) * 255
    with torch.inference_mode():
        want = torch.nn.functional.normalize(network((x - 127.5) / 128.0), dim=1).numpy()
    got = OnnxRunner(graph.SerializeToString(), threads=1)(x.numpy())
    assert np.abs(got - want).max() < 1e-5
    convs = [n for n in graph.graph.node if n.op_type == "Conv"]
    assert len(convs) == 132 and convs[0].input[0] == "/Div_output_0"
    assert convs[15].name == "/net/repeat_1/repeat_1.1/branch1/branch1.1/conv/Conv"  # 6 in the stem, 7 a block
    assert convs[15].input[0] == "/net/repeat_1/repeat_1.1/branch1/branch1.0/relu/Relu_output_0"
