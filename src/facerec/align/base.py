"""Aligner interface: images in, every face out (box, landmarks, score, aligned crop)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass
class Detection:
    """A face found by a detector, in the image's pixel coordinates.

    box: (x1, y1, x2, y2) floats; landmarks: float (5, 2) [eyes, nose, mouth corners] or None.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)


@dataclass
class Face:
    """An aligned face: ``crop`` is uint8 (S, S, 3) ready for the embedder."""

    crop: np.ndarray
    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None


class Aligner(ABC):
    """Finds faces and cuts the crops an embedder expects."""

    name: str

    @abstractmethod
    def align(self, images: list[np.ndarray]) -> list[list[Face]]:
        """For each uint8 (H, W, 3) image, its faces, most prominent first; [] if none."""


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
