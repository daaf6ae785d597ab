"""What a JPEG's markers say, read from its first bytes without decoding it.

The GPU decoder (nvJPEG) must only get files it decodes as the CPU path would: upright (it ignores
EXIF orientation), baseline or extended-sequential, grey or 3-channel, within the pixel limit.
PIL answers that too, but opening each file costs ~100 us of Python under the GIL, which on a GPU
machine held the whole pipeline to the decoding threads' pace; this scan costs a few us.
"""
from __future__ import annotations

from dataclasses import dataclass

# start-of-frame markers: 0xC0 baseline, 0xC1 extended sequential, 0xC2 progressive, ... (0xC4 DHT,
# 0xC8 JPG and 0xCC DAC share the range but are not frames)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class JpegHeader:
    width: int
    height: int
    components: int
    sequential: bool  # baseline or extended sequential Huffman (SOF0/SOF1)
    exif: bool  # an APP1 Exif segment precedes the frame (it may hold an orientation)


def read_jpeg_header(data: bytes) -> JpegHeader | None:
    """The frame header of JPEG bytes, or None when they are not a JPEG whose frame header is found."""
    if data[:3] != b"\xff\xd8\xff":
        return None
    i, n, exif = 2, len(data), False
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        length = (data[i + 2] << 8) | data[i + 3]
        if length < 2:
            return None
        if marker == 0xE1 and data[i + 4:i + 10] == b"Exif\x00\x00":
            exif = True
        elif marker in _SOF:
            if i + 10 > n:
                return None
            height = (data[i + 5] << 8) | data[i + 6]
            width = (data[i + 7] << 8) | data[i + 8]
            return JpegHeader(width, height, data[i + 9], marker in (0xC0, 0xC1), exif)
        elif marker == 0xDA:  # start of scan before any frame header: malformed
            return None
        i += 2 + length
    return None
