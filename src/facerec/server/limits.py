"""What a request may carry: sizes, pixels, faces, names; and the loopback rule."""

import ipaddress
from dataclasses import dataclass

from facerec import names
from facerec.errors import InputError
from facerec.limits import (
    SERVE_MAX_PIXELS,
    SERVE_MAX_REQUEST_PIXELS,
    SERVE_MAX_UPLOAD_BYTES,
    SERVE_MAX_VIDEO_BYTES,
)

CONTENT_TYPES = {"image/jpeg", "image/png", "image/webp", "image/bmp", "image/gif", "image/tiff"}
VIDEO_TYPES = {"video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/x-msvideo", "video/avi"}


@dataclass
class Limits:
    """What one request may carry, and how much waits.

    max_upload_bytes: the whole request body. max_pixels: one decoded image. max_request_pixels:
    all images of one request together (they are decoded one at a time). max_faces: faces per
    image, checked right after detection (before any embedding). max_files: images per enrolment.
    max_pending: requests holding or waiting for a model worker; the next one is answered 503 with
    Retry-After. load_wait_s: how long a request waits for the models at start-up.
    max_video_bytes, max_video_seconds: one video upload (``/v1/identify-video``): its size and
    its length. Length does not bound the work (10,000 16x16 frames at 1000 fps are 10 s), so:
    max_video_frames, the frames decoded (the header's count is refused before any decoding, and
    decoding stops there); max_video_fps, its frame rate (from its header); max_video_faces, the
    faces embedded (the request stops with 413 when its tracks ask for more).
    """

    max_upload_bytes: int = SERVE_MAX_UPLOAD_BYTES
    max_pixels: int = SERVE_MAX_PIXELS
    max_request_pixels: int = SERVE_MAX_REQUEST_PIXELS
    max_faces: int = 20
    max_files: int = 20
    max_pending: int = 32
    load_wait_s: float = 300.0
    max_video_bytes: int = SERVE_MAX_VIDEO_BYTES
    max_video_seconds: float = 120.0
    max_video_frames: int = 7_200  # 120 s at 60 fps
    max_video_fps: float = 120.0
    max_video_faces: int = 4_000

    def __post_init__(self):
        for name in ("max_video_seconds", "max_video_fps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise InputError(f"{name} must be a finite number > 0, got {value!r}")
        for name in (
            "max_upload_bytes",
            "max_pixels",
            "max_request_pixels",
            "max_faces",
            "max_files",
            "max_pending",
            "max_video_bytes",
            "max_video_frames",
            "max_video_faces",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a whole number >= 1, got {value!r}")


class EmbedBudget:
    """``pipeline`` for one video request: its ``embed`` refuses to pass ``limit`` faces in all
    (VideoOverBudget, answered 413), so the work a video asks for is bounded whatever its frames hold."""

    def __init__(self, pipeline, limit: int, label: str):
        self._pipeline, self.limit, self.label, self.used = pipeline, limit, label, 0

    def __getattr__(self, name):
        return getattr(self._pipeline, name)

    def embed(self, image, faces):
        from facerec.video.frames import VideoOverBudget

        self.used += len(faces)
        if self.used > self.limit:
            raise VideoOverBudget(
                f"{self.label}: more than the limit of {self.limit:,} faces embedded a video; "
                "send a shorter video or a larger ?every="
            )
        return self._pipeline.embed(image, faces)


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def check_name(name: str) -> str:
    """A person's name as the URL or the page gave it, in its stored form (the one rule of
    :mod:`facerec.names`); 400 naming the problem otherwise."""
    try:
        return names.check_name(name)
    except names.InvalidName as exc:
        raise HTTPError(400, str(exc)) from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
