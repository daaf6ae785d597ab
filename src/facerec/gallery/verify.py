"""1:1 verification: are two images (or two folders, one person each) the same person?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facerec.embed.base import l2_normalize
from facerec.errors import NoFaceError
from facerec.gallery.calibration import Calibration
from facerec.gallery.distance import pairwise_distances
from facerec.pipeline.results import ImageResult


@dataclass
class Verification:
    """``same`` when ``distance`` (between the two sides' templates) is at most ``threshold``;
    ``threshold_source`` is ``calibrated``, ``default`` or ``explicit``; ``images_a``/``images_b``
    count the images that gave a face."""

    same: bool
    distance: float
    threshold: float
    threshold_source: str
    threshold_note: str
    images_a: int
    images_b: int
    threshold_promise: str = ""  # in words: what share of pairs of different people pass
    far: float | None = None  # that share, where measured
    tar: float | None = None  # the share of pairs of one person's photos that pass, where measured


def template(results: list[ImageResult], label: str) -> np.ndarray:
    """One unit vector for one side: the mean of the most prominent face of each image, renormalised."""
    faces = [r.faces[0].embedding for r in results if r.faces]
    if not faces:
        errors = "; ".join(r.error for r in results if r.error)
        raise NoFaceError(f"{label}: no face found" + (f" ({errors})" if errors else ""))
    return l2_normalize(np.mean(np.stack(faces), axis=0, keepdims=True))[0]


def verify_results(
    a: list[ImageResult],
    b: list[ImageResult],
    calibration: Calibration,
    *,
    metric: str = "euclidean",
    labels: tuple[str, str] = ("A", "B"),
) -> Verification:
    ta, tb = template(a, labels[0]), template(b, labels[1])
    d = float(pairwise_distances(ta[None], tb[None], metric)[0, 0])
    return Verification(
        d <= calibration.threshold,
        d,
        calibration.threshold,
        calibration.source,
        calibration.describe(),
        sum(1 for r in a if r.faces),
        sum(1 for r in b if r.faces),
        calibration.promise(),
        calibration.far,
        calibration.tar,
    )
