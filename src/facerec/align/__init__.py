"""Alignment: cut each detected face the way its embedder was trained — FaceNet's margin box, the
five landmarks onto a template, dlib's chip — at the embedder's input size."""

from __future__ import annotations

from facerec.align.croppers import create_cropper, cropper_for
from facerec.align.crops import margin_crop, resize_rgb

__all__ = ["create_cropper", "cropper_for", "margin_crop", "resize_rgb"]
