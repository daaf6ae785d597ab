"""The JPEG marker scan reads what PIL reads, on LFW and on made-up files."""
import io

import pytest
from PIL import Image

from conftest import require_lfw
from facerec.jpeg_header import read_jpeg_header


def _jpeg(**save) -> bytes:
    buf = io.BytesIO()
    mode = save.pop("mode", "RGB")
    Image.new(mode, (37, 23)).save(buf, "JPEG", **save)
    return buf.getvalue()


def test_same_size_and_channels_as_pil_on_lfw():
    paths = sorted(require_lfw().glob("*/*.jpg"))[::50]
    for p in paths:
        data = p.read_bytes()
        head, im = read_jpeg_header(data), Image.open(p)
        assert head is not None and (head.width, head.height) == im.size, p
        assert head.components == len(im.getbands()) and head.sequential and not head.exif, p


@pytest.mark.parametrize("save, want", [
    ({}, (37, 23, 3, True, False)),
    ({"mode": "L"}, (37, 23, 1, True, False)),
    ({"mode": "CMYK"}, (37, 23, 4, True, False)),
    ({"progressive": True}, (37, 23, 3, False, False)),
    ({"exif": b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00"}, (37, 23, 3, True, True)),
])
def test_made_up_files(save, want):
    h = read_jpeg_header(_jpeg(**save))
    assert (h.width, h.height, h.components, h.sequential, h.exif) == want


@pytest.mark.parametrize("data", [b"", b"\xff\xd8", b"GIF89a" + b"\x00" * 20, b"\xff\xd8\xff\xe0\x00",
                                  _jpeg()[:30], b"\xff\xd8\xff\xda\x00\x08" + b"\x00" * 20])
def test_not_a_readable_jpeg_header(data):
    assert read_jpeg_header(data) is None
