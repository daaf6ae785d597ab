"""What a JPEG's markers say, read from its bytes without decoding it.

The GPU decoder (nvJPEG) must only get files whose picture it decodes as the CPU path does: upright (it ignores
EXIF orientation), 8-bit baseline or extended-sequential, grey or 3-channel, complete, within the
pixel limit. PIL answers that too, but opening each file costs ~100 us of Python under the GIL,
which on a GPU machine held the whole pipeline to the decoding threads' pace; this scan costs a
few us.
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
    bits: int  # sample precision (8 for nearly every JPEG; 12 exists)
    sequential: bool  # baseline or extended sequential Huffman (SOF0/SOF1)
    metadata: bool  # an APP1 segment (Exif or XMP) before the scan: it may hold an orientation
    complete: bool  # ends with the end-of-image marker (trailing zero padding allowed)


def read_jpeg_header(data: bytes) -> JpegHeader | None:
    """The frame header of JPEG bytes, or None when they are not a JPEG whose frame header and
    start of scan are found."""
    if data[:3] != b"\xff\xd8\xff":
        return None
    i, n, metadata, frame = 2, len(data), False, None
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
        if marker == 0xDA:  # start of scan: every header segment has been seen
            if frame is None:
                return None
            complete = data.rstrip(b"\x00")[-2:] == b"\xff\xd9"
            return JpegHeader(*frame, metadata=metadata, complete=complete)
        length = (data[i + 2] << 8) | data[i + 3]
        if length < 2:
            return None
        if marker == 0xE1:  # Exif, or XMP (whose tiff:Orientation PIL honours too)
            metadata = True
        elif marker in _SOF and frame is None:
            if i + 10 > n:
                return None
            height = (data[i + 5] << 8) | data[i + 6]
            width = (data[i + 7] << 8) | data[i + 8]
            frame = (width, height, data[i + 9], data[i + 4], marker in (0xC0, 0xC1))
        i += 2 + length
    return None
