"""The distance under which two faces may be one person, for clustering: a verification threshold
at a stated false-accept rate, never a hand-set constant.

Two sources, best first:

1. A gallery with enough people (``--model``): the quantile at :data:`CLUSTER_FAR` of the
   distances between faces of *different* enrolled people. The user's own faces, camera and
   pipeline calibrate it.
2. The pipeline's reference calibration (:mod:`facerec.gallery.reference`, the same table that
   identification and verification use): the distance at pairwise FAR :data:`CLUSTER_FAR` on LFW
   View 1's development people.

Otherwise the embedder's documented verification threshold (its LFW equal-error point), said so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLUSTER_FAR = 1e-4  # pairwise false-accept rate: a pair of strangers under the threshold 1 time in 10,000
MIN_PEOPLE = 20  # a gallery with fewer people has too few impostor pairs to calibrate on
MAX_PAIRS = 2_000_000  # impostor pairs sampled (the exact quantile over n^2/2 pairs is no better)


@dataclass(frozen=True)
class ClusterThreshold:
    value: float
    source: str  # "explicit", "gallery", "calibrated" or "default"
    detail: str

    def describe(self) -> str:
        return f"{self.value:.4f} ({self.source}: {self.detail})"


def impostor_threshold(emb: np.ndarray, labels: np.ndarray, far: float = CLUSTER_FAR, seed: int = 0) -> float:
    """The ``far`` quantile of the distances between faces of different people (sampled pairs)."""
    emb = np.asarray(emb, np.float32)
    labels = np.asarray(labels)
    n = len(emb)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, MAX_PAIRS)
    b = rng.integers(0, n, MAX_PAIRS)
    keep = labels[a] != labels[b]
    a, b = a[keep], b[keep]
    d = np.linalg.norm(emb[a] - emb[b], axis=1)
    return float(np.quantile(d, far))


def cluster_threshold(config, *, threshold: float | str | None = None, gallery=None) -> ClusterThreshold:
    """The threshold a clustering with pipeline ``config`` uses (see the module's docstring)."""
    from facerec.embed import get_spec

    if threshold not in (None, "auto"):
        value = float(threshold)
        return ClusterThreshold(value, "explicit", "given on the command line")
    if gallery is not None and gallery.people_count >= MIN_PEOPLE:
        value = impostor_threshold(gallery.embeddings_, gallery.labels_)
        return ClusterThreshold(
            value, "gallery", f"pairwise FAR {CLUSTER_FAR:g} among the gallery's {gallery.people_count} people"
        )
    from facerec.gallery.reference import reference_for

    ref = reference_for(config)
    if ref is not None:
        return ClusterThreshold(
            ref.threshold_at_far(CLUSTER_FAR), "calibrated", f"pairwise FAR {CLUSTER_FAR:g}, {ref.describe()}"
        )
    spec = get_spec(config.embedder)
    if spec.default_threshold is None:  # an onnx: model before `facerec calibrate`: no number to fall back on
        from facerec.errors import InputError

        raise InputError(
            f"{config.embedder} has not been calibrated, so no distance is known to mean 'the same person': run "
            f"`facerec calibrate --embedder {config.embedder} --lfw-dir DIR` once, or pass --threshold"
        )
    return ClusterThreshold(
        spec.default_threshold,
        "default",
        f"{config.embedder}'s documented verification threshold; no reference calibration for "
        f"{config.detector}/{config.alignment}/flip={config.flip} (bench/reference.py measures one)",
    )
