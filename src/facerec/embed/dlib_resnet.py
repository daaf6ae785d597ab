"""dlib's ResNet face descriptor (128-d), on 150x150 chips from dlib's 5-landmark alignment."""

from __future__ import annotations

import numpy as np

from facerec.embed.base import Embedder, EmbedderSpec, l2_normalize
from facerec.runtime.dlib_models import RESNET, dlib_model_path, import_dlib

DLIB = EmbedderSpec(
    name="dlib",
    dim=128,
    input_size=150,
    crop="dlib-chip",
    weights_id="dlib_face_recognition_resnet_model_v1",
    default_threshold=0.43,  # LFW pairs EER (L2-normalised)
    description="dlib ResNet-34 face descriptor (offline, from face_recognition_models)",
)


class DlibEmbedder(Embedder):
    def __init__(self, spec: EmbedderSpec, model_path: str):
        dlib = import_dlib()
        self.spec = spec
        self.device = "cpu"
        self._net = dlib.face_recognition_model_v1(str(model_path))

    def embed(self, crops: np.ndarray) -> np.ndarray:
        crops = self._check_crops(crops)
        if len(crops) == 0:
            return np.zeros((0, self.spec.dim), np.float32)
        chips = [np.ascontiguousarray(c) for c in crops]
        vectors = self._net.compute_face_descriptor(chips)
        return l2_normalize(np.array([np.asarray(v) for v in vectors], np.float32))


def load_dlib(spec: EmbedderSpec, *, weights: str | None, device: str) -> Embedder:
    # dlib's own CPU code embeds whatever the device: on a GPU machine detection still runs there
    return DlibEmbedder(spec, weights or dlib_model_path(RESNET))
