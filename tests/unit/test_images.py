"""Decoding: unusual-but-valid images convert correctly; broken ones fail with a named, clear error."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from facerec.errors import ImageError
from facerec.images import check_rgb_array, load_image


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:, :30] = (200, 30, 30)
    arr[:, 30:] = (20, 40, 220)
    arr += rng.integers(0, 5, arr.shape, dtype=np.uint8)
    return arr


def test_rgb_png_roundtrip(tmp_path, rgb):
    p = tmp_path / "a.png"
    p.write_bytes(_save(Image.fromarray(rgb), "PNG"))
    out = load_image(p)
    assert out.dtype == np.uint8 and out.shape == (40, 60, 3)
    np.testing.assert_array_equal(out, rgb)


def test_grayscale_becomes_three_equal_channels(rgb):
    out = load_image(_save(Image.fromarray(rgb).convert("L"), "PNG"))
    assert out.shape == (40, 60, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_rgba_is_composited_on_white(rgb):
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:10, :, 3] = 0  # transparent strip
    out = load_image(_save(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (out[:10] == 255).all()
    np.testing.assert_array_equal(out[10:], rgb[10:])


def test_palette_and_cmyk_and_webp_and_pgm(rgb):
    ref = rgb.astype(int)
    for data in (
        _save(Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE), "PNG"),
        _save(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95),
        _save(Image.fromarray(rgb), "WEBP", quality=95),
    ):
        out = load_image(data).astype(int)
        assert out.shape == rgb.shape
        assert np.abs(out - ref).mean() < 12
    pgm = load_image(_save(Image.fromarray(rgb).convert("L"), "PPM"))
    assert pgm.shape == rgb.shape


def test_16bit_grayscale_is_rescaled_not_clipped():
    arr16 = np.linspace(0, 65535, 50 * 50).reshape(50, 50).astype(np.uint16)
    out = load_image(_save(Image.fromarray(arr16), "PNG"))
    assert out.dtype == np.uint8
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255
    assert 100 < out[25, 25, 0] < 160  # mid-grey, not saturated white


def test_exif_rotation_is_applied(rgb):
    img = Image.fromarray(rgb)  # 60 wide, 40 tall
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = load_image(_save(img, "JPEG", exif=exif.tobytes(), quality=95))
    assert out.shape == (60, 40, 3)


def test_empty_file_named(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.jpg: empty file"):
        load_image(p)


def test_not_an_image_named(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("hello, I am text")
    with pytest.raises(ImageError, match=r"notes\.jpg: not an image"):
        load_image(p)


def test_truncated_jpeg_named(tmp_path, rgb):
    data = _save(Image.fromarray(np.kron(rgb, np.ones((8, 8, 1), np.uint8))), "JPEG", quality=95)
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.jpg: corrupt or truncated"):
        load_image(p)


def test_corrupt_header_named(tmp_path, rgb):
    data = bytearray(_save(Image.fromarray(rgb), "PNG"))
    data[16:40] = b"\xff" * 24  # smash IHDR
    p = tmp_path / "bad.png"
    p.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"bad\.png"):
        load_image(p)


def test_decompression_bomb_refused_before_decoding(tmp_path):
    # A valid PNG header claiming 50,000 x 50,000 pixels with almost no data.
    img = Image.new("L", (1, 1))
    data = bytearray(_save(img, "PNG"))
    ihdr = data.find(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", 50_000, 50_000)
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr : ihdr + 17])))
    p = tmp_path / "bomb.png"
    p.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"bomb\.png: .*pixels.*decompression bomb"):
        load_image(p)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="is a directory"):
        load_image(tmp_path)


def test_large_photo_decodes(rgb):
    big = np.kron(rgb, np.ones((100, 100, 1), np.uint8))  # 4000 x 6000
    out = load_image(_save(Image.fromarray(big), "JPEG", quality=80))
    assert out.shape == (4000, 6000, 3)


def test_check_rgb_array():
    assert check_rgb_array(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    with pytest.raises(ImageError, match="uint8"):
        check_rgb_array(np.zeros((4, 5, 3), np.float32))
    with pytest.raises(ImageError, match=r"\(H, W, 3\)"):
        check_rgb_array(np.zeros((4, 5, 4), np.uint8))
