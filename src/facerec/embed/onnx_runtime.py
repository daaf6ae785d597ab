"""FaceNet on the CPU through ONNX Runtime: the same network in fp32, or int8.

Why: on this project's 2-core CPU (2026-12-06), ONNX Runtime ran the same graph as PyTorch's
eager FaceNet (embeddings equal to 1e-7) 1.4x faster in batches of 64 and ~2.3x one face at a
time, and its int8 network 1.7x faster again in batches (``python bench/pipeline.py --precision int8
--embed-precisions fp32,fp32-torch``: 41.1, 58.6 and 101.1 faces/s).

The fp32 graph is built from the weights when first asked for (:mod:`.facenet_graph`, with
``onnx.helper``: no torch) and cached beside the converted weights, named by a digest of the weights
and the recipe, so new weights or a new recipe never meet an old graph (a read-only cache: the graph
is made in a temporary folder). It is the graph PyTorch's exporter made from the folded module
before recipe 2, node for node and name for name but for its last few nodes: on 32 LFW crops
(2026-12-07) its embeddings differ from the exported graph's by at most 1.1e-7, the int8 graphs'
by 7.5e-8 (cosine >= 0.9999995), and ONNX Runtime runs both at the same speed (medians of 9
interleaved rounds on the busy 2-core CPU, 64 faces: fp32 2.51 s built, 2.52 s exported; int8 1.13
and 1.17 s; one face: 42 and 46 ms, 21 and 21 ms).

The int8 graph quantises every convolution but the first (per channel, activations uint8) with
activation ranges measured once on LFW photos of people outside the View 2 pairs and shipped with
facerec (``data/<weights_id>-<digest>.int8-ranges.json``, made by ``bench/int8_ranges.py``):
building it needs no images. Other weights have no int8 network, and say so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np

from facerec.embed.facenet_graph import INPUT, OPSET, OUTPUT  # float (n, 3, S, S) 0..255 -> (n, d) unit rows
from facerec.errors import InputError, WeightsError
from facerec.paths import facerec_home

RANGES_PACKAGE = "facerec.embed.data"
# The first convolution sees the standardised pixels; quantising it cost most of the agreement
# (cosine to fp32 on 64 LFW crops: mean 0.928 with it, 0.998 without; an ad hoc run, not kept).
SKIP_FIRST_CONVS = 1
# Bump when the graph or the quantisation recipe changes: graphs cached by another recipe are then
# made anew instead of reused. 1: exported by PyTorch from the folded module; 2: built from the
# weights with onnx.helper (:mod:`.facenet_graph`), the same tensor names, one L2 normalisation.
RECIPE = 2
STALE_TEMP_S = 3600  # a temp graph this old was left by a process that died mid-export


def ranges_name(weights_id: str, digest: str) -> str:
    return f"{weights_id}-{digest}.int8-ranges.json"


def ranges_resource(weights_id: str, digest: str):
    """The shipped int8 activation ranges measured on exactly these weights, or None."""
    ref = resources.files(RANGES_PACKAGE).joinpath(ranges_name(weights_id, digest))
    return ref if ref.is_file() else None


def source_digest(state: dict) -> str:
    """sha256 (16 hex) of a facenet-pytorch state dict as loaded (before batch norm is folded, so
    the same on every CPU): names the cached graphs and the int8 ranges measured on these weights,
    so other weights (``--weights``) never meet them."""
    h = hashlib.sha256()
    for name in sorted(state):
        if name.startswith("logits.") or name.endswith("num_batches_tracked"):
            continue
        h.update(name.encode())
        h.update(np.ascontiguousarray(np.asarray(state[name], np.float32)).tobytes())
    return h.hexdigest()[:16]


def _standardised(model):
    """``model`` with FaceNet's fixed standardisation before it and the L2 norm after it, so the
    graph takes the crops as the pipeline cuts them (float 0..255) and returns unit rows."""
    import torch

    class Standardised(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return torch.nn.functional.normalize(self.net((x - 127.5) / 128.0), dim=1)

    return Standardised(model).eval()


def _write_through_temp(path: Path, write) -> None:
    """``write(tmp)`` writes the graph to a temporary file beside ``path``, renamed to ``path`` once
    complete, so a killed process never leaves a half graph under the cached name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(f".{path.name}.*.tmp"):  # ~90 MB each: a killed build's leftovers
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > STALE_TEMP_S:
                old.unlink()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build_fp32(state, path: Path, input_size: int) -> None:
    """Write the fp32 ONNX graph of FaceNet with the weights ``state`` (a facenet-pytorch state dict)
    to ``path``, built directly (:mod:`.facenet_graph`): no torch."""
    from facerec.embed.facenet_graph import build_graph

    model = build_graph(state, input_size)
    _write_through_temp(path, lambda tmp: Path(tmp).write_bytes(model.SerializeToString()))


