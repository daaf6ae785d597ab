"""Open-set thresholds calibrated on the user's own gallery.

Leave-one-out over the enrolled samples: for each sample, its nearest *other* sample of the
same person is a genuine distance, and its nearest sample of any *other* person is an impostor
distance: exactly what a stranger would see if that person were not enrolled. The threshold is
the impostor distance quantile at the target false-accept rate (FAR): a stranger's face is
accepted as someone only when it is closer than that.
"""

from __future__ import annotations

import copy
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
    incremental: bool = False  # the distances were updated change by change since the last full run

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
                + (", updated with each change since the last full calibration" if self.incremental else "")
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
    genuine, impostor = per_sample_distances(embeddings, labels, metric, chunk)
    return genuine[np.isfinite(genuine)], impostor[np.isfinite(impostor)]


def per_sample_distances(
    embeddings: np.ndarray, labels: np.ndarray, metric: str = "euclidean", chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's leave-one-out (genuine, impostor) distance, float32 (n,) each, ``inf`` where it
    has none (a person's only image has no genuine distance). Stored per row with a gallery, so a
    change recomputes only the rows it touches (:func:`update_distances`). Exact: O(n^2 d)."""
    emb = np.asarray(embeddings, np.float32)
    labels = np.asarray(labels)
    genuine = np.full(len(emb), np.inf, np.float32)
    impostor = np.full(len(emb), np.inf, np.float32)
    for start in range(0, len(emb), chunk):
        d = pairwise_distances(emb[start : start + chunk], emb, metric)
        rows = np.arange(d.shape[0])
        d[rows, start + rows] = np.inf  # leave the sample itself out
        same = labels[start : start + chunk, None] == labels[None, :]
        genuine[start : start + len(d)] = np.where(same, d, np.inf).min(axis=1)
        impostor[start : start + len(d)] = np.where(same, np.inf, d).min(axis=1)
    return genuine, impostor


#: Neighbours a new face is compared with when the distances are updated incrementally: the new
#: face's nearest impostor, and the faces for which the new face became the nearest, lie among them.
UPDATE_NEIGHBOURS = 64


@dataclass
class DistanceUpdate:
    """The per-face distances an enrolment adds and changes (:func:`distances_for_new`)."""

    genuine: np.ndarray  # float32 (m,), the new faces' own
    impostor: np.ndarray
    changed: dict  # existing row -> (genuine, impostor): neighbours the new faces moved closer


def distances_for_new(gallery, emb: np.ndarray, labels: np.ndarray) -> DistanceUpdate:
    """The leave-one-out distances of new faces ``emb`` (labels in the gallery's numbering; new
    people numbered past it) against the gallery and each other, and the existing faces whose
    nearest genuine or impostor face one of them becomes. The gallery is not changed, so a store can
    write the result before anyone sees it. Cost O(m * (search + a person's images)) for m new
    faces, whatever the gallery's size (the exact fallback for a person with more than
    :data:`UPDATE_NEIGHBOURS` images near the new face is O(n), and rare)."""
    emb = np.asarray(emb, np.float32)
    labels = np.asarray(labels, np.int64)
    g_emb, g_labels, metric = gallery.embeddings_, gallery.labels_, gallery.metric
    g_gen, g_imp = gallery.genuine_d_, gallery.impostor_d_
    d_new = pairwise_distances(emb, emb, metric)
    np.fill_diagonal(d_new, np.inf)
    same_new = labels[:, None] == labels[None, :]
    genuine = np.where(same_new, d_new, np.inf).min(axis=1).astype(np.float32)
    impostor = np.where(same_new, np.inf, d_new).min(axis=1).astype(np.float32)
    dist, idx = gallery.kneighbors(emb, min(UPDATE_NEIGHBOURS, len(gallery)))
    changed: dict = {}

    def lower(row, g=None, i=None):
        cg, ci = changed.get(row, (g_gen[row], g_imp[row]))
        if g is not None and not (g >= cg):  # NaN (not computed) is replaced too
            cg = g
        if i is not None and not (i >= ci):
            ci = i
        changed[row] = (cg, ci)

    for r in range(len(emb)):
        keep = idx[r] >= 0
        drow, irow = dist[r][keep], idx[r][keep]
        other = g_labels[irow] != labels[r]
        if other.any():
            impostor[r] = min(impostor[r], drow[other][0])
        elif len(irow) and len(irow) < len(gallery):  # all near faces are this person's: look at everyone
            d_all = pairwise_distances(emb[r : r + 1], g_emb, metric)[0]
            d_all[g_labels == labels[r]] = np.inf
            impostor[r] = min(impostor[r], d_all.min())
        for j, d in zip(irow[other], drow[other]):
            if not (d >= g_imp[j]):
                lower(int(j), i=float(d))
        mates = gallery.rows_of_label(int(labels[r]))
        if len(mates):
            d_m = pairwise_distances(emb[r : r + 1], g_emb[mates], metric)[0]
            genuine[r] = min(genuine[r], d_m.min())
            for j, d in zip(mates, d_m):
                if not (d >= g_gen[j]):
                    lower(int(j), g=float(d))
    changed = {j: v for j, v in changed.items() if v != (g_gen[j], g_imp[j])}
    return DistanceUpdate(genuine, impostor, changed)


def calibrate(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    far: float = 0.01,
    metric: str = "euclidean",
    default_euclidean: float,
) -> Calibration:
    """Choose the distance threshold for the target FAR, or fall back to the default, saying why."""
    genuine, impostor = per_sample_distances(embeddings, labels, metric)
    return threshold_for(genuine, impostor, labels, far=far, metric=metric, default_euclidean=default_euclidean)


def threshold_for(
    genuine: np.ndarray,
    impostor: np.ndarray,
    labels: np.ndarray,
    *,
    far: float = 0.01,
    metric: str = "euclidean",
    default_euclidean: float,
    people: int | None = None,
) -> Calibration:
    """The calibration from per-sample distances (:func:`per_sample_distances`): the impostor
    quantile at ``far``, or the embedder's default when the gallery is too small, saying why."""
    people = len(np.unique(labels)) if people is None else people  # O(n log n): callers that know, say
    return SortedDistances(genuine, impostor).calibration(
        far=far, people=people, images=len(labels), metric=metric, default_euclidean=default_euclidean
    )


class SortedDistances:
    """The finite genuine and impostor distances of a gallery's faces, kept sorted, so the
    threshold after a change costs a look-up and each change a memmove (O(n) bytes moved, no
    O(n log n) work): what keeps an enrolment's cost flat at 10^6 faces."""

    def __init__(self, genuine: np.ndarray, impostor: np.ndarray):
        self.genuine = np.sort(_finite(genuine))
        self.impostor = np.sort(_finite(impostor))

    def after(self, old: tuple, new: tuple) -> SortedDistances:
        """A copy as it will be once faces' (genuine, impostor) values ``old`` became ``new``; this
        one is untouched (a change installs the copy only once it is stored)."""
        dist = copy.copy(self)
        dist.replace(old[0], old[1], new[0], new[1])  # makes new arrays: this one's stay as they are
        return dist

    def replace(self, old_genuine, old_impostor, new_genuine, new_impostor) -> None:
        """Faces' distances changed from old (NaN/inf for a new face) to new."""
        self.genuine = _swap(self.genuine, old_genuine, new_genuine)
        self.impostor = _swap(self.impostor, old_impostor, new_impostor)

    def calibration(
        self, *, far: float, people: int, images: int, metric: str, default_euclidean: float
    ) -> Calibration:
        if not 0 < far < 1:
            raise InputError(f"far must be between 0 and 1, got {far}")
        genuine, impostor = self.genuine, self.impostor
        if people < MIN_PEOPLE or far * len(impostor) < MIN_IMPOSTORS_BELOW or len(genuine) == 0:
            need = int(np.ceil(MIN_IMPOSTORS_BELOW / far))
            reason = (
                f"gallery too small to calibrate for FAR {far:g}: {people} people and {images} images; "
                f"needs >= {MIN_PEOPLE} people, >= {need} images and some person with 2+ images"
            )
            return Calibration(
                default_threshold(default_euclidean, metric), "default", far, len(genuine), len(impostor), None, reason
            )
        threshold = float(impostor[int(far * (len(impostor) - 1))])  # np.quantile(..., method="lower")
        tar = float(np.searchsorted(genuine, threshold, side="right") / len(genuine))
        return Calibration(threshold, "calibrated", far, len(genuine), len(impostor), tar)


def _finite(x) -> np.ndarray:
    x = np.asarray(x, np.float32).ravel()
    return x[np.isfinite(x)]


def _swap(sorted_values: np.ndarray, old, new) -> np.ndarray:
    """``sorted_values`` less the ``old`` values, plus the ``new`` ones, still sorted: one copy of
    the pieces between the changed positions (at 10^6 faces the copy is the whole cost)."""
    old, new = np.sort(_finite(old)), np.sort(_finite(new))
    drop = np.zeros(0, np.int64)
    if len(old) and len(sorted_values):
        rank = np.arange(len(old)) - np.searchsorted(old, old, side="left")  # among equal old values
        pos = np.searchsorted(sorted_values, old, side="left") + rank
        ok = pos < len(sorted_values)
        ok[ok] = sorted_values[pos[ok]] == old[ok]
        drop = np.unique(pos[ok])
    if not len(drop) and not len(new):
        return sorted_values
    # where each new value goes among the values that stay: its place in the whole array, less
    # the dropped values before it (a dropped value equal to it sits before it: side="left")
    at = np.searchsorted(sorted_values, new, side="left")
    at_kept = at - np.searchsorted(drop, at, side="left")
    # walk the kept runs (between dropped positions) and cut them where new values go in
    kept_bounds = np.concatenate([[-1], drop, [len(sorted_values)]])
    pieces, inserted, done = [], 0, 0  # done: kept values emitted so far
    for a, b in zip(kept_bounds[:-1].tolist(), kept_bounds[1:].tolist()):
        start = a + 1  # this run is sorted_values[start:b]; its kept index starts at `done`
        while inserted < len(new) and at_kept[inserted] <= done + (b - start):
            cut = start + int(at_kept[inserted]) - done
            pieces.append(sorted_values[start:cut])
            done += cut - start
            start = cut
            pieces.append(new[inserted : inserted + 1].astype(sorted_values.dtype))
            inserted += 1
        pieces.append(sorted_values[start:b])
        done += b - start
    return np.concatenate(pieces)


def ensure_distances(gallery) -> None:
    """Galleries saved before 0.3 carry no per-face distances: compute them once (O(n^2))."""
    if np.isnan(gallery.genuine_d_).any() or np.isnan(gallery.impostor_d_).any():
        gallery.genuine_d_[:], gallery.impostor_d_[:] = per_sample_distances(
            gallery.embeddings_, gallery.labels_, gallery.metric
        )


def refresh_calibration(gallery) -> None:
    """Recompute a gallery's threshold from its per-face distances (O(n)), for stores that write
    rows but not the header on every change; an explicit threshold, or faces whose distances were
    never computed, leave it as stored."""
    from .embed import get_spec
    from .pipeline.config import DEFAULT_FAR

    cal = gallery.calibration
    if gallery.pipeline is None or (cal is not None and cal.source == "explicit"):
        return
    if np.isnan(gallery.genuine_d_).any() or np.isnan(gallery.impostor_d_).any():
        return
    new = threshold_for(
        gallery.genuine_d_,
        gallery.impostor_d_,
        gallery.labels_,
        far=(cal.far if cal and cal.far else None) or DEFAULT_FAR,
        metric=gallery.metric,
        default_euclidean=get_spec(gallery.pipeline.embedder).default_threshold,
    )
    if cal is None or new.threshold != cal.threshold:
        new.incremental = True
        gallery.calibration = new


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
