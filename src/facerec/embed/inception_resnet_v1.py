"""facenet-pytorch's ``InceptionResnetV1`` as data, without torch: its layers in the order its
``forward`` runs them, under the names its state dict gives them.

One description, read two ways: :func:`parameter_shapes` walks it to list the weights the network
takes (the names and shapes of ``InceptionResnetV1().state_dict()``, which the CASIA conversion and
the embedder check weights against), and :mod:`.facenet_graph` walks it to build the ONNX graph.
``tests/integration/test_casia_onnx_direct.py`` checks the description against facenet-pytorch's own.
"""

from __future__ import annotations

from typing import Protocol

BN_EPS = 1e-3  # every batch norm's eps in facenet-pytorch (the TensorFlow model's)
EMBEDDING = 512
FEATURES = 1792  # channels after the last block, pooled into one vector


class Layers(Protocol):
    """What a reader of the architecture does with each kind of layer; ``x`` is whatever the reader
    passes along (a tensor name for the graph, nothing for the shapes)."""

    def basic(self, at: str, x, cin: int, cout: int, kernel, stride: int = 1, padding=0):
        """facenet-pytorch's ``BasicConv2d`` at module path ``at``: convolution (no bias), batch norm, ReLU."""

    def maxpool(self, at: str, x):
        """3x3 max pooling, stride 2."""

    def concat(self, at: str, xs: list):
        """The branches of block ``at`` joined along the channels."""

    def residual(self, at: str, x, joined, cin: int, cout: int, scale: float, relu: bool):
        """Block ``at``'s ending: its ``conv2d`` (1x1, with bias) on ``joined``, times ``scale``, plus
        ``x``, then ReLU unless the block has none."""

    def head(self, x, cin: int, cout: int):
        """Average pooling to one vector, ``last_linear`` (no bias), ``last_bn``, L2 normalisation."""


def walk(net: Layers, x):
    """``InceptionResnetV1(classify=False).forward`` read by ``net``, in order (dropout, a no-op at
    inference, left out)."""
    x = net.basic("conv2d_1a", x, 3, 32, 3, stride=2)
    x = net.basic("conv2d_2a", x, 32, 32, 3)
    x = net.basic("conv2d_2b", x, 32, 64, 3, padding=1)
    x = net.maxpool("maxpool_3a", x)
    x = net.basic("conv2d_3b", x, 64, 80, 1)
    x = net.basic("conv2d_4a", x, 80, 192, 3)
    x = net.basic("conv2d_4b", x, 192, 256, 3, stride=2)
    for i in range(5):
        x = _block35(net, f"repeat_1.{i}", x)
    x = _mixed_6a(net, "mixed_6a", x)
    for i in range(10):
        x = _block17(net, f"repeat_2.{i}", x)
    x = _mixed_7a(net, "mixed_7a", x)
    for i in range(5):
        x = _block8(net, f"repeat_3.{i}", x, scale=0.20)
    x = _block8(net, "block8", x, scale=1.0, relu=False)
    return net.head(x, FEATURES, EMBEDDING)


def _chain(net: Layers, at: str, x, convs: list[tuple]):
    """An ``nn.Sequential`` of BasicConv2d, each ``(cin, cout, kernel[, stride[, padding]])``, named ``at.0``, ``at.1``..."""
    for i, conv in enumerate(convs):
        x = net.basic(f"{at}.{i}", x, *conv)
    return x


def _block35(net: Layers, at: str, x):
    joined = net.concat(
        at,
        [
            net.basic(f"{at}.branch0", x, 256, 32, 1),
            _chain(net, f"{at}.branch1", x, [(256, 32, 1), (32, 32, 3, 1, 1)]),
            _chain(net, f"{at}.branch2", x, [(256, 32, 1), (32, 32, 3, 1, 1), (32, 32, 3, 1, 1)]),
        ],
    )
    return net.residual(at, x, joined, 96, 256, scale=0.17, relu=True)


def _block17(net: Layers, at: str, x):
    joined = net.concat(
        at,
        [
            net.basic(f"{at}.branch0", x, 896, 128, 1),
            _chain(
                net, f"{at}.branch1", x, [(896, 128, 1), (128, 128, (1, 7), 1, (0, 3)), (128, 128, (7, 1), 1, (3, 0))]
            ),
        ],
    )
    return net.residual(at, x, joined, 256, 896, scale=0.10, relu=True)


def _block8(net: Layers, at: str, x, scale: float, relu: bool = True):
    joined = net.concat(
        at,
        [
            net.basic(f"{at}.branch0", x, 1792, 192, 1),
            _chain(
                net, f"{at}.branch1", x, [(1792, 192, 1), (192, 192, (1, 3), 1, (0, 1)), (192, 192, (3, 1), 1, (1, 0))]
            ),
        ],
    )
    return net.residual(at, x, joined, 384, 1792, scale=scale, relu=relu)


def _mixed_6a(net: Layers, at: str, x):
    return net.concat(
        at,
        [
            net.basic(f"{at}.branch0", x, 256, 384, 3, stride=2),
            _chain(net, f"{at}.branch1", x, [(256, 192, 1), (192, 192, 3, 1, 1), (192, 256, 3, 2)]),
            net.maxpool(f"{at}.branch2", x),
        ],
    )


def _mixed_7a(net: Layers, at: str, x):
    return net.concat(
        at,
        [
            _chain(net, f"{at}.branch0", x, [(896, 256, 1), (256, 384, 3, 2)]),
            _chain(net, f"{at}.branch1", x, [(896, 256, 1), (256, 256, 3, 2)]),
            _chain(net, f"{at}.branch2", x, [(896, 256, 1), (256, 256, 3, 1, 1), (256, 256, 3, 2)]),
            net.maxpool(f"{at}.branch3", x),
        ],
    )


def pair(v) -> tuple[int, int]:
    """A kernel size, stride or padding as (height, width)."""
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class _Shapes:
    """Reads the architecture as the weights it takes."""

    def __init__(self):
        self.shapes: dict[str, tuple[int, ...]] = {}

    def _batch_norm(self, at: str, channels: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            self.shapes[f"{at}.{name}"] = (channels,)

    def basic(self, at, x, cin, cout, kernel, stride=1, padding=0):
        self.shapes[f"{at}.conv.weight"] = (cout, cin, *pair(kernel))
        self._batch_norm(f"{at}.bn", cout)

    def maxpool(self, at, x):
        pass

    def concat(self, at, xs):
        pass

    def residual(self, at, x, joined, cin, cout, scale, relu):
        self.shapes[f"{at}.conv2d.weight"] = (cout, cin, 1, 1)
        self.shapes[f"{at}.conv2d.bias"] = (cout,)

    def head(self, x, cin, cout):
        self.shapes["last_linear.weight"] = (cout, cin)
        self._batch_norm("last_bn", cout)


def parameter_shapes() -> dict[str, tuple[int, ...]]:
    """Every weight of ``InceptionResnetV1(classify=False)`` by its state-dict name, in the module's
    order, with its shape (batch norms' ``num_batches_tracked`` counters, which hold no weights, left out)."""
    shapes = _Shapes()
    walk(shapes, None)
    return dict(shapes.shapes)


def batch_norms() -> list[str]:
    """The module paths of the batch norms (``conv2d_1a.bn``, ..., ``last_bn``)."""
    return [key[: -len(".running_var")] for key in parameter_shapes() if key.endswith(".running_var")]
