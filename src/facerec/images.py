"""Decode any image a user is likely to have into an RGB ``uint8`` array, or fail clearly.

Handles EXIF orientation, grayscale, palette, RGBA/LA (composited on white), CMYK,
16-bit and float images, and refuses decompression bombs before decoding pixels.
"""

from __future__ import annotations

import io
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facerec.errors import ImageError
from facerec.limits import DEEP_BLOCK_PIXELS, DEFAULT_MAX_PIXELS, MAX_IMAGE_FILE_BYTES
from facerec.paths import read_regular_file

# DEFAULT_MAX_PIXELS, MAX_IMAGE_FILE_BYTES and DEEP_BLOCK_PIXELS are set, with their reasons, in
# facerec.limits; they stay importable from here (datasets reads one here)

#: The formats read, whatever a file's name or an upload's declared type says: Pillow's other
#: plugins (PCX, TGA, SGI, ICO, DDS, XBM, SPIDER, QOI, EPS through Ghostscript...) are never reached.
READ_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "PPM")

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".pnm"}
)


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def load_image(
    source: str | os.PathLike | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, name: str | None = None
) -> np.ndarray:
    """Decode a file path or raw bytes into an RGB image.

    Returns:
        uint8 array of shape (H, W, 3).
    Raises:
        ImageError: naming the file and the problem (empty, not an image, truncated,
            too many pixels, unreadable).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = name or "<upload>"
    else:
        label = name or str(source)
        try:
            data = read_regular_file(source, max_bytes=MAX_IMAGE_FILE_BYTES)
        except FileNotFoundError:
            raise ImageError(f"{label}: no such file") from None
        except IsADirectoryError:
            raise ImageError(f"{label}: is a directory, not an image") from None
        except OSError as exc:
            raise ImageError(f"{label}: cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise ImageError(f"{label}: empty file (0 bytes)")
    return decode_image(data, label=label, max_pixels=max_pixels)


@contextmanager
def _opened(data: bytes, label: str):
    """The Pillow image of ``data`` (the listed formats only), with every way it can fail turned
    into an ImageError naming ``label`` and the problem."""
    try:
        with warnings.catch_warnings():
            # We enforce our own pixel limit; silence Pillow's bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=READ_FORMATS) as img:
                yield img
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{label}: refused, possible decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{label}: not an image, or not one of the formats read (JPEG, PNG, WebP, BMP, GIF, TIFF, PGM/PPM)"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{label}: corrupt or truncated image ({exc})") from None


def decode_image(data: bytes, *, label: str = "<image>", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes; see :func:`load_image`."""
    with _opened(data, label) as img:
        width, height = img.size
        if width * height > max_pixels:
            raise ImageError(
                f"{label}: image is {width}x{height} = {width * height:,} pixels, over the limit of "
                f"{max_pixels:,} (possible decompression bomb)"
            )
        img.load()
        return _to_rgb(ImageOps.exif_transpose(img))


def peek_size(data: bytes, *, label: str = "<image>") -> tuple[int, int]:
    """(width, height) from an encoded image's header, without decoding its pixels."""
    with _opened(data, label) as img:
        return img.size


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _deep_to_rgb(img)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    rgb = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _deep_to_rgb(img: Image.Image) -> np.ndarray:
    """16/32-bit or float grayscale onto 0-255 (Pillow's convert("L") would clip): a float image's
    range is stretched, integers over 255 are taken as 16-bit. Read in blocks of rows, in float32,
    so the only whole-image array is the answer (3 bytes a pixel beside Pillow's own copy)."""
    width, height = img.size
    rows = max(1, DEEP_BLOCK_PIXELS // max(width, 1))

    def blocks():
        for top in range(0, height, rows):
            yield top, np.asarray(img.crop((0, top, width, min(top + rows, height))))

    if img.mode == "F":
        lo, hi = np.inf, -np.inf
        for _, block in blocks():
            if np.isfinite(block).any():
                lo, hi = min(lo, float(np.nanmin(block))), max(hi, float(np.nanmax(block)))
        scale = 255.0 / (hi - lo) if np.isfinite(lo) and hi > lo else 0.0
    else:
        lo = 0.0
        scale = 1 / 257.0 if max(int(block.max(initial=0)) for _, block in blocks()) > 255 else 1.0
    out = np.empty((height, width, 3), np.uint8)
    for top, block in blocks():
        gray = (block.astype(np.float32) - np.float32(lo if scale else 0.0)) * np.float32(scale)  # scale 0: flat
        gray = np.clip(np.rint(np.nan_to_num(gray, nan=0.0)), 0, 255)
        out[top : top + len(block)] = gray.astype(np.uint8)[:, :, None]
    return out


def check_rgb_array(image: np.ndarray, *, label: str = "image") -> np.ndarray:
    """Validate an in-memory image: uint8 (H, W, 3); grayscale (H, W) is expanded."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ImageError(f"{label}: expected dtype uint8, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"{label}: expected shape (H, W, 3), got {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageError(f"{label}: empty image of shape {image.shape}")
    return image
