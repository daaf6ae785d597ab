"""Open-set thresholds calibrated on the user's own gallery.

Leave-one-out over the enrolled samples: for each sample, its nearest *other* sample of the
same person is a genuine distance, and its nearest sample of any *other* person is an impostor
distance: exactly what a stranger would see if that person were not enrolled. The threshold is
the impostor distance quantile at the target false-accept rate (FAR): a stranger's face is
accepted as someone only when it is closer than that.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .errors import InputError

SOURCES = ("calibrated", "default", "explicit")

#: Below this many impostor distances under the threshold, a quantile is noise, not a measurement.
MIN_IMPOSTORS_BELOW = 5
MIN_PEOPLE = 3


@dataclass
class Calibration:
    """Where an open-set threshold came from.

    source: ``calibrated`` (from this gallery), ``default`` (the embedder's documented value,
    because the gallery was too small), or ``explicit`` (``--threshold``).
    """

    threshold: float
    source: str
    far: float | None = None
    genuine: int = 0
    impostor: int = 0
    tar: float | None = None  # fraction of genuine LOO distances accepted at this threshold
    reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def __post_init__(self):
        check_threshold(self.threshold, "calibration threshold")
        if self.source not in SOURCES:
            raise InputError(f"calibration source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.far is not None and not (_real(self.far) and 0 < self.far < 1):
            raise InputError(f"calibration far must be a rate between 0 and 1, got {self.far!r}")
        if self.tar is not None and not (_real(self.tar) and 0 <= self.tar <= 1):
            raise InputError(f"calibration tar must be between 0 and 1, got {self.tar!r}")
        for name in ("genuine", "impostor"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise InputError(f"calibration {name} must be a count >= 0, got {v!r}")
        if not isinstance(self.reason, str):
            raise InputError(f"calibration reason must be text, got {type(self.reason).__name__}")

    @classmethod
    def from_dict(cls, d: object) -> Calibration:
        if not isinstance(d, dict):
            raise InputError(f"calibration must be a mapping, got {type(d).__name__}")
        if "threshold" not in d or "source" not in d:
            raise InputError("calibration lacks its threshold or source")
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def describe(self) -> str:
        if self.source == "calibrated":
            return (
                f"calibrated on the gallery for FAR {self.far:g} ({self.impostor} impostor and "
                f"{self.genuine} genuine leave-one-out distances; TAR {self.tar:.3f})"
            )
        if self.source == "default":
            return f"the embedder's default ({self.reason})"
        return "given explicitly"


def pairwise_distances(a: np.ndarray, b: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Distances between rows of a (n, d) and b (m, d), float32 (n, m); inputs L2-normalised."""
    sim = a @ b.T
    if metric == "cosine":
        return (1.0 - sim).astype(np.float32)
    return np.sqrt(np.maximum(2.0 - 2.0 * sim, 0.0)).astype(np.float32)


def loo_distances(
    embeddings: np.ndarray, labels: np.ndarray, metric: str = "euclidean", chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor): each sample's nearest same-person and nearest other-person distance.

    Samples of a person with one image have no genuine distance (left out of ``genuine``)."""
    emb = np.asarray(embeddings, np.float32)
    labels = np.asarray(labels)
    genuine, impostor = [], []
    for start in range(0, len(emb), chunk):
        d = pairwise_distances(emb[start : start + chunk], emb, metric)
        rows = np.arange(d.shape[0])
        d[rows, start + rows] = np.inf  # leave the sample itself out
        same = labels[start : start + chunk, None] == labels[None, :]
        g = np.where(same, d, np.inf).min(axis=1)
        genuine.append(g[np.isfinite(g)])
        impostor.append(np.where(same, np.inf, d).min(axis=1))
    return np.concatenate(genuine), np.concatenate(impostor)


def calibrate(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    far: float = 0.01,
    metric: str = "euclidean",
    default_euclidean: float,
) -> Calibration:
    """Choose the distance threshold for the target FAR, or fall back to the default, saying why."""
    if not 0 < far < 1:
        raise InputError(f"far must be between 0 and 1, got {far}")
    people = len(np.unique(labels))
    genuine, impostor = loo_distances(embeddings, labels, metric)
    expected_below = far * len(impostor)
    if people < MIN_PEOPLE or expected_below < MIN_IMPOSTORS_BELOW or len(genuine) == 0:
        need = int(np.ceil(MIN_IMPOSTORS_BELOW / far))
        reason = (
            f"gallery too small to calibrate for FAR {far:g}: {people} people and {len(embeddings)} images; "
            f"needs >= {MIN_PEOPLE} people, >= {need} images and some person with 2+ images"
        )
        return Calibration(
            default_threshold(default_euclidean, metric), "default", far, len(genuine), len(impostor), None, reason
        )
    threshold = float(np.quantile(impostor, far, method="lower"))
    tar = float(np.mean(genuine <= threshold))
    return Calibration(threshold, "calibrated", far, len(genuine), len(impostor), tar)


def resolve_threshold(
    gallery, *, threshold: float | None = None, closed_set: bool = False, align: str | None = None
) -> Calibration | None:
    """The threshold a query uses: none for ``closed_set``; ``threshold`` when given; else the
    gallery's calibration when the query is aligned as the gallery was; else the embedder's
    default (a calibration measured under one alignment does not transfer to another)."""
    if closed_set:
        return None
    if threshold is not None:
        return Calibration(check_threshold(threshold, "threshold"), "explicit")
    trained_align = gallery.pipeline.detector if gallery.pipeline else None
    if gallery.calibration and (align is None or align == trained_align):
        return gallery.calibration
    from .embed import get_spec

    if gallery.pipeline is None:
        raise InputError("the model records no pipeline, so no default threshold applies; pass a threshold")
    spec = get_spec(gallery.pipeline.embedder)
    reason = (
        "the model holds no calibration"
        if not gallery.calibration
        else f"the model was calibrated with alignment {trained_align}, this run aligns with {align}"
    )
    return Calibration(default_threshold(spec.default_threshold, gallery.metric), "default", reason=reason)


def _real(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v)


def check_threshold(value: object, what: str = "threshold") -> float:
    """A distance threshold: a finite number > 0 (distances between unit vectors are <= 2)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InputError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


def default_threshold(euclidean_threshold: float, metric: str) -> float:
    """Embedder defaults are Euclidean distances between unit vectors; cosine distance = d^2 / 2."""
    return euclidean_threshold**2 / 2 if metric == "cosine" else euclidean_threshold
