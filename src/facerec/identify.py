"""k-NN identification with its evidence and an explicit ``unknown`` outcome.

Every prediction carries its nearest neighbours. When the evidence is farther than the
open-set threshold the answer is ``unknown`` (label -1), still listing the nearest candidates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .calibrate import Calibration
from .errors import InputError
from .gallery import Gallery

UNKNOWN = "unknown"


@dataclass
class Neighbor:
    """One enrolled sample near the query."""

    name: str
    label: int
    distance: float
    sample_id: str
    index: int


@dataclass
class Prediction:
    """The k-NN decision for one face.

    ``distance`` is the distance to the nearest enrolled sample of the voted person;
    ``votes`` how many of the k nearest samples are that person; ``neighbors`` the top-k
    evidence, nearest first. When ``distance`` exceeds ``threshold`` the face is rejected:
    ``name`` is ``"unknown"``, ``label`` -1, and ``candidate`` keeps the voted person.
    """

    name: str
    label: int
    distance: float
    votes: int
    neighbors: list[Neighbor] = field(default_factory=list)
    candidate: str = ""
    threshold: float | None = None

    @property
    def unknown(self) -> bool:
        return self.label < 0


def identify(
    gallery: Gallery, embeddings: np.ndarray, *, topk: int = 5, calibration: Calibration | None = None
) -> list[Prediction]:
    """Predict who each embedding is.

    Args:
        embeddings: float32 (n, d), from the gallery's pipeline.
        topk: neighbours reported as evidence (independent of the gallery's voting k).
        calibration: the open-set threshold; None means closed set (always the nearest person),
            as the seed did. See :func:`facerec.calibrate.resolve_threshold`.
    The vote is the majority of the k nearest samples; a tie goes to the tied person with
    the nearest sample (scikit-learn's own predict would pick the smaller label).
    """
    gallery.check_fitted()
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[1] != gallery.dim:
        raise InputError(f"expected embeddings of shape (n, {gallery.dim}), got {emb.shape}")
    if len(emb) == 0:
        return []
    k = min(gallery.k, len(gallery))
    dist, idx = gallery.kneighbors(emb, max(k, topk))
    out = []
    for drow, irow in zip(dist, idx):
        keep = irow >= 0  # an approximate index may find fewer neighbours than asked
        drow, irow = drow[keep], irow[keep]
        labels = gallery.labels_[irow]
        voters = labels[:k]
        counts = np.bincount(voters, minlength=len(gallery.names_))
        best = counts.max()
        # First tied label in nearest-first order = the tied person with the nearest sample.
        label = int(next(l for l in voters if counts[l] == best))
        nearest = float(drow[np.flatnonzero(labels == label)[0]])
        neighbors = [
            Neighbor(gallery.names_[int(l)], int(l), float(d), gallery.sample_ids_[int(i)], int(i))
            for d, l, i in zip(drow[:topk], labels[:topk], irow[:topk])
        ]
        name = gallery.names_[label]
        threshold = calibration.threshold if calibration else None
        if threshold is not None and nearest > threshold:
            out.append(Prediction(UNKNOWN, -1, nearest, int(best), neighbors, name, threshold))
        else:
            out.append(Prediction(name, label, nearest, int(best), neighbors, name, threshold))
    return out
