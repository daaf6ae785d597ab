"""k-NN identification with its evidence and an explicit ``unknown`` outcome.

Every prediction carries its nearest neighbours. When the evidence is farther than the
open-set threshold the answer is ``unknown`` (label -1), still listing the nearest candidates.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from facerec.errors import InputError
from facerec.gallery import Gallery
from facerec.gallery.calibration import Calibration

UNKNOWN = "unknown"
#: A nearest enrolled sample this close (Euclidean; d^2/2 in cosine distance) is the query's own image: the same pixels give a distance of
#: ~5e-4 (float32 rounding in sqrt(2 - 2 cos)); two photos of one person are rarely under 0.2 apart.
SAME_IMAGE_DISTANCE = 0.01
#: Neighbours searched per face when the faces are of one image, so that a face whose first choice
#: went to a closer face still finds its next person among them.
ONE_IMAGE_SEARCH = 20


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
    note: str = ""  # why the answer is not the plain vote (another face of the image took that person)

    @property
    def unknown(self) -> bool:
        return self.label < 0


def identify(
    gallery: Gallery,
    embeddings: np.ndarray,
    *,
    topk: int = 5,
    calibration: Calibration | None = None,
    one_image: bool = False,
) -> list[Prediction]:
    """Predict who each embedding is.

    Args:
        embeddings: float32 (n, d), from the gallery's pipeline.
        topk: neighbours reported as evidence (independent of the gallery's voting k).
        calibration: the open-set threshold; None means closed set (always the nearest person),
            as the seed did. See :func:`facerec.gallery.calibration.resolve_threshold`.
    The vote is the majority of the k nearest samples; a tie goes to the tied person with
    the nearest sample (scikit-learn's own predict would pick the smaller label). Two rules keep
    the vote from overriding clear evidence:

    * with a threshold, only neighbours within it vote (one beyond it is no better evidence than
      a stranger's face): a nearest neighbour well inside the threshold is not outvoted by farther
      samples of someone else outside it; when none is within, the answer is unknown and the
      plain k-NN vote is its ``candidate``;
    * a nearest neighbour within :data:`SAME_IMAGE_DISTANCE` (the query is that enrolled image)
      names its person, whatever the others say.

    ``one_image``: the embeddings are faces of one image (or video frame), and one person appears
    at most once in it: faces are given their people nearest first, and a face whose person went to
    a closer face gets its next person within the threshold, else ``unknown``
    (:func:`one_person_per_face`).
    """
    gallery.check_fitted()
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[1] != gallery.dim:
        raise InputError(f"expected embeddings of shape (n, {gallery.dim}), got {emb.shape}")
    if not np.isfinite(emb).all():
        raise InputError("embeddings hold NaN or infinite values")
    if len(emb) == 0:
        return []
    k = min(gallery.k, len(gallery))
    search = max(k, topk, ONE_IMAGE_SEARCH if one_image and len(emb) > 1 else 0)
    dist, idx = gallery.kneighbors(emb, search)
    out = []
    for drow, irow in zip(dist, idx):
        keep = irow >= 0  # an approximate index may find fewer neighbours than asked
        drow, irow = drow[keep], irow[keep]
        labels = gallery.labels_[irow]
        threshold = calibration.threshold if calibration else None
        voters = labels[:k]
        if len(irow) == 0:  # an approximate index found no neighbour at all
            out.append(Prediction(UNKNOWN, -1, float("inf"), 0, [], "", calibration.threshold if calibration else None))
            continue
        same_image = SAME_IMAGE_DISTANCE if gallery.metric == "euclidean" else SAME_IMAGE_DISTANCE**2 / 2
        if drow[0] <= same_image:
            voters = voters[:1]  # the query is an enrolled image: its person, not a vote
        elif threshold is not None and (drow[:k] <= threshold).any():
            voters = voters[drow[:k] <= threshold]  # only evidence within the threshold votes
        label, votes = _vote(voters, len(gallery.names_))
        nearest = float(drow[np.flatnonzero(labels == label)[0]])
        neighbors = [
            Neighbor(gallery.names_[int(l)], int(l), float(d), gallery.sample_ids_[int(i)], int(i))
            for d, l, i in zip(drow[:topk], labels[:topk], irow[:topk])
        ]
        name = gallery.names_[label]
        if threshold is not None and nearest > threshold:
            out.append(Prediction(UNKNOWN, -1, nearest, votes, neighbors, name, threshold))
        else:
            out.append(Prediction(name, label, nearest, votes, neighbors, name, threshold))
    if one_image and len(out) > 1:
        return one_person_per_face(out, gallery, dist, idx, k)
    return out


def one_person_per_face(
    preds: list[Prediction], gallery: Gallery, dist: np.ndarray, idx: np.ndarray, k: int
) -> list[Prediction]:
    """One image's predictions with no person named twice: the faces nearest their person keep
    it (assignment by distance, greedy); another face that chose the same person takes its next
    person among its neighbours ``dist``/``idx`` (float32/int64 (n, m), nearest first) within its
    threshold, else is ``unknown`` with the taken person as its ``candidate``."""
    out = list(preds)
    taken: dict[int, int] = {}  # label -> face that holds it
    for i in sorted(range(len(out)), key=lambda i: (out[i].unknown, out[i].distance)):
        p = out[i]
        if p.unknown:
            continue
        if p.label not in taken:
            taken[p.label] = i
            continue
        keep = idx[i] >= 0
        labels, d = gallery.labels_[idx[i][keep]], dist[i][keep]
        within = np.ones(len(d), bool) if p.threshold is None else d <= p.threshold
        free = [j for j in np.flatnonzero(within) if int(labels[j]) not in taken]
        note = f"{p.name} is the nearer match of another face in this image"
        if free:
            label = int(labels[free[0]])
            out[i] = replace(
                p,
                name=gallery.names_[label],
                label=label,
                distance=float(d[free[0]]),
                votes=int(np.sum(labels[:k] == label)),
                note=note,
            )
            taken[label] = i
        else:
            out[i] = replace(p, name=UNKNOWN, label=-1, note=note)
    return out


def _vote(voters: np.ndarray, n_labels: int) -> tuple[int, int]:
    """The majority label among ``voters`` (nearest first) and its votes; a tie goes to the tied
    label seen first, i.e. the tied person with the nearest sample."""
    counts = np.bincount(voters, minlength=n_labels)
    best = counts.max()
    return int(next(l for l in voters if counts[l] == best)), int(best)
