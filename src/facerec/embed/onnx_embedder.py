"""Any ArcFace-style ONNX embedder, by preset or by path: ``--embedder onnx:sface`` or
``--embedder onnx:/models/my_model.onnx``.

The registry's composer (:func:`compose`) turns such a name into a spec without running anything:
the graph's input and output are read and checked, the input spec comes from the preset or the
sidecar (:mod:`facerec.embed.onnx_input`), and the spec's ``weights_id`` carries the file's sha256
and a digest of the input spec, so a gallery never meets embeddings of another file or of the same
file fed another way. The spec has no ``default_threshold``: no distance means anything for a
model until ``facerec calibrate`` has measured its reference table, and until then open-set and
1:1 decisions without ``--threshold`` are refused (:mod:`facerec.gallery.calibration`).

Loading runs one probe batch, so a model that returns NaN, the wrong shape or fails in ONNX Runtime
is refused before any gallery is written. Runs on ONNX Runtime: the CPU, or CUDA when
onnxruntime-gpu is installed and the device is cuda.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from facerec.embed.base import Embedder, EmbedderSpec, l2_normalize
from facerec.embed.onnx_input import GraphShape, InputSpec, read_graph, read_sidecar, resolve
from facerec.embed.onnx_presets import PRESETS, Preset
from facerec.errors import InputError, WeightsError

log = logging.getLogger("facerec.embed")

PREFIX = "onnx:"
BATCH_SIZE = 64


def weights_id_of(sha256: str, spec: InputSpec) -> str:
    return f"onnx-sha256:{sha256}-input:{spec.digest()}"


def compose(name: str, get_spec):
    """The registry's hook: ``onnx:PRESET`` or ``onnx:PATH`` -> (spec, factory); None otherwise."""
    if not isinstance(name, str) or not name.startswith(PREFIX):
        return None
    target = name[len(PREFIX) :]
    if target in PRESETS:
        preset = PRESETS[target]
        return _spec(
            name, preset.input, preset.file.sha256, preset.dim, f"{preset.file.filename}, {preset.published}"
        ), (lambda spec, **kw: load_preset(spec, preset, **kw))
    path = Path(target).expanduser()
    if not target or not path.is_file():
        raise WeightsError(
            f"{name}: no such ONNX model file {str(path)!r} (an onnx: embedder is a path, or one of the presets: "
            f"{', '.join(sorted(PRESETS))})"
        )
    from facerec.runtime.weights import sha256_of

    graph = read_graph(path)
    base, from_sidecar = read_sidecar(path, InputSpec())
    inp = resolve(path, graph, base, "its sidecar" if from_sidecar else "the default input spec")
    how = "input from its sidecar" if from_sidecar else "input by ArcFace's convention (no sidecar)"
    spec = _spec(name, inp, sha256_of(path), graph.dim, f"{path.name}, {how}")
    return spec, lambda spec, **kw: load_path(spec, path, inp, graph, **kw)


def _spec(name: str, inp: InputSpec, sha256: str, dim: int, what: str) -> EmbedderSpec:
    return EmbedderSpec(
        name=name,
        dim=dim,
        input_size=inp.size,
        crop=inp.crop,
        weights_id=weights_id_of(sha256, inp),
        default_threshold=None,  # nothing measured: see the module's docstring
        description=f"ONNX model {what}; {inp.describe()}",
    )


def load_preset(spec: EmbedderSpec, preset: Preset, *, weights: str | None, device: str, **options) -> Embedder:
    """A preset's file from ``weights`` (its file or folder), ``$FACEREC_MODELS`` or the cache, else
    downloaded (its licence said first); any file whose sha256 is not the preset's is refused."""
    from facerec.runtime.weights import model_path, sha256_of

    _no_speed_options(spec, options)
    if weights and Path(weights).is_file():
        digest = sha256_of(Path(weights))
        if digest != preset.file.sha256:
            raise WeightsError(
                f"{weights}: sha256 {digest} is not {preset.file.filename}'s ({preset.file.sha256}); "
                f"{spec.name} takes only its official file"
            )
        path = Path(weights)
    else:
        try:
            path = model_path(preset.file, weights, download=False)
        except WeightsError as missing:
            if "sha256" in str(missing) and "is not" in str(missing):
                raise
            log.warning(
                "downloading %s (%s, %.1f MB) for %s. Licence: %s",
                preset.file.filename,
                preset.file.urls[0],
                preset.size_bytes / 1e6,
                spec.name,
                preset.terms,
            )
            path = model_path(preset.file, weights)
    graph = read_graph(path)
    inp = resolve(path, graph, preset.input, f"preset {preset.name}")
    if graph.dim != spec.dim:
        raise WeightsError(f"{path}: returns {graph.dim}-d embeddings, preset {preset.name} says {spec.dim}")
    return OnnxEmbedder(spec, path, inp, graph, device)


