"""Reference calibrations: what a pipeline's distances mean for strangers, measured once.

A gallery too small to measure its own threshold (a family's ten photos) still needs one that keeps
its promise: "about 1 in 100 strangers would be named someone". That rate depends on the gallery's
size: a stranger searched against N enrolled faces gets N chances. So each shipped pipeline
carries a table measured on LFW View 1's development *training* people (``peopleDevTrain.txt``;
``bench/reference.py``), disjoint from every evaluation:

* ``far``: the pairwise false-accept rate FAR(t), the share of pairs of different people whose
  distance is at most t (what ``verify`` promises);
* ``person_far[m]``: the chance that a stranger's photo comes within t of *some* photo of one person
  enrolled with m photos (a person's photos are alike, so this is well below m * FAR(t));
* ``tar``: the share of pairs of one person's photos within t (each person weighing the same).

Strangers, in the per-person rates, are people, not photos: one photo of each reference person
(4,038) stands for them, compared with the subsets of everyone else. Over all pairs of photos,
people photographed many times at the same events weigh most, and they are more alike than a
gallery and a passer-by: that over-states the rate of large galleries (a gallery of 90 people
with 5 photos each met 0.68% of the development test strangers where 1% was promised).

A stranger is named someone when any enrolled face lies within the threshold (the k-NN vote only
counts neighbours within it), so for a gallery of people with m_1, m_2, ... photos the stranger
false-accept rate is FPIR(t) = 1 - prod_p (1 - person_far[m_p](t)) (:meth:`Reference.fpir`):
people taken as independent, one person's photos not. (Strangers who look like many people at once
would break that; grouping the reference strangers by how alike anyone they look moved no
threshold by more than 0.1%.) ``evaluate open-set`` measures how well this holds on the
development *test* people.

Rates below what the comparisons can measure (fewer than :data:`MIN_EVENTS`) are extrapolated from
the tail (log-linear in t, which over-states them: a conservative threshold); each table says down
to where it was measured.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Where the shipped tables live (package data).
REFERENCE_DIR = Path(__file__).parent / "data" / "reference"
#: Where ``facerec calibrate`` writes the tables of models facerec does not ship (``onnx:...``), under
#: facerec's home: keyed by the weights id (the file's sha256 and its input spec), not the model's
#: path, so a moved file keeps its table and a changed file never inherits one.
USER_REFERENCE_FOLDER = "reference"
FORMAT = "facerec-reference"
#: Photos per person whose stranger-accept rate is measured; other counts are interpolated.
PERSON_PHOTOS = (1, 2, 3, 5, 10, 20)
#: Random photo subsets taken per person and size (a person's photos give many; a few suffice).
SUBSETS_PER_PERSON = 8
#: A rate counts as measured where at least this many impostor comparisons fall under the threshold.
MIN_EVENTS = 10
#: Euclidean distances between unit vectors lie in [0, 2]: the table's grid.
GRID_STEP = 0.0025


def reference_key(pipeline) -> str:
    """The file stem of a pipeline's table: embedder, detector, alignment, flip."""
    p = pipeline if isinstance(pipeline, dict) else pipeline.to_dict()
    flip = "flip" if p.get("flip") else "noflip"
    return "__".join([p["embedder"], p["detector"], p.get("alignment", "box"), flip]).replace("/", "_")


def reference_path(pipeline, precision: str = "fp32") -> Path:
    suffix = "" if precision == "fp32" else f"__{precision}"
    return REFERENCE_DIR / f"{reference_key(pipeline)}{suffix}.json"


def user_reference_dir() -> Path:
    from facerec.paths import facerec_home

    return facerec_home() / USER_REFERENCE_FOLDER


def user_reference_path(pipeline) -> Path:
    """Where ``facerec calibrate`` keeps a pipeline's table: weights id, detector, alignment, flip."""
    p = pipeline if isinstance(pipeline, dict) else pipeline.to_dict()
    flip = "flip" if p.get("flip") else "noflip"
    stem = "__".join([p["weights_id"], p["detector"], p.get("alignment", "box"), flip])
    return user_reference_dir() / (stem.replace("/", "_").replace(":", "_") + ".json")


def save_user_reference(table: dict) -> Path:
    """Write a measured table (with its ``pipeline``) where :func:`reference_for` finds it."""
    from facerec.paths import atomic_write_bytes

    path = user_reference_path(table["pipeline"])
    atomic_write_bytes(path, (json.dumps(table, indent=1) + "\n").encode())
    _read.cache_clear()  # a look-up before the table existed remembered its absence
    return path


