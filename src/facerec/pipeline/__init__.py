"""The one pipeline of named stages: decoder -> detector -> cropper -> embedder (+ optional cache),
built from one :class:`PipelineOptions`."""

from facerec.pipeline.config import PipelineConfig
from facerec.pipeline.core import Pipeline
from facerec.pipeline.options import PipelineOptions
from facerec.pipeline.results import Face, ImageResult

__all__ = ["Face", "ImageResult", "Pipeline", "PipelineConfig", "PipelineOptions"]
