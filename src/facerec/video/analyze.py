"""A video in, one answer per person seen: detect every ``every`` frames, follow faces with the
tracker, identify each embedded view with the open-set k-NN rule, and decide each track by a vote
over its views (a person seen for three seconds is one answer, not a name per frame)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from facerec.errors import InputError
from facerec.gallery.identify import UNKNOWN, identify
from facerec.image_batch import ImageBatch
from facerec.limits import VIDEO_DETECT_SIDE
from facerec.pipeline.core import faces_from
from facerec.video.frames import Frame, VideoSource
from facerec.video.tracker import Observation, Track, Tracker, TrackerConfig

DETECT_SIDE = VIDEO_DETECT_SIDE  # the longest side frames are searched at (facerec.limits says why)
MIN_DETECTIONS = 2  # a track seen at fewer detection steps is dropped as a flicker (a false detection)
MIN_FACE_PX = 16.0  # smaller faces are not tracked: too few pixels for the detector to be sure or to tell people apart
CROP_MARGIN = 0.3  # the best face's saved crop: its box grown by this share on each side


#: Frames between two searches for faces (the command line's, the service's and the page's
#: default): a face stays in view for many frames and the tracker follows it between searches.
#: On the shared 1080p street clip (126 frames, 2-core machine under load, the gallery's MTCNN):
#: every 5th frame 10.8 s end to end; every frame 150 s (issue #33's measurement).
DEFAULT_EVERY = 5


@dataclass
class VideoOptions:
    """How a video is analysed; the defaults are the constants above and the tracker's."""

    every: int = DEFAULT_EVERY
    detect_side: int = DETECT_SIDE
    min_detections: int = MIN_DETECTIONS
    min_face_px: float = MIN_FACE_PX
    topk: int = 5
    keep_crops: bool = False

    def __post_init__(self):
        for name in ("every", "detect_side", "min_detections", "topk"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"{name} must be a whole number >= 1, got {v!r}")


@dataclass
class TrackResult:
    """One person's track: the vote's answer and where and when they were seen."""

    track: int
    pred: str
    distance: float | None
    start_s: float
    end_s: float
    frames: int  # detection frames the face was found in
    embedded: int  # of those, the views embedded and identified (the vote's voters)
    votes: dict
    candidate: str
    best: dict  # {"frame", "time_s", "box"}: the largest, surest view
    path: list = field(default_factory=list)  # [frame, time_s, x1, y1, x2, y2] at each detection
    crop: np.ndarray | None = None  # uint8 RGB: the best view's crop, when asked for
    note: str = ""  # why the answer is not the track's own vote

    def to_json(self) -> dict:
        return {
            "track": self.track,
            "pred": self.pred,
            "distance": None if self.distance is None else round(self.distance, 4),
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "frames": self.frames,
            "embedded": self.embedded,
            "votes": self.votes,
            "candidate": self.candidate,
            "best": self.best,
            "path": self.path,
            "note": self.note,
        }


@dataclass
class VideoReport:
    source: str
    fps: float
    width: int
    height: int
    frames: int  # decoded
    every: int
    seconds: float  # wall time of the analysis
    tracks: list[TrackResult]
    dropped_tracks: int  # seen at fewer than min_detections steps
    threshold: float | None
    threshold_source: str
    notes: list[str] = field(default_factory=list)  # truncation, reconnections
    threshold_promise: str = ""  # what the threshold promises, in words
    error: str | None = None  # a live source that gave up after the frames reported

    def people(self) -> dict[str, list[list[float]]]:
        """Each named person's time ranges (overlapping tracks merged), in order of appearance."""
        spans: dict[str, list] = {}
        for t in sorted(self.tracks, key=lambda t: t.start_s):
            if t.pred == UNKNOWN:
                continue
            ranges = spans.setdefault(t.pred, [])
            if ranges and t.start_s <= ranges[-1][1] + 1.0 / max(self.fps, 1.0) * self.every:
                ranges[-1][1] = max(ranges[-1][1], t.end_s)
            else:
                ranges.append([t.start_s, t.end_s])
        return {k: [[round(a, 3), round(b, 3)] for a, b in v] for k, v in spans.items()}

    def summary(self) -> dict:
        return {
            "source": self.source,
            "frames": self.frames,
            "fps": round(self.fps, 3),
            "width": self.width,
            "height": self.height,
            "every": self.every,
            "tracks": len(self.tracks),
            "unknown_tracks": sum(t.pred == UNKNOWN for t in self.tracks),
            "dropped_tracks": self.dropped_tracks,
            "people": self.people(),
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "threshold_promise": self.threshold_promise,
            "seconds": round(self.seconds, 3),
            "frames_per_s": round(self.frames / self.seconds, 2) if self.seconds > 0 else None,
            "notes": self.notes,
            "error": self.error,
        }


@dataclass
class Followed:
    """What following a video's faces produced, before anyone is named."""

    tracker: Tracker
    frames: int
    seconds: float
    crops: dict  # track id -> (quality, uint8 RGB crop) of its best view, when asked for
    error: str | None  # a live source that gave up after some frames


