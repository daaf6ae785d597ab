"""What the pipeline returns: per image, every face it found."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facerec.datasets import Sample
from facerec.detect.base import Detection


@dataclass
class Face:
    """One face in one image.

    box: (x1, y1, x2, y2) in the image's pixels; landmarks: float32 (5, 2) (eyes, nose, mouth
    corners) or None when the detector gives none; score: the detector's confidence;
    embedding: float32 (d,) unit vector, or None when only detection was asked for;
    is_subject: the image's most prominent face (large and central), the one a labelled
    image stands for; full_box: for a face that runs past the image's edge (one that fills the
    frame), its whole box, of which ``box`` is the part inside the image; None otherwise.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None
    embedding: np.ndarray | None = None
    is_subject: bool = False
    full_box: tuple[float, float, float, float] | None = None

    @property
    def detection(self) -> Detection:
        """This face as the detector found it (what a cropper cuts)."""
        return Detection(self.box, self.score, self.landmarks, self.full_box)

    def __repr__(self) -> str:  # one line: never the 512 numbers of the embedding
        box = ", ".join(f"{v:.0f}" for v in self.box)
        extra = "" if self.embedding is None else f", embedding=<{len(self.embedding)} floats>"
        return f"Face(box=({box}), score={self.score:.3f}{', subject' if self.is_subject else ''}{extra})"


@dataclass
class ImageResult:
    """What one input produced: its faces, most prominent first (``faces[0]`` is the subject),
    or the error that stopped it (``faces`` is then empty)."""

    sample: Sample
    faces: list[Face] = field(default_factory=list)
    error: str | None = None

    @property
    def subject(self) -> Face | None:
        return self.faces[0] if self.faces else None

    def __repr__(self) -> str:
        what = f"error={self.error!r}" if self.error else f"{len(self.faces)} face{'' if len(self.faces) == 1 else 's'}"
        return f"ImageResult({self.sample.id!r}, {what})"
