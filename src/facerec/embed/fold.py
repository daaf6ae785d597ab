"""Fold inference-time batch norm into the layer before it: one kernel less per layer.

An eval-mode BatchNorm is an affine map per channel, y = (x - mean) * gamma / sqrt(var + eps) + beta,
so it can be merged into the weights and bias of the convolution or linear layer that feeds it.
InceptionResnetV1 has 132 conv + BN pairs and a final linear + BN; in eager mode each BN is a
separate pass over the activations, read and written once more.
"""

from __future__ import annotations


def fold_batchnorm(model):
    """Merge every ``(conv|linear) -> BatchNorm`` pair of facenet-pytorch's InceptionResnetV1 into
    the first layer (BN replaced by Identity), in place; returns the model. Eval mode only: the
    folded network computes the same function (to float rounding) and can no longer be trained."""
    import torch.nn as nn

    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode")
    for module in model.modules():
        if isinstance(getattr(module, "conv", None), nn.Conv2d) and isinstance(
            getattr(module, "bn", None), nn.BatchNorm2d
        ):
            _merge(module.conv, module.bn)
            module.bn = nn.Identity()
    if isinstance(getattr(model, "last_linear", None), nn.Linear) and isinstance(
        getattr(model, "last_bn", None), nn.BatchNorm1d
    ):
        _merge(model.last_linear, model.last_bn)
        model.last_bn = nn.Identity()
    return model


def _merge(layer, bn) -> None:
    """layer's output channels scaled and shifted as ``bn`` would (computed in float64)."""
    import torch

    with torch.no_grad():
        w = layer.weight.double()
        scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        bias = layer.bias.double() if layer.bias is not None else torch.zeros_like(scale)
        layer.weight.copy_((w * scale.view(-1, *([1] * (w.dim() - 1)))).to(layer.weight.dtype))
        new_bias = (bias - bn.running_mean.double()) * scale + bn.bias.double()
        if layer.bias is None:
            layer.bias = torch.nn.Parameter(new_bias.to(layer.weight.dtype), requires_grad=False)
        else:
            layer.bias.copy_(new_bias.to(layer.bias.dtype))


def unfolded_state(model) -> dict:
    """The state dict of a folded InceptionResnetV1 in facenet-pytorch's own layout (a BN after
    every conv, as identity plus the folded bias), loadable by an unfolded ``InceptionResnetV1``
    and computing the same function: for saving weights and for timing the original network."""
    import torch

    out = {}
    for key, value in model.state_dict().items():
        for layer, bn in ((".conv.bias", ".bn"), ("last_linear.bias", "last_bn")):
            if key.endswith(layer):
                prefix = key[: -len(layer)] + bn if layer.startswith(".") else bn
                eps = 1e-3  # facenet-pytorch's BatchNorm eps (as the TensorFlow model's)
                # float32 whatever the model's type: in bf16, 1 - eps would round to 1 and scale every layer
                out[prefix + ".weight"] = torch.ones_like(value, dtype=torch.float32)
                out[prefix + ".bias"] = value.float()
                out[prefix + ".running_mean"] = torch.zeros_like(value, dtype=torch.float32)
                out[prefix + ".running_var"] = torch.full_like(value, 1.0 - eps, dtype=torch.float32)
                out[prefix + ".num_batches_tracked"] = torch.zeros((), dtype=torch.long)
                break
        else:
            out[key] = value
    return out