def analyze_video(
    source: VideoSource,
    gallery,
    pipeline,
    *,
    calibration=None,
    options: VideoOptions | None = None,
    tracker: TrackerConfig | None = None,
    on_frame: Callable[[Frame, list], None] | None = None,
    on_decoded: Callable[[Frame], None] | None = None,
) -> VideoReport:
    """Every track of ``source`` with its identity: :func:`follow_faces`, then :func:`decide`.

    Args:
        gallery: a fitted gallery built by ``pipeline``'s embedder.
        calibration: the open-set threshold (None: closed set, every track gets its nearest person).
        tracker: the tracker's settings; its appearance threshold defaults to the open-set one.
        on_frame: called with every frame and its live tracks' [(track id, box now, vote so far)]
            (an annotator drawing a live source as it plays).
        on_decoded: called with every frame once it is done, nothing more (a progress bar: unlike
            ``on_frame`` it costs no running vote).
    """
    opts = options or VideoOptions()
    if tracker is None:
        tracker = tracker_config(pipeline, calibration)
    label = None
    if on_frame is not None:
        label = lambda obs: identify(gallery, obs.embedding[None], topk=1, calibration=calibration)[0]  # noqa: E731
    followed = follow_faces(source, pipeline, opts, tracker, on_frame=on_frame, label=label, on_decoded=on_decoded)
    return decide(source, followed, gallery, calibration, opts)


def tracker_config(pipeline, calibration) -> TrackerConfig:
    """The tracker's settings for this pipeline: two views farther apart than the open-set
    threshold (the embedder's default without one) are never one track."""
    threshold = (calibration.threshold if calibration else None) or pipeline.embedder.spec.default_threshold
    if threshold is None:  # an uncalibrated model (onnx:...) and no gallery threshold: nothing says "two people"
        from facerec.gallery.calibration import UncalibratedError, uncalibrated_message

        raise UncalibratedError(uncalibrated_message(pipeline.config))
    return TrackerConfig(appearance_threshold=threshold)


def follow_faces(
    source: VideoSource,
    pipeline,
    options: VideoOptions,
    tracker: TrackerConfig,
    *,
    on_frame: Callable[[Frame, list], None] | None = None,
    label: Callable | None = None,
    on_decoded: Callable[[Frame], None] | None = None,
) -> Followed:
    """Detect every ``options.every`` frames and follow the faces; ``label(observation)`` (a
    prediction) names the views as they come, for ``on_frame``'s running labels."""
    from facerec.errors import InputError

    follow = Tracker(tracker)
    running: dict[int, list] = {}
    crops: dict[int, tuple[float, np.ndarray]] = {}
    started, decoded, error = time.perf_counter(), 0, None
    try:
        for frame in source.frames():
            decoded += 1
            if frame.index % options.every == 0:
                image = frame.rgb()
                found = _detect(pipeline, image, options)
                steps = follow.step(frame.index, frame.time_s, found, partial(_embed_some, pipeline, image, found))
                if options.keep_crops:
                    for t, o in steps:
                        q = _quality(o)
                        if t.id not in crops or q > crops[t.id][0]:
                            crops[t.id] = (q, _crop(image, o.box))
                if label is not None:
                    for t, o in steps:
                        if o.embedding is not None:
                            running.setdefault(t.id, []).append((o, label(o)))
            if on_frame is not None:
                on_frame(frame, _live_labels(follow, frame, running))
            if on_decoded is not None:
                on_decoded(frame)
    except InputError as exc:
        if not source.live or decoded == 0:
            raise
        error = str(exc)  # a stream that gave up: the tracks so far are still answers
    return Followed(follow, decoded, time.perf_counter() - started, crops, error)


def decide(source: VideoSource, followed: Followed, gallery, calibration, options: VideoOptions) -> VideoReport:
    """Each kept track's answer: its embedded views identified (one k-NN query for all), then voted."""
    kept = [t for t in followed.tracker.tracks if len(t.seen) >= options.min_detections]
    views = [(t.id, o) for t in kept for o in t.seen if o.embedding is not None]
    preds = (
        identify(gallery, np.stack([o.embedding for _, o in views]), topk=options.topk, calibration=calibration)
        if views
        else []
    )
    by_track: dict[int, list] = {}
    for (tid, o), p in zip(views, preds):
        by_track.setdefault(tid, []).append((o, p))
    results = one_person_per_frame([_decide(t, by_track.get(t.id, []), followed.crops.get(t.id)) for t in kept])
    notes = []
    if source.truncated:
        notes.append(f"{source.label}: truncated or damaged: {source.truncated}")
    if source.reconnected:
        notes.append(f"{source.label}: reconnected {source.reconnected} time(s)")
    return VideoReport(
        source=source.label,
        fps=source.fps,
        width=source.width,
        height=source.height,
        frames=followed.frames,
        every=options.every,
        seconds=followed.seconds,
        tracks=results,
        dropped_tracks=len(followed.tracker.tracks) - len(kept),
        threshold=calibration.threshold if calibration else None,
        threshold_source=calibration.source if calibration else "closed-set",
        threshold_promise=calibration.promise() if calibration else "closed set: no face is answered unknown",
        notes=notes,
        error=followed.error,
    )


