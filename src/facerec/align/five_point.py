"""5-point alignment: a similarity transform (rotation, uniform scale, shift) that takes a
detector's five landmarks (eyes, nose tip, mouth corners, in MTCNN's order) onto an embedder's
template, then one ``warpAffine`` per face. No landmark model runs: YuNet's points suffice.

The templates say where those five points fall, on average, in the crop each embedder was trained
on; ``bench/align_templates.py`` measures them on LFW (YuNet's points mapped into dlib's own chips
and into FaceNet's MTCNN margin crops) and prints the table below.
"""

from __future__ import annotations

import numpy as np

# `python bench/align_templates.py --images 2000` (LFW, YuNet 2026may landmarks, ~1,600 faces each):
# the mean positions in each crop style's crop (px; its side first), averaged with their mirror image
# so that a crop and its flip align alike. dlib: eyes 56.5 px apart, std ~3.5 px per point; FaceNet's
# MTCNN box crops vary more across faces (std ~11 px in x: the box follows the head, not the eyes).
DEFAULT_MARGIN_OF_TEMPLATE = 32.0  # FaceNet's margin (px of a 160 px crop) the "margin" template was measured at
TEMPLATES: dict[str, tuple[int, np.ndarray]] = {
    "dlib-chip": (
        150,
        np.array([[46.26, 44.82], [102.74, 44.82], [74.5, 77.35], [50.44, 102.06], [98.56, 102.06]], np.float32),
    ),
    "margin": (
        160,
        np.array([[49.56, 64.94], [109.44, 64.94], [79.5, 90.57], [54.01, 110.38], [104.99, 110.38]], np.float32),
    ),
}

# insightface's ``arcface_dst`` (face_align.py), not measured here (and not quite symmetric, as
# published): the points every ArcFace-family model (ArcFace, SFace, AuraFace, EdgeFace) was trained
# on; a model's own side scales it (:mod:`facerec.align.arcface`).
ARCFACE_TEMPLATE: tuple[int, np.ndarray] = (
    112,
    np.array(
        [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
        np.float32,
    ),
)


def template_for(style: str, size: int) -> np.ndarray:
    """The five points of crop style ``style`` scaled to a crop of side ``size``."""
    side, points = ARCFACE_TEMPLATE if style == "arcface" else TEMPLATES[style]
    return points * (size / side)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 least-squares similarity transform taking points ``src`` (n, 2) onto ``dst``
    (Umeyama's closed form, without reflection)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    var = (s**2).sum() / len(src)
    scale = (sig * np.diag(sign)).sum() / var if var > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = md - scale * rot @ ms
    return m


def warp(
    image: np.ndarray, landmarks: np.ndarray, template: np.ndarray, size: int, *, border: str = "replicate"
) -> np.ndarray:
    """uint8 (size, size, 3): ``image`` warped so that ``landmarks`` land on ``template``. ``border``
    ``constant`` fills what lies outside the image with 0, as insightface's ``norm_crop`` does."""
    import cv2

    m = similarity(landmarks, template)
    mode = cv2.BORDER_CONSTANT if border == "constant" else cv2.BORDER_REPLICATE
    return cv2.warpAffine(
        np.ascontiguousarray(image), m, (size, size), flags=cv2.INTER_LINEAR, borderMode=mode, borderValue=0
    )
