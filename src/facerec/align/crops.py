"""Crop geometry: FaceNet's margin box and the plain resize every cropper ends with."""

from __future__ import annotations

import numpy as np
from PIL import Image


def resize_rgb(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to (size, size) with Pillow's antialiased bilinear filter."""
    if image.shape[0] == size and image.shape[1] == size:
        return np.ascontiguousarray(image)
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def margin_crop(image: np.ndarray, box, size: int, margin: float) -> np.ndarray:
    """FaceNet's crop: the box grown by ``margin`` pixels *of the output crop*, clipped to the
    image, resized to (size, size). Same geometry as facenet-pytorch's ``extract_face``."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    mx = margin * (x2 - x1) / max(size - margin, 1)
    my = margin * (y2 - y1) / max(size - margin, 1)
    left, top = int(max(x1 - mx / 2, 0)), int(max(y1 - my / 2, 0))
    right, bottom = int(min(x2 + mx / 2, w)), int(min(y2 + my / 2, h))
    if right <= left or bottom <= top:
        left, top, right, bottom = 0, 0, w, h
    return resize_rgb(np.ascontiguousarray(image[top:bottom, left:right]), size)
