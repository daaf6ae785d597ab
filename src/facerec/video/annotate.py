"""``--annotate OUT.mp4``: the video again, with every track's box, name and id drawn.

A file is drawn in a second pass, after every track has been decided, so each box carries its
track's final answer from its first frame (between detection steps the box moves in a straight
line from one sighting to the next). A live source is drawn as it plays, with the vote so far.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facerec.errors import InputError, SaveError
from facerec.gallery.identify import UNKNOWN
from facerec.video.frames import VideoSource

KNOWN = (40, 200, 60)  # RGB: a named person's box
STRANGER = (230, 160, 30)  # RGB: an unknown face's box
ENCODERS = ("libx264", "mpeg4")  # H.264 where the FFmpeg build has it, else MPEG-4 part 2 (every build has it)


class VideoWriter:
    """Frames (uint8 RGB (H, W, 3)) into a video file, written to a temporary name and renamed
    when complete: an interrupted run leaves no half-written file under OUT's name."""

    def __init__(self, path, *, fps: float, width: int, height: int):
        import av

        self.path = Path(path)
        if self.path.suffix.lower() not in (".mp4", ".mkv", ".mov", ".avi"):
            raise InputError(f"{self.path}: --annotate writes .mp4, .mkv, .mov or .avi")
        if not self.path.parent.is_dir():
            raise InputError(f"{self.path}: its folder does not exist")
        self.tmp = self.path.with_name(f".{self.path.name}.part{self.path.suffix}")
        self._out = av.open(str(self.tmp), "w")
        codec = next(c for c in ENCODERS if c in av.codecs_available)
        rate = max(1, round(fps))
        self._stream = self._out.add_stream(codec, rate=rate)
        self._stream.width, self._stream.height = width - width % 2, height - height % 2
        self._stream.pix_fmt = "yuv420p"
        self._frames = 0

    def write(self, image: np.ndarray) -> None:
        import av

        h, w = self._stream.height, self._stream.width
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="rgb24")
        for packet in self._stream.encode(frame):
            self._out.mux(packet)
        self._frames += 1

    def close(self) -> None:
        try:
            for packet in self._stream.encode():
                self._out.mux(packet)
            self._out.close()
            self.tmp.replace(self.path)
        except Exception as exc:
            self.tmp.unlink(missing_ok=True)
            raise SaveError(f"{self.path}: could not write the annotated video: {exc}") from exc

    def abort(self) -> None:
        try:
            self._out.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def draw(image: np.ndarray, boxes) -> np.ndarray:
    """``boxes``: [(track id, (x1, y1, x2, y2), name)]; draws on a copy."""
    import cv2

    out = np.ascontiguousarray(image).copy()
    thick = max(2, round(max(out.shape[:2]) / 540))
    scale = max(out.shape[:2]) / 1600
    for tid, box, name in boxes:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        color = STRANGER if name == UNKNOWN else KNOWN
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thick)
        text = f"{tid}: {name}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        top = max(y1 - th - base - 2, 0)
        cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + base + 2), color, -1)
        cv2.putText(out, text, (x1 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)
    return out


def boxes_at(tracks, frame: int) -> list:
    """Each track's box at ``frame``: its sighting there, or the straight line between the
    sightings around it; nothing outside the track's first and last sighting."""
    out = []
    for t in tracks:
        path = t.path
        if not path or frame < path[0][0] or frame > path[-1][0]:
            continue
        frames = [p[0] for p in path]
        k = int(np.searchsorted(frames, frame))
        if frames[k] == frame:
            box = path[k][2:]
        else:
            a, b = path[k - 1], path[k]
            w = (frame - a[0]) / (b[0] - a[0])
            box = [(1 - w) * u + w * v for u, v in zip(a[2:], b[2:])]
        out.append((t.track, box, t.pred))
    return out


def annotate_file(spec, report, out_path) -> int:
    """Draw ``report``'s tracks over the file they came from; returns frames written."""
    source = VideoSource(spec)
    writer = VideoWriter(out_path, fps=source.fps, width=source.width, height=source.height)
    try:
        n = 0
        for frame in source.frames():
            writer.write(draw(frame.rgb(), boxes_at(report.tracks, frame.index)))
            n += 1
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return n
