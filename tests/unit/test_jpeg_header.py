"""The JPEG marker scan reads what PIL reads, on LFW and on made-up files."""

import io

import pytest
from PIL import Image

from facerec.jpeg_header import read_jpeg_header

from conftest import require_lfw

XMP_ROTATED = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
)


def _jpeg(**save) -> bytes:
    buf = io.BytesIO()
    mode = save.pop("mode", "RGB")
    Image.new(mode, (37, 23)).save(buf, "JPEG", **save)
    return buf.getvalue()


def _exif_after_frame() -> bytes:
    """A JPEG whose Exif segment comes after the frame header (legal; PIL still reads it)."""
    data = _jpeg()
    sof = data.index(b"\xff\xc0")
    end = sof + 2 + int.from_bytes(data[sof + 2 : sof + 4], "big")
    payload = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00"
    return data[:end] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + data[end:]


def test_same_size_and_channels_as_pil_on_lfw():
    paths = sorted(require_lfw().glob("*/*.jpg"))[::50]
    for p in paths:
        data = p.read_bytes()
        head, im = read_jpeg_header(data), Image.open(p)
        assert head is not None and (head.width, head.height) == im.size, p
        assert head.components == len(im.getbands()) and head.sequential and head.bits == 8, p
        assert head.complete and not head.metadata, p


@pytest.mark.parametrize(
    "data, want",
    [
        (_jpeg(), (37, 23, 3, True, False, True)),
        (_jpeg(mode="L"), (37, 23, 1, True, False, True)),
        (_jpeg(mode="CMYK"), (37, 23, 4, True, False, True)),
        (_jpeg(progressive=True), (37, 23, 3, False, False, True)),
        (_jpeg(exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00"), (37, 23, 3, True, True, True)),
        (_jpeg(xmp=XMP_ROTATED), (37, 23, 3, True, True, True)),  # PIL rotates by XMP's orientation too
        (_exif_after_frame(), (37, 23, 3, True, True, True)),
        (_jpeg()[:-2], (37, 23, 3, True, False, False)),  # cut after the scan began
        (_jpeg() + b"\x00" * 10, (37, 23, 3, True, False, True)),  # zero padding after the end marker
    ],
)
def test_made_up_files(data, want):
    h = read_jpeg_header(data)
    assert (h.width, h.height, h.components, h.sequential, h.metadata, h.complete) == want


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xd8",
        b"GIF89a" + b"\x00" * 20,
        b"\xff\xd8\xff\xe0\x00",
        _jpeg()[:30],
        b"\xff\xd8\xff\xda\x00\x08" + b"\x00" * 20,
    ],
)
def test_not_a_readable_jpeg_header(data):
    assert read_jpeg_header(data) is None
