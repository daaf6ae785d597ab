"""Decoders: ``pil`` (worker threads; EXIF rotation, any listed format, size limits; the default,
and the only one without PyTorch) and ``nvjpeg`` (JPEGs decoded on the GPU by torchvision in one
call per batch; every other file goes to the PIL path; the ``gpu`` extra).

A worker reads each file once: its bytes give the content key (the cache's), and a cache hit
skips decoding altogether.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from facerec.datasets import Sample
from facerec.errors import FacerecError, InputError
from facerec.extras import MissingExtra, has
from facerec.jpeg_header import read_jpeg_header

DECODERS = ("auto", "pil", "nvjpeg")


@dataclass
class Decoded:
    """One input after decoding: ``image`` (uint8 (H, W, 3) numpy, or uint8 (3, H, W) CUDA tensor),
    or ``cached`` (the faces the cache holds for its content), or ``error``."""

    key: str | None = None
    image: object = None
    cached: list | None = None
    error: str | None = None


class Decoder:
    """Decode a list of samples with ``pool``'s threads; ``lookup(key)`` returns cached faces or None."""

    def __init__(self, name: str, *, device: str, max_pixels: int):
        if name not in DECODERS:
            raise InputError(f"decoder must be one of {', '.join(DECODERS)}, got {name!r}")
        gpu = device.startswith("cuda")
        if name == "auto":
            name = "nvjpeg" if gpu else "pil"
        if name == "nvjpeg" and not has("torchvision"):
            raise MissingExtra("gpu", "the nvjpeg decoder runs on torchvision, and torchvision", "torchvision")
        if name == "nvjpeg" and not gpu:
            raise InputError("the nvjpeg decoder needs a CUDA device")
        self.name, self.device, self.max_pixels = name, device, max_pixels
        self._stream = None  # nvJPEG's CUDA stream, made on first use

    def decode(self, samples: list[Sample], pool: ThreadPoolExecutor, lookup) -> list[Decoded]:
        if self.name == "nvjpeg":
            return self._nvjpeg(samples, pool, lookup)
        return list(pool.map(lambda s: self._pil(s, lookup), samples))

    def _read(self, sample: Sample, lookup) -> tuple[Decoded, object]:
        try:
            key, raw = sample.read()
        except FacerecError as exc:
            return Decoded(error=str(exc)), None
        cached = lookup(key)
        return Decoded(key=key, cached=cached), (None if cached is not None else raw)

    def _pil(self, sample: Sample, lookup) -> Decoded:
        out, raw = self._read(sample, lookup)
        if raw is not None:
            try:
                out.image = sample.decode(raw, self.max_pixels)
            except FacerecError as exc:
                out.error = str(exc)
        return out

    def _nvjpeg(self, samples, pool, lookup) -> list[Decoded]:
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg

        read = list(pool.map(lambda s: self._read(s, lookup), samples))
        jpeg = [i for i, (_, raw) in enumerate(read) if isinstance(raw, bytes) and self._nvjpeg_can(raw)]
        if jpeg:
            if self._stream is None:
                self._stream = torch.cuda.Stream(device=self.device)
            try:
                # on a stream of its own: the next batch decodes while this one is detected
                with torch.cuda.stream(self._stream):
                    data = [torch.frombuffer(bytearray(read[i][1]), dtype=torch.uint8) for i in jpeg]
                    images = decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device)
                self._stream.synchronize()
                for i, img in zip(jpeg, images):
                    read[i][0].image = img
            except RuntimeError:  # one bad JPEG fails the batch: every file goes to the PIL path below
                pass
        rest = [i for i, (d, raw) in enumerate(read) if raw is not None and d.image is None]

        def pil(i):
            d, raw = read[i]
            try:
                d.image = samples[i].decode(raw, self.max_pixels)
            except FacerecError as exc:
                d.error = str(exc)

        list(pool.map(pil, rest))
        return [d for d, _ in read]

    def _nvjpeg_can(self, data: bytes) -> bool:
        """Whether nvJPEG decodes the picture the PIL path would: a complete 8-bit sequential grey or
        3-channel JPEG, upright (nvJPEG ignores EXIF rotation), within the pixel limit. Only the
        markers are read. Its pixels may differ from libjpeg-turbo's by a grey level or so (another
        IDCT and chroma upsampling): LFW pairs accuracy on fold 1 was the same either way."""
        head = read_jpeg_header(data)
        return not (
            head is None
            or not head.sequential
            or head.bits != 8
            or not head.complete
            or head.components not in (1, 3)
            or head.width * head.height > self.max_pixels
            or (head.metadata and not _upright(data))
        )


def _upright(data: bytes) -> bool:
    """Whether a JPEG with an APP1 segment (Exif or XMP) has no rotation to apply (PIL reads it; rare files)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.getexif().get(0x0112, 1) == 1
    except Exception:
        return False
