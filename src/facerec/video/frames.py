"""Frames from a video file or a live stream, decoded by PyAV (FFmpeg in its wheel).

A file is read once, front to back; a live source (``rtsp://``, ``http://``, ``tcp://``…,
``webcam:N``) reconnects a bounded number of times when it drops, and says so. Every way a file
can be unusable (missing, corrupt or truncated, an unknown codec, audio only, no frames, too long)
is a :class:`VideoError` naming the file and the problem.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Queue

import numpy as np

from facerec.errors import InputError
from facerec.text import printable

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mkv", ".avi", ".webm", ".mov"})
LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "tcp://", "udp://", "srt://")
WEBCAM = "webcam:"
RECONNECTS = 3  # times a dropped live source is opened again before giving up
RECONNECT_WAIT_S = 1.0  # the first wait; it doubles at each further try
OPEN_TIMEOUT_S = 10.0  # a live source that sends nothing for this long has dropped
DECODE_AHEAD = 8  # frames decoded ahead of the consumer: overlaps decoding with detection, bounds memory


class VideoError(InputError):
    """A video or stream cannot be read as asked; the message names it and says why."""


class VideoOverBudget(VideoError):
    """A video file that asks for more work than its limits allow (frames, frame rate, length)."""


class VideoTooLong(VideoOverBudget):
    """A video file longer than the limit it was opened with."""


@dataclass
class Frame:
    """One decoded frame: ``index`` from 0, ``time_s`` from the start (a live source: since the
    first frame), and the picture, decoded to uint8 RGB (H, W, 3) only when :meth:`rgb` is asked."""

    index: int
    time_s: float
    _frame: object = None
    _rgb: np.ndarray | None = None

    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb = self._frame.to_ndarray(format="rgb24")
        return self._rgb


def is_live(spec: str) -> bool:
    return str(spec).startswith(LIVE_SCHEMES + (WEBCAM,))


def is_video(spec) -> bool:
    """A video file (by its suffix) or a live source."""
    return is_live(str(spec)) or Path(str(spec)).suffix.lower() in VIDEO_SUFFIXES


class VideoSource:
    """Open with :func:`open_video`. ``fps``, ``width``, ``height`` and ``frame_count`` (None when
    the container does not say) come from the stream; :meth:`frames` yields :class:`Frame` objects.

    Args:
        spec: a file path, a stream URL or ``webcam:N``.
        max_seconds: refuse a file longer than this (from its header, and again while decoding);
            stop reading a live source after this long.
        max_frames: refuse a file of more frames than this (from its header, and again while
            decoding): length in seconds does not bound the work, 10,000 tiny frames at 1000 fps
            are 10 s.
        max_fps: refuse a file whose frame rate is over this (from its header).
        reconnects: a live source's reconnection attempts after a drop.
        note: where reconnection notes go (default: standard error).
        label: how messages name the source (default: ``spec``; a service names the upload).
    """

    def __init__(
        self,
        spec,
        *,
        max_seconds: float | None = None,
        max_frames: int | None = None,
        max_fps: float | None = None,
        reconnects: int = RECONNECTS,
        reconnect_wait_s: float = RECONNECT_WAIT_S,
        note: Callable[[str], None] | None = None,
        label: str | None = None,
    ):
        self.spec = str(spec)
        self.label = label or printable(self.spec)
        self.live = is_live(self.spec)
        self.max_seconds, self.reconnects, self.reconnect_wait_s = max_seconds, reconnects, reconnect_wait_s
        self.max_frames, self.max_fps = max_frames, max_fps
        self.note = note or (lambda msg: print(msg, file=sys.stderr))
        self.reconnected = 0  # how many times a live source was opened again
        self.truncated: str | None = None  # a file whose decoding stopped early: why
        if not self.live and not Path(self.spec).is_file():
            raise VideoError(f"{self.label}: no such video file")
        self._container = self._open()
        self._describe(self._container)

    # -- opening -----------------------------------------------------------------------------------
    def _open(self):
        import av

        target, options, fmt = self.spec, {}, None
        if self.spec.startswith(WEBCAM):
            target, fmt = _webcam(self.spec)
        elif self.live:
            options = {"rw_timeout": str(int(OPEN_TIMEOUT_S * 1e6))}
            if self.spec.startswith(("rtsp://", "rtsps://")):
                options = {"rtsp_transport": "tcp", "timeout": str(int(OPEN_TIMEOUT_S * 1e6))}
        try:
            container = av.open(target, format=fmt, options=options, timeout=OPEN_TIMEOUT_S if self.live else None)
        except av.error.EOFError:
            if self.live:
                raise VideoError(f"{self.label}: cannot open the stream: it ended before its first frame") from None
            raise VideoError(f"{self.label}: the video holds no frames: the file ends before its first one") from None
        except av.error.FFmpegError as exc:
            what = (
                "cannot open the stream" if self.live else "not a video we can read (corrupt, truncated or not a video)"
            )
            raise VideoError(f"{self.label}: {what}: {_reason(exc)}") from None
        if not container.streams.video:
            kinds = [s.type for s in container.streams]
            container.close()
            has = f"only {', '.join(kinds)} streams" if kinds else "no streams at all"
            raise VideoError(f"{self.label}: no video stream ({has})")
        stream = container.streams.video[0]
        if stream.codec_context is None or stream.codec_context.codec is None:
            container.close()
            raise VideoError(f"{self.label}: its video codec is not one FFmpeg can decode")
        stream.thread_type = "AUTO"  # FFmpeg's frame and slice threads
        return container

    def _describe(self, container) -> None:
        stream = container.streams.video[0]
        self.codec = stream.codec_context.name
        self.width, self.height = int(stream.codec_context.width), int(stream.codec_context.height)
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 25.0
        self.frame_count = int(stream.frames) or None
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1e6
        self.duration_s = duration
        if not self.live:
            try:
                self._check_budget()
            except VideoOverBudget:
                container.close()
                raise

    def _check_budget(self) -> None:
        """Refuse a file whose header already says it is over a limit, before any frame is decoded."""
        duration = self.duration_s
        if self.max_seconds is not None and duration is not None and duration > self.max_seconds:
            raise VideoTooLong(f"{self.label}: {duration:.1f} s long, over the limit of {self.max_seconds:g} s")
        if self.max_fps is not None and self.fps > self.max_fps:
            raise VideoOverBudget(f"{self.label}: {self.fps:g} frames a second, over the limit of {self.max_fps:g}")
        frames = self.frame_count or (round(duration * self.fps) if duration else None)
        if self.max_frames is not None and frames is not None and frames > self.max_frames:
            raise VideoOverBudget(
                f"{self.label}: {frames:,} frames, over the limit of {self.max_frames:,} frames a video; "
                "send a shorter video"
            )

    # -- reading -----------------------------------------------------------------------------------
    def frames(self) -> Iterator[Frame]:
        """Every frame in order, decoded one thread ahead of the caller (FFmpeg releases the GIL)."""
        queue: Queue = Queue(DECODE_AHEAD)
        stop = threading.Event()
        worker = threading.Thread(target=self._decode_into, args=(queue, stop), daemon=True, name="facerec-decode")
        worker.start()
        try:
            while True:
                item = queue.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while worker.is_alive():  # let the decoder see ``stop`` even if it waits on a full queue
                while not queue.empty():
                    queue.get_nowait()
                worker.join(0.05)
            self.close()

    def _decode_into(self, queue: Queue, stop: threading.Event) -> None:
        try:
            for frame in self._frames(stop):
                if stop.is_set():
                    return
                queue.put(frame)
        except BaseException as exc:  # raised again in the caller's thread
            queue.put(exc)
            return
        queue.put(None)

    def _frames(self, stop: threading.Event) -> Iterator[Frame]:
        import av

        index, first_pts_s, started, t = 0, None, time.monotonic(), 0.0
        tries = 0
        while True:
            stream = self._container.streams.video[0]
            try:
                for frame in self._container.decode(stream):
                    if stop.is_set():
                        return
                    if self.live:
                        t = time.monotonic() - started
                        if self.max_seconds is not None and t > self.max_seconds:
                            return  # a live source is watched for as long as asked
                    else:
                        pts_s = float(frame.time) if frame.time is not None else index / self.fps
                        first_pts_s = pts_s if first_pts_s is None else first_pts_s
                        t = pts_s - first_pts_s
                        if self.max_seconds is not None and t > self.max_seconds:
                            raise VideoTooLong(f"{self.label}: longer than the limit of {self.max_seconds:g} s")
                        if self.max_frames is not None and index >= self.max_frames:  # its header said less
                            raise VideoOverBudget(
                                f"{self.label}: more than the limit of {self.max_frames:,} frames a video"
                            )
                    yield Frame(index, round(t, 4), frame)
                    index += 1
                    tries = 0
            except (av.error.FFmpegError, _Dropped) as exc:
                if not self.live:
                    if index == 0:
                        raise VideoError(f"{self.label}: no frame could be decoded: {_reason(exc)}") from None
                    # frames before the damage are real; the caller reports where it stopped
                    self.truncated = f"decoding stopped after frame {index - 1}: {_reason(exc)}"
                    return
                reason = _reason(exc)
            else:
                if not self.live:
                    if index == 0:
                        raise VideoError(f"{self.label}: the video stream holds no frames")
                    last = t if index else 0.0
                    if self.frame_count and index < self.frame_count * 0.98:
                        self.truncated = f"{index} of the {self.frame_count} frames its header announces"
                    elif self.duration_s and last < self.duration_s - 2.0 / self.fps:
                        self.truncated = f"{index} frames, ending at {last:.2f} s of the {self.duration_s:.2f} s its header announces"
                    return
                reason = "the stream ended"
            if tries >= self.reconnects:
                raise VideoError(
                    f"{self.label}: {reason}; gave up after {self.reconnects} reconnection attempts"
                    if self.reconnects
                    else f"{self.label}: {reason}"
                )
            tries += 1
            wait = self.reconnect_wait_s * 2 ** (tries - 1)
            self.note(f"{self.label}: {reason}; reconnecting in {wait:g} s (attempt {tries} of {self.reconnects})")
            self.close()
            if stop.wait(wait):
                return
            try:
                self._container = self._open()
                self.reconnected += 1
            except VideoError as exc:
                self._container = _Dead(str(exc))
                continue

    def close(self) -> None:
        try:
            self._container.close()
        except Exception:  # closing twice, or a container that never opened: nothing to release
            pass


class _Dropped(Exception):
    """A live source that could not be opened again."""


class _Dead:
    """A live source whose reopening failed: reading it fails, so the next attempt follows."""

    def __init__(self, why: str):
        self.why = why
        self.streams = type("S", (), {"video": [None]})()

    def decode(self, stream):
        raise _Dropped(self.why)

    def close(self):
        pass


def open_video(spec, **options) -> VideoSource:
    """A :class:`VideoSource` for a file, a stream URL or ``webcam:N``; see its options."""
    return VideoSource(spec, **options)


def _webcam(spec: str) -> tuple[str, str]:
    index = spec[len(WEBCAM) :]
    if not index.isdigit():
        raise VideoError(f"{printable(spec)}: expected webcam:N with N a camera number, e.g. webcam:0")
    if sys.platform.startswith("linux"):
        return f"/dev/video{index}", "v4l2"
    if sys.platform == "darwin":
        return index, "avfoundation"
    raise VideoError(f"{printable(spec)}: webcams are read on Linux and macOS; pass the camera's stream URL")


def _reason(exc) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return printable(str(text)).rstrip(".")
