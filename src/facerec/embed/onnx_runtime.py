"""FaceNet on the CPU through ONNX Runtime: the same network in fp32, or int8.

Why: on this project's 2-core CPU, PyTorch's eager FaceNet embeds ~45 faces/s in batches and ~23
one at a time; ONNX Runtime runs the same graph (embeddings equal to 1e-7) ~1.3x faster in batches
and ~2.3x one at a time, and its int8 network ~2x faster again in batches (``bench/embed_cpu.py``).

The fp32 graph is exported from the folded PyTorch module when first asked for and cached beside
the converted weights, named by a digest of the weights, so new weights never meet an old graph.
The int8 graph quantises every convolution but the first (per channel, activations uint8) with
activation ranges measured once on LFW photos of people outside the View 2 pairs and shipped with
facerec (``data/<weights_id>.int8-ranges.json``, made by ``bench/int8_ranges.py``): building it
needs no images. Weights without shipped ranges have no int8 network, and say so.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import warnings
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import InputError, WeightsError
from ..paths import facerec_home

RANGES_PACKAGE = "facerec.embed.data"
INPUT, OUTPUT = "crops", "embedding"  # the graph's tensor names: float (n, 3, S, S) 0..255 -> (n, d) unit rows
OPSET = 17
# The first convolution sees the standardised pixels; quantising it cost most of the agreement
# (cosine to fp32: mean 0.928 with it, 0.998 without; measured with bench/int8_ranges.py --check).
SKIP_FIRST_CONVS = 1


def ranges_resource(weights_id: str):
    """The shipped int8 activation ranges for ``weights_id``, or None when none were measured."""
    ref = resources.files(RANGES_PACKAGE).joinpath(f"{weights_id}.int8-ranges.json")
    return ref if ref.is_file() else None


def weights_digest(model) -> str:
    """sha256 (16 hex) of the module's parameters and buffers, in order: names the cached graphs."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(t.detach().cpu().float().numpy()).tobytes())
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


def export_fp32(model, path: Path, input_size: int) -> None:
    """Write the fp32 ONNX graph of ``model`` (a float32 CPU module) to ``path`` (temp + rename)."""
    import torch

    example = torch.zeros(2, 3, input_size, input_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
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
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def quantize_int8(fp32_path: Path, path: Path, ranges) -> None:
    """Write the int8 graph of ``fp32_path`` to ``path`` with the activation ranges in ``ranges``
    (a file or resource in ONNX Runtime's calibration-cache format)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    convs = [n.name for n in onnx.load(str(fp32_path), load_external_data=False).graph.node if n.op_type == "Conv"]
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".int8.") as tmp:
        cache = Path(tmp) / "ranges.json"
        cache.write_bytes(ranges.read_bytes())
        _check_ranges(json.loads(cache.read_text()), fp32_path)
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre))
        out = Path(tmp) / "int8.onnx"
        quantize_static(
            str(pre),
            str(out),
            calibration_data_reader=None,  # the ranges come from the shipped cache
            calibration_cache_path=str(cache),
            calibrate_method=CalibrationMethod.MinMax,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=convs[:SKIP_FIRST_CONVS],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        os.replace(out, path)


def _check_ranges(ranges: dict, fp32_path: Path) -> None:
    import onnx

    graph = onnx.load(str(fp32_path), load_external_data=False).graph
    needed = {i for n in graph.node if n.op_type == "Conv" for i in n.input[:1]}
    known = set(ranges.get("data", ranges))
    missing = sorted(needed - known)
    if missing:
        raise WeightsError(
            f"the shipped int8 ranges do not name {len(missing)} of this graph's convolution inputs "
            f"(e.g. {missing[0]!r}): the exporter of this torch version names tensors differently from the "
            "one that measured them; run bench/int8_ranges.py to measure them again, or use precision fp32"
        )


def graph_path(weights_id: str, digest: str, precision: str) -> Path:
    return facerec_home() / "weights" / f"{weights_id}-{digest}.{precision}.onnx"


def ensure_graph(model, *, weights_id: str, input_size: int, precision: str) -> Path:
    """The cached ONNX graph of ``model`` in ``precision`` (fp32 or int8), made now if missing."""
    if precision == "int8" and ranges_resource(weights_id) is None:
        raise InputError(
            f"no int8 network for weights {weights_id}: its activation ranges were never measured "
            "(bench/int8_ranges.py measures them); use precision fp32"
        )
    digest = weights_digest(model)
    fp32 = graph_path(weights_id, digest, "fp32")
    try:
        if not fp32.is_file():
            export_fp32(model, fp32, input_size)
        if precision == "fp32":
            return fp32
        int8 = graph_path(weights_id, digest, "int8")
        if not int8.is_file():
            quantize_int8(fp32, int8, ranges_resource(weights_id))
        return int8
    except OSError as exc:
        raise WeightsError(
            f"cannot write the ONNX graph of {weights_id} under {fp32.parent} ({exc}); "
            "set FACEREC_HOME to a writable folder"
        ) from None


class OnnxRunner:
    """One ONNX Runtime session over a cached graph: float32 (n, 3, S, S) 0..255 -> float32 (n, d).

    The session is made on the first call, in the calling thread, so that its worker threads
    inherit that thread's scheduling priority (the service's image workers run niced). Its threads
    never spin while idle: on a 2-core machine a spinning pool takes the core that detection needs.
    """

    def __init__(self, path: Path, threads: int):
        self.path, self.threads = Path(path), max(1, int(threads))
        self._session = None
        self._lock = threading.Lock()

    def _open(self):
        import onnxruntime as ort

        with self._lock:
            if self._session is None:
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = self.threads
                opts.inter_op_num_threads = 1
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                try:
                    self._session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
                except Exception as exc:  # a damaged cache file: say which, and that deleting it rebuilds it
                    raise WeightsError(
                        f"{self.path}: ONNX Runtime cannot load it ({exc}); delete it to rebuild"
                    ) from None
        return self._session

    def __call__(self, x: np.ndarray) -> np.ndarray:
        session = self._session or self._open()
        return session.run([OUTPUT], {INPUT: np.ascontiguousarray(x, dtype=np.float32)})[0]
