"""The quality gate: faces too small, too unsure, too blurred, cut off or turned away never reach a
cluster. Photo tools' users say junk faces are what poisons their groups; each rejected face is
listed with the reason, so a user can see what the gate did and loosen it.

The thresholds are stated once here (:class:`QualityGate`'s defaults), printed by
``facerec cluster --help`` and in the README, and each can be changed on the command line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from facerec.errors import InputError

SHARPNESS_SIDE = 64  # px: the face is measured at this size, so the blur measure does not depend on its size
# A face whose box covers at least this share of the picture is the picture (an ID or badge photo,
# an avatar, a crop from a face dataset): the photo was framed on the face, and a box overshooting
# its edge is the detector's framing, not a cut, so it counts as wholly inside. Measured: LFW pair
# images cropped to their MTCNN box, re-detected (MTCNN, YuNet): the subject covers >= 0.78 of the
# crop; LFW faces cut through the middle as tests/test_people.py cuts them: <= 0.50.
FILLS_PICTURE = 0.65


@dataclass(frozen=True)
class QualityGate:
    """What a face needs to be clustered.

    min_size: the shorter side of its detector box, px (a 20-px face has too little detail to
        tell people apart; LFW's faces are about 110 px).
    min_score: the detector's confidence.
    min_sharpness: variance of the Laplacian of the face's grey image at 64x64 px. Measured on
        330 LFW faces (YuNet boxes): 1st percentile 129, median 392; the same faces under a
        Gaussian blur of sigma 3 px: median 33, 95th percentile 67.
    max_yaw: how far the nose sits from the eyes' midpoint, in eye distances (0 frontal; a face
        turned by about 45 degrees passes 0.5; the largest of those 330 LFW faces: 0.44). Needs landmarks (YuNet, MTCNN); skipped without.
    min_inside: the share of the detector box inside the image (a face cut by the edge). YuNet
        boxes a half face as if it were whole: LFW faces cut through the middle kept 87-90% of
        their box inside, so the bar is 95%. A face that fills the picture (:data:`FILLS_PICTURE`)
        is wholly inside.
    """

    min_size: float = 40.0
    min_score: float = 0.8
    min_sharpness: float = 80.0
    max_yaw: float = 0.5
    min_inside: float = 0.95

    def __post_init__(self):
        for name, v in asdict(self).items():
            if not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
                raise InputError(f"quality gate {name} must be a number >= 0, got {v!r}")

    def measure(self, image: np.ndarray, box, score: float, landmarks) -> dict:
        """The face's measures: size, score, sharpness, yaw (None without landmarks), inside."""
        h, w = image.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in box)
        bw, bh = max(x2 - x1, 0.0), max(y2 - y1, 0.0)
        ix = max(0.0, min(x2, w) - max(x1, 0.0))
        iy = max(0.0, min(y2, h) - max(y1, 0.0))
        inside = (ix * iy) / (bw * bh) if bw * bh > 0 else 0.0
        if ix * iy >= FILLS_PICTURE * w * h:
            inside = 1.0
        return {
            "size": round(min(bw, bh), 1),
            "score": round(float(score), 4),
            "sharpness": round(sharpness(image, (x1, y1, x2, y2)), 1),
            "yaw": None if landmarks is None else round(yaw(np.asarray(landmarks, np.float64)), 3),
            "inside": round(inside, 3),
        }

    def reason(self, q: dict) -> str | None:
        """Why a face with measures ``q`` is rejected, or None when it passes."""
        if q["size"] < self.min_size:
            return f"too small: {q['size']:g} px < {self.min_size:g} px"
        if q["inside"] < self.min_inside:
            return (
                f"cut off by the image edge: {100 * q['inside']:.0f}% of the face inside < {100 * self.min_inside:.0f}%"
            )
        if q["score"] < self.min_score:
            return f"unsure detection: score {q['score']:.2f} < {self.min_score:g}"
        if q["sharpness"] < self.min_sharpness:
            return f"blurred: sharpness {q['sharpness']:g} < {self.min_sharpness:g}"
        if q["yaw"] is not None and abs(q["yaw"]) > self.max_yaw:
            return f"turned away: yaw {abs(q['yaw']):.2f} > {self.max_yaw:g}"
        return None


def sharpness(image: np.ndarray, box) -> float:
    """Variance of the Laplacian of the face's grey image, resized to 64x64 (higher: sharper)."""
    import cv2

    h, w = image.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return 0.0
    grey = cv2.cvtColor(np.ascontiguousarray(image[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    grey = cv2.resize(grey, (SHARPNESS_SIDE, SHARPNESS_SIDE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def yaw(landmarks: np.ndarray) -> float:
    """The nose's offset from the eyes' midpoint along the eye line, in eye distances (signed)."""
    left, right, nose = landmarks[0], landmarks[1], landmarks[2]
    axis = right - left
    span = float(np.hypot(*axis))
    if span < 1e-6:
        return float("inf")  # both eyes on one point: a profile
    return float(np.dot(nose - (left + right) / 2, axis) / span**2)