def load_path(
    spec: EmbedderSpec, path: Path, inp: InputSpec, graph: GraphShape, *, weights: str | None, device: str, **options
) -> Embedder:
    _no_speed_options(spec, options)
    if weights:
        raise InputError(f"{spec.name}: the model's file is in its name; --weights is for registered embedders")
    return OnnxEmbedder(spec, path, inp, graph, device)


def _no_speed_options(spec: EmbedderSpec, options: dict) -> None:
    if options:
        raise InputError(f"the {spec.name} embedder runs in fp32 only: it has no precision or compile options")


def providers_for(device: str) -> tuple[list[str], str]:
    """(ONNX Runtime providers, the device they run on): CUDA first when asked for and installed
    (onnxruntime-gpu), the CPU otherwise; a cuda device without onnxruntime-gpu is an error."""
    import onnxruntime as ort

    from facerec.runtime.device import resolve_device

    device = resolve_device(device)
    available = ort.get_available_providers()
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise InputError(
                "device cuda was asked for, but this ONNX Runtime has no CUDAExecutionProvider: "
                "install onnxruntime-gpu, or use device cpu"
            )
        index = int(device.split(":")[1]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"], device
    return ["CPUExecutionProvider"], "cpu"


class OnnxEmbedder(Embedder):
    """An ONNX model fed crops as its :class:`InputSpec` says, its rows L2-normalised; batched."""

    def __init__(self, spec: EmbedderSpec, path: Path, inp: InputSpec, graph: GraphShape, device: str):
        from facerec.runtime.device import cpu_threads
        from facerec.runtime.onnx_runner import OnnxRunner

        self.spec, self.path, self.input, self.graph = spec, path, inp, graph
        providers, self.device = providers_for(device)
        self._runner = OnnxRunner(path, threads=cpu_threads(), providers=providers)
        self._mean = np.asarray(inp.mean, np.float32)
        self._std = np.asarray(inp.std, np.float32)
        self._probe()

    def _probe(self) -> None:
        """One batch of two mid-grey crops: the model runs, and gives (2, dim) finite rows."""
        grey = np.full((2, self.spec.input_size, self.spec.input_size, 3), 128, np.uint8)
        out = self._run(self._prepare(grey))
        if out.shape != (2, self.spec.dim):
            raise WeightsError(f"{self.path}: returned shape {out.shape} for 2 crops, expected (2, {self.spec.dim})")

    def _prepare(self, crops: np.ndarray) -> np.ndarray:
        x = crops.astype(np.float32)
        if self.input.channels == "bgr":
            x = x[..., ::-1]
        x = (x - self._mean) / self._std
        return x.transpose(0, 3, 1, 2) if self.input.layout == "nchw" else x

    def _run(self, x: np.ndarray) -> np.ndarray:
        try:
            out = np.asarray(self._runner(x), np.float32)
        except WeightsError:
            raise
        except Exception as exc:  # ONNX Runtime's own (a graph that fails on real input)
            raise WeightsError(f"{self.path}: ONNX Runtime failed to run it ({exc})") from None
        out = out.reshape(len(x), -1)
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            raise WeightsError(
                f"{self.path}: the model returned NaN or infinite values for {int(bad.sum())} of {len(x)} crops; "
                "it cannot be used"
            )
        return out

    def embed(self, crops: np.ndarray) -> np.ndarray:
        crops = self._check_crops(crops)
        out = np.empty((len(crops), self.spec.dim), np.float32)
        for start in range(0, len(crops), BATCH_SIZE):
            batch = crops[start : start + BATCH_SIZE]
            out[start : start + len(batch)] = self._run(self._prepare(batch))
        return l2_normalize(out)

    def embed_tensor(self, x):
        """float or uint8 (n, 3, S, S) RGB 0..255 (the margin cropper's crops) -> float32 (n, d) unit
        rows: the float crops as cut, without rounding to uint8, so an exported FaceNet gives the
        built-in FaceNet's numbers. A numpy array in, a numpy array out (no torch); a tensor in, a
        tensor on its device out."""
        if isinstance(x, np.ndarray):
            return self._embed_float(x.transpose(0, 2, 3, 1))
        import torch  # a tensor was passed: torch is there

        out = self._embed_float(x.detach().float().cpu().permute(0, 2, 3, 1).numpy())
        return torch.from_numpy(out).to(x.device)

    def _embed_float(self, host: np.ndarray) -> np.ndarray:
        """float (n, S, S, 3) RGB 0..255 -> float32 (n, d) unit rows, batched."""
        host = host.astype(np.float32, copy=False)
        out = np.empty((len(host), self.spec.dim), np.float32)
        for start in range(0, len(host), BATCH_SIZE):
            batch = host[start : start + BATCH_SIZE]
            out[start : start + len(batch)] = self._run(self._prepare(batch))
        return l2_normalize(out)
