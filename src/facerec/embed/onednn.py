"""InceptionResnetV1 on a CPU with oneDNN post-ops: each convolution does its ReLU, and each
residual block's last convolution also its scaled shortcut sum, in the same pass.

After batch-norm folding (:mod:`.fold`) a CPU forward pass spends ~80% of its time in oneDNN
convolutions and ~15% in separate passes over their outputs: a ReLU after each of the 132
convolutions, and ``out * scale + x`` then a ReLU at the end of each of the 21 residual blocks.
``torch.ops.mkldnn._convolution_pointwise`` (the kernel behind ``torch.compile``'s CPU
convolutions) applies those as oneDNN post-ops, on the output tile still in cache, with weights
reordered once into oneDNN's blocked layout instead of on every call. The block's ``scale`` goes
into that convolution's weights and bias (``(W x + b) * s = (s W) x + s b``).

The post-op network shares its parameters with the folded one (same state-dict keys, so
:func:`.fold.unfolded_state` still reads it); only the prepacked weights are extra.
:func:`fuse_for_cpu` checks the result against the plain network and returns ``None`` where the
op is missing or disagrees, so callers keep the eager network.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def _pair(v) -> list[int]:
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


class _PostOpConv:
    """``conv`` (times ``scale``), then ``+ residual`` if given, then ReLU if ``relu``: one oneDNN
    call with the weights prepacked. A plain callable, not a module: the parameters stay
    registered once, under the module that holds ``conv``."""

    def __init__(self, conv: nn.Conv2d, relu: bool = True, scale: float = 1.0):
        self.relu = relu
        self.padding, self.stride = _pair(conv.padding), _pair(conv.stride)
        self.dilation, self.groups = _pair(conv.dilation), conv.groups
        with torch.no_grad():
            self.weight = torch.ops.mkldnn._reorder_convolution_weight(
                conv.weight.detach() * scale, self.padding, self.stride, self.dilation, self.groups
            )
            self.bias = conv.bias.detach() * scale if conv.bias is not None else None

    def __call__(self, x, residual=None):
        geometry = (self.padding, self.stride, self.dilation, self.groups)
        if residual is None:
            unary = "relu" if self.relu else "none"
            return torch.ops.mkldnn._convolution_pointwise(x, self.weight, self.bias, *geometry, unary, [], "")
        unary = "relu" if self.relu else None
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, residual, self.weight, self.bias, *geometry, "add", None, unary, [], ""
        )


class _PostOpBasicConv(nn.Module):
    """facenet-pytorch's ``BasicConv2d`` (conv, folded BN, ReLU) as one call; keys ``conv.*``."""

    def __init__(self, basic):
        super().__init__()
        self.conv = basic.conv
        self._conv = _PostOpConv(basic.conv, relu=True)

    def forward(self, x):
        return self._with_post_ops(x)


class _PostOpBlock(nn.Module):
    """A residual block (Block35, Block17, Block8): branches, concatenation, then
    ``relu(conv(cat) * scale + x)`` in one call. The block's children under their own names."""

    def __init__(self, block):
        super().__init__()
        self.branches = [name for name in ("branch0", "branch1", "branch2") if hasattr(block, name)]
        for name in self.branches:
            setattr(self, name, _with_post_ops(getattr(block, name)))
        self.conv2d = block.conv2d
        self._last = _PostOpConv(block.conv2d, relu=not getattr(block, "noReLU", False), scale=float(block.scale))

    def forward(self, x):
        return self._last(torch.cat([getattr(self, name)(x) for name in self.branches], 1), x)


def _with_post_ops(module):
    """``module`` with its BasicConv2d and residual blocks given post-ops: containers are copied (shallow,
    their parameters shared), ``module`` itself is left as it is."""
    import copy

    from facenet_pytorch.models.inception_resnet_v1 import BasicConv2d, Block8, Block17, Block35

    if isinstance(module, BasicConv2d):
        if not isinstance(module.bn, nn.Identity) or not isinstance(module.relu, nn.ReLU):
            raise TypeError("BasicConv2d with its batch norm unfolded")
        return _PostOpBasicConv(module)
    if isinstance(module, (Block35, Block17, Block8)):
        return _PostOpBlock(module)
    if not module._modules:
        return module
    out = copy.copy(module)
    out._modules = {name: _with_post_ops(child) for name, child in module._modules.items()}
    return out


def fuse_for_cpu(model, check_input=None):
    """An InceptionResnetV1 with post-ops from a batch-norm-folded, eval-mode, float32 one on the CPU
    (``model`` itself is left as it is; the two share their parameters), or ``None`` where this
    PyTorch lacks the oneDNN ops, the network is not folded, or the post-op network's embeddings of
    ``check_input`` (default: two random images) differ from ``model``'s beyond float rounding."""
    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_convolution_pointwise"):
        return None
    try:
        net = _with_post_ops(model)
        x = check_input if check_input is not None else torch.rand(2, 3, 160, 160) * 2 - 1
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            want = nn.functional.normalize(model(x), dim=1)
            got = nn.functional.normalize(net(x), dim=1)
    except (RuntimeError, AttributeError, TypeError):
        return None
    return net if bool(((want * got).sum(1) > 0.99999).all()) else None