@dataclass(frozen=True)
class Reference:
    """One pipeline's measured table (see the module's docstring); Euclidean distances."""

    pipeline: dict
    thresholds: np.ndarray  # float64 (J,), increasing
    far: np.ndarray  # float64 (J,), pairwise FAR at each threshold
    person_far: dict  # m -> float64 (J,)
    tar: np.ndarray  # float64 (J,)
    measured_down_to: dict  # {"far": rate, "threshold": t}: below it, extrapolated
    provenance: dict
    detector_note: str = ""  # set when the table was measured with another detector

    @property
    def name(self) -> str:
        return pipeline_name(self.pipeline)

    def describe(self) -> str:
        return f"reference calibration of {self.name} on LFW View 1's development people" + (
            f" ({self.detector_note})" if self.detector_note else ""
        )

    # -- 1:1 -------------------------------------------------------------------------------------
    def far_at(self, threshold: float) -> float:
        return float(np.interp(threshold, self.thresholds, self.far))

    def tar_at(self, threshold: float) -> float:
        return float(np.interp(threshold, self.thresholds, self.tar))

    def threshold_at_far(self, far: float) -> float:
        """The largest distance whose pairwise FAR is at most ``far``."""
        return _inverse(self.thresholds, self.far, far)

    # -- 1:N -------------------------------------------------------------------------------------
    def person_curve(self, m: int) -> np.ndarray:
        """The chance a stranger matches one person with ``m`` photos, at every threshold (float64
        (J,)): measured sizes as they are; between them interpolated in log(m); past the largest,
        that size's rate times m / largest (a union bound over groups of photos: an over-statement)."""
        sizes = sorted(self.person_far)
        if m in self.person_far:
            return self.person_far[m]
        if m > sizes[-1]:
            return np.minimum(1.0, self.person_far[sizes[-1]] * (m / sizes[-1]))
        hi = next(s for s in sizes if s > m)
        lo = max(s for s in sizes if s < m)
        w = (math.log(m) - math.log(lo)) / (math.log(hi) - math.log(lo))
        return np.exp((1 - w) * _log(self.person_far[lo]) + w * _log(self.person_far[hi]))

    def fpir(self, photos_per_person) -> np.ndarray:
        """The stranger false-accept rate of a gallery whose people have these photo counts, at
        every threshold of the table (float64 (J,)); O(distinct counts x J)."""
        counts = np.asarray(photos_per_person, np.int64)
        counts = counts[counts > 0]
        log_miss = np.zeros(len(self.thresholds))
        for m, n in zip(*np.unique(counts, return_counts=True)):
            log_miss += n * np.log1p(-np.minimum(self.person_curve(int(m)), 1 - 1e-16))
        return -np.expm1(log_miss)

    def threshold_for_fpir(self, photos_per_person, fpir: float) -> tuple[float, float]:
        """(threshold, pairwise FAR there): the largest distance at which a gallery with these
        photo counts names at most ``fpir`` of strangers."""
        t = _inverse(self.thresholds, self.fpir(photos_per_person), fpir)
        return t, self.far_at(t)

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict, detector_note: str = "") -> Reference:
        if d.get("format") != FORMAT:
            raise ValueError("not a facerec reference table")
        return cls(
            pipeline=d["pipeline"],
            thresholds=np.asarray(d["thresholds"], np.float64),
            far=np.asarray(d["far"], np.float64),
            person_far={int(m): np.asarray(v, np.float64) for m, v in d["person_far"].items()},
            tar=np.asarray(d["tar"], np.float64),
            measured_down_to=d["measured_down_to"],
            provenance=d["provenance"],
            detector_note=detector_note,
        )


def _log(x: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(x, 1e-300))


def _inverse(thresholds: np.ndarray, rate: np.ndarray, target: float) -> float:
    """The largest threshold at which the increasing ``rate`` is at most ``target``, interpolated
    between grid points in log(rate)."""
    j = int(np.searchsorted(rate, target, side="right"))  # rate[:j] <= target
    if j == 0:
        return float(thresholds[0])
    if j >= len(rate):
        return float(thresholds[-1])
    lo, hi = _log(rate[j - 1 : j + 1])
    w = 0.0 if hi <= lo else (math.log(target) - lo) / (hi - lo)
    return float(thresholds[j - 1] + min(max(w, 0.0), 1.0) * (thresholds[j] - thresholds[j - 1]))


