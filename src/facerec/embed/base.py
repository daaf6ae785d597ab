"""The embedder interface and its spec: what a pipeline must know about an embedder before loading it."""

from __future__ import annotations

from abc import ABC, abstractmethod
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
        crop: how the cropper cuts the face: ``"margin"`` (detector box plus a margin,
            resized) or ``"dlib-chip"`` (dlib's 5-landmark similarity alignment).
        weights_id: identifies the weights, stored in every model file.
        default_threshold: Euclidean distance between L2-normalised embeddings above
            which two faces are taken to be different people, used when a gallery is
            too small to calibrate its own.
        description: one line for ``facerec embedders``.
        speed_options: whether it takes ``precision`` and ``compile`` (the PyTorch embedders).
        parts: a fused embedder's (part name, weight) pairs (:mod:`.fused`); empty otherwise.
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


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
