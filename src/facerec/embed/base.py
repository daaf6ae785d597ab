"""The embedder interface, its spec, and the registry every backend registers in."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facerec.errors import InputError


@dataclass(frozen=True)
class EmbedderSpec:
    """What a pipeline must know about an embedder before loading it.

    Attributes:
        name: registry name (``--embedder``).
        dim: embedding length.
        input_size: side of the square face crop it expects, in pixels.
        crop: how the aligner cuts the crop: ``"margin"`` (detector box plus a margin,
            resized) or ``"dlib-chip"`` (dlib's 5-landmark similarity alignment).
        weights_id: identifies the weights, stored in every model file.
        default_threshold: Euclidean distance between L2-normalised embeddings above
            which two faces are taken to be different people, used when a gallery is
            too small to calibrate its own.
        description: one line for ``facerec embedders``.
        speed_options: whether it takes ``precision`` and ``compile`` (the PyTorch embedders).
        parts: a fused embedder's (part name, weight) pairs (:mod:`.fusion`); empty otherwise.
    """

    name: str
    dim: int
    input_size: int
    crop: str
    weights_id: str
    default_threshold: float
    description: str
    speed_options: bool = False  # takes precision (bf16/fp16) and compile (torch.compile)
    parts: tuple = ()


class Embedder(ABC):
    """Turns aligned face crops into L2-normalised embeddings."""

    spec: EmbedderSpec

    @abstractmethod
    def embed(self, crops: np.ndarray) -> np.ndarray:
        """Embed a batch of aligned crops.

        Args:
            crops: uint8 array (n, S, S, 3), S = ``spec.input_size``, RGB.
        Returns:
            float32 array (n, ``spec.dim``), each row of unit L2 norm.
        """

    def _check_crops(self, crops: np.ndarray) -> np.ndarray:
        crops = np.asarray(crops)
        s = self.spec.input_size
        if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (s, s, 3):
            raise InputError(
                f"{self.spec.name} expects uint8 crops of shape (n, {s}, {s}, 3), got {crops.dtype} {crops.shape}"
            )
        return crops


_REGISTRY: dict[str, tuple[EmbedderSpec, Callable[..., Embedder]]] = {}


def register_embedder(spec: EmbedderSpec, factory: Callable[..., Embedder]) -> None:
    """Register a backend; ``factory(spec, weights=..., device=...)`` builds it."""
    _REGISTRY[spec.name] = (spec, factory)


def embedder_names() -> list[str]:
    """The registered embedders and the measured fused pairs (any ``A+B`` works)."""
    _load_builtins()
    from facerec.embed.fusion import FUSION_WEIGHTS

    fused = {"+".join(parts) for parts in FUSION_WEIGHTS}
    return sorted({n for n, (spec, _) in _REGISTRY.items() if not spec.parts} | fused)


def get_spec(name: str) -> EmbedderSpec:
    """The spec of ``name``: a registered embedder, or ``A+B`` fused from registered ones."""
    _load_builtins()
    if name not in _REGISTRY and isinstance(name, str) and "+" in name:
        from facerec.embed.fusion import create_fused, fused_spec

        register_embedder(fused_spec(name, get_spec), create_fused)
    try:
        return _REGISTRY[name][0]
    except KeyError:
        raise InputError(
            f"unknown embedder {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}, or fuse two as A+B"
        ) from None


PRECISIONS = ("fp32", "bf16", "fp16", "int8")  # int8: CPU only (ONNX Runtime)


def create_embedder(
    name: str, *, weights: str | None = None, device: str = "auto", precision: str = "fp32", compile: bool = False
) -> Embedder:
    """Build the embedder registered as ``name``; weights load now, not at import.

    ``precision`` bf16/fp16 and ``compile`` (``torch.compile``) are speed options of the PyTorch
    embedders; fp32 is the reference. A backend that cannot honour them says so.
    """
    spec = get_spec(name)
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    options = {} if (precision == "fp32" and not compile) else {"precision": precision, "compile": compile}
    # a fused embedder passes them on to the parts that take them
    if options and not spec.speed_options:
        raise InputError(f"the {name} embedder runs in fp32 only: it has no precision or compile options")
    return _REGISTRY[name][1](spec, weights=weights, device=device, **options)


def _load_builtins() -> None:
    # Importing the built-in modules registers them; they import no heavy library at top level.
    from facerec.embed import dlib_resnet, facenet  # noqa: F401


def resolve_device(device: str) -> str:
    """``auto`` picks CUDA when available; an explicit ``cuda`` without a GPU is an error."""
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise InputError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device cuda was asked for, but PyTorch sees no CUDA GPU; use cpu or auto")
    return device


def fast_bf16(device: str) -> bool:
    """Whether ``device`` runs bf16 matrix work natively: a CUDA GPU that supports it, or a CPU with
    AMX-BF16 tiles (Intel Sapphire Rapids and later; oneDNN then runs FaceNet ~2.7x faster than
    fp32). Elsewhere bf16 is emulated and slower than fp32."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " amx_bf16" in line for line in f)
    except OSError:
        return False


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
