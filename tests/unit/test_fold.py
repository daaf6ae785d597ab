"""Batch-norm folding: the folded network computes the same function, and its weights still load
into an unfolded facenet-pytorch InceptionResnetV1."""

import copy

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
