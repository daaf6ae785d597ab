"""Faces across frames: box overlap first, appearance where overlap cannot decide.

Each detection step matches the new faces to the live tracks by the overlap (IoU) of each face
with the box the track is predicted to be at (its last box moved by its velocity), with the
Hungarian algorithm. Overlap alone is fooled where faces cross or a track comes back after a
short miss, so the embeddings decide there: a face whose overlap is ambiguous (two tracks, or
none) is embedded, and a track and a face whose embeddings are farther apart than
``appearance_threshold`` are never matched, however much they overlap. A track unseen for
``max_gap_s`` ends.

Embedding is most of the cost on a CPU, so a track that overlap follows without doubt is embedded
only while it has fewer than ``min_embeddings`` views, every ``refresh`` detections after that, and
when its face is markedly larger than the best view so far: every track keeps a vote of several
views, and the clear cases cost detection only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facerec.errors import InputError

IOU_MIN = 0.2  # overlap with the predicted box for a match on overlap alone
AMBIGUOUS_IOU = 0.05  # a face overlapping two tracks this much (or a track two faces) is a crossing
MAX_GAP_S = 1.0  # a track survives this long unseen: a missed detection, a crossing, a turned head
RELINK_RADIUS = 2.0  # a face this many box sizes (per second unseen, plus one) from a lost track may be it
MIN_EMBEDDINGS = 3  # views every track is embedded for, before its refresh schedule starts
REFRESH = 5  # a confidently followed track is embedded again at every REFRESH-th detection
BETTER_VIEW = 1.5  # a face this many times the area of the best embedded view is embedded too
VELOCITY_SMOOTHING = 0.5  # weight of the newest motion in the box velocity (pixels per second)


@dataclass(frozen=True)
class TrackerConfig:
    """How faces are followed; the defaults are the module's constants (stated once, there)."""

    appearance_threshold: float = 1.0
    iou_min: float = IOU_MIN
    max_gap_s: float = MAX_GAP_S
    min_embeddings: int = MIN_EMBEDDINGS
    refresh: int = REFRESH

    def __post_init__(self):
        for name in ("appearance_threshold", "iou_min", "max_gap_s"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
                raise InputError(f"tracker {name} must be a number > 0, got {v!r}")
        for name in ("min_embeddings", "refresh"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"tracker {name} must be a whole number >= 1, got {v!r}")


@dataclass
class Observation:
    """One sighting of a track's face: at a detection frame, its box and score, its embedding
    (float32 (d,), or None when this view was not embedded) and its landmarks."""

    frame: int
    time_s: float
    box: tuple[float, float, float, float]
    score: float
    embedding: np.ndarray | None = None
    landmarks: np.ndarray | None = None


@dataclass
class Track:
    """A face followed across frames: its sightings in order."""

    id: int
    seen: list[Observation] = field(default_factory=list)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    _sum: np.ndarray | None = None  # the sum of its embeddings: their mean is the track's appearance
    embedded: int = 0
    best_embedded_area: float = 0.0
    since_embedding: int = 0

    @property
    def last(self) -> Observation:
        return self.seen[-1]

    @property
    def appearance(self) -> np.ndarray | None:
        if self._sum is None:
            return None
        return self._sum / max(float(np.linalg.norm(self._sum)), 1e-12)

    def predicted_box(self, time_s: float) -> np.ndarray:
        dt = time_s - self.last.time_s
        shift = np.tile(self.velocity * dt, 2)
        return np.asarray(self.last.box, np.float64) + shift

    def add(self, obs: Observation) -> None:
        if self.seen:
            dt = obs.time_s - self.last.time_s
            if dt > 0:
                motion = (_center(obs.box) - _center(self.last.box)) / dt
                self.velocity = VELOCITY_SMOOTHING * motion + (1 - VELOCITY_SMOOTHING) * self.velocity
        self.seen.append(obs)
        if obs.embedding is not None:
            self._sum = obs.embedding.astype(np.float64) if self._sum is None else self._sum + obs.embedding
            self.embedded += 1
            self.best_embedded_area = max(self.best_embedded_area, _area(obs.box))
            self.since_embedding = 0
        else:
            self.since_embedding += 1

    def wants_embedding(self, box, config: TrackerConfig) -> bool:
        return (
            self.embedded < config.min_embeddings
            or self.since_embedding + 1 >= config.refresh
            or _area(box) >= BETTER_VIEW * self.best_embedded_area
        )


class Tracker:
    """Feed it each detection step with :meth:`step`; :attr:`tracks` holds every track made."""

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []
        self._next_id = 1

    def live(self, time_s: float) -> list[Track]:
        return [t for t in self.tracks if time_s - t.last.time_s <= self.config.max_gap_s]

    def step(self, frame: int, time_s: float, detections, embed) -> list[tuple[Track, Observation]]:
        """Match one detection step's faces to the tracks.

        Args:
            detections: the step's faces (objects with ``box``, ``score``, ``landmarks``).
            embed: ``embed(indices) -> float32 (len(indices), d)`` unit embeddings of those faces;
                called once per step, only for the faces that need one.
        Returns (track, observation) for every face, in the order given.
        """
        cfg = self.config
        live = [t for t in self.live(time_s) if t.last.frame < frame]
        boxes = np.asarray([d.box for d in detections], np.float64).reshape(-1, 4)
        iou = _iou(np.asarray([t.predicted_box(time_s) for t in live]).reshape(-1, 4), boxes)

        # the faces whose embeddings are needed: ambiguous overlap, no overlap, or a track due one
        near = iou > AMBIGUOUS_IOU
        need = set()
        for j in range(len(detections)):
            tracks_j = np.flatnonzero(near[:, j])
            if len(tracks_j) != 1 or near[tracks_j[0]].sum() > 1 or iou[tracks_j[0], j] < cfg.iou_min:
                need.add(j)
            elif live[tracks_j[0]].wants_embedding(detections[j].box, cfg):
                need.add(j)
        order = sorted(need)
        vectors = embed(order) if order else np.zeros((0, 0), np.float32)
        emb = {j: vectors[r] for r, j in enumerate(order)}

        cost = np.full((len(live), len(detections)), np.inf)
        for i, track in enumerate(live):
            look = track.appearance
            for j in range(len(detections)):
                d = None if look is None or j not in emb else float(np.linalg.norm(look - emb[j]))
                if d is not None and d > cfg.appearance_threshold:
                    continue  # the faces say these are different people, whatever the boxes say
                if iou[i, j] >= cfg.iou_min:
                    cost[i, j] = 1.0 - iou[i, j] + (0.0 if d is None else 0.5 * d / cfg.appearance_threshold)
                elif d is not None and self._near(track, boxes[j], time_s):
                    cost[i, j] = 2.0 + d / cfg.appearance_threshold  # back after a miss: worse than any overlap
        pairs = _assign(cost)

        out: list = [None] * len(detections)
        for i, j in pairs:
            out[j] = live[i]
        for j in range(len(detections)):
            if out[j] is None:
                out[j] = Track(self._next_id)
                self._next_id += 1
                self.tracks.append(out[j])
        result = []
        for j, (det, track) in enumerate(zip(detections, out)):
            obs = Observation(
                frame,
                time_s,
                tuple(float(v) for v in det.box),
                float(det.score),
                emb.get(j),
                None if det.landmarks is None else np.asarray(det.landmarks, np.float32),
            )
            track.add(obs)
            result.append((track, obs))
        return result

    def _near(self, track: Track, box: np.ndarray, time_s: float) -> bool:
        size = max(np.sqrt(_area(track.last.box)), 1.0)
        gap = max(time_s - track.last.time_s, 0.0)
        return float(np.linalg.norm(_center(box) - _center(track.last.box))) <= RELINK_RADIUS * size * (1 + gap)


def _assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """The cheapest one-to-one matching of tracks to faces; infinite costs are never matched."""
    if cost.size == 0 or not np.isfinite(cost).any():
        return []
    from scipy.optimize import linear_sum_assignment

    big = np.nanmax(cost[np.isfinite(cost)]) * 10 + 10
    rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, big))
    return [(int(i), int(j)) for i, j in zip(rows, cols) if np.isfinite(cost[i, j])]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 4) and (m, 4) boxes -> (n, m) intersection over union."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda z: np.clip(z[:, 2] - z[:, 0], 0, None) * np.clip(z[:, 3] - z[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _center(box) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2])


def _area(box) -> float:
    x1, y1, x2, y2 = (float(v) for v in box)
    return max(x2 - x1, 0.0) * max(y2 - y1, 0.0)
