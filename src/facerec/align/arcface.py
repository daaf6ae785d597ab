"""The ArcFace crop: the detector's five landmarks onto insightface's 112x112 template (scaled to
the model's side), outside the photo black, as ``insightface.utils.face_align.norm_crop`` cuts
faces for every ArcFace-family model. There is no box fallback: a model trained on aligned faces
gives other distances for a box crop, and no reference table measures those."""

from __future__ import annotations

import numpy as np

from facerec.detect.base import Detection
from facerec.errors import InputError
from facerec.image_batch import ImageBatch

#: The detectors that give five landmarks, named in the error for one that does not.
LANDMARK_DETECTORS = ("mtcnn", "yunet")


class ArcFaceCropper:
    """uint8 (M, size, size, 3) host crops, each face warped onto the ArcFace template."""

    def __init__(self, size: int):
        from facerec.align.five_point import template_for

        self.size = size
        self.template = template_for("arcface", size)

    def crop(self, batch: ImageBatch, faces: list[tuple[int, Detection]]) -> np.ndarray:
        from facerec.align.five_point import warp

        if any(d.landmarks is None for _, d in faces):
            raise InputError(
                "the arcface crop needs each face's five landmarks, and this detector gave none: "
                f"use --detector {' or '.join(LANDMARK_DETECTORS)}"
            )
        out = np.empty((len(faces), self.size, self.size, 3), np.uint8)
        for k, (j, det) in enumerate(faces):
            out[k] = warp(batch.host[j], det.landmarks, self.template, self.size, border="constant")
        return out


def central_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The ArcFace crop of an LFW image in which no face was found (evaluation's fallback): the
    landmarks where they lie on average in the margin crop of the image's central 64%, which is
    what MTCNN's box plus margin frames around LFW's face (:func:`facerec.evaluate.common._central_face`)."""
    from facerec.align.five_point import template_for, warp

    h, w = image.shape[:2]
    side = 160
    points = template_for("margin", side) / side  # in the margin crop, as a share of its side
    landmarks = np.stack([w * (0.18 + 0.64 * points[:, 0]), h * (0.18 + 0.64 * points[:, 1])], axis=1)
    return warp(image, landmarks, template_for("arcface", size), size, border="constant")
