"""Video: frames from files and streams, faces followed across frames, one answer per track."""

from .analyze import VideoOptions, VideoReport, analyze_video
from .source import VideoError, is_live, is_video, open_video
from .tracker import TrackerConfig

__all__ = [
    "VideoError",
    "VideoOptions",
    "VideoReport",
    "TrackerConfig",
    "analyze_video",
    "is_live",
    "is_video",
    "open_video",
]
