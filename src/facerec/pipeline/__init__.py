"""The one pipeline of named stages: decoder -> detector -> cropper -> embedder (+ optional cache)."""

from facerec.pipeline.config import PipelineConfig
from facerec.pipeline.core import Pipeline
from facerec.pipeline.detectors import Detector, create_detector, detector_names, register_detector
from facerec.pipeline.results import Face, ImageResult

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
