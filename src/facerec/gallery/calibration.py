"""Open-set thresholds: a distance under which a face is named someone, chosen so that a stated
share of strangers (people not enrolled) would be named someone: the FPIR, default 1 in 100.

A stranger searched against N enrolled faces gets N chances, so one threshold cannot serve every
gallery: it is derived from the gallery's size each time the gallery changes.

* While the gallery is too small to measure itself (fewer than ``MIN_IMPOSTORS_BELOW / fpir`` faces,
  e.g. a family's photos), from the pipeline's reference calibration (:mod:`facerec.gallery.reference`):
  measured once on LFW View 1's development people, it gives each person's chance of matching a
  stranger by their photo count, and the threshold is where the gallery's FPIR meets the target.
* Once it is big enough, from the gallery's own leave-one-out distances: for each enrolled face,
  its nearest face of any *other* person is exactly what a stranger would see if that person were
  not enrolled, so the ``fpir`` quantile of those distances is an FPIR measured on the user's own
  faces. Faces that are near-copies of another person's face (the same photo under two names) are
  a data problem, not evidence: they are kept out and reported. And the measurement may move the
  reference's threshold only within what the reference allows (:data:`OWN_RANGE`): a few poisoned
  or odd enrolments cannot collapse it to zero or open it wide.
* With no reference for the pipeline (downloaded or custom weights never measured), the embedder's
  documented 1:1 threshold, said plainly to carry no measured promise.
* An embedder without even that (a user's ONNX model, ``onnx:...``, before ``facerec calibrate``)
  gets no threshold at all: :class:`UncalibratedError` names the ways out (``facerec calibrate``,
  ``--threshold``, ``--closed-set``). A guessed number would be a promise nobody measured, and the
  gallery's own distances alone (however many) cannot tell a near-copy from a look-alike.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass

import numpy as np

from facerec.errors import InputError
from facerec.gallery.distance import pairwise_distances

log = logging.getLogger("facerec.gallery.calibration")

SOURCES = ("calibrated", "reference", "default", "explicit")

#: Below this many impostor distances under the threshold, a quantile is noise, not a measurement.
MIN_IMPOSTORS_BELOW = 5
MIN_PEOPLE = 3
#: A gallery's own measurement may set a threshold whose reference FPIR lies between
#: fpir / OWN_RANGE[0] and fpir * OWN_RANGE[1]: it may be 10x stricter than the reference says (a
#: population of look-alikes), or let through at most twice the target by the reference's count.
OWN_RANGE = (10.0, 2.0)
#: Two faces of different people closer than this share of the embedder's 1:1 threshold are one
#: photo under two names (a re-encoded copy is ~0.05 apart in FaceNet's units, its 1:1 threshold 1.13).
NEAR_COPY_SHARE = 0.25


class UncalibratedError(InputError):
    """An embedder with no reference table and no documented threshold was asked for a decision."""


def uncalibrated_message(pipeline, *, closed_set: bool = True) -> str:
    """Why no decision can be made, and the ways out; ``closed_set``: whether the caller has that
    way out (identification has, 1:1 verification has not)."""
    from facerec.gallery.reference import pipeline_name

    name = pipeline.embedder if hasattr(pipeline, "embedder") else pipeline["embedder"]
    way_out = "--threshold T (a distance of your own)"
    if closed_set:
        way_out += " or --closed-set (the nearest person, no unknown decision)"
    return (
        f"{name} has not been calibrated (no reference table for {pipeline_name(pipeline)}), so no distance is "
        f"known to separate strangers from the people enrolled. Run `facerec calibrate --embedder {name} "
        f"--lfw-dir DIR` once (LFW with its View 1 lists) to measure it; until then pass {way_out}"
    )


def plain_rate(rate: float) -> str:
    """``0.01`` -> ``1 in 100``; ``0.0013`` -> ``1 in 770`` (two significant figures)."""
    if not rate or rate <= 0:
        return "none measured"
    n = 1 / rate
    digits = max(int(math.floor(math.log10(n))) - 1, 0)
    n = round(n / 10**digits) * 10**digits
    return f"1 in {n:,.0f}"


@dataclass
class Calibration:
    """An open-set or verification threshold and the promise it keeps.

    source: ``calibrated`` (measured on this gallery), ``reference`` (the pipeline's reference
    calibration, for this gallery's size), ``default`` (no measurement: the embedder's documented
    1:1 threshold) or ``explicit`` (``--threshold``).
    fpir: the share of strangers it would name someone (identification); far: the share of pairs
    of different people within it (verification: the target; identification: where it lies);
    tar: the share of pairs of one person's photos within it.
    """

    threshold: float
    source: str
    far: float | None = None
    genuine: int = 0
    impostor: int = 0
    tar: float | None = None  # fraction of genuine distances accepted at this threshold
    reason: str = ""
    incremental: bool = False  # the distances were updated change by change since the last full run
    fpir: float | None = None  # the stranger rate it promises (identification)
    people: int = 0  # the gallery it was derived for
    faces: int = 0
    reference: str = ""  # which reference calibration, when one was used
    near_copies: int = 0  # faces kept out of the measurement: near-copies of another person's face

    def to_dict(self) -> dict:
        return asdict(self)

    def __post_init__(self):
        check_threshold(self.threshold, "calibration threshold")
        if self.source not in SOURCES:
            raise InputError(f"calibration source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        for name in ("far", "fpir"):
            v = getattr(self, name)
            if v is not None and not (_real(v) and 0 <= v < 1):
                raise InputError(f"calibration {name} must be a rate between 0 and 1, got {v!r}")
        if self.tar is not None and not (_real(self.tar) and 0 <= self.tar <= 1):
            raise InputError(f"calibration tar must be between 0 and 1, got {self.tar!r}")
        for name in ("genuine", "impostor", "people", "faces", "near_copies"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise InputError(f"calibration {name} must be a count >= 0, got {v!r}")
        if not isinstance(self.reason, str) or not isinstance(self.reference, str):
            raise InputError("calibration reason and reference must be text")

    @classmethod
    def from_dict(cls, d: object) -> Calibration:
        if not isinstance(d, dict):
            raise InputError(f"calibration must be a mapping, got {type(d).__name__}")
        if "threshold" not in d or "source" not in d:
            raise InputError("calibration lacks its threshold or source")
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def describe(self) -> str:
        """Where the threshold came from, for logs and reports."""
        if self.source == "calibrated":
            return (
                f"measured on this gallery's {self.impostor:,} leave-one-out impostor distances for "
                f"FPIR {self.fpir or self.far:g}"
                + (f"; {self.near_copies} near-copies under other names kept out" if self.near_copies else "")
                + (f"; {self.reason}" if self.reason else "")
                + (", updated with each change since the last full calibration" if self.incremental else "")
            )
        if self.source == "reference":
            what = (
                f"FPIR {self.fpir:g} for {self.people:,} people, {self.faces:,} faces"
                if self.fpir
                else f"FAR {self.far:g}"
            )
            return f"{self.reference}, at {what}"
        if self.source == "default":
            return f"the embedder's default ({self.reason})"
        return "given explicitly" + (f" ({self.reason})" if self.reason else "")

    def promise(self) -> str:
        """What the threshold promises, in words a user reads ("about 1 in 100 strangers ...")."""
        if self.fpir is not None and self.source in ("calibrated", "reference"):
            where = "measured on this gallery" if self.source == "calibrated" else self.reference
            size = f"{self.people:,} {'person' if self.people == 1 else 'people'}, {self.faces:,} faces"
            return f"about {plain_rate(self.fpir)} strangers would be named someone ({where}; {size})"
        if self.far is not None and self.source in ("calibrated", "reference"):
            tar = f"; {self.tar:.1%} of pairs of one person's photos pass" if self.tar is not None else ""
            return f"about {plain_rate(self.far)} pairs of different people would be called the same person ({self.reference or 'measured'}{tar})"
        if self.source == "explicit":
            return "set by hand: " + (self.reason or "no error rate was measured for it")
        return f"no measured error rate: {self.reason}"


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


def check_rate(value: object, what: str) -> float:
    """A target rate: a number strictly between 0 and 1 (``0.01`` is 1 in 100)."""
    if not _real(value) or not 0 < value < 1:
        raise InputError(f"{what} must be a rate between 0 and 1 (e.g. 0.01 for 1 in 100), got {value!r}")
    return float(value)


def gallery_threshold(
    *,
    pipeline,
    metric: str,
    photo_counts: np.ndarray,
    fpir: float,
    default_euclidean: float,
    distances: SortedDistances | None = None,
) -> Calibration:
    """The open-set threshold of a gallery whose people have ``photo_counts`` photos (see the
    module's docstring): from its own leave-one-out ``distances`` when there are enough of them,
    else from the pipeline's reference calibration, else the embedder's default. Never fails on
    the data: every gallery gets a threshold, and the reason for it."""
    from facerec.gallery.reference import pipeline_name, reference_for

    fpir = check_rate(fpir, "fpir")
    counts = np.asarray(photo_counts, np.int64)
    counts = counts[counts > 0]
    people, faces = len(counts), int(counts.sum())
    ref = reference_for(pipeline) if pipeline is not None else None
    if ref is not None:
        t, far = ref.threshold_for_fpir(counts, fpir)
        base = Calibration(
            default_threshold(t, metric),
            "reference",
            far=far,
            tar=ref.tar_at(t),
            fpir=fpir,
            people=people,
            faces=faces,
            reference=ref.describe(),
        )
    elif default_euclidean is None:
        raise UncalibratedError(uncalibrated_message(pipeline))
    else:
        name = (
            "the model records no pipeline"
            if pipeline is None
            else f"no reference calibration for {pipeline_name(pipeline)}"
        )
        base = Calibration(
            default_threshold(default_euclidean, metric),
            "default",
            people=people,
            faces=faces,
            reason=f"{name}; the embedder's 1:1 equal-error threshold, its rate for strangers not measured",
        )
    if distances is None:
        return base
    # an embedder without a documented 1:1 threshold has a table here (else it was refused above):
    # the table's equal-error distance stands in for it, as the documented ones are LFW's
    equal_error = default_euclidean if default_euclidean is not None else _equal_error_threshold(ref)
    near_copy = default_threshold(NEAR_COPY_SHARE * equal_error, metric)
    imp = distances.impostor
    copies = int(np.searchsorted(imp, near_copy, side="right"))
    usable = imp[copies:]
    if people < MIN_PEOPLE or fpir * len(usable) < MIN_IMPOSTORS_BELOW:
        if copies:
            base.reason = (base.reason + "; " if base.reason else "") + _copies_note(copies)
            base.near_copies = copies
        return base
    t = float(usable[int(fpir * (len(usable) - 1))])  # np.quantile(..., method="lower")
    note = []
    if ref is not None:
        lo = default_threshold(ref.threshold_for_fpir(counts, fpir / OWN_RANGE[0])[0], metric)
        hi = default_threshold(ref.threshold_for_fpir(counts, min(fpir * OWN_RANGE[1], 0.5))[0], metric)
        if not lo <= t <= hi:
            note.append(
                f"its own measurement, {t:.4f}, lay outside what the reference allows "
                f"({lo:.4f} to {hi:.4f}) and was held to it"
            )
            t = min(max(t, lo), hi)
    elif t <= near_copy:
        return base
    gen = distances.genuine
    tar = float(np.searchsorted(gen, t, side="right") / len(gen)) if len(gen) else None
    if copies:
        note.append(_copies_note(copies))
    euclid = math.sqrt(2 * t) if metric == "cosine" else t
    return Calibration(
        t,
        "calibrated",
        far=ref.far_at(euclid) if ref is not None else None,
        genuine=len(gen),
        impostor=len(usable),
        tar=tar,
        reason="; ".join(note),
        fpir=fpir,
        people=people,
        faces=faces,
        reference=ref.describe() if ref is not None else "",
        near_copies=copies,
    )


def _equal_error_threshold(ref) -> float:
    """The first distance of a reference table at which the pairwise FAR reaches 1 - TAR."""
    return float(ref.thresholds[int(np.argmax(ref.far >= 1 - ref.tar))])


def _copies_note(n: int) -> str:
    return (
        f"{n} faces are near-copies of another person's face (one photo under two names?): "
        "kept out of the measurement; check those people"
    )


def stored_fpir(cal: Calibration | None) -> float | None:
    """The stranger rate a stored calibration was made for (0.2's gallery calibrations kept it as
    ``far``: their leave-one-out quantile was a stranger rate), or None."""
    if cal is None:
        return None
    return cal.fpir or (cal.far if cal.source == "calibrated" else None)


def open_set_calibration(
    gallery, *, fpir: float | None = None, distances: SortedDistances | None = None
) -> Calibration:
    """The open-set threshold of ``gallery`` as it is now, at ``fpir`` (default: the one it was
    calibrated for, else :data:`~facerec.pipeline.config.DEFAULT_FPIR`). ``distances``: the
    gallery's sorted leave-one-out distances when the caller keeps them (a served gallery); else
    they are sorted from the gallery's per-face columns, when computed."""
    from facerec.embed import get_spec
    from facerec.pipeline.config import DEFAULT_FPIR

    fpir = fpir or stored_fpir(gallery.calibration) or DEFAULT_FPIR
    if distances is None and len(gallery) and not np.isnan(gallery.impostor_d_).any():
        distances = SortedDistances(gallery.genuine_d_, gallery.impostor_d_)
    pipeline = gallery.pipeline
    return gallery_threshold(
        pipeline=pipeline,
        metric=gallery.metric,
        photo_counts=gallery.photo_counts(),
        fpir=min(fpir, 0.5),
        default_euclidean=get_spec(pipeline.embedder).default_threshold if pipeline is not None else 1.0,
        distances=distances,
    )


def verification_threshold(
    pipeline, *, far: float | None = None, threshold: float | None = None, metric: str = "euclidean"
) -> Calibration:
    """The 1:1 threshold: ``threshold`` when given; else the distance at pairwise ``far`` (default
    :data:`~facerec.pipeline.config.DEFAULT_VERIFY_FAR`) in the pipeline's reference calibration;
    else the embedder's documented equal-error threshold, said to carry no measured rate."""
    from facerec.embed import get_spec
    from facerec.gallery.reference import pipeline_name, reference_for
    from facerec.pipeline.config import DEFAULT_VERIFY_FAR

    if threshold is not None:
        return explicit_calibration(threshold, pipeline, metric)
    far = check_rate(DEFAULT_VERIFY_FAR if far is None else far, "far")
    ref = reference_for(pipeline)
    if ref is None and get_spec(pipeline.embedder).default_threshold is None:
        raise UncalibratedError(uncalibrated_message(pipeline, closed_set=False))
    if ref is None:
        return Calibration(
            default_threshold(get_spec(pipeline.embedder).default_threshold, metric),
            "default",
            reason=f"no reference calibration for {pipeline_name(pipeline)}: {pipeline.embedder}'s LFW equal-error "
            "threshold (about 1 in 100 pairs of different people pass on LFW; not measured for this pipeline)",
        )
    t = ref.threshold_at_far(far)
    return Calibration(default_threshold(t, metric), "reference", far=far, tar=ref.tar_at(t), reference=ref.describe())


def explicit_calibration(threshold: float, pipeline=None, metric: str = "euclidean") -> Calibration:
    """A threshold given by hand, with what the reference says it buys between two photos, when known."""
    from facerec.gallery.reference import reference_for

    t = check_threshold(threshold, "threshold")
    ref = reference_for(pipeline) if pipeline is not None else None
    if ref is None:
        return Calibration(t, "explicit")
    euclid = math.sqrt(2 * t) if metric == "cosine" else t
    far = ref.far_at(euclid)
    return Calibration(
        t,
        "explicit",
        far=min(far, 0.999),
        tar=ref.tar_at(euclid),
        reference=ref.describe(),
        reason=f"no error rate promised; by the {ref.describe()} about {plain_rate(far)} pairs of different "
        "people lie within it",
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
    """Recompute a gallery's threshold for its size now (stores that write rows but not the header
    on every change, and files saved by an older facerec); an explicit threshold stays."""
    cal = gallery.calibration
    if cal is not None and cal.source == "explicit":
        return
    try:
        new = open_set_calibration(gallery)
    except InputError as exc:  # an embedder this install does not know: the gallery still loads
        log.warning("the open-set threshold stays as stored: %s", exc)
        return
    if cal is None or new.threshold != cal.threshold:
        new.incremental = cal is not None and cal.source == "calibrated"
        gallery.calibration = new


def resolve_threshold(
    gallery,
    *,
    threshold: float | None = None,
    closed_set: bool = False,
    detector: str | None = None,
    fpir: float | None = None,
) -> Calibration | None:
    """The threshold a query uses: none for ``closed_set``; ``threshold`` when given; else the
    gallery's calibration when the query's faces are found as the gallery's were (derived anew
    when ``fpir`` asks for another rate than the stored one); else the embedder's 1:1 threshold,
    said to carry no measured rate (faces found by two detectors are compared: no table measures
    that)."""
    if closed_set:
        return None
    if threshold is not None:
        return explicit_calibration(threshold, gallery.pipeline, gallery.metric)
    if fpir is not None:
        check_rate(fpir, "fpir")
    trained = gallery.pipeline.detector if gallery.pipeline else None
    if detector is None or detector == trained:
        stored = gallery.calibration
        if stored is not None and (fpir is None or stored.source == "explicit" or stored.fpir == fpir):
            return stored
        return open_set_calibration(gallery, fpir=fpir)
    if gallery.pipeline is None:
        raise InputError("the model records no pipeline, so no default threshold applies; pass a threshold")
    from facerec.embed import get_spec

    if get_spec(gallery.pipeline.embedder).default_threshold is None:
        raise UncalibratedError(uncalibrated_message(gallery.pipeline))
    # Distances between faces cut two ways (the seed's demo enrols whole LFW images, `--detector
    # resize`, and searches MTCNN's crops) are larger for everyone, the enrolled person included: no
    # table measures them, and a same-pipeline threshold would turn most known people away.
    return Calibration(
        default_threshold(get_spec(gallery.pipeline.embedder).default_threshold, gallery.metric),
        "default",
        people=gallery.people_count,
        faces=len(gallery),
        reason=f"the gallery's faces were found with {trained}, this query's with {detector}: no rate was "
        "measured for distances between the two, so the embedder's 1:1 equal-error threshold; query with "
        f"--detector {trained} for a measured promise",
    )


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
