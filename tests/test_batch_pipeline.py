"""The throughput path gives the same embeddings as the reference pipeline, and reports bad files."""

import numpy as np
import pytest
import torch

from facerec.align import by_prominence
from facerec.align.base import Detection
from facerec.batch_pipeline import BatchPipeline, _subject
from facerec.datasets import Sample
from facerec.embed.facenet import FaceNetEmbedder
from facerec.errors import InputError
from facerec.pipeline import FacePipeline

from conftest import require_lfw


def test_subject_is_the_most_prominent_face():
    rng = np.random.default_rng(0)
    boxes, owner = [], []
    for img in range(5):
        for _ in range(rng.integers(1, 5)):
            x, y, s = rng.uniform(0, 200), rng.uniform(0, 200), rng.uniform(10, 80)
            boxes.append((x, y, x + s, y + s))
            owner.append(img)
    b, o = torch.tensor(boxes, dtype=torch.float32), torch.tensor(owner)
    pick = _subject(b, o, 6, 250, 250).tolist()  # image 5 has no face: nothing picked for it
    want = []
    for img in range(5):
        dets = [Detection(boxes[i], 1.0) for i in range(len(boxes)) if owner[i] == img]
        best = by_prominence(dets, 250, 250)[0].box
        want.append(boxes.index(best))
    assert pick == want


@pytest.mark.slow
def test_same_embeddings_as_face_pipeline_and_bad_files(casia, tmp_path):
    lfw = require_lfw()
    paths = [str(p) for p in sorted(lfw.glob("*/*.jpg"))[::700]]  # 19 images
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    from PIL import Image

    Image.new("RGB", (200, 160), (120, 120, 120)).save(tmp_path / "blank.png")
    inputs = paths[:10] + [str(tmp_path / "broken.jpg")] + paths[10:] + [str(tmp_path / "blank.png")]
    fast = BatchPipeline(embedder=casia, device="cpu", batch_size=8, workers=2).run(inputs)
    assert list(fast.errors) == [str(tmp_path / "broken.jpg")] and "broken.jpg" in fast.errors[inputs[10]]
    assert not fast.found[10] and not fast.found[-1]
    assert fast.found[[i for i in range(len(inputs)) if i not in (10, len(inputs) - 1)]].all()

    ref = FacePipeline.create(embedder="facenet-casia", align="mtcnn", device="cpu", art_dir=None)
    results = ref.run([Sample(p, p) for p in paths], quiet=True)
    want = np.stack([r.faces[0].embedding for r in results])
    got = fast.embeddings[[i for i, p in enumerate(inputs) if p in paths]]
    cos = np.sum(want * got, axis=1)
    # same detections and geometry; only the final resampling differs (roi_align vs PIL bilinear)
    assert cos.min() > 0.99 and cos.mean() > 0.998, cos


def test_half_precision_agrees_with_fp32(casia):
    from facerec.embed.facenet import CASIA

    state = {k: v for k, v in casia.state_dict().items()}
    bf16 = FaceNetEmbedder(CASIA, state, "cpu", precision="bf16")
    x = torch.rand(4, 3, 160, 160) * 255
    a, b = casia.embed_tensor(x), bf16.embed_tensor(x)
    assert a.dtype == b.dtype == torch.float32
    assert torch.sum(a * b, 1).min() > 0.995


def test_options_are_checked(casia):
    with pytest.raises(InputError, match="nvjpeg decoder needs a CUDA"):
        BatchPipeline(embedder=casia, device="cpu", decoder="nvjpeg")
    with pytest.raises(InputError, match="decoder must be"):
        BatchPipeline(embedder=casia, device="cpu", decoder="libjpeg-turbo")


