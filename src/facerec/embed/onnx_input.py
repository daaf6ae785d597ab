"""What an ONNX embedder's input is: crop side, channel order, mean and std, crop style, layout.

Read from the graph where the graph says it (side, layout, embedding length), from a preset
(:mod:`facerec.embed.onnx_presets`) or a sidecar file beside the model (``model.onnx.json``)
otherwise, and checked against the graph before anything runs: a model whose input or output
does not fit is refused with its file and the problem named.

The default, with no sidecar, is insightface's convention for ArcFace models: RGB, (x - 127.5) /
127.5, the five-point ArcFace crop. A model trained otherwise needs its sidecar; a wrong guess
would not fail, it would give worse distances, which is why every model is calibrated before it
answers open-set questions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from facerec.errors import WeightsError

CROPS = ("arcface", "margin")  # the five-point ArcFace template, or FaceNet's margin box crop
CHANNELS = ("rgb", "bgr")
SIDECAR_SUFFIX = ".json"  # model.onnx -> model.onnx.json
SIDECAR_KEYS = ("size", "channels", "mean", "std", "crop")


@dataclass(frozen=True)
class InputSpec:
    """How a crop (uint8 RGB, S x S) becomes the model's input: channels reordered to ``channels``,
    then (x - mean) / std per channel, laid out as ``layout`` (``nchw`` or ``nhwc``)."""

    size: int = 112
    channels: str = "rgb"
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    crop: str = "arcface"
    layout: str = "nchw"

    def digest(self) -> str:
        """12 hex digits of sha256 over the spec: part of the weights id, so the same file read
        another way is another model to a gallery."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    def describe(self) -> str:
        mean = _short(self.mean)
        std = _short(self.std)
        return f"{self.size}x{self.size} {self.channels.upper()} {self.layout}, (x - {mean}) / {std}, {self.crop} crop"


def _short(values: tuple[float, ...]) -> str:
    return f"{values[0]:g}" if len(set(values)) == 1 else "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _triple(value, what: str, label: str) -> tuple[float, float, float]:
    values = value if isinstance(value, (list, tuple)) else [value] * 3
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise WeightsError(f"{label}: {what} must be a number or three numbers, got {value!r}") from None
    if len(out) != 3:
        raise WeightsError(f"{label}: {what} must be a number or three numbers, got {value!r}")
    if what == "std" and any(v == 0 for v in out):
        raise WeightsError(f"{label}: std must not be 0")
    return out


def from_mapping(d: dict, base: InputSpec, label: str) -> InputSpec:
    """``base`` with the keys of a sidecar or preset over it; an unknown key or value is an error
    naming ``label`` (the file)."""
    unknown = sorted(set(d) - set(SIDECAR_KEYS))
    if unknown:
        raise WeightsError(f"{label}: unknown input-spec keys {unknown}; known: {', '.join(SIDECAR_KEYS)}")
    spec = base
    if "size" in d:
        if isinstance(d["size"], bool) or not isinstance(d["size"], int) or d["size"] < 16:
            raise WeightsError(f"{label}: size must be a whole number of pixels >= 16, got {d['size']!r}")
        spec = replace(spec, size=d["size"])
    if "channels" in d:
        if d["channels"] not in CHANNELS:
            raise WeightsError(f"{label}: channels must be one of {CHANNELS}, got {d['channels']!r}")
        spec = replace(spec, channels=d["channels"])
    if "crop" in d:
        if d["crop"] not in CROPS:
            raise WeightsError(f"{label}: crop must be one of {CROPS}, got {d['crop']!r}")
        spec = replace(spec, crop=d["crop"])
    if "mean" in d:
        spec = replace(spec, mean=_triple(d["mean"], "mean", label))
    if "std" in d:
        spec = replace(spec, std=_triple(d["std"], "std", label))
    return spec


def sidecar_of(model: Path) -> Path:
    return model.with_name(model.name + SIDECAR_SUFFIX)


def read_sidecar(model: Path, base: InputSpec) -> tuple[InputSpec, bool]:
    """(spec, whether a sidecar was read): ``base`` with ``model.onnx.json``'s keys over it."""
    path = sidecar_of(model)
    if not path.is_file():
        return base, False
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable JSON input spec ({exc})") from None
    if not isinstance(d, dict):
        raise WeightsError(f"{path}: an input spec is a JSON object with keys {', '.join(SIDECAR_KEYS)}")
    return from_mapping(d, base, str(path)), True


@dataclass(frozen=True)
class GraphShape:
    """What the graph itself says: input and output names, layout, side (None when dynamic), length."""

    input_name: str
    output_name: str
    layout: str
    side: int | None
    dim: int


def read_graph(path: Path) -> GraphShape:
    """The input and output of the ONNX model at ``path``, checked: one float image input of rank 4
    with 3 channels and a square (or dynamic) side; a first output of rank 2 with a fixed length."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError, a truncated file, not a model at all
        raise WeightsError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1 or not model.graph.output:
        raise WeightsError(
            f"{path}: an embedder has one image input and an embedding output; this graph has "
            f"{len(inputs)} inputs and {len(model.graph.output)} outputs"
        )
    inp, out = inputs[0], model.graph.output[0]
    dims = _dims(inp)
    if len(dims) != 4:
        raise WeightsError(
            f"{path}: input {inp.name!r} has rank {len(dims)} (shape {dims}); an embedder takes images (n, 3, S, S)"
        )
    if dims[1] == 3:
        layout, h, w = "nchw", dims[2], dims[3]
    elif dims[3] == 3:
        layout, h, w = "nhwc", dims[1], dims[2]
    else:
        raise WeightsError(f"{path}: input {inp.name!r} has shape {dims}: no axis of 3 colour channels")
    if isinstance(h, int) and isinstance(w, int) and h != w:
        raise WeightsError(f"{path}: input {inp.name!r} is {h}x{w}; facerec cuts square crops")
    side = h if isinstance(h, int) else (w if isinstance(w, int) else None)
    odims = _dims(out)
    if len(odims) == 2 and not isinstance(odims[1], int):  # declared symbolic: ONNX's shape inference may know it
        odims = _inferred_output(model, odims)
    if len(odims) != 2:
        raise WeightsError(f"{path}: output {out.name!r} has rank {len(odims)} (shape {odims}); an embedding is (n, d)")
    if not isinstance(odims[1], int) or odims[1] < 1:
        raise WeightsError(
            f"{path}: output {out.name!r} has no fixed length (shape {odims}); facerec needs the embedding's length "
            "before it runs the model (galleries and indexes are sized by it)"
        )
    return GraphShape(inp.name, out.name, layout, side, odims[1])


def _inferred_output(model, declared: list) -> list:
    """The first output's shape by ONNX's shape inference (exporters often declare an embedding's
    length symbolic), or ``declared`` where inference cannot tell."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # inference is a help here, not a check: the declared shape then stands
        return declared
    dims = _dims(inferred.graph.output[0])
    return dims if len(dims) == 2 else declared


def _dims(value_info) -> list:
    """A tensor's shape: ints where fixed, the symbol (or '?') where dynamic."""
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in shape.dim]


def resolve(path: Path, graph: GraphShape, base: InputSpec, label: str) -> InputSpec:
    """``base`` (preset or sidecar) checked against what the graph says, with the graph's layout."""
    spec = replace(base, layout=graph.layout)
    if graph.side is not None and graph.side != spec.size:
        if base.size != InputSpec().size:  # given explicitly, and the graph disagrees
            raise WeightsError(f"{path}: the graph takes {graph.side}px crops, but {label} says {base.size}")
        spec = replace(spec, size=graph.side)
    return spec
