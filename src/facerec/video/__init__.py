"""Video: frames from files and streams, faces followed across frames, one answer per track."""

from facerec.video.analyze import VideoOptions, VideoReport, analyze_video
from facerec.video.frames import VideoError, is_live, is_video, open_video
from facerec.video.tracker import TrackerConfig

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