def export_fp32(model, path: Path, input_size: int) -> None:
    """Write the fp32 ONNX graph of ``model`` (a float32 CPU torch module) to ``path``, exported by
    PyTorch: how graphs were made before recipe 2, kept for other networks (the tests' small one)."""
    import torch

    example = torch.zeros(2, 3, input_size, input_size)

    def export(tmp: str) -> None:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice, not the user's
            torch.onnx.export(
                _standardised(model),
                (example,),
                tmp,
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_axes={INPUT: {0: "n"}, OUTPUT: {0: "n"}},
                opset_version=OPSET,
                dynamo=False,  # the TorchScript exporter: deterministic names, which the int8 ranges are keyed by
            )

    _write_through_temp(path, export)


def quantize_int8(fp32_path: Path, path: Path, ranges) -> None:
    """Write the int8 graph of ``fp32_path`` to ``path`` with the activation ranges in ``ranges``
    (a file or resource in ONNX Runtime's calibration-cache format)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    convs = [n for n in onnx.load(str(fp32_path), load_external_data=False).graph.node if n.op_type == "Conv"]
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".int8.") as tmp:
        cache = Path(tmp) / "ranges.json"
        cache.write_bytes(ranges.read_bytes())
        _check_ranges(json.loads(cache.read_text()), {n.input[0] for n in convs})
        pre = Path(tmp) / "pre.onnx"
        # Without ONNX Runtime's symbolic shape inference, which needs sympy (torch brings it, the core
        # install does not): ONNX's own inference types every tensor of these graphs, and FaceNet's
        # int8 graph came out the same, node for node and weight for weight (2026-12-07).
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        out = Path(tmp) / "int8.onnx"
        quantize_static(
            str(pre),
            str(out),
            calibration_data_reader=None,  # the ranges come from the shipped cache
            calibration_cache_path=str(cache),
            calibrate_method=CalibrationMethod.MinMax,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=[n.name for n in convs[:SKIP_FIRST_CONVS]],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        os.replace(out, path)


def _check_ranges(ranges: dict, needed: set[str]) -> None:
    """``needed``: the graph's convolution inputs, each of which the ranges must name."""
    known = set(ranges.get("data", ranges))
    missing = sorted(needed - known)
    if missing:
        raise WeightsError(
            f"the shipped int8 ranges do not name {len(missing)} of this graph's convolution inputs "
            f"(e.g. {missing[0]!r}): this graph names its tensors differently from the one they were measured on; "
            "run bench/int8_ranges.py to measure them again, or use precision fp32"
        )


def _build(source, folder: Path, stem: str, input_size: int, precision: str, ranges) -> Path:
    fp32 = folder / f"{stem}.fp32.onnx"
    if not fp32.is_file():
        if isinstance(source, Mapping):
            build_fp32(source, fp32, input_size)
        else:
            export_fp32(source, fp32, input_size)
    if precision == "fp32":
        return fp32
    tag = hashlib.sha256(ranges.read_bytes()).hexdigest()[:8]  # re-measured ranges make a new graph
    int8 = folder / f"{stem}-{tag}.int8.onnx"
    if not int8.is_file():
        quantize_int8(fp32, int8, ranges)
    return int8


def ensure_graph(source, *, weights_id: str, digest: str, input_size: int, precision: str) -> Path | bytes:
    """The ONNX graph in ``precision`` (fp32 or int8) of ``source``: FaceNet's weights (a
    facenet-pytorch state dict, built without torch) or a float32 torch module on the CPU (exported
    by PyTorch). A file in the cache, made now if missing; where the cache cannot be written (a
    read-only home), the graph itself, made in a temporary folder. ``digest`` is
    :func:`source_digest` of the weights."""
    ranges = None
    if precision == "int8":
        ranges = ranges_resource(weights_id, digest)
        if ranges is None:
            raise InputError(
                f"no int8 network for these weights ({weights_id}, digest {digest}): int8 activation ranges "
                "ship for facenet-casia's own weights only (measured by bench/int8_ranges.py); use precision fp32"
            )
    stem = f"{weights_id}-{digest}-r{RECIPE}"
    folder = facerec_home() / "weights"
    try:
        return _build(source, folder, stem, input_size, precision, ranges)
    except OSError as cache_error:
        try:
            with tempfile.TemporaryDirectory(prefix="facerec-onnx.") as tmp:
                return _build(source, Path(tmp), stem, input_size, precision, ranges).read_bytes()
        except OSError as exc:
            raise WeightsError(
                f"cannot make the ONNX graph of {weights_id}: not in {folder} ({cache_error}) nor in a temporary "
                f"folder ({exc}); free some disk space or set FACEREC_HOME to a writable folder"
            ) from None