def _detect(pipeline, image: np.ndarray, opts: VideoOptions) -> list:
    """The frame's faces, found on a copy at ``detect_side`` and mapped back to the frame.

    The copy is made here with OpenCV's INTER_AREA, not by the detectors' own downscaling
    (:func:`facerec.detect.scale.downscale`, PIL's bilinear), on purpose: on the test clip (105
    frames of 1080p, YuNet) PIL's copy changed the faces found in 17 frames (657 faces >= 16 px
    against 663) and took 19 ms a frame against 1 ms, every frame of a video."""
    import cv2

    h, w = image.shape[:2]
    scale = max(h, w) / opts.detect_side
    small = (
        image if scale <= 1 else cv2.resize(image, (round(w / scale), round(h / scale)), interpolation=cv2.INTER_AREA)
    )
    s = max(scale, 1.0)
    dets = pipeline.detector.detect(ImageBatch([small], "cpu"))[0]
    faces = faces_from([d.scaled(s) for d in dets], w, h)
    return [f for f in faces if min(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= opts.min_face_px]


def _embed_some(pipeline, image: np.ndarray, faces, idx: list[int]) -> np.ndarray:
    """The tracker's ``embed(indices)``: those of the frame's faces, one batch."""
    return pipeline.embed(image, [faces[j] for j in idx])


def _quality(o: Observation) -> float:
    x1, y1, x2, y2 = o.box
    return max(x2 - x1, 0) * max(y2 - y1, 0) * o.score


def _crop(image: np.ndarray, box) -> np.ndarray:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * CROP_MARGIN, (y2 - y1) * CROP_MARGIN
    a, b = max(int(x1 - mx), 0), max(int(y1 - my), 0)
    c, d = min(int(x2 + mx), w), min(int(y2 + my), h)
    return image[b:d, a:c].copy()


def _vote(views) -> tuple[str, float | None, dict, str]:
    """The track's answer: the name most of its identified views give ("unknown" counts as a name:
    a track most of whose views are strangers is a stranger); a tie goes to unknown, else to the
    name whose views are nearer. Returns (name, median distance of its views, votes, the most voted known name)."""
    if not views:
        return UNKNOWN, None, {}, ""
    counts = Counter(p.name for _, p in views)
    dist = {n: float(np.median([p.distance for _, p in views if p.name == n])) for n in counts}
    # a tie between a name and "unknown" is unknown: half the views doubting is not an identification
    name = min(counts, key=lambda n: (-counts[n], n != UNKNOWN, dist[n]))
    candidates = Counter(p.candidate for _, p in views if p.candidate)
    candidate = candidates.most_common(1)[0][0] if candidates else ""
    return name, dist[name], dict(counts.most_common()), candidate


def one_person_per_frame(results: list[TrackResult]) -> list[TrackResult]:
    """No person named on two tracks seen in one frame: the track nearer its person keeps the name
    (by distance, greedy); the other becomes ``unknown``, keeping the name as its candidate."""
    frames = {r.track: {p[0] for p in r.path} for r in results}
    holders: dict[str, list[TrackResult]] = {}
    for r in sorted(results, key=lambda r: (r.pred == UNKNOWN, r.distance if r.distance is not None else 9.0)):
        if r.pred == UNKNOWN:
            continue
        rivals = [h for h in holders.get(r.pred, []) if frames[h.track] & frames[r.track]]
        if rivals:
            r.note = f"{r.pred} is the nearer match of track {rivals[0].track}, seen in the same frames"
            r.candidate, r.pred = r.pred, UNKNOWN
            continue
        holders.setdefault(r.pred, []).append(r)
    return results


def _decide(track: Track, views, crop) -> TrackResult:
    name, distance, votes, candidate = _vote(views)
    best = max(track.seen, key=_quality)
    return TrackResult(
        track=track.id,
        pred=name,
        distance=distance,
        start_s=track.seen[0].time_s,
        end_s=track.last.time_s,
        frames=len(track.seen),
        embedded=len(views),
        votes=votes,
        candidate=candidate,
        best={"frame": best.frame, "time_s": round(best.time_s, 3), "box": [round(v, 1) for v in best.box]},
        path=[[o.frame, round(o.time_s, 3), *(round(v, 1) for v in o.box)] for o in track.seen],
        crop=None if crop is None else crop[1],
    )


def _live_labels(follow: Tracker, frame: Frame, views) -> list:
    """The tracks seen within the last gap, with their box now and their vote so far."""
    out = []
    for t in follow.live(frame.time_s):
        out.append((t.id, tuple(t.predicted_box(frame.time_s)), _vote(views.get(t.id, []))[0]))
    return out