@functools.lru_cache(maxsize=32)
def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def reference_for(config) -> Reference | None:
    """The table for pipeline ``config`` (a :class:`~facerec.pipeline.PipelineConfig` or its
    dict): measured for it exactly; else for the same embedder, weights and crop with another
    detector (detectors frame faces alike; the embedder decides the distances), the same flip
    first; else none. A borrowed table says so. Precision is not part of the key: int8's
    embeddings are within cosine 0.996 of fp32's."""
    p = config if isinstance(config, dict) else config.to_dict()
    for exact in (_read(reference_path(p)), _read(user_reference_path(p))):
        if exact is not None and exact.get("pipeline", {}).get("weights_id") == p.get("weights_id"):
            return Reference.from_dict(exact)
    # a user's table is the file's (its weights id), whatever path or name the model was given
    same = (p["embedder"], p.get("weights_id"), p.get("alignment", "box"))
    found = []
    tables = [(path, True) for path in sorted(REFERENCE_DIR.glob("*.json"))]
    tables += [(path, False) for path in sorted(user_reference_dir().glob("*.json"))]
    for path, shipped in tables:
        d = _read(path)
        if d is None or d.get("format") != FORMAT:
            continue
        q = d["pipeline"]
        key = (q["embedder"], q.get("weights_id"), q.get("alignment", "box"))
        if key == same or (not shipped and key[1:] == same[1:]):
            found.append((bool(q.get("flip")) != bool(p.get("flip")), q["detector"] != p["detector"], path.name, d))
    if not found:
        return None
    _, _, _, d = min(found, key=lambda f: f[:3])
    q = d["pipeline"]
    what = [f"detector {q['detector']}"] if q["detector"] != p["detector"] else []
    what += [f"flip {'on' if q.get('flip') else 'off'}"] if bool(q.get("flip")) != bool(p.get("flip")) else []
    return Reference.from_dict(d, f"measured with {' and '.join(what)}, used for {pipeline_name(p)}")


def pipeline_name(pipeline) -> str:
    """``embedder/detector/alignment[/flip]``: how a pipeline is named in every message."""
    p = pipeline if isinstance(pipeline, dict) else pipeline.to_dict()
    return f"{p['embedder']}/{p['detector']}/{p.get('alignment', 'box')}" + ("/flip" if p.get("flip") else "")


