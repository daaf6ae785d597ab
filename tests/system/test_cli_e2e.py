"""The seed's commands, run for real as a user would: prepare LFW, train, infer, read the accuracy line.
Then every unusual image is identified and every broken one is named."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT

pytestmark = pytest.mark.integration  # real weights too (slow: the folder, conftest.py)


def sh(args, env, cwd, ok=(0,)):
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode in ok, f"{args} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def seed_run(lfw_env, tmp_path_factory):
    """prepare-lfw -> src/train.py -> the model; in a scratch working folder like a user's checkout."""
    work = tmp_path_factory.mktemp("seed")
    facerec = ["-m", "facerec"]
    sh(
        [
            *facerec,
            "prepare-lfw",
            "--min-faces",
            "20",
            "--max-per-person",
            "10",
            "--holdout",
            "10",
            "--out",
            "data/lfw_subset.npz",
            "--holdout-dir",
            "infer_images",
        ],
        lfw_env,
        work,
    )
    train = sh(
        [
            str(ROOT / "src" / "train.py"),
            "--data",
            "data/lfw_subset.npz",
            "--out_dir",
            "models",
            "--art_dir",
            "artifacts",
            "--batch_size",
            "64",
            "--k",
            "3",
            "--align",
            "resize",
            "--embedder",
            "facenet-casia",
        ],
        lfw_env,
        work,
    )
    model = work / "models" / "knn_facenet-casia_lfw_subset.npz"
    assert model.is_file(), train.stdout
    return work, model


def test_seed_commands_print_topk_and_accuracy(seed_run, lfw_env):
    work, model = seed_run
    out = sh(
        [
            str(ROOT / "src" / "infer.py"),
            "--input",
            "infer_images",
            "--model",
            str(model),
            "--art_dir",
            "artifacts",
            "--align",
            "mtcnn",
            "--topk",
            "5",
        ],
        lfw_env,
        work,
    ).stdout
    assert out.count("    5. ") >= 10  # top-5 evidence for every held-out face
    line = [l for l in out.splitlines() if l.startswith("Accuracy: ")]
    assert line, out
    correct, total = map(int, line[0].split()[1].split("/"))
    assert total == 10 and correct >= 9, out


def _variants(base: np.ndarray) -> dict[str, bytes]:
    img = Image.fromarray(base)

    def enc(im, fmt, **kw):
        buf = io.BytesIO()
        im.save(buf, format=fmt, **kw)
        return buf.getvalue()

    rgba = img.convert("RGBA")
    gray16 = Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257)
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated; "rotate 270 CW to display" restores it
    big = img.resize((3000, 3000), Image.BICUBIC)
    return {
        "gray.png": enc(img.convert("L"), "PNG"),
        "rgba.png": enc(rgba, "PNG"),
        "palette.png": enc(img.convert("P", palette=Image.ADAPTIVE, colors=256), "PNG"),
        "cmyk.jpg": enc(img.convert("CMYK"), "JPEG", quality=95),
        "gray16.png": enc(gray16, "PNG"),
        "exif_rotated.jpg": enc(img.transpose(Image.Transpose.ROTATE_270), "JPEG", quality=95, exif=exif.tobytes()),
        "face.pgm": enc(img.convert("L"), "PPM"),
        "face.webp": enc(img, "WEBP", quality=90),
        "huge.jpg": enc(big, "JPEG", quality=90),
    }


def test_unusual_images_identified_and_broken_ones_named(seed_run, lfw_env, tmp_path):
    work, model = seed_run
    # Pick a held-out image the model identifies with MTCNN, then re-encode it every unusual way.
    probe = sh(
        [
            "-m",
            "facerec",
            "infer",
            "--input",
            "infer_images",
            "--model",
            str(model),
            "--art_dir",
            "artifacts",
            "--format",
            "json",
        ],
        lfw_env,
        work,
    ).stdout
    rows = [json.loads(l) for l in probe.splitlines() if '"pred"' in l]
    good = next(
        r
        for r in rows
        if r["face"] == 0
        and r["label"] is not None
        and r["pred"] is not None
        and r["topk"][0]["name"] == r["pred"]
        and r["distance"] < 0.9
    )
    base = np.asarray(Image.open(work / good["file"]).convert("RGB"))
    label = good["label"]
    odd = tmp_path / "odd"
    odd.mkdir()
    for name, data in _variants(base).items():
        stem, ext = name.rsplit(".", 1)
        (odd / f"{stem}_y{label}.{ext}").write_bytes(data)
    broken = {"zero.jpg": b"", "text.jpg": b"hello", "truncated.jpg": (odd / f"cmyk_y{label}.jpg").read_bytes()[:600]}
    for name, data in broken.items():
        (odd / name).write_bytes(data)
    bomb = io.BytesIO()
    Image.new("L", (12000, 12000)).save(bomb, format="PNG")  # 144 MP of zeros, a few hundred KB
    (odd / "bomb.png").write_bytes(bomb.getvalue())
    earlier = model.read_bytes()

    proc = sh(
        [
            "-m",
            "facerec",
            "infer",
            "--input",
            str(odd),
            "--model",
            str(model),
            "--art_dir",
            "artifacts",
            "--format",
            "json",
        ],
        lfw_env,
        work,
        ok=(1,),
    )
    rows = [json.loads(l) for l in proc.stdout.splitlines()]
    by_file = {Path(r["file"]).name: r for r in rows if "file" in r and r.get("face") in (0, None)}
    for name in _variants(base):
        stem, ext = name.rsplit(".", 1)
        row = by_file[f"{stem}_y{label}.{ext}"]
        assert row.get("pred") == good["pred"], (name, row)
    for name in ["zero.jpg", "text.jpg", "truncated.jpg", "bomb.png"]:
        assert name in proc.stderr, proc.stderr
        assert "error" in by_file[name]
    assert "zero.jpg: empty file" in proc.stderr
    assert "bomb.png" in proc.stderr and "decompression bomb" in proc.stderr
    summary = rows[-1]["summary"]
    assert summary["errors"] == 4 and summary["correct"] == summary["total"] == 9
    assert model.read_bytes() == earlier  # nothing saved earlier was touched
