"""The one pipeline of named stages: decoder -> detector -> cropper -> embedder (+ optional cache)."""

from .config import PipelineConfig
from .core import Pipeline
from .detectors import Detector, create_detector, detector_names, register_detector
from .results import Face, ImageResult

__all__ = [
    "Detector",
    "Face",
    "ImageResult",
    "Pipeline",
    "PipelineConfig",
    "create_detector",
    "detector_names",
    "register_detector",
]