# -- measuring (bench/reference.py) ------------------------------------------------------------------
def measure_reference(embeddings: np.ndarray, labels: np.ndarray, *, metric: str = "euclidean", seed: int = 0) -> dict:
    """The table of one pipeline from embeddings float32 (n, d) (unit rows) of labelled people:
    every pair for the pairwise rates; for the per-person rates, up to :data:`SUBSETS_PER_PERSON`
    random photo subsets of each size in :data:`PERSON_PHOTOS` of each person seen in two photos
    or more, each compared with one random photo of every other person (the strangers). O(n^2 d) time, n^2
    float32 memory (9,525 faces: 0.4 GB)."""
    from facerec.gallery.distance import pairwise_distances

    if metric != "euclidean":
        raise ValueError("reference tables are measured in Euclidean distance")
    emb = np.asarray(embeddings, np.float32)
    labels = np.asarray(labels)
    n = len(emb)
    grid = np.round(np.arange(0.0, 2.0 + GRID_STEP / 2, GRID_STEP), 6)
    imp_hist = np.zeros(len(grid) + 1, np.int64)
    gen_hist = np.zeros(len(grid) + 1, np.float64)  # weighted: each person counts once, whatever their photos
    counts = np.bincount(labels)
    rng = np.random.default_rng(seed)
    # one photo of each person stands for them as a stranger: strangers are people, not photos
    strangers = np.array([rng.choice(np.flatnonzero(labels == p)) for p in np.flatnonzero(counts)])
    stranger_label = labels[strangers]
    to_strangers = np.empty((n, len(strangers)), np.float32)
    for start in range(0, n, 1024):
        d = pairwise_distances(emb[start : start + 1024], emb, metric)
        to_strangers[start : start + len(d)] = d[:, strangers]
        upper = np.arange(n)[None, :] > (start + np.arange(len(d)))[:, None]  # each pair once
        same = labels[start : start + len(d), None] == labels[None, :]
        imp_hist += _hist(d[upper & ~same], grid)
        pairs = upper & same
        rows = np.nonzero(pairs)[0]
        person_pairs = counts[labels[start + rows]] * (counts[labels[start + rows]] - 1) / 2
        gen_hist += np.bincount(
            np.searchsorted(grid, d[pairs], side="left"), weights=1.0 / person_pairs, minlength=len(grid) + 1
        )
    far, far_events = _cumulative(imp_hist)
    tar, _ = _cumulative(gen_hist)
    members = [np.flatnonzero(labels == p) for p in np.flatnonzero(counts >= 2)]
    tails, comparisons = {}, {}
    for m in PERSON_PHOTOS:
        hist = np.zeros(len(grid) + 1, np.int64)
        for rows in members:
            if len(rows) < m:
                continue
            subsets = (
                [rows[i : i + 1] for i in range(len(rows))]
                if m == 1
                else [
                    rng.choice(rows, m, replace=False) for _ in range(min(SUBSETS_PER_PERSON, math.comb(len(rows), m)))
                ]
            )
            others = stranger_label != labels[rows[0]]
            for subset in subsets:
                hist += _hist(to_strangers[subset][:, others].min(axis=0), grid)
        if hist.sum():
            rate, events = _cumulative(hist)
            tails[m] = _extrapolate(grid, rate, events)
            comparisons[m] = int(hist.sum())
    # more photos are more chances: where a larger size's (extrapolated) tail dips under a smaller's, lift it
    person_far, previous = {}, None
    for m in sorted(tails):
        person_far[m] = tails[m][0] if previous is None else np.maximum(tails[m][0], previous)
        previous = person_far[m]
    far_tail, far_floor = _extrapolate(grid, far, far_events)
    # one grid range for every curve: from where the smallest rate is ~0 to where all are 1
    lo = min(int(np.searchsorted(c, 1e-12)) for c in (far_tail, *person_far.values()))
    hi = max(int(np.searchsorted(c, 1.0)) for c in (far_tail, tar, *person_far.values())) + 1
    keep = slice(max(lo - 1, 0), min(hi, len(grid)))
    sig = lambda a: [float(f"{v:.5g}") for v in np.asarray(a)[keep]]  # noqa: E731
    return {
        "format": FORMAT,
        "version": 1,
        "metric": "euclidean",
        "thresholds": [float(v) for v in grid[keep]],
        "far": sig(far_tail),
        "person_far": {str(m): sig(c) for m, c in person_far.items()},
        "tar": sig(tar),
        "measured_down_to": {"pairwise": far_floor, **{f"person_{m}": tails[m][1] for m in tails}},
        "comparisons": {"pairwise": int(imp_hist.sum()), **{f"person_{m}": c for m, c in comparisons.items()}},
        "people": int(len(counts[counts > 0])),
        "images": n,
        "strangers": int(len(strangers)),
        "genuine_people": int(round(gen_hist.sum())),
        "impostor_pairs": int(imp_hist.sum()),
    }


def _hist(d: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Counts by grid cell: cell j holds distances in (grid[j-1], grid[j]]."""
    return np.bincount(np.searchsorted(grid, d.ravel(), side="left"), minlength=len(grid) + 1)


def _cumulative(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rate, events) at each grid point: the share and count of distances at most it."""
    events = np.cumsum(hist)[:-1]
    return events / max(int(hist.sum()), 1), events


def _extrapolate(grid: np.ndarray, rate: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, dict]:
    """The rate with its unmeasured low tail (fewer than MIN_EVENTS) replaced by a log-linear fit
    of the measured tail (MIN_EVENTS to 100x that many), and where measurement stops."""
    floor = int(np.searchsorted(events, MIN_EVENTS, side="left"))
    if floor >= len(grid):
        return rate.astype(np.float64), {"far": None, "threshold": None}
    fit = np.flatnonzero((events >= MIN_EVENTS) & (events <= 100 * MIN_EVENTS))
    out = rate.astype(np.float64).copy()
    if len(fit) >= 3:
        slope, intercept = np.polyfit(grid[fit], np.log(rate[fit]), 1)
        slope = max(slope, 1e-6)
        below = np.arange(floor)
        out[below] = np.minimum(np.exp(intercept + slope * grid[below]), rate[floor])
    else:  # too few points for a slope: the floor's rate all the way down (over-states)
        out[:floor] = rate[floor]
    return np.maximum.accumulate(out), {"far": float(rate[floor]), "threshold": float(grid[floor])}
