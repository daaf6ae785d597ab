"""Face geometry shared by the pipeline's stages: detections, the subject rule, crops."""

from __future__ import annotations

from facerec.align.base import Detection, box_iou, by_prominence, margin_crop, prominence, resize_rgb

__all__ = ["Detection", "box_iou", "by_prominence", "margin_crop", "prominence", "resize_rgb"]