@pytest.mark.slow
def test_train_fast_makes_the_same_model(tmp_path):
    """train --fast (batched MTCNN, overlapped) enrols the same faces as the reference path, with
    embeddings that agree, and a model that records the same pipeline."""
    from facerec.api import train

    lfw = require_lfw()
    data = tmp_path / "people"
    for person in ("Colin_Powell", "Serena_Williams", "Gerhard_Schroeder"):
        (data / person).mkdir(parents=True)
        for n in range(1, 6):
            (data / person / f"{n}.jpg").symlink_to(lfw / person / f"{person}_{n:04d}.jpg")
    opts = dict(embedder="facenet-casia", align="mtcnn", device="cpu", out_dir=None, far=0.05)
    ref = train(data, art_dir=tmp_path / "ref", **opts)
    fast = train(data, art_dir=tmp_path / "fast", fast=True, batch_size=4, **opts)
    assert fast.enrolled == ref.enrolled == 15 and fast.gallery.pipeline == ref.gallery.pipeline
    assert fast.gallery.sample_ids_ == ref.gallery.sample_ids_
    np.testing.assert_array_equal(fast.gallery.labels_, ref.gallery.labels_)
    cos = np.sum(fast.gallery.embeddings_ * ref.gallery.embeddings_, axis=1)
    assert cos.min() > 0.99, cos
    with pytest.raises(InputError, match="--fast aligns with the batched MTCNN only"):
        train(data, art_dir=None, fast=True, **{**opts, "align": "resize"})
    with pytest.raises(InputError, match="add --fast"):
        train(data, art_dir=None, precision="bf16", **opts)


def test_fast_path_names_a_bad_in_memory_sample(casia):
    pipe = BatchPipeline(embedder=casia, device="cpu", batch_size=2, workers=1, flip=True)
    blank = np.full((90, 80, 3), 128, np.uint8)
    results = pipe.run_samples([Sample("data#0", blank), Sample("data#1", np.zeros((5, 5), np.float32))])
    assert results[0].faces == [] and results[0].error is None  # no face is not an error
    assert results[1].error.startswith("data#1: in-memory image: expected dtype uint8")
    assert pipe.config.flip and pipe.config.aligner == "mtcnn" and pipe.config.embedder == "facenet-casia"


def test_only_upright_plain_jpegs_go_to_nvjpeg(casia, tmp_path):
    """nvJPEG ignores EXIF rotation and knows no pixel limit: such files (and progressive or CMYK
    ones) take the CPU path, which rotates them or names the problem. Only the markers are read."""
    from PIL import Image

    pipe = BatchPipeline(embedder=casia, device="cpu", max_pixels=100 * 100)
    img = Image.new("RGB", (40, 30), (200, 10, 10))
    img.save(tmp_path / "plain.jpg")
    img.convert("L").save(tmp_path / "grey.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    img.save(tmp_path / "rotated.jpg", exif=exif)
    exif[0x0112] = 1
    img.save(tmp_path / "upright_exif.jpg", exif=exif)
    img.convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.new("RGB", (200, 200)).save(tmp_path / "huge.jpg")
    img.save(tmp_path / "image.png")
    from test_jpeg_header import XMP_ROTATED

    img.save(tmp_path / "xmp_rotated.jpg", xmp=XMP_ROTATED)
    (tmp_path / "truncated.jpg").write_bytes((tmp_path / "plain.jpg").read_bytes()[:20])
    img.save(tmp_path / "progressive.jpg", progressive=True)
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "plain.jpg").read_bytes()[:-40])  # truncated mid-scan
    (tmp_path / "a_folder.jpg").mkdir()
    gpu_ok = {p.name for p in tmp_path.iterdir() if pipe._read_for_nvjpeg(str(p)) is not None}
    assert gpu_ok == {"plain.jpg", "grey.jpg", "upright_exif.jpg"}
    data = pipe._read_for_nvjpeg(str(tmp_path / "plain.jpg"))
    assert data.dtype == torch.uint8 and bytes(data.numpy()) == (tmp_path / "plain.jpg").read_bytes()
    assert pipe._read_for_nvjpeg(str(tmp_path / "missing.jpg")) is None
    assert pipe._read_for_nvjpeg(np.zeros((4, 4, 3), np.uint8)) is None
